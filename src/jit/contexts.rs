//! Contexts reused across eagerly compiled scripts, a bounded number of times each.
//!
//! In: requests for a context to compile one script in. Out: a context from the pool (or a new one) with its
//! module cache on, so helper shards parsed for one script are copied, not parsed again, for the next ones
//! ([`Module::parse_bitcode_cached`](crate::llvm::Module::parse_bitcode_cached)). Inlining leaves types and
//! constants behind in a context, so each one is dropped after [`SCRIPTS_PER_CONTEXT`] scripts, as PostgreSQL
//! recreates its LLVMContext every 100 uses (`llvmjit.c`): memory stays bounded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::llvm::Context;

/// Scripts compiled in one context before it is dropped.
pub const SCRIPTS_PER_CONTEXT: u32 = 100;

/// A context taken from the pool, with the number of scripts compiled in it so far.
pub(crate) struct PooledContext {
    pub(crate) ctx: Context,
    uses: u32,
}

/// How the engine's contexts were reused ([`Engine::context_reuse`](super::Engine::context_reuse)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContextReuse {
    /// Contexts created for eagerly compiled scripts.
    pub contexts_created: u64,
    /// Scripts compiled in a pooled context.
    pub scripts: u64,
    /// Helper shards copied from a context's cache instead of parsed.
    pub shards_copied: u64,
    /// Helper shards parsed (and kept for the next scripts in that context).
    pub shards_parsed: u64,
}

/// Idle contexts, one per thread that compiled concurrently at most.
#[derive(Default)]
pub(crate) struct ContextPool {
    idle: Mutex<Vec<PooledContext>>,
    created: AtomicU64,
    scripts: AtomicU64,
    copied: AtomicU64,
    parsed: AtomicU64,
}

impl ContextPool {
    /// An idle context, or a new one with its module cache enabled.
    pub(crate) fn take(&self) -> PooledContext {
        if let Some(c) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return c;
        }
        self.created.fetch_add(1, Ordering::Relaxed);
        let ctx = Context::new();
        ctx.enable_module_cache();
        PooledContext { ctx, uses: 0 }
    }

    /// Returns a context after one script, once every module of that script is gone; drops it after
    /// [`SCRIPTS_PER_CONTEXT`] scripts.
    pub(crate) fn give_back(&self, mut c: PooledContext) {
        let before = c.ctx.module_cache_stats();
        c.uses += 1;
        self.scripts.fetch_add(1, Ordering::Relaxed);
        if c.uses >= SCRIPTS_PER_CONTEXT {
            self.count(before.hits, before.misses);
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(c);
        }
    }

    fn count(&self, hits: u64, misses: u64) {
        self.copied.fetch_add(hits, Ordering::Relaxed);
        self.parsed.fetch_add(misses, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> ContextReuse {
        let (mut copied, mut parsed) = (
            self.copied.load(Ordering::Relaxed),
            self.parsed.load(Ordering::Relaxed),
        );
        if let Ok(idle) = self.idle.lock() {
            for c in idle.iter() {
                let s = c.ctx.module_cache_stats();
                copied += s.hits;
                parsed += s.misses;
            }
        }
        ContextReuse {
            contexts_created: self.created.load(Ordering::Relaxed),
            scripts: self.scripts.load(Ordering::Relaxed),
            shards_copied: copied,
            shards_parsed: parsed,
        }
    }
}
