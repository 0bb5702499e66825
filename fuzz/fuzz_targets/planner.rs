//! Fuzz target: an arbitrary `SummaryIndex` (sorted or not, with duplicates, dangling names, cycles),
//! `ScriptSymbols` and `ImportConfig` → `plan()` never panics, is deterministic, imports only eligible,
//! non-interposable helpers and never a name the script defines.

#![no_main]

use libfuzzer_sys::fuzz_target;
use thinjit_fuzz::plan_one;

fuzz_target!(|data: &[u8]| {
    plan_one(data);
});
