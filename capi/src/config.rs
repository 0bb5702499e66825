//! Import knobs by LLVM's option names (`import-instr-limit`, ...), as `thinjit_config_set` takes them.
//!
//! In: a name and a value, both text. Out: the [`Settings`] changed (validated; a bad value leaves them as they
//! were), or a `THINJIT_ERROR_CONFIG` naming the knob and the accepted values.
//!
//! `runtime-mode` is not an import knob in the Rust API: there the engine owns it
//! ([`EngineBuilder::runtime_mode`](thinjit::jit::EngineBuilder::runtime_mode)) and passes it to every import.
//! The C API has no engine — the caller's own LLJIT holds the helper runtime — so a config handle carries both:
//! the import knobs and where the caller put the runtime, passed to each import as the engine would.

use std::collections::BTreeSet;

use thinjit::import::ImportConfig;
use thinjit::jit::RuntimeMode;

use crate::boundary::{CError, ErrorKind};

/// What a `thinjitConfigRef` holds: the import pass's knobs, and where the caller's helper runtime lives (what
/// imports are planned for).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Settings {
    pub import: ImportConfig,
    pub mode: RuntimeMode,
}

/// Every knob `thinjit_config_set` / `thinjit_config_get` know.
pub(crate) const KNOBS: &[&str] = &[
    "import-instr-limit",
    "import-instr-evolution-factor",
    "import-hot-evolution-factor",
    "import-hot-multiplier",
    "import-critical-multiplier",
    "import-cold-multiplier",
    "force-import-all",
    "always-import-alwaysinline",
    "max-total-instructions",
    "runtime-mode",
    "allow",
    "deny",
];

fn bad(name: &str, value: &str, expected: &str) -> CError {
    CError::new(
        ErrorKind::Config,
        format!("`{name}`: `{value}` is not {expected}"),
    )
}

fn parse_bool(name: &str, value: &str) -> Result<bool, CError> {
    match value.trim() {
        "true" | "1" | "on" | "yes" => Ok(true),
        "false" | "0" | "off" | "no" => Ok(false),
        _ => Err(bad(name, value, "a boolean (true/false/1/0)")),
    }
}

fn parse_factor(name: &str, value: &str) -> Result<f32, CError> {
    match value.trim().parse::<f32>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(bad(name, value, "a finite number >= 0")),
    }
}

fn add_names(list: &mut BTreeSet<String>, value: &str) {
    if value.is_empty() {
        list.clear();
        return;
    }
    list.extend(
        value
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
    );
}

/// Sets knob `name` of `settings` to `value`; on error `settings` are unchanged.
pub(crate) fn set(settings: &mut Settings, name: &str, value: &str) -> Result<(), CError> {
    if name == "runtime-mode" {
        settings.mode = value
            .trim()
            .parse()
            .map_err(|_| bad(name, value, "`jit-resident` or `host-native`"))?;
        return Ok(());
    }
    let mut next = settings.import.clone();
    match name {
        "import-instr-limit" => {
            next.import_instr_limit = value
                .trim()
                .parse()
                .map_err(|_| bad(name, value, "an unsigned 32-bit integer"))?
        }
        "import-instr-evolution-factor" => {
            next.import_instr_evolution_factor = parse_factor(name, value)?
        }
        "import-hot-evolution-factor" => {
            next.import_hot_evolution_factor = parse_factor(name, value)?
        }
        "import-hot-multiplier" => next.import_hot_multiplier = parse_factor(name, value)?,
        "import-critical-multiplier" => {
            next.import_critical_multiplier = parse_factor(name, value)?
        }
        "import-cold-multiplier" => next.import_cold_multiplier = parse_factor(name, value)?,
        "force-import-all" => next.force_import_all = parse_bool(name, value)?,
        "always-import-alwaysinline" => next.always_import_alwaysinline = parse_bool(name, value)?,
        "max-total-instructions" => {
            next.max_total_instructions = match value.trim() {
                "none" | "" => None,
                v => Some(
                    v.parse()
                        .map_err(|_| bad(name, value, "an unsigned integer or `none`"))?,
                ),
            }
        }
        "allow" => add_names(&mut next.allow, value),
        "deny" => add_names(&mut next.deny, value),
        _ => {
            return Err(CError::new(
                ErrorKind::Config,
                format!("unknown knob `{name}`; known: {}", KNOBS.join(", ")),
            ))
        }
    }
    next.validate()?;
    settings.import = next;
    Ok(())
}

/// The value of knob `name` as text (what [`set`] accepts).
pub(crate) fn get(settings: &Settings, name: &str) -> Result<String, CError> {
    let config = &settings.import;
    let list = |l: &BTreeSet<String>| l.iter().cloned().collect::<Vec<_>>().join(",");
    Ok(match name {
        "import-instr-limit" => config.import_instr_limit.to_string(),
        "import-instr-evolution-factor" => config.import_instr_evolution_factor.to_string(),
        "import-hot-evolution-factor" => config.import_hot_evolution_factor.to_string(),
        "import-hot-multiplier" => config.import_hot_multiplier.to_string(),
        "import-critical-multiplier" => config.import_critical_multiplier.to_string(),
        "import-cold-multiplier" => config.import_cold_multiplier.to_string(),
        "force-import-all" => config.force_import_all.to_string(),
        "always-import-alwaysinline" => config.always_import_alwaysinline.to_string(),
        "max-total-instructions" => config
            .max_total_instructions
            .map_or_else(|| "none".to_owned(), |n| n.to_string()),
        "runtime-mode" => settings.mode.to_string(),
        "allow" => list(&config.allow),
        "deny" => list(&config.deny),
        _ => {
            return Err(CError::new(
                ErrorKind::Config,
                format!("unknown knob `{name}`; known: {}", KNOBS.join(", ")),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_knob_round_trips() {
        let mut c = Settings::default();
        for (name, value) in [
            ("import-instr-limit", "42"),
            ("import-instr-evolution-factor", "0.5"),
            ("import-hot-evolution-factor", "0.25"),
            ("import-hot-multiplier", "3"),
            ("import-critical-multiplier", "7"),
            ("import-cold-multiplier", "0.5"),
            ("force-import-all", "true"),
            ("always-import-alwaysinline", "false"),
            ("max-total-instructions", "900"),
            ("runtime-mode", "host-native"),
            ("allow", "a,b"),
            ("deny", "c"),
        ] {
            set(&mut c, name, value).unwrap();
            assert_eq!(get(&c, name).unwrap(), value, "{name}");
        }
        assert_eq!(c.import.import_instr_limit, 42);
        assert_eq!(c.mode, RuntimeMode::HostNative);
        assert_eq!(c.import.max_total_instructions, Some(900));
        set(&mut c, "allow", "").unwrap();
        assert!(c.import.allow.is_empty());
        assert_eq!(KNOBS.len(), 12);
    }

    #[test]
    fn bad_values_leave_the_config_alone() {
        let mut c = Settings::default();
        for (name, value) in [
            ("import-instr-limit", "-1"),
            ("import-hot-multiplier", "nan"),
            ("force-import-all", "maybe"),
            ("runtime-mode", "elsewhere"),
            ("no-such-knob", "1"),
        ] {
            let e = set(&mut c, name, value).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Config);
            assert!(e.message.contains(name), "{}", e.message);
        }
        set(&mut c, "allow", "f").unwrap();
        let e = set(&mut c, "deny", "f").unwrap_err();
        assert!(e.message.contains("allow list"), "{}", e.message);
        assert!(c.import.deny.is_empty());
        assert_eq!(c, {
            let mut d = Settings::default();
            d.import.allow.insert("f".into());
            d
        });
    }
}
