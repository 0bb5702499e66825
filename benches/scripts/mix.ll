; A mix that calls many helpers once per iteration: small importable ones, a transitive chain, an alwaysinline
; one, a noinline one, a hot one, a C++ one with exceptions inside, variadic, recursive, weak, computed goto,
; boxed arithmetic and comparison. Expected: computed by the harness's reference implementation.
@.ops = private unnamed_addr constant [6 x i8] c"\00\00\02\00\01\02"

declare i32 @rt_clamp_add(i32, i32)
declare i32 @rt_noinline_add(i32, i32)
declare i32 @rt_hot_add(i32, i32)
declare i32 @rt_chain_a(i32)
declare i64 @rt_always_inline_mix(i64)
declare i32 @rt_checked_div(i32, i32)
declare i32 @rt_sum_varargs(i32, ...)
declare i64 @rt_fib(i32)
declare i32 @rt_weak_hook(i32)
declare i32 @rt_dispatch(ptr, i32)
declare ptr @CreateWrappedValueFromInt(i32)
declare ptr @CreateWrappedValueFromDouble(double)
declare ptr @WrappedValueMul(ptr, ptr)
declare ptr @WrappedValueSub(ptr, ptr)
declare i32 @WrappedValueCompare(ptr, ptr)
declare double @WrappedValueGetDouble(ptr)

define i64 @bench_main(i64 %n) {
entry:
  br label %loop

loop:
  %i = phi i64 [ 0, %entry ], [ %i.next, %loop ]
  %acc = phi i64 [ 0, %entry ], [ %acc.next, %loop ]
  %x = trunc i64 %i to i32
  %m7 = and i32 %x, 7
  %a = call i32 @rt_clamp_add(i32 %x, i32 -500)
  %b = call i32 @rt_noinline_add(i32 %x, i32 3)
  %c = call i32 @rt_hot_add(i32 %x, i32 %x)
  %d = call i32 @rt_chain_a(i32 %x)
  %e = call i64 @rt_always_inline_mix(i64 %i)
  %f = call i32 @rt_checked_div(i32 %x, i32 %m7)
  %g = call i32 (i32, ...) @rt_sum_varargs(i32 3, i32 %x, i32 %m7, i32 7)
  %fibn = add i32 %m7, 5
  %h = call i64 @rt_fib(i32 %fibn)
  %w = call i32 @rt_weak_hook(i32 %x)
  %dispatch = call i32 @rt_dispatch(ptr @.ops, i32 6)
  %bi = call ptr @CreateWrappedValueFromInt(i32 %x)
  %bd = call ptr @CreateWrappedValueFromDouble(double 2.5)
  %prod = call ptr @WrappedValueMul(ptr %bi, ptr %bd)
  %diff = call ptr @WrappedValueSub(ptr %prod, ptr %bi)
  %cmp = call i32 @WrappedValueCompare(ptr %diff, ptr %bi)
  %dv = call double @WrappedValueGetDouble(ptr %diff)
  %di = fptosi double %dv to i64
  %s1 = sext i32 %a to i64
  %s2 = sext i32 %b to i64
  %s3 = sext i32 %c to i64
  %s4 = sext i32 %d to i64
  %s6 = sext i32 %f to i64
  %s7 = sext i32 %g to i64
  %s9 = sext i32 %w to i64
  %s10 = sext i32 %dispatch to i64
  %s11 = sext i32 %cmp to i64
  %t1 = add i64 %s1, %s2
  %t2 = add i64 %t1, %s3
  %t3 = add i64 %t2, %s4
  %t4 = xor i64 %t3, %e
  %t5 = add i64 %t4, %s6
  %t6 = add i64 %t5, %s7
  %t7 = add i64 %t6, %h
  %t8 = add i64 %t7, %s9
  %t9 = add i64 %t8, %s10
  %t10 = add i64 %t9, %s11
  %t11 = add i64 %t10, %di
  %acc.next = add i64 %acc, %t11
  %i.next = add i64 %i, 1
  %more = icmp ult i64 %i.next, %n
  br i1 %more, label %loop, label %exit

exit:
  ret i64 %acc.next
}
