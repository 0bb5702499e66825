//! `thinjit summary show FILE [--json]`: what a summary holds, and why each non-importable function is not.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use thinjit::summary::{FunctionSummary, Summary, SummaryKind};

#[derive(Subcommand, Debug)]
pub enum SummaryCommand {
    /// Print the header, every function (size, linkage, attributes, calls, eligibility) and every variable.
    Show {
        /// The summary file.
        file: PathBuf,
        /// Print JSON (header and index) instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: SummaryCommand) -> Result<()> {
    match cmd {
        SummaryCommand::Show { file, json } => {
            let summary = Summary::load(&file)?;
            if json {
                let value = serde_json::json!({
                    "header": summary.header(),
                    "index": summary.index(),
                });
                let mut text = serde_json::to_string_pretty(&value)?;
                text.push('\n');
                std::io::stdout().lock().write_all(text.as_bytes())?;
            } else {
                std::io::stdout()
                    .lock()
                    .write_all(render(&summary).as_bytes())?;
            }
            Ok(())
        }
    }
}

fn attributes(f: &FunctionSummary) -> String {
    let a = &f.attributes;
    let names: Vec<&str> = [
        (a.noinline, "noinline"),
        (a.alwaysinline, "alwaysinline"),
        (a.optnone, "optnone"),
        (a.cold, "cold"),
        (a.hot, "hot"),
    ]
    .into_iter()
    .filter_map(|(on, n)| on.then_some(n))
    .collect();
    names.join(",")
}

fn render(s: &Summary) -> String {
    let h = s.header();
    let idx = s.index();
    let mut out = String::new();
    let _ = writeln!(out, "summary {}", s.path().display());
    let _ = writeln!(
        out,
        "  format {}, LLVM {}, {:?}",
        h.format_version, h.llvm_version, h.kind
    );
    let _ = writeln!(out, "  triple {}", h.target_triple);
    let _ = writeln!(out, "  data layout {}", h.data_layout);
    for i in &h.inputs {
        let _ = writeln!(out, "  input {} sha256 {}", i.name, i.sha256);
    }
    let _ = writeln!(out, "  library bitcode {} bytes", h.library.len);
    match &h.runtime_object {
        Some(o) => {
            let _ = writeln!(
                out,
                "  runtime object {} bytes for {} (features {}), {} constructors, {} destructors",
                o.object.len,
                o.target,
                o.target.features,
                o.ctors.len(),
                o.dtors.len()
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  no runtime object (precompute-summary --object adds one)"
            );
        }
    }
    if h.kind == SummaryKind::Partial {
        let _ = writeln!(
            out,
            "  partial summary: merge with `precompute-summary merge`"
        );
        return out;
    }
    let importable = idx.functions.iter().filter(|f| f.is_eligible()).count();
    let _ = writeln!(
        out,
        "\nfunctions: {} ({} importable)",
        idx.functions.len(),
        importable
    );
    for f in &idx.functions {
        let linkage = if f.linkage == f.original_linkage {
            format!("{:?}", f.linkage)
        } else {
            format!("{:?} (was {:?})", f.linkage, f.original_linkage)
        };
        let _ = write!(
            out,
            "  {}  {} instrs  {}",
            f.name, f.instruction_count, linkage
        );
        if let Some(o) = &f.original_name {
            let _ = write!(out, "  static `{o}`");
        }
        let attrs = attributes(f);
        if !attrs.is_empty() {
            let _ = write!(out, "  [{attrs}]");
        }
        if let Some(r) = &f.shard {
            let _ = write!(out, "  shard {} bytes", r.len);
        }
        out.push('\n');
        if !f.calls.is_empty() {
            let calls: Vec<String> = f
                .calls
                .iter()
                .map(|c| format!("{} x{} ({:?})", c.callee, c.count, c.hotness))
                .collect();
            let _ = writeln!(out, "      calls: {}", calls.join(", "));
        }
        if !f.refs.is_empty() {
            let _ = writeln!(out, "      refs: {}", f.refs.join(", "));
        }
        if f.is_eligible() {
            let _ = writeln!(out, "      importable");
        } else {
            let why: Vec<String> = f.not_eligible.iter().map(|r| r.to_string()).collect();
            let _ = writeln!(out, "      NOT importable: {}", why.join("; "));
        }
    }
    let _ = writeln!(out, "\nvariables: {}", idx.variables.len());
    for v in &idx.variables {
        let _ = write!(
            out,
            "  {}  {} bytes  {:?}  {}{}",
            v.name,
            v.size,
            v.linkage,
            if v.constant { "constant" } else { "mutable" },
            if v.thread_local { " thread_local" } else { "" }
        );
        if let Some(o) = &v.original_name {
            let _ = write!(out, "  static `{o}`");
        }
        if v.importable_initializer {
            out.push_str("  initializer importable");
        }
        out.push('\n');
    }
    let _ = writeln!(out, "\ninitializers: {}", idx.initializers.len());
    for i in &idx.initializers {
        let _ = writeln!(out, "  {} priority {}", i.function, i.priority);
    }
    out
}
