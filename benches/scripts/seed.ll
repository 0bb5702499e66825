; The seed's script (f_ and f_WRAPPED verbatim) plus the driver the benchmark times:
; bench_main(n) calls f_WRAPPED n times and sums the boxed integers. Expected: n * 23333.
declare ptr @CreateWrappedValueFromInt(i32) local_unnamed_addr

define noundef i32 @f_() local_unnamed_addr #0 {
  ret i32 23333
}

define ptr @f_WRAPPED(ptr nocapture readnone %0, ptr nocapture readnone %1) local_unnamed_addr {
  %3 = tail call ptr @CreateWrappedValueFromInt(i32 23333)
  ret ptr %3
}

define i64 @bench_main(i64 %n) {
entry:
  br label %loop

loop:
  %i = phi i64 [ 0, %entry ], [ %i.next, %loop ]
  %acc = phi i64 [ 0, %entry ], [ %acc.next, %loop ]
  %v = call ptr @f_WRAPPED(ptr null, ptr null)
  %payload = getelementptr inbounds i8, ptr %v, i64 8
  %x = load i32, ptr %payload, align 8
  %xe = sext i32 %x to i64
  %acc.next = add i64 %acc, %xe
  %i.next = add i64 %i, 1
  %more = icmp ult i64 %i.next, %n
  br i1 %more, label %loop, label %exit

exit:
  ret i64 %acc.next
}

attributes #0 = { mustprogress nofree norecurse nosync nounwind willreturn memory(none) }
