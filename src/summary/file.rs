//! The summary file format.
//!
//! In: a [`SummaryHeader`], a [`SummaryIndex`] and the shard area bytes. Out: one byte vector, and back.
//!
//! Layout (all integers little-endian):
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic `THINJIT\0` |
//! | 4 | format version ([`FORMAT_VERSION`]) |
//! | 8 | header length `H` |
//! | 8 | index length `I` |
//! | 8 | checksum of the header and index bytes |
//! | `H` | header (bincode, fixed-width integers) |
//! | `I` | index (bincode, fixed-width integers) |
//! | rest | shard area: the per-function shards, the library bitcode and (optionally) the library's native object, each addressed by a [`ShardRef`] |
//!
//! Format history: version 1 had no runtime object; version 2 adds [`SummaryHeader::runtime_object`]; version 3
//! writes the library bitcode with its ThinLTO module summary (for LLVM's own importer, the `llvm-importer`
//! strategy); version 4 stores the library as one promoted module per input ([`SummaryHeader::library_parts`],
//! linked when first asked for) and partial summaries carry their input's index and shards; version 5 adds
//! [`RuntimeObject::shared`] (the shared runtime). Files of another version are refused with a message asking
//! for a rebuild.
//!
//! Decoding is bounded by the bytes actually present (bincode's limit), so a damaged length never makes the
//! reader allocate what the file claims. The shard area is not read at load time: each shard's checksum is
//! verified when the shard is asked for.

use bincode::Options;
use serde::{Deserialize, Serialize};

use super::{ShardRef, SummaryIndex};

/// The 8 bytes every summary file starts with.
pub const MAGIC: [u8; 8] = *b"THINJIT\0";

/// The version of the layout and of the serialized types; bumped on any incompatible change.
pub const FORMAT_VERSION: u32 = 5;

/// Length of the fixed prefix (magic, version, lengths, checksum).
pub(crate) const PREFIX_LEN: usize = 8 + 4 + 8 + 8 + 8;

/// What a summary file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SummaryKind {
    /// A complete summary: index, shards, promoted helper library.
    Full,
    /// One input of a distributed build (`precompute-summary --per-input`): the input checked, promoted and
    /// analyzed on its own: its functions (declarations included) with their shards, its variables and
    /// initializers, and its promoted bitcode as the one library part. Partial summaries are combined with
    /// [`super::Summary::merge`].
    Partial,
}

/// One input of a build: its name as given and the SHA-256 of its bytes (hex).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InputInfo {
    pub name: String,
    pub sha256: String,
}

/// The header of a summary file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryHeader {
    pub magic: [u8; 8],
    pub format_version: u32,
    /// `major.minor.patch` of the LLVM that wrote the shards (bitcode is read only by the same LLVM).
    pub llvm_version: String,
    pub kind: SummaryKind,
    pub target_triple: String,
    pub data_layout: String,
    /// Inputs sorted by name.
    pub inputs: Vec<InputInfo>,
    /// The whole library area: every part of [`SummaryHeader::library_parts`], back to back.
    pub library: ShardRef,
    /// The promoted helper library as one bitcode module per input (with its ThinLTO module summary), in input
    /// order. One part is the library itself; several are linked, in order, when the library is first asked
    /// for ([`super::Summary::library_bitcode`]).
    pub library_parts: Vec<ShardRef>,
    /// The promoted helper library compiled to a native object (`precompute-summary --object`), if built.
    pub runtime_object: Option<RuntimeObject>,
}

/// What a native object was compiled for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectTarget {
    /// Target triple (e.g. `x86_64-pc-linux-gnu`).
    pub triple: String,
    /// CPU name as LLVM knows it (e.g. `znver4`, `x86-64`).
    pub cpu: String,
    /// Feature string (`+avx2,-avx512f,...`).
    pub features: String,
}

/// CPU names whose implied features every CPU of their architecture has.
const BASELINE_CPUS: &[&str] = &["", "generic", "x86-64"];

impl ObjectTarget {
    /// The build host (what LLJIT targets in this process).
    pub fn host() -> Self {
        ObjectTarget {
            triple: crate::llvm::host_triple(),
            cpu: crate::llvm::host_cpu_name(),
            features: crate::llvm::host_cpu_features(),
        }
    }

    /// Whether code compiled for `self` can run on a JIT for `jit`: the triples name the same target (the
    /// vendor field may differ), the CPU is the JIT's or a baseline one (`generic`, `x86-64`), and every
    /// feature `self` enables is enabled for the JIT. The error says what differs.
    pub fn check_runs_on(&self, jit: &ObjectTarget) -> Result<(), String> {
        if !super::triples_match(&self.triple, &jit.triple) {
            return Err(format!(
                "the object is for `{}`, the JIT targets `{}`",
                self.triple, jit.triple
            ));
        }
        if self.cpu != jit.cpu && !BASELINE_CPUS.contains(&self.cpu.as_str()) {
            return Err(format!(
                "the object is for CPU `{}`, the JIT's CPU is `{}`",
                self.cpu, jit.cpu
            ));
        }
        let enabled = |f: &str| -> std::collections::BTreeSet<String> {
            f.split(',')
                .filter_map(|x| x.trim().strip_prefix('+'))
                .map(str::to_owned)
                .collect()
        };
        let host = enabled(&jit.features);
        let missing: Vec<String> = enabled(&self.features)
            .into_iter()
            .filter(|f| !host.contains(f))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "the object uses CPU features the JIT's CPU lacks: {}",
                missing.join(", ")
            ));
        }
        Ok(())
    }
}

impl std::fmt::Display for ObjectTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (cpu {})", self.triple, self.cpu)
    }
}

/// The promoted helper library as a native relocatable object (PIC, small code model), compiled after the
/// same preparation the engine applies to the bitcode
/// (`prepare_resident_library` in `src/jit/runtime.rs`), so both see the same symbols.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeObject {
    pub target: ObjectTarget,
    /// The object's bytes in the shard area.
    pub object: ShardRef,
    /// Static constructors to run once after adding the object, in order.
    pub ctors: Vec<String>,
    /// Static destructors to run when the engine is dropped, in order.
    pub dtors: Vec<String>,
    /// Symbols the object defines (what a script may not define again), sorted.
    pub defined: Vec<String>,
    /// The same code linked into a shared object the system loader maps (`precompute-summary
    /// --shared-runtime`), if built.
    pub shared: Option<SharedRuntime>,
}

/// The promoted runtime linked at build time into an ELF shared object (`src/summary/shared.rs` says how it is
/// made): the engine maps a private copy of it instead of linking [`RuntimeObject::object`] with JITLink.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedRuntime {
    /// The shared object's bytes in the shard area.
    pub image: ShardRef,
    /// Imports that were weak in the library itself (bound to 0 when nothing defines them); every other
    /// import must resolve.
    pub weak: Vec<String>,
    /// The linker that made it.
    pub linker: String,
}

/// A 64-bit checksum (not cryptographic): detects damaged bytes, fast enough to run over a whole index at load.
pub fn checksum64(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h: u64 = 0x243F_6A88_85A3_08D3 ^ (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        h = (h ^ w).wrapping_mul(K);
        h ^= h >> 29;
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    // Final avalanche (splitmix64).
    h ^= h >> 30;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

fn options(limit: u64) -> impl Options + Copy {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_limit(limit)
}

/// Serializes a summary file.
pub(crate) fn encode(header: &SummaryHeader, index: &SummaryIndex, shard_area: &[u8]) -> Vec<u8> {
    let opts = options(u64::MAX);
    // Serializing plain data into a Vec cannot fail.
    let h = opts.serialize(header).unwrap_or_default();
    let i = opts.serialize(index).unwrap_or_default();
    let mut out = Vec::with_capacity(PREFIX_LEN + h.len() + i.len() + shard_area.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&(i.len() as u64).to_le_bytes());
    let mut both = h.clone();
    both.extend_from_slice(&i);
    out.extend_from_slice(&checksum64(&both).to_le_bytes());
    out.extend_from_slice(&both);
    out.extend_from_slice(shard_area);
    out
}

/// A decoded file: header, index and where the shard area starts.
pub(crate) struct Decoded {
    pub header: SummaryHeader,
    pub index: SummaryIndex,
    pub shard_area_start: usize,
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Words for a bincode decoding error: its running out of bytes has an empty message of its own.
fn bincode_cause(e: &bincode::Error) -> String {
    match &**e {
        bincode::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "a length or count claims more bytes than the section holds".into()
        }
        bincode::ErrorKind::SizeLimit => {
            "a length or count claims more bytes than the section holds (size limit)".into()
        }
        other => other.to_string(),
    }
}

/// Checks and decodes the prefix, header and index; the error is the message for an [`crate::Error::Summary`].
pub(crate) fn decode(bytes: &[u8]) -> Result<Decoded, String> {
    if bytes.len() < 8 || bytes[..8] != MAGIC {
        return Err("not a thinjit summary (bad magic number)".into());
    }
    if bytes.len() < PREFIX_LEN {
        return Err(format!(
            "truncated: {} bytes, shorter than the {PREFIX_LEN}-byte prefix",
            bytes.len()
        ));
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != FORMAT_VERSION {
        return Err(format!(
            "format version {version}, but this thinjit reads format version {FORMAT_VERSION}; rebuild the summary"
        ));
    }
    let header_len = u64_at(bytes, 12);
    let index_len = u64_at(bytes, 20);
    let checksum = u64_at(bytes, 28);
    let available = (bytes.len() - PREFIX_LEN) as u64;
    let meta_len = header_len
        .checked_add(index_len)
        .filter(|&n| n <= available)
        .ok_or_else(|| {
            format!(
                "truncated: header and index claim {header_len} + {index_len} bytes, {available} present"
            )
        })? as usize;
    let meta = &bytes[PREFIX_LEN..PREFIX_LEN + meta_len];
    if checksum64(meta) != checksum {
        return Err("damaged index (checksum mismatch)".into());
    }
    let (h, i) = meta.split_at(header_len as usize);
    let header: SummaryHeader = options(h.len() as u64)
        .deserialize(h)
        .map_err(|e| format!("damaged header: {}", bincode_cause(&e)))?;
    if header.magic != MAGIC || header.format_version != FORMAT_VERSION {
        return Err("damaged header (magic or version disagree with the prefix)".into());
    }
    let index: SummaryIndex = options(i.len() as u64)
        .deserialize(i)
        .map_err(|e| format!("damaged index: {}", bincode_cause(&e)))?;
    let shard_area_start = PREFIX_LEN + meta_len;
    let area_len = (bytes.len() - shard_area_start) as u64;
    let in_area = |r: &ShardRef| {
        r.offset
            .checked_add(r.len)
            .is_some_and(|end| end <= area_len)
    };
    if !in_area(&header.library) {
        return Err(format!(
            "truncated: the library blob ends past the end of the file ({} bytes of shards present)",
            area_len
        ));
    }
    if header.library_parts.iter().any(|p| !in_area(p)) {
        return Err("truncated: a library part ends past the end of the file".into());
    }
    if header
        .runtime_object
        .as_ref()
        .is_some_and(|o| !in_area(&o.object))
    {
        return Err("truncated: the runtime object ends past the end of the file".into());
    }
    if header
        .runtime_object
        .as_ref()
        .and_then(|o| o.shared.as_ref())
        .is_some_and(|s| !in_area(&s.image))
    {
        return Err("truncated: the shared runtime ends past the end of the file".into());
    }
    if let Some(f) = index
        .functions
        .iter()
        .find(|f| f.shard.as_ref().is_some_and(|r| !in_area(r)))
    {
        return Err(format!(
            "truncated: the shard of `{}` ends past the end of the file",
            f.name
        ));
    }
    Ok(Decoded {
        header,
        index,
        shard_area_start,
    })
}
