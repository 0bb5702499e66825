//! The background compile thread: builds tier 1 from a script's source and its tier-0 profile, then switches
//! the stubs.
//!
//! In: promotion requests (script ids) queued by the JIT'd counting thunks. Out: tier-1 code under the
//! script's second resource tracker, its slots pointing there, and the script's [`TierReport`] filled in — or
//! the error, with tier 0 left running.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use super::{
    callee_hotness, prepare, tier1_level, Promotion, SiteProfile, Tier, Tiered, TieringConfig,
};
use crate::import::{self, ImportReport};
use crate::jit::pipeline::{Pipeline, ScriptTimes};
use crate::jit::runtime::internalize_shared_definitions;
use crate::jit::Strategy;
use crate::llvm::orc::LlJit;
use crate::llvm::{Context, Module};
use crate::{Error, Result};

/// A request to the background thread.
pub(crate) enum Job {
    /// Promote the script with this id (duplicates are ignored).
    Promote(u64),
    Stop,
}

/// The background thread and its queue.
pub(crate) struct Worker {
    queue: Sender<Job>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// What the thread works with.
struct Context_ {
    config: TieringConfig,
    jit: Arc<LlJit>,
    pipeline: Arc<Pipeline>,
    scripts: Arc<Mutex<HashMap<u64, Arc<Tiered>>>>,
}

/// A compiled tier 1, not yet installed.
struct Built {
    object: Vec<u8>,
    bodies: Vec<(usize, String)>,
    import: Option<ImportReport>,
    plus: Vec<String>,
    minus: Vec<String>,
    times: ScriptTimes,
}

impl Worker {
    pub(super) fn start(
        config: TieringConfig,
        jit: Arc<LlJit>,
        pipeline: Arc<Pipeline>,
        scripts: Arc<Mutex<HashMap<u64, Arc<Tiered>>>>,
    ) -> Result<Self> {
        let (queue, jobs) = channel();
        let cx = Context_ {
            config,
            jit,
            pipeline,
            scripts,
        };
        let thread = std::thread::Builder::new()
            .name("thinjit-tier".into())
            .spawn(move || run(cx, jobs))
            .map_err(|e| Error::Jit {
                context: "starting the tier-1 compile thread".into(),
                source: crate::OrcFailure::other(e.to_string()),
            })?;
        Ok(Worker {
            queue,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// A sender for the JIT'd code's requests.
    pub(super) fn queue(&self) -> Sender<Job> {
        self.queue.clone()
    }

    /// Stops the thread after the job it is on and waits for it.
    pub(super) fn stop(&self) {
        let _ = self.queue.send(Job::Stop);
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

fn run(cx: Context_, jobs: Receiver<Job>) {
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Stop => break,
            Job::Promote(id) => {
                let script = cx.scripts.lock().ok().and_then(|s| s.get(&id).cloned());
                if let Some(script) = script {
                    promote(&cx, &script);
                }
            }
        }
    }
}

/// Builds and installs tier 1 of `t`, or records why it could not.
fn promote(cx: &Context_, t: &Tiered) {
    {
        let mut state = t.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.removed
            || state.promoting
            || state.report.promotion.is_some()
            || state.report.error.is_some()
        {
            return;
        }
        state.promoting = true;
        state.requested = Some(Instant::now());
    }
    let requested_after = t.added.elapsed();
    let (entries, mut sites) = t.snapshot();
    for s in &mut sites {
        s.hotness = cx.config.classify(s.count);
    }
    let reason = entries
        .iter()
        .find(|e| e.calls >= cx.config.threshold_calls)
        .map(|e| {
            format!(
                "entry `{}` reached {} calls (threshold {})",
                e.name, e.calls, cx.config.threshold_calls
            )
        })
        .unwrap_or_else(|| "promotion requested".into());
    let built = build(cx, t, &sites);

    let mut state = t.state.lock().unwrap_or_else(|e| e.into_inner());
    state.promoting = false;
    state.report.entries = entries;
    state.report.sites = sites;
    let outcome = built.and_then(|b| {
        if state.removed {
            return Ok(None);
        }
        let start = Instant::now();
        let tracker = install(cx, t, &b)?;
        let mut b = b;
        b.times.link = start.elapsed();
        Ok(Some((b, tracker)))
    });
    match outcome {
        Ok(Some((b, tracker))) => {
            state.tier1 = Some(tracker);
            state.report.tier = Tier::One;
            state.report.promotion = Some(Promotion {
                requested_after,
                switched_after: t.added.elapsed(),
                reason,
                times: b.times,
                object_size: b.object.len(),
            });
            state.report.import = b.import;
            state.report.imported_because_of_profile = b.plus;
            state.report.not_imported_because_of_profile = b.minus;
        }
        Ok(None) => {}
        Err(e) => state.report.error = Some(format!("tier 1 of `{}`: {e}", t.name)),
    }
    drop(state);
    t.done.notify_all();
}

/// Compiles tier 1: parse the source again, the same preparation as tier 0, the profile-guided import, the
/// engine's pipeline, code generation.
fn build(cx: &Context_, t: &Tiered, sites: &[SiteProfile]) -> Result<Built> {
    let mut times = ScriptTimes::default();
    let start = Instant::now();
    let ctx = Context::new();
    let mut module = Module::parse(&ctx, &t.source, &t.name)?;
    if module.triple().is_empty() {
        module.set_triple(&cx.jit.triple());
    }
    if module.data_layout().is_empty() {
        module.set_data_layout(&cx.jit.data_layout());
    }
    let summary = cx.pipeline.summary.as_deref();
    let refs = prepare::collect_sites(&module, summary.map(|s| s.index()));
    // Constructors ran once, from tier 0.
    crate::jit::runtime::drop_structors(&mut module);
    crate::jit::runtime::redirect_atexit(&mut module);
    crate::jit::runtime::localize_dso_handle(&mut module, t.dso_key);
    internalize_shared_definitions(&module);
    let importing = cx.pipeline.strategy == Strategy::Summary && summary.is_some();
    // The plan a tier 1 without the profile would make, for the report.
    let without: BTreeSet<String> = match (importing, summary) {
        (true, Some(summary)) => {
            let symbols = import::script_symbols(&module);
            import::plan(
                summary.index(),
                &symbols,
                &cx.pipeline.import_config,
                cx.pipeline.mode,
            )
            .function_names()
            .into_iter()
            .map(str::to_owned)
            .collect()
        }
        _ => BTreeSet::new(),
    };
    let hotness: Vec<_> = sites.iter().map(|s| s.hotness).collect();
    let bodies = prepare::tier1(&module, t.id, &t.entries, &t.globals, &refs, &hotness)?;
    drop(refs);
    times.parse = start.elapsed();

    let before = module.defined_symbols();
    let start = Instant::now();
    let import = match (importing, summary) {
        (true, Some(summary)) => Some(import::import_profiled(
            &mut module,
            summary,
            &cx.pipeline.import_config,
            cx.pipeline.mode,
            &callee_hotness(sites),
        )?),
        _ => None,
    };
    times.import = start.elapsed();
    let with: BTreeSet<String> = import
        .as_ref()
        .map(|r| {
            r.imported_functions()
                .into_iter()
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let plus = with.difference(&without).cloned().collect();
    let minus = without.difference(&with).cloned().collect();

    let start = Instant::now();
    let level = tier1_level(&cx.pipeline);
    cx.pipeline
        .with_machine(|tm| crate::optimize::optimize(&mut module, tm, level))?;
    times.optimize = start.elapsed();
    let after = module.defined_symbols();
    if after != before {
        return Err(Error::Import {
            module: t.name.clone(),
            message: format!(
                "tier 1: import and optimization changed the script's definitions ({before:?} -> {after:?})"
            ),
        });
    }
    let start = Instant::now();
    let object = cx.pipeline.with_machine(|tm| tm.emit_object(&module))?;
    times.codegen = start.elapsed();
    Ok(Built {
        object,
        bodies,
        import,
        plus,
        minus,
        times,
    })
}

/// Adds tier 1 under a new tracker and switches the slots (called with the script's state locked, so a
/// removal waits for it or has already happened).
fn install(cx: &Context_, t: &Tiered, b: &Built) -> Result<crate::llvm::orc::ResourceTracker> {
    let tracker = cx.jit.create_tracker();
    let label = format!("{} (tier 1)", t.name);
    if let Err(source) = cx.jit.add_object_file(&b.object, &label, Some(&tracker)) {
        return Err(Error::Jit {
            context: format!("adding tier 1 of `{}`", t.name),
            source,
        });
    }
    let mut targets = Vec::with_capacity(b.bodies.len());
    for (slot, body) in &b.bodies {
        match cx.jit.lookup(body) {
            Ok(address) => targets.push((*slot, address)),
            Err(source) => {
                let _ = tracker.remove();
                cx.jit.clear_dead_symbol_names();
                return Err(Error::Jit {
                    context: format!("materializing tier 1 (`{body}`)"),
                    source,
                });
            }
        }
    }
    for (slot, address) in targets {
        t.slots[slot].store(address, Ordering::Release);
    }
    Ok(tracker)
}
