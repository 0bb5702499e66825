//! Robustness (issue 8): every bad input is a typed error naming the file, symbol and cause — never a panic or
//! an abort; the fuzzers' saved inputs replay through the very functions the fuzz targets run; failed,
//! interrupted and concurrent `precompute-summary` runs never lose the previous summary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use thinjit::import::{import, ImportConfig};
use thinjit::jit::{EngineBuilder, RuntimeMode};
use thinjit::llvm::{Context, Module};
use thinjit::summary::{checksum64, BuildOptions, Summary};
use thinjit::Error;

use crate::common::{helper_bitcode, rss_kib, SEED_SCRIPT};

/// The fuzz targets' bodies (`fuzz/src/lib.rs`), compiled into this test binary to replay saved inputs.
#[allow(dead_code)]
#[path = "../../fuzz/src/lib.rs"]
mod fuzz_bodies;

// ---------------------------------------------------------------------------------------------------------
// Allocation accounting: bytes allocated and not yet freed by the current thread, and its peak. Lets a test
// show that decoding a file whose length fields claim gigabytes never allocates them.

struct CountingAlloc;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every method forwards to the system allocator unchanged; the bookkeeping touches only `const`
// thread-locals without destructors (no allocation, no re-entrance).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(-(layout.size() as isize));
        // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation goes through `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; `new_size` follows `GlobalAlloc::realloc`'s contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            track(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

/// Runs `f` and returns its result with the peak of bytes the current thread held above the start.
fn peak_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, (peak - start).max(0) as usize)
}

// ---------------------------------------------------------------------------------------------------------
// Fixtures.

/// A small helper library for the host: a constant, a mutable global, a leaf and a caller.
const TINY_LIBRARY: &str = r#"
target datalayout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128"
target triple = "x86_64-pc-linux-gnu"
@k = constant i32 7
@g = global i32 0
define i32 @leaf(i32 %x) {
  %v = load i32, ptr @k
  %r = add i32 %x, %v
  ret i32 %r
}
define i32 @mid(i32 %x) {
  %a = call i32 @leaf(i32 %x)
  store i32 %a, ptr @g
  ret i32 %a
}
"#;

/// The summary of [`TINY_LIBRARY`], built once.
fn tiny() -> &'static Summary {
    static S: OnceLock<Summary> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::TempDir::new().unwrap();
        let ll = dir.path().join("tiny.ll");
        std::fs::write(&ll, TINY_LIBRARY).unwrap();
        Summary::build(&[ll], &BuildOptions::default()).unwrap()
    })
}

/// The bundled helpers' summary, built once.
fn helpers() -> Arc<Summary> {
    static S: OnceLock<Arc<Summary>> = OnceLock::new();
    S.get_or_init(|| Arc::new(Summary::build(&helper_bitcode(), &BuildOptions::default()).unwrap()))
        .clone()
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// Start of the header, of the index and of the shard area in a summary file's bytes.
fn layout(bytes: &[u8]) -> (usize, usize, usize) {
    let h = u64_at(bytes, 12) as usize;
    let i = u64_at(bytes, 20) as usize;
    (36, 36 + h, 36 + h + i)
}

/// Makes the prefix checksum agree with edited header/index bytes, so the edit reaches the decoder.
fn fix_checksum(bytes: &mut [u8]) {
    let (h, _, area) = layout(bytes);
    let sum = checksum64(&bytes[h..area]);
    bytes[28..36].copy_from_slice(&sum.to_le_bytes());
}

/// Replaces the one occurrence of `from` in `bytes` by `to` (same length).
fn replace_once(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(from)));
    bytes[at..at + to.len()].copy_from_slice(to);
}

/// Loads `bytes` as `name`, expecting a summary error naming that file; returns the message.
fn summary_error(bytes: Vec<u8>, name: &str) -> String {
    match Summary::from_bytes(bytes, name) {
        Err(Error::Summary { path, message }) => {
            assert_eq!(path, Path::new(name), "{message}");
            let text = Error::Summary { path, message }.to_string();
            assert!(text.contains(name), "{text}");
            text
        }
        Err(other) => panic!("expected a summary error, got {other:?}"),
        Ok(_) => panic!("{name}: damaged bytes loaded"),
    }
}

// ---------------------------------------------------------------------------------------------------------
// 1. The catalogue of bad inputs.

#[test]
fn empty_summary_file_is_a_typed_error_naming_it() {
    assert!(summary_error(Vec::new(), "empty.thinjit").contains("bad magic"));
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("empty.thinjit");
    std::fs::write(&path, b"").unwrap();
    let err = Summary::load(&path).unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    // A directory, and a path that does not exist.
    let err = Summary::load(dir.path()).unwrap_err();
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
    let missing = dir.path().join("missing.thinjit");
    let err = Summary::load(&missing).unwrap_err();
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
}

#[test]
fn every_truncation_of_a_summary_is_a_typed_error() {
    let good = tiny().to_bytes();
    for len in 0..good.len() {
        let msg = summary_error(good[..len].to_vec(), "cut.thinjit");
        let expected = if len < 8 { "bad magic" } else { "truncated" };
        assert!(msg.contains(expected), "cut at {len}: {msg}");
    }
    // The bundled helpers' summary, with a stride.
    let good = helpers().to_bytes();
    for len in (0..good.len()).step_by(509) {
        summary_error(good[..len].to_vec(), "cut-helpers.thinjit");
    }
}

#[test]
fn every_bit_flip_in_a_summary_is_caught() {
    let good = tiny().to_bytes();
    let (_, _, area) = layout(&good);
    let functions = tiny().index().functions.clone();
    for at in 0..good.len() {
        for bit in [0, 3, 7] {
            let mut bad = good.clone();
            bad[at] ^= 1 << bit;
            if at < area {
                // Prefix, header or index: refused at load.
                summary_error(bad, "flipped.thinjit");
                continue;
            }
            // Shard area: loads (only the index is read), and exactly the damaged blob is refused, by its
            // checksum, before LLVM could see it.
            let s = Summary::from_bytes(bad, "flipped.thinjit").unwrap();
            let offset = (at - area) as u64;
            let mut damaged = 0;
            for f in &functions {
                let r = f.shard.unwrap();
                let hit = (r.offset..r.offset + r.len).contains(&offset);
                match s.shard(f) {
                    Ok(_) => assert!(!hit, "flip at {at} in `{}` not detected", f.name),
                    Err(e) => {
                        assert!(hit, "{e}");
                        let msg = e.to_string();
                        assert!(
                            msg.contains(&f.name)
                                && msg.contains("checksum")
                                && msg.contains("flipped.thinjit"),
                            "{msg}"
                        );
                        damaged += 1;
                    }
                }
            }
            let lib = s.header().library;
            let hit = (lib.offset..lib.offset + lib.len).contains(&offset);
            match s.library_bitcode() {
                Ok(_) => assert!(!hit, "flip at {at} in the library not detected"),
                Err(e) => {
                    assert!(hit && e.to_string().contains("library bitcode"), "{e}");
                    damaged += 1;
                }
            }
            assert_eq!(damaged, 1, "flip at {at}");
        }
    }
}

#[test]
fn hostile_length_fields_never_allocate_what_they_claim() {
    let good = tiny().to_bytes();
    let (header, index, _) = layout(&good);
    let gib = 1u64 << 30;
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();

    // Prefix lengths claiming terabytes (no checksum can save them: refused by the size check).
    let mut bad = good.clone();
    bad[12..20].copy_from_slice(&(1024 * gib).to_le_bytes());
    cases.push(("header length", bad));
    let mut bad = good.clone();
    bad[20..28].copy_from_slice(&u64::MAX.to_le_bytes());
    cases.push(("index length (overflowing)", bad));
    // Inside the index: the function vector's length claims 2^40 entries.
    let mut bad = good.clone();
    bad[index..index + 8].copy_from_slice(&(1024 * gib).to_le_bytes());
    fix_checksum(&mut bad);
    cases.push(("function count", bad));
    // Inside the index: the first function's name claims 4 GiB.
    let mut bad = good.clone();
    bad[index + 8..index + 16].copy_from_slice(&(4 * gib).to_le_bytes());
    fix_checksum(&mut bad);
    cases.push(("function name length", bad));
    // Inside the header: the LLVM version string (after magic and format version) claims 8 GiB.
    let mut bad = good.clone();
    bad[header + 12..header + 20].copy_from_slice(&(8 * gib).to_le_bytes());
    fix_checksum(&mut bad);
    cases.push(("llvm version length", bad));
    // The library blob claims to extend 1 TiB past the shard area.
    let lib = tiny().header().library;
    let mut bad = good.clone();
    let mut from = Vec::new();
    from.extend_from_slice(&lib.offset.to_le_bytes());
    from.extend_from_slice(&lib.len.to_le_bytes());
    let mut to = Vec::new();
    to.extend_from_slice(&lib.offset.to_le_bytes());
    to.extend_from_slice(&(1024 * gib).to_le_bytes());
    replace_once(&mut bad[header..index], &from, &to);
    fix_checksum(&mut bad);
    cases.push(("library length", bad));

    for (what, bytes) in cases {
        let t = Instant::now();
        let (msg, peak) = peak_allocation(|| summary_error(bytes, "hostile.thinjit"));
        eprintln!(
            "{what}: refused in {:?}, peak allocation {peak} bytes: {msg}",
            t.elapsed()
        );
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{what}: {:?}",
            t.elapsed()
        );
        // The file is ~5 KiB; the decoder may hold a few copies and small vectors, never gigabytes.
        assert!(
            peak < 2 << 20,
            "{what}: peak allocation {peak} bytes ({msg})"
        );
        assert!(
            msg.contains("truncated") || msg.contains("damaged"),
            "{what}: {msg}"
        );
        assert!(!msg.ends_with(": "), "{what}: no cause in {msg:?}");
    }
}

#[test]
fn summaries_from_another_format_llvm_triple_or_data_layout_are_refused() {
    let good = helpers().to_bytes();

    let mut bad = good.clone();
    bad[8..12].copy_from_slice(&(thinjit::summary::FORMAT_VERSION + 7).to_le_bytes());
    let msg = summary_error(bad, "format.thinjit");
    assert!(
        msg.contains("format version") && msg.contains("rebuild"),
        "{msg}"
    );

    let ours = thinjit::llvm::llvm_version();
    let other = format!("{}{}", (ours.as_bytes()[0] + 1) as char, &ours[1..]);
    let mut bad = good.clone();
    replace_once(&mut bad, ours.as_bytes(), other.as_bytes());
    fix_checksum(&mut bad);
    let msg = summary_error(bad, "llvm.thinjit");
    assert!(msg.contains(&other) && msg.contains(&ours), "{msg}");

    // Another target triple (same length): loads, and an engine for the host refuses it, naming both.
    let triple = helpers().header().target_triple.clone();
    assert!(triple.starts_with("x86_64"), "{triple}");
    let mut bad = good.clone();
    let other_triple = triple.replacen("x86_64", "mips64", 1);
    replace_once(&mut bad, triple.as_bytes(), other_triple.as_bytes());
    fix_checksum(&mut bad);
    let s = Arc::new(Summary::from_bytes(bad, "triple.thinjit").unwrap());
    let err = EngineBuilder::new().summary(s).build().unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::Summary { .. })
            && msg.contains("triple.thinjit")
            && msg.contains("mips64")
            && msg.contains("triple"),
        "{msg}"
    );

    // Another data layout (big-endian instead of little): refused the same way.
    let dl = helpers().header().data_layout.clone();
    assert!(dl.starts_with("e-"), "{dl}");
    let mut bad = good.clone();
    replace_once(
        &mut bad,
        dl.as_bytes(),
        format!("E-{}", &dl[2..]).as_bytes(),
    );
    fix_checksum(&mut bad);
    let s = Arc::new(Summary::from_bytes(bad, "layout.thinjit").unwrap());
    let err = EngineBuilder::new().summary(s).build().unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::Summary { .. })
            && msg.contains("layout.thinjit")
            && msg.contains("data layout"),
        "{msg}"
    );
}

/// The summary's bytes with `f`'s shard replaced by `shard` (same length) and, when `fix`, the shard
/// checksum in the index and the index checksum updated so the bytes reach LLVM.
fn with_shard(s: &Summary, name: &str, edit: impl FnOnce(&mut [u8]), fix: bool) -> Vec<u8> {
    let f = s.index().function(name).unwrap();
    let r = f.shard.unwrap();
    let mut bytes = s.to_bytes();
    let (_, index, area) = layout(&bytes);
    let start = area + r.offset as usize;
    edit(&mut bytes[start..start + r.len as usize]);
    if fix {
        let sum = checksum64(&bytes[start..start + r.len as usize]);
        replace_once(
            &mut bytes[index..area],
            &r.checksum.to_le_bytes(),
            &sum.to_le_bytes(),
        );
        fix_checksum(&mut bytes);
    }
    bytes
}

#[test]
fn damaged_shard_never_reaches_llvms_bitcode_reader() {
    let s = helpers();
    let garbage = |b: &mut [u8]| {
        for (i, x) in b.iter_mut().enumerate().skip(4) {
            *x = (i as u8).wrapping_mul(31) ^ 0xA5;
        }
    };
    // Damaged: the checksum error, not a parse error — LLVM never saw the bytes.
    let damaged = Summary::from_bytes(
        with_shard(&s, "CreateWrappedValueFromInt", garbage, false),
        "damaged.thinjit",
    )
    .unwrap();
    let ctx = Context::new();
    let mut m = Module::parse_ir(&ctx, SEED_SCRIPT.as_bytes(), "seed").unwrap();
    match import(
        &mut m,
        &damaged,
        &ImportConfig::default(),
        RuntimeMode::JitResident,
    ) {
        Err(Error::Summary { path, message }) => {
            assert_eq!(path, Path::new("damaged.thinjit"));
            assert!(
                message.contains("CreateWrappedValueFromInt") && message.contains("checksum"),
                "{message}"
            );
        }
        other => panic!("expected the checksum error, got {other:?}"),
    }
    // The same garbage with a matching checksum does reach LLVM: then it is LLVM's parse error. So the
    // error above came from the checksum, before the bitcode reader.
    let forged = Summary::from_bytes(
        with_shard(&s, "CreateWrappedValueFromInt", garbage, true),
        "forged.thinjit",
    )
    .unwrap();
    let mut m = Module::parse_ir(&ctx, SEED_SCRIPT.as_bytes(), "seed").unwrap();
    match import(
        &mut m,
        &forged,
        &ImportConfig::default(),
        RuntimeMode::JitResident,
    ) {
        Err(Error::Parse { what, .. }) => {
            assert!(what.contains("CreateWrappedValueFromInt"), "{what}")
        }
        other => panic!("expected LLVM's parse error, got {other:?}"),
    }
}

host_callbacks!(robust_host);

/// An engine with the bundled helpers JIT-resident.
fn resident_engine() -> thinjit::jit::Engine {
    robust_host::register(EngineBuilder::new().summary(helpers()))
        .build()
        .unwrap()
}

#[test]
fn invalid_ir_and_invalid_bitcode_scripts_are_typed_errors() {
    let engine = resident_engine();
    for (name, bytes) in [
        ("text", b"this is not IR".to_vec()),
        ("binary", vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0]),
        (
            "undefined-value",
            b"define i32 @f() {\n ret i32 %nope\n}\n".to_vec(),
        ),
        ("bitcode-magic-only", b"BC\xC0\xDE".to_vec()),
        ("bitcode-garbage", {
            let mut b = b"BC\xC0\xDE".to_vec();
            b.extend((0..512u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
            b
        }),
    ] {
        match engine.add_script(name, &bytes) {
            Err(Error::Parse { what, message }) => {
                assert!(what.contains(name), "{what}: {message}")
            }
            other => panic!("{name}: expected a parse error, got {other:?}"),
        }
    }
    // Verifier failures are caught before any pass can trip on them.
    let undominated = "define i32 @u() {\nentry:\n  br label %next\nnext:\n  %a = add i32 %b, 1\n  %b = add i32 %a, 1\n  ret i32 %a\n}\n";
    match engine.add_script("undominated", undominated.as_bytes()) {
        Err(Error::Verify { what, message }) => {
            assert!(what.contains("undominated"), "{what}: {message}")
        }
        other => panic!("expected a verify error, got {other:?}"),
    }
    // Every truncation of a valid script's bitcode (with a stride) and byte flips of it.
    let ctx = Context::new();
    let bitcode = Module::parse_ir(&ctx, SEED_SCRIPT.as_bytes(), "seed")
        .unwrap()
        .write_bitcode();
    for len in (1..bitcode.len()).step_by(37) {
        let r = engine.add_script("truncated-bitcode", &bitcode[..len]);
        assert!(matches!(r, Err(Error::Parse { .. })), "cut at {len}: {r:?}");
    }
    for at in (8..bitcode.len()).step_by(53) {
        let mut bad = bitcode.clone();
        bad[at] ^= 0xFF;
        // Some flips still give a valid module; none may panic or abort.
        if let Err(e) = engine.add_script("flipped-bitcode", &bad) {
            assert!(e.to_string().contains("flipped-bitcode"), "{e}");
        }
    }
    // The engine is still usable.
    let h = engine
        .add_script("alive", b"define i32 @still_alive() {\n ret i32 7\n}\n")
        .unwrap();
    assert_eq!(
        unsafe {
            h.lookup::<extern "C" fn() -> i32>("still_alive")
                .unwrap()
                .call()
        },
        7
    );
}

#[test]
fn scripts_redefining_helper_symbols_are_refused_naming_the_symbol() {
    let engine = resident_engine();
    for (symbol, script) in [
        (
            "CreateWrappedValueFromInt",
            "define ptr @CreateWrappedValueFromInt(i32 %x) {\n ret ptr null\n}\n",
        ),
        (
            "rt_counter_get",
            "define i64 @rt_counter_get() {\n ret i64 0\n}\n",
        ),
    ] {
        match engine.add_script("redefines", script.as_bytes()) {
            Err(Error::DuplicateDefinition {
                symbol: s, second, ..
            }) => {
                assert_eq!(s, symbol);
                assert!(second.contains("redefines"), "{second}");
            }
            other => panic!("expected a symbol error for {symbol}, got {other:?}"),
        }
    }
    // An internal definition of the same name is the script's own business.
    let own = "define internal i64 @rt_counter_get() {\n ret i64 5\n}\ndefine i64 @own() {\n %r = call i64 @rt_counter_get()\n ret i64 %r\n}\n";
    let h = engine.add_script("own", own.as_bytes()).unwrap();
    assert_eq!(
        unsafe { h.lookup::<extern "C" fn() -> i64>("own").unwrap().call() },
        5
    );
}

#[test]
fn unresolved_symbols_and_missing_entry_points_are_typed_errors() {
    let engine = resident_engine();
    let script = "declare i32 @nowhere_to_be_found(i32)\ndefine i32 @calls_nowhere(i32 %x) {\n %r = call i32 @nowhere_to_be_found(i32 %x)\n ret i32 %r\n}\n";
    match engine.add_script("unresolved", script.as_bytes()) {
        Err(Error::UnresolvedSymbols { symbols, .. }) => {
            assert_eq!(symbols, ["nowhere_to_be_found"])
        }
        other => panic!("expected a symbol error, got {other:?}"),
    }
    // A variable that does not exist, either.
    let script = "@no_such_global = external global i32\ndefine i32 @reads() {\n %v = load i32, ptr @no_such_global\n ret i32 %v\n}\n";
    match engine.add_script("unresolved-global", script.as_bytes()) {
        Err(Error::UnresolvedSymbols { symbols, .. }) => assert_eq!(symbols, ["no_such_global"]),
        other => panic!("expected a symbol error, got {other:?}"),
    }
    let h = engine.add_script("seed", SEED_SCRIPT.as_bytes()).unwrap();
    match h.lookup::<extern "C" fn() -> i32>("main") {
        Err(Error::UndefinedSymbol { symbol }) => assert_eq!(symbol, "main"),
        other => panic!("expected a symbol error, got {:?}", other.map(|_| ())),
    }
    match engine.lookup_address("no_entry_here") {
        Err(Error::UndefinedSymbol { symbol }) => assert_eq!(symbol, "no_entry_here"),
        other => panic!("expected a symbol error, got {other:?}"),
    }
}

#[test]
fn invalid_import_configuration_is_a_typed_error() {
    for bad in [f32::NAN, f32::INFINITY, -1.0] {
        let config = ImportConfig {
            import_hot_multiplier: bad,
            ..ImportConfig::default()
        };
        let err = robust_host::register(EngineBuilder::new().summary(helpers()))
            .import_config(config)
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, Error::Config { message } if message.contains("import-hot-multiplier")),
            "{err:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------------------
// CLI misuse.

fn run(bin: &str, args: &[&OsStr]) -> Output {
    Command::new(bin)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Asserts a clean failure: non-zero exit, `error:` on stderr mentioning every `needle`, no panic.
fn assert_fails(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "succeeded: {stderr}");
    assert!(
        out.status.code().is_some(),
        "killed by a signal: {:?}\n{stderr}",
        out.status
    );
    assert!(stderr.contains("error:"), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "`{n}` not in: {stderr}");
    }
    assert!(
        !stderr.contains("panicked")
            && !stderr.contains("RUST_BACKTRACE")
            && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

const PRECOMPUTE: &str = env!("CARGO_BIN_EXE_precompute-summary");
const THINJIT: &str = env!("CARGO_BIN_EXE_thinjit");

#[test]
fn cli_misuse_fails_cleanly_naming_the_file() {
    let dir = tempfile::TempDir::new().unwrap();
    let d = dir.path();
    let o = |p: &Path| p.as_os_str().to_owned();
    let s = |x: &str| OsStr::new(x).to_owned();
    let missing = d.join("missing.ll");
    let out = d.join("out.thinjit");
    let garbage_ll = d.join("garbage.ll");
    std::fs::write(&garbage_ll, "this is not IR").unwrap();
    let garbage_bc = d.join("garbage.bc");
    std::fs::write(&garbage_bc, b"BC\xC0\xDE\x01\x02\x03").unwrap();
    let lib = d.join("lib.ll");
    std::fs::write(&lib, TINY_LIBRARY).unwrap();
    let not_a_dir = d.join("file-not-dir");
    std::fs::write(&not_a_dir, "x").unwrap();
    let under_file = not_a_dir.join("x.ll");
    let bad_summary = d.join("bad.thinjit");
    std::fs::write(&bad_summary, b"THINJIT\0garbage").unwrap();
    tiny().write(&d.join("tiny.thinjit")).unwrap();
    let script = d.join("script.ll");
    std::fs::write(&script, "define i64 @main() {\n ret i64 4\n}\n").unwrap();

    let cases: Vec<(&str, Vec<std::ffi::OsString>, Vec<String>)> = vec![
        (
            PRECOMPUTE,
            vec![o(&missing), s("-o"), o(&out)],
            vec![missing.display().to_string()],
        ),
        (
            PRECOMPUTE,
            vec![o(&garbage_ll), s("-o"), o(&out)],
            vec![garbage_ll.display().to_string()],
        ),
        (
            PRECOMPUTE,
            vec![o(&garbage_bc), s("-o"), o(&out)],
            vec![garbage_bc.display().to_string()],
        ),
        (
            PRECOMPUTE,
            vec![o(&under_file), s("-o"), o(&out)],
            vec![under_file.display().to_string()],
        ),
        (
            PRECOMPUTE,
            vec![o(&lib), s("-o"), o(&d.join("no/such/dir/out.thinjit"))],
            vec!["no/such/dir/out.thinjit".into()],
        ),
        (
            PRECOMPUTE,
            vec![o(&lib), s("-o"), o(d)],
            vec![d.display().to_string()],
        ),
        (
            PRECOMPUTE,
            vec![o(&lib), s("-o"), o(&out), s("-j"), s("many")],
            vec!["many".into()],
        ),
        (
            PRECOMPUTE,
            vec![o(&lib), s("-o"), o(&out), s("-j"), s("-3")],
            vec![],
        ),
        (
            PRECOMPUTE,
            vec![s("merge"), o(&missing), s("-o"), o(&out)],
            vec![missing.display().to_string()],
        ),
        (
            PRECOMPUTE,
            vec![s("merge"), o(&bad_summary), s("-o"), o(&out)],
            vec![bad_summary.display().to_string()],
        ),
        (
            THINJIT,
            vec![s("summary"), s("show"), o(&missing)],
            vec![missing.display().to_string()],
        ),
        (
            THINJIT,
            vec![s("summary"), s("show"), o(&bad_summary)],
            vec![bad_summary.display().to_string()],
        ),
        (
            THINJIT,
            vec![s("summary"), s("show"), o(d)],
            vec![d.display().to_string()],
        ),
        (
            THINJIT,
            vec![s("plan"), s("--summary"), o(&missing), o(&script)],
            vec![missing.display().to_string()],
        ),
        (
            THINJIT,
            vec![
                s("plan"),
                s("--summary"),
                o(&d.join("tiny.thinjit")),
                o(&missing),
            ],
            vec![missing.display().to_string()],
        ),
        (
            THINJIT,
            vec![
                s("plan"),
                s("--summary"),
                o(&d.join("tiny.thinjit")),
                o(&garbage_ll),
            ],
            vec![garbage_ll.display().to_string()],
        ),
        (
            THINJIT,
            vec![
                s("plan"),
                s("--summary"),
                o(&d.join("tiny.thinjit")),
                o(&script),
                s("--import-instr-limit"),
                s("lots"),
            ],
            vec!["lots".into()],
        ),
        (
            THINJIT,
            vec![
                s("plan"),
                s("--summary"),
                o(&d.join("tiny.thinjit")),
                o(&script),
                s("--import-instr-limit"),
                s("-5"),
            ],
            vec![],
        ),
        (
            THINJIT,
            vec![
                s("plan"),
                s("--summary"),
                o(&d.join("tiny.thinjit")),
                o(&script),
                s("--import-hot-multiplier"),
                s("NaN"),
            ],
            vec!["import-hot-multiplier".into()],
        ),
        (
            THINJIT,
            vec![
                s("plan"),
                s("--summary"),
                o(&d.join("tiny.thinjit")),
                o(&script),
                s("--import-cold-multiplier"),
                s("-1"),
            ],
            vec![],
        ),
        (
            THINJIT,
            vec![s("run"), s("--summary"), o(&bad_summary), o(&script)],
            vec![bad_summary.display().to_string()],
        ),
        (
            THINJIT,
            vec![
                s("run"),
                s("--summary"),
                o(&d.join("tiny.thinjit")),
                o(&script),
                s("--entry"),
                s("absent"),
            ],
            vec!["absent".into()],
        ),
    ];
    for (bin, args, needles) in cases {
        let args: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let output = run(bin, &args);
        let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
        eprintln!("{bin} {args:?}");
        assert_fails(&output, &needles);
    }
    assert!(!out.exists(), "a failed run wrote {}", out.display());
}

// ---------------------------------------------------------------------------------------------------------
// 2. Fuzzing: replay the saved inputs through the fuzz targets' bodies.

/// Files under `fuzz/<kind>/<target>/`, sorted (none when the directory does not exist).
fn fuzz_inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .join("fuzz")
        .join(kind)
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn fuzz_corpora_and_findings_replay_without_panics() {
    for target in ["summary_decode", "planner"] {
        let mut n = 0;
        for kind in ["seeds", "regressions", "corpus"] {
            for file in fuzz_inputs(kind, target) {
                // A running fuzzer replaces corpus files as it minimizes them.
                let Ok(data) = std::fs::read(&file) else {
                    continue;
                };
                let t = Instant::now();
                match target {
                    "summary_decode" => fuzz_bodies::decode_one(&data),
                    _ => fuzz_bodies::plan_one(&data),
                }
                assert!(
                    t.elapsed() < Duration::from_secs(5),
                    "{} took {:?}",
                    file.display(),
                    t.elapsed()
                );
                n += 1;
            }
        }
        assert!(n >= 3, "{target}: only {n} inputs");
        eprintln!("{target}: replayed {n} inputs");
    }
    // A real summary seeds the decoder, and it decodes.
    let seed = std::fs::read(
        fuzz_inputs("seeds", "summary_decode")
            .into_iter()
            .find(|p| p.ends_with("tiny_mode1"))
            .unwrap(),
    )
    .unwrap();
    let mut bytes = seed[1..].to_vec();
    fuzz_bodies::fix_prefix_checksum(&mut bytes);
    let _ = Summary::from_bytes(bytes, "seed").map(|s| assert!(!s.index().functions.is_empty()));
}

/// Regression, found by the `planner` fuzz target (`fuzz/regressions/planner/hang-threshold-saturation`):
/// with an evolution factor above 1 a threshold grew past `u32::MAX`; compared unsaturated against the
/// saturated stored value it always looked higher and a call cycle was revisited forever.
#[test]
fn regression_planner_threshold_saturation_does_not_hang() {
    use thinjit::import::{plan, ScriptSymbols};
    use thinjit::summary::{CallEdge, FunctionSummary, Hotness, Linkage, SummaryIndex};
    let f = |name: &str, callee: &str, hotness| FunctionSummary {
        name: name.into(),
        original_name: None,
        linkage: Linkage::External,
        original_linkage: Linkage::External,
        instruction_count: 1,
        attributes: Default::default(),
        calls: vec![CallEdge {
            callee: callee.into(),
            count: 1,
            hotness,
        }],
        refs: vec![],
        locals: vec![],
        not_eligible: vec![],
        shard: None,
    };
    let index = SummaryIndex {
        functions: vec![
            f("a", "b", Hotness::Critical),
            f("b", "a", Hotness::Critical),
        ],
        ..SummaryIndex::default()
    };
    let script = ScriptSymbols::new().declare("a");
    for (evolution, multiplier) in [(10.0, 100.0), (f32::MAX, 1e-12), (1.0, 0.5), (1e30, 1e-20)] {
        let config = ImportConfig {
            import_instr_limit: 100,
            import_instr_evolution_factor: evolution,
            import_critical_multiplier: multiplier,
            ..ImportConfig::default()
        };
        let t = Instant::now();
        let p = plan(&index, &script, &config, RuntimeMode::JitResident);
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "{evolution} {multiplier}"
        );
        assert!(p.functions.len() <= 2);
    }
}

/// Regression, found by the `planner` fuzz target
/// (`fuzz/regressions/planner/crash-host-native-interposable-local-copy`): in host-native mode a promoted
/// `static` callee with interposable linkage (impossible from the builder, possible in a damaged or hand-made
/// index) was copied into the script.
#[test]
fn regression_planner_never_copies_an_interposable_local() {
    use thinjit::import::{plan, ScriptSymbols};
    use thinjit::summary::{FunctionSummary, Linkage, SummaryIndex};
    let f = |name: &str, linkage, locals: Vec<String>| FunctionSummary {
        name: name.into(),
        original_name: Some(name.into()),
        linkage,
        original_linkage: Linkage::Internal,
        instruction_count: 3,
        attributes: Default::default(),
        calls: vec![],
        refs: vec![],
        locals,
        not_eligible: vec![],
        shard: None,
    };
    let index = SummaryIndex {
        functions: vec![
            f("caller", Linkage::External, vec!["weak_static".into()]),
            f("weak_static", Linkage::WeakAny, vec![]),
        ],
        ..SummaryIndex::default()
    };
    let p = plan(
        &index,
        &ScriptSymbols::new().declare("caller"),
        &ImportConfig::default(),
        RuntimeMode::HostNative,
    );
    assert!(p.functions.is_empty(), "{:?}", p.functions);
    let reason = format!("{:?}", p.considered("caller").unwrap().decision);
    assert!(reason.contains("weak_static"), "{reason}");
}

// ---------------------------------------------------------------------------------------------------------
// 3. Nothing lost.

fn precompute(args: &[&OsStr]) -> Output {
    run(PRECOMPUTE, args)
}

/// Temporary files `Summary::write` may leave next to `out`.
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect()
}

#[test]
fn failing_precompute_summary_leaves_the_previous_summary_byte_identical() {
    let dir = tempfile::TempDir::new().unwrap();
    let lib = dir.path().join("lib.ll");
    std::fs::write(&lib, TINY_LIBRARY).unwrap();
    let out = dir.path().join("helpers.thinjit");
    let ok = precompute(&[
        lib.as_os_str(),
        OsStr::new("-q"),
        OsStr::new("-o"),
        out.as_os_str(),
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let before = std::fs::read(&out).unwrap();

    let bad = dir.path().join("bad.ll");
    std::fs::write(&bad, "define i32 @broken( {").unwrap();
    let missing = dir.path().join("missing.bc");
    for args in [
        vec![bad.as_os_str()],
        vec![lib.as_os_str(), bad.as_os_str()],
        vec![missing.as_os_str()],
    ] {
        let mut all = args.clone();
        all.extend([OsStr::new("-q"), OsStr::new("-o"), out.as_os_str()]);
        let r = precompute(&all);
        assert_fails(&r, &[]);
        assert_eq!(std::fs::read(&out).unwrap(), before, "{args:?}");
    }
    assert!(
        temporaries(dir.path()).is_empty(),
        "{:?}",
        temporaries(dir.path())
    );
    Summary::load(&out).unwrap();
}

#[test]
fn interrupted_precompute_summary_leaves_the_previous_summary_intact() {
    let dir = tempfile::TempDir::new().unwrap();
    let small = dir.path().join("small.ll");
    std::fs::write(&small, TINY_LIBRARY).unwrap();
    let big = dir.path().join("big.ll");
    std::fs::write(&big, thinjit_cli::synth::generate_library(3000, 7)).unwrap();
    let out = dir.path().join("helpers.thinjit");
    let args = |input: &Path| {
        vec![
            input.as_os_str().to_owned(),
            "-q".into(),
            "-j".into(),
            "1".into(),
            "-o".into(),
            out.as_os_str().to_owned(),
        ]
    };
    let ok = Command::new(PRECOMPUTE)
        .args(args(&small))
        .output()
        .unwrap();
    assert!(ok.status.success());
    let before = std::fs::read(&out).unwrap();

    // How long a full run takes, then kills spread over it (SIGKILL: no cleanup code runs).
    let t = Instant::now();
    let full = Command::new(PRECOMPUTE).args(args(&big)).output().unwrap();
    let full_time = t.elapsed();
    assert!(full.status.success());
    eprintln!("full build of 3,000 functions: {full_time:?}");
    let big_bytes = std::fs::read(&out).unwrap();
    std::fs::write(&out, &before).unwrap();

    let mut killed = 0;
    for percent in [5u32, 15, 30, 50, 70, 90] {
        let mut child = Command::new(PRECOMPUTE)
            .args(args(&big))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full_time * percent / 100);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
        let now = std::fs::read(&out).unwrap();
        // Either the run finished (the new, whole file) or it did not (the old file, untouched).
        assert!(
            now == before || now == big_bytes,
            "killed at {percent}%: {} bytes",
            now.len()
        );
        Summary::load(&out).unwrap();
        std::fs::write(&out, &before).unwrap();
    }
    assert!(
        killed >= 2,
        "only {killed} runs were still going when killed (full run {full_time:?})"
    );
    // A temporary file from a killed writer is removed by the next successful write.
    std::fs::write(
        dir.path().join(".helpers.thinjit.tmp-999999999-0"),
        b"partial",
    )
    .unwrap();
    let ok = Command::new(PRECOMPUTE)
        .args(args(&small))
        .output()
        .unwrap();
    assert!(ok.status.success());
    assert!(
        temporaries(dir.path()).is_empty(),
        "{:?}",
        temporaries(dir.path())
    );
}

#[test]
fn concurrent_precompute_summary_runs_leave_one_whole_file() {
    let dir = tempfile::TempDir::new().unwrap();
    let a = dir.path().join("a.ll");
    std::fs::write(&a, TINY_LIBRARY).unwrap();
    let b = dir.path().join("b.ll");
    std::fs::write(&b, thinjit_cli::synth::generate_library(200, 3)).unwrap();
    let out = dir.path().join("shared.thinjit");
    let build = |input: &Path, to: &Path| {
        Command::new(PRECOMPUTE)
            .args([
                input.as_os_str(),
                OsStr::new("-q"),
                OsStr::new("-j"),
                OsStr::new("1"),
                OsStr::new("-o"),
                to.as_os_str(),
            ])
            .spawn()
            .unwrap()
    };
    let a_alone = dir.path().join("a.thinjit");
    let b_alone = dir.path().join("b.thinjit");
    assert!(build(&a, &a_alone).wait().unwrap().success());
    assert!(build(&b, &b_alone).wait().unwrap().success());
    let (a_bytes, b_bytes) = (
        std::fs::read(&a_alone).unwrap(),
        std::fs::read(&b_alone).unwrap(),
    );
    for _ in 0..4 {
        let mut first = build(&a, &out);
        let mut second = build(&b, &out);
        assert!(first.wait().unwrap().success());
        assert!(second.wait().unwrap().success());
        let now = std::fs::read(&out).unwrap();
        assert!(
            now == a_bytes || now == b_bytes,
            "{} bytes: a mix",
            now.len()
        );
        Summary::load(&out).unwrap();
    }
    // Threads of one process writing the same path: distinct temporaries, one whole file.
    let (sa, sb) = (
        Summary::load(&a_alone).unwrap(),
        Summary::load(&b_alone).unwrap(),
    );
    std::thread::scope(|scope| {
        for i in 0..8 {
            let (sa, sb, out) = (&sa, &sb, &out);
            scope.spawn(move || {
                for _ in 0..10 {
                    if i % 2 == 0 {
                        sa.write(out)
                    } else {
                        sb.write(out)
                    }
                    .unwrap();
                }
            });
        }
    });
    let now = std::fs::read(&out).unwrap();
    assert!(now == a_bytes || now == b_bytes);
    assert!(
        temporaries(dir.path()).is_empty(),
        "{:?}",
        temporaries(dir.path())
    );
}

// ---------------------------------------------------------------------------------------------------------
// 4. Memory: ORC's symbol string pool.

/// Run alone in a child process by [`dead_symbol_names_are_freed`] (RSS is meaningless while other tests run).
#[test]
#[ignore = "run in a child process by dead_symbol_names_are_freed"]
fn dead_symbol_names_child() {
    let engine = EngineBuilder::new().build().unwrap();
    for i in 0..4 {
        let _ = engine.lookup_address(&format!("warm{i}"));
    }
    let before = rss_kib();
    // 48 failed lookups of distinct 1 MiB names: each name is interned in ORC's string pool.
    for i in 0..48 {
        let name = format!("{i}{}", "y".repeat(1 << 20));
        assert!(engine.lookup_address(&name).is_err());
    }
    let after_lookups = rss_kib();
    // 128 scripts with distinct 64 KiB names, added and removed.
    for i in 0..128 {
        let name = format!("f{i}{}", "z".repeat(64 << 10));
        let h = engine
            .add_script(
                "s",
                format!("define i32 @{name}() {{\n ret i32 1\n}}\n").as_bytes(),
            )
            .unwrap();
        h.remove().unwrap();
    }
    let after_scripts = rss_kib();
    println!("RSS KiB: {before} -> {after_lookups} after lookups -> {after_scripts} after scripts");
    // Kept, the names would hold 48 MiB and 8 MiB.
    assert!(
        after_lookups < before + 16 * 1024,
        "{before} -> {after_lookups}"
    );
    assert!(
        after_scripts < before + 16 * 1024,
        "{before} -> {after_scripts}"
    );
}

#[test]
fn dead_symbol_names_are_freed() {
    let stdout = crate::common::run_ignored_test_in_child("robustness::dead_symbol_names_child");
    eprintln!(
        "{}",
        stdout.lines().find(|l| l.contains("RSS KiB")).unwrap_or("")
    );
}
