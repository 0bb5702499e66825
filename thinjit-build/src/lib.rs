//! Build a thinjit summary of a host's C/C++ helper runtime from `build.rs`, the way the `cc` crate builds a
//! C library.
//!
//! In: the host's helper sources and their flags (include directories, defines, language standards, per-language
//! flags). Out: `$OUT_DIR/<name>.thinjit` (the summary, with the promoted runtime library and its native object
//! for this machine), `cargo:rerun-if-changed` for every source and every header clang read (from its `-MD`
//! dependency files), and `cargo:rustc-env=THINJIT_SUMMARY_<name>=<path>` so the crate finds the file with
//! [`thinjit::summary_path!`] (`env!("THINJIT_SUMMARY_<name>")`).
//!
//! Sources are compiled with LLVM 19's clang (`-O2 -fPIC -emit-llvm`): `$THINJIT_CLANG` (the C compiler; `clang++`
//! beside it for C++), else `$LLVM_SYS_191_PREFIX/bin`, else `/usr/lib/llvm-19/bin`. Nothing else is compiled:
//! thinjit's own sample helpers are never built for a downstream crate.
//!
//! ```no_run
//! // build.rs: `fn main() { ... }` around this
//! thinjit_build::Build::new()
//!     .file("runtime/counter.c")
//!     .file("runtime/strings.c")
//!     .include("include")
//!     .define("RT_MAX", Some("64"))
//!     .std_c("c11")
//!     .compile("runtime");
//! ```
//! ```ignore
//! // src/main.rs
//! let summary = thinjit::summary::Summary::load(thinjit::summary_path!("runtime").as_ref())?;
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use thinjit::summary::{BuildOptions, ObjectTarget, Summary};

/// What a build made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// The summary file in `OUT_DIR`.
    pub summary: PathBuf,
    /// Every file the compiled sources read (the sources and their headers), sorted.
    pub dependencies: Vec<PathBuf>,
    /// The bitcode files compiled from the sources.
    pub bitcode: Vec<PathBuf>,
}

/// Why a build failed: the step, and the file it concerns.
#[derive(Debug)]
pub struct Error {
    message: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

fn error(message: impl Into<String>) -> Error {
    Error {
        message: message.into(),
    }
}

/// A helper-runtime build: sources, flags, then [`Build::compile`].
#[derive(Clone, Debug, Default)]
pub struct Build {
    files: Vec<PathBuf>,
    includes: Vec<PathBuf>,
    defines: Vec<(String, Option<String>)>,
    std_c: Option<String>,
    std_cxx: Option<String>,
    flags: Vec<String>,
    c_flags: Vec<String>,
    cxx_flags: Vec<String>,
    out_dir: Option<PathBuf>,
    no_object: bool,
    cargo_metadata: Option<bool>,
}

impl Build {
    /// An empty build.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a source: `.c` (clang) or `.cc`/`.cpp`/`.cxx` (clang++).
    pub fn file(&mut self, path: impl AsRef<Path>) -> &mut Self {
        self.files.push(path.as_ref().to_owned());
        self
    }

    /// Adds several sources.
    pub fn files<P: AsRef<Path>>(&mut self, paths: impl IntoIterator<Item = P>) -> &mut Self {
        for p in paths {
            self.file(p);
        }
        self
    }

    /// Adds an include directory (`-I`).
    pub fn include(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.includes.push(dir.as_ref().to_owned());
        self
    }

    /// Defines a macro (`-DNAME` or `-DNAME=VALUE`).
    pub fn define(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        self.defines
            .push((name.to_owned(), value.map(str::to_owned)));
        self
    }

    /// The C standard of C sources (`c11`, `gnu17`, ...).
    pub fn std_c(&mut self, std: &str) -> &mut Self {
        self.std_c = Some(std.to_owned());
        self
    }

    /// The C++ standard of C++ sources (`c++17`, ...).
    pub fn std_cxx(&mut self, std: &str) -> &mut Self {
        self.std_cxx = Some(std.to_owned());
        self
    }

    /// A flag for every source.
    pub fn flag(&mut self, flag: &str) -> &mut Self {
        self.flags.push(flag.to_owned());
        self
    }

    /// A flag for C sources only.
    pub fn c_flag(&mut self, flag: &str) -> &mut Self {
        self.c_flags.push(flag.to_owned());
        self
    }

    /// A flag for C++ sources only.
    pub fn cxx_flag(&mut self, flag: &str) -> &mut Self {
        self.cxx_flags.push(flag.to_owned());
        self
    }

    /// Where to write (default: `$OUT_DIR`).
    pub fn out_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.out_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// Skip the native runtime object (an engine then compiles the library bitcode at start-up).
    pub fn no_object(&mut self) -> &mut Self {
        self.no_object = true;
        self
    }

    /// Whether to print `cargo:` lines (default: when running under cargo, i.e. `OUT_DIR` is set).
    pub fn cargo_metadata(&mut self, enabled: bool) -> &mut Self {
        self.cargo_metadata = Some(enabled);
        self
    }

    /// Builds `$OUT_DIR/<name>.thinjit`; on failure prints the error and panics, as build scripts do (the `cc`
    /// crate's `compile`). `name` is also the suffix of `THINJIT_SUMMARY_<name>`.
    pub fn compile(&self, name: &str) -> Output {
        match self.try_compile(name) {
            Ok(out) => out,
            Err(e) => {
                eprintln!("error: thinjit-build: {e}");
                panic!("thinjit-build: {e}");
            }
        }
    }

    /// [`Build::compile`], returning the error.
    pub fn try_compile(&self, name: &str) -> Result<Output, Error> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(error(format!(
                "summary name `{name}`: use letters, digits, `_` and `-`"
            )));
        }
        if self.files.is_empty() {
            return Err(error(format!("summary `{name}`: no source files given")));
        }
        let metadata = self
            .cargo_metadata
            .unwrap_or_else(|| std::env::var_os("OUT_DIR").is_some());
        let out_dir = match &self.out_dir {
            Some(d) => d.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or_else(|| {
                    error("OUT_DIR is not set (not in a build script?): use out_dir()")
                })?,
        };
        let work = out_dir.join(format!("{name}.thinjit-build"));
        std::fs::create_dir_all(&work)
            .map_err(|e| error(format!("creating {}: {e}", work.display())))?;
        if metadata {
            for var in ["THINJIT_CLANG", "LLVM_SYS_191_PREFIX"] {
                println!("cargo:rerun-if-env-changed={var}");
            }
        }
        let (clang, clangxx) = compilers();
        let mut dependencies = BTreeSet::new();
        let mut bitcode = Vec::with_capacity(self.files.len());
        for (i, file) in self.files.iter().enumerate() {
            let cxx = is_cxx(file);
            let stem = file
                .file_stem()
                .map_or_else(|| "source".into(), |s| s.to_string_lossy().into_owned());
            let bc = work.join(format!("{i:03}-{stem}.bc"));
            let depfile = work.join(format!("{i:03}-{stem}.d"));
            let compiler = if cxx { &clangxx } else { &clang };
            let mut cmd = Command::new(compiler);
            cmd.args(["-O2", "-fPIC"]);
            for dir in &self.includes {
                cmd.arg(format!("-I{}", dir.display()));
            }
            for (n, v) in &self.defines {
                cmd.arg(match v {
                    Some(v) => format!("-D{n}={v}"),
                    None => format!("-D{n}"),
                });
            }
            let std = if cxx { &self.std_cxx } else { &self.std_c };
            if let Some(std) = std {
                cmd.arg(format!("-std={std}"));
            }
            cmd.args(&self.flags);
            cmd.args(if cxx { &self.cxx_flags } else { &self.c_flags });
            cmd.args(["-emit-llvm", "-c", "-MD", "-MF"])
                .arg(&depfile)
                .arg(file)
                .arg("-o")
                .arg(&bc);
            let out = cmd.output().map_err(|e| {
                error(format!(
                    "{}: cannot run {}: {e}",
                    file.display(),
                    compiler.display()
                ))
            })?;
            if !out.status.success() {
                // The source itself must still trigger a rebuild once fixed.
                if metadata {
                    println!("cargo:rerun-if-changed={}", file.display());
                }
                return Err(error(format!(
                    "{}: {} failed:\n{}",
                    file.display(),
                    compiler.display(),
                    String::from_utf8_lossy(&out.stderr).trim_end()
                )));
            }
            let deps = std::fs::read_to_string(&depfile)
                .map_err(|e| error(format!("reading {}: {e}", depfile.display())))?;
            dependencies.extend(parse_depfile(&deps));
            dependencies.insert(file.clone());
            bitcode.push(bc);
        }
        if metadata {
            for d in &dependencies {
                println!("cargo:rerun-if-changed={}", d.display());
            }
        }
        let options = BuildOptions {
            object: (!self.no_object).then(ObjectTarget::host),
            ..BuildOptions::default()
        };
        let summary = Summary::build(&bitcode, &options)
            .map_err(|e| error(format!("summary `{name}`: {e}")))?;
        if let Some(cause) = summary.index().nothing_importable() {
            return Err(error(format!("summary `{name}`: {cause}")));
        }
        let path = out_dir.join(format!("{name}.thinjit"));
        summary
            .write(&path)
            .map_err(|e| error(format!("writing {}: {e}", path.display())))?;
        if metadata {
            println!("cargo:rustc-env=THINJIT_SUMMARY_{name}={}", path.display());
        }
        Ok(Output {
            summary: path,
            dependencies: dependencies.into_iter().collect(),
            bitcode,
        })
    }
}

fn is_cxx(file: &Path) -> bool {
    file.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e, "cc" | "cpp" | "cxx" | "C" | "c++"))
}

/// clang and clang++ of LLVM 19 (never from PATH: it may hold another LLVM).
fn compilers() -> (PathBuf, PathBuf) {
    if let Some(clang) = std::env::var_os("THINJIT_CLANG").map(PathBuf::from) {
        let clangxx = clang.with_file_name(format!(
            "{}++",
            clang
                .file_name()
                .map_or_else(|| "clang".into(), |n| n.to_string_lossy().into_owned())
        ));
        return (clang, clangxx);
    }
    let bin = std::env::var_os("LLVM_SYS_191_PREFIX")
        .map(|p| PathBuf::from(p).join("bin"))
        .unwrap_or_else(|| PathBuf::from("/usr/lib/llvm-19/bin"));
    (bin.join("clang"), bin.join("clang++"))
}

/// The prerequisites of a Makefile-style dependency file as clang's `-MD -MF` writes it: `target: a b \`, with
/// `\ ` for a space in a name and `$$` for `$`.
pub fn parse_depfile(text: &str) -> Vec<PathBuf> {
    let joined = text.replace("\\\r\n", " ").replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let Some(colon) = find_rule_colon(line) else {
            continue;
        };
        let mut word = String::new();
        let mut chars = line[colon + 1..].chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&' ') => {
                    word.push(' ');
                    chars.next();
                }
                '$' if chars.peek() == Some(&'$') => {
                    word.push('$');
                    chars.next();
                }
                ' ' | '\t' => {
                    if !word.is_empty() {
                        out.push(PathBuf::from(std::mem::take(&mut word)));
                    }
                }
                c => word.push(c),
            }
        }
        if !word.is_empty() {
            out.push(PathBuf::from(word));
        }
    }
    out
}

/// The colon ending a rule's targets (`target: deps`), skipping escaped spaces and a drive letter's colon.
fn find_rule_colon(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    (0..bytes.len())
        .find(|&i| bytes[i] == b':' && bytes.get(i + 1).map_or(true, |b| *b == b' ' || *b == b'\t'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depfiles_parse_like_make() {
        let text =
            "out/a.bc: src/a.c include/a.h \\\n  include/with\\ space.h /usr/include/stdio.h\n";
        assert_eq!(
            parse_depfile(text),
            [
                "src/a.c",
                "include/a.h",
                "include/with space.h",
                "/usr/include/stdio.h"
            ]
            .map(PathBuf::from)
            .to_vec()
        );
    }
}
