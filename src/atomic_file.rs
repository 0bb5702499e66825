//! Writing a file atomically, the one way thinjit does it (summaries, cache entries).
//!
//! In: a path and its new bytes. Out: the file replaced as a whole: a temporary file in the same directory
//! (`.<name>.tmp-<pid>-<n>`, unique per process and call), written and fsynced, renamed over the path, then the
//! directory fsynced so the rename itself is durable. Readers see the old file or the new one, never a mix; a
//! failed write removes its temporary file and leaves the path as it was.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The prefix of `path`'s temporary files (for clean-up of those a killed writer left behind).
pub(crate) fn temporary_prefix(path: &Path) -> String {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    format!(".{file_name}.tmp-")
}

/// The directory `path` lives in (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Replaces `path` with `bytes` atomically and durably (see the module documentation).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let dir = parent_dir(path);
    let tmp = dir.join(format!(
        "{}{}-{}",
        temporary_prefix(path),
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // Make the rename itself durable; a file system that cannot sync a directory still renamed atomically.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two, longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two, longer");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["f.bin"]);
        // A directory that does not exist: an error, nothing left behind.
        assert!(write_atomically(&dir.path().join("no/such/f"), b"x").is_err());
    }
}
