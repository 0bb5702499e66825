//! Start-up and caching (issue 9): the precompiled runtime object in the summary, the fallback to bitcode
//! when it does not suit the JIT, and the compiled-script cache (memory, disk, several processes); the shared
//! runtime the system loader maps (issue 17).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use thinjit::cache::{CacheOutcome, ScriptCache};
use thinjit::import::ImportConfig;
use thinjit::jit::RuntimeMode;
use thinjit::jit::{Engine, EngineBuilder, OptLevel, RuntimeSource};
use thinjit::summary::{BuildOptions, ObjectTarget, Summary, FORMAT_VERSION};

use crate::common::helper_bitcode;

const EVENT_CTOR: usize = 1;
const EVENT_DTOR: usize = 2;
const EVENT_SCRIPT_ATEXIT: usize = 4;

fn build(object: Option<ObjectTarget>) -> Summary {
    Summary::build(
        &helper_bitcode(),
        &BuildOptions {
            object,
            ..BuildOptions::default()
        },
    )
    .unwrap()
}

/// The bundled helpers' summary with a runtime object for the host, built once.
fn with_object() -> Arc<Summary> {
    static S: OnceLock<Arc<Summary>> = OnceLock::new();
    S.get_or_init(|| Arc::new(build(Some(ObjectTarget::host()))))
        .clone()
}

fn example(name: &str) -> Vec<u8> {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .join("examples/scripts")
        .join(name);
    std::fs::read(&path).unwrap()
}

fn call_i64(engine: &Engine, name: &str) -> i64 {
    let f = engine.lookup::<extern "C" fn() -> i64>(name).unwrap();
    // SAFETY: the example entries take nothing and return an i64.
    unsafe { f.call() }
}

fn ctor_runs(engine: &Engine) -> i32 {
    let f = engine
        .lookup::<extern "C" fn() -> i32>("rt_intern_ctor_runs")
        .unwrap();
    // SAFETY: `int32_t rt_intern_ctor_runs(void)`.
    unsafe { f.call() }
}

const COUNTER_SCRIPT: &str = r#"
declare i64 @rt_counter_increment()
define i64 @bump_NAME() {
  %r = call i64 @rt_counter_increment()
  ret i64 %r
}
"#;

/// What a JIT-resident engine computes over the bundled helpers: the examples' results and the shared counter
/// seen from two scripts.
fn run_scripts(engine: &Engine) -> Vec<i64> {
    engine.add_script("table", &example("table.ll")).unwrap();
    engine.add_script("mix", &example("mix.ll")).unwrap();
    let mut out = vec![call_i64(engine, "table_main"), call_i64(engine, "mix_main")];
    for name in ["a", "b"] {
        engine
            .add_script(name, COUNTER_SCRIPT.replace("NAME", name).as_bytes())
            .unwrap();
        out.push(call_i64(engine, &format!("bump_{name}")));
    }
    out
}

host_callbacks!(object_host);
host_callbacks!(bitcode_host);

#[test]
fn engine_from_the_runtime_object_runs_scripts_like_bitcode_with_initializers_once() {
    let summary = with_object();
    let object = summary.runtime_object().expect("built with an object");
    assert_eq!(object.target, ObjectTarget::host());
    assert!(!object.ctors.is_empty());
    assert!(object
        .defined
        .iter()
        .any(|s| s == "CreateWrappedValueFromInt"));

    let from_object = object_host::register(EngineBuilder::new().summary(Arc::clone(&summary)))
        .build()
        .unwrap();
    let report = from_object.startup_report().clone();
    assert_eq!(report.runtime, RuntimeSource::Object, "{report:?}");
    assert_eq!(report.notice, None);
    assert_eq!(report.runtime_bytes as u64, object.object.len);
    assert!(report.times.total >= report.times.materialize + report.times.initializers);
    assert_eq!(from_object.initializers(), object.ctors.as_slice());
    assert_eq!(object_host::events(EVENT_CTOR), 1);
    assert_eq!(ctor_runs(&from_object), 1);

    let from_bitcode = bitcode_host::register(
        EngineBuilder::new()
            .summary(Arc::clone(&summary))
            .runtime_object(false),
    )
    .build()
    .unwrap();
    assert_eq!(
        from_bitcode.startup_report().runtime,
        RuntimeSource::Bitcode
    );
    assert!(from_bitcode.startup_report().notice.is_some());
    // Both paths see the same symbols and run the same constructors.
    assert_eq!(from_bitcode.helper_symbols(), from_object.helper_symbols());
    assert_eq!(from_bitcode.initializers(), from_object.initializers());

    let a = run_scripts(&from_object);
    let b = run_scripts(&from_bitcode);
    assert_eq!(a, b);
    assert_eq!(
        a,
        vec![6302, 1001, 2, 3],
        "table, mix (bumps the counter once), then one shared counter seen from two scripts"
    );
    assert_eq!(ctor_runs(&from_object), 1, "initializers once");
    assert_eq!(object_host::events(EVENT_CTOR), 1);
    assert_eq!(object_host::events(EVENT_DTOR), 0);
    drop(from_object);
    assert_eq!(object_host::events(EVENT_DTOR), 1, "destructor at drop");
    drop(from_bitcode);
    assert_eq!(bitcode_host::events(EVENT_CTOR), 1);
    assert_eq!(bitcode_host::events(EVENT_DTOR), 1);
}

/// A feature the host's CPU lacks (the host feature string lists every feature, `-` for absent ones).
fn feature_the_host_lacks() -> String {
    ObjectTarget::host()
        .features
        .split(',')
        .filter_map(|f| f.strip_prefix('-'))
        .find(|f| !f.is_empty())
        .expect("the host lacks some feature")
        .to_owned()
}

host_callbacks!(mismatch_host);

#[test]
fn object_for_a_cpu_feature_the_host_lacks_falls_back_to_bitcode_with_a_notice() {
    let missing = feature_the_host_lacks();
    let host = ObjectTarget::host();
    let target = ObjectTarget {
        features: host
            .features
            .replace(&format!("-{missing}"), &format!("+{missing}")),
        ..host
    };
    let summary = Arc::new(build(Some(target.clone())));
    assert_eq!(summary.runtime_object().unwrap().target, target);

    let engine = mismatch_host::register(EngineBuilder::new().summary(summary))
        .build()
        .unwrap();
    let report = engine.startup_report();
    assert_eq!(report.runtime, RuntimeSource::Bitcode);
    let notice = report.notice.as_deref().unwrap();
    assert!(
        notice.contains("lacks") && notice.contains(&missing),
        "{notice}"
    );
    assert_eq!(ctor_runs(&engine), 1);
    assert_eq!(run_scripts(&engine), vec![6302, 1001, 2, 3]);
    drop(engine);
    assert_eq!(mismatch_host::events(EVENT_CTOR), 1);
    assert_eq!(mismatch_host::events(EVENT_DTOR), 1);
}

#[test]
fn object_targets_are_checked_by_triple_cpu_and_features() {
    let host = ObjectTarget::host();
    assert!(host.check_runs_on(&host).is_ok());
    let other_vendor = ObjectTarget {
        triple: host.triple.replacen("-pc-", "-unknown-", 1),
        ..host.clone()
    };
    assert!(other_vendor.check_runs_on(&host).is_ok());
    let arm = ObjectTarget {
        triple: "aarch64-unknown-linux-gnu".into(),
        ..host.clone()
    };
    assert!(arm.check_runs_on(&host).unwrap_err().contains("aarch64"));
    let baseline = ObjectTarget {
        cpu: "x86-64".into(),
        features: "+sse2,+cx8".into(),
        ..host.clone()
    };
    assert!(baseline.check_runs_on(&host).is_ok());
    let other_cpu = ObjectTarget {
        cpu: "some-other-cpu".into(),
        ..host.clone()
    };
    assert!(other_cpu.check_runs_on(&host).unwrap_err().contains("CPU"));
}

host_callbacks!(damaged_host);

#[test]
fn runtime_object_is_deterministic_versioned_and_a_damaged_one_falls_back() {
    let bytes = with_object().to_bytes();
    assert_eq!(
        build(Some(ObjectTarget::host())).to_bytes(),
        bytes,
        "same inputs, same bytes"
    );
    assert_eq!(FORMAT_VERSION, 5);
    let without = build(None);
    assert!(without.runtime_object().is_none());
    assert_ne!(without.identity(), with_object().identity());

    // Files of the previous formats (1: no runtime object; 2: a library without its ThinLTO summary; 3: the
    // library as one linked module, partial summaries without their input's analysis; 4: no shared runtime) are
    // refused by version, with a request to rebuild.
    for version in [1u32, 2, 3, 4] {
        let mut old = bytes.clone();
        old[8..12].copy_from_slice(&version.to_le_bytes());
        let err = Summary::from_bytes(old, "old.thinjit")
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("format version {version}")), "{err}");
        assert!(err.contains("rebuild"), "{err}");
    }

    // The object is the last blob of the file: damage one of its bytes.
    let len = with_object().runtime_object().unwrap().object.len as usize;
    let mut damaged = bytes.clone();
    let at = damaged.len() - len / 2;
    damaged[at] ^= 0x5a;
    let damaged = Arc::new(Summary::from_bytes(damaged, "damaged.thinjit").unwrap());
    assert!(damaged.runtime_object_bytes().is_err());
    let engine = damaged_host::register(EngineBuilder::new().summary(damaged))
        .build()
        .unwrap();
    assert_eq!(engine.startup_report().runtime, RuntimeSource::Bitcode);
    let notice = engine.startup_report().notice.clone().unwrap();
    assert!(notice.contains("damaged"), "{notice}");
    assert_eq!(ctor_runs(&engine), 1);
}

host_callbacks!(cli_host);

#[test]
fn precompute_summary_builds_an_object_for_the_target_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("h.thinjit");
    let status = Command::new(env!("CARGO_BIN_EXE_precompute-summary"))
        .args(helper_bitcode())
        .args(["-q", "--object", "--target-cpu", "x86-64", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(stdout.contains("runtime object:"), "{stdout}");
    let summary = Arc::new(Summary::load(&out).unwrap());
    let object = summary.runtime_object().unwrap();
    assert_eq!(object.target.cpu, "x86-64");
    let engine = cli_host::register(EngineBuilder::new().summary(summary))
        .build()
        .unwrap();
    assert_eq!(engine.startup_report().runtime, RuntimeSource::Object);
    assert_eq!(ctor_runs(&engine), 1);
}

/// A script with a `__cxa_atexit` registration through its dso handle (what a C++ static in a script does).
const ATEXIT_SCRIPT: &str = r#"
@__dso_handle = external hidden global i8
declare i32 @__cxa_atexit(ptr, ptr, ptr)
declare void @thinjit_host_event(i32)
declare i64 @rt_counter_increment()
define internal void @on_exit(ptr %arg) {
  call void @thinjit_host_event(i32 4)
  ret void
}
define i64 @with_atexit() {
  %r = call i32 @__cxa_atexit(ptr @on_exit, ptr null, ptr @__dso_handle)
  %c = call i64 @rt_counter_increment()
  %s = sext i32 %r to i64
  %t = add i64 %c, %s
  ret i64 %t
}
"#;

host_callbacks!(cache_host);

#[test]
fn cached_script_gives_the_same_result_and_reports_a_hit() {
    let cache = Arc::new(ScriptCache::in_memory(64 << 20));
    let engine = |cache: &Arc<ScriptCache>| {
        cache_host::register(EngineBuilder::new().summary(with_object()))
            .cache(Arc::clone(cache))
            .build()
            .unwrap()
    };
    let first = engine(&cache);
    let h = first.add_script("mix", &example("mix.ll")).unwrap();
    let miss = h.report().unwrap();
    assert_eq!(miss.cache, Some(CacheOutcome::Miss));
    assert!(!miss.from_cache());
    assert!(miss.times.optimize > std::time::Duration::ZERO);
    let uncached = call_i64(&first, "mix_main");
    drop(first);

    let second = engine(&cache);
    let h = second.add_script("mix", &example("mix.ll")).unwrap();
    let hit = h.report().unwrap();
    assert_eq!(hit.cache, Some(CacheOutcome::MemoryHit));
    assert!(hit.from_cache());
    assert_eq!(
        hit.times.import + hit.times.optimize,
        std::time::Duration::ZERO
    );
    assert_eq!(call_i64(&second, "mix_main"), uncached);
    assert_eq!(hit.defined, miss.defined);
    assert_eq!(
        hit.import, miss.import,
        "the import report travels with the object"
    );

    // Remove and add again in the same engine: a hit, and the code still runs.
    h.remove().unwrap();
    let again = second.add_script("mix", &example("mix.ll")).unwrap();
    assert!(again.report().unwrap().from_cache());
    assert_eq!(call_i64(&second, "mix_main"), uncached);

    // The script's own atexit registrations work from a cached object: its dso handle gets its registry.
    let before = cache_host::events(EVENT_SCRIPT_ATEXIT);
    let compiled = second
        .add_script("atexit", ATEXIT_SCRIPT.as_bytes())
        .unwrap();
    assert!(!compiled.report().unwrap().from_cache());
    let counter = call_i64(&second, "with_atexit");
    compiled.remove().unwrap();
    assert_eq!(cache_host::events(EVENT_SCRIPT_ATEXIT), before + 1);
    let cached = second
        .add_script("atexit", ATEXIT_SCRIPT.as_bytes())
        .unwrap();
    assert!(cached.report().unwrap().from_cache());
    assert_eq!(
        call_i64(&second, "with_atexit"),
        counter + 1,
        "registration accepted (0) and the one shared counter"
    );
    cached.remove().unwrap();
    assert_eq!(cache_host::events(EVENT_SCRIPT_ATEXIT), before + 2);
    drop(second);
    assert_eq!(cache_host::events(EVENT_SCRIPT_ATEXIT), before + 2);
}

host_callbacks!(key_host);

#[test]
fn a_changed_summary_config_or_opt_level_misses() {
    let cache = Arc::new(ScriptCache::in_memory(64 << 20));
    let outcome = |summary: Arc<Summary>, config: ImportConfig, level: OptLevel| {
        let engine = key_host::register(EngineBuilder::new().summary(summary))
            .import_config(config)
            .opt_level(level)
            .cache(Arc::clone(&cache))
            .build()
            .unwrap();
        let h = engine.add_script("table", &example("table.ll")).unwrap();
        assert_eq!(call_i64(&engine, "table_main"), 6302);
        h.report().unwrap().cache.unwrap()
    };
    let config = ImportConfig::default();
    assert_eq!(
        outcome(with_object(), config.clone(), OptLevel::O3),
        CacheOutcome::Miss
    );
    assert!(outcome(with_object(), config.clone(), OptLevel::O3).is_hit());
    let smaller = ImportConfig {
        import_instr_limit: 5,
        ..config.clone()
    };
    assert_eq!(
        outcome(with_object(), smaller.clone(), OptLevel::O3),
        CacheOutcome::Miss
    );
    assert!(outcome(with_object(), smaller, OptLevel::O3).is_hit());
    assert_eq!(
        outcome(with_object(), config.clone(), OptLevel::O1),
        CacheOutcome::Miss
    );
    // Another summary (same helpers, no runtime object: a different file, a different identity).
    assert_eq!(
        outcome(Arc::new(build(None)), config.clone(), OptLevel::O3),
        CacheOutcome::Miss
    );
    // Host-native mode is another configuration too.
    let native = EngineBuilder::new()
        .summary(with_object())
        .runtime_mode(RuntimeMode::HostNative)
        .shared_library(crate::common::helper_shared_library())
        .cache(Arc::clone(&cache))
        .build()
        .unwrap();
    let h = native.add_script("table", &example("table.ll")).unwrap();
    assert_eq!(h.report().unwrap().cache, Some(CacheOutcome::Miss));
}

host_callbacks!(disk_host);

#[test]
fn a_corrupted_cache_entry_misses_and_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        let cache = ScriptCache::on_disk(dir.path(), 64 << 20, 64 << 20).unwrap();
        let engine = disk_host::register(EngineBuilder::new().summary(with_object()))
            .cache(cache)
            .build()
            .unwrap();
        let h = engine.add_script("mix", &example("mix.ll")).unwrap();
        let outcome = h.report().unwrap().cache.unwrap();
        (outcome, call_i64(&engine, "mix_main"))
    };
    assert_eq!(run(), (CacheOutcome::Miss, 1001));
    assert_eq!(run(), (CacheOutcome::DiskHit, 1001));
    let entries = ScriptCache::on_disk(dir.path(), 0, u64::MAX)
        .unwrap()
        .disk_entries();
    assert_eq!(entries.len(), 1);
    let path = entries[0].path.clone();
    let mut raw = std::fs::read(&path).unwrap();
    let middle = raw.len() / 2;
    raw[middle] ^= 0xff;
    std::fs::write(&path, &raw).unwrap();

    assert_eq!(
        run(),
        (CacheOutcome::Miss, 1001),
        "damaged: a miss, same result"
    );
    let entries = ScriptCache::on_disk(dir.path(), 0, u64::MAX)
        .unwrap()
        .disk_entries();
    assert_eq!(entries.len(), 1);
    assert!(entries[0].valid, "replaced by a whole entry");
    assert_eq!(run(), (CacheOutcome::DiskHit, 1001));

    // Truncated to nothing: a miss again.
    std::fs::write(&path, b"").unwrap();
    assert_eq!(run(), (CacheOutcome::Miss, 1001));
    assert_eq!(run(), (CacheOutcome::DiskHit, 1001));

    // A whole entry (magic, length and SHA-256 agree) whose payload is not a compiled script of this thinjit
    // (a stale layout): a miss, replaced by a fresh compile.
    use sha2::Digest;
    let raw = std::fs::read(&path).unwrap();
    let payload = b"not a compiled script".as_slice();
    let mut stale = raw[..8].to_vec();
    stale.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    stale.extend_from_slice(&sha2::Sha256::digest(payload));
    stale.extend_from_slice(payload);
    std::fs::write(&path, &stale).unwrap();
    assert!(
        ScriptCache::on_disk(dir.path(), 0, u64::MAX)
            .unwrap()
            .disk_entries()[0]
            .valid
    );
    assert_eq!(run(), (CacheOutcome::Miss, 1001));
    let replaced = ScriptCache::on_disk(dir.path(), 0, u64::MAX)
        .unwrap()
        .disk_entries();
    assert!(
        replaced[0].valid && std::fs::read(&path).unwrap() != stale,
        "replaced"
    );
    assert_eq!(run(), (CacheOutcome::DiskHit, 1001));
}

fn demo(summary: &Path, cache: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_thinjit"))
        .arg("demo")
        .arg("--summary")
        .arg(summary)
        .arg("--cache-dir")
        .arg(cache)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

#[test]
fn two_processes_filling_one_cache_directory_leave_it_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let summary: PathBuf = dir.path().join("helpers.thinjit");
    with_object().write(&summary).unwrap();
    let cache = dir.path().join("cache");

    let (a, b) = (demo(&summary, &cache), demo(&summary, &cache));
    let mut outputs = Vec::new();
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        outputs.push(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    for out in &outputs {
        assert!(out.contains("table_main() = 6302"), "{out}");
        assert!(out.contains("mix_main() = 1001"), "{out}");
        assert!(out.contains("runtime: precompiled object"), "{out}");
    }

    // Every entry is whole, no temporary file is left, and a third process hits everything.
    let entries = ScriptCache::on_disk(&cache, 0, u64::MAX)
        .unwrap()
        .disk_entries();
    assert_eq!(entries.len(), 10, "5 scripts x 2 runtime modes");
    assert!(entries.iter().all(|e| e.valid), "{entries:?}");
    let leftovers: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let third = demo(&summary, &cache).wait_with_output().unwrap();
    assert!(third.status.success());
    let out = String::from_utf8_lossy(&third.stdout);
    assert_eq!(count(&out, "cache: hit (disk)"), 10, "{out}");
    assert_eq!(count(&out, "cache: miss"), 0, "{out}");
    assert!(out.contains("mix_main() = 1001"), "{out}");
}

host_callbacks!(threads_host);

#[test]
fn scripts_compile_and_hit_the_cache_from_several_threads() {
    let engine = threads_host::register(EngineBuilder::new().summary(with_object()))
        .cache(ScriptCache::in_memory(64 << 20))
        .build()
        .unwrap();
    let engine = &engine;
    std::thread::scope(|s| {
        for t in 0..4 {
            s.spawn(move || {
                let name = format!("t{t}");
                let source = COUNTER_SCRIPT.replace("NAME", &name);
                for round in 0..3 {
                    let h = engine.add_script(&name, source.as_bytes()).unwrap();
                    assert_eq!(h.report().unwrap().from_cache(), round > 0);
                    let f = h
                        .lookup::<extern "C" fn() -> i64>(&format!("bump_{name}"))
                        .unwrap();
                    // SAFETY: `i64 bump_<name>(void)`, loaded while `h` lives.
                    assert!(unsafe { f.call() } >= 1);
                    h.remove().unwrap();
                }
            });
        }
    });
    let stats = engine.cache().unwrap().stats();
    assert_eq!((stats.misses, stats.memory_hits), (4, 8));
    // The one counter saw all 12 calls.
    let h = engine
        .add_script("last", COUNTER_SCRIPT.replace("NAME", "last").as_bytes())
        .unwrap();
    let f = h.lookup::<extern "C" fn() -> i64>("bump_last").unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { f.call() }, 13);
}

host_callbacks!(lazy_host);

#[test]
fn a_lazy_engine_starts_from_the_runtime_object_and_refuses_a_cache() {
    let engine = lazy_host::register(EngineBuilder::new().summary(with_object()))
        .lazy(true)
        .build()
        .unwrap();
    assert_eq!(engine.startup_report().runtime, RuntimeSource::Object);
    engine.add_script("table", &example("table.ll")).unwrap();
    assert_eq!(call_i64(&engine, "table_main"), 6302);
    assert_eq!(ctor_runs(&engine), 1);

    let err = EngineBuilder::new()
        .summary(with_object())
        .lazy(true)
        .cache(ScriptCache::in_memory(1 << 20))
        .build()
        .unwrap_err();
    assert!(matches!(err, thinjit::Error::Config { .. }), "{err}");
}

#[test]
fn merged_partials_with_an_object_equal_the_one_shot_build() {
    let options = BuildOptions {
        object: Some(ObjectTarget::host()),
        ..BuildOptions::default()
    };
    let partials = Summary::build_partials(&helper_bitcode(), &BuildOptions::default()).unwrap();
    let merged = Summary::merge(&partials, &options).unwrap();
    assert!(merged.runtime_object().is_some());
    assert!(merged.to_bytes() == with_object().to_bytes());
}

/// The bundled helpers' summary with a runtime object and the shared runtime, built once.
fn with_shared() -> Arc<Summary> {
    static S: OnceLock<Arc<Summary>> = OnceLock::new();
    S.get_or_init(|| {
        Arc::new(
            Summary::build(
                &helper_bitcode(),
                &BuildOptions {
                    object: Some(ObjectTarget::host()),
                    shared_runtime: true,
                    ..BuildOptions::default()
                },
            )
            .unwrap(),
        )
    })
    .clone()
}

/// A script that reads and writes the helpers' `rt_shared_counter` directly and returns its address.
const DIRECT_SCRIPT: &str = r#"
@rt_shared_counter = external global i64
define i64 @poke_NAME(i64 %add) {
  %v = load i64, ptr @rt_shared_counter
  %n = add i64 %v, %add
  store i64 %n, ptr @rt_shared_counter
  ret i64 %n
}
define ptr @where_NAME() {
  ret ptr @rt_shared_counter
}
"#;

fn poke(engine: &Engine, name: &str, add: i64) -> i64 {
    let f = engine
        .lookup::<extern "C" fn(i64) -> i64>(&format!("poke_{name}"))
        .unwrap();
    // SAFETY: `i64 poke_NAME(i64)`.
    unsafe { f.call(add) }
}

fn counter_address(engine: &Engine, name: &str) -> u64 {
    let f = engine
        .lookup::<extern "C" fn() -> *const i64>(&format!("where_{name}"))
        .unwrap();
    // SAFETY: `ptr where_NAME()`.
    unsafe { f.call() as u64 }
}

fn counter_get(engine: &Engine) -> i64 {
    let f = engine
        .lookup::<extern "C" fn() -> i64>("rt_counter_get")
        .unwrap();
    // SAFETY: `int64_t rt_counter_get(void)`.
    unsafe { f.call() }
}

/// The mappings of this process whose file is the shared runtime's anonymous file: `(start, end)`.
fn shared_runtime_mappings() -> Vec<(u64, u64)> {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| l.contains("memfd:thinjit-runtime"))
        .filter_map(|l| {
            let (start, end) = l.split_whitespace().next()?.split_once('-')?;
            Some((
                u64::from_str_radix(start, 16).ok()?,
                u64::from_str_radix(end, 16).ok()?,
            ))
        })
        .collect()
}

host_callbacks!(shared_host);
host_callbacks!(jitlink_host);

#[test]
fn shared_runtime_runs_scripts_like_jitlink_with_one_instance_initializers_once_and_destructors_at_drop(
) {
    let summary = with_shared();
    let object = summary.runtime_object().unwrap();
    let shared = object.shared.as_ref().expect("built with a shared runtime");
    assert!(shared.image.len > 0);

    let engine = shared_host::register(EngineBuilder::new().summary(Arc::clone(&summary)))
        .build()
        .unwrap();
    let report = engine.startup_report().clone();
    assert_eq!(report.runtime, RuntimeSource::SharedObject, "{report:?}");
    assert_eq!(report.notice, None);
    assert_eq!(report.runtime_bytes as u64, shared.image.len);
    // The constructor ran once, and its call of the host callback `thinjit_host_event` (bound through the
    // engine's table, not by the system loader, which cannot see it) reached this host.
    assert_eq!(engine.initializers(), object.ctors.as_slice());
    assert_eq!(shared_host::events(EVENT_CTOR), 1);
    assert_eq!(ctor_runs(&engine), 1);

    // The helpers' code runs from the image the system loader mapped.
    let mapped = shared_runtime_mappings();
    let f = engine
        .lookup::<extern "C" fn() -> i64>("rt_counter_get")
        .unwrap()
        .address();
    assert!(
        mapped.iter().any(|&(s, e)| (s..e).contains(&f)),
        "{f:#x} not in {mapped:x?}"
    );

    let jitlink = jitlink_host::register(
        EngineBuilder::new()
            .summary(Arc::clone(&summary))
            .shared_runtime(false),
    )
    .build()
    .unwrap();
    assert_eq!(jitlink.startup_report().runtime, RuntimeSource::Object);
    assert_eq!(jitlink.helper_symbols(), engine.helper_symbols());
    assert_eq!(jitlink.initializers(), engine.initializers());
    let (a, b) = (run_scripts(&engine), run_scripts(&jitlink));
    assert_eq!(a, b);
    assert_eq!(a, vec![6302, 1001, 2, 3]);

    // One instance of the helper global: a script's direct access and the runtime's functions see the same
    // variable at the same address.
    engine
        .add_script("direct", DIRECT_SCRIPT.replace("NAME", "d").as_bytes())
        .unwrap();
    let before = counter_get(&engine);
    assert_eq!(poke(&engine, "d", 100), before + 100);
    assert_eq!(counter_get(&engine), before + 100);
    let address = counter_address(&engine, "d");
    assert_eq!(
        engine
            .lookup::<extern "C" fn()>("rt_shared_counter")
            .unwrap()
            .address(),
        address
    );
    assert!(mapped.iter().any(|&(s, e)| (s..e).contains(&address)));

    // C++ exceptions thrown and caught inside the image (the loader registers its unwind tables; the
    // personality routine and `__cxa_*` are imports bound by the engine).
    let div = engine
        .lookup::<extern "C" fn(i32, i32) -> i32>("rt_checked_div")
        .unwrap();
    // SAFETY: `int32_t rt_checked_div(int32_t, int32_t)`.
    assert_eq!(unsafe { (div.call(7, 2), div.call(7, 0)) }, (3, i32::MIN));
    // Thread-local helper state: the loader gives each thread its own copy.
    let enter = engine
        .lookup::<extern "C" fn() -> i32>("rt_tls_enter")
        .unwrap()
        .address();
    let call_enter = move || {
        // SAFETY: `int32_t rt_tls_enter(void)`, at an address of the live engine's runtime.
        let f: extern "C" fn() -> i32 = unsafe { std::mem::transmute(enter as usize) };
        (f(), f())
    };
    assert_eq!(call_enter(), (1, 2));
    assert_eq!(std::thread::spawn(call_enter).join().unwrap(), (1, 2));

    assert_eq!(ctor_runs(&engine), 1, "initializers once");
    assert_eq!(shared_host::events(EVENT_CTOR), 1);
    assert_eq!(shared_host::events(EVENT_DTOR), 0);
    drop(engine);
    assert_eq!(
        shared_host::events(EVENT_DTOR),
        1,
        "destructor at drop, once"
    );
    assert_eq!(shared_host::events(EVENT_CTOR), 1);
    drop(jitlink);
    assert_eq!(jitlink_host::events(EVENT_DTOR), 1);
    assert_eq!(shared_host::events(EVENT_DTOR), 1);
}

host_callbacks!(first_host);
host_callbacks!(second_host);

#[test]
fn two_engines_get_their_own_shared_runtime_instance() {
    let summary = with_shared();
    let first = first_host::register(EngineBuilder::new().summary(Arc::clone(&summary)))
        .build()
        .unwrap();
    let second = second_host::register(EngineBuilder::new().summary(Arc::clone(&summary)))
        .build()
        .unwrap();
    for e in [&first, &second] {
        assert_eq!(e.startup_report().runtime, RuntimeSource::SharedObject);
        e.add_script("direct", DIRECT_SCRIPT.replace("NAME", "x").as_bytes())
            .unwrap();
    }
    assert_ne!(counter_address(&first, "x"), counter_address(&second, "x"));
    assert_eq!(poke(&first, "x", 5), 5);
    assert_eq!(poke(&first, "x", 5), 10);
    assert_eq!(poke(&second, "x", 7), 7);
    assert_eq!((counter_get(&first), counter_get(&second)), (10, 7));
    // Each instance ran its own constructor once, reaching its own engine's host callbacks.
    assert_eq!(first_host::events(EVENT_CTOR), 1);
    assert_eq!(second_host::events(EVENT_CTOR), 1);
    assert_eq!((ctor_runs(&first), ctor_runs(&second)), (1, 1));
    assert!(shared_runtime_mappings().len() >= 2);
    drop(first);
    assert_eq!(first_host::events(EVENT_DTOR), 1);
    assert_eq!(second_host::events(EVENT_DTOR), 0);
    // The second instance is untouched by the first one's unmapping.
    assert_eq!(counter_get(&second), 7);
    assert_eq!(poke(&second, "x", 1), 8);
    drop(second);
    assert_eq!(second_host::events(EVENT_DTOR), 1);
}

host_callbacks!(damaged_shared_host);

#[test]
fn a_damaged_shared_runtime_is_a_typed_error_and_the_engine_links_the_object_instead() {
    let summary = with_shared();
    let bytes = summary.to_bytes();
    let shared_len = summary
        .runtime_object()
        .unwrap()
        .shared
        .as_ref()
        .unwrap()
        .image
        .len as usize;
    // The shared runtime is the last blob of the file.
    let mut damaged = bytes.clone();
    let at = damaged.len() - shared_len / 3;
    damaged[at] ^= 0x5a;
    let damaged = Arc::new(Summary::from_bytes(damaged, "damaged-shared.thinjit").unwrap());
    match damaged.shared_runtime_bytes() {
        Err(thinjit::Error::Summary { path, message }) => {
            assert_eq!(path, Path::new("damaged-shared.thinjit"));
            assert!(
                message.contains("shared runtime") && message.contains("damaged"),
                "{message}"
            );
        }
        other => panic!("expected Error::Summary, got {other:?}"),
    }
    // Strict use (a host's own LLJIT): a typed error naming the file, nothing defined.
    let jit = thinjit::llvm::orc::LlJit::new_host().unwrap();
    let mut runtime = thinjit::jit::ResidentRuntime::new(&jit, jit.main_jitdylib(), &[]).unwrap();
    match runtime.add_shared_runtime(&damaged) {
        Err(thinjit::Error::Summary { path, message }) => {
            assert_eq!(path, Path::new("damaged-shared.thinjit"));
            assert!(message.contains("damaged"), "{message}");
        }
        other => panic!("expected Error::Summary, got {other:?}"),
    }
    assert!(runtime.helper_symbols().is_empty());
    drop(runtime);
    // The engine falls back to JITLink with the reason.
    let engine = damaged_shared_host::register(EngineBuilder::new().summary(damaged))
        .build()
        .unwrap();
    let report = engine.startup_report();
    assert_eq!(report.runtime, RuntimeSource::Object);
    let notice = report.notice.clone().unwrap();
    assert!(
        notice.contains("shared runtime not used") && notice.contains("damaged-shared.thinjit"),
        "{notice}"
    );
    assert_eq!(ctor_runs(&engine), 1);
    assert_eq!(damaged_shared_host::events(EVENT_CTOR), 1);

    // Cut short: the file is refused as truncated, naming it.
    let truncated = bytes[..bytes.len() - shared_len / 2].to_vec();
    let err = Summary::from_bytes(truncated, "short.thinjit").unwrap_err();
    assert!(
        matches!(&err, thinjit::Error::Summary { path, .. } if path == Path::new("short.thinjit"))
    );
    assert!(err.to_string().contains("shared runtime"), "{err}");
}

#[test]
fn a_linker_that_makes_an_unusable_shared_object_is_a_build_error() {
    // A linker that keeps RELRO: the import slots would be read-only once loaded.
    let dir = tempfile::tempdir().unwrap();
    let linker = dir.path().join("ld-relro");
    std::fs::write(&linker, "#!/bin/sh\nexec ld \"$@\" -z relro\n").unwrap();
    let mut perms = std::fs::metadata(&linker).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&linker, perms).unwrap();
    let err = Summary::build(
        &helper_bitcode(),
        &BuildOptions {
            object: Some(ObjectTarget::host()),
            shared_runtime: true,
            linker: Some(linker),
            ..BuildOptions::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, thinjit::Error::SummaryBuild { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("RELRO"), "{err}");
}
