//! The CLI's host callbacks for JIT-resident helpers (`thinjit_host_alloc/free/log/event`), and printing of
//! entry results (integers, or boxed `WrappedValue`s read back through the helper API).

use std::sync::atomic::{AtomicI32, Ordering};

use thinjit::jit::{Engine, EngineBuilder};

/// Per-code event counters (index = event code, see `helpers/include/thinjit_host.h`).
pub static EVENTS: [AtomicI32; 8] = [const { AtomicI32::new(0) }; 8];

extern "C" fn host_alloc(size: usize) -> *mut libc::c_void {
    // SAFETY: plain malloc of a non-zero size.
    unsafe { libc::malloc(size.max(1)) }
}

extern "C" fn host_free(p: *mut libc::c_void) {
    // SAFETY: `p` came from `host_alloc` (or is null).
    unsafe { libc::free(p) }
}

extern "C" fn host_log(msg: *const libc::c_char) {
    if std::env::var_os("THINJIT_HOST_LOG").is_some() && !msg.is_null() {
        // SAFETY: the helpers pass NUL-terminated strings.
        let text = unsafe { std::ffi::CStr::from_ptr(msg) };
        eprintln!("[thinjit host] {}", text.to_string_lossy());
    }
}

extern "C" fn host_event(code: i32) {
    if (0..8).contains(&code) {
        EVENTS[code as usize].fetch_add(1, Ordering::SeqCst);
    }
}

/// Registers the host callbacks with `builder`.
pub fn register(builder: EngineBuilder) -> EngineBuilder {
    builder
        .host_symbol("thinjit_host_alloc", host_alloc as *const () as u64)
        .host_symbol("thinjit_host_free", host_free as *const () as u64)
        .host_symbol("thinjit_host_log", host_log as *const () as u64)
        .host_symbol("thinjit_host_event", host_event as *const () as u64)
}

/// How to call an entry and show its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Ret {
    /// `*_WRAPPED` entries return a boxed value, anything else an i64.
    Auto,
    I32,
    I64,
    F64,
    Void,
    /// `ptr (ptr, ptr)` returning a `WrappedValue*`, printed through the helper API.
    Wrapped,
}

/// Calls `entry` (with two null pointer arguments, ignored by entries that take none) and formats its result.
pub fn call_entry(engine: &Engine, entry: &str, ret: Ret) -> anyhow::Result<String> {
    let ret = match ret {
        Ret::Auto if entry.ends_with("WRAPPED") => Ret::Wrapped,
        Ret::Auto => Ret::I64,
        other => other,
    };
    type Args = (*mut libc::c_void, *mut libc::c_void);
    let null: Args = (std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: the caller names the entry's return type (`--ret`); extra pointer arguments are ignored by the
    // x86-64 SysV calling convention for functions that take fewer.
    let text = unsafe {
        match ret {
            Ret::I32 => engine
                .lookup::<extern "C" fn(*mut libc::c_void, *mut libc::c_void) -> i32>(entry)?
                .call(null.0, null.1)
                .to_string(),
            Ret::I64 | Ret::Auto => engine
                .lookup::<extern "C" fn(*mut libc::c_void, *mut libc::c_void) -> i64>(entry)?
                .call(null.0, null.1)
                .to_string(),
            Ret::F64 => engine
                .lookup::<extern "C" fn(*mut libc::c_void, *mut libc::c_void) -> f64>(entry)?
                .call(null.0, null.1)
                .to_string(),
            Ret::Void => {
                engine
                    .lookup::<extern "C" fn(*mut libc::c_void, *mut libc::c_void)>(entry)?
                    .call(null.0, null.1);
                "(void)".to_owned()
            }
            Ret::Wrapped => {
                let v = engine
                    .lookup::<extern "C" fn(*mut libc::c_void, *mut libc::c_void) -> *mut libc::c_void>(
                        entry,
                    )?
                    .call(null.0, null.1);
                wrapped_to_string(engine, v)?
            }
        }
    };
    Ok(text)
}

/// Reads a `WrappedValue*` back through the helper API (`WrappedValueTag`, `...GetInt`, `...GetDouble`,
/// `...GetString`), looked up through the engine: the same helpers the script used.
fn wrapped_to_string(engine: &Engine, v: *mut libc::c_void) -> anyhow::Result<String> {
    if v.is_null() {
        return Ok("null".to_owned());
    }
    type Getter<R> = extern "C" fn(*mut libc::c_void) -> R;
    // SAFETY: these helpers take a `const WrappedValue *` (wrapped_value.h) and `v` came from the script.
    unsafe {
        let tag = engine.lookup::<Getter<i32>>("WrappedValueTag")?.call(v);
        Ok(match tag {
            1 => format!(
                "WrappedValue(int {})",
                engine.lookup::<Getter<i32>>("WrappedValueGetInt")?.call(v)
            ),
            2 => format!(
                "WrappedValue(double {})",
                engine
                    .lookup::<Getter<f64>>("WrappedValueGetDouble")?
                    .call(v)
            ),
            3 => {
                let s = engine
                    .lookup::<Getter<*const libc::c_char>>("WrappedValueGetString")?
                    .call(v);
                let text = if s.is_null() {
                    String::new()
                } else {
                    std::ffi::CStr::from_ptr(s).to_string_lossy().into_owned()
                };
                format!("WrappedValue(string {text:?})")
            }
            other => format!("WrappedValue(tag {other})"),
        })
    }
}
