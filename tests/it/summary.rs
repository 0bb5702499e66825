//! The build step (issue 4): summary contents on the bundled helpers, shards, the file format, determinism,
//! per-input + merge, and bad input.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use thinjit::llvm::{Context, Linkage, Module};
use thinjit::summary::{
    checksum64, BuildOptions, FunctionSummary, Hotness, NotEligible, Summary, SummaryKind,
};
use thinjit::Error;

use crate::common;

/// The bundled helpers, summarized once for the whole test binary.
fn helpers() -> &'static Summary {
    static S: OnceLock<Summary> = OnceLock::new();
    S.get_or_init(|| Summary::build(&common::helper_bitcode(), &BuildOptions::default()).unwrap())
}

fn function<'a>(s: &'a Summary, name: &str) -> &'a FunctionSummary {
    s.index()
        .function(name)
        .unwrap_or_else(|| panic!("`{name}` missing from the summary"))
}

/// The one function whose name starts with `prefix`.
fn function_prefixed<'a>(s: &'a Summary, prefix: &str) -> &'a FunctionSummary {
    let found: Vec<_> = s
        .index()
        .functions
        .iter()
        .filter(|f| f.name.starts_with(prefix))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "functions starting with `{prefix}`: {found:?}"
    );
    found[0]
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn helper_edge_cases_have_their_reasons() {
    let s = helpers();
    let reasons = |n: &str| function(s, n).not_eligible.clone();
    assert_eq!(reasons("rt_sum_varargs"), vec![NotEligible::VaStart]);
    assert_eq!(reasons("rt_asm_barrier"), vec![NotEligible::InlineAsm]);
    assert_eq!(reasons("rt_dispatch"), vec![NotEligible::BlockAddress]);
    assert_eq!(reasons("rt_tls_enter"), vec![NotEligible::ThreadLocal]);
    assert_eq!(reasons("rt_tls_leave"), vec![NotEligible::ThreadLocal]);
    assert_eq!(reasons("rt_weak_hook"), vec![NotEligible::Interposable]);
    assert_eq!(function(s, "rt_weak_hook").linkage, Linkage::WeakAny);
    assert_eq!(reasons("rt_debug_identity"), vec![NotEligible::OptNone]);
    assert!(function(s, "rt_debug_identity").attributes.optnone);
    assert_eq!(
        reasons("thinjit_host_alloc"),
        vec![NotEligible::Declaration]
    );
    for f in [
        &"rt_sum_varargs",
        &"rt_asm_barrier",
        &"rt_dispatch",
        &"rt_weak_hook",
    ] {
        assert!(function(s, f).shard.is_none(), "{f} must have no shard");
    }

    let noinline = function(s, "rt_noinline_add");
    assert!(noinline.attributes.noinline && noinline.is_eligible());
    let always = function(s, "rt_always_inline_mix");
    assert!(always.attributes.alwaysinline && always.is_eligible());
    assert!(
        always.instruction_count > 100,
        "{}",
        always.instruction_count
    );
    assert!(function(s, "rt_hot_add").attributes.hot);
    assert!(function(s, "rt_report_error").attributes.cold);

    let seed = function(s, "CreateWrappedValueFromInt");
    assert!(seed.is_eligible() && seed.shard.is_some());
    assert!(seed.instruction_count > 0 && seed.instruction_count < 30);
    assert_eq!(seed.calls.len(), 1);
    assert_eq!(seed.calls[0].callee, "rt_alloc");
    assert_eq!(seed.calls[0].count, 1);
    assert_eq!(seed.calls[0].hotness, Hotness::Unknown);

    // A call to a `cold` callee is a cold edge.
    let alloc = function(s, "rt_alloc");
    let edge = alloc
        .calls
        .iter()
        .find(|c| c.callee == "rt_report_error")
        .unwrap();
    assert_eq!(edge.hotness, Hotness::Cold);
    assert!(alloc.refs.contains(&"rt_alloc_count".to_string()));

    // Transitive chain across inputs.
    assert_eq!(function(s, "rt_chain_a").calls[0].callee, "rt_chain_b");
    assert_eq!(function(s, "rt_chain_b").calls[0].callee, "rt_chain_c");
}

#[test]
fn statics_are_promoted_and_linkonce_becomes_weak_odr() {
    let s = helpers();
    let clamp = function_prefixed(s, "clamp_small.llvm.");
    assert_eq!(clamp.original_name.as_deref(), Some("clamp_small"));
    assert_eq!(clamp.linkage, Linkage::External);
    assert_eq!(clamp.original_linkage, Linkage::Internal);
    let hash = clamp.name.trim_start_matches("clamp_small.llvm.");
    assert!(
        hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "{hash}"
    );
    let caller = function(s, "rt_clamp_add");
    assert_eq!(caller.calls[0].callee, clamp.name);
    assert_eq!(caller.locals, vec![clamp.name.clone()]);

    let next_id = function(s, "rt_next_object_id");
    let var = s.index().variable(&next_id.locals[0]).unwrap();
    assert_eq!(var.original_name.as_deref(), Some("rt_next_id"));
    assert!(!var.constant && !var.importable_initializer);
    assert_eq!(var.size, 8);

    // The C++ template / inline function `wv_hash` is linkonce_odr in the input.
    let hash_fn = function(s, "_Z7wv_hashPKc");
    assert_eq!(hash_fn.linkage, Linkage::WeakOdr);
    assert_eq!(hash_fn.original_linkage, Linkage::LinkOnceOdr);
    assert!(hash_fn.original_name.is_none());
    assert!(hash_fn.is_eligible());

    // No local survives in the library, and nothing refers to an unpromoted local.
    let ctx = Context::new();
    let lib = Module::parse_bitcode(&ctx, s.library_bitcode().unwrap(), "lib").unwrap();
    lib.verify().unwrap();
    for f in lib.functions() {
        assert!(!f.linkage().is_local(), "{} is still local", f.name());
    }
    for g in lib.globals() {
        assert!(!g.linkage().is_local(), "{} is still local", g.name());
    }
    assert!(lib.function(&clamp.name).is_some());
}

#[test]
fn variables_and_initializers() {
    let s = helpers();
    let squares = s.index().variable("rt_squares").unwrap();
    assert!(squares.constant && squares.importable_initializer);
    assert_eq!(squares.size, 64 * 4);
    let crc = function(s, "rt_crc32");
    let table = s.index().variable(&crc.locals[0]).unwrap();
    assert_eq!(table.original_name.as_deref(), Some("crc_table"));
    assert!(table.constant && table.importable_initializer);
    assert_eq!(table.size, 1024);
    let counter = s.index().variable("rt_shared_counter").unwrap();
    assert!(!counter.constant && !counter.importable_initializer);
    let tls = s.index().variable("rt_tls_depth").unwrap();
    assert!(tls.thread_local && !tls.importable_initializer);
    // The computed-goto label table holds blockaddresses: never copied.
    let labels = s
        .index()
        .variables
        .iter()
        .find(|v| v.original_name.as_deref() == Some("rt_dispatch.labels"))
        .unwrap();
    assert!(labels.constant && !labels.importable_initializer);

    // The intern table's dynamic initializer, promoted to an external name.
    let inits = &s.index().initializers;
    assert_eq!(inits.len(), 1, "{inits:?}");
    assert_eq!(inits[0].priority, 65535);
    assert!(inits[0]
        .function
        .starts_with("_GLOBAL__sub_I_values.cpp.llvm."));
    let ctor = function(s, &inits[0].function);
    assert_eq!(ctor.original_linkage, Linkage::Internal);
    assert_eq!(ctor.linkage, Linkage::External);
}

#[test]
fn every_shard_parses_verifies_and_defines_exactly_its_function() {
    let s = helpers();
    let mut shards = 0;
    let ctx = Context::new();
    for f in &s.index().functions {
        assert_eq!(f.shard.is_some(), f.is_eligible(), "{}", f.name);
        let Some(_) = f.shard else { continue };
        shards += 1;
        let bytes = s.shard(f).unwrap();
        let m = Module::parse_bitcode(&ctx, bytes, &f.name).unwrap();
        m.verify().unwrap();
        let defined: Vec<String> = m
            .functions()
            .filter(|g| !g.is_declaration())
            .map(|g| g.name())
            .collect();
        assert_eq!(defined, vec![f.name.clone()], "shard of {}", f.name);
        for g in m.functions() {
            if g.is_declaration() {
                assert!(
                    !g.is_dso_local(),
                    "{}: declaration {} is dso_local",
                    f.name,
                    g.name()
                );
            }
        }
        for g in m.globals() {
            if g.is_declaration() {
                assert!(
                    !g.is_dso_local(),
                    "{}: declaration {} is dso_local",
                    f.name,
                    g.name()
                );
            } else {
                // Only importable constants come as definitions.
                let v = s.index().variable(&g.name()).unwrap();
                assert!(v.importable_initializer, "{}: {} defined", f.name, g.name());
            }
        }
        assert_eq!(m.triple(), s.header().target_triple);
        let def = m.function(&f.name).unwrap();
        assert_eq!(def.linkage(), f.linkage);
        assert_eq!(
            def.string_attribute("target-cpu"),
            Some("x86-64".to_string()),
            "{} keeps its target attributes",
            f.name
        );
    }
    assert!(shards > 30, "{shards}");

    // Constant tables come with their initializers; mutable globals stay declarations.
    let m = Module::parse_bitcode(&ctx, s.shard(function(s, "rt_crc32")).unwrap(), "crc").unwrap();
    let table = m.global(&function(s, "rt_crc32").locals[0]).unwrap();
    assert!(!table.is_declaration() && table.is_constant());
    let m = Module::parse_bitcode(
        &ctx,
        s.shard(function(s, "rt_square_lookup")).unwrap(),
        "sq",
    )
    .unwrap();
    assert!(!m.global("rt_squares").unwrap().is_declaration());
    let m = Module::parse_bitcode(
        &ctx,
        s.shard(function(s, "rt_counter_increment")).unwrap(),
        "ctr",
    )
    .unwrap();
    assert!(m.global("rt_shared_counter").unwrap().is_declaration());
    // A shard is small: not the library.
    let shard_len = s
        .shard(function(s, "CreateWrappedValueFromInt"))
        .unwrap()
        .len();
    assert!(
        shard_len * 4 < s.library_bitcode().unwrap().len(),
        "{shard_len}"
    );
}

#[test]
fn builds_are_deterministic_and_round_trip_through_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let one = helpers().to_bytes();
    let two = Summary::build(
        &common::helper_bitcode(),
        &BuildOptions {
            jobs: Some(1),
            ..Default::default()
        },
    )
    .unwrap()
    .to_bytes();
    assert!(one == two, "two builds differ");
    // Input order does not matter either.
    let mut reversed = common::helper_bitcode();
    reversed.reverse();
    let three = Summary::build(&reversed, &BuildOptions::default()).unwrap();
    assert!(three.to_bytes() == one);

    let path = dir.path().join("helpers.thinjit");
    helpers().write(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), one);
    let loaded = Summary::load(&path).unwrap();
    assert_eq!(loaded.path(), path);
    assert_eq!(loaded.index(), helpers().index());
    assert_eq!(loaded.header(), helpers().header());
    assert_eq!(loaded.header().kind, SummaryKind::Full);
    assert_eq!(loaded.header().inputs.len(), 4);
    assert!(loaded.header().inputs.windows(2).all(|w| w[0] < w[1]));
    let f = function(&loaded, "CreateWrappedValueFromInt");
    assert_eq!(loaded.shard(f).unwrap(), helpers().shard(f).unwrap());
    // Overwriting replaces the file whole; no temporary files are left behind.
    helpers().write(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), one);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1);
    // A failed write names the destination and leaves nothing behind.
    let nowhere = dir.path().join("missing-dir").join("x.thinjit");
    let err = helpers().write(&nowhere).unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if *path == nowhere),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn per_input_and_merge_equal_one_shot() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = common::helper_bitcode();
    let partials = Summary::build_partials(&inputs, &BuildOptions::default()).unwrap();
    assert_eq!(partials.len(), inputs.len());
    // Through files, in a shuffled order.
    let mut loaded = Vec::new();
    for (i, p) in partials.iter().enumerate().rev() {
        assert_eq!(p.header().kind, SummaryKind::Partial);
        let path = dir.path().join(format!("{i}.part"));
        p.write(&path).unwrap();
        loaded.push(Summary::load(&path).unwrap());
    }
    let merged = Summary::merge(&loaded, &BuildOptions::default()).unwrap();
    assert!(
        merged.to_bytes() == helpers().to_bytes(),
        "merge differs from one-shot"
    );

    // A full summary is not a partial one.
    let err = Summary::merge(
        &[Summary::from_bytes(helpers().to_bytes(), "full.thinjit").unwrap()],
        &BuildOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Summary { path, .. } if path == Path::new("full.thinjit")),
        "{err}"
    );
}

/// Rewrites the file's header+index checksum after a test edited those bytes.
fn fix_checksum(bytes: &mut [u8]) {
    let h = u64::from_le_bytes(bytes[12..20].try_into().unwrap()) as usize;
    let i = u64::from_le_bytes(bytes[20..28].try_into().unwrap()) as usize;
    let sum = checksum64(&bytes[36..36 + h + i]);
    bytes[28..36].copy_from_slice(&sum.to_le_bytes());
}

fn load_error(bytes: Vec<u8>) -> String {
    let err = Summary::from_bytes(bytes, "bad.thinjit").unwrap_err();
    match &err {
        Error::Summary { path, .. } => assert_eq!(path, Path::new("bad.thinjit")),
        other => panic!("expected a summary error, got {other:?}"),
    }
    err.to_string()
}

#[test]
fn damaged_summaries_are_refused_with_the_file_named() {
    let good = helpers().to_bytes();

    let mut bad = good.clone();
    bad[0] = b'X';
    assert!(load_error(bad).contains("bad magic"));
    assert!(load_error(b"THIN".to_vec()).contains("bad magic"));
    assert!(load_error(good[..20].to_vec()).contains("truncated"));
    assert!(load_error(good[..200].to_vec()).contains("truncated"));
    // Cut inside the shard area: the last shard / library no longer fits.
    assert!(load_error(good[..good.len() - 10].to_vec()).contains("truncated"));

    let mut bad = good.clone();
    bad[8..12].copy_from_slice(&(thinjit::summary::FORMAT_VERSION + 1).to_le_bytes());
    assert!(load_error(bad).contains("format version"));

    // Another LLVM version: same-length string, checksum made consistent.
    let ours = thinjit::llvm::llvm_version();
    let other = format!("{}{}", (ours.as_bytes()[0] - 1) as char, &ours[1..]);
    let mut bad = good.clone();
    let at = bad
        .windows(ours.len())
        .position(|w| w == ours.as_bytes())
        .unwrap();
    bad[at..at + ours.len()].copy_from_slice(other.as_bytes());
    fix_checksum(&mut bad);
    let msg = load_error(bad);
    assert!(msg.contains(&other) && msg.contains(&ours), "{msg}");

    // A flipped byte in the index.
    let mut bad = good.clone();
    let at = bad
        .windows(b"rt_noinline_add".len())
        .position(|w| w == b"rt_noinline_add")
        .unwrap();
    bad[at] ^= 0x20;
    assert!(load_error(bad).contains("damaged index"));
    // A damaged length field inside the index: the decoder must not allocate what it claims.
    let mut bad = good.clone();
    let h = u64::from_le_bytes(bad[12..20].try_into().unwrap()) as usize;
    bad[36 + h..36 + h + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    fix_checksum(&mut bad);
    assert!(load_error(bad).contains("damaged index"));

    // A flipped byte in a shard is found when the shard is asked for, naming the function.
    let f = function(helpers(), "CreateWrappedValueFromInt").clone();
    let mut bad = good.clone();
    let area_start = good.len()
        - helpers().header().library.len as usize
        - helpers()
            .index()
            .functions
            .iter()
            .filter_map(|f| f.shard)
            .map(|r| r.len as usize)
            .sum::<usize>();
    let r = f.shard.unwrap();
    bad[area_start + r.offset as usize + 40] ^= 0xFF;
    let s = Summary::from_bytes(bad, "bad.thinjit").unwrap();
    let err = s.shard(&f).unwrap_err().to_string();
    assert!(
        err.contains("bad.thinjit")
            && err.contains("CreateWrappedValueFromInt")
            && err.contains("checksum"),
        "{err}"
    );
    assert!(s.shard(function(&s, "rt_noinline_add")).is_ok());
}

#[test]
fn check_target_names_both_targets() {
    let s = helpers();
    let triple = s.header().target_triple.clone();
    let dl = s.header().data_layout.clone();
    s.check_target(&triple, &dl).unwrap();
    s.check_target("x86_64-unknown-linux-gnu", "").unwrap();
    let err = s
        .check_target("aarch64-unknown-linux-gnu", &dl)
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Summary { .. }));
    assert!(
        msg.contains(&triple) && msg.contains("aarch64-unknown-linux-gnu"),
        "{msg}"
    );
    let err = s
        .check_target(&triple, "e-m:e-p:32:32")
        .unwrap_err()
        .to_string();
    assert!(err.contains("e-m:e-p:32:32") && err.contains(&dl), "{err}");
}

#[test]
fn bad_inputs_are_typed_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let opts = BuildOptions::default();

    let missing = dir.path().join("missing.bc");
    let err = Summary::build(std::slice::from_ref(&missing), &opts).unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if *path == missing),
        "{err}"
    );

    let invalid = write(dir.path(), "invalid.ll", "define i32 @f( {\n");
    let err = Summary::build(std::slice::from_ref(&invalid), &opts).unwrap_err();
    assert!(
        matches!(&err, Error::Parse { what, .. } if what.contains("invalid.ll")),
        "{err}"
    );
    let bad_bc = dir.path().join("garbage.bc");
    std::fs::write(&bad_bc, b"BC\xC0\xDEgarbage").unwrap();
    let err = Summary::build(std::slice::from_ref(&bad_bc), &opts).unwrap_err();
    assert!(err.to_string().contains("garbage.bc"), "{err}");

    let a = write(dir.path(), "a.ll", "define i32 @dup() {\n  ret i32 1\n}\n");
    let b = write(dir.path(), "b.ll", "define i32 @dup() {\n  ret i32 2\n}\n");
    let err = Summary::build(&[a.clone(), b.clone()], &opts).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Link { .. }), "{msg}");
    assert!(
        msg.contains("a.ll") && msg.contains("b.ll") && msg.contains("`dup`"),
        "{msg}"
    );

    // Locals of the same name in two inputs do not clash: each is promoted under its input's hash.
    let c = write(
        dir.path(),
        "c.ll",
        "define internal i32 @same() {\n  ret i32 1\n}\ndefine i32 @use_c() {\n  %v = call i32 @same()\n  ret i32 %v\n}\n",
    );
    let d = write(
        dir.path(),
        "d.ll",
        "define internal i32 @same() {\n  ret i32 2\n}\ndefine i32 @use_d() {\n  %v = call i32 @same()\n  ret i32 %v\n}\n",
    );
    let s = Summary::build(&[c, d], &opts).unwrap();
    let sames: Vec<_> = s
        .index()
        .functions
        .iter()
        .filter(|f| f.original_name.as_deref() == Some("same"))
        .collect();
    assert_eq!(sames.len(), 2);
    assert_ne!(sames[0].name, sames[1].name);
}

#[test]
fn c_sources_and_directories_are_compiled_with_clang_args() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    write(
        &src,
        "lib.c",
        "static int twice(int x) { return 2 * x; }\nint answer(void) { return twice(VALUE); }\n",
    );
    write(&src, "notes.txt", "ignored");
    let opts = BuildOptions {
        clang_args: vec!["-DVALUE=21".into()],
        ..Default::default()
    };
    let s = Summary::build(std::slice::from_ref(&src), &opts).unwrap();
    assert_eq!(s.header().inputs.len(), 1);
    assert!(s.header().inputs[0].name.ends_with("lib.c"));
    let f = function(&s, "answer");
    assert!(f.is_eligible());
    // -O2 folded twice(21).
    let ctx = Context::new();
    let m = Module::parse_bitcode(&ctx, s.shard(f).unwrap(), "answer").unwrap();
    assert!(m.print().contains("ret i32 42"), "{}", m.print());

    // Without the define, clang fails and the error names the source.
    let err = Summary::build(std::slice::from_ref(&src), &BuildOptions::default()).unwrap_err();
    assert!(
        matches!(&err, Error::SummaryBuild { what, .. } if what.ends_with("lib.c")),
        "{err}"
    );
}

#[test]
fn progress_is_reported() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let opts = BuildOptions {
        progress: Some(Arc::new(move |_| {
            seen.fetch_add(1, Ordering::Relaxed);
        })),
        jobs: Some(2),
        ..Default::default()
    };
    Summary::build(&common::helper_bitcode(), &opts).unwrap();
    assert!(calls.load(Ordering::Relaxed) >= 4);
}

#[test]
fn synthetic_libraries_summarize_and_scripts_link() {
    use thinjit_cli::synth;
    let dir = tempfile::tempdir().unwrap();
    let text = synth::generate_library(300, 7);
    assert_eq!(text, synth::generate_library(300, 7), "deterministic");
    assert_ne!(text, synth::generate_library(300, 8));
    let lib = write(dir.path(), "synth.ll", &text);
    let s = Summary::build(std::slice::from_ref(&lib), &BuildOptions::default()).unwrap();
    assert_eq!(s.index().functions.len(), 300);
    assert!(s.index().functions.iter().all(|f| f.is_eligible()));
    // Statics are promoted; tables are importable constants; counters are mutable.
    let promoted = s
        .index()
        .functions
        .iter()
        .filter(|f| f.original_name.is_some())
        .count();
    assert_eq!(
        promoted,
        (0..300).filter(|&i| synth::is_internal(i)).count()
    );
    assert!(s
        .index()
        .variables
        .iter()
        .any(|v| v.constant && v.importable_initializer));
    assert!(s.index().variables.iter().any(|v| !v.constant));
    assert!(s
        .index()
        .variables
        .iter()
        .any(|v| v.original_name.is_some()));
    // Long tail: some big functions, mostly small ones; a real call graph.
    let sizes: Vec<u32> = s
        .index()
        .functions
        .iter()
        .map(|f| f.instruction_count)
        .collect();
    let small = sizes.iter().filter(|&&n| n < 30).count();
    assert!(small > 150 && sizes.iter().any(|&n| n > 100), "{sizes:?}");
    let edges: usize = s.index().functions.iter().map(|f| f.calls.len()).sum();
    assert!(edges > 200 && edges < 1200, "{edges}");

    let script = synth::generate_script(300, 5, 1);
    let ctx = Context::new();
    let m = Module::parse_ir(&ctx, script.as_bytes(), "script.ll").unwrap();
    m.verify().unwrap();
    let declared: Vec<String> = m
        .functions()
        .filter(|f| f.is_declaration())
        .map(|f| f.name())
        .collect();
    assert_eq!(declared.len(), 5);
    for d in &declared {
        assert!(function(&s, d).is_eligible(), "{d}");
        assert_eq!(function(&s, d).linkage, Linkage::External);
    }
}

fn run_bin(bin: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new(bin).args(args).output().unwrap()
}

#[test]
fn cli_builds_merges_and_shows() {
    let dir = tempfile::tempdir().unwrap();
    let pre = env!("CARGO_BIN_EXE_precompute-summary");
    let thinjit = env!("CARGO_BIN_EXE_thinjit");
    let inputs = common::helper_bitcode();
    let one = dir.path().join("one.thinjit");
    let mut args: Vec<&std::ffi::OsStr> = inputs.iter().map(|p| p.as_os_str()).collect();
    args.extend(["-o".as_ref(), one.as_os_str(), "-j".as_ref(), "2".as_ref()]);
    let out = run_bin(pre, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(
        line.contains("functions") && line.contains("importable") && line.contains("shard bytes"),
        "{line}"
    );
    // Not a terminal: no progress bar on stderr.
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read(&one).unwrap() == helpers().to_bytes());

    let parts = dir.path().join("parts");
    let mut args: Vec<&std::ffi::OsStr> = vec!["--per-input".as_ref()];
    args.extend(inputs.iter().map(|p| p.as_os_str()));
    args.extend(["-o".as_ref(), parts.as_os_str()]);
    let out = run_bin(pre, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let part_files: Vec<PathBuf> = std::fs::read_dir(&parts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(part_files.len(), inputs.len());
    let merged = dir.path().join("merged.thinjit");
    let mut args: Vec<&std::ffi::OsStr> = vec!["merge".as_ref()];
    args.extend(part_files.iter().map(|p| p.as_os_str()));
    args.extend(["-o".as_ref(), merged.as_os_str()]);
    let out = run_bin(pre, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read(&merged).unwrap() == std::fs::read(&one).unwrap());

    let out = run_bin(
        thinjit,
        &["summary".as_ref(), "show".as_ref(), one.as_os_str()],
    );
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "rt_sum_varargs",
        "NOT importable: variadic (calls va_start)",
        "NOT importable: contains inline asm",
        "NOT importable: takes a blockaddress",
        "NOT importable: optnone",
        "NOT importable: interposable linkage",
        "static `clamp_small`",
        "WeakOdr (was LinkOnceOdr)",
        "[noinline]",
        "[alwaysinline]",
        "initializers: 1",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
    let out = run_bin(
        thinjit,
        &[
            "summary".as_ref(),
            "show".as_ref(),
            "--json".as_ref(),
            one.as_os_str(),
        ],
    );
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["index"]["functions"].as_array().unwrap().len(),
        helpers().index().functions.len()
    );
    assert_eq!(
        json["header"]["llvm_version"],
        thinjit::llvm::llvm_version()
    );

    // Errors: message names the file, exit status 1, no output file left behind.
    let bad = write(dir.path(), "bad.ll", "this is not IR\n");
    let target = dir.path().join("never.thinjit");
    let out = run_bin(pre, &[bad.as_os_str(), "-o".as_ref(), target.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.ll"));
    assert!(!target.exists());
    let out = run_bin(
        thinjit,
        &["summary".as_ref(), "show".as_ref(), bad.as_os_str()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad magic"));
}

#[test]
fn call_edge_hotness_follows_profile_data() {
    let s = Summary::build(
        &[common::fixture("summary_profile.ll")],
        &BuildOptions::default(),
    )
    .unwrap();
    let edge = |caller: &str, callee: &str| {
        function(&s, caller)
            .calls
            .iter()
            .find(|c| c.callee == callee)
            .unwrap_or_else(|| panic!("{caller} -> {callee}"))
            .hotness
    };
    assert_eq!(edge("hot_caller", "callee_a"), Hotness::Hot);
    assert_eq!(edge("cold_caller", "callee_a"), Hotness::Cold);
    assert_eq!(edge("split_caller", "callee_b"), Hotness::Hot);
    assert_eq!(edge("split_caller", "callee_c"), Hotness::Cold);
    assert_eq!(edge("warm_caller", "callee_d"), Hotness::None);
    // Without a profile summary, an edge is Unknown unless the IR marks it cold or hot.
    assert_eq!(
        function(helpers(), "rt_chain_a").calls[0].hotness,
        Hotness::Unknown
    );
}

/// LLVM's own module summary (`opt -module-summary`) is the oracle for instruction counts.
#[test]
fn instruction_counts_match_llvm_module_summary() {
    let s = helpers();
    let mut compared = 0;
    for bc in common::helper_bitcode() {
        let opt = std::process::Command::new(common::llvm_tool("opt"))
            .args(["-module-summary", "-o", "-"])
            .arg(&bc)
            .output()
            .unwrap();
        assert!(opt.status.success());
        let dis = std::process::Command::new(common::llvm_tool("llvm-dis"))
            .args(["-o", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(&opt.stdout)?;
                child.wait_with_output()
            })
            .unwrap();
        let text = String::from_utf8_lossy(&dis.stdout);
        for line in text.lines().filter(|l| l.contains("summaries: (function:")) {
            let name = line
                .split("name: \"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let insts: u32 = line
                .split("insts: ")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            // Locals were renamed; match them through their source name within this input.
            let ours = s.index().function(name).or_else(|| {
                s.index().functions.iter().find(|f| {
                    f.original_name.as_deref() == Some(name)
                        && s.index()
                            .functions
                            .iter()
                            .filter(|g| g.original_name.as_deref() == Some(name))
                            .count()
                            == 1
                })
            });
            let ours = ours.unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(ours.instruction_count, insts, "{name}");
            compared += 1;
        }
    }
    assert!(compared > 40, "{compared}");
}

#[test]
fn summary_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Summary>();
}

/// A shard is directly usable by an importer: linked into the seed's script as `available_externally`, O3
/// inlines `CreateWrappedValueFromInt` and the one remaining call goes to `rt_alloc`.
#[test]
fn a_shard_imports_into_the_seed_script_and_inlines() {
    let s = helpers();
    let f = function(s, "CreateWrappedValueFromInt");
    let ctx = Context::new();
    let mut script = Module::parse_ir(&ctx, common::SEED_SCRIPT.as_bytes(), "seed.ll").unwrap();
    script.set_triple(&s.header().target_triple);
    script.set_data_layout(&s.header().data_layout);
    let shard = Module::parse_bitcode(&ctx, s.shard(f).unwrap(), "shard").unwrap();
    let def = shard.function(&f.name).unwrap();
    def.set_linkage(Linkage::AvailableExternally);
    // Inline compatibility: script functions take the helper's target attributes.
    let cpu = def.string_attribute("target-cpu").unwrap();
    let features = def.string_attribute("target-features").unwrap();
    for g in script
        .functions()
        .filter(|g| !g.is_declaration())
        .collect::<Vec<_>>()
    {
        g.set_string_attribute("target-cpu", &cpu);
        g.set_string_attribute("target-features", &features);
    }
    script.link_in(shard).unwrap();
    script.verify().unwrap();
    script
        .run_passes("default<O3>", None, &thinjit::llvm::PassOptions::default())
        .unwrap();
    let text = script.print();
    let wrapped = text
        .split("define ")
        .find(|d| d.contains("@f_WRAPPED"))
        .unwrap();
    assert!(!wrapped.contains("@CreateWrappedValueFromInt"), "{text}");
    assert!(wrapped.contains("@rt_alloc"), "{text}");
    assert!(script
        .function("CreateWrappedValueFromInt")
        .map_or(true, |g| g.is_declaration()));
}

#[test]
fn shards_handle_aliases_pointer_tables_comdats_and_unpromotable_locals() {
    let s = Summary::build(
        &[common::fixture("summary_shapes.ll")],
        &BuildOptions::default(),
    )
    .unwrap();
    let ctx = Context::new();
    let shard = |name: &str| {
        let f = function(&s, name);
        let m = Module::parse_bitcode(&ctx, s.shard(f).unwrap(), name).unwrap();
        m.verify().unwrap();
        m
    };

    // The pointer table comes with its initializer; the strings it points at are declared (promoted names).
    let m = shard("name_of");
    let names = m.global("names").unwrap();
    assert!(!names.is_declaration());
    let strings: Vec<_> = m
        .globals()
        .filter(|g| g.name().starts_with(".str."))
        .collect();
    assert_eq!(strings.len(), 2);
    assert!(strings
        .iter()
        .all(|g| g.is_declaration() && !g.is_dso_local()));
    assert!(strings.iter().all(|g| g.name().contains(".llvm.")));
    let table = s.index().variable("names").unwrap();
    assert_eq!(table.refs.len(), 2);

    // A static taken by address is promoted and referenced, not called.
    let get = function(&s, "get_callback");
    assert_eq!(get.refs.len(), 1);
    assert!(get.refs[0].starts_with("callback.llvm."));
    assert_eq!(get.locals, get.refs);
    assert!(get.calls.is_empty());
    let cb = function(&s, &get.refs[0]);
    assert_eq!(cb.original_name.as_deref(), Some("callback"));
    assert!(cb.locals[0].starts_with("counter.llvm."));
    shard(&get.refs[0]);

    // Calls through an alias are edges to the alias; the shard declares it. Hidden declarations become default
    // visibility (a hidden declaration would have to be dso_local).
    let via = function(&s, "via_alias");
    let callees: Vec<_> = via.calls.iter().map(|c| c.callee.as_str()).collect();
    assert_eq!(callees, vec!["impl_alias", "tmpl"]);
    let m = shard("via_alias");
    assert!(m.function("impl_alias").unwrap().is_declaration());
    assert!(m.function("tmpl").unwrap().is_declaration());
    let hidden = m.global("hidden_decl").unwrap();
    assert!(!hidden.is_dso_local());
    assert_eq!(hidden.visibility(), thinjit::llvm::Visibility::Default);

    // linkonce_odr in a comdat: weak_odr in the library, no comdat needed in its shard.
    let t = function(&s, "tmpl");
    assert_eq!(
        (t.linkage, t.original_linkage),
        (Linkage::WeakOdr, Linkage::LinkOnceOdr)
    );
    assert!(!shard("tmpl").print().contains("comdat"));

    // A local named in llvm.used beside module asm keeps its name: referencing it makes a function ineligible.
    let pinned = function(&s, "reads_pinned");
    assert_eq!(
        pinned.not_eligible,
        vec![NotEligible::UnpromotableReference("pinned".into())]
    );
    assert!(pinned.shard.is_none());
}

/// Helpers built with debug info: every shard still parses and verifies (debug metadata travels with the body).
#[test]
fn shards_of_helpers_built_with_debug_info_verify() {
    let helpers_dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("helpers");
    let include = format!("-I{}", helpers_dir.join("include").display());
    let opts = BuildOptions {
        clang_args: vec!["-g".into(), include],
        ..Default::default()
    };
    let s = Summary::build(
        &[
            helpers_dir.join("runtime.c"),
            helpers_dir.join("values.cpp"),
        ],
        &opts,
    )
    .unwrap();
    let ctx = Context::new();
    let mut with_debug = 0;
    for f in s.index().functions.iter().filter(|f| f.shard.is_some()) {
        let m = Module::parse_bitcode(&ctx, s.shard(f).unwrap(), &f.name).unwrap();
        m.verify().unwrap();
        if m.print().contains("!DISubprogram") {
            with_debug += 1;
        }
    }
    assert!(with_debug > 20, "{with_debug}");
    assert_eq!(
        function(&s, "rt_sum_varargs").not_eligible,
        vec![NotEligible::VaStart]
    );
}

/// Issue 17: a partial summary carries its input's per-input work (analysis, shards, promoted bitcode), and
/// `merge` only combines: every function's summary and shard in the merged file is the one its partial holds.
#[test]
fn partials_carry_the_per_input_work_and_merge_only_combines_them() {
    let inputs = common::helper_bitcode();
    let partials = Summary::build_partials(&inputs, &BuildOptions::default()).unwrap();
    let merged = Summary::merge(&partials, &BuildOptions::default()).unwrap();
    let mut from_partials = 0;
    for p in &partials {
        assert_eq!(p.header().library_parts.len(), 1);
        assert!(
            !p.index().functions.is_empty(),
            "{}: the partial has no analysis",
            p.path().display()
        );
        for f in &p.index().functions {
            let m = function(&merged, &f.name);
            if f.not_eligible.contains(&NotEligible::Declaration) || m.linkage != f.linkage {
                continue;
            }
            let mut expected = f.clone();
            expected.shard = m.shard;
            assert_eq!(m, &expected, "{} in {}", f.name, p.path().display());
            if f.shard.is_some() {
                assert_eq!(p.shard(f).unwrap(), merged.shard(m).unwrap(), "{}", f.name);
                from_partials += 1;
            }
        }
    }
    assert!(from_partials > 20, "{from_partials} shards");
    // The library is one part per input, linked when asked for: every helper defined once, constructors kept.
    assert_eq!(merged.header().library_parts.len(), inputs.len());
    let ctx = Context::new();
    let library = Module::parse_bitcode(&ctx, merged.library_bitcode().unwrap(), "lib").unwrap();
    library.verify().unwrap();
    for f in merged
        .index()
        .functions
        .iter()
        .filter(|f| f.shard.is_some())
    {
        let g = library
            .function(&f.name)
            .unwrap_or_else(|| panic!("{}", f.name));
        assert!(!g.is_declaration(), "{}", f.name);
    }
    assert!(library.global("llvm.global_ctors").is_some());
}

/// Issue 17: per-input analysis gives every function the summary an analysis of the whole linked library gives
/// (the helpers linked into one module by `llvm-link` first, then summarized as one input). Promoted names carry
/// their input's hash, so they are compared without it.
#[test]
fn per_input_analysis_equals_the_analysis_of_the_linked_library() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = common::helper_bitcode();
    let linked = dir.path().join("linked.bc");
    let status = std::process::Command::new(common::llvm_tool("llvm-link"))
        .args(&inputs)
        .arg("-o")
        .arg(&linked)
        .status()
        .unwrap();
    assert!(status.success());
    let whole = Summary::build(&[linked], &BuildOptions::default()).unwrap();
    let per_input = helpers();
    let (a, b) = (normalized_index(per_input), normalized_index(&whole));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }
    // The importable functions and their shards' definitions are the same.
    for f in per_input
        .index()
        .functions
        .iter()
        .filter(|f| f.shard.is_some())
    {
        let ctx = Context::new();
        let shard = Module::parse_bitcode(&ctx, per_input.shard(f).unwrap(), "shard").unwrap();
        let defined = |m: &Module<'_>| -> Vec<String> {
            let mut d: Vec<String> = m
                .functions()
                .filter(|g| !g.is_declaration())
                .map(|g| local_as_l(&g.name()))
                .chain(
                    m.globals()
                        .filter(|g| !g.is_declaration())
                        .map(|g| local_as_l(&g.name())),
                )
                .collect();
            d.sort();
            d
        };
        if local_as_l(&f.name) == "L" {
            // Promoted `static` functions cannot be paired by name (see `local_as_l`).
            continue;
        }
        let name = f.name.clone();
        let twin = whole
            .index()
            .functions
            .iter()
            .find(|g| g.name == name && g.shard.is_some())
            .unwrap_or_else(|| panic!("{name} not importable in the linked library's summary"));
        let ctx2 = Context::new();
        let other = Module::parse_bitcode(&ctx2, whole.shard(twin).unwrap(), "shard").unwrap();
        assert_eq!(defined(&shard), defined(&other), "shard of {name}");
    }
}

/// A promoted local's name (`<name>.llvm.<16 hex>`) as `L`: `llvm-link` renames colliding locals (`.str.3` →
/// `.str.3.5`) before promotion sees them, so only their number and roles can be compared.
fn local_as_l(name: &str) -> String {
    if regex_free_strip(name).ends_with(".llvm.H") {
        "L".into()
    } else {
        name.to_owned()
    }
}

/// Every function, variable and initializer of `s`'s index as a string, promoted locals' names replaced by `L`,
/// sorted.
fn normalized_index(s: &Summary) -> Vec<String> {
    let names = |v: &[String]| -> Vec<String> {
        let mut v: Vec<String> = v.iter().map(|n| local_as_l(n)).collect();
        v.sort();
        v
    };
    let mut out: Vec<String> = Vec::new();
    for f in &s.index().functions {
        let mut f = f.clone();
        f.shard = None;
        if local_as_l(&f.name) == "L" {
            f.name = "L".into();
            f.original_name = f.original_name.map(|_| "L".into());
        }
        f.refs = names(&f.refs);
        f.locals = names(&f.locals);
        for c in &mut f.calls {
            c.callee = local_as_l(&c.callee);
        }
        f.calls
            .sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        for r in &mut f.not_eligible {
            if let NotEligible::UnpromotableReference(n) = r {
                *n = local_as_l(n);
            }
        }
        out.push(format!("{f:?}"));
    }
    for v in &s.index().variables {
        let mut v = v.clone();
        if local_as_l(&v.name) == "L" {
            v.name = "L".into();
            v.original_name = v.original_name.map(|_| "L".into());
        }
        v.refs = names(&v.refs);
        out.push(format!("{v:?}"));
    }
    for i in &s.index().initializers {
        out.push(format!("init {} {}", i.priority, local_as_l(&i.function)));
    }
    out.sort();
    out
}

/// `name.llvm.0123456789abcdef` → `name.llvm.H`, wherever it appears in `s`.
fn regex_free_strip(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find(".llvm.") {
        out.push_str(&rest[..at + 6]);
        let tail = &rest[at + 6..];
        let hex = tail.bytes().take_while(|b| b.is_ascii_hexdigit()).count();
        if hex == 16 {
            out.push('H');
            rest = &tail[16..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// Issue 17: a function that reads a constant defined in another input still gets the constant's initializer
/// in its shard (so O3 can fold it), in the one-shot build and in the merge of partials; weak duplicates resolve
/// to one definition; two strong definitions name both inputs.
#[test]
fn cross_input_constants_weak_duplicates_and_strong_clashes() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.ll",
        r#"
@table = constant [4 x i32] [i32 10, i32 20, i32 30, i32 40]
@counter = global i32 0
define linkonce_odr i32 @twice(i32 %x) {
  %y = mul i32 %x, 2
  ret i32 %y
}
define i32 @a_user(i32 %x) {
  %r = call i32 @twice(i32 %x)
  ret i32 %r
}
"#,
    );
    let b = write(
        dir.path(),
        "b.ll",
        r#"
@table = external constant [4 x i32]
@counter = external global i32
define linkonce_odr i32 @twice(i32 %x) {
  %y = add i32 %x, %x
  %z = add i32 %y, 0
  ret i32 %z
}
define i32 @lookup(i64 %i) {
  %p = getelementptr [4 x i32], ptr @table, i64 0, i64 %i
  %v = load i32, ptr %p
  %c = load i32, ptr @counter
  %s = add i32 %v, %c
  %t = call i32 @twice(i32 %s)
  ret i32 %t
}
"#,
    );
    let inputs = vec![b.clone(), a.clone()];
    let one_shot = Summary::build(&inputs, &BuildOptions::default()).unwrap();
    let partials = Summary::build_partials(&inputs, &BuildOptions::default()).unwrap();
    let merged = Summary::merge(&partials, &BuildOptions::default()).unwrap();
    assert!(merged.to_bytes() == one_shot.to_bytes());

    // `b.ll` alone only declares the table; the merged shard defines it with its initializer.
    let part_b = partials
        .iter()
        .find(|p| p.header().inputs[0].name.ends_with("b.ll"))
        .unwrap();
    let ctx = Context::new();
    let in_part = Module::parse_bitcode(
        &ctx,
        part_b.shard(function(part_b, "lookup")).unwrap(),
        "part",
    )
    .unwrap();
    assert!(in_part.global("table").unwrap().is_declaration());
    let shard = Module::parse_bitcode(
        &ctx,
        merged.shard(function(&merged, "lookup")).unwrap(),
        "merged",
    )
    .unwrap();
    shard.verify().unwrap();
    let table = shard.global("table").unwrap();
    assert!(!table.is_declaration(), "{}", shard.print());
    assert!(shard.print().contains("i32 30"));
    // Mutable state stays one instance: declared, never copied.
    assert!(shard.global("counter").unwrap().is_declaration());

    // The weak duplicate resolves to the first input's copy (`a.ll`: 2 instructions), as LLVM's linker does.
    let twice = function(&merged, "twice");
    assert_eq!(twice.instruction_count, 2);
    assert_eq!(twice.linkage, Linkage::WeakOdr);
    assert_eq!(
        merged
            .index()
            .functions
            .iter()
            .filter(|f| f.name == "twice")
            .count(),
        1
    );

    // Two strong definitions: an error naming both inputs and the symbol.
    let c = write(
        dir.path(),
        "c.ll",
        "define i32 @a_user(i32 %x) {\n  ret i32 %x\n}\n",
    );
    let err = Summary::build(&[a.clone(), c.clone()], &BuildOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, Error::Link { .. })
            && msg.contains("a.ll")
            && msg.contains("c.ll")
            && msg.contains("a_user"),
        "{msg}"
    );
}

/// Issue 17: a damaged or mismatched partial is a typed error naming the file.
#[test]
fn damaged_or_mismatched_partials_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let partials =
        Summary::build_partials(&common::helper_bitcode(), &BuildOptions::default()).unwrap();
    let paths: Vec<PathBuf> = partials
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let path = dir.path().join(format!("{i}.thinjit-part"));
            p.write(&path).unwrap();
            path
        })
        .collect();
    let load_all = || -> Vec<Summary> { paths.iter().map(|p| Summary::load(p).unwrap()).collect() };

    // A flipped byte in the first shard of a partial: the checksum catches it at merge time.
    let victim = partials
        .iter()
        .position(|p| p.index().functions.iter().any(|f| f.shard.is_some()))
        .unwrap();
    let mut bytes = std::fs::read(&paths[victim]).unwrap();
    let area = bytes.len()
        - partials[victim].header().library.len as usize
        - partials[victim]
            .index()
            .functions
            .iter()
            .filter_map(|f| f.shard.map(|s| s.len as usize))
            .sum::<usize>();
    bytes[area + 3] ^= 0x40;
    std::fs::write(&paths[victim], &bytes).unwrap();
    let err = Summary::merge(&load_all(), &BuildOptions::default()).unwrap_err();
    assert!(
        matches!(&err, Error::Summary { path, message } if *path == paths[victim] && message.contains("checksum")),
        "{err}"
    );
    partials[victim].write(&paths[victim]).unwrap();

    // The same input twice: both files named.
    let mut twice = load_all();
    twice.push(Summary::load(&paths[0]).unwrap());
    let err = Summary::merge(&twice, &BuildOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, Error::SummaryBuild { .. })
            && msg.contains(&paths[0].display().to_string())
            && msg.contains(&partials[0].header().inputs[0].name),
        "{msg}"
    );

    // A partial for another target: every file named, and the triples.
    let other = write(
        dir.path(),
        "arm.ll",
        "target triple = \"aarch64-unknown-linux-gnu\"\ndefine i32 @arm_only(i32 %x) {\n  ret i32 %x\n}\n",
    );
    let arm = Summary::build_partials(&[other], &BuildOptions::default()).unwrap();
    let arm_path = dir.path().join("arm.thinjit-part");
    arm[0].write(&arm_path).unwrap();
    let mut mixed = load_all();
    mixed.push(Summary::load(&arm_path).unwrap());
    let msg = Summary::merge(&mixed, &BuildOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("arm.thinjit-part") && msg.contains("aarch64"),
        "{msg}"
    );
}
