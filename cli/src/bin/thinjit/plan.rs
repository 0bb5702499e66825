//! `thinjit plan SCRIPT --summary S`: runs a script through the engine's stages up to optimization (parse,
//! verify, plan, import, optimize: [`Engine::dry_run_script`](thinjit::jit::Engine::dry_run_script), the code
//! path `thinjit run` takes, minus code generation and linking) and prints the
//! [`ImportReport`](thinjit::import::ImportReport) (a table, or JSON with `--json`) and what O3 made of it.
//! `--save-temps DIR` writes the engine's save-temps of those stages, the files `thinjit run --save-temps`
//! writes for them.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use thinjit::import::ImportConfig;
use thinjit::jit::Strategy;
use thinjit::summary::Summary;

use super::run::{self, HostArgs, Mode, StartupArgs};

/// Arguments of `thinjit plan`. Option names are LLVM's FunctionImporter options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The script module (`.ll` or `.bc`).
    script: PathBuf,
    /// The summary file made by `precompute-summary`.
    #[arg(long)]
    summary: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Write each stage's module into DIR, as the engine's save-temps do (the same files `thinjit run
    /// --save-temps` writes for these stages): `<script>.00-parse.bc`, `.01-verify.bc`, `.02-plan.bc` (and the
    /// plan as `.02-plan.json`), `.03-import.bc`, `.04-optimize.bc`.
    #[arg(long, value_name = "DIR")]
    save_temps: Option<PathBuf>,
    /// Only import callees with at most N instructions.
    #[arg(long, value_name = "N", default_value_t = 100)]
    import_instr_limit: u32,
    /// Threshold factor per level of imported callees.
    #[arg(long, value_name = "X", default_value_t = 0.7)]
    import_instr_evolution_factor: f32,
    /// Threshold factor per level below a hot call edge.
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    import_hot_evolution_factor: f32,
    /// Threshold multiplier for hot call edges.
    #[arg(long, value_name = "X", default_value_t = 10.0)]
    import_hot_multiplier: f32,
    /// Threshold multiplier for critical call edges.
    #[arg(long, value_name = "X", default_value_t = 100.0)]
    import_critical_multiplier: f32,
    /// Threshold multiplier for cold call edges.
    #[arg(long, value_name = "X", default_value_t = 0.0)]
    import_cold_multiplier: f32,
    /// Import noinline callees and ignore the size threshold.
    #[arg(long)]
    force_import_all: bool,
    /// Apply the size threshold to alwaysinline helpers too.
    #[arg(long)]
    no_always_import_alwaysinline: bool,
    /// Only import these helpers (repeatable).
    #[arg(long, value_name = "NAME")]
    allow: Vec<String>,
    /// Never import these helpers (repeatable).
    #[arg(long, value_name = "NAME")]
    deny: Vec<String>,
    /// Cap on the total instructions imported.
    #[arg(long, value_name = "N")]
    max_total_instructions: Option<u64>,
    /// Plan for helpers compiled natively into the host (no promoted names at run time); the engine resolves
    /// them from `--shared-library`.
    #[arg(long)]
    host_native: bool,
    /// The native helper library (`--host-native`).
    #[arg(long, value_name = "PATH", default_value = env!("THINJIT_HELPERS_SO"))]
    shared_library: PathBuf,
    // Where the runtime's host callbacks come from: `plan` builds the engine `thinjit run` builds (its runtime
    // started), so a runtime that calls the host needs them here too.
    #[command(flatten)]
    host: HostArgs,
}

impl Args {
    fn config(&self) -> ImportConfig {
        ImportConfig {
            import_instr_limit: self.import_instr_limit,
            import_instr_evolution_factor: self.import_instr_evolution_factor,
            import_hot_evolution_factor: self.import_hot_evolution_factor,
            import_hot_multiplier: self.import_hot_multiplier,
            import_critical_multiplier: self.import_critical_multiplier,
            import_cold_multiplier: self.import_cold_multiplier,
            always_import_alwaysinline: !self.no_always_import_alwaysinline,
            force_import_all: self.force_import_all,
            allow: self.allow.iter().cloned().collect(),
            deny: self.deny.iter().cloned().collect(),
            max_total_instructions: self.max_total_instructions,
        }
    }
}

/// Runs `thinjit plan`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let config = args.config();
    config.validate()?;
    let summary = Arc::new(
        Summary::load(&args.summary)
            .with_context(|| format!("loading the summary {}", args.summary.display()))?,
    );
    let mode = if args.host_native {
        Mode::HostNative
    } else {
        Mode::JitResident
    };
    // The engine `thinjit run` builds, without a cache or worker processes: nothing is compiled to code.
    let startup = StartupArgs {
        cache_dir: None,
        cache_size: 0,
        no_runtime_object: false,
        isolate: false,
        isolate_timeout: 0.0,
    };
    let engine = run::engine(
        summary,
        mode,
        Strategy::Summary,
        &args.shared_library,
        false,
        config,
        &startup,
        &args.host,
        args.save_temps.as_deref(),
    )?;
    let report = engine
        .dry_run_script_file(&args.script)
        .with_context(|| format!("planning the script {}", args.script.display()))?;
    let import = report
        .import
        .as_ref()
        .context("the engine made no import report")?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(import)?)?;
    } else {
        writeln!(out, "{import}")?;
        if let Some(ir) = &report.optimized_ir {
            writeln!(out, "{}", run::inline_outcome(ir, import)?)?;
        }
    }
    Ok(())
}
