//! Real, widely used C libraries as helper libraries: zlib (vendored by the `libz-sys` crate) and SQLite (the
//! amalgamation vendored by `libsqlite3-sys` with its `bundled` feature).
//!
//! In: the workspace manifest (the non-default member `benches/reallib` pins both crates; `cargo metadata`
//! downloads them if needed and says where their sources are), clang-19. Out: bitcode compiled with
//! `clang -O2 -fPIC -emit-llvm -c` into a cache directory (rebuilt only when missing), and [`Workload`]s whose
//! scripts call into the libraries the way an embedding program would.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::workload::{adler32, crc32, LibrarySource, Script, Workload, ENTRY};
use thinjit::{Error, Result};

/// A C library vendored by a crates.io `-sys` crate.
#[derive(Clone, Copy, Debug)]
pub struct RealLibrary {
    /// Short name used in tables (`zlib`, `sqlite`).
    pub name: &'static str,
    /// The crate that vendors the sources.
    pub crate_name: &'static str,
    /// Source files relative to the crate root.
    pub sources: &'static [&'static str],
    /// Include directories relative to the crate root.
    pub include_dirs: &'static [&'static str],
    /// Extra clang arguments (defines).
    pub defines: &'static [&'static str],
}

/// zlib as vendored by `libz-sys` (`src/zlib`): the compression and checksum core, without gz file I/O.
pub const ZLIB: RealLibrary = RealLibrary {
    name: "zlib",
    crate_name: "libz-sys",
    sources: &[
        "src/zlib/adler32.c",
        "src/zlib/compress.c",
        "src/zlib/crc32.c",
        "src/zlib/deflate.c",
        "src/zlib/infback.c",
        "src/zlib/inffast.c",
        "src/zlib/inflate.c",
        "src/zlib/inftrees.c",
        "src/zlib/trees.c",
        "src/zlib/uncompr.c",
        "src/zlib/zutil.c",
    ],
    include_dirs: &["src/zlib"],
    defines: &["-DHAVE_UNISTD_H", "-DHAVE_STDARG_H"],
};

/// The SQLite amalgamation as vendored by `libsqlite3-sys` (`sqlite3/sqlite3.c`), single-threaded, without
/// extension loading.
pub const SQLITE: RealLibrary = RealLibrary {
    name: "sqlite",
    crate_name: "libsqlite3-sys",
    sources: &["sqlite3/sqlite3.c"],
    include_dirs: &["sqlite3"],
    defines: &[
        "-DSQLITE_THREADSAFE=0",
        "-DSQLITE_OMIT_LOAD_EXTENSION",
        "-DSQLITE_DEFAULT_MEMSTATUS=0",
    ],
};

/// The root directory of `crate_name`'s sources, as `cargo metadata` reports it for the workspace at
/// `workspace_manifest` (downloading the crate if it is not in the local registry yet).
pub fn locate_crate(workspace_manifest: &Path, crate_name: &str) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(&cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(workspace_manifest)
        .output()
        .map_err(|e| bench_error(crate_name, format!("cannot run cargo metadata: {e}")))?;
    if !out.status.success() {
        return Err(bench_error(
            crate_name,
            format!(
                "cargo metadata failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| bench_error(crate_name, format!("cargo metadata output: {e}")))?;
    let packages = meta["packages"].as_array().cloned().unwrap_or_default();
    let manifest = packages
        .iter()
        .find(|p| p["name"].as_str() == Some(crate_name))
        .and_then(|p| p["manifest_path"].as_str())
        .ok_or_else(|| {
            bench_error(
                crate_name,
                "not in the workspace's dependency graph (is benches/reallib a workspace member?)",
            )
        })?;
    Ok(Path::new(manifest)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default())
}

/// Compiles `lib`'s sources under `crate_root` to bitcode in `cache_dir/<name>/`, reusing files that exist and
/// are newer than their source. Returns the bitcode files in source order.
pub fn compile_bitcode(
    lib: &RealLibrary,
    crate_root: &Path,
    cache_dir: &Path,
) -> Result<Vec<PathBuf>> {
    let out_dir = cache_dir.join(lib.name);
    std::fs::create_dir_all(&out_dir).map_err(|e| Error::io(&out_dir, e))?;
    let clang = Path::new(env!("THINJIT_LLVM_BIN")).join("clang");
    let mut outputs = Vec::new();
    for rel in lib.sources {
        let src = crate_root.join(rel);
        let stem = Path::new(rel)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bc = out_dir.join(format!("{stem}.bc"));
        if !is_fresh(&bc, &src) {
            let mut cmd = Command::new(&clang);
            cmd.args(["-O2", "-fPIC", "-emit-llvm", "-c", "-w"]);
            for inc in lib.include_dirs {
                cmd.arg(format!("-I{}", crate_root.join(inc).display()));
            }
            cmd.args(lib.defines).arg(&src).arg("-o").arg(&bc);
            let out = cmd.output().map_err(|e| {
                bench_error(lib.name, format!("cannot run {}: {e}", clang.display()))
            })?;
            if !out.status.success() {
                return Err(bench_error(
                    lib.name,
                    format!(
                        "clang failed on {}: {}",
                        src.display(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                ));
            }
        }
        outputs.push(bc);
    }
    Ok(outputs)
}

fn is_fresh(output: &Path, input: &Path) -> bool {
    let (Ok(o), Ok(i)) = (std::fs::metadata(output), std::fs::metadata(input)) else {
        return false;
    };
    match (o.modified(), i.modified()) {
        (Ok(o), Ok(i)) => o >= i && std::fs::metadata(output).is_ok_and(|m| m.len() > 0),
        _ => false,
    }
}

fn bench_error(what: &str, message: impl Into<String>) -> Error {
    Error::Config {
        message: format!("benchmark library {what}: {}", message.into()),
    }
}

/// Locates and compiles `lib`, then pairs it with its scripts (`scale` × default iterations).
pub fn workload(
    lib: &RealLibrary,
    workspace_manifest: &Path,
    cache_dir: &Path,
    scale: f64,
) -> Result<Workload> {
    let root = locate_crate(workspace_manifest, lib.crate_name)?;
    let bitcode = compile_bitcode(lib, &root, cache_dir)?;
    let scripts = match lib.name {
        "zlib" => zlib_scripts(scale),
        _ => sqlite_scripts(scale),
    };
    Ok(Workload {
        library: lib.name.to_owned(),
        source: LibrarySource::Bitcode(bitcode),
        scripts,
    })
}

fn scaled(base: f64, scale: f64) -> i64 {
    ((base * scale) as i64).max(1)
}

/// zlib scripts: checksums over a buffer in a loop (call-heavy on small buffers), and a compress/uncompress
/// round trip.
pub fn zlib_scripts(scale: f64) -> Vec<Script> {
    let n_sum = scaled(200_000.0, scale);
    let n_trip = scaled(2_000.0, scale);
    vec![
        Script {
            name: "zlib-checksum".into(),
            ir: ZLIB_CHECKSUM.into(),
            iterations: n_sum,
            entry: ENTRY.into(),
            args: vec![n_sum],
            expected: Some(expected_zlib_checksum(n_sum)),
            call_heavy: true,
        },
        Script {
            name: "zlib-roundtrip".into(),
            ir: ZLIB_ROUNDTRIP.into(),
            iterations: n_trip,
            entry: ENTRY.into(),
            args: vec![n_trip],
            expected: Some(n_trip),
            call_heavy: false,
        },
    ]
}

/// `zlib-checksum`: for i in 0..n, a 16-byte buffer `le64(i) ++ "zlibdata"`; crc = crc32(crc, buf, 16),
/// adler = adler32(adler, buf, 16). Returns `crc ^ (adler << 32)`.
const ZLIB_CHECKSUM: &str = r#"
@.tail = private unnamed_addr constant [8 x i8] c"zlibdata"

declare i64 @crc32(i64, ptr, i32)
declare i64 @adler32(i64, ptr, i32)

define i64 @bench_main(i64 %n) {
entry:
  %buf = alloca [16 x i8], align 8
  %tailp = getelementptr inbounds i8, ptr %buf, i64 8
  %t = load i64, ptr @.tail, align 1
  store i64 %t, ptr %tailp, align 8
  br label %loop

loop:
  %i = phi i64 [ 0, %entry ], [ %i.next, %loop ]
  %crc = phi i64 [ 0, %entry ], [ %crc.next, %loop ]
  %adler = phi i64 [ 1, %entry ], [ %adler.next, %loop ]
  store i64 %i, ptr %buf, align 8
  %crc.next = call i64 @crc32(i64 %crc, ptr %buf, i32 16)
  %adler.next = call i64 @adler32(i64 %adler, ptr %buf, i32 16)
  %i.next = add i64 %i, 1
  %more = icmp ult i64 %i.next, %n
  br i1 %more, label %loop, label %exit

exit:
  %hi = shl i64 %adler.next, 32
  %r = xor i64 %crc.next, %hi
  ret i64 %r
}
"#;

/// What `zlib-checksum` returns.
pub fn expected_zlib_checksum(n: i64) -> i64 {
    let (mut crc, mut adler) = (0u32, 1u32);
    let mut buf = [0u8; 16];
    buf[8..].copy_from_slice(b"zlibdata");
    for i in 0..n.max(1) {
        buf[..8].copy_from_slice(&i.to_le_bytes());
        crc = crc32(crc, &buf);
        adler = adler32(adler, &buf);
    }
    (crc as i64) ^ ((adler as i64) << 32)
}

/// `zlib-roundtrip`: compress a 1 KiB buffer (varying with i) and uncompress it; returns how many round trips
/// gave back the original bytes and length (expected: n).
const ZLIB_ROUNDTRIP: &str = r#"
declare i32 @compress(ptr, ptr, ptr, i64)
declare i32 @uncompress(ptr, ptr, ptr, i64)
declare i32 @memcmp(ptr, ptr, i64)

define i64 @bench_main(i64 %n) {
entry:
  %src = alloca [1024 x i8], align 16
  %dst = alloca [2048 x i8], align 16
  %back = alloca [1024 x i8], align 16
  %dlen = alloca i64, align 8
  %blen = alloca i64, align 8
  br label %fill

fill:
  %j = phi i64 [ 0, %entry ], [ %j.next, %fill ]
  %jm = urem i64 %j, 7
  %jc = add i64 %jm, 97
  %jb = trunc i64 %jc to i8
  %sp = getelementptr inbounds i8, ptr %src, i64 %j
  store i8 %jb, ptr %sp, align 1
  %j.next = add i64 %j, 1
  %jmore = icmp ult i64 %j.next, 1024
  br i1 %jmore, label %fill, label %loop

loop:
  %i = phi i64 [ 0, %fill ], [ %i.next, %loop ]
  %ok = phi i64 [ 0, %fill ], [ %ok.next, %loop ]
  %ib = trunc i64 %i to i8
  store i8 %ib, ptr %src, align 1
  store i64 2048, ptr %dlen, align 8
  %rc1 = call i32 @compress(ptr %dst, ptr %dlen, ptr %src, i64 1024)
  %clen = load i64, ptr %dlen, align 8
  store i64 1024, ptr %blen, align 8
  %rc2 = call i32 @uncompress(ptr %back, ptr %blen, ptr %dst, i64 %clen)
  %ulen = load i64, ptr %blen, align 8
  %cmp = call i32 @memcmp(ptr %src, ptr %back, i64 1024)
  %g1 = icmp eq i32 %rc1, 0
  %g2 = icmp eq i32 %rc2, 0
  %g3 = icmp eq i64 %ulen, 1024
  %g4 = icmp eq i32 %cmp, 0
  %g12 = and i1 %g1, %g2
  %g34 = and i1 %g3, %g4
  %good = and i1 %g12, %g34
  %inc = zext i1 %good to i64
  %ok.next = add i64 %ok, %inc
  %i.next = add i64 %i, 1
  %more = icmp ult i64 %i.next, %n
  br i1 %more, label %loop, label %exit

exit:
  ret i64 %ok.next
}
"#;

/// SQLite scripts: its exported string utilities in a loop (call-heavy), and a prepared statement stepped in
/// a loop over an in-memory database.
pub fn sqlite_scripts(scale: f64) -> Vec<Script> {
    let n_str = scaled(200_000.0, scale);
    let n_query = scaled(20_000.0, scale);
    vec![
        Script {
            name: "sqlite-strings".into(),
            ir: SQLITE_STRINGS.into(),
            iterations: n_str,
            entry: ENTRY.into(),
            args: vec![n_str],
            expected: Some(expected_sqlite_strings(n_str)),
            call_heavy: true,
        },
        Script {
            name: "sqlite-query".into(),
            ir: SQLITE_QUERY.into(),
            iterations: n_query,
            entry: ENTRY.into(),
            args: vec![n_query],
            expected: Some(n_query * n_query),
            call_heavy: false,
        },
    ]
}

/// `sqlite-strings`: case-insensitive comparisons with `sqlite3_strnicmp` / `sqlite3_stricmp` of "SELECT" /
/// "select" / "selecT" prefixes, `i`-dependent lengths.
const SQLITE_STRINGS: &str = r#"
@.a = private unnamed_addr constant [12 x i8] c"SELECT name\00"
@.b = private unnamed_addr constant [12 x i8] c"select NAME\00"
@.c = private unnamed_addr constant [12 x i8] c"selecT nbme\00"

declare i32 @sqlite3_strnicmp(ptr, ptr, i32)
declare i32 @sqlite3_stricmp(ptr, ptr)

define i64 @bench_main(i64 %n) {
entry:
  br label %loop

loop:
  %i = phi i64 [ 0, %entry ], [ %i.next, %loop ]
  %acc = phi i64 [ 0, %entry ], [ %acc.next, %loop ]
  %i12 = urem i64 %i, 12
  %len = trunc i64 %i12 to i32
  %r1 = call i32 @sqlite3_strnicmp(ptr @.a, ptr @.b, i32 %len)
  %r2 = call i32 @sqlite3_strnicmp(ptr @.a, ptr @.c, i32 %len)
  %r3 = call i32 @sqlite3_stricmp(ptr @.b, ptr @.c)
  %z1 = icmp eq i32 %r1, 0
  %z2 = icmp eq i32 %r2, 0
  %neg3 = icmp slt i32 %r3, 0
  %e1 = zext i1 %z1 to i64
  %e2 = zext i1 %z2 to i64
  %e3 = zext i1 %neg3 to i64
  %e2s = shl i64 %e2, 1
  %e3s = shl i64 %e3, 2
  %s1 = add i64 %e1, %e2s
  %s2 = add i64 %s1, %e3s
  %acc.next = add i64 %acc, %s2
  %i.next = add i64 %i, 1
  %more = icmp ult i64 %i.next, %n
  br i1 %more, label %loop, label %exit

exit:
  ret i64 %acc.next
}
"#;

/// What `sqlite-strings` returns: per iteration 1 (equal ignoring case, always) + 2 when the first `i % 12`
/// bytes of "SELECT name" and "selecT nbme" agree ignoring case (length <= 8) + 4 ("select NAME" < "selecT
/// nbme", always).
pub fn expected_sqlite_strings(n: i64) -> i64 {
    (0..n.max(1))
        .map(|i| {
            let len = i % 12;
            1 + if len <= 8 { 2 } else { 0 } + 4
        })
        .sum()
}

/// `sqlite-query`: open `:memory:`, prepare `SELECT ?1 * 2 + 1`, then for i in 0..n bind i, step, read the
/// column, reset. Returns the sum (expected: n²), or a negative code when an API call fails.
const SQLITE_QUERY: &str = r#"
@.db = private unnamed_addr constant [9 x i8] c":memory:\00"
@.sql = private unnamed_addr constant [18 x i8] c"SELECT ?1 * 2 + 1\00"

declare i32 @sqlite3_open(ptr, ptr)
declare i32 @sqlite3_prepare_v2(ptr, ptr, i32, ptr, ptr)
declare i32 @sqlite3_bind_int64(ptr, i32, i64)
declare i32 @sqlite3_step(ptr)
declare i64 @sqlite3_column_int64(ptr, i32)
declare i32 @sqlite3_reset(ptr)
declare i32 @sqlite3_finalize(ptr)
declare i32 @sqlite3_close(ptr)

define i64 @bench_main(i64 %n) {
entry:
  %dbp = alloca ptr, align 8
  %stp = alloca ptr, align 8
  %rc = call i32 @sqlite3_open(ptr @.db, ptr %dbp)
  %okopen = icmp eq i32 %rc, 0
  br i1 %okopen, label %prepare, label %fail_open

prepare:
  %db = load ptr, ptr %dbp, align 8
  %rcp = call i32 @sqlite3_prepare_v2(ptr %db, ptr @.sql, i32 -1, ptr %stp, ptr null)
  %okprep = icmp eq i32 %rcp, 0
  br i1 %okprep, label %loop.pre, label %fail_prepare

loop.pre:
  %st = load ptr, ptr %stp, align 8
  br label %loop

loop:
  %i = phi i64 [ 0, %loop.pre ], [ %i.next, %loop ]
  %acc = phi i64 [ 0, %loop.pre ], [ %acc.next, %loop ]
  %rb = call i32 @sqlite3_bind_int64(ptr %st, i32 1, i64 %i)
  %rs = call i32 @sqlite3_step(ptr %st)
  %v = call i64 @sqlite3_column_int64(ptr %st, i32 0)
  %rr = call i32 @sqlite3_reset(ptr %st)
  %row = icmp eq i32 %rs, 100
  %vv = select i1 %row, i64 %v, i64 -1000000000
  %acc.next = add i64 %acc, %vv
  %i.next = add i64 %i, 1
  %more = icmp ult i64 %i.next, %n
  br i1 %more, label %loop, label %done

done:
  %rf = call i32 @sqlite3_finalize(ptr %st)
  %rcl = call i32 @sqlite3_close(ptr %db)
  ret i64 %acc.next

fail_open:
  ret i64 -1

fail_prepare:
  ret i64 -2
}
"#;
