//! `ImportConfig`: the knobs of the import pass.
//!
//! In: user settings (or the defaults, which are LLVM's FunctionImporter defaults, under LLVM's option names).
//! Out: a validated, serde-serializable configuration the planner and importer read; it is part of a cache key
//! and serializes deterministically. Where the helper runtime lives ([`RuntimeMode`](crate::jit::RuntimeMode))
//! is not an import knob: the engine owns it, and the planner and importer take it as an argument.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Configuration of the import pass. Defaults are LLVM's (`llvm/lib/Transforms/IPO/FunctionImport.cpp`).
///
/// ```
/// use thinjit::import::ImportConfig;
/// let config = ImportConfig { import_instr_limit: 200, ..ImportConfig::default() };
/// config.validate().unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImportConfig {
    /// `import-instr-limit`: import a callee from a script's call site only when it has at most this many
    /// instructions.
    pub import_instr_limit: u32,
    /// `import-instr-evolution-factor`: the threshold for an imported function's own callees is its threshold
    /// times this factor.
    pub import_instr_evolution_factor: f32,
    /// `import-hot-evolution-factor`: as above, for callees reached through a hot call edge.
    pub import_hot_evolution_factor: f32,
    /// `import-hot-multiplier`: the threshold of a hot call edge is multiplied by this.
    pub import_hot_multiplier: f32,
    /// `import-critical-multiplier`: the threshold of a critical call edge is multiplied by this.
    pub import_critical_multiplier: f32,
    /// `import-cold-multiplier`: the threshold of a cold call edge is multiplied by this (0: never imported).
    pub import_cold_multiplier: f32,
    /// Import eligible `alwaysinline` helpers whatever their size (LLVM does the same).
    pub always_import_alwaysinline: bool,
    /// `force-import-all`: also import `noinline` callees and ignore the size threshold (as LLVM's option).
    pub force_import_all: bool,
    /// When non-empty, only these helper functions may be imported (others are reported `Denied`); the
    /// constants imported functions read are not restricted by it.
    pub allow: BTreeSet<String>,
    /// These helper functions and variables are never imported.
    pub deny: BTreeSet<String>,
    /// Cap on the total instructions imported into one script (`None`: no cap).
    pub max_total_instructions: Option<u64>,
}

impl Default for ImportConfig {
    fn default() -> Self {
        ImportConfig {
            import_instr_limit: 100,
            import_instr_evolution_factor: 0.7,
            import_hot_evolution_factor: 1.0,
            import_hot_multiplier: 10.0,
            import_critical_multiplier: 100.0,
            import_cold_multiplier: 0.0,
            always_import_alwaysinline: true,
            force_import_all: false,
            allow: BTreeSet::new(),
            deny: BTreeSet::new(),
            max_total_instructions: None,
        }
    }
}

impl ImportConfig {
    /// Checks that every factor is finite and non-negative and that the lists do not contradict each other.
    pub fn validate(&self) -> Result<()> {
        let factors = [
            (
                "import-instr-evolution-factor",
                self.import_instr_evolution_factor,
            ),
            (
                "import-hot-evolution-factor",
                self.import_hot_evolution_factor,
            ),
            ("import-hot-multiplier", self.import_hot_multiplier),
            (
                "import-critical-multiplier",
                self.import_critical_multiplier,
            ),
            ("import-cold-multiplier", self.import_cold_multiplier),
        ];
        for (name, value) in factors {
            if !value.is_finite() || value < 0.0 {
                return Err(Error::Config {
                    message: format!("{name} must be a finite number >= 0, got {value}"),
                });
            }
        }
        if let Some(both) = self.allow.intersection(&self.deny).next() {
            return Err(Error::Config {
                message: format!("`{both}` is both in the allow list and in the deny list"),
            });
        }
        Ok(())
    }

    /// Whether the allow/deny lists permit importing `name`.
    pub fn permits(&self, name: &str) -> bool {
        !self.deny.contains(name) && (self.allow.is_empty() || self.allow.contains(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_llvms() {
        let c = ImportConfig::default();
        assert_eq!(c.import_instr_limit, 100);
        assert_eq!(c.import_instr_evolution_factor, 0.7);
        assert_eq!(c.import_hot_evolution_factor, 1.0);
        assert_eq!(c.import_hot_multiplier, 10.0);
        assert_eq!(c.import_critical_multiplier, 100.0);
        assert_eq!(c.import_cold_multiplier, 0.0);
        assert!(c.always_import_alwaysinline);
        c.validate().unwrap();
    }

    #[test]
    fn rejects_bad_factors() {
        for bad in [-0.1f32, f32::NAN, f32::INFINITY] {
            let c = ImportConfig {
                import_instr_evolution_factor: bad,
                ..ImportConfig::default()
            };
            assert!(matches!(c.validate(), Err(Error::Config { .. })), "{bad}");
        }
        let c = ImportConfig {
            import_hot_multiplier: -1.0,
            ..ImportConfig::default()
        };
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("import-hot-multiplier"), "{err}");
    }

    #[test]
    fn rejects_contradicting_lists() {
        let mut c = ImportConfig::default();
        c.allow.insert("f".into());
        c.deny.insert("f".into());
        assert!(matches!(c.validate(), Err(Error::Config { .. })));
    }

    #[test]
    fn allow_and_deny() {
        let mut c = ImportConfig::default();
        assert!(c.permits("f"));
        c.deny.insert("f".into());
        assert!(!c.permits("f"));
        assert!(c.permits("g"));
        c.allow.insert("g".into());
        assert!(c.permits("g"));
        assert!(!c.permits("h"));
    }

    #[test]
    fn serializes_deterministically() {
        let mut c = ImportConfig::default();
        c.deny.insert("b".into());
        c.deny.insert("a".into());
        let a = serde_json::to_string(&c).unwrap();
        let back: ImportConfig = serde_json::from_str(&a).unwrap();
        assert_eq!(back, c);
        assert_eq!(serde_json::to_string(&back).unwrap(), a);
    }
}
