; Constant-table lookups: rt_square_lookup(i) (external constant table) and rt_crc32 over a 16-byte buffer
; whose first 8 bytes are i (internal constant table).
; Expected: sum over i in 0..n of squares[i & 63] + crc32(le64(i) ++ "crc-data").
@.tail = private unnamed_addr constant [8 x i8] c"crc-data"

declare i32 @rt_square_lookup(i32)
declare i32 @rt_crc32(ptr, i64)

define i64 @bench_main(i64 %n) {
entry:
  %buf = alloca [16 x i8], align 8
  %tailp = getelementptr inbounds i8, ptr %buf, i64 8
  %t = load i64, ptr @.tail, align 1
  store i64 %t, ptr %tailp, align 8
  br label %loop

loop:
  %i = phi i64 [ 0, %entry ], [ %i.next, %loop ]
  %acc = phi i64 [ 0, %entry ], [ %acc.next, %loop ]
  %i32 = trunc i64 %i to i32
  %sq = call i32 @rt_square_lookup(i32 %i32)
  %sqe = sext i32 %sq to i64
  store i64 %i, ptr %buf, align 8
  %c = call i32 @rt_crc32(ptr %buf, i64 16)
  %ce = zext i32 %c to i64
  %a1 = add i64 %acc, %sqe
  %acc.next = add i64 %a1, %ce
  %i.next = add i64 %i, 1
  %more = icmp ult i64 %i.next, %n
  br i1 %more, label %loop, label %exit

exit:
  ret i64 %acc.next
}
