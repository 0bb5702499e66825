//! `thinjit`: inspect summaries (and, as they land, plan and run scripts).
//!
//! Each subcommand tree lives in `src/bin/thinjit/<name>.rs`; this file only parses and dispatches.

use clap::{Parser, Subcommand};

#[path = "thinjit/plan.rs"]
mod plan;
#[path = "thinjit/summary.rs"]
mod summary;

/// thinjit: ThinLTO-style importing of a precompiled C/C++ runtime into LLVM ORC JIT code.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Plan and perform the import pass on a script module and print the report.
    Plan(plan::Args),
    /// Inspect a summary file.
    #[command(subcommand)]
    Summary(summary::SummaryCommand),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plan(args) => plan::run(args),
        Command::Summary(cmd) => summary::run(cmd),
    };
    // A closed pipe (`thinjit summary show … | head`) is not an error.
    let broken_pipe = |e: &anyhow::Error| {
        e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        })
    };
    if let Err(e) = result.or_else(|e| if broken_pipe(&e) { Ok(()) } else { Err(e) }) {
        eprintln!("error: {}", error_text(&e));
        std::process::exit(1);
    }
}

/// `error: …` with the cause chain, skipping causes the message already quotes (thinjit errors include their
/// source's text).
fn error_text(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}
