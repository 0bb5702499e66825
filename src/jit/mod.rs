//! The ORC engine: the helper runtime once, scripts many.
//!
//! In: an [`EngineBuilder`] (host symbols, shared libraries, the summary, the import configuration, the
//! runtime mode) and script modules as IR or bitcode. Out: an [`Engine`] that owns an ORC LLJIT, and per script
//! a [`ScriptHandle`] with the import report and stage times; typed [`JitFunction`]s that borrow the engine.
//!
//! The helper runtime lives in one of two ways ([`RuntimeMode`], an engine setting the import of every script is
//! planned for):
//! - **JIT-resident**: the summary's promoted helper library is added once; its static constructors run once,
//!   in priority order, before the first script; `__cxa_atexit` / `atexit` registrations from JIT'd code go to
//!   the engine, which runs them (in reverse) and the library's static destructors when it is dropped, before
//!   the JIT memory is freed.
//! - **Host-native**: the helpers are native code in the host or a shared library ([`EngineBuilder::shared_library`]);
//!   scripts import bodies for inlining and resolve everything else to the native symbols.
//!
//! Start-up: in JIT-resident mode the engine adds the summary's precompiled runtime object
//! (`precompute-summary --object`) when its target suits the JIT, else compiles the library bitcode;
//! [`Engine::startup_report`] says which, why, and how long each stage took. With a cache
//! ([`EngineBuilder::cache`], [`EngineBuilder::cache_dir`]) a script compiled before is added from its object.
//!
//! Scripts run through the named, timed stages of one pipeline ([`Stage`]: parse → verify → plan → import →
//! optimize → codegen → link), each under its own ORC resource tracker, either eagerly in
//! [`Engine::add_script`] (unresolved symbols surface there) or lazily inside ORC's IR transform on the thread
//! that first looks a symbol up ([`EngineBuilder::lazy`]); [`EngineBuilder::save_temps`] writes each stage's
//! output. Hosts keep scripts as borrowed [`ScriptHandle`]s or owned [`Script`]s.
//!
//! The files follow the structure: `builder` (what an engine is made from), `startup` (building it: the JIT,
//! symbol sources, the helper runtime), `pipeline` (the per-script stages), `runtime` (structors, `atexit`,
//! dso handles), `cache` (compiled scripts), `engine` (the registry, lookups, removal, handles).
//!
//! ```
//! use thinjit::jit::EngineBuilder;
//! let engine = EngineBuilder::new().build().unwrap();
//! let script = engine.add_script("add", b"define i32 @add(i32 %a, i32 %b) {\n %s = add i32 %a, %b\n ret i32 %s\n}\n").unwrap();
//! let add = script.lookup::<extern "C" fn(i32, i32) -> i32>("add").unwrap();
//! // SAFETY: `add` has this signature and its script is loaded (the borrow guarantees it).
//! assert_eq!(unsafe { add.call(40, 2) }, 42);
//! ```
//!
//! A looked-up function cannot outlive the engine:
//! ```compile_fail
//! use thinjit::jit::EngineBuilder;
//! let f = {
//!     let engine = EngineBuilder::new().build().unwrap();
//!     engine.lookup::<extern "C" fn() -> i32>("f").unwrap()
//! };
//! ```
//! nor can its script be removed while it is in use:
//! ```compile_fail
//! use thinjit::jit::EngineBuilder;
//! let engine = EngineBuilder::new().build().unwrap();
//! let script = engine.add_script("f", b"define i32 @f() {\n ret i32 1\n}\n").unwrap();
//! let f = script.lookup::<extern "C" fn() -> i32>("f").unwrap();
//! script.remove().unwrap();
//! unsafe { f.call() };
//! ```

mod builder;
mod cache;
mod checks;
mod contexts;
mod engine;
pub mod isolate;
mod pipeline;
mod resident;
pub(crate) mod runtime;
mod startup;
pub mod tier;

pub use crate::llvm::orc::JitFunction;
pub use crate::optimize::OptLevel;
pub use builder::{EngineBuilder, RuntimeMode, Strategy, DEFAULT_RUNTIME_LIBRARIES};
pub use contexts::{ContextReuse, SCRIPTS_PER_CONTEXT};
pub use engine::{Engine, Script, ScriptHandle};
pub use isolate::{IsolatedTimes, Isolation};
pub use pipeline::{ScriptReport, ScriptTimes, Stage};
pub use resident::{ResidentReport, ResidentRuntime, RUNTIME_MODULE_PREFIX};
pub use startup::{RuntimeSource, StartupReport, StartupTimes};
pub use tier::{Tier, TierReport, TierZeroOpt, TieringConfig};
