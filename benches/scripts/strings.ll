; String building: concat("key", i & 63) through the boxed-value runtime (interned results), then strlen.
; Each result must be the canonical interned copy (rt_intern returns the same pointer); a mismatch adds 10^9.
; Expected: sum over i in 0..n of len("key" ++ decimal(i & 63)).
@.key = private unnamed_addr constant [4 x i8] c"key\00"

declare ptr @CreateWrappedValueFromString(ptr)
declare ptr @CreateWrappedValueFromInt(i32)
declare ptr @WrappedValueConcat(ptr, ptr)
declare ptr @WrappedValueGetString(ptr)
declare ptr @rt_intern(ptr)
declare i64 @strlen(ptr)

define i64 @bench_main(i64 %n) {
entry:
  br label %loop

loop:
  %i = phi i64 [ 0, %entry ], [ %i.next, %loop ]
  %acc = phi i64 [ 0, %entry ], [ %acc.next, %loop ]
  %k = call ptr @CreateWrappedValueFromString(ptr @.key)
  %m = and i64 %i, 63
  %m32 = trunc i64 %m to i32
  %v = call ptr @CreateWrappedValueFromInt(i32 %m32)
  %s = call ptr @WrappedValueConcat(ptr %k, ptr %v)
  %str = call ptr @WrappedValueGetString(ptr %s)
  %len = call i64 @strlen(ptr %str)
  %canon = call ptr @rt_intern(ptr %str)
  %same = icmp eq ptr %canon, %str
  %penalty = select i1 %same, i64 0, i64 1000000000
  %step = add i64 %len, %penalty
  %acc.next = add i64 %acc, %step
  %i.next = add i64 %i, 1
  %more = icmp ult i64 %i.next, %n
  br i1 %more, label %loop, label %exit

exit:
  ret i64 %acc.next
}
