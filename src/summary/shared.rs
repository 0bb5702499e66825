//! The promoted runtime as a shared object: built at summary-build time, mapped by the system loader at engine
//! start-up instead of being linked by JITLink.
//!
//! In (build): the promoted library bitcode after the JIT-resident preparation
//! (`prepare_resident_library`: structors out, `__cxa_atexit` / `atexit` / `__dso_handle` redirected), a target
//! and a linker. Out: the bytes of an ELF x86-64 shared object with
//! - no `DT_INIT` / `DT_INIT_ARRAY` / `DT_FINI*` and no `DT_NEEDED`: the loader runs none of its code; the
//!   engine calls the recorded constructors once after it has bound the imports, and the destructors at drop;
//! - every definition exported (default visibility) and bound locally (`-Bsymbolic`): the engine defines each
//!   of the summary's `defined` symbols in the JIT at its address in the mapped image, so scripts and the
//!   runtime share one instance;
//! - its own dso handle (`__thinjit_dso_handle`, zero; the engine writes its registry key) and `atexit` wrapper;
//! - every undefined symbol weak, so `dlopen` never fails on a host callback the loader cannot see (an
//!   `EngineBuilder::host_symbol`, a JIT'd definition): the engine resolves every import through the JIT's own
//!   symbol resolution (host symbols, shared libraries, the process, the C/C++ runtime) and writes the result
//!   into each of the import's relocation targets (GOT slots, PLT slots, data words) — the interposition table;
//! - no RELRO, so those slots stay writable after the loader is done.
//!
//! In (engine): the bytes. [`SharedImage::parse`] reads and checks what the engine needs (bounded reads only; a
//! damaged file is an error, never a panic): exported symbols, imports with their relocations, writable ranges.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::llvm::{Context, Linkage, Module, Visibility};
use crate::{Error, Result};

/// The module the shared runtime gets in place of the JIT's support module: its own dso handle (the engine
/// writes the registry key into it after mapping) and the `atexit` wrapper passing it to the registry.
const SHARED_SUPPORT_IR: &str = r#"
@__thinjit_dso_handle = global i64 0, align 8
declare i32 @__thinjit_atexit_impl(ptr, ptr)
define i32 @__thinjit_atexit(ptr %f) {
  %r = call i32 @__thinjit_atexit_impl(ptr %f, ptr @__thinjit_dso_handle)
  ret i32 %r
}
"#;

/// Makes a prepared resident library linkable as the shared runtime (see the module documentation): links in
/// the support module, exports every definition, gives every declaration default visibility. Returns the names that were
/// weak (`extern_weak`) in the library itself: an engine that cannot resolve one of those binds it to 0, any
/// other unresolved import is an error.
pub(crate) fn prepare_shared_module<'ctx>(
    ctx: &'ctx Context,
    module: &mut Module<'ctx>,
) -> Result<Vec<String>> {
    let mut weak = Vec::new();
    for f in module.functions() {
        if f.is_intrinsic() {
            continue;
        }
        shape(*f, &mut weak);
    }
    for g in module.globals() {
        if g.name().starts_with("llvm.") {
            continue;
        }
        if g.is_declaration() && g.is_thread_local() {
            return Err(Error::SummaryBuild {
                what: "shared runtime".into(),
                message: format!(
                    "the library refers to the thread-local variable `{}` defined elsewhere, which the shared \
                     runtime cannot import",
                    g.name()
                ),
            });
        }
        shape(*g, &mut weak);
    }
    for a in module.aliases() {
        if !a.linkage().is_local() && a.visibility() == Visibility::Hidden {
            a.set_visibility(Visibility::Default);
        }
    }
    let support = Module::parse_ir(ctx, SHARED_SUPPORT_IR.as_bytes(), "thinjit.shared-support")?;
    if module
        .function(crate::jit::runtime::ATEXIT)
        .is_some_and(|f| !f.is_declaration())
        || module
            .global(crate::jit::runtime::DSO_HANDLE)
            .is_some_and(|g| !g.is_declaration())
    {
        return Err(Error::SummaryBuild {
            what: "shared runtime".into(),
            message: "the library defines thinjit's own dso handle or atexit wrapper".into(),
        });
    }
    module.link_in(support)?;
    weak.sort();
    weak.dedup();
    Ok(weak)
}

/// Exports a definition; makes a declaration resolvable at load time (default visibility), recording it in
/// `weak` when it is `extern_weak`. Undefined symbols become weak in the linked image ([`weaken_undefined`]),
/// which also covers the library calls code generation introduces (`memcpy`, ...).
fn shape(v: crate::llvm::GlobalValue<'_>, weak: &mut Vec<String>) {
    if v.is_declaration() {
        if v.linkage() == Linkage::ExternalWeak {
            weak.push(v.name());
        }
        v.set_visibility(Visibility::Default);
        v.set_dso_local(false);
    } else if !v.linkage().is_local() && v.visibility() == Visibility::Hidden {
        v.set_visibility(Visibility::Default);
    }
}

/// The linker used to make the shared runtime: `ld.lld` next to LLVM's tools when installed, else the system
/// `ld`.
pub fn default_linker() -> PathBuf {
    let lld = Path::new(env!("THINJIT_LLVM_BIN")).join("ld.lld");
    if lld.exists() {
        lld
    } else {
        PathBuf::from("ld")
    }
}

/// Links the relocatable `object` into the shared runtime with `linker` and checks the result
/// ([`SharedImage::parse`]). Every failure is an [`Error::SummaryBuild`] naming the linker and its message.
pub(crate) fn link_shared(object: &[u8], linker: &Path) -> Result<Vec<u8>> {
    let fail = |message: String| Error::SummaryBuild {
        what: "shared runtime".into(),
        message,
    };
    let dir = tempfile_dir().map_err(|e| fail(format!("temporary directory: {e}")))?;
    let result = (|| {
        let input = dir.join("runtime.o");
        let output = dir.join("runtime.so");
        std::fs::write(&input, object).map_err(|e| Error::io(&input, e))?;
        let out = Command::new(linker)
            .args([
                "-shared",
                "-Bsymbolic",
                "-z",
                "norelro",
                "-z",
                "now",
                "--eh-frame-hdr",
                "--hash-style=gnu",
                "--build-id=none",
                "-soname",
                "thinjit-runtime.so",
            ])
            .arg(&input)
            .arg("-o")
            .arg(&output)
            .output()
            .map_err(|e| fail(format!("cannot run the linker `{}`: {e}", linker.display())))?;
        if !out.status.success() {
            return Err(fail(format!(
                "the linker `{}` failed ({}): {}",
                linker.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let mut bytes = std::fs::read(&output).map_err(|e| Error::io(&output, e))?;
        weaken_undefined(&mut bytes).map_err(|e| fail(format!("the linked shared object: {e}")))?;
        SharedImage::parse(&bytes)
            .map_err(|e| fail(format!("the linked shared object is not usable: {e}")))?;
        Ok(bytes)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Makes every undefined dynamic symbol of a linked image weak (its binding in `.dynsym`): the loader then
/// leaves a symbol it cannot find at 0 instead of refusing the image, and the engine binds it.
fn weaken_undefined(bytes: &mut [u8]) -> std::result::Result<usize, String> {
    let r = Reader(bytes);
    let shoff = r.u64(40)?;
    let shnum = r.u16(60)? as u64;
    let mut entries = Vec::new();
    for i in 0..shnum {
        let at = shoff + i * 64;
        if r.u32(at + 4)? != SHT_DYNSYM {
            continue;
        }
        let (off, size) = (r.u64(at + 24)?, r.u64(at + 32)?);
        r.bytes(off, size)?;
        for k in 1..size / 24 {
            let sym = off + k * 24;
            if r.u32(sym)? != 0 && r.u16(sym + 6)? == SHN_UNDEF {
                entries.push(sym + 4);
            }
        }
    }
    for &at in &entries {
        let info = &mut bytes[at as usize];
        *info = (STB_WEAK << 4) | (*info & 0xf);
    }
    Ok(entries.len())
}

/// A fresh private directory under the system temporary directory.
fn tempfile_dir() -> std::io::Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!(
            "thinjit-shared-{}-{n}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        ));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// How the engine fills one relocation target of an import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotKind {
    /// `R_X86_64_GLOB_DAT` / `R_X86_64_JUMP_SLOT`: the symbol's address.
    Address,
    /// `R_X86_64_64`: the symbol's address plus the addend.
    AddressPlusAddend,
}

/// One relocation target of an import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ImportSlot {
    /// Image-relative address of the 8-byte word.
    pub offset: u64,
    /// Index into [`SharedImage::imports`].
    pub import: usize,
    pub kind: SlotKind,
    pub addend: i64,
}

/// What the engine reads from the shared runtime before mapping it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SharedImage<'a> {
    /// Exported definitions: name → image-relative address (thread-local ones are in `thread_locals`).
    pub exports: HashMap<&'a str, u64>,
    /// Exported thread-local variables (the loader gives each thread its copy; JIT'd code cannot refer to them).
    pub thread_locals: HashSet<&'a str>,
    /// Undefined symbols, every one weak.
    pub imports: Vec<&'a str>,
    /// Every relocation against an import.
    pub slots: Vec<ImportSlot>,
    /// Image-relative ranges `[start, end)` of the writable segments.
    pub writable: Vec<(u64, u64)>,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&self, at: u64, len: u64) -> std::result::Result<&'a [u8], String> {
        usize::try_from(at)
            .ok()
            .zip(usize::try_from(len).ok())
            .and_then(|(a, l)| self.0.get(a..a.checked_add(l)?))
            .ok_or_else(|| {
                format!("truncated: {len} bytes at offset {at} lie past the end of the file")
            })
    }
    fn u8(&self, at: u64) -> std::result::Result<u8, String> {
        Ok(self.bytes(at, 1)?[0])
    }
    fn u16(&self, at: u64) -> std::result::Result<u16, String> {
        let b = self.bytes(at, 2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&self, at: u64) -> std::result::Result<u32, String> {
        let b = self.bytes(at, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&self, at: u64) -> std::result::Result<u64, String> {
        let mut w = [0u8; 8];
        w.copy_from_slice(self.bytes(at, 8)?);
        Ok(u64::from_le_bytes(w))
    }
    fn cstr(&self, at: u64, limit: u64) -> std::result::Result<&'a str, String> {
        let tail = self.bytes(at, limit.saturating_sub(at))?;
        let end = tail
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| "damaged: a symbol name is not terminated".to_string())?;
        std::str::from_utf8(&tail[..end])
            .map_err(|_| "damaged: a symbol name is not UTF-8".to_string())
    }
}

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_GNU_RELRO: u32 = 0x6474_e552;
const PF_W: u32 = 2;
const SHT_RELA: u32 = 4;
const SHT_DYNSYM: u32 = 11;
const SHN_UNDEF: u16 = 0;
const STB_WEAK: u8 = 2;
const STT_TLS: u8 = 6;
const R_X86_64_64: u32 = 1;
const R_X86_64_GLOB_DAT: u32 = 6;
const R_X86_64_JUMP_SLOT: u32 = 7;

impl<'a> SharedImage<'a> {
    /// Reads and checks an ELF64 little-endian x86-64 shared object built by [`link_shared`]. The error says
    /// what is wrong (the caller names the file).
    pub fn parse(bytes: &'a [u8]) -> std::result::Result<SharedImage<'a>, String> {
        let r = Reader(bytes);
        if r.bytes(0, 4)? != b"\x7fELF" {
            return Err("not an ELF file (bad magic number)".into());
        }
        if r.u8(4)? != 2 || r.u8(5)? != 1 {
            return Err("not a 64-bit little-endian ELF file".into());
        }
        if r.u16(16)? != 3 {
            return Err("not a shared object (ELF type is not ET_DYN)".into());
        }
        if r.u16(18)? != 62 {
            return Err("not an x86-64 object".into());
        }
        let (phoff, shoff) = (r.u64(32)?, r.u64(40)?);
        let (phentsize, phnum) = (r.u16(54)? as u64, r.u16(56)? as u64);
        let (shentsize, shnum) = (r.u16(58)? as u64, r.u16(60)? as u64);
        if phentsize != 56 || shentsize != 64 {
            return Err("damaged: unexpected program or section header size".into());
        }
        let mut image = SharedImage::default();
        let mut dynamic = None;
        for i in 0..phnum {
            let at = phoff + i * phentsize;
            let (p_type, p_flags) = (r.u32(at)?, r.u32(at + 4)?);
            let (p_offset, p_vaddr) = (r.u64(at + 8)?, r.u64(at + 16)?);
            let (p_filesz, p_memsz) = (r.u64(at + 32)?, r.u64(at + 40)?);
            match p_type {
                PT_LOAD => {
                    r.bytes(p_offset, p_filesz)?;
                    if p_flags & PF_W != 0 {
                        let end = p_vaddr
                            .checked_add(p_memsz)
                            .ok_or("damaged: a segment wraps around")?;
                        image.writable.push((p_vaddr, end));
                    }
                }
                PT_DYNAMIC => dynamic = Some((p_offset, p_filesz)),
                PT_INTERP => return Err("an executable, not a shared runtime (PT_INTERP)".into()),
                PT_GNU_RELRO => {
                    return Err(
                        "has a RELRO segment: the import slots would be read-only after loading"
                            .into(),
                    )
                }
                _ => {}
            }
        }
        let (dyn_off, dyn_len) = dynamic.ok_or("no dynamic section (PT_DYNAMIC)")?;
        for i in 0..dyn_len / 16 {
            let tag = r.u64(dyn_off + i * 16)?;
            let what = match tag {
                0 => break,
                1 => "DT_NEEDED: it depends on other shared objects",
                12 | 25 | 32 => "DT_INIT / DT_INIT_ARRAY / DT_PREINIT_ARRAY: the loader would run its constructors",
                13 | 26 => "DT_FINI / DT_FINI_ARRAY: the loader would run its destructors",
                22 => "DT_TEXTREL: text relocations",
                _ => continue,
            };
            return Err(format!("not a shared runtime: {what}"));
        }
        // Dynamic symbols and the relocations against them, from the section headers.
        let section = |i: u64| -> std::result::Result<(u32, u64, u64, u32), String> {
            let at = shoff + i * shentsize;
            Ok((
                r.u32(at + 4)?,
                r.u64(at + 24)?,
                r.u64(at + 32)?,
                r.u32(at + 40)?,
            ))
        };
        let mut dynsym = None;
        for i in 0..shnum {
            let (ty, off, size, link) = section(i)?;
            if ty == SHT_DYNSYM {
                let (_, str_off, str_size, _) = section(link as u64)?;
                r.bytes(off, size)?;
                r.bytes(str_off, str_size)?;
                dynsym = Some((i, off, size, str_off, str_off + str_size));
            }
        }
        let (dynsym_index, sym_off, sym_size, str_start, str_end) =
            dynsym.ok_or("no dynamic symbol table")?;
        let symbol_count = sym_size / 24;
        // Symbol index → import index.
        let mut import_of = vec![None; symbol_count as usize];
        for i in 1..symbol_count {
            let at = sym_off + i * 24;
            let st_name = r.u32(at)? as u64;
            let info = r.u8(at + 4)?;
            let shndx = r.u16(at + 6)?;
            let value = r.u64(at + 8)?;
            let name = r.cstr(str_start + st_name, str_end)?;
            if name.is_empty() {
                continue;
            }
            if shndx == SHN_UNDEF {
                if info >> 4 != STB_WEAK {
                    return Err(format!(
                        "the undefined symbol `{name}` is not weak: loading would fail when the process lacks it"
                    ));
                }
                import_of[i as usize] = Some(image.imports.len());
                image.imports.push(name);
            } else if info & 0xf == STT_TLS {
                image.thread_locals.insert(name);
            } else {
                image.exports.insert(name, value);
            }
        }
        for i in 0..shnum {
            let (ty, off, size, link) = section(i)?;
            if ty != SHT_RELA || link as u64 != dynsym_index {
                continue;
            }
            for k in 0..size / 24 {
                let at = off + k * 24;
                let (offset, info, addend) = (r.u64(at)?, r.u64(at + 8)?, r.u64(at + 16)? as i64);
                let (sym, ty) = (info >> 32, (info & 0xffff_ffff) as u32);
                let Some(&Some(import)) = import_of.get(sym as usize) else {
                    continue;
                };
                let kind = match ty {
                    R_X86_64_GLOB_DAT | R_X86_64_JUMP_SLOT => SlotKind::Address,
                    R_X86_64_64 => SlotKind::AddressPlusAddend,
                    other => {
                        return Err(format!(
                            "relocation type {other} against the import `{}` is not supported",
                            image.imports[import]
                        ))
                    }
                };
                if !image.is_writable(offset) {
                    return Err(format!(
                        "a relocation of `{}` targets {offset:#x}, outside the writable segments",
                        image.imports[import]
                    ));
                }
                image.slots.push(ImportSlot {
                    offset,
                    import,
                    kind,
                    addend,
                });
            }
        }
        Ok(image)
    }

    /// Whether the 8-byte word at image-relative `offset` lies in a writable segment.
    pub fn is_writable(&self, offset: u64) -> bool {
        offset
            .checked_add(8)
            .is_some_and(|end| self.writable.iter().any(|&(s, e)| offset >= s && end <= e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_images_are_errors_not_panics() {
        assert!(SharedImage::parse(b"").is_err());
        assert!(SharedImage::parse(b"\x7fELF").is_err());
        assert!(SharedImage::parse(b"not an elf file at all")
            .unwrap_err()
            .contains("magic"));
        let mut header = vec![0u8; 64];
        header[..4].copy_from_slice(b"\x7fELF");
        header[4] = 2;
        header[5] = 1;
        header[16] = 3;
        header[18] = 62;
        header[54] = 56;
        header[58] = 64;
        header[56] = 200; // 200 program headers, none present
        header[32] = 64;
        assert!(SharedImage::parse(&header)
            .unwrap_err()
            .contains("truncated"));
    }
}
