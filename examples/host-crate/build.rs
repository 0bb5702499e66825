//! Builds the host's helper runtime (csrc/, headers in include/, a required -D) into a thinjit summary in
//! OUT_DIR; `thinjit::summary_path!("hostrt")` finds it.

fn main() {
    thinjit_build::Build::new()
        .files(["csrc/counter.c", "csrc/scale.c", "csrc/label.c"])
        .include("include")
        .define("HOSTRT_SCALE", Some("7"))
        .std_c("c11")
        .compile("hostrt");
}
