//! Benchmark results and their presentation: markdown tables, CSV, JSON (serde) and an SVG plot.
//!
//! In: [`StrategyOutcome`]s (one per library × strategy, possibly measured in child processes and sent back as
//! JSON) and the [`ImportDifference`]s between thinjit's and LLVM's importer. Out: text — markdown for the README
//! and stdout (per-library summary, thinjit ÷ LLVM's importer per script, the import-list differences with
//! their reasons, the targets and per-script stage times), CSV for spreadsheets, and a hand-written SVG of
//! per-script compile latency against library size (one line per strategy). Targets are graded only for the
//! bundled workloads ([`BenchReport::graded`]); a user's own library gets numbers, not verdicts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::diff::ImportDifference;

/// One stage of the engine's per-script pipeline over the compiles of a script.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StageStat {
    /// The engine's name for the stage (`parse`, `import`, `optimize`, ...).
    pub stage: String,
    pub min_ms: f64,
    pub median_ms: f64,
}

/// One script compiled and run with one strategy.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Row {
    pub script: String,
    /// Each stage of `Engine::add_script`, min and median over the compiles.
    pub stages: Vec<StageStat>,
    /// The whole `add_script` (every stage), fastest compile, milliseconds.
    pub compile_ms: f64,
    /// The whole `add_script`, median compile, milliseconds.
    pub median_compile_ms: f64,
    /// Every compile's whole `add_script`, in order, milliseconds (interleaved runs pair them across
    /// strategies).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compile_samples_ms: Vec<f64>,
    /// Helper functions linked into the script before optimization (the whole library for full links).
    pub linked_functions: usize,
    /// Functions the strategy's importer imported (summary, llvm-importer), by name.
    pub imported_functions: Vec<String>,
    /// Variables it imported.
    pub imported_variables: Vec<String>,
    /// Size of the object file the optimized module compiles to.
    pub object_bytes: usize,
    /// Fastest of the timed runs of the entry, milliseconds.
    pub run_ms: Option<f64>,
    pub iterations: i64,
    pub result: Option<i64>,
    pub expected: Option<i64>,
    pub call_heavy: bool,
    /// Why the script could not be compiled or run.
    pub error: Option<String>,
    /// The module the engine compiled, after import and optimization (when asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimized_ir: Option<String>,
}

impl Row {
    /// Per-script compile latency: the fastest whole compile.
    pub fn compile_ms(&self) -> f64 {
        self.compile_ms
    }

    /// The fastest time of stage `name` (0 when the engine has no such stage).
    pub fn stage_ms(&self, name: &str) -> f64 {
        self.stages
            .iter()
            .find(|s| s.stage == name)
            .map_or(0.0, |s| s.min_ms)
    }

    /// Deciding and performing the import: the engine's plan and import stages, fastest compile of each.
    pub fn import_ms(&self) -> f64 {
        self.stage_ms("plan") + self.stage_ms("import")
    }

    /// `Some(true)` when the script returned what it must, `Some(false)` when not, `None` when unknown.
    pub fn correct(&self) -> Option<bool> {
        if self.error.is_some() {
            return Some(false);
        }
        match (self.result, self.expected) {
            (Some(r), Some(e)) => Some(r == e),
            _ => None,
        }
    }
}

/// A semantic check's verdict.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// Holds.
    Ok,
    /// Does not hold; the detail says what was seen.
    Broken,
    /// Not applicable to this library (it has no such global) or not measured.
    #[default]
    NotApplicable,
}

/// A semantic check and what was observed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Check {
    pub verdict: Verdict,
    pub detail: String,
}

impl Check {
    /// Short cell text: `ok`, `BROKEN`, `n/a`.
    pub fn cell(&self) -> &'static str {
        match self.verdict {
            Verdict::Ok => "ok",
            Verdict::Broken => "BROKEN",
            Verdict::NotApplicable => "n/a",
        }
    }
}

/// Everything measured for one library × strategy.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StrategyOutcome {
    pub library: String,
    /// Function definitions in the (promoted) library.
    pub library_functions: usize,
    pub strategy: String,
    /// Building the engine: the JIT and the resident helper runtime, milliseconds.
    pub setup_ms: f64,
    pub rows: Vec<Row>,
    /// One instance of each mutable helper global (scripts and host see one counter).
    pub one_instance: Check,
    /// Helper initializers ran exactly once.
    pub init_once: Check,
    /// Peak resident set size of the process that measured this outcome (`VmHWM`), KiB.
    pub peak_rss_kib: Option<u64>,
    /// Whether the outcome was measured in its own child process (clean peak RSS).
    pub isolated: bool,
    /// Whether its compiles were interleaved with the other strategies' in one process (`--interleave`): the
    /// n-th compiles of a script under two strategies ran back to back.
    #[serde(default)]
    pub interleaved: bool,
    /// A failure that prevented the whole outcome.
    pub error: Option<String>,
}

impl StrategyOutcome {
    /// Mean per-script compile latency (ms, fastest compile of each) over the scripts that compiled.
    pub fn mean_compile_ms(&self) -> Option<f64> {
        let v: Vec<f64> = self
            .rows
            .iter()
            .filter(|r| r.error.is_none())
            .map(Row::compile_ms)
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    }

    /// Whether every script with a known answer returned it.
    pub fn all_correct(&self) -> bool {
        self.error.is_none() && self.rows.iter().all(|r| r.correct() != Some(false))
    }

    fn row(&self, script: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.script == script && r.error.is_none())
    }
}

/// A whole run: where and when, and every outcome.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BenchReport {
    /// UTC date and time of the run.
    pub date: String,
    /// CPU model, core count, memory.
    pub machine: String,
    pub llvm: String,
    /// `quick`, `full`, `thinjit bench`, ...
    pub mode: String,
    /// Whether the project's targets apply (the bundled workloads); `false` for a user's own library.
    pub graded: bool,
    pub outcomes: Vec<StrategyOutcome>,
    /// Where thinjit's `summary` and LLVM's importer imported different things, and why.
    #[serde(default)]
    pub differences: Vec<ImportDifference>,
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn kib(bytes: usize) -> String {
    format!("{:.1}", bytes as f64 / 1024.0)
}

/// The thinjit strategy compared with LLVM's importer.
pub const THINJIT: &str = "summary@100";
/// LLVM's importer at the same limit.
pub const LLVM_IMPORTER: &str = "llvm-importer@100";

impl BenchReport {
    /// Everything: the per-library summary, thinjit ÷ LLVM's importer per script, the import-list differences,
    /// the targets (graded runs only), then one row per library × script × strategy with its stage times.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "thinjit strategies benchmark — {} — {} — LLVM {} — {}\n",
            self.date, self.machine, self.llvm, self.mode
        );
        s.push_str(&self.summary_markdown());
        s.push('\n');
        let vs = self.versus_llvm_markdown();
        if !vs.is_empty() {
            s.push_str(&vs);
            s.push('\n');
        }
        if !self.differences.is_empty() {
            s.push_str(&self.differences_markdown());
            s.push('\n');
        }
        let vn = self.per_script_goals_markdown();
        if !vn.is_empty() {
            s.push_str(&vn);
            s.push('\n');
        }
        if self.graded {
            s.push_str(&self.targets_markdown());
            s.push('\n');
        }
        s.push_str(&self.detail_markdown());
        s
    }

    /// One row per library × script × strategy: stage minima, compile min / median, object, run, result.
    pub fn detail_markdown(&self) -> String {
        let names = self.stage_names();
        let mut s = String::from("| library | script | strategy |");
        for n in &names {
            let _ = write!(s, " {n} ms |");
        }
        s.push_str(" compile ms (min / median) | object KiB | linked fns | run ms | result |\n|---|---|---|");
        for _ in &names {
            s.push_str("---:|");
        }
        s.push_str("---:|---:|---:|---:|---|\n");
        for o in &self.outcomes {
            if let Some(e) = &o.error {
                let _ = writeln!(
                    s,
                    "| {} | (all) | {} |{} | | | | error: {} |",
                    o.library,
                    o.strategy,
                    " |".repeat(names.len()),
                    e.replace('|', "/")
                );
                continue;
            }
            for r in &o.rows {
                let result = match (&r.error, r.correct()) {
                    (Some(e), _) => format!("error: {}", e.replace('|', "/")),
                    (None, Some(true)) => "ok".into(),
                    (None, Some(false)) => format!(
                        "WRONG ({} != {})",
                        r.result.map(|v| v.to_string()).unwrap_or_default(),
                        r.expected.map(|v| v.to_string()).unwrap_or_default()
                    ),
                    (None, None) => r.result.map(|v| v.to_string()).unwrap_or_default(),
                };
                let _ = write!(s, "| {} | {} | {} |", o.library, r.script, o.strategy);
                for n in &names {
                    let _ = write!(s, " {} |", ms(r.stage_ms(n)));
                }
                let _ = writeln!(
                    s,
                    " {} / {} | {} | {} | {} | {} |",
                    ms(r.compile_ms),
                    ms(r.median_compile_ms),
                    kib(r.object_bytes),
                    r.linked_functions,
                    r.run_ms.map(ms).unwrap_or_default(),
                    result
                );
            }
        }
        s
    }

    /// The engine's stage names, in pipeline order, over every row.
    fn stage_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for r in self.outcomes.iter().flat_map(|o| &o.rows) {
            for st in &r.stages {
                if !names.contains(&st.stage) {
                    names.push(st.stage.clone());
                }
            }
        }
        names
    }

    /// For scripts with no reference result (synthetic ones, a user's), takes the `none` strategy's result as
    /// the expected one, so that every other strategy is checked against it.
    pub fn fill_expected_from_none(&mut self) {
        let reference: BTreeMap<(String, String), i64> = self
            .outcomes
            .iter()
            .filter(|o| o.strategy == "none")
            .flat_map(|o| {
                o.rows.iter().filter_map(move |r| {
                    r.result.map(|v| ((o.library.clone(), r.script.clone()), v))
                })
            })
            .collect();
        for o in &mut self.outcomes {
            for r in &mut o.rows {
                if r.expected.is_none() {
                    r.expected = reference
                        .get(&(o.library.clone(), r.script.clone()))
                        .copied();
                }
            }
        }
    }

    /// Per library × strategy: mean compile latency, its ratio to `none` and `full-link`, setup, peak RSS,
    /// correctness and the semantic checks.
    pub fn summary_markdown(&self) -> String {
        let mut s = String::new();
        s.push_str("| library | fns | strategy | mean compile ms | × none | full-link ÷ this | setup ms | peak RSS MiB | results | one global instance | initializers once |\n");
        s.push_str("|---|---:|---|---:|---:|---:|---:|---:|---|---|---|\n");
        for o in &self.outcomes {
            let none = self
                .find(&o.library, "none")
                .and_then(|x| x.mean_compile_ms());
            let full = self
                .find(&o.library, "full-link")
                .and_then(|x| x.mean_compile_ms());
            let mean = o.mean_compile_ms();
            let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                o.library,
                o.library_functions,
                o.strategy,
                mean.map(ms).unwrap_or_default(),
                ratio(mean, none),
                ratio(full, mean),
                ms(o.setup_ms),
                o.peak_rss_kib
                    .map(|k| format!("{:.0}", k as f64 / 1024.0))
                    .unwrap_or_default(),
                if o.error.is_some() {
                    "error"
                } else if o.all_correct() {
                    "ok"
                } else {
                    "WRONG"
                },
                check_cell(&o.one_instance),
                check_cell(&o.init_once),
            );
        }
        s
    }

    /// Per script: thinjit (`summary@100`) and LLVM's importer (`llvm-importer@100`) compile times from this run,
    /// their ratio (below 1: thinjit is faster), the import stage of each, and how many import-list differences.
    pub fn versus_llvm_markdown(&self) -> String {
        let mut s = String::new();
        let libraries = self.libraries();
        for lib in libraries {
            let (Some(t), Some(l)) = (self.find(lib, THINJIT), self.find(lib, LLVM_IMPORTER))
            else {
                continue;
            };
            if s.is_empty() {
                s.push_str("| library | script | summary@100 compile ms (min / median) | llvm-importer compile ms (min / median) | thinjit ÷ llvm-importer (min / median) | paired ÷ (median, interleaved runs) | plan + import ms: summary / llvm-importer | imports: summary / llvm-importer | differences | bound: thinjit ÷ llvm-importer with a free import |\n");
                s.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
            }
            for tr in &t.rows {
                let Some(lr) = l.row(&tr.script) else {
                    continue;
                };
                if tr.error.is_some() {
                    continue;
                }
                let diffs = self
                    .differences
                    .iter()
                    .filter(|d| d.library == lib && d.script == tr.script)
                    .count();
                let paired = match paired_ratio(t, tr, l, lr) {
                    Some(r) => format!("{r:.2}"),
                    None => "–".to_owned(),
                };
                let _ = writeln!(
                    s,
                    "| {lib} | {} | {} / {} | {} / {} | {:.2} / {:.2} | {paired} | {} / {} | {} / {} | {diffs} | {:.2} |",
                    tr.script,
                    ms(tr.compile_ms),
                    ms(tr.median_compile_ms),
                    ms(lr.compile_ms),
                    ms(lr.median_compile_ms),
                    tr.compile_ms / lr.compile_ms,
                    tr.median_compile_ms / lr.median_compile_ms,
                    ms(tr.import_ms()),
                    ms(lr.import_ms()),
                    tr.imported_functions.len() + tr.imported_variables.len(),
                    lr.imported_functions.len() + lr.imported_variables.len(),
                    free_import_bound(tr, lr),
                );
            }
        }
        s
    }

    /// Per script, issue 17's two ratios from this run: the fastest compile under `none`, `summary@100`,
    /// `llvm-importer@100` and `full-link`; `summary ÷ none` against its goal (≤ 1.3 for scripts importing ≤ 10
    /// functions, ≤ 2.0 for the rest) and `summary ÷ llvm-importer` against ≤ ⅓, each with its bound: the
    /// ratio thinjit would reach if planning and importing took no time at all (what parsing, O3, code generation
    /// and linking of the script with its inlined helpers cost on their own). A miss whose bound is above the goal
    /// cannot be closed by a faster import. Empty without `summary@100` and `none`.
    pub fn per_script_goals_markdown(&self) -> String {
        let mut s = String::new();
        for lib in self.libraries() {
            let (Some(t), Some(n)) = (self.find(lib, THINJIT), self.find(lib, "none")) else {
                continue;
            };
            let llvm = self.find(lib, LLVM_IMPORTER);
            let full = self.find(lib, "full-link");
            if s.is_empty() {
                s.push_str("| library | script | compile ms (min): none / summary@100 / llvm-importer / full-link | plan + import ms | imported functions | summary ÷ none (min / paired) | goal | bound | met | summary ÷ llvm-importer (min / paired) | goal | bound | met |\n");
                s.push_str("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|\n");
            }
            for tr in t.rows.iter().filter(|r| r.error.is_none()) {
                let Some(nr) = n.row(&tr.script).filter(|r| r.error.is_none()) else {
                    continue;
                };
                let compile = |o: Option<&StrategyOutcome>| {
                    row_of(o, &tr.script).map_or("–".to_owned(), |(_, r)| ms(r.compile_ms))
                };
                let paired = |o: &StrategyOutcome, r: &Row| match paired_ratio(t, tr, o, r) {
                    Some(x) => format!("{x:.2}"),
                    None => "–".to_owned(),
                };
                let goal = none_ratio_goal(tr);
                let ratio = tr.compile_ms / nr.compile_ms;
                let bound = free_import_bound(tr, nr);
                let versus_llvm = match row_of(llvm, &tr.script) {
                    Some((o, lr)) => {
                        let r = tr.compile_ms / lr.compile_ms;
                        let b = free_import_bound(tr, lr);
                        format!(
                            "{r:.2} / {} | ≤ 0.33 | {b:.2} | {}",
                            paired(o, lr),
                            met_cell(r <= 1.0 / 3.0, b > 1.0 / 3.0)
                        )
                    }
                    None => "– | ≤ 0.33 | – | –".to_owned(),
                };
                let _ = writeln!(
                    s,
                    "| {lib} | {} | {} / {} / {} / {} | {} | {} | {ratio:.2} / {} | ≤ {goal:.1} | {bound:.2} | {} | {versus_llvm} |",
                    tr.script,
                    ms(nr.compile_ms),
                    ms(tr.compile_ms),
                    compile(llvm),
                    compile(full),
                    ms(tr.import_ms()),
                    tr.imported_functions.len(),
                    paired(n, nr),
                    met_cell(ratio <= goal, bound > goal),
                );
            }
        }
        s
    }

    /// Every import-list difference with its reason.
    pub fn differences_markdown(&self) -> String {
        let mut s = String::from(
            "| library | script | symbol | kind | imported only by | why |\n|---|---|---|---|---|---|\n",
        );
        for d in &self.differences {
            let _ = writeln!(
                s,
                "| {} | {} | `{}` | {} | {} | {} |",
                d.library,
                d.script,
                d.symbol,
                d.kind,
                d.imported_by,
                d.reason.replace('|', "/")
            );
        }
        s
    }

    fn libraries(&self) -> Vec<&str> {
        let mut v: Vec<&str> = Vec::new();
        for o in &self.outcomes {
            if !v.contains(&o.library.as_str()) {
                v.push(&o.library);
            }
        }
        v
    }

    fn find(&self, library: &str, strategy: &str) -> Option<&StrategyOutcome> {
        self.outcomes
            .iter()
            .find(|o| o.library == library && o.strategy == strategy)
    }

    /// The targets, per library (graded runs only): compile latency of `summary@100` against `full-link`
    /// (≥ 10× faster) and `none` (within 1.5×); per script against LLVM's importer (faster, and issue 17's
    /// ≤ ⅓); run time of call-heavy scripts against `full-link` (within 5%) and `none` (≥ 2× faster).
    pub fn targets(&self) -> Vec<Target> {
        let mut out = Vec::new();
        if !self.graded {
            return out;
        }
        for lib in self.libraries() {
            if let (Some(sum), Some(llvm)) =
                (self.find(lib, THINJIT), self.find(lib, LLVM_IMPORTER))
            {
                for tr in sum.rows.iter().filter(|r| r.error.is_none()) {
                    let Some(lr) = llvm.row(&tr.script) else {
                        continue;
                    };
                    let ratio = tr.compile_ms / lr.compile_ms;
                    let note = format!(
                        "{}: summary@100 {} ms, llvm-importer {} ms (import {} / {} ms)",
                        tr.script,
                        ms(tr.compile_ms),
                        ms(lr.compile_ms),
                        ms(tr.import_ms()),
                        ms(lr.import_ms())
                    );
                    out.push(Target {
                        library: lib.into(),
                        what: format!("compile `{}`: summary@100 ÷ llvm-importer < 1", tr.script),
                        value: ratio,
                        met: ratio < 1.0,
                        note: note.clone(),
                    });
                    let bound = free_import_bound(tr, lr);
                    out.push(Target {
                        library: lib.into(),
                        what: format!(
                            "compile `{}`: summary@100 ÷ llvm-importer ≤ 1/3 (issue 17)",
                            tr.script
                        ),
                        value: ratio,
                        met: ratio <= 1.0 / 3.0,
                        note: format!("{note}; {}", bound_note(bound, 1.0 / 3.0)),
                    });
                }
            }
            if let (Some(sum), Some(none)) = (self.find(lib, THINJIT), self.find(lib, "none")) {
                for tr in sum.rows.iter().filter(|r| r.error.is_none()) {
                    let Some(nr) = none.row(&tr.script).filter(|r| r.error.is_none()) else {
                        continue;
                    };
                    let ratio = tr.compile_ms / nr.compile_ms;
                    let goal = none_ratio_goal(tr);
                    out.push(Target {
                        library: lib.into(),
                        what: format!(
                            "compile `{}`: summary@100 ÷ none ≤ {goal:.1} ({} imports, issue 17)",
                            tr.script,
                            tr.imported_functions.len()
                        ),
                        value: ratio,
                        met: ratio <= goal,
                        note: format!(
                            "{}: summary@100 {} ms (plan + import {} ms), none {} ms; {}",
                            tr.script,
                            ms(tr.compile_ms),
                            ms(tr.import_ms()),
                            ms(nr.compile_ms),
                            bound_note(free_import_bound(tr, nr), goal)
                        ),
                    });
                }
            }
            let (Some(sum), Some(none), Some(full)) = (
                self.find(lib, THINJIT),
                self.find(lib, "none"),
                self.find(lib, "full-link"),
            ) else {
                continue;
            };
            if let (Some(s), Some(n), Some(f)) = (
                sum.mean_compile_ms(),
                none.mean_compile_ms(),
                full.mean_compile_ms(),
            ) {
                out.push(Target {
                    library: lib.into(),
                    what: "compile: full-link ÷ summary@100 ≥ 10".into(),
                    value: f / s,
                    met: f / s >= 10.0,
                    note: format!("{}; {}", stage_note(full), stage_note(sum)),
                });
                out.push(Target {
                    library: lib.into(),
                    what: "compile: summary@100 ÷ none ≤ 1.5".into(),
                    value: s / n,
                    met: s / n <= 1.5,
                    note: format!("{}; {}", stage_note(sum), stage_note(none)),
                });
            }
            for row in sum.rows.iter().filter(|r| r.call_heavy) {
                let find_row = |o: &StrategyOutcome| {
                    o.rows
                        .iter()
                        .find(|r| r.script == row.script)
                        .and_then(|r| r.run_ms)
                };
                let (Some(s), Some(n), Some(f)) = (row.run_ms, find_row(none), find_row(full))
                else {
                    continue;
                };
                let note = format!(
                    "run ms: summary@100 {}, full-link {}, none {}",
                    ms(s),
                    ms(f),
                    ms(n)
                );
                out.push(Target {
                    library: lib.into(),
                    what: format!("run `{}`: summary@100 ÷ full-link ≤ 1.05", row.script),
                    value: s / f,
                    met: s / f <= 1.05,
                    note: note.clone(),
                });
                out.push(Target {
                    library: lib.into(),
                    what: format!("run `{}`: none ÷ summary@100 ≥ 2", row.script),
                    value: n / s,
                    met: n / s >= 2.0,
                    note,
                });
            }
        }
        out
    }

    /// The targets as a markdown table.
    pub fn targets_markdown(&self) -> String {
        let mut s = String::from(
            "| library | target | measured | met | where the time goes |\n|---|---|---:|---|---|\n",
        );
        for t in self.targets() {
            let _ = writeln!(
                s,
                "| {} | {} | {:.2} | {} | {} |",
                t.library,
                t.what,
                t.value,
                if t.met { "yes" } else { "**no**" },
                t.note
            );
        }
        s
    }

    /// One CSV line per library × strategy × script, with the min and median of every engine stage.
    pub fn csv(&self) -> String {
        let names = self.stage_names();
        let mut s = String::from("library,library_functions,strategy,script,");
        for n in &names {
            let _ = write!(s, "{n}_min_ms,{n}_median_ms,");
        }
        s.push_str(
            "compile_min_ms,compile_median_ms,object_bytes,linked_functions,imported_functions,imported_variables,\
             iterations,run_ms,result,expected,correct,call_heavy,setup_ms,peak_rss_kib,one_instance,init_once,error\n",
        );
        for o in &self.outcomes {
            for r in &o.rows {
                let _ = write!(
                    s,
                    "{},{},{},{},",
                    o.library, o.library_functions, o.strategy, r.script
                );
                for n in &names {
                    let st = r.stages.iter().find(|st| &st.stage == n);
                    let _ = write!(
                        s,
                        "{:.4},{:.4},",
                        st.map_or(0.0, |x| x.min_ms),
                        st.map_or(0.0, |x| x.median_ms)
                    );
                }
                let _ = writeln!(
                    s,
                    "{:.4},{:.4},{},{},{},{},{},{},{},{},{},{},{:.3},{},{},{},{}",
                    r.compile_ms,
                    r.median_compile_ms,
                    r.object_bytes,
                    r.linked_functions,
                    r.imported_functions.len(),
                    r.imported_variables.len(),
                    r.iterations,
                    r.run_ms.map(|v| format!("{v:.4}")).unwrap_or_default(),
                    r.result.map(|v| v.to_string()).unwrap_or_default(),
                    r.expected.map(|v| v.to_string()).unwrap_or_default(),
                    r.correct().map(|v| v.to_string()).unwrap_or_default(),
                    r.call_heavy,
                    o.setup_ms,
                    o.peak_rss_kib.map(|v| v.to_string()).unwrap_or_default(),
                    o.one_instance.cell(),
                    o.init_once.cell(),
                    csv_text(r.error.as_deref().or(o.error.as_deref()).unwrap_or("")),
                );
            }
        }
        s
    }

    /// An SVG line plot: mean per-script compile latency (log y) against library size in functions (log x),
    /// one line per strategy.
    pub fn svg(&self) -> String {
        let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for o in &self.outcomes {
            if let Some(m) = o.mean_compile_ms() {
                series
                    .entry(o.strategy.clone())
                    .or_default()
                    .push((o.library_functions.max(1) as f64, m.max(1e-3)));
            }
        }
        for points in series.values_mut() {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        let all: Vec<(f64, f64)> = series.values().flatten().copied().collect();
        let (w, h, left, right, top, bottom) = (760.0, 460.0, 70.0, 210.0, 30.0, 50.0);
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" \
             font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        );
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">Per-script compile latency \
             (Engine::add_script, fastest compile) vs. helper library size</text>",
            left + (w - left - right) / 2.0
        );
        if all.is_empty() {
            s.push_str("</svg>\n");
            return s;
        }
        let lg = |v: f64| v.log10();
        let (mut x0, mut x1) = (f64::MAX, f64::MIN);
        let (mut y0, mut y1) = (f64::MAX, f64::MIN);
        for &(x, y) in &all {
            x0 = x0.min(lg(x));
            x1 = x1.max(lg(x));
            y0 = y0.min(lg(y));
            y1 = y1.max(lg(y));
        }
        let (x0, x1) = (x0.floor(), x1.ceil().max(x0.floor() + 1.0));
        let (y0, y1) = (y0.floor(), y1.ceil().max(y0.floor() + 1.0));
        let (pw, ph) = (w - left - right, h - top - bottom);
        let px = |x: f64| left + (lg(x) - x0) / (x1 - x0) * pw;
        let py = |y: f64| top + ph - (lg(y) - y0) / (y1 - y0) * ph;
        let _ = writeln!(
            s,
            "<rect x=\"{left}\" y=\"{top}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#444\"/>"
        );
        let mut e = x0 as i32;
        while e as f64 <= x1 {
            let x = px(10f64.powi(e));
            let _ = writeln!(
                s,
                "<line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/><text x=\"{x:.1}\" \
                 y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                top + ph,
                top + ph + 16.0,
                fmt_pow10(e)
            );
            e += 1;
        }
        let mut e = y0 as i32;
        while e as f64 <= y1 {
            let y = py(10f64.powi(e));
            let _ = writeln!(
                s,
                "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" \
                 y=\"{:.1}\" text-anchor=\"end\">{} ms</text>",
                left + pw,
                left - 6.0,
                y + 4.0,
                fmt_ms_pow10(e)
            );
            e += 1;
        }
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">helper library functions (log)</text>",
            left + pw / 2.0,
            h - 10.0
        );
        const COLORS: [&str; 8] = [
            "#1f77b4", "#d62728", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
        ];
        for (i, (name, points)) in series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let path: Vec<String> = points
                .iter()
                .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                .collect();
            let _ = writeln!(
                s,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
                path.join(" ")
            );
            for &(x, y) in points {
                let _ = writeln!(
                    s,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{color}\"><title>{name}: {:.0} fns, {:.2} \
                     ms</title></circle>",
                    px(x),
                    py(y),
                    x,
                    y
                );
            }
            let ly = top + 10.0 + i as f64 * 20.0;
            let lx = left + pw + 15.0;
            let _ = writeln!(
                s,
                "<line x1=\"{lx:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{color}\" \
                 stroke-width=\"2\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                lx + 25.0,
                lx + 32.0,
                ly + 4.0,
                xml_text(name)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

/// A target ratio and whether it was met.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Target {
    pub library: String,
    pub what: String,
    pub value: f64,
    pub met: bool,
    /// Where the time goes (per-stage means), to explain a miss.
    pub note: String,
}

/// Mean stage times of an outcome's scripts, as text.
fn stage_note(o: &StrategyOutcome) -> String {
    let rows: Vec<&Row> = o.rows.iter().filter(|r| r.error.is_none()).collect();
    let Some(first) = rows.first() else {
        return String::new();
    };
    let n = rows.len() as f64;
    let parts: Vec<String> = first
        .stages
        .iter()
        .map(|st| {
            let mean = rows.iter().map(|r| r.stage_ms(&st.stage)).sum::<f64>() / n;
            format!("{} {}", st.stage, ms(mean))
        })
        .collect();
    format!("{}: {} ms", o.strategy, parts.join(" + "))
}

fn check_cell(c: &Check) -> String {
    match c.verdict {
        Verdict::NotApplicable => "n/a".into(),
        Verdict::Ok => "ok".into(),
        Verdict::Broken => format!("**BROKEN**: {}", c.detail.replace('|', "/")),
    }
}

fn csv_text(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\"").replace('\n', " "))
    } else {
        s.to_owned()
    }
}

fn xml_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn fmt_pow10(e: i32) -> String {
    if (0..=6).contains(&e) {
        10u64.pow(e as u32).to_string()
    } else {
        format!("1e{e}")
    }
}

fn fmt_ms_pow10(e: i32) -> String {
    if e >= 0 {
        fmt_pow10(e)
    } else {
        format!("{}", 10f64.powi(e))
    }
}

/// The row of `script` in `outcome`, when both exist and the script compiled.
fn row_of<'a>(
    outcome: Option<&'a StrategyOutcome>,
    script: &str,
) -> Option<(&'a StrategyOutcome, &'a Row)> {
    let outcome = outcome?;
    let row = outcome.row(script).filter(|r| r.error.is_none())?;
    Some((outcome, row))
}

/// What `summary`'s fastest compile of a script ÷ `other`'s would be if planning and importing took no time:
/// the lowest ratio any importer that inlines the same helpers can reach with the same optimization and code
/// generation. Stage minima are summed because the compile's own minimum may come from another repetition.
pub fn free_import_bound(summary: &Row, other: &Row) -> f64 {
    let without_import = (summary.compile_ms - summary.import_ms()).max(0.0);
    without_import / other.compile_ms
}

/// Issue 17's goal for `summary ÷ none` on a script: ≤ 1.3 when it imports at most 10 functions, else ≤ 2.0.
pub fn none_ratio_goal(summary: &Row) -> f64 {
    if summary.imported_functions.len() <= 10 {
        1.3
    } else {
        2.0
    }
}

fn bound_note(bound: f64, goal: f64) -> String {
    if bound > goal {
        format!(
            "with a free import {bound:.2}: above the goal, O3 + codegen of the inlined code alone exceed it"
        )
    } else {
        format!("with a free import {bound:.2}")
    }
}

fn met_cell(met: bool, unreachable: bool) -> &'static str {
    match (met, unreachable) {
        (true, _) => "yes",
        (false, true) => "**no** (bound above the goal)",
        (false, false) => "**no**",
    }
}

/// For two strategies' rows of one script measured interleaved: the median, over the repetitions, of the
/// ratio of their n-th compiles (which ran back to back, so noise hits both alike). `None` otherwise.
pub fn paired_ratio(a: &StrategyOutcome, ar: &Row, b: &StrategyOutcome, br: &Row) -> Option<f64> {
    let (x, y) = (&ar.compile_samples_ms, &br.compile_samples_ms);
    if !(a.interleaved && b.interleaved) || x.is_empty() || x.len() != y.len() {
        return None;
    }
    let mut ratios: Vec<f64> = x.iter().zip(y).map(|(p, q)| p / q).collect();
    ratios.sort_by(f64::total_cmp);
    let n = ratios.len();
    Some(if n % 2 == 1 {
        ratios[n / 2]
    } else {
        (ratios[n / 2 - 1] + ratios[n / 2]) / 2.0
    })
}
