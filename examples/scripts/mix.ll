; A mix: the one shared counter, a static callee (clamp), the transitive chain a -> b -> c, an alwaysinline
; helper, a helper over the import limit, and a C++ helper that throws and catches inside (1 / 0 -> INT32_MIN).
declare i64 @rt_counter_increment()
declare i32 @rt_clamp_add(i32, i32)
declare i32 @rt_chain_a(i32)
declare i64 @rt_always_inline_mix(i64)
declare i64 @rt_big_checksum(ptr, i64)
declare i32 @rt_checked_div(i32, i32)

@bytes = private unnamed_addr constant [4 x i8] c"abcd"

define i64 @mix_main() {
  %n = call i64 @rt_counter_increment()
  %c = call i32 @rt_clamp_add(i32 900, i32 900)
  %ch = call i32 @rt_chain_a(i32 7)
  %m = call i64 @rt_always_inline_mix(i64 1)
  %big = call i64 @rt_big_checksum(ptr @bytes, i64 4)
  %q = call i32 @rt_checked_div(i32 1, i32 0)
  %isneg = icmp eq i32 %q, -2147483648
  %flag = zext i1 %isneg to i64
  %c64 = sext i32 %c to i64
  %ch64 = sext i32 %ch to i64
  %x1 = xor i64 %m, %big
  %x2 = and i64 %x1, 255
  %s1 = add i64 %c64, %flag
  %s2 = add i64 %s1, %x2
  %s3 = add i64 %s2, %ch64
  %s4 = sub i64 %s3, %ch64
  %s5 = add i64 %s4, %n
  %s6 = sub i64 %s5, %n
  %s7 = sub i64 %s6, %x2
  ret i64 %s7
}
