; An interpreter's arithmetic loop over boxed values: acc = 0; for i in 1..=100: acc = acc + i * i.
; Every operation goes through a helper (box, add, multiply); the small ones inline. Result: 338350.
declare ptr @CreateWrappedValueFromInt(i32)
declare ptr @WrappedValueAdd(ptr, ptr)
declare ptr @WrappedValueMul(ptr, ptr)

define ptr @sum_of_squares_WRAPPED(ptr %0, ptr %1) {
entry:
  %zero = call ptr @CreateWrappedValueFromInt(i32 0)
  br label %loop

loop:
  %i = phi i32 [ 1, %entry ], [ %next, %loop ]
  %acc = phi ptr [ %zero, %entry ], [ %acc.next, %loop ]
  %bi = call ptr @CreateWrappedValueFromInt(i32 %i)
  %sq = call ptr @WrappedValueMul(ptr %bi, ptr %bi)
  %acc.next = call ptr @WrappedValueAdd(ptr %acc, ptr %sq)
  %next = add i32 %i, 1
  %done = icmp sgt i32 %next, 100
  br i1 %done, label %exit, label %loop

exit:
  ret ptr %acc.next
}
