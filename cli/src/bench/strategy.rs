//! The strategies a benchmark compares: engine strategies ([`thinjit::jit::Strategy`]) with the import limit
//! they run at. There is no benchmark-only strategy: each label is an [`EngineBuilder`] configuration.
//!
//! | label | engine configuration |
//! |---|---|
//! | `none` | [`Strategy::None`]: every helper call goes to the runtime's one copy |
//! | `full-link` | [`Strategy::FullLink`]: the whole library linked in `available_externally` (mutable variables as declarations) |
//! | `full-link-internalize` | [`Strategy::FullLinkInternalize`]: the seed's attempt, private copies of everything |
//! | `summary@N` | [`Strategy::Summary`] at `import-instr-limit` N (`summary` = `summary@100`) |
//! | `llvm-importer@N` | [`Strategy::LlvmImporter`]: LLVM's own FunctionImporter at `import-instr-limit` N (`llvm-importer` = `@100`) |

use thinjit::import::ImportConfig;
use thinjit::jit::{EngineBuilder, Strategy};

/// An engine strategy and the `import-instr-limit` it runs at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StrategySpec {
    pub strategy: Strategy,
    /// `import-instr-limit` (used by `summary` and `llvm-importer`).
    pub import_instr_limit: u32,
}

/// The default `import-instr-limit` (LLVM's).
pub const DEFAULT_LIMIT: u32 = 100;

impl StrategySpec {
    /// `strategy` at the default limit.
    pub fn new(strategy: Strategy) -> Self {
        StrategySpec {
            strategy,
            import_instr_limit: DEFAULT_LIMIT,
        }
    }

    /// `summary@limit`.
    pub fn summary(limit: u32) -> Self {
        StrategySpec {
            strategy: Strategy::Summary,
            import_instr_limit: limit,
        }
    }

    /// The label in tables: `none`, `full-link`, `summary@100`, `llvm-importer@100`, ...
    pub fn label(&self) -> String {
        match self.strategy {
            Strategy::Summary | Strategy::LlvmImporter => {
                format!("{}@{}", self.strategy, self.import_instr_limit)
            }
            other => other.to_string(),
        }
    }

    /// Parses a label; `summary` and `llvm-importer` alone mean `@100`. The error names what is accepted.
    pub fn parse(label: &str) -> Result<StrategySpec, String> {
        let (name, limit) = match label.split_once('@') {
            Some((n, l)) => {
                let limit = l.parse().map_err(|_| {
                    format!("strategy `{label}`: `{l}` is not an import-instr-limit")
                })?;
                (n, Some(limit))
            }
            None => (label, None),
        };
        let strategy: Strategy = name.parse().map_err(|e: String| {
            format!("{e}; `summary` and `llvm-importer` take an import limit as `@N`")
        })?;
        match (strategy, limit) {
            (Strategy::Summary | Strategy::LlvmImporter, l) => Ok(StrategySpec {
                strategy,
                import_instr_limit: l.unwrap_or(DEFAULT_LIMIT),
            }),
            (_, Some(_)) => Err(format!(
                "strategy `{label}`: only summary and llvm-importer take an import limit"
            )),
            (_, None) => Ok(StrategySpec::new(strategy)),
        }
    }

    /// The strategies a full run compares: none, both full links, the summary at limits 30, 100 and 300, and
    /// LLVM's importer at 100.
    pub fn all() -> Vec<StrategySpec> {
        vec![
            StrategySpec::new(Strategy::None),
            StrategySpec::new(Strategy::FullLink),
            StrategySpec::new(Strategy::FullLinkInternalize),
            StrategySpec::summary(30),
            StrategySpec::summary(100),
            StrategySpec::summary(300),
            StrategySpec::new(Strategy::LlvmImporter),
        ]
    }

    /// Applies the strategy and its limit to `builder`.
    pub fn configure(&self, builder: EngineBuilder) -> EngineBuilder {
        builder.strategy(self.strategy).import_config(ImportConfig {
            import_instr_limit: self.import_instr_limit,
            ..ImportConfig::default()
        })
    }
}
