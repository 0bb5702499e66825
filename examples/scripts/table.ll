; Constant tables: rt_squares (an external constant, imported with its initializer, so the lookups fold) and
; the CRC-32 table (a static constant) used by rt_crc32 over "thinjit".
; Result: squares[3] + squares[7] + squares[70 & 63] = 9 + 49 + 36 = 94, plus crc32("thinjit") & 0xffff.
declare i32 @rt_square_lookup(i32)
declare i32 @rt_crc32(ptr, i64)

@text = private unnamed_addr constant [7 x i8] c"thinjit"

define i64 @table_main() {
  %a = call i32 @rt_square_lookup(i32 3)
  %b = call i32 @rt_square_lookup(i32 7)
  %c = call i32 @rt_square_lookup(i32 70)
  %crc = call i32 @rt_crc32(ptr @text, i64 7)
  %lo = and i32 %crc, 65535
  %s1 = add i32 %a, %b
  %s2 = add i32 %s1, %c
  %s3 = add i32 %s2, %lo
  %r = zext i32 %s3 to i64
  ret i64 %r
}
