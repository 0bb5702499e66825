//! `thinjit`: command-line tools over thinjit's stages. One subcommand per module in `src/bin/thinjit/`; this
//! file only parses and dispatches.
//!
//! In: command-line arguments. Out: results on stdout, `error: …` with the cause chain on stderr, exit code 1
//! on failure.

use clap::{Parser, Subcommand};

#[path = "thinjit/bench.rs"]
mod bench;
#[path = "thinjit/demo.rs"]
mod demo;
#[path = "thinjit/errors.rs"]
mod errors;
#[path = "thinjit/host.rs"]
mod host;
#[path = "thinjit/plan.rs"]
mod plan;
#[path = "thinjit/run.rs"]
mod run;
#[path = "thinjit/summary.rs"]
mod summary;

/// thinjit: ThinLTO-style importing of a precompiled C/C++ runtime into LLVM ORC JIT code.
#[derive(Debug, Parser)]
#[command(name = "thinjit", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect a summary file.
    #[command(subcommand)]
    Summary(summary::SummaryCommand),
    /// Plan and perform the import pass on a script module and print the report.
    Plan(plan::Args),
    /// Add a script to an engine (import, O3, ORC), call its entry, print the result and the import report.
    Run(run::Args),
    /// Measure every import strategy on your own runtime and scripts: compile times per stage (min and median),
    /// run time of the entry, peak RSS, thinjit against LLVM's own importer.
    Bench(bench::Args),
    /// Build the bundled helpers' summary if needed and run the example scripts in both runtime modes.
    Demo(demo::Args),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Summary(cmd) => summary::run(cmd),
        Command::Plan(args) => plan::run(args),
        Command::Run(args) => run::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Demo(args) => demo::run(args),
    };
    errors::exit(result);
}
