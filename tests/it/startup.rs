//! Start-up and caching (issue 9): the precompiled runtime object in the summary, the fallback to bitcode
//! when it does not suit the JIT, and the compiled-script cache (memory, disk, several processes).

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
    assert_eq!(FORMAT_VERSION, 4);
    let without = build(None);
    assert!(without.runtime_object().is_none());
    assert_ne!(without.identity(), with_object().identity());

    // Files of the previous formats (1: no runtime object; 2: a library without its ThinLTO summary; 3: the
    // library as one linked module, partial summaries without their input's analysis) are refused by version,
    // with a request to rebuild.
    for version in [1u32, 2, 3] {
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
