//! `thinjit plan SCRIPT --summary S`: runs the import pass on a script module and prints the
//! [`ImportReport`](thinjit::import::ImportReport) (a table, or JSON with `--json`). `--save-temps DIR` writes
//! the module before import, after import and after O3.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use thinjit::import::{import, ImportConfig, InlineOutcome, RuntimeMode};
use thinjit::jit::Stage;
use thinjit::llvm::{CodeGenOpt, Context, Module, TargetMachine};
use thinjit::optimize::{optimize, OptLevel};
use thinjit::summary::Summary;

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
    /// Write each stage's module into DIR, named as the engine's save-temps names them:
    /// `<script>.00-parse.bc`, `<script>.03-import.bc`, `<script>.04-optimize.bc`.
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
    /// Plan for helpers compiled natively into the host (no promoted names at run time).
    #[arg(long)]
    host_native: bool,
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
            mode: if self.host_native {
                RuntimeMode::HostNative
            } else {
                RuntimeMode::JitResident
            },
        }
    }
}

fn save(dir: Option<&Path>, script: &str, stage: Stage, module: &Module<'_>) -> anyhow::Result<()> {
    if let Some(dir) = dir {
        let path = dir.join(stage.temp_file_name(script));
        std::fs::write(&path, module.write_bitcode())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Runs `thinjit plan`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let config = args.config();
    config.validate()?;
    let summary = Summary::load(&args.summary)
        .with_context(|| format!("loading the summary {}", args.summary.display()))?;
    let ctx = Context::new();
    let mut module = Module::parse_file(&ctx, &args.script)
        .with_context(|| format!("reading the script {}", args.script.display()))?;
    let stem = args.script.display().to_string();
    let temps = args.save_temps.as_deref();
    if let Some(dir) = temps {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    save(temps, &stem, Stage::Parse, &module)?;
    let report = import(&mut module, &summary, &config)
        .with_context(|| format!("importing into the script {}", args.script.display()))?;
    save(temps, &stem, Stage::Import, &module)?;
    let tm = TargetMachine::host(CodeGenOpt::Default)?;
    optimize(&mut module, &tm, OptLevel::O3)
        .with_context(|| format!("optimizing the script {}", args.script.display()))?;
    save(temps, &stem, Stage::Optimize, &module)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        writeln!(out, "{report}")?;
        writeln!(out, "{}", InlineOutcome::of(&module, &report))?;
    }
    Ok(())
}
