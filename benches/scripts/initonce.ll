; Semantic check, initializers once: how many times the intern table's constructor ran as seen from the
; script (must be exactly 1, and the table must be live: interning works).
; Returns ctor_runs * 10 + (rt_intern of a fresh copy returns the canonical pointer ? 1 : 0).
@.probe = private unnamed_addr constant [15 x i8] c"initonce-probe\00"
@.probe2 = private unnamed_addr constant [15 x i8] c"initonce-probe\00"

declare i32 @rt_intern_ctor_runs()
declare ptr @rt_intern(ptr)

define i64 @bench_main(i64 %n) {
entry:
  %runs = call i32 @rt_intern_ctor_runs()
  %p1 = call ptr @rt_intern(ptr @.probe)
  %p2 = call ptr @rt_intern(ptr @.probe2)
  %same = icmp eq ptr %p1, %p2
  %notlit = icmp ne ptr %p1, @.probe
  %ok = and i1 %same, %notlit
  %okv = zext i1 %ok to i64
  %r = zext i32 %runs to i64
  %r10 = mul i64 %r, 10
  %res = add i64 %r10, %okv
  ret i64 %res
}
