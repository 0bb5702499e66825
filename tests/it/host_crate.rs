//! The example host crate (examples/host-crate): its own C runtime built by `thinjit-build` in build.rs, its own
//! host callback, scripts kept in its own struct. Built and run here, with its build outputs inspected.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The package name in a cargo package id (`path+file:///x/y#name@0.1.0`, or `path+file:///x/name#0.1.0`).
fn package_name(id: &str) -> String {
    let (path, tail) = id.rsplit_once('#').unwrap_or((id, ""));
    match tail.split_once('@') {
        Some((name, _)) => name.to_owned(),
        None => path.rsplit('/').next().unwrap_or("").to_owned(),
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn example_host_crate_builds_its_own_runtime_only_and_runs() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(repo_root())
        .args([
            "build",
            "-p",
            "thinjit-example-host-crate",
            "--message-format=json-render-diagnostics",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut out_dirs = std::collections::BTreeMap::new();
    let mut executable = None;
    for line in stdout.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let name = package_name(msg["package_id"].as_str().unwrap_or(""));
        match msg["reason"].as_str() {
            Some("build-script-executed") => {
                out_dirs.insert(name, PathBuf::from(msg["out_dir"].as_str().unwrap()));
            }
            Some("compiler-artifact") if name == "thinjit-example-host-crate" => {
                if let Some(exe) = msg["executable"].as_str() {
                    executable = Some(PathBuf::from(exe));
                }
            }
            _ => {}
        }
    }

    // The library's build script compiled its C++ shim and nothing else: no helper bitcode, shared library or
    // summary, and nothing named after a bundled helper source.
    let thinjit_out = out_dirs.get("thinjit").expect("thinjit's build script ran");
    let helper_stems: Vec<String> = std::fs::read_dir(repo_root().join("helpers"))
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            p.extension()
                .is_some_and(|x| x == "c" || x == "cpp")
                .then(|| p.file_stem().unwrap().to_string_lossy().into_owned())
        })
        .collect();
    assert!(!helper_stems.is_empty());
    let thinjit_files = files_under(thinjit_out);
    println!("thinjit OUT_DIR: {thinjit_files:#?}");
    for f in &thinjit_files {
        let ext = f
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default();
        assert!(
            !["bc", "so", "thinjit", "ll"].contains(&ext.as_str()),
            "downstream build made {}",
            f.display()
        );
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(
            !helper_stems.iter().any(|s| name.contains(s.as_str())),
            "downstream build compiled a bundled helper: {}",
            f.display()
        );
    }

    // The host crate's OUT_DIR: its summary, and bitcode of its own three sources only.
    let host_out = out_dirs
        .get("thinjit-example-host-crate")
        .expect("the host crate's build script ran");
    let host_files = files_under(host_out);
    println!("host crate OUT_DIR: {host_files:#?}");
    assert!(host_out.join("hostrt.thinjit").is_file());
    let bitcode: Vec<String> = host_files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "bc"))
        .map(|f| f.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(bitcode, ["000-counter", "001-scale", "002-label"]);

    // Rebuild triggers: every source and every header clang read (from its dependency files), and the path.
    let output = std::fs::read_to_string(host_out.parent().unwrap().join("output")).unwrap();
    for dep in [
        "csrc/counter.c",
        "csrc/scale.c",
        "csrc/label.c",
        "include/hostrt.h",
        "include/hostrt_internal.h",
    ] {
        assert!(
            output
                .lines()
                .any(|l| l.starts_with("cargo:rerun-if-changed=") && l.ends_with(dep)),
            "no rerun-if-changed for {dep} in:\n{output}"
        );
    }
    assert!(
        output.contains("cargo:rustc-env=THINJIT_SUMMARY_hostrt="),
        "{output}"
    );

    let exe = executable.expect("the host crate's executable");
    let run = Command::new(&exe).output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("script0 helper calls left after O3: []"),
        "{stdout}"
    );
    assert!(
        stdout.contains("script1 helper calls left after O3: []"),
        "{stdout}"
    );
    assert!(
        stdout.contains("host: counter via hostrt_counter_get 35, via &hostrt_counter 35"),
        "{stdout}"
    );
    assert!(
        stdout.contains("one counter instance across two scripts and the host: ok"),
        "{stdout}"
    );
}
