//! `thinjit`: command-line tools over thinjit's stages. One subcommand per module in `src/bin/thinjit/`.
//!
//! In: command-line arguments. Out: results on stdout, `error: …` with the cause chain on stderr, exit code 1
//! on failure.

use clap::{Parser, Subcommand};

#[path = "thinjit/plan.rs"]
mod plan;

/// thinjit: ThinLTO-style import of precompiled helper bodies into JIT modules.
#[derive(Debug, Parser)]
#[command(name = "thinjit", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Plan and perform the import pass on a script module and print the report.
    Plan(plan::Args),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plan(args) => plan::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
