//! The build step: inputs → promoted helper library → index and shards.
//!
//! In: `.bc`/`.ll` files, directories of them, and C/C++ sources (compiled with LLVM 19's clang, `-O2 -fPIC
//! -emit-llvm`). Out: the parts of a summary file ([`Built`]): header, canonical index, shard area.
//!
//! Steps, each deterministic so equal inputs give equal bytes. The one-shot build is steps 1–2 in one process;
//! a distributed build runs step 1 anywhere (`--per-input`) and step 2 (`merge`) once.
//! 1. per input, on its own rayon task and in its own [`Context`] ([`build_parts`]): parse and verify; promote
//!    every local (`internal`/`private`) global to `<name>.llvm.<hash>` (hash: the input's file name and
//!    SHA-256), external, default visibility, and `linkonce`/`linkonce_odr` definitions to `weak_odr` (locals that
//!    cannot be renamed — unnamed, or named in `llvm.used` while the module has module-level inline asm, which
//!    may refer to them by name — stay local); write the promoted bitcode (the input's library part, with its
//!    ThinLTO module summary); analyze every function and variable and extract the shards of the importable
//!    functions (`Module::extract_function`, proportional to the function's size). The result is a partial
//!    summary. With fewer inputs than workers (a pre-linked library), one input's analysis is split over the
//!    workers, each reading the promoted bitcode lazily;
//! 2. across inputs ([`merge`]): resolve symbols as LLVM's linker does (a strong definition once, else the first
//!    weak one in input order; two strong ones name both inputs), take each winner's summary and shard, extract
//!    again the few shards that read a constant defined in another input (from their input linked with the
//!    defining ones, so the shard carries the constant's initializer), canonicalize the index and lay out the
//!    shards in index order followed by the library parts in input order. The parts are linked into one library
//!    only when it is asked for ([`link_library`]: a JIT-resident engine without a runtime object, LLVM's
//!    importer, or `--object` at merge time).
//!
//! As in ThinLTO, each function is analyzed in its own input: a callee's `cold`/`hot` attribute and the
//! attributes of declarations in a shard are those the function's translation unit saw.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
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
use super::{BuildOptions, ShardRef, Stage, Summary, SummaryIndex};

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
    PromotionRecord { origins }
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

/// Sorts loaded inputs by name and refuses an empty list or a name given twice.
fn sorted_units(mut units: Vec<InputUnit>) -> Result<Vec<InputUnit>> {
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
    Ok(units)
}

/// A function's summary and, when importable, its shard.
type AnalyzedFunction = (super::FunctionSummary, Option<Vec<u8>>);

/// Analyzes the non-intrinsic functions `skip..skip + take` of `module` and extracts the shards of the
/// importable ones (reading bodies of a lazily loaded module as it goes).
fn analyze_functions(
    module: &Module<'_>,
    origins: &Origins,
    skip: usize,
    take: usize,
) -> Result<Vec<AnalyzedFunction>> {
    let mut out = Vec::new();
    for f in module
        .functions()
        .filter(|f| !f.is_intrinsic())
        .skip(skip)
        .take(take)
    {
        f.materialize()?;
        let mut summary = analyze::analyze_function(f, origins);
        let shard = if summary.is_eligible() {
            match module.extract_function(f, &format!("shard:{}", summary.name)) {
                Ok(m) => Some(m.write_shard_bitcode()),
                Err(e) => {
                    summary
                        .not_eligible
                        .push(super::NotEligible::UnpromotableReference(format!(
                            "(shard extraction failed: {e})"
                        )));
                    None
                }
            }
        } else {
            None
        };
        out.push((summary, shard));
    }
    Ok(out)
}

/// The per-input work: parse, verify, promote, analyze every function and extract the shards, all in the
/// input's own context. With fewer inputs than worker threads, each input's analysis is split over the workers
/// (each reads the promoted bitcode lazily into a context of its own).
fn build_part(unit: &InputUnit, split: usize) -> Result<Built> {
    let ctx = Context::new();
    let (mut module, record) = parse_and_promote(&ctx, unit)?;
    let origins: Origins = record
        .origins
        .into_iter()
        .map(|(n, o, l)| (n, (o, l)))
        .collect();
    module.set_name("thinjit-helpers");
    module.set_source_name("thinjit-helpers");
    // With its ThinLTO summary: LLVM's own importer (the `llvm-importer` strategy) reads a one-part library.
    let library_bc = module.write_bitcode_with_summary();
    let variables = analyze::analyze_variables(&module, &origins);
    let initializers = analyze::initializers(&module);
    let triple = module.triple();
    let data_layout = module.data_layout();
    let functions = if split <= 1 {
        analyze_functions(&module, &origins, 0, usize::MAX)?
    } else {
        let count = module.functions().filter(|f| !f.is_intrinsic()).count();
        drop(module);
        let chunk = count.div_ceil(split).max(1);
        let parts: Vec<Vec<AnalyzedFunction>> = (0..split)
            .into_par_iter()
            .map(|w| -> Result<_> {
                if w * chunk >= count {
                    return Ok(Vec::new());
                }
                let ctx = Context::new();
                let module = Module::parse_bitcode_lazy(
                    &ctx,
                    MemoryBuffer::from_bytes(&library_bc, &unit.info.name),
                    &unit.info.name,
                )?;
                analyze_functions(&module, &origins, w * chunk, chunk)
            })
            .collect::<Result<_>>()?;
        parts.into_iter().flatten().collect()
    };

    let mut functions = functions;
    functions.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let mut shard_area = Vec::new();
    let mut index_functions = Vec::with_capacity(functions.len());
    for (mut summary, shard) in functions {
        if let Some(bytes) = shard {
            summary.shard = Some(append(&mut shard_area, &bytes));
        }
        index_functions.push(summary);
    }
    let part = append(&mut shard_area, &library_bc);
    let mut index = SummaryIndex {
        functions: index_functions,
        variables,
        initializers,
    };
    index.canonicalize();
    Ok(Built {
        header: SummaryHeader {
            magic: MAGIC,
            format_version: FORMAT_VERSION,
            llvm_version: crate::llvm::llvm_version(),
            kind: SummaryKind::Partial,
            target_triple: triple,
            data_layout,
            inputs: vec![unit.info.clone()],
            library: part,
            library_parts: vec![part],
            runtime_object: None,
        },
        index,
        shard_area,
    })
}

/// Appends `bytes` to the shard area and returns where they lie.
fn append(area: &mut Vec<u8>, bytes: &[u8]) -> ShardRef {
    let r = ShardRef {
        offset: area.len() as u64,
        len: bytes.len() as u64,
        checksum: checksum64(bytes),
    };
    area.extend_from_slice(bytes);
    r
}

/// One partial summary per input, built in parallel.
pub(crate) fn build_parts(units: Vec<InputUnit>, options: &BuildOptions) -> Result<Vec<Summary>> {
    let units = sorted_units(units)?;
    let workers = rayon::current_num_threads().max(1);
    // Few inputs (a pre-linked library): split each one's analysis over the workers instead.
    let split = if units.len() < 2 * workers {
        workers
    } else {
        1
    };
    let done = AtomicUsize::new(0);
    units
        .par_iter()
        .map(|u| {
            let built = build_part(u, split)?;
            options.report(
                Stage::Parse,
                done.fetch_add(1, Ordering::Relaxed) + 1,
                units.len(),
            );
            Summary::from_bytes(
                super::file::encode(&built.header, &built.index, &built.shard_area),
                &u.info.name,
            )
        })
        .collect()
}

/// How a definition fares in symbol resolution, as LLVM's linker decides: a strong definition wins over a weak
/// one (`weak`, `weak_odr`, `linkonce*`, `common`), which wins over an `available_externally` copy, which wins
/// over a declaration; among equals the first input (in name order) wins.
fn rank(linkage: Linkage, declaration: bool) -> u8 {
    if declaration {
        0
    } else if linkage == Linkage::AvailableExternally {
        1
    } else if linkage.is_interposable()
        || matches!(linkage, Linkage::WeakOdr | Linkage::LinkOnceOdr)
    {
        2
    } else {
        3
    }
}

/// Picks, per name, the winning entry among the partials (`items(p)` lists partial `p`'s entries with their
/// rank); two strong (`external`) definitions of one name are an error naming both inputs.
fn resolve<'a, T>(
    partials: &[&'a Summary],
    items: impl Fn(&'a Summary) -> Vec<(&'a str, u8, bool, &'a T)>,
) -> Result<BTreeMap<&'a str, (usize, &'a T)>> {
    let mut winners: BTreeMap<&'a str, (u8, bool, usize, &'a T)> = BTreeMap::new();
    for (i, p) in partials.iter().enumerate() {
        for (name, r, strong, item) in items(p) {
            match winners.get_mut(name) {
                None => {
                    winners.insert(name, (r, strong, i, item));
                }
                Some(w) => {
                    if strong && w.1 {
                        return Err(Error::Link {
                            what: format!(
                                "`{}` and `{}`",
                                partials[w.2].header.inputs[0].name, p.header.inputs[0].name
                            ),
                            message: format!("both define the strong symbol `{name}`"),
                        });
                    }
                    if r > w.0 {
                        *w = (r, strong, i, item);
                    }
                }
            }
        }
    }
    Ok(winners
        .into_iter()
        .map(|(name, (_, _, i, item))| (name, (i, item)))
        .collect())
}

/// Combines partial summaries (one input each) into the parts of a full summary.
pub(crate) fn merge(partials: &[Summary], options: &BuildOptions) -> Result<Built> {
    for p in partials {
        if p.header().kind != SummaryKind::Partial
            || p.header().inputs.len() != 1
            || p.header().library_parts.len() != 1
        {
            return Err(Error::summary(
                p.path(),
                "not a partial summary (made by `precompute-summary --per-input`)",
            ));
        }
    }
    let mut partials: Vec<&Summary> = partials.iter().collect();
    partials.sort_by(|a, b| a.header().inputs[0].name.cmp(&b.header().inputs[0].name));
    if partials.is_empty() {
        return Err(Error::SummaryBuild {
            what: "(no inputs)".into(),
            message: "nothing to summarize".into(),
        });
    }
    if let Some(w) = partials
        .windows(2)
        .find(|w| w[0].header().inputs[0].name == w[1].header().inputs[0].name)
    {
        return Err(Error::SummaryBuild {
            what: format!("{} and {}", w[0].path().display(), w[1].path().display()),
            message: format!(
                "both are partial summaries of the input `{}`",
                w[0].header().inputs[0].name
            ),
        });
    }
    let triples: BTreeSet<&str> = partials
        .iter()
        .map(|p| p.header().target_triple.as_str())
        .filter(|t| !t.is_empty())
        .collect();
    if triples.len() > 1 {
        return Err(Error::SummaryBuild {
            what: display_list(
                &partials
                    .iter()
                    .map(|p| p.path().to_owned())
                    .collect::<Vec<_>>(),
            ),
            message: format!(
                "inputs target different triples: {}",
                triples.into_iter().collect::<Vec<_>>().join(", ")
            ),
        });
    }
    options.report(Stage::Link, 0, 1);

    let functions = resolve(&partials, |p| {
        p.index()
            .functions
            .iter()
            .map(|f| {
                let declaration = f.not_eligible.contains(&super::NotEligible::Declaration);
                (
                    f.name.as_str(),
                    rank(f.linkage, declaration),
                    !declaration && f.linkage == Linkage::External,
                    f,
                )
            })
            .collect()
    })?;
    let variables = resolve(&partials, |p| {
        p.index()
            .variables
            .iter()
            .map(|v| {
                (
                    v.name.as_str(),
                    rank(v.linkage, false),
                    v.linkage == Linkage::External,
                    v,
                )
            })
            .collect()
    })?;

    // A shard copies the constants its function reads; one defined in another input is not in the shard the
    // function's own input made. Those shards are extracted again from the input linked with the inputs that
    // define such constants.
    let defined: Vec<HashSet<&str>> = partials
        .iter()
        .map(|p| {
            let index = p.index();
            index
                .functions
                .iter()
                .filter(|f| !f.not_eligible.contains(&super::NotEligible::Declaration))
                .map(|f| f.name.as_str())
                .chain(index.variables.iter().map(|v| v.name.as_str()))
                .collect()
        })
        .collect();
    let mut stale: BTreeMap<usize, (Vec<&str>, BTreeSet<usize>)> = BTreeMap::new();
    for (name, (i, f)) in &functions {
        if f.shard.is_none() {
            continue;
        }
        let mut needs = BTreeSet::new();
        for r in &f.refs {
            if defined[*i].contains(r.as_str()) {
                continue;
            }
            if let Some((j, v)) = variables.get(r.as_str()) {
                if v.importable_initializer {
                    needs.insert(*j);
                }
            }
        }
        if !needs.is_empty() {
            let entry = stale.entry(*i).or_default();
            entry.0.push(name);
            entry.1.extend(needs);
        }
    }
    let stale_total: usize = stale.values().map(|(fs, _)| fs.len()).sum();
    let done = AtomicUsize::new(0);
    let reextracted: Vec<Vec<(&str, Vec<u8>)>> = stale
        .par_iter()
        .map(|(i, (names, needs))| -> Result<_> {
            let ctx = Context::new();
            let part = |k: usize| -> Result<Module<'_>> {
                let (name, bytes) = partials[k]
                    .library_parts()?
                    .into_iter()
                    .next()
                    .ok_or_else(|| Error::summary(partials[k].path(), "no library part"))?;
                Module::parse_bitcode(&ctx, bytes, name)
            };
            let mut module = part(*i)?;
            module.link_in_all(needs.iter().map(|&j| part(j)).collect::<Result<_>>()?)?;
            let mut out = Vec::with_capacity(names.len());
            for &name in names {
                let f = module.function(name).ok_or_else(|| {
                    Error::summary(
                        partials[*i].path(),
                        format!("function `{name}` is in the index but not in the library part"),
                    )
                })?;
                let shard = module.extract_function(f, &format!("shard:{name}"))?;
                out.push((name, shard.write_shard_bitcode()));
            }
            let n = done.fetch_add(names.len(), Ordering::Relaxed) + names.len();
            options.report(Stage::Analyze, n, stale_total);
            Ok(out)
        })
        .collect::<Result<_>>()?;
    let reextracted: HashMap<&str, Vec<u8>> = reextracted.into_iter().flatten().collect();

    let mut shard_area = Vec::new();
    let mut index_functions = Vec::with_capacity(functions.len());
    for (name, (i, f)) in &functions {
        let mut summary = (*f).clone();
        if f.shard.is_some() {
            let bytes = match reextracted.get(name) {
                Some(bytes) => bytes.as_slice(),
                None => partials[*i].shard(f)?,
            };
            summary.shard = Some(append(&mut shard_area, bytes));
        }
        index_functions.push(summary);
    }
    let parts: Vec<(&str, &[u8])> = partials
        .iter()
        .map(|p| {
            p.library_parts()?
                .into_iter()
                .next()
                .ok_or_else(|| Error::summary(p.path(), "no library part"))
        })
        .collect::<Result<_>>()?;
    let library_start = shard_area.len();
    let library_parts: Vec<ShardRef> = parts
        .iter()
        .map(|(_, bytes)| append(&mut shard_area, bytes))
        .collect();
    let library = ShardRef {
        offset: library_start as u64,
        len: (shard_area.len() - library_start) as u64,
        checksum: checksum64(&shard_area[library_start..]),
    };
    let first = partials
        .iter()
        .find(|p| !p.header().target_triple.is_empty())
        .unwrap_or(&partials[0]);
    let mut header = SummaryHeader {
        magic: MAGIC,
        format_version: FORMAT_VERSION,
        llvm_version: crate::llvm::llvm_version(),
        kind: SummaryKind::Full,
        target_triple: first.header().target_triple.clone(),
        data_layout: first.header().data_layout.clone(),
        inputs: partials
            .iter()
            .map(|p| p.header().inputs[0].clone())
            .collect(),
        library,
        library_parts,
        runtime_object: None,
    };
    if let Some(target) = &options.object {
        let linked;
        let library_bc = if let [(_, one)] = parts.as_slice() {
            *one
        } else {
            linked = link_library(&parts, &header)?;
            &linked
        };
        let linker = options.shared_runtime.then(|| {
            options
                .linker
                .clone()
                .unwrap_or_else(super::shared::default_linker)
        });
        let (bytes, shared_bytes, mut description) =
            compile_runtime_object(library_bc, target, linker.as_deref())?;
        description.object = append(&mut shard_area, &bytes);
        if let (Some(shared), Some(image)) = (description.shared.as_mut(), shared_bytes) {
            shared.image = append(&mut shard_area, &image);
        }
        header.runtime_object = Some(description);
    }
    options.report(Stage::Link, 1, 1);

    let mut initializers: Vec<super::Initializer> = partials
        .iter()
        .flat_map(|p| p.index().initializers.iter().cloned())
        .collect();
    initializers.sort();
    initializers.dedup();
    let mut index = SummaryIndex {
        functions: index_functions,
        variables: variables.values().map(|(_, v)| (*v).clone()).collect(),
        initializers,
    };
    index.canonicalize();
    Ok(Built {
        header,
        index,
        shard_area,
    })
}

/// Links the library's parts (promoted bitcode per input, in input order) into one module and writes it with its
/// ThinLTO module summary.
pub(crate) fn link_library(parts: &[(&str, &[u8])], header: &SummaryHeader) -> Result<Vec<u8>> {
    let ctx = Context::new();
    let mut modules = parts
        .iter()
        .map(|(name, bytes)| Module::parse_bitcode(&ctx, bytes, name))
        .collect::<Result<Vec<_>>>()?;
    if modules.is_empty() {
        return Err(Error::SummaryBuild {
            what: "(no inputs)".into(),
            message: "the library has no parts".into(),
        });
    }
    let mut library = modules.remove(0);
    library.link_in_all(modules)?;
    if !header.target_triple.is_empty() {
        library.set_triple(&header.target_triple);
        library.set_data_layout(&header.data_layout);
    }
    library.set_name("thinjit-helpers");
    library.set_source_name("thinjit-helpers");
    library.verify()?;
    Ok(library.write_bitcode_with_summary())
}

/// Compiles the promoted helper library (its bitcode) to a native object for `target`, after the preparation
/// the engine applies to a JIT-resident library; the returned description has a placeholder `object` range.
/// With `shared` (a linker), the same code is also linked into the shared runtime
/// ([`super::shared`]), compiled alongside; its bytes come back second.
fn compile_runtime_object(
    library_bc: &[u8],
    target: &super::ObjectTarget,
    shared: Option<&std::path::Path>,
) -> Result<(Vec<u8>, Option<Vec<u8>>, super::RuntimeObject)> {
    let (object, shared) = rayon::join(
        || emit_runtime(library_bc, target, false),
        || {
            shared
                .map(|linker| {
                    emit_runtime(library_bc, target, true).and_then(|(o, _, w)| {
                        Ok((
                            super::shared::link_shared(&o, linker)?,
                            w,
                            linker.display().to_string(),
                        ))
                    })
                })
                .transpose()
        },
    );
    let (object, structors, _) = object?;
    let (shared_bytes, shared) = match shared? {
        Some((bytes, weak, linker)) => (
            Some(bytes),
            Some(super::SharedRuntime {
                image: ShardRef {
                    offset: 0,
                    len: 0,
                    checksum: 0,
                },
                weak,
                linker,
            }),
        ),
        None => (None, None),
    };
    let (structors, defined) = structors;
    Ok((
        object,
        shared_bytes,
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
            shared,
        },
    ))
}

type Prepared = (crate::jit::runtime::Structors, Vec<String>);

/// Parses the library, prepares it for resident use (and, with `shared`, for the shared runtime), and compiles
/// it for `target`: the object, the structors and defined symbols, the imports that were weak.
fn emit_runtime(
    library_bc: &[u8],
    target: &super::ObjectTarget,
    shared: bool,
) -> Result<(Vec<u8>, Prepared, Vec<String>)> {
    let ctx = Context::new();
    let mut module = Module::parse_bitcode(&ctx, library_bc, "thinjit-helpers")?;
    let structors = crate::jit::runtime::prepare_resident_library(&mut module);
    let defined: Vec<String> = module.defined_symbols().into_iter().collect();
    let weak = if shared {
        super::shared::prepare_shared_module(&ctx, &mut module)?
    } else {
        Vec::new()
    };
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
    Ok((object, (structors, defined), weak))
}
