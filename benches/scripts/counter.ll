; Semantic check, one instance of each mutable global: bump rt_shared_counter n times, return what the script
; then reads. Two copies of this script run in one engine; the host reads the counter afterwards.
declare i64 @rt_counter_increment()
declare i64 @rt_counter_get()

define i64 @bench_main(i64 %n) {
entry:
  br label %loop

loop:
  %i = phi i64 [ 0, %entry ], [ %i.next, %loop ]
  %v = call i64 @rt_counter_increment()
  %i.next = add i64 %i, 1
  %more = icmp ult i64 %i.next, %n
  br i1 %more, label %loop, label %exit

exit:
  %r = call i64 @rt_counter_get()
  ret i64 %r
}
