; An arithmetic loop over boxed values: acc = acc + box(i) for i in 0..n, all through the helper runtime.
; Expected: the wrapping 32-bit sum of 0..n-1, sign-extended.
declare ptr @CreateWrappedValueFromInt(i32)
declare ptr @WrappedValueAdd(ptr, ptr)
declare i32 @WrappedValueGetInt(ptr)

define i64 @bench_main(i64 %n) {
entry:
  %zero = call ptr @CreateWrappedValueFromInt(i32 0)
  br label %loop

loop:
  %i = phi i64 [ 0, %entry ], [ %i.next, %loop ]
  %acc = phi ptr [ %zero, %entry ], [ %acc.next, %loop ]
  %i32 = trunc i64 %i to i32
  %b = call ptr @CreateWrappedValueFromInt(i32 %i32)
  %acc.next = call ptr @WrappedValueAdd(ptr %acc, ptr %b)
  %i.next = add i64 %i, 1
  %more = icmp ult i64 %i.next, %n
  br i1 %more, label %loop, label %exit

exit:
  %r = call i32 @WrappedValueGetInt(ptr %acc.next)
  %re = sext i32 %r to i64
  ret i64 %re
}
