//! Benchmark results and their presentation: a markdown table, CSV and an SVG plot.
//!
//! In: [`StrategyOutcome`]s (one per library × strategy, possibly measured in child processes and sent back as
//! JSON). Out: text — markdown for the README and stdout, CSV for spreadsheets, a hand-written SVG of
//! per-script compile latency against library size (one line per strategy), and the target ratios the issue
//! asks for, each with whether it was met.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// One script compiled and run with one strategy.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Row {
    pub script: String,
    /// Plan + import (summary) or parse + prepare + link of the library (full link), milliseconds.
    pub import_ms: f64,
    /// `default<O3>`, milliseconds.
    pub optimize_ms: f64,
    /// Adding the module to ORC and looking up its entry (codegen + JITLink), milliseconds.
    pub materialize_ms: f64,
    /// Helper functions linked into the script before O3.
    pub linked_functions: usize,
    /// Helper functions still defined in the script after O3 (private copies).
    pub copied_functions: usize,
    /// Size of the object file the optimized module compiles to.
    pub object_bytes: usize,
    /// Fastest of the timed runs of `bench_main(iterations)`, milliseconds.
    pub run_ms: Option<f64>,
    pub iterations: i64,
    pub result: Option<i64>,
    pub expected: Option<i64>,
    pub call_heavy: bool,
    /// Why the script could not be compiled or run.
    pub error: Option<String>,
}

impl Row {
    /// Per-script compile latency: import + O3 + materialize.
    pub fn compile_ms(&self) -> f64 {
        self.import_ms + self.optimize_ms + self.materialize_ms
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
    /// Loading the summary and JIT'ing the resident helper runtime once, milliseconds.
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
    /// A failure that prevented the whole outcome.
    pub error: Option<String>,
}

impl StrategyOutcome {
    /// Mean per-script compile latency (ms) over the scripts that compiled.
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
}

/// A whole run: where and when, and every outcome.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BenchReport {
    /// UTC date and time of the run.
    pub date: String,
    /// CPU model, core count, memory.
    pub machine: String,
    pub llvm: String,
    /// `quick` or `full`.
    pub mode: String,
    pub outcomes: Vec<StrategyOutcome>,
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

impl BenchReport {
    /// The detailed markdown table (one row per library × script × strategy) followed by the per-library
    /// summary and the targets.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "thinjit strategies benchmark — {} — {} — LLVM {} — {} mode\n",
            self.date, self.machine, self.llvm, self.mode
        );
        s.push_str(&self.summary_markdown());
        s.push('\n');
        s.push_str(&self.targets_markdown());
        s.push('\n');
        s.push_str("| library | script | strategy | import ms | O3 ms | materialize ms | compile ms | object KiB | linked fns | run ms | result |\n");
        s.push_str("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
        for o in &self.outcomes {
            if let Some(e) = &o.error {
                let _ = writeln!(
                    s,
                    "| {} | (all) | {} | | | | | | | | error: {} |",
                    o.library,
                    o.strategy,
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
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    o.library,
                    r.script,
                    o.strategy,
                    ms(r.import_ms),
                    ms(r.optimize_ms),
                    ms(r.materialize_ms),
                    ms(r.compile_ms()),
                    kib(r.object_bytes),
                    r.linked_functions,
                    r.run_ms.map(ms).unwrap_or_default(),
                    result
                );
            }
        }
        s
    }

    /// For scripts with no reference result (synthetic ones), takes the `none` strategy's result as the
    /// expected one, so that every other strategy is checked against it.
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

    fn find(&self, library: &str, strategy: &str) -> Option<&StrategyOutcome> {
        self.outcomes
            .iter()
            .find(|o| o.library == library && o.strategy == strategy)
    }

    /// The targets, per library: compile latency of `summary@100` against `full-link` (≥ 10× faster)
    /// and `none` (within 1.5×); run time of call-heavy scripts against `full-link` (within 5%) and `none`
    /// (≥ 2× faster).
    pub fn targets(&self) -> Vec<Target> {
        let mut out = Vec::new();
        let libraries: Vec<&str> = {
            let mut v: Vec<&str> = self.outcomes.iter().map(|o| o.library.as_str()).collect();
            v.dedup();
            v
        };
        for lib in libraries {
            let (Some(sum), Some(none), Some(full)) = (
                self.find(lib, "summary@100"),
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

    /// One CSV line per library × strategy × script.
    pub fn csv(&self) -> String {
        let mut s = String::from(
            "library,library_functions,strategy,script,import_ms,optimize_ms,materialize_ms,compile_ms,\
             object_bytes,linked_functions,copied_functions,iterations,run_ms,result,expected,correct,call_heavy,\
             setup_ms,peak_rss_kib,one_instance,init_once,error\n",
        );
        for o in &self.outcomes {
            for r in &o.rows {
                let _ = writeln!(
                    s,
                    "{},{},{},{},{:.4},{:.4},{:.4},{:.4},{},{},{},{},{},{},{},{},{},{:.3},{},{},{},{}",
                    o.library,
                    o.library_functions,
                    o.strategy,
                    r.script,
                    r.import_ms,
                    r.optimize_ms,
                    r.materialize_ms,
                    r.compile_ms(),
                    r.object_bytes,
                    r.linked_functions,
                    r.copied_functions,
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
             (import + O3 + materialize) vs. helper library size</text>",
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

/// Mean import / O3 / materialize times of an outcome's scripts, as text.
fn stage_note(o: &StrategyOutcome) -> String {
    let rows: Vec<&Row> = o.rows.iter().filter(|r| r.error.is_none()).collect();
    if rows.is_empty() {
        return String::new();
    }
    let n = rows.len() as f64;
    let mean = |f: fn(&Row) -> f64| rows.iter().map(|r| f(r)).sum::<f64>() / n;
    format!(
        "{}: import {} + O3 {} + materialize {} ms",
        o.strategy,
        ms(mean(|r| r.import_ms)),
        ms(mean(|r| r.optimize_ms)),
        ms(mean(|r| r.materialize_ms))
    )
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
