//! Workloads: a helper library plus the scripts that call into it, each with a known answer.
//!
//! In: the bundled helper bitcode, the `benches/scripts/*.ll` scripts (compiled into the crate), real libraries'
//! bitcode ([`super::reallib`]) and synthetic libraries. Out: [`Workload`]s — every script has one entry point
//! `i64 bench_main(i64 n)` that runs its hot loop `n` times and returns a value the harness checks against
//! [`Script::expected`], computed here by a plain Rust reference implementation of what the script does.

use std::path::PathBuf;

/// The signature every benchmark script's entry point has: `i64 bench_main(i64 iterations)`.
pub const ENTRY: &str = "bench_main";

/// One script module and what running it must return.
#[derive(Clone, Debug)]
pub struct Script {
    /// Short name (`arith`, `zlib-checksum`, ...).
    pub name: String,
    /// Textual LLVM IR, as a front end would emit it.
    pub ir: String,
    /// Hot-loop iterations (the bundled scripts' one argument; 0 for a user's script).
    pub iterations: i64,
    /// The function the harness calls: `i64 entry(i64 × args.len())`.
    pub entry: String,
    /// Its arguments.
    pub args: Vec<i64>,
    /// What `bench_main(iterations)` returns; `None` when only agreement with the `none` strategy is checked.
    pub expected: Option<i64>,
    /// A script whose run time is dominated by calls to small helpers (where inlining should pay off).
    pub call_heavy: bool,
}

/// Where a library's bitcode comes from.
#[derive(Clone, Debug)]
pub enum LibrarySource {
    /// Bitcode files already on disk (bundled helpers, compiled real libraries).
    Bitcode(Vec<PathBuf>),
    /// A synthetic library of `functions` functions generated from `seed`.
    Synthetic { functions: usize, seed: u64 },
}

/// A helper library and the scripts that call into it.
#[derive(Clone, Debug)]
pub struct Workload {
    /// `helpers`, `synth-10k`, `zlib`, `sqlite`, ...
    pub library: String,
    pub source: LibrarySource,
    pub scripts: Vec<Script>,
}

/// The bundled scripts (`benches/scripts/*.ll`), compiled into the crate so the demo and tests need no files.
pub mod bundled {
    /// The seed's script with a driver loop.
    pub const SEED: &str = include_str!("../../../benches/scripts/seed.ll");
    /// Boxed arithmetic in a loop.
    pub const ARITH: &str = include_str!("../../../benches/scripts/arith.ll");
    /// String building through the intern table.
    pub const STRINGS: &str = include_str!("../../../benches/scripts/strings.ll");
    /// Constant-table lookups.
    pub const TABLES: &str = include_str!("../../../benches/scripts/tables.ll");
    /// Many helpers, each called once per iteration.
    pub const MIX: &str = include_str!("../../../benches/scripts/mix.ll");
    /// Small accessors in a tight loop (call overhead dominates).
    pub const ACCESSORS: &str = include_str!("../../../benches/scripts/accessors.ll");
    /// Semantic check: one instance of `rt_shared_counter`.
    pub const COUNTER: &str = include_str!("../../../benches/scripts/counter.ll");
    /// Semantic check: the intern table's constructor ran once and the table is live.
    pub const INITONCE: &str = include_str!("../../../benches/scripts/initonce.ll");
}

fn script(name: &str, ir: &str, iterations: i64, expected: i64, call_heavy: bool) -> Script {
    Script {
        name: name.to_owned(),
        ir: ir.to_owned(),
        iterations,
        entry: ENTRY.into(),
        args: vec![iterations],
        expected: Some(expected),
        call_heavy,
    }
}

/// The six scripts over the bundled helper runtime, with `scale` × their default iteration counts (at least 1).
///
/// `seed`, `arith` and `accessors` call small helpers in their loops (call-heavy); `seed` and `arith` allocate a
/// boxed value per call, so `malloc` bounds what inlining can gain there; `accessors` does not allocate.
pub fn helper_scripts(scale: f64) -> Vec<Script> {
    let n = |base: f64| ((base * scale) as i64).max(1);
    let (seed_n, arith_n, strings_n, tables_n, mix_n, acc_n) = (
        n(200_000.0),
        n(200_000.0),
        n(50_000.0),
        n(200_000.0),
        n(20_000.0),
        n(2_000_000.0),
    );
    vec![
        script("seed", bundled::SEED, seed_n, expected_seed(seed_n), true),
        script(
            "arith",
            bundled::ARITH,
            arith_n,
            expected_arith(arith_n),
            true,
        ),
        script(
            "strings",
            bundled::STRINGS,
            strings_n,
            expected_strings(strings_n),
            false,
        ),
        script(
            "tables",
            bundled::TABLES,
            tables_n,
            expected_tables(tables_n),
            true,
        ),
        script("mix", bundled::MIX, mix_n, expected_mix(mix_n), false),
        script(
            "accessors",
            bundled::ACCESSORS,
            acc_n,
            expected_accessors(acc_n),
            true,
        ),
    ]
}

/// The bundled helper library (bitcode built by build.rs) with its six scripts.
pub fn helpers_workload(scale: f64) -> Workload {
    let dir = PathBuf::from(env!("THINJIT_HELPERS_BC_DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "bc"));
    files.sort();
    Workload {
        library: "helpers".into(),
        source: LibrarySource::Bitcode(files),
        scripts: helper_scripts(scale),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Reference implementations (what the scripts compute, in plain Rust).
// ---------------------------------------------------------------------------------------------------------

/// `seed.ll`: `n` boxed 23333s summed.
pub fn expected_seed(n: i64) -> i64 {
    n.max(1) * 23333
}

/// `arith.ll`: the wrapping 32-bit sum of `0..n`.
pub fn expected_arith(n: i64) -> i64 {
    let mut acc = 0i32;
    for i in 0..n.max(1) {
        acc = acc.wrapping_add(i as i32);
    }
    acc as i64
}

/// `strings.ll`: total length of `"key" ++ decimal(i & 63)`.
pub fn expected_strings(n: i64) -> i64 {
    (0..n.max(1))
        .map(|i| 3 + format!("{}", i & 63).len() as i64)
        .sum()
}

const SQUARES: [i32; 64] = {
    let mut t = [0i32; 64];
    let mut i = 0;
    while i < 64 {
        t[i] = (i * i) as i32;
        i += 1;
    }
    t
};

/// `accessors.ll`: squares plus tag 1 plus payload 5 per iteration.
pub fn expected_accessors(n: i64) -> i64 {
    (0..n.max(1))
        .map(|i| SQUARES[(i & 63) as usize] as i64 + 6)
        .sum()
}

/// CRC-32 (IEEE 802.3, reflected), as `rt_crc32` and zlib's `crc32` compute it.
pub fn crc32(seed: u32, data: &[u8]) -> u32 {
    let mut c = !seed;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// Adler-32, as zlib's `adler32` computes it.
pub fn adler32(seed: u32, data: &[u8]) -> u32 {
    let (mut a, mut b) = (seed & 0xffff, seed >> 16);
    for &x in data {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

/// `tables.ll`: squares plus CRC-32 of `le64(i) ++ "crc-data"`.
pub fn expected_tables(n: i64) -> i64 {
    let mut acc = 0i64;
    let mut buf = [0u8; 16];
    buf[8..].copy_from_slice(b"crc-data");
    for i in 0..n.max(1) {
        buf[..8].copy_from_slice(&i.to_le_bytes());
        acc = acc
            .wrapping_add(SQUARES[(i as i32 & 63) as usize] as i64)
            .wrapping_add(crc32(0, &buf) as i64);
    }
    acc
}

fn chain_c(x: i32) -> i32 {
    let mut h = x as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x7feb352d);
    h ^= h >> 15;
    h = h.wrapping_mul(0x846ca68b);
    h ^= h >> 16;
    if h & 1 != 0 {
        h = h.wrapping_add(0x9e3779b9);
    } else {
        h ^= 0x85ebca6b;
    }
    h = h.rotate_left(5);
    let (lo, hi) = (h & 0xffff, h >> 16);
    h = lo.wrapping_mul(0x45d9f3b) ^ hi.wrapping_mul(0x119de1f3);
    h ^= (h >> 7) ^ (h << 9);
    h = (h % 0x7fffffed).wrapping_add(lo ^ hi);
    (h & 0x7fffffff) as i32
}

fn chain_b(x: i32) -> i32 {
    let v = x as u32;
    let mut s = 0x811c9dc5u32;
    s = (s ^ (v & 0xff)).wrapping_mul(0x01000193);
    s = (s ^ ((v >> 8) & 0xff)).wrapping_mul(0x01000193);
    s = (s ^ ((v >> 16) & 0xff)).wrapping_mul(0x01000193);
    s = (s ^ (v >> 24)).wrapping_mul(0x01000193);
    if s % 3 == 0 {
        s = s.rotate_left(7);
    } else if s % 3 == 1 {
        s ^= s >> 11;
    } else {
        s = s.wrapping_add(v.wrapping_mul(0x2545f491));
    }
    let c = chain_c((s ^ v) as i32);
    let mut r = (c as u32) ^ (s >> 3);
    r = r.wrapping_mul(0x9e3779b1).wrapping_add(0x7f4a7c15);
    (r & 0x7fffffff) as i32
}

fn chain_a(x: i32) -> i32 {
    let mut v = x as u32;
    v = (v ^ 0x5bd1e995).wrapping_mul(0x01000193);
    v ^= v >> 13;
    v = v.rotate_left(3);
    if (v as i32) < 0 {
        v = !v;
    } else {
        v = v.wrapping_add(0x2127599b);
    }
    let w = (v & 0xffff).wrapping_mul(0x27d4eb2d).wrapping_add(v >> 16);
    let r = chain_b((w >> 1) as i32);
    ((r as u32 ^ w).wrapping_add(v & 0xff)) as i32
}

fn always_inline_mix(x: i64) -> i64 {
    let s = x as u64;
    let mut l: [u64; 16] = [
        s ^ 0x0123456789abcdef,
        s.wrapping_add(0x1111111111111111),
        s ^ 0x2222222222222222,
        s.wrapping_add(0x3333333333333333),
        s ^ 0x4444444444444444,
        s.wrapping_add(0x5555555555555555),
        s ^ 0x6666666666666666,
        s.wrapping_add(0x7777777777777777),
        s ^ 0x8888888888888888,
        s.wrapping_add(0x9999999999999999),
        s ^ 0xaaaaaaaaaaaaaaaa,
        s.wrapping_add(0xbbbbbbbbbbbbbbbb),
        s ^ 0xcccccccccccccccc,
        s.wrapping_add(0xdddddddddddddddd),
        s ^ 0xeeeeeeeeeeeeeeee,
        s.wrapping_add(0xfedcba9876543210),
    ];
    const M: [u64; 16] = [
        0x9e3779b97f4a7c15,
        0xbf58476d1ce4e5b9,
        0x94d049bb133111eb,
        0xff51afd7ed558ccd,
        0xc4ceb9fe1a85ec53,
        0x87c37b91114253d5,
        0x4cf5ad432745937f,
        0x52dce729da3ed5b1,
        0x38495ab5u64.wrapping_mul(0x100000001),
        0x2545f4914f6cdd1d,
        0x9fb21c651e98df25,
        0xd6e8feb86659fd93,
        0xa0761d6478bd642f,
        0xe7037ed1a0b428db,
        0x8ebc6af09c88c6e3,
        0x589965cc75374cc3,
    ];
    // MIX(l[j], l[j+1], l[j+5], r[j % 4], M[j]) for j in 0..16, indices mod 16, in order.
    for r in [
        [7u32, 13, 29, 41],
        [11, 23, 37, 53],
        [5, 17, 31, 47],
        [19, 27, 43, 59],
    ] {
        for j in 0..16 {
            let (b, c) = (l[(j + 1) % 16], l[(j + 5) % 16]);
            l[j] = (l[j] ^ b)
                .rotate_left(r[j % 4])
                .wrapping_mul(M[j])
                .wrapping_add(c);
        }
    }
    let r = (l[0] ^ l[1] ^ l[2] ^ l[3])
        .wrapping_add(l[4] ^ l[5] ^ l[6] ^ l[7])
        .wrapping_add(l[8] ^ l[9] ^ l[10] ^ l[11])
        .wrapping_add(l[12] ^ l[13] ^ l[14] ^ l[15]);
    r as i64
}

fn fib(n: i32) -> i64 {
    if n < 2 {
        n as i64
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

/// `mix.ll`: see the script for the list of helpers.
pub fn expected_mix(n: i64) -> i64 {
    let mut acc = 0i64;
    for i in 0..n.max(1) {
        let x = i as i32;
        let m7 = x & 7;
        let a = x.wrapping_add(-500).clamp(-1000, 1000) as i64;
        let b = x.wrapping_add(3) as i64;
        let c = x.wrapping_add(x) as i64;
        let d = chain_a(x) as i64;
        let e = always_inline_mix(i);
        let f = if m7 == 0 { i32::MIN } else { x / m7 } as i64;
        let g = x.wrapping_add(m7).wrapping_add(7) as i64;
        let h = fib(m7 + 5);
        let w = (x as u32).wrapping_mul(2).wrapping_add(1) as i32 as i64;
        let dispatch = 8i64;
        let diff = x as f64 * 2.5 - x as f64;
        let cmp = (diff > x as f64) as i64 - ((diff < x as f64) as i64);
        let di = diff as i64;
        let t = (a.wrapping_add(b).wrapping_add(c).wrapping_add(d) ^ e)
            .wrapping_add(f)
            .wrapping_add(g)
            .wrapping_add(h)
            .wrapping_add(w)
            .wrapping_add(dispatch)
            .wrapping_add(cmp)
            .wrapping_add(di);
        acc = acc.wrapping_add(t);
    }
    acc
}

/// A synthetic library of `functions` functions (`crate::synth`) with two scripts calling 3 and 10 of its
/// external functions. Their results are checked against the `none` strategy's.
pub fn synthetic_workload(functions: usize, seed: u64, scale: f64) -> Workload {
    let iterations = ((20_000.0 * scale) as i64).max(1);
    let scripts = [3usize, 10]
        .iter()
        .map(|&k| Script {
            name: format!("synth-call{k}"),
            ir: format!(
                "{}{SYNTH_DRIVER}",
                crate::synth::generate_script(functions, k, seed + k as u64)
            ),
            iterations,
            entry: ENTRY.into(),
            args: vec![iterations],
            expected: None,
            call_heavy: false,
        })
        .collect();
    Workload {
        library: synthetic_name(functions),
        source: LibrarySource::Synthetic { functions, seed },
        scripts,
    }
}

/// `synth-1k`, `synth-10k`, `synth-100k`, or `synth-<n>`.
pub fn synthetic_name(functions: usize) -> String {
    if functions >= 1000 && functions % 1000 == 0 {
        format!("synth-{}k", functions / 1000)
    } else {
        format!("synth-{functions}")
    }
}

/// Parses a [`synthetic_name`].
pub fn parse_synthetic_name(name: &str) -> Option<usize> {
    let n = name.strip_prefix("synth-")?;
    match n.strip_suffix('k') {
        Some(k) => k.parse::<usize>().ok().map(|k| k * 1000),
        None => n.parse().ok(),
    }
}

/// The benchmark driver appended to a synthetic script: sums `script_main(i)` over `0..n`.
const SYNTH_DRIVER: &str = r#"
define i64 @bench_main(i64 %n) {
entry:
  br label %loop

loop:
  %i = phi i64 [ 0, %entry ], [ %i.next, %loop ]
  %acc = phi i64 [ 0, %entry ], [ %acc.next, %loop ]
  %v = call i64 @script_main(i64 %i)
  %acc.next = add i64 %acc, %v
  %i.next = add i64 %i, 1
  %more = icmp ult i64 %i.next, %n
  br i1 %more, label %loop, label %exit

exit:
  ret i64 %acc.next
}
"#;
