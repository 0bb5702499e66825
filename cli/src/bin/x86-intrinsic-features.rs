//! `x86-intrinsic-features OUT.rs`: derives what every x86 intrinsic LLVM 19 knows needs on x86-64 by
//! compiling calls with `llc` in child processes ([`thinjit_cli::x86_features`]), and writes the table the
//! pre-codegen check uses. `cargo run -p thinjit-cli --release --bin x86-intrinsic-features --
//! src/check/x86_intrinsic_features.rs` regenerates the committed one.
//!
//! `x86-intrinsic-features --gaps OUT.rs`: derives the calls LLVM 19 verifies but cannot compile on x86-64
//! (rounding operands, vector-predicated intrinsics; [`thinjit_cli::x86_gaps`]):
//! `cargo run -p thinjit-cli --release --bin x86-intrinsic-features -- --gaps src/check/x86_codegen_gaps.rs`.

use std::time::Instant;

use thinjit_cli::x86_features::{derive, llc, write_table, Verdict};

fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("--gaps") {
        return gaps();
    }
    let out = std::env::args_os()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: x86-intrinsic-features OUT.rs"))?;
    // `--only PREFIX` (after OUT): derive and print only the intrinsics whose names start with PREFIX.
    let only = std::env::args()
        .nth(3)
        .filter(|_| std::env::args().nth(2).as_deref() == Some("--only"));
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let start = Instant::now();
    let entries = derive(&llc(), only.as_deref(), jobs, |k, n| {
        if k % 50 == 0 || k == n {
            eprintln!("{k}/{n} intrinsics, {:.0} s", start.elapsed().as_secs_f64());
        }
    })?;
    let runs: u64 = entries.iter().map(|e| e.runs).sum();
    if only.is_some() {
        for e in &entries {
            println!("{}: {:?} ({} llc runs)", e.name, e.verdict, e.runs);
        }
    }
    write_table(
        std::path::Path::new(&out),
        &entries,
        "cargo run -p thinjit-cli --release --bin x86-intrinsic-features -- src/check/x86_intrinsic_features.rs",
    )?;
    let never = entries
        .iter()
        .filter(|e| matches!(e.verdict, Verdict::Never(_)))
        .count();
    println!(
        "{} x86 intrinsics, {runs} llc runs, {never} never selectable, {:.0} s; wrote {}",
        entries.len(),
        start.elapsed().as_secs_f64(),
        std::path::Path::new(&out).display()
    );
    Ok(())
}

fn gaps() -> anyhow::Result<()> {
    use thinjit_cli::script_fuzz::generate::Catalog;
    use thinjit_cli::x86_gaps::{derive_generic, derive_rounding, derive_vp, write_gaps};
    let out = std::env::args_os()
        .nth(2)
        .ok_or_else(|| anyhow::anyhow!("usage: x86-intrinsic-features --gaps OUT.rs"))?;
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let start = Instant::now();
    let progress = |what: &'static str| {
        move |k: usize, n: usize| {
            if k % 100 == 0 || k == n {
                eprintln!("{what}: {k}/{n}, {:.0} s", start.elapsed().as_secs_f64());
            }
        }
    };
    let rounding = derive_rounding(&llc(), &Catalog::load(1), jobs, &progress("x86 immediates"))?;
    let variants = Catalog::load(3);
    let vp = derive_vp(
        &llc(),
        &variants,
        jobs,
        &progress("vector-predicated calls"),
    )?;
    let generic = derive_generic(&llc(), &variants, jobs, &progress("other generic calls"))?;
    write_gaps(
        std::path::Path::new(&out),
        &rounding,
        &vp,
        &generic,
        "cargo run -p thinjit-cli --release --bin x86-intrinsic-features -- --gaps src/check/x86_codegen_gaps.rs",
    )?;
    // The committed file is formatted like the rest of the crate: regenerating it must not show a diff.
    let formatted = std::process::Command::new("rustfmt")
        .args(["--edition", "2021"])
        .arg(&out)
        .status()
        .is_ok_and(|s| s.success());
    if !formatted {
        eprintln!("rustfmt did not run: run `cargo fmt` before committing the table");
    }
    println!(
        "{} rounding operands, {} vector-predicated intrinsics, {} other signatures, {:.0} s; wrote {}",
        rounding.len(),
        vp.len(),
        generic.len(),
        start.elapsed().as_secs_f64(),
        std::path::Path::new(&out).display()
    );
    Ok(())
}
