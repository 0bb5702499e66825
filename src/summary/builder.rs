//! The build step: inputs → promoted helper library → index and shards.
//!
//! In: `.bc`/`.ll` files, directories of them, and C/C++ sources (compiled with LLVM 19's clang, `-O2 -fPIC
//! -emit-llvm`). Out: the parts of a summary file ([`Built`]): header, canonical index, shard area.
//!
//! Steps, each deterministic so equal inputs give equal bytes:
//! 1. inputs are sorted by name; each is parsed and verified in its own [`Context`] on a rayon task, its strong
//!    definitions are recorded, and it is promoted: every local (`internal`/`private`) global becomes
//!    `<name>.llvm.<hash>` (hash: the input's file name and SHA-256), external, default visibility; `linkonce` and
//!    `linkonce_odr` definitions become `weak_odr`. Locals that cannot be renamed (unnamed, or named in
//!    `llvm.used` while the module has module-level inline asm, which may refer to them by name) stay local.
//!    Each task hands back bitcode bytes;
//! 2. strong definitions are checked across inputs (a clash names both files and the symbol), then the inputs
//!    are linked in name order into one library in one context;
//! 3. the library is written to bitcode once; each rayon worker loads it lazily into its own context, reads the
//!    bodies of its share of the functions only, and analyzes and extracts them (`Module::extract_function`,
//!    proportional to the function's size). A single input skips the bitcode round trip of steps 1–2;
//! 4. the index is canonicalized and the shards laid out in index order, followed by the library bitcode.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::llvm::{Context, Linkage, MemoryBuffer, Module, Visibility};
use crate::{Error, Result};

use super::analyze::{self, Origins};
use super::file::{checksum64, InputInfo, SummaryHeader, SummaryKind, FORMAT_VERSION, MAGIC};
use super::inputs::{
    absolute_include_paths, InputOrigin, InputReport, SelectedInput, SkipReason, SkippedInput,
};
use super::{BuildOptions, ShardRef, Stage, SummaryIndex};

/// One input, ready to parse: its name and hash, and its IR (bitcode or text; compiled bitcode for sources).
#[derive(Clone, Debug)]
pub(crate) struct InputUnit {
    pub info: InputInfo,
    pub bytes: Vec<u8>,
}

/// The parts of a summary file.
pub(crate) struct Built {
    pub header: SummaryHeader,
    pub index: SummaryIndex,
    pub shard_area: Vec<u8>,
}

fn display_list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn clang_dir() -> PathBuf {
    PathBuf::from(option_env!("THINJIT_LLVM_BIN").unwrap_or("/usr/lib/llvm-19/bin"))
}

/// Reads one input file; C/C++ sources are compiled to bitcode with LLVM 19's clang.
pub(crate) fn load_input(input: &SelectedInput, options: &BuildOptions) -> Result<InputUnit> {
    let path = &input.path;
    let name = path.display().to_string();
    let source = crate::check::read_regular_file(path)?;
    let bytes = if input.is_source() {
        compile(input, options)?
    } else {
        source.clone()
    };
    Ok(InputUnit {
        info: InputInfo {
            name,
            sha256: sha256_hex(&source),
        },
        bytes,
    })
}

/// The clang arguments for one source (see [`super::inputs`]): thinjit's defaults, the input's own flags, the
/// build's flags, the language's flags, then the compile mode and output.
pub(crate) fn compile_arguments(
    input: &SelectedInput,
    options: &BuildOptions,
    output: &Path,
) -> Vec<std::ffi::OsString> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let mut args: Vec<std::ffi::OsString> = ["-O2", "-fPIC"].map(Into::into).to_vec();
    args.extend(input.flags.iter().map(Into::into));
    let build_flags = absolute_include_paths(&options.clang_args, &cwd);
    args.extend(build_flags.iter().map(Into::into));
    let language = if input.cxx {
        &options.cxx_args
    } else {
        &options.c_args
    };
    args.extend(
        absolute_include_paths(language, &cwd)
            .iter()
            .map(Into::into),
    );
    args.extend(["-emit-llvm", "-c"].map(Into::into));
    args.push(cwd.join(&input.path).into());
    args.push("-o".into());
    args.push(output.into());
    args
}

fn compile(input: &SelectedInput, options: &BuildOptions) -> Result<Vec<u8>> {
    let path = &input.path;
    let compiler = clang_dir().join(if input.cxx { "clang++" } else { "clang" });
    let tmp = tempfile_path(path)?;
    let mut command = Command::new(&compiler);
    command.args(compile_arguments(input, options, tmp.path()));
    if let Some(dir) = &input.directory {
        command.current_dir(dir);
    }
    let output = command.output().map_err(|e| Error::SummaryBuild {
        what: path.display().to_string(),
        message: format!("cannot run {}: {e}", compiler.display()),
    })?;
    if !output.status.success() {
        let flags_from = input
            .flags_from
            .as_ref()
            .map(|f| format!(" (flags from {})", f.display()))
            .unwrap_or_default();
        return Err(Error::SummaryBuild {
            what: path.display().to_string(),
            message: format!(
                "{} failed{flags_from}:\n{}",
                compiler.display(),
                String::from_utf8_lossy(&output.stderr).trim_end()
            ),
        });
    }
    std::fs::read(tmp.path()).map_err(|e| Error::io(tmp.path(), e))
}

/// A temporary output file for clang, removed on drop.
struct TempPath(PathBuf);

impl TempPath {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn tempfile_path(src: &Path) -> Result<TempPath> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let stem = src.file_stem().and_then(|s| s.to_str()).unwrap_or("input");
    let p = std::env::temp_dir().join(format!(
        "thinjit-{}-{}-{stem}.bc",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    Ok(TempPath(p))
}

/// Loads every picked input in parallel (compiling sources), then drops the sources found by a directory walk
/// or a compile-commands database that define `main` (programs, not helpers), recording them in `report`.
pub(crate) fn load_inputs(
    report: &mut InputReport,
    options: &BuildOptions,
) -> Result<Vec<InputUnit>> {
    let done = AtomicUsize::new(0);
    let total = report.picked.len();
    let units: Vec<InputUnit> = report
        .picked
        .par_iter()
        .map(|p| {
            let unit = load_input(p, options);
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            options.report(Stage::Compile, n, total);
            unit
        })
        .collect::<Result<_>>()?;
    let programs: Vec<bool> = report
        .picked
        .par_iter()
        .zip(&units)
        .map(|(p, u)| Ok(p.origin != InputOrigin::Named && defines_main(u)?))
        .collect::<Result<_>>()?;
    let mut kept = Vec::with_capacity(units.len());
    let picked = std::mem::take(&mut report.picked);
    for ((input, unit), program) in picked.into_iter().zip(units).zip(programs) {
        if program {
            report.skipped.push(SkippedInput {
                path: input.path,
                reason: SkipReason::DefinesMain,
            });
        } else {
            report.picked.push(input);
            kept.push(unit);
        }
    }
    report.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    if kept.is_empty() {
        return Err(Error::SummaryBuild {
            what: display_list(
                &report
                    .skipped
                    .iter()
                    .map(|s| s.path.clone())
                    .collect::<Vec<_>>(),
            ),
            message: "every input defines `main` (programs, not helpers); name a helper file to use it anyway"
                .into(),
        });
    }
    Ok(kept)
}

/// `true` when the input defines a `main` function (read lazily: declarations only).
fn defines_main(unit: &InputUnit) -> Result<bool> {
    let ctx = Context::new();
    let buffer = MemoryBuffer::from_bytes(&unit.bytes, &unit.info.name);
    let module = if crate::llvm::is_bitcode(&unit.bytes) {
        Module::parse_bitcode_lazy(&ctx, buffer, &unit.info.name)?
    } else {
        Module::parse_ir(&ctx, &unit.bytes, &unit.info.name)?
    };
    Ok(module.function("main").is_some_and(|f| !f.is_declaration()))
}

/// One input after parsing and promotion.
struct Promoted {
    name: String,
    strong: Vec<String>,
    origins: Vec<(String, Option<String>, Linkage)>,
    triple: String,
    data_layout: String,
    bitcode: Vec<u8>,
}

/// The promotion suffix of an input: stable across builds and machines.
fn promotion_hash(info: &InputInfo) -> String {
    // The file name, not the path: the same input gives the same names wherever it is built.
    let file_name = Path::new(&info.name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| info.name.clone());
    let mut h = Sha256::new();
    h.update(file_name.as_bytes());
    h.update([0]);
    h.update(info.sha256.as_bytes());
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn verify_input(module: &Module<'_>, name: &str) -> Result<()> {
    module.verify().map_err(|e| match e {
        Error::Verify { message, .. } => Error::Verify {
            what: name.to_owned(),
            message,
        },
        other => other,
    })
}

/// Names that `llvm.used`/`llvm.compiler.used` keep alive.
fn used_names(module: &Module<'_>) -> HashSet<String> {
    let mut out = HashSet::new();
    for list in ["llvm.used", "llvm.compiler.used"] {
        if let Some(init) = module.global(list).and_then(|g| g.initializer()) {
            for v in init.operands() {
                let mut stack = vec![v];
                while let Some(v) = stack.pop() {
                    if v.is_global_value() {
                        out.insert(v.name());
                    } else {
                        stack.extend(v.operands());
                    }
                }
            }
        }
    }
    out
}

/// What promotion recorded about one input.
struct PromotionRecord {
    strong: Vec<String>,
    origins: Vec<(String, Option<String>, Linkage)>,
}

/// Parses, verifies and promotes one input in `ctx`.
fn parse_and_promote<'ctx>(
    ctx: &'ctx Context,
    unit: &InputUnit,
) -> Result<(Module<'ctx>, PromotionRecord)> {
    let name = &unit.info.name;
    let mut module = Module::parse(ctx, &unit.bytes, name)?;
    verify_input(&module, name)?;
    module.set_source_name(name);
    let record = promote_module(&module, &promotion_hash(&unit.info));
    Ok((module, record))
}

fn promote_module(module: &Module<'_>, hash: &str) -> PromotionRecord {
    let pinned = if module.inline_asm().trim().is_empty() {
        HashSet::new()
    } else {
        used_names(module)
    };
    let mut strong = Vec::new();
    let mut origins = Vec::new();
    let values: Vec<_> = module
        .functions()
        .map(|f| *f)
        .chain(module.globals().map(|g| *g))
        .chain(module.aliases())
        .collect();
    let mut anonymous = 0usize;
    for v in values {
        let mut vname = v.name();
        if vname.starts_with("llvm.") {
            continue;
        }
        let linkage = v.linkage();
        let defined = v.is_global_alias() || !v.is_declaration();
        if !defined {
            continue;
        }
        match linkage {
            Linkage::External => strong.push(vname),
            Linkage::Internal | Linkage::Private => {
                if pinned.contains(&vname) {
                    continue;
                }
                if vname.is_empty() {
                    // An unnamed local (`@0`) gets a name so it can be promoted like the others (LLVM's ThinLTO
                    // names them too, NameAnonGlobalPass, before it promotes).
                    vname = format!("thinjit.anon.{anonymous}");
                    anonymous += 1;
                    v.set_name(&vname);
                }
                let new_name = format!("{vname}.llvm.{hash}");
                v.set_name(&new_name);
                v.set_linkage(Linkage::External);
                v.set_visibility(Visibility::Default);
                origins.push((v.name(), Some(vname), linkage));
            }
            Linkage::LinkOnceAny | Linkage::LinkOnceOdr => {
                v.set_linkage(Linkage::WeakOdr);
                origins.push((vname, None, linkage));
            }
            _ => {}
        }
    }
    PromotionRecord { strong, origins }
}

/// Promotes a helper library given as a whole (bitcode or IR named `name`) the way the build step promotes its
/// inputs, so that what LLVM's importer copies out of it refers to names the resident library exports. Returns the
/// promoted module's bitcode with its ThinLTO summary.
pub(crate) fn promote_library_with_summary(name: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    let ctx = Context::new();
    let mut module = Module::parse(&ctx, bytes, name)?;
    verify_input(&module, name)?;
    let info = InputInfo {
        name: name.to_owned(),
        sha256: sha256_hex(bytes),
    };
    promote_module(&module, &promotion_hash(&info));
    module.verify()?;
    Ok(module.write_bitcode_with_summary())
}

/// Promotes one input in its own context and hands it back as bitcode.
fn promote(unit: &InputUnit) -> Result<Promoted> {
    let ctx = Context::new();
    let (module, record) = parse_and_promote(&ctx, unit)?;
    Ok(Promoted {
        name: unit.info.name.clone(),
        strong: record.strong,
        origins: record.origins,
        triple: module.triple(),
        data_layout: module.data_layout(),
        bitcode: module.write_bitcode(),
    })
}

/// Promotes every input on its own rayon task, checks strong definitions across inputs, and links them in name
/// order into one module in `ctx`.
fn link_inputs<'ctx>(
    ctx: &'ctx Context,
    units: &[InputUnit],
    options: &BuildOptions,
) -> Result<(Module<'ctx>, Origins)> {
    let done = AtomicUsize::new(0);
    let promoted: Vec<Promoted> = units
        .par_iter()
        .map(|u| {
            let p = promote(u);
            options.report(
                Stage::Parse,
                done.fetch_add(1, Ordering::Relaxed) + 1,
                units.len(),
            );
            p
        })
        .collect::<Result<_>>()?;

    // Strong definitions may appear once; name both inputs when they do not.
    let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
    for p in &promoted {
        for s in &p.strong {
            if let Some(first) = owners.insert(s, &p.name) {
                return Err(Error::Link {
                    what: format!("`{first}` and `{}`", p.name),
                    message: format!("both define the strong symbol `{s}`"),
                });
            }
        }
    }
    let triples: BTreeSet<&str> = promoted
        .iter()
        .map(|p| p.triple.as_str())
        .filter(|t| !t.is_empty())
        .collect();
    if triples.len() > 1 {
        return Err(Error::SummaryBuild {
            what: display_list(
                &promoted
                    .iter()
                    .map(|p| PathBuf::from(&p.name))
                    .collect::<Vec<_>>(),
            ),
            message: format!(
                "inputs target different triples: {}",
                triples.into_iter().collect::<Vec<_>>().join(", ")
            ),
        });
    }
    let origins: Origins = promoted
        .iter()
        .flat_map(|p| p.origins.iter())
        .map(|(n, o, l)| (n.clone(), (o.clone(), *l)))
        .collect();

    // Link in name order, in one context.
    options.report(Stage::Link, 0, 1);
    // The first input is the destination (linking into an empty module would copy it for nothing).
    let mut library = Module::parse_bitcode(ctx, &promoted[0].bitcode, &promoted[0].name)?;
    for p in &promoted[1..] {
        let m = Module::parse_bitcode(ctx, &p.bitcode, &p.name)?;
        library.link_in(m)?;
    }
    if let Some(p) = promoted.iter().find(|p| !p.triple.is_empty()) {
        library.set_triple(&p.triple);
        library.set_data_layout(&p.data_layout);
    }

    Ok((library, origins))
}

/// Runs the whole pipeline over loaded inputs.
pub(crate) fn build_units(mut units: Vec<InputUnit>, options: &BuildOptions) -> Result<Built> {
    units.sort_by(|a, b| a.info.name.cmp(&b.info.name));
    if let Some(w) = units.windows(2).find(|w| w[0].info.name == w[1].info.name) {
        return Err(Error::SummaryBuild {
            what: w[0].info.name.clone(),
            message: "the same input is named twice".into(),
        });
    }
    if units.is_empty() {
        return Err(Error::SummaryBuild {
            what: "(no inputs)".into(),
            message: "nothing to summarize".into(),
        });
    }
    let ctx = Context::new();
    let (library, origins) = if units.len() == 1 {
        // One input: promote it where it will be analyzed (no bitcode round trip).
        let (module, record) = parse_and_promote(&ctx, &units[0])?;
        options.report(Stage::Parse, 1, 1);
        let origins: Origins = record
            .origins
            .into_iter()
            .map(|(n, o, l)| (n, (o, l)))
            .collect();
        (module, origins)
    } else {
        link_inputs(&ctx, &units, options)?
    };
    let mut library = library;
    library.set_name("thinjit-helpers");
    library.set_source_name("thinjit-helpers");
    library.verify()?;
    // With its ThinLTO summary: LLVM's own importer (the `llvm-importer` strategy) reads it.
    let library_bc = library.write_bitcode_with_summary();
    options.report(Stage::Link, 1, 1);

    let variables = analyze::analyze_variables(&library, &origins);
    let initializers = analyze::initializers(&library);
    let function_count = library.functions().filter(|f| !f.is_intrinsic()).count();
    let triple = library.triple();
    let data_layout = library.data_layout();
    drop(library);
    drop(ctx);

    // Analyze and extract in parallel: each worker parses the library once into its own context.
    let workers = rayon::current_num_threads().max(1);
    let chunk = function_count.div_ceil(workers).max(1);
    let done = AtomicUsize::new(0);
    type Analyzed = Vec<Vec<(super::FunctionSummary, Option<Vec<u8>>)>>;
    let analysis = || -> Result<Analyzed> {
        (0..workers)
            .into_par_iter()
            .map(|w| -> Result<_> {
                let start = w * chunk;
                if start >= function_count {
                    return Ok(Vec::new());
                }
                // Lazily: only this worker's functions are read from the bitcode.
                let ctx = Context::new();
                let module = Module::parse_bitcode_lazy(
                    &ctx,
                    MemoryBuffer::from_bytes(&library_bc, "thinjit-helpers"),
                    "thinjit-helpers",
                )?;
                let mut out = Vec::with_capacity(chunk);
                for f in module
                    .functions()
                    .filter(|f| !f.is_intrinsic())
                    .skip(start)
                    .take(chunk)
                {
                    f.materialize()?;
                    let mut summary = analyze::analyze_function(f, &origins);
                    let shard = if summary.is_eligible() {
                        match module.extract_function(f, &format!("shard:{}", summary.name)) {
                            Ok(m) => Some(m.write_shard_bitcode()),
                            Err(e) => {
                                summary.not_eligible.push(
                                    super::NotEligible::UnpromotableReference(format!(
                                        "(shard extraction failed: {e})"
                                    )),
                                );
                                None
                            }
                        }
                    } else {
                        None
                    };
                    out.push((summary, shard));
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if n % 64 == 0 || n == function_count {
                        options.report(Stage::Analyze, n, function_count);
                    }
                }
                Ok(out)
            })
            .collect::<Result<_>>()
    };
    // The runtime object is compiled alongside the analysis (code generation dominates for large libraries).
    let (parts, object) = rayon::join(analysis, || {
        options
            .object
            .as_ref()
            .map(|target| compile_runtime_object(&library_bc, target))
            .transpose()
    });
    let (parts, object) = (parts?, object?);

    let mut pairs: Vec<_> = parts.into_iter().flatten().collect();
    pairs.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let mut shard_area = Vec::new();
    let mut functions = Vec::with_capacity(pairs.len());
    for (mut summary, shard) in pairs {
        if let Some(bytes) = shard {
            summary.shard = Some(ShardRef {
                offset: shard_area.len() as u64,
                len: bytes.len() as u64,
                checksum: checksum64(&bytes),
            });
            shard_area.extend_from_slice(&bytes);
        }
        functions.push(summary);
    }
    let library_ref = ShardRef {
        offset: shard_area.len() as u64,
        len: library_bc.len() as u64,
        checksum: checksum64(&library_bc),
    };
    shard_area.extend_from_slice(&library_bc);
    let runtime_object = object.map(|(bytes, mut description)| {
        description.object = ShardRef {
            offset: shard_area.len() as u64,
            len: bytes.len() as u64,
            checksum: checksum64(&bytes),
        };
        shard_area.extend_from_slice(&bytes);
        description
    });
    let mut index = SummaryIndex {
        functions,
        variables,
        initializers,
    };
    index.canonicalize();
    let mut inputs: Vec<InputInfo> = units.iter().map(|u| u.info.clone()).collect();
    inputs.sort();
    Ok(Built {
        header: SummaryHeader {
            magic: MAGIC,
            format_version: FORMAT_VERSION,
            llvm_version: crate::llvm::llvm_version(),
            kind: SummaryKind::Full,
            target_triple: triple,
            data_layout,
            inputs,
            library: library_ref,
            runtime_object,
        },
        index,
        shard_area,
    })
}

/// The parts of a partial summary: one input, checked, carried unchanged.
pub(crate) fn partial(unit: &InputUnit) -> Result<Built> {
    let ctx = Context::new();
    let module = Module::parse(&ctx, &unit.bytes, &unit.info.name)?;
    verify_input(&module, &unit.info.name)?;
    Ok(Built {
        header: SummaryHeader {
            magic: MAGIC,
            format_version: FORMAT_VERSION,
            llvm_version: crate::llvm::llvm_version(),
            kind: SummaryKind::Partial,
            target_triple: module.triple(),
            data_layout: module.data_layout(),
            inputs: vec![unit.info.clone()],
            library: ShardRef {
                offset: 0,
                len: unit.bytes.len() as u64,
                checksum: checksum64(&unit.bytes),
            },
            runtime_object: None,
        },
        index: SummaryIndex::default(),
        shard_area: unit.bytes.clone(),
    })
}

/// Compiles the promoted helper library (its bitcode) to a native object for `target`, after the preparation
/// the engine applies to a JIT-resident library; the returned description has a placeholder `object` range.
fn compile_runtime_object(
    library_bc: &[u8],
    target: &super::ObjectTarget,
) -> Result<(Vec<u8>, super::RuntimeObject)> {
    let ctx = Context::new();
    let mut module = Module::parse_bitcode(&ctx, library_bc, "thinjit-helpers")?;
    let structors = crate::jit::runtime::prepare_resident_library(&mut module);
    let defined: Vec<String> = module.defined_symbols().into_iter().collect();
    let machine = crate::llvm::TargetMachine::new(
        &target.triple,
        &target.cpu,
        &target.features,
        crate::llvm::CodeGenOpt::Aggressive,
    )?;
    let layout = module.data_layout();
    if !layout.is_empty() && layout != machine.data_layout() {
        return Err(Error::SummaryBuild {
            what: "runtime object".into(),
            message: format!(
                "the helper library's data layout `{layout}` is not {}'s `{}`: build the helpers for that target",
                target.triple,
                machine.data_layout()
            ),
        });
    }
    let object = machine.emit_object(&module)?;
    Ok((
        object,
        super::RuntimeObject {
            target: target.clone(),
            object: ShardRef {
                offset: 0,
                len: 0,
                checksum: 0,
            },
            ctors: structors.ctors().to_vec(),
            dtors: structors.dtors().to_vec(),
            defined,
        },
    ))
}
