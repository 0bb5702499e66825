; Small accessors in a tight loop: a boxed value's tag and payload, a constant-table lookup and an add — the
; call overhead is most of the work (what inlining removes). Expected: sum over i in 0..n of
; squares[i & 63] + tag (1) + payload (5).
declare ptr @CreateWrappedValueFromInt(i32)
declare i32 @WrappedValueTag(ptr)
declare i32 @WrappedValueGetInt(ptr)
declare i32 @rt_square_lookup(i32)
declare i32 @rt_hot_add(i32, i32)

define i64 @bench_main(i64 %n) {
entry:
  %v = call ptr @CreateWrappedValueFromInt(i32 5)
  br label %loop

loop:
  %i = phi i64 [ 0, %entry ], [ %i.next, %loop ]
  %acc = phi i64 [ 0, %entry ], [ %acc.next, %loop ]
  %tag = call i32 @WrappedValueTag(ptr %v)
  %x = call i32 @WrappedValueGetInt(ptr %v)
  %i32 = trunc i64 %i to i32
  %sq = call i32 @rt_square_lookup(i32 %i32)
  %h = call i32 @rt_hot_add(i32 %sq, i32 %tag)
  %s = add i32 %h, %x
  %se = sext i32 %s to i64
  %acc.next = add i64 %acc, %se
  %i.next = add i64 %i, 1
  %more = icmp ult i64 %i.next, %n
  br i1 %more, label %loop, label %exit

exit:
  ret i64 %acc.next
}
