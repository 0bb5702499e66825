//! The script fuzzer: random valid modules from LLVM 19's `llvm-stress`, each added to an engine in a child
//! process (`thinjit run --no-call`, which imports, optimizes, compiles and links but calls nothing), and the
//! outcomes triaged.
//!
//! Outcomes: added; refused with a typed error (the check, a code generation diagnostic, ...); or a crash or
//! hang of the child — a finding. Every finding is re-run with `--isolate` to see whether isolated
//! compilation contains it (a typed `CompileAborted` / `Timeout` error, the host alive), and its module is
//! kept in the findings directory for triage into the check, isolated mode, or a documented LLVM bug.
//!
//! Used by the bounded run in the test suite and by `cargo bench --bench script_fuzz` (the longer run).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one run of the fuzzer does.
#[derive(Clone, Debug)]
pub struct Config {
    /// The `thinjit` executable.
    pub thinjit: PathBuf,
    /// A summary of the helpers (scripts run against it, JIT-resident).
    pub summary: PathBuf,
    /// `llvm-stress` (LLVM 19's).
    pub llvm_stress: PathBuf,
    /// Seeds to generate modules from.
    pub seeds: std::ops::Range<u64>,
    /// `llvm-stress -size` (instructions per module); seeds cycle through 1×, 2×, 4× and 8× of it.
    pub size: u32,
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
    /// A typed error (the first line of `error: …`).
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
}

/// A module that crashed or hung the child.
#[derive(Clone, Debug)]
pub struct Finding {
    /// Its seed and size.
    pub seed: u64,
    pub size: u32,
    /// What happened in-process.
    pub outcome: Outcome,
    /// What happened with `--isolate`.
    pub isolated: Outcome,
    /// The module, kept.
    pub module: PathBuf,
}

/// The result of a run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Modules generated and added (child processes run, not counting isolated re-runs).
    pub executions: u64,
    /// Added cleanly.
    pub added: u64,
    /// Refused with a typed error, by its first line (deduplicated, with counts).
    pub refused: Vec<(String, u64)>,
    /// Crashes and hangs.
    pub findings: Vec<Finding>,
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
            let line = text
                .lines()
                .find_map(|l| l.strip_prefix("error: "))
                .unwrap_or("")
                .to_owned();
            Outcome::Refused(line)
        }
        Some(s) => Outcome::Crashed(match s.signal() {
            Some(sig) => format!("signal {sig}: {}", last(&text)),
            None => format!("exit status {:?}: {}", s.code(), last(&text)),
        }),
    })
}

/// Generates the module of `seed` with `llvm-stress`.
fn generate(config: &Config, seed: u64, size: u32, path: &Path) -> std::io::Result<()> {
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

fn add(config: &Config, module: &Path, isolate: bool) -> std::io::Result<Outcome> {
    let mut cmd = Command::new(&config.thinjit);
    cmd.arg("run")
        .arg(module)
        .arg("--summary")
        .arg(&config.summary)
        .arg("--no-call");
    if isolate {
        cmd.arg("--isolate")
            .arg("--isolate-timeout")
            .arg(format!("{}", config.timeout.as_secs_f64() / 2.0));
    }
    run_child(&mut cmd, config.timeout)
}

/// Runs the fuzzer.
pub fn run(config: &Config) -> std::io::Result<Report> {
    std::fs::create_dir_all(&config.dir)?;
    let start = Instant::now();
    let mut report = Report::default();
    let mut refused: std::collections::BTreeMap<String, u64> = Default::default();
    for seed in config.seeds.clone() {
        let size = config.size * (1 << (seed % 4));
        let module = config.dir.join(format!("stress-{seed}-{size}.ll"));
        generate(config, seed, size, &module)?;
        let outcome = add(config, &module, false)?;
        report.executions += 1;
        match &outcome {
            Outcome::Added => report.added += 1,
            Outcome::Refused(line) => {
                // Group by the message without the module's own name.
                let key = line.replace(&module.display().to_string(), "<module>");
                *refused.entry(key).or_default() += 1;
            }
            Outcome::Crashed(_) | Outcome::Hung => {
                let isolated = add(config, &module, true)?;
                report.findings.push(Finding {
                    seed,
                    size,
                    outcome,
                    isolated,
                    module: module.clone(),
                });
                continue;
            }
        }
        let _ = std::fs::remove_file(&module);
    }
    report.refused = refused.into_iter().collect();
    report.elapsed = start.elapsed();
    Ok(report)
}
