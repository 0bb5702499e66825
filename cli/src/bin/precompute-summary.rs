//! `precompute-summary`: builds a thinjit summary (index + shards + promoted library) from helper inputs.
//!
//! ```text
//! precompute-summary helpers/ extra.bc -o helpers.thinjit [-I DIR] [-D NAME=V] [--std c11] [-j N] [-q]
//! precompute-summary --compile-commands build/compile_commands.json -o helpers.thinjit
//! precompute-summary --per-input helpers/ -o parts/        # one partial summary per input
//! precompute-summary merge parts/*.thinjit-part -o helpers.thinjit
//! precompute-summary helpers/ -o helpers.thinjit --object [--target-triple T --target-cpu C --target-features F]
//! precompute-summary helpers/ -o helpers.thinjit --shared-runtime [--linker LD]   # object + shared object
//! ```

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use thinjit::summary::inputs::InputReport;
use thinjit::summary::{BuildOptions, ObjectTarget, Stage, Summary};

#[path = "thinjit/errors.rs"]
mod errors;

/// A line of the build's report on stdout. The report only describes files already written (or about to be), so
/// a failed write — stdout a closed pipe (`precompute-summary … | head`) — loses nothing and is not an error:
/// the build goes on and writes every file.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = errors::outln!($($arg)*);
    }};
}

/// Builds a thinjit module summary of a C/C++ helper library.
#[derive(Parser, Debug)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Inputs: .bc, .ll, .c, .cpp files and directories of them. A directory is walked recursively; tests,
    /// examples, hidden files, names listed in a `.thinjitignore` and sources defining `main` are skipped (and
    /// listed); a `compile_flags.txt` beside the sources gives their flags.
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    build: BuildArgs,
    /// Write one partial summary per input into the directory given with -o (for `merge`).
    #[arg(long)]
    per_input: bool,
}

#[derive(clap::Args, Debug)]
struct BuildArgs {
    /// Output file (a directory with --per-input).
    #[arg(short, long, global = true)]
    output: Option<PathBuf>,
    /// A compile_commands.json (CMake, Meson, Bear): every C/C++ entry is compiled with its own flags
    /// (repeatable).
    #[arg(long = "compile-commands", value_name = "FILE", global = true)]
    compile_commands: Vec<PathBuf>,
    /// Include directory for every C/C++ source (repeatable).
    #[arg(short = 'I', value_name = "DIR", global = true)]
    include_dirs: Vec<PathBuf>,
    /// Macro definition `NAME` or `NAME=VALUE` for every C/C++ source (repeatable).
    #[arg(short = 'D', value_name = "NAME[=VALUE]", global = true)]
    defines: Vec<String>,
    /// Language standard: a C one (`c11`, `gnu17`) applies to C sources, a C++ one (`c++17`) to C++ sources
    /// (repeatable: `--std c11 --std c++17`).
    #[arg(long = "std", value_name = "STD", global = true)]
    stds: Vec<String>,
    /// Extra argument for clang on every C/C++ source (repeatable).
    #[arg(
        long = "clang-arg",
        value_name = "ARG",
        allow_hyphen_values = true,
        global = true
    )]
    clang_args: Vec<String>,
    /// Extra argument for clang on C sources only (repeatable).
    #[arg(
        long = "c-arg",
        value_name = "ARG",
        allow_hyphen_values = true,
        global = true
    )]
    c_args: Vec<String>,
    /// Extra argument for clang on C++ sources only (repeatable).
    #[arg(
        long = "cxx-arg",
        value_name = "ARG",
        allow_hyphen_values = true,
        global = true
    )]
    cxx_args: Vec<String>,
    /// Worker threads (default: one per core).
    #[arg(short, long, global = true)]
    jobs: Option<usize>,
    /// No progress bar.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Also compile the promoted helper library to a native object (for JIT-resident engines: no code
    /// generation at start-up). Target: the build host unless given below.
    #[arg(long, global = true)]
    object: bool,
    /// Also link the runtime object into a shared object the system loader maps at engine start-up (instead of
    /// JITLink linking the object; implies --object; ELF x86-64).
    #[arg(long, global = true)]
    shared_runtime: bool,
    /// The linker for --shared-runtime (default: `ld.lld` beside LLVM's tools, else `ld`).
    #[arg(long, global = true, requires = "shared_runtime")]
    linker: Option<PathBuf>,
    /// Target triple of the runtime object (default: the host's).
    #[arg(long, global = true, requires = "object")]
    target_triple: Option<String>,
    /// Target CPU of the runtime object (default: the host's).
    #[arg(long, global = true, requires = "object")]
    target_cpu: Option<String>,
    /// Target features of the runtime object, `+a,-b,...` (default: the host's).
    #[arg(long, global = true, requires = "object", allow_hyphen_values = true)]
    target_features: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Merges partial summaries (from --per-input) into the summary a one-shot build gives, byte for byte.
    Merge {
        /// Partial summaries.
        #[arg(required = true)]
        partials: Vec<PathBuf>,
    },
}

fn main() {
    errors::exit(run(Cli::parse()));
}

fn progress_bar(quiet: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{msg:>9} [{bar:40}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

fn options(args: &BuildArgs, bar: &ProgressBar) -> Result<BuildOptions> {
    let bar = bar.clone();
    let object = (args.object || args.shared_runtime).then(|| {
        let host = ObjectTarget::host();
        ObjectTarget {
            triple: args.target_triple.clone().unwrap_or(host.triple),
            cpu: args.target_cpu.clone().unwrap_or(host.cpu),
            features: args.target_features.clone().unwrap_or(host.features),
        }
    });
    let mut clang_args: Vec<String> = args
        .include_dirs
        .iter()
        .map(|d| format!("-I{}", d.display()))
        .collect();
    clang_args.extend(args.defines.iter().map(|d| format!("-D{d}")));
    clang_args.extend(args.clang_args.iter().cloned());
    let mut c_args: Vec<String> = Vec::new();
    let mut cxx_args: Vec<String> = Vec::new();
    for std in &args.stds {
        let std = std.trim_start_matches("-std=");
        let language = if std.contains("++") {
            &mut cxx_args
        } else if std.starts_with('c') || std.starts_with("gnu") || std.starts_with("iso9899") {
            &mut c_args
        } else {
            anyhow::bail!(
                "--std {std}: not a C (`c11`, `gnu17`) or C++ (`c++17`, `gnu++20`) standard"
            );
        };
        if language.iter().any(|a| a.starts_with("-std=")) {
            anyhow::bail!("--std {std}: a standard for that language was already given");
        }
        language.push(format!("-std={std}"));
    }
    c_args.extend(args.c_args.iter().cloned());
    cxx_args.extend(args.cxx_args.iter().cloned());
    Ok(BuildOptions {
        object,
        shared_runtime: args.shared_runtime,
        linker: args.linker.clone(),
        clang_args,
        c_args,
        cxx_args,
        compile_commands: args.compile_commands.clone(),
        jobs: args.jobs,
        progress: Some(Arc::new(move |p| {
            bar.set_message(match p.stage {
                Stage::Compile => "reading",
                Stage::Parse => "inputs",
                Stage::Link => "merging",
                Stage::Analyze => "shards",
            });
            bar.set_length(p.total as u64);
            bar.set_position(p.done as u64);
        })),
    })
}

/// Prints which inputs were picked (and where their flags came from) and which were skipped, and why.
fn print_inputs(report: &InputReport) {
    const SHOWN: usize = 12;
    let names: Vec<String> = report
        .picked
        .iter()
        .take(SHOWN)
        .map(|p| match &p.flags_from {
            Some(f) => format!("{} (flags: {})", p.path.display(), f.display()),
            None => p.path.display().to_string(),
        })
        .collect();
    let more = report.picked.len().saturating_sub(SHOWN);
    say!(
        "picked {} input{}: {}{}",
        report.picked.len(),
        if report.picked.len() == 1 { "" } else { "s" },
        names.join(", "),
        if more > 0 {
            format!(", and {more} more")
        } else {
            String::new()
        }
    );
    for s in &report.skipped {
        say!("skipped {}: {}", s.path.display(), s.reason);
    }
}

/// Fails when nothing in the summary can be imported (a summary that inlines nothing is a build mistake).
fn check_importable(summary: &Summary) -> Result<()> {
    if let Some(cause) = summary.index().nothing_importable() {
        anyhow::bail!("{cause}");
    }
    Ok(())
}

fn output(args: &BuildArgs) -> Result<&Path> {
    args.output
        .as_deref()
        .context("no output given (use -o FILE)")
}

fn run(cli: Cli) -> Result<()> {
    let start = Instant::now();
    let bar = progress_bar(cli.build.quiet);
    let opts = options(&cli.build, &bar)?;
    let out = output(&cli.build)?;
    match &cli.command {
        Some(Command::Merge { partials }) => {
            let loaded = partials
                .iter()
                .map(|p| Summary::load(p))
                .collect::<thinjit::Result<Vec<_>>>()?;
            let summary = Summary::merge(&loaded, &opts)?;
            bar.finish_and_clear();
            check_importable(&summary)?;
            summary
                .write(out)
                .with_context(|| format!("writing {}", out.display()))?;
            report(&summary, out, start);
        }
        None if cli.per_input => {
            anyhow::ensure!(
                !cli.inputs.is_empty() || !cli.build.compile_commands.is_empty(),
                "no inputs given (files, directories or --compile-commands)"
            );
            anyhow::ensure!(
                !cli.build.object && !cli.build.shared_runtime,
                "--object compiles a whole library: give it to `merge` (or to a one-shot build), not --per-input"
            );
            std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
            let partials = Summary::build_partials(&cli.inputs, &opts)?;
            bar.finish_and_clear();
            for p in &partials {
                let input = &p.header().inputs[0].name;
                let file = out.join(partial_file_name(input));
                p.write(&file)
                    .with_context(|| format!("writing {}", file.display()))?;
                say!("{} -> {}", input, file.display());
            }
            say!(
                "{} partial summaries in {:.2}s",
                partials.len(),
                start.elapsed().as_secs_f64()
            );
        }
        None => {
            anyhow::ensure!(
                !cli.inputs.is_empty() || !cli.build.compile_commands.is_empty(),
                "no inputs given (files, directories or --compile-commands)"
            );
            let (summary, inputs) = Summary::build_reported(&cli.inputs, &opts)?;
            bar.finish_and_clear();
            print_inputs(&inputs);
            check_importable(&summary)?;
            summary
                .write(out)
                .with_context(|| format!("writing {}", out.display()))?;
            report(&summary, out, start);
        }
    }
    Ok(())
}

/// `dir/sub/file.c` → `dir_sub_file.c.thinjit-part`: one distinct, readable name per input.
fn partial_file_name(input: &str) -> String {
    let flat: String = input
        .trim_start_matches("./")
        .trim_start_matches('/')
        .chars()
        .map(|c| if c == '/' || c == '\\' { '_' } else { c })
        .collect();
    format!("{flat}.thinjit-part")
}

fn report(summary: &Summary, out: &Path, start: Instant) {
    let functions = &summary.index().functions;
    let importable = functions.iter().filter(|f| f.is_eligible()).count();
    let shard_bytes: u64 = functions
        .iter()
        .filter_map(|f| f.shard.map(|r| r.len))
        .sum();
    say!(
        "{}: {} functions, {} importable, {} variables, {} shard bytes, {:.2}s",
        out.display(),
        functions.len(),
        importable,
        summary.index().variables.len(),
        shard_bytes,
        start.elapsed().as_secs_f64()
    );
    if let Some(object) = summary.runtime_object() {
        say!(
            "runtime object: {} bytes for {}, {} constructors, {} destructors",
            object.object.len,
            object.target,
            object.ctors.len(),
            object.dtors.len()
        );
        if let Some(shared) = &object.shared {
            say!(
                "shared runtime: {} bytes (linked by {}), {} weak imports",
                shared.image.len,
                shared.linker,
                shared.weak.len()
            );
        }
    }
}
