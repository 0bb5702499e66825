//! Build inputs: which files a summary is built from, and each source's clang command line.
//!
//! In: paths (files and directories), `compile_commands.json` databases ([`BuildOptions::compile_commands`]),
//! and `compile_flags.txt` / `.thinjitignore` files in walked directories. Out: an [`InputReport`]: the inputs
//! picked, each with its own compile flags, and the files skipped, each with its reason.
//!
//! # What is picked
//! - **A named file** is always an input (`.c`, `.cc`, `.cpp`, `.cxx`, `.C`, `.bc`, `.ll`).
//! - **A directory** is walked recursively in name order. Sources and IR files are picked, except (each one
//!   reported as skipped, with its reason):
//!   - hidden files and directories (`.name`);
//!   - directories named `test`, `tests`, `testing`, `testdata`, `example`, `examples`, `bench`, `benches` or
//!     `benchmarks`;
//!   - files named `test_*`, `*_test.*` or `*_tests.*`;
//!   - names listed in a `.thinjitignore` file of a walked directory (one path per line, relative to that
//!     directory; `#` starts a comment);
//!   - sources that define `main` once compiled: a program, not a helper.
//! - **A `compile_commands.json`** (as CMake's `CMAKE_EXPORT_COMPILE_COMMANDS`, Meson or Bear write it): every
//!   C/C++ entry is an input compiled with the entry's own flags in the entry's `directory`, with the same test
//!   and `main` rules as a directory walk. An entry's file also named or found in a directory is compiled once,
//!   with the entry's flags.
//!
//! # Flags of a source
//! `clang -O2 -fPIC <own flags> <BuildOptions::clang_args> <c_args or cxx_args> -emit-llvm -c FILE -o TMP`, where
//! the own flags are the compile command's arguments (without the compiler, `-c`, `-o`, dependency-file flags
//! and the file itself), or else the contents of the nearest `compile_flags.txt` (clangd's convention: one flag
//! per line) in the file's directory or a parent up to the walked directory. Relative include paths in a
//! `compile_flags.txt` are relative to its directory.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Error, Result};

use super::BuildOptions;

/// Source file extensions compiled with clang (`c` as C, the rest as C++).
pub const SOURCE_EXTENSIONS: &[&str] = &["c", "cc", "cpp", "cxx", "C"];
/// LLVM IR inputs, read as they are.
pub const IR_EXTENSIONS: &[&str] = &["bc", "ll"];

/// Directory names a walk never enters.
const SKIPPED_DIRECTORIES: &[&str] = &[
    "test",
    "tests",
    "testing",
    "testdata",
    "example",
    "examples",
    "bench",
    "benches",
    "benchmarks",
];

/// The per-directory ignore list.
pub const IGNORE_FILE: &str = ".thinjitignore";
/// clangd's per-directory flags file.
pub const COMPILE_FLAGS_FILE: &str = "compile_flags.txt";

/// How an input came to be picked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputOrigin {
    /// Named as a file.
    Named,
    /// Found walking this directory input.
    Directory(PathBuf),
    /// Entry `entry` (from 0) of this `compile_commands.json`.
    CompileCommand { database: PathBuf, entry: usize },
}

/// One input of a summary build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectedInput {
    pub path: PathBuf,
    pub origin: InputOrigin,
    /// The input's own clang flags (from its compile command or a `compile_flags.txt`).
    pub flags: Vec<String>,
    /// Where `flags` came from, when they came from a file.
    pub flags_from: Option<PathBuf>,
    /// The directory clang runs in (a compile command's `directory`); `None`: the current directory.
    pub directory: Option<PathBuf>,
    /// Compiled as C++ (by extension, or because the compile command's compiler is a C++ driver).
    pub cxx: bool,
}

impl SelectedInput {
    /// `true` for C/C++ sources (compiled), `false` for IR inputs (read as they are).
    pub fn is_source(&self) -> bool {
        has_extension(&self.path, SOURCE_EXTENSIONS)
    }
}

/// Why a file was not summarized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// A hidden file or directory.
    Hidden,
    /// A directory of tests, examples or benchmarks.
    TestDirectory,
    /// A file named like a test program.
    TestFileName,
    /// Listed in this `.thinjitignore`.
    Ignored { list: PathBuf },
    /// Defines `main`: a program, not a helper.
    DefinesMain,
    /// A compile command for a file that is neither C nor C++ (assembly, for example).
    NotCOrCxx,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::Hidden => f.write_str("hidden"),
            SkipReason::TestDirectory => f.write_str("a test, example or benchmark directory"),
            SkipReason::TestFileName => f.write_str("named like a test program"),
            SkipReason::Ignored { list } => write!(f, "listed in {}", list.display()),
            SkipReason::DefinesMain => f.write_str("defines `main` (a program, not a helper)"),
            SkipReason::NotCOrCxx => f.write_str("not a C or C++ source"),
        }
    }
}

/// A file (or directory) left out, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedInput {
    pub path: PathBuf,
    pub reason: SkipReason,
}

/// What a build picked and what it skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputReport {
    pub picked: Vec<SelectedInput>,
    pub skipped: Vec<SkippedInput>,
}

/// One entry of a `compile_commands.json`, as written there.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCompileCommand {
    directory: Option<String>,
    file: Option<String>,
    arguments: Option<Vec<String>>,
    command: Option<String>,
    output: Option<String>,
}

/// One compile command, checked: absolute paths that exist, and the argument vector (compiler first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileCommand {
    pub directory: PathBuf,
    pub file: PathBuf,
    pub arguments: Vec<String>,
    pub output: Option<PathBuf>,
}

/// Reads a `compile_commands.json`. A malformed file, or an entry without `directory`/`file`/a command, or one
/// whose directory or file does not exist, is an error naming the database and the entry.
pub fn load_compile_commands(database: &Path) -> Result<Vec<CompileCommand>> {
    let text = std::fs::read_to_string(database).map_err(|e| Error::io(database, e))?;
    let db_error = |message: String| Error::SummaryBuild {
        what: database.display().to_string(),
        message,
    };
    let entries: Vec<serde_json::Value> = serde_json::from_str(&text).map_err(|e| {
        db_error(format!(
            "not a compile_commands.json (an array of entries): {e}"
        ))
    })?;
    let base = database.parent().unwrap_or(Path::new("."));
    let base = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    let mut out = Vec::with_capacity(entries.len());
    for (i, value) in entries.into_iter().enumerate() {
        let file_hint = value
            .get("file")
            .and_then(|f| f.as_str())
            .map(|f| format!(" (`{f}`)"))
            .unwrap_or_default();
        let entry_error = |message: String| Error::SummaryBuild {
            what: format!("{} entry {i}{file_hint}", database.display()),
            message,
        };
        let raw: RawCompileCommand = serde_json::from_value(value)
            .map_err(|e| entry_error(format!("malformed entry: {e}")))?;
        let directory = raw
            .directory
            .ok_or_else(|| entry_error("no `directory`".into()))?;
        let file = raw.file.ok_or_else(|| entry_error("no `file`".into()))?;
        let directory = base.join(directory);
        if !directory.is_dir() {
            return Err(entry_error(format!(
                "directory {} does not exist",
                directory.display()
            )));
        }
        let file = directory.join(file);
        if !file.is_file() {
            return Err(entry_error(format!(
                "file {} does not exist",
                file.display()
            )));
        }
        let arguments = match (raw.arguments, raw.command) {
            (Some(args), _) if !args.is_empty() => args,
            (_, Some(command)) => split_command(&command).map_err(entry_error)?,
            _ => return Err(entry_error("neither `arguments` nor `command`".into())),
        };
        if arguments.is_empty() {
            return Err(entry_error("empty command".into()));
        }
        out.push(CompileCommand {
            output: raw.output.map(|o| directory.join(o)),
            directory,
            file,
            arguments,
        });
    }
    Ok(out)
}

/// Splits a `command` string the way a POSIX shell splits words: blanks separate, `'...'` is literal, `"..."`
/// keeps blanks and honours `\"`, `\\`, `\$`, `` \` ``, and a backslash outside quotes escapes the next character.
fn split_command(command: &str) -> std::result::Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated ' in `command`".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated \" in `command`".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated \" in `command`".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(c) => word.push(c),
                    None => return Err("trailing \\ in `command`".into()),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Flags that take their value as the next argument and are dropped with it (output and dependency files).
const DROPPED_WITH_VALUE: &[&str] = &["-o", "-MF", "-MT", "-MQ", "-MJ"];
/// Flags dropped alone (compile mode and dependency generation: thinjit sets its own).
const DROPPED: &[&str] = &[
    "-c",
    "-S",
    "-E",
    "-emit-llvm",
    "-M",
    "-MM",
    "-MD",
    "-MMD",
    "-MP",
    "-MG",
    "-MV",
    "--",
];

/// The flags of a compile command that thinjit keeps: without the compiler, the file, the output, the compile
/// mode and dependency-file generation.
fn own_flags(command: &CompileCommand) -> Vec<String> {
    let mut out = Vec::new();
    let mut args = command.arguments.iter().skip(1);
    while let Some(arg) = args.next() {
        if DROPPED_WITH_VALUE.contains(&arg.as_str()) {
            args.next();
            continue;
        }
        let joined_value = DROPPED_WITH_VALUE
            .iter()
            .any(|f| arg.len() > f.len() && arg.starts_with(f))
            && !arg.starts_with("-obj");
        if DROPPED.contains(&arg.as_str()) || joined_value {
            continue;
        }
        if command.directory.join(arg) == command.file {
            continue;
        }
        out.push(arg.clone());
    }
    out
}

/// Flags whose value is a path (joined `-Idir` or separate `-I dir`).
const PATH_FLAGS: &[&str] = &[
    "-I",
    "-isystem",
    "-iquote",
    "-idirafter",
    "-include",
    "-imacros",
];

/// Makes the relative paths of include flags absolute against `base`, so the flags mean the same whatever
/// directory clang runs in.
pub(crate) fn absolute_include_paths(flags: &[String], base: &Path) -> Vec<String> {
    let mut out = Vec::with_capacity(flags.len());
    let mut iter = flags.iter();
    while let Some(flag) = iter.next() {
        if PATH_FLAGS.contains(&flag.as_str()) {
            out.push(flag.clone());
            if let Some(value) = iter.next() {
                out.push(base.join(value).display().to_string());
            }
            continue;
        }
        // Only `-I` is commonly joined; the long forms take the next argument.
        if let Some(value) = flag.strip_prefix("-I") {
            out.push(format!("-I{}", base.join(value).display()));
            continue;
        }
        out.push(flag.clone());
    }
    out
}

fn has_extension(p: &Path, list: &[&str]) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| list.contains(&e))
}

fn is_input_file(p: &Path) -> bool {
    has_extension(p, SOURCE_EXTENSIONS) || has_extension(p, IR_EXTENSIONS)
}

fn is_cxx_path(p: &Path) -> bool {
    has_extension(p, SOURCE_EXTENSIONS) && !has_extension(p, &["c"])
}

fn is_test_file_name(p: &Path) -> bool {
    let Some(stem) = p.file_stem().and_then(|s| s.to_str()) else {
        return false;
    };
    stem.starts_with("test_") || stem.ends_with("_test") || stem.ends_with("_tests")
}

fn is_hidden(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

fn is_skipped_directory(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| SKIPPED_DIRECTORIES.contains(&n))
}

/// Reads a `.thinjitignore`: paths relative to its directory.
fn read_ignore_list(dir: &Path) -> Result<Option<(PathBuf, Vec<PathBuf>)>> {
    let list = dir.join(IGNORE_FILE);
    if !list.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&list).map_err(|e| Error::io(&list, e))?;
    let names = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| dir.join(l.trim_end_matches('/')))
        .collect();
    Ok(Some((list, names)))
}

/// Reads a `compile_flags.txt`: one flag per line, include paths made absolute against its directory.
fn read_compile_flags(file: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
    let flags: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(absolute_include_paths(
        &flags,
        file.parent().unwrap_or(Path::new(".")),
    ))
}

/// The nearest `compile_flags.txt` for `file`: in its directory, or a parent up to (and including) `root`.
fn nearest_compile_flags(file: &Path, root: &Path) -> Option<PathBuf> {
    let mut dir = file.parent();
    while let Some(d) = dir {
        let candidate = d.join(COMPILE_FLAGS_FILE);
        if candidate.is_file() {
            return Some(candidate);
        }
        if d == root || d.as_os_str().is_empty() {
            break;
        }
        dir = d.parent();
    }
    None
}

/// Picks the inputs of a build from `inputs` and the options' compile-command databases; see the module docs.
/// The `main` rule is applied later, once sources are compiled.
pub fn select_inputs(inputs: &[PathBuf], options: &BuildOptions) -> Result<InputReport> {
    let mut report = InputReport::default();
    let mut found: Vec<(PathBuf, InputOrigin, Option<PathBuf>)> = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|e| Error::io(input, e))?;
        if meta.is_dir() {
            let mut ancestors = Vec::new();
            walk_dir(
                input,
                input,
                &[],
                &mut ancestors,
                &mut found,
                &mut report.skipped,
            )?;
        } else {
            crate::check::regular_file(input)?;
            let flags = input
                .parent()
                .map(|d| d.join(COMPILE_FLAGS_FILE))
                .filter(|f| f.is_file());
            found.push((input.clone(), InputOrigin::Named, flags));
        }
    }
    let mut picked: BTreeMap<PathBuf, SelectedInput> = BTreeMap::new();
    let mut flag_files: HashMap<PathBuf, Vec<String>> = HashMap::new();
    for (path, origin, flags_from) in found {
        let flags = match &flags_from {
            Some(f) => match flag_files.get(f) {
                Some(flags) => flags.clone(),
                None => {
                    let flags = read_compile_flags(f)?;
                    flag_files.insert(f.clone(), flags.clone());
                    flags
                }
            },
            None => Vec::new(),
        };
        let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        picked.entry(key).or_insert(SelectedInput {
            cxx: is_cxx_path(&path),
            path,
            origin,
            flags,
            flags_from,
            directory: None,
        });
    }
    for database in &options.compile_commands {
        for (entry, command) in load_compile_commands(database)?.into_iter().enumerate() {
            let relative = command
                .file
                .strip_prefix(&command.directory)
                .unwrap_or(&command.file)
                .to_path_buf();
            let skip = if !has_extension(&command.file, SOURCE_EXTENSIONS) {
                Some(SkipReason::NotCOrCxx)
            } else if is_test_file_name(&command.file) {
                Some(SkipReason::TestFileName)
            } else if relative
                .parent()
                .is_some_and(|p| p.components().any(|c| is_skipped_directory(Path::new(&c))))
            {
                Some(SkipReason::TestDirectory)
            } else {
                None
            };
            if let Some(reason) = skip {
                report.skipped.push(SkippedInput {
                    path: command.file.clone(),
                    reason,
                });
                continue;
            }
            let compiler = command.arguments[0].as_str();
            let cxx = is_cxx_path(&command.file) || compiler.ends_with("++");
            let key = std::fs::canonicalize(&command.file).unwrap_or_else(|_| command.file.clone());
            picked.insert(
                key,
                SelectedInput {
                    flags: own_flags(&command),
                    path: command.file.clone(),
                    origin: InputOrigin::CompileCommand {
                        database: database.clone(),
                        entry,
                    },
                    flags_from: Some(database.clone()),
                    directory: Some(command.directory.clone()),
                    cxx,
                },
            );
        }
    }
    report.picked = picked.into_values().collect();
    report.picked.sort_by(|a, b| a.path.cmp(&b.path));
    report.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    if report.picked.is_empty() {
        let mut what: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
        what.extend(
            options
                .compile_commands
                .iter()
                .map(|p| p.display().to_string()),
        );
        let skipped = if report.skipped.is_empty() {
            String::new()
        } else {
            format!(
                "; skipped: {}",
                report
                    .skipped
                    .iter()
                    .map(|s| format!("{} ({})", s.path.display(), s.reason))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return Err(Error::SummaryBuild {
            what: what.join(", "),
            message: format!("no inputs (.bc, .ll, .c, .cpp) found{skipped}"),
        });
    }
    Ok(report)
}

/// Walks `dir` (under the directory input `root`, following symlinks), collecting inputs and skips. A
/// directory that is its own ancestor (a symlink loop such as `DIR/self -> .`) and an input-named entry that is
/// not a regular file (a FIFO would block the build forever) are errors naming the path.
fn walk_dir(
    root: &Path,
    dir: &Path,
    ignored: &[(PathBuf, PathBuf)],
    ancestors: &mut Vec<PathBuf>,
    found: &mut Vec<(PathBuf, InputOrigin, Option<PathBuf>)>,
    skipped: &mut Vec<SkippedInput>,
) -> Result<()> {
    let canonical = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
    if ancestors.contains(&canonical) {
        return Err(Error::io(
            dir,
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "symlink loop: this is {}, which contains it",
                    canonical.display()
                ),
            ),
        ));
    }
    ancestors.push(canonical);
    let mut ignored = ignored.to_vec();
    if let Some((list, names)) = read_ignore_list(dir)? {
        ignored.extend(names.into_iter().map(|n| (n, list.clone())));
    }
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        let is_dir = p.is_dir();
        if !is_dir && !is_input_file(&p) {
            continue;
        }
        let reason = if let Some((_, list)) = ignored.iter().find(|(n, _)| *n == p) {
            Some(SkipReason::Ignored { list: list.clone() })
        } else if is_hidden(&p) {
            Some(SkipReason::Hidden)
        } else if is_dir && is_skipped_directory(&p) {
            Some(SkipReason::TestDirectory)
        } else if !is_dir && is_test_file_name(&p) {
            Some(SkipReason::TestFileName)
        } else {
            None
        };
        if let Some(reason) = reason {
            skipped.push(SkippedInput { path: p, reason });
        } else if is_dir {
            walk_dir(root, &p, &ignored, ancestors, found, skipped)?;
        } else {
            crate::check::regular_file(&p)?;
            let flags = nearest_compile_flags(&p, root);
            found.push((p, InputOrigin::Directory(root.to_owned()), flags));
        }
    }
    ancestors.pop();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_split_like_a_shell() {
        assert_eq!(
            split_command(r#"cc -DA="x y" -I'inc dir' a\ b.c -c"#).unwrap(),
            vec!["cc", "-DA=x y", "-Iinc dir", "a b.c", "-c"]
        );
        assert_eq!(
            split_command(r#"cc -DS=\"q\" "a\"b""#).unwrap(),
            vec!["cc", "-DS=\"q\"", "a\"b"]
        );
        assert!(split_command("cc 'open").is_err());
    }

    #[test]
    fn own_flags_drop_compiler_output_mode_and_depfiles() {
        let command = CompileCommand {
            directory: PathBuf::from("/build"),
            file: PathBuf::from("/build/src/a.c"),
            arguments: [
                "/usr/bin/cc",
                "-DX=1",
                "-Iinclude",
                "-std=c11",
                "-MD",
                "-MT",
                "a.o",
                "-MF",
                "a.o.d",
                "-o",
                "a.o",
                "-c",
                "src/a.c",
                "-ofoo.o",
            ]
            .map(String::from)
            .to_vec(),
            output: None,
        };
        assert_eq!(own_flags(&command), vec!["-DX=1", "-Iinclude", "-std=c11"]);
    }

    #[test]
    fn include_paths_are_made_absolute() {
        let flags = ["-Iinc", "-I", "b", "-isystem", "sys", "-DX", "-I/abs"].map(String::from);
        assert_eq!(
            absolute_include_paths(&flags, Path::new("/base")),
            vec![
                "-I/base/inc",
                "-I",
                "/base/b",
                "-isystem",
                "/base/sys",
                "-DX",
                "-I/abs"
            ]
        );
    }
}
