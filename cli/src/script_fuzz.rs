//! The script fuzzer: random valid modules, each added to an engine in a child process (`thinjit run
//! --no-call`, which imports, optimizes, compiles and links but calls nothing; lazily added modules are
//! compiled by looking their functions up with `--lookup`), and the outcomes triaged.
//!
//! Two generators: LLVM 19's `llvm-stress` (generic IR only), and [`generate`], which mixes calls to every
//! intrinsic LLVM knows, random target attributes, odd integer widths, vectors and aggregates, scalable
//! vectors, GC strategies, debug info, deep nesting and inline asm — the classes the pre-codegen check
//! ([`thinjit::check`]) is about. Every generated module is verified before use; one that fails is a
//! generator bug (counted in [`Report::invalid`]), not a finding.
//!
//! Outcomes: added; refused with a typed error, classified by which check or stage refused it
//! ([`classify`]); or a crash or hang of the child — a finding. Every finding is re-run with `--isolate` to
//! see whether isolated compilation contains it (a typed `CompileAborted` / `Timeout` error, the host alive),
//! and its module is kept in the findings directory for triage into the check, isolated mode, or a documented
//! LLVM bug.
//!
//! Used by the bounded run in the test suite and by `cargo bench --bench script_fuzz` (the longer run).

pub mod generate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where modules come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generator {
    /// `llvm-stress -seed=N` only.
    Stress,
    /// [`generate::module`]: intrinsics, target attributes, odd types, debug info, ...; every fourth seed
    /// also carries an `llvm-stress` body.
    Mixed,
}

/// What one run of the fuzzer does.
#[derive(Clone, Debug)]
pub struct Config {
    /// The `thinjit` executable.
    pub thinjit: PathBuf,
    /// A summary of the helpers (scripts run against it, JIT-resident).
    pub summary: PathBuf,
    /// `llvm-stress` (LLVM 19's).
    pub llvm_stress: PathBuf,
    /// Which generator.
    pub generator: Generator,
    /// Seeds to generate modules from.
    pub seeds: std::ops::Range<u64>,
    /// `llvm-stress -size` (instructions per module); seeds cycle through 1×, 2×, 4× and 8× of it.
    pub size: u32,
    /// Also add every N-th module lazily (`--lazy`, compiled by `--lookup` of its functions); 0: never.
    pub lazy_every: u64,
    /// Child processes run at once.
    pub jobs: usize,
    /// Time limit per child process.
    pub timeout: Duration,
    /// Where modules and findings are written.
    pub dir: PathBuf,
}

/// How one child process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The script was added.
    Added,
    /// A typed error (the first line of `error: …`, then its causes joined by ` | `).
    Refused(String),
    /// The child died (signal or unexpected status), with the last line it wrote to stderr.
    Crashed(String),
    /// The child did not finish in time (killed).
    Hung,
}

impl Outcome {
    /// `true` for a crash or a hang.
    pub fn is_finding(&self) -> bool {
        matches!(self, Outcome::Crashed(_) | Outcome::Hung)
    }

    /// The outcome's class: `added`, `crash`, `hang`, or [`classify`] of the refusal.
    pub fn class(&self) -> &'static str {
        match self {
            Outcome::Added => "added",
            Outcome::Refused(message) => classify(message),
            Outcome::Crashed(_) => "crash (finding)",
            Outcome::Hung => "hang (finding)",
        }
    }
}

/// Which check or stage a typed refusal came from, from its message.
pub fn classify(message: &str) -> &'static str {
    const CLASSES: &[(&str, &str)] = &[
        ("is not a CPU LLVM", "check: unknown target-cpu"),
        ("target-features entry", "check: unknown target feature"),
        ("cannot generate 64-bit", "check: subtarget without 64-bit"),
        ("is not an intrinsic LLVM knows", "check: unknown intrinsic"),
        (
            "is an intrinsic of target",
            "check: other target's intrinsic",
        ),
        ("which needs target feature", "check: x86 intrinsic feature"),
        (
            "cannot select on x86-64",
            "check: x86 intrinsic never selectable",
        ),
        ("change `", "check: mode feature"),
        (
            "integer reduction on a floating-point",
            "check: integer-only reduction on fp",
        ),
        ("has no scalable vectors", "check: scalable vectors"),
        ("uses scalable vectors", "check: scalable vectors"),
        ("garbage collector", "check: unknown gc"),
        ("an integer type of", "check: integer width"),
        (
            "aggregate or vector value of",
            "check: aggregate value size",
        ),
        ("a type of", "check: type size"),
        ("debug type", "check: cyclic debug type"),
        ("thread-local", "check: thread-local"),
        ("nest", "check: nesting depth"),
        ("code generation", "codegen error diagnostic"),
        ("inline asm", "codegen error diagnostic"),
        ("verif", "verifier"),
        ("pars", "parse"),
    ];
    CLASSES
        .iter()
        .find(|(needle, _)| message.contains(needle))
        .map(|(_, class)| *class)
        .unwrap_or("other typed error")
}

/// A module that crashed or hung the child.
#[derive(Clone, Debug)]
pub struct Finding {
    /// Its seed and size.
    pub seed: u64,
    pub size: u32,
    /// Whether the finding came from the lazy run.
    pub lazy: bool,
    /// What happened in-process.
    pub outcome: Outcome,
    /// What happened with `--isolate` (eager).
    pub isolated: Outcome,
    /// The module, kept.
    pub module: PathBuf,
}

/// The result of a run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Child processes run (eager and lazy, not counting isolated re-runs).
    pub executions: u64,
    /// Of those, lazy.
    pub lazy_executions: u64,
    /// Added cleanly.
    pub added: u64,
    /// Refused with a typed error, by its message with the module path replaced (deduplicated, with counts).
    pub refused: Vec<(String, u64)>,
    /// Executions per outcome class ([`Outcome::class`]).
    pub classes: Vec<(String, u64)>,
    /// Modules per generator part (`intrinsic:x86`, `debug-cycle`, ...).
    pub kinds: Vec<(String, u64)>,
    /// Generated modules the verifier refused (generator bugs: seed, message); not executed.
    pub invalid: Vec<(u64, String)>,
    /// Crashes and hangs.
    pub findings: Vec<Finding>,
    /// The mixed generator's intrinsic catalog: (intrinsics LLVM knows, intrinsics with a callable
    /// signature, signatures, intrinsics left out).
    pub catalog: Option<(usize, usize, usize, usize)>,
    /// The intrinsics left out of the catalog (name, why the generator's call did not verify).
    pub catalog_excluded: Vec<(String, String)>,
    /// Wall time.
    pub elapsed: Duration,
}

/// Runs `cmd` with a time limit and classifies how it ended.
fn run_child(cmd: &mut Command, timeout: Duration) -> std::io::Result<Outcome> {
    use std::os::unix::process::ExitStatusExt;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(s) = stderr.as_mut() {
            let _ = std::io::Read::read_to_string(s, &mut text);
        }
        text
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let text = reader.join().unwrap_or_default();
    let last = |t: &str| {
        t.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    Ok(match status {
        None => Outcome::Hung,
        Some(s) if s.success() => Outcome::Added,
        Some(s) if s.code() == Some(1) && text.contains("error: ") => {
            // `error: <context>` and anyhow's `Caused by:` lines, joined.
            let from = text.find("error: ").unwrap_or(0) + "error: ".len();
            let line = text[from..]
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && *l != "Caused by:")
                .map(|l| {
                    l.trim_start_matches(|c: char| c.is_ascii_digit() || c == ':')
                        .trim()
                })
                .collect::<Vec<_>>()
                .join(" | ");
            Outcome::Refused(line)
        }
        Some(s) => Outcome::Crashed(match s.signal() {
            Some(sig) => format!("signal {sig}: {}", last(&text)),
            None => format!("exit status {:?}: {}", s.code(), last(&text)),
        }),
    })
}

/// Generates the module of `seed` with `llvm-stress`.
fn stress(config: &Config, seed: u64, size: u32, path: &Path) -> std::io::Result<()> {
    let status = Command::new(&config.llvm_stress)
        .arg(format!("-seed={seed}"))
        .arg(format!("-size={size}"))
        .arg("-o")
        .arg(path)
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "llvm-stress -seed={seed} failed: {status}"
        )))
    }
}

/// How a module is added: eagerly, lazily (compiled by looking up `lookups`), or eagerly with `--isolate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Eager,
    Lazy,
    Isolated,
}

fn add(config: &Config, module: &Path, mode: Mode, lookups: &[String]) -> std::io::Result<Outcome> {
    let mut cmd = Command::new(&config.thinjit);
    cmd.arg("run")
        .arg(module)
        .arg("--summary")
        .arg(&config.summary)
        .arg("--no-call");
    match mode {
        Mode::Eager => {}
        Mode::Lazy => {
            cmd.arg("--lazy");
            for name in lookups {
                cmd.arg("--lookup").arg(name);
            }
        }
        Mode::Isolated => {
            cmd.arg("--isolate")
                .arg("--isolate-timeout")
                .arg(format!("{}", config.timeout.as_secs_f64() / 2.0));
        }
    }
    run_child(&mut cmd, config.timeout)
}

/// One seed's module on disk and what it defines, or why it is not run.
enum Prepared {
    Module {
        path: PathBuf,
        size: u32,
        defined: Vec<String>,
        kinds: Vec<&'static str>,
    },
    /// The verifier refused it: a generator bug.
    Invalid(String),
}

fn prepare(
    config: &Config,
    catalog: Option<&generate::Catalog>,
    seed: u64,
) -> std::io::Result<Prepared> {
    let size = config.size * (1 << (seed % 4));
    let path = config.dir.join(format!("module-{seed}.ll"));
    let Some(catalog) = catalog else {
        stress(config, seed, size, &path)?;
        return Ok(Prepared::Module {
            path,
            size,
            defined: Vec::new(),
            kinds: vec!["llvm-stress"],
        });
    };
    let body = if seed % 4 == 0 {
        stress(config, seed, config.size, &path)?;
        Some(std::fs::read_to_string(&path)?)
    } else {
        None
    };
    let generated = generate::module(catalog, seed, body.as_deref());
    std::fs::write(&path, &generated.text)?;
    let ctx = thinjit::llvm::Context::new();
    let checked = thinjit::llvm::Module::parse_ir(&ctx, generated.text.as_bytes(), "generated")
        .and_then(|m| m.verify());
    if let Err(e) = checked {
        let message = e.to_string();
        // Deep nesting is refused by the parser or verifier on purpose: that is the check, not a bug.
        let nesting = generated
            .kinds
            .iter()
            .any(|k| *k == "deep-constant" || *k == "deep-type")
            && message.contains("nest");
        if !nesting {
            return Ok(Prepared::Invalid(message));
        }
    }
    Ok(Prepared::Module {
        path,
        size: config.size,
        defined: generated.defined,
        kinds: generated.kinds,
    })
}

/// What one seed produced.
struct SeedResult {
    seed: u64,
    outcomes: Vec<(Mode, Outcome)>,
    kinds: Vec<&'static str>,
    invalid: Option<String>,
    findings: Vec<Finding>,
}

fn run_seed(
    config: &Config,
    catalog: Option<&generate::Catalog>,
    seed: u64,
) -> std::io::Result<SeedResult> {
    let mut result = SeedResult {
        seed,
        outcomes: Vec::new(),
        kinds: Vec::new(),
        invalid: None,
        findings: Vec::new(),
    };
    let (path, size, defined) = match prepare(config, catalog, seed)? {
        Prepared::Invalid(message) => {
            result.invalid = Some(message);
            return Ok(result);
        }
        Prepared::Module {
            path,
            size,
            defined,
            kinds,
        } => {
            result.kinds = kinds;
            (path, size, defined)
        }
    };
    let lazy = config.lazy_every > 0 && seed % config.lazy_every == 0 && !defined.is_empty();
    let modes: &[Mode] = if lazy {
        &[Mode::Eager, Mode::Lazy]
    } else {
        &[Mode::Eager]
    };
    let mut keep = false;
    for &mode in modes {
        let outcome = add(config, &path, mode, &defined)?;
        if outcome.is_finding() {
            keep = true;
            let isolated = add(config, &path, Mode::Isolated, &[])?;
            result.findings.push(Finding {
                seed,
                size,
                lazy: mode == Mode::Lazy,
                outcome: outcome.clone(),
                isolated,
                module: path.clone(),
            });
        }
        result.outcomes.push((mode, outcome));
    }
    if !keep {
        let _ = std::fs::remove_file(&path);
    }
    Ok(result)
}

/// Runs the fuzzer: `config.jobs` workers take seeds in order; the report is the same for any number of jobs.
pub fn run(config: &Config) -> std::io::Result<Report> {
    std::fs::create_dir_all(&config.dir)?;
    let start = Instant::now();
    let catalog = match config.generator {
        Generator::Stress => None,
        Generator::Mixed => Some(generate::Catalog::load(3)),
    };
    let next = AtomicU64::new(config.seeds.start);
    let results: Mutex<Vec<std::io::Result<SeedResult>>> = Mutex::default();
    std::thread::scope(|scope| {
        for _ in 0..config.jobs.max(1) {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= config.seeds.end {
                    break;
                }
                let r = run_seed(config, catalog.as_ref(), seed);
                results.lock().unwrap_or_else(|e| e.into_inner()).push(r);
            });
        }
    });
    let mut results = results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .collect::<std::io::Result<Vec<_>>>()?;
    results.sort_by_key(|r| r.seed);

    let mut report = Report::default();
    let mut refused: BTreeMap<String, u64> = BTreeMap::new();
    let mut classes: BTreeMap<String, u64> = BTreeMap::new();
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    for r in results {
        for k in &r.kinds {
            *kinds.entry((*k).to_owned()).or_default() += 1;
        }
        if let Some(message) = r.invalid {
            report.invalid.push((r.seed, message));
        }
        for (mode, outcome) in &r.outcomes {
            report.executions += 1;
            if *mode == Mode::Lazy {
                report.lazy_executions += 1;
            }
            let class = outcome.class();
            *classes
                .entry(if *mode == Mode::Lazy {
                    format!("{class} (lazy)")
                } else {
                    class.to_owned()
                })
                .or_default() += 1;
            match outcome {
                Outcome::Added => report.added += 1,
                Outcome::Refused(line) => {
                    let key = line.replace(&config.dir.display().to_string(), "<dir>");
                    *refused.entry(key).or_default() += 1;
                }
                _ => {}
            }
        }
        report.findings.extend(r.findings);
    }
    report.refused = refused.into_iter().collect();
    report.classes = classes.into_iter().collect();
    report.kinds = kinds.into_iter().collect();
    report.catalog = catalog
        .as_ref()
        .map(|c| (c.known, c.covered, c.callable.len(), c.excluded.len()));
    report.catalog_excluded = catalog.map(|c| c.excluded).unwrap_or_default();
    report.elapsed = start.elapsed();
    Ok(report)
}
