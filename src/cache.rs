//! A cache of compiled scripts: object code keyed by everything that decides it.
//!
//! In: a [`CacheKey`] (a SHA-256 over the script's IR, the summary's identity, the import configuration, the
//! optimization level and the target) and object bytes. Out: the same bytes on a later lookup, from memory or
//! from a directory shared by several processes.
//!
//! The on-disk cache is safe under concurrent processes: an entry is written to a temporary file in the cache
//! directory and renamed into place, so readers see either no entry or a whole one. Each entry carries a
//! checksum of its payload; an entry that is truncated, damaged or of another format is a miss and is removed.
//! The directory is bounded in size: after a store, least recently used entries (by modification time, which a
//! hit refreshes) are evicted until the total is under the bound.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

const ENTRY_MAGIC: &[u8; 8] = b"TJOBJ\x00\x00\x01";
const ENTRY_EXT: &str = "tjo";

/// Identity of a compiled script: a SHA-256 over length-prefixed parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// Hashes `parts` in order; each part is length-prefixed so `["ab", "c"]` and `["a", "bc"]` differ.
    pub fn new<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut h = Sha256::new();
        for part in parts {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        CacheKey(h.finalize().into())
    }

    /// Lower-case hex, used as the file name on disk.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Where a lookup was answered from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Found in the in-memory cache.
    MemoryHit,
    /// Found on disk (and now also in memory).
    DiskHit,
    /// Not found (or found damaged, which counts as not found).
    Miss,
}

impl CacheOutcome {
    /// `true` for either kind of hit.
    pub fn is_hit(self) -> bool {
        !matches!(self, CacheOutcome::Miss)
    }
}

/// Counters since the cache was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub memory_hits: u64,
    pub disk_hits: u64,
    pub misses: u64,
    /// Disk entries found damaged and removed.
    pub corrupt_entries: u64,
    /// Disk entries evicted to stay under the size bound.
    pub evictions: u64,
}

struct Memory {
    entries: HashMap<CacheKey, std::sync::Arc<[u8]>>,
    order: VecDeque<CacheKey>,
    bytes: u64,
}

/// An in-memory LRU cache of object code, optionally backed by a directory.
pub struct ScriptCache {
    memory: Mutex<Memory>,
    memory_limit: u64,
    dir: Option<PathBuf>,
    disk_limit: u64,
    stats: Mutex<CacheStats>,
}

impl std::fmt::Debug for ScriptCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptCache")
            .field("dir", &self.dir)
            .field("memory_limit", &self.memory_limit)
            .field("disk_limit", &self.disk_limit)
            .finish_non_exhaustive()
    }
}

impl ScriptCache {
    /// A memory-only cache holding at most `memory_limit` bytes of object code.
    pub fn in_memory(memory_limit: u64) -> Self {
        ScriptCache {
            memory: Mutex::new(Memory {
                entries: HashMap::new(),
                order: VecDeque::new(),
                bytes: 0,
            }),
            memory_limit,
            dir: None,
            disk_limit: 0,
            stats: Mutex::new(CacheStats::default()),
        }
    }

    /// A cache backed by `dir` (created if missing), bounded to `disk_limit` bytes on disk.
    pub fn on_disk(
        dir: impl Into<PathBuf>,
        memory_limit: u64,
        disk_limit: u64,
    ) -> crate::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| crate::Error::io(&dir, e))?;
        let mut cache = Self::in_memory(memory_limit);
        cache.dir = Some(dir);
        cache.disk_limit = disk_limit;
        Ok(cache)
    }

    /// The backing directory, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Counters so far.
    pub fn stats(&self) -> CacheStats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }

    fn bump(&self, f: impl FnOnce(&mut CacheStats)) {
        if let Ok(mut s) = self.stats.lock() {
            f(&mut s);
        }
    }

    fn entry_path(&self, key: &CacheKey) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{}.{ENTRY_EXT}", key.hex())))
    }

    /// Looks `key` up in memory, then on disk. A damaged disk entry is removed and reported as a miss.
    pub fn get(&self, key: &CacheKey) -> (Option<std::sync::Arc<[u8]>>, CacheOutcome) {
        if let Ok(mut mem) = self.memory.lock() {
            if let Some(bytes) = mem.entries.get(key).cloned() {
                mem.order.retain(|k| k != key);
                mem.order.push_back(*key);
                drop(mem);
                self.bump(|s| s.memory_hits += 1);
                return (Some(bytes), CacheOutcome::MemoryHit);
            }
        }
        if let Some(path) = self.entry_path(key) {
            if let Ok(raw) = fs::read(&path) {
                match decode_entry(&raw) {
                    Some(payload) => {
                        let _ = fs::File::options()
                            .append(true)
                            .open(&path)
                            .and_then(|f| f.set_modified(SystemTime::now()));
                        let bytes: std::sync::Arc<[u8]> = payload.into();
                        self.remember(*key, bytes.clone());
                        self.bump(|s| s.disk_hits += 1);
                        return (Some(bytes), CacheOutcome::DiskHit);
                    }
                    None => {
                        let _ = fs::remove_file(&path);
                        self.bump(|s| s.corrupt_entries += 1);
                    }
                }
            }
        }
        self.bump(|s| s.misses += 1);
        (None, CacheOutcome::Miss)
    }

    /// Stores `bytes` under `key` in memory and, if backed by a directory, on disk (atomically), then evicts
    /// least recently used disk entries beyond the bound. Disk failures are returned; the memory copy stays.
    pub fn put(&self, key: CacheKey, bytes: &[u8]) -> crate::Result<()> {
        self.remember(key, bytes.into());
        let (Some(dir), Some(path)) = (self.dir.as_ref(), self.entry_path(&key)) else {
            return Ok(());
        };
        crate::atomic_file::write_atomically(&path, &encode_entry(bytes))
            .map_err(|e| crate::Error::io(&path, e))?;
        self.evict_disk(dir);
        Ok(())
    }

    fn remember(&self, key: CacheKey, bytes: std::sync::Arc<[u8]>) {
        let Ok(mut mem) = self.memory.lock() else {
            return;
        };
        if bytes.len() as u64 > self.memory_limit {
            return;
        }
        if let Some(old) = mem.entries.insert(key, bytes.clone()) {
            mem.bytes -= old.len() as u64;
            mem.order.retain(|k| *k != key);
        }
        mem.bytes += bytes.len() as u64;
        mem.order.push_back(key);
        while mem.bytes > self.memory_limit {
            let Some(oldest) = mem.order.pop_front() else {
                break;
            };
            if let Some(old) = mem.entries.remove(&oldest) {
                mem.bytes -= old.len() as u64;
            }
        }
    }

    fn evict_disk(&self, dir: &Path) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        let mut entries: Vec<(SystemTime, u64, PathBuf)> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == ENTRY_EXT))
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((meta.modified().ok()?, meta.len(), e.path()))
            })
            .collect();
        let mut total: u64 = entries.iter().map(|e| e.1).sum();
        if total <= self.disk_limit {
            return;
        }
        entries.sort();
        for (_, len, path) in entries {
            if total <= self.disk_limit {
                break;
            }
            // Another process may have removed it already; either way it no longer counts.
            let _ = fs::remove_file(&path);
            total = total.saturating_sub(len);
            self.bump(|s| s.evictions += 1);
        }
    }
}

/// One entry file of a cache directory ([`ScriptCache::disk_entries`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskEntry {
    pub path: PathBuf,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// Whether the entry is whole: magic, length and checksum agree.
    pub valid: bool,
}

impl ScriptCache {
    /// Every entry file in the backing directory (sorted by path) and whether it is whole. Empty without a
    /// directory.
    pub fn disk_entries(&self) -> Vec<DiskEntry> {
        let Some(Ok(rd)) = self.dir.as_ref().map(fs::read_dir) else {
            return Vec::new();
        };
        let mut out: Vec<DiskEntry> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == ENTRY_EXT))
            .map(|path| {
                let raw = fs::read(&path).unwrap_or_default();
                DiskEntry {
                    bytes: raw.len() as u64,
                    valid: decode_entry(&raw).is_some(),
                    path,
                }
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }
}

/// `magic | payload length (u64 LE) | SHA-256(payload) | payload`.
fn encode_entry(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 8 + 32 + payload.len());
    out.extend_from_slice(ENTRY_MAGIC);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(payload));
    out.extend_from_slice(payload);
    out
}

fn decode_entry(raw: &[u8]) -> Option<Vec<u8>> {
    let rest = raw.strip_prefix(ENTRY_MAGIC.as_slice())?;
    let (len, rest) = rest.split_first_chunk::<8>()?;
    let (sum, payload) = rest.split_first_chunk::<32>()?;
    if u64::from_le_bytes(*len) != payload.len() as u64 || Sha256::digest(payload).as_slice() != sum
    {
        return None;
    }
    Some(payload.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> CacheKey {
        CacheKey::new([s.as_bytes()])
    }

    #[test]
    fn keys_are_length_prefixed() {
        assert_ne!(
            CacheKey::new([b"ab".as_slice(), b"c"]),
            CacheKey::new([b"a".as_slice(), b"bc"])
        );
        assert_eq!(key("x"), key("x"));
        assert_eq!(key("x").hex().len(), 64);
    }

    #[test]
    fn memory_cache_hits_and_evicts_least_recently_used() {
        let cache = ScriptCache::in_memory(10);
        cache.put(key("a"), b"aaaa").unwrap();
        cache.put(key("b"), b"bbbb").unwrap();
        assert_eq!(cache.get(&key("a")).1, CacheOutcome::MemoryHit); // a is now most recent
        cache.put(key("c"), b"cccc").unwrap(); // 12 bytes > 10: evicts b
        assert_eq!(cache.get(&key("b")).1, CacheOutcome::Miss);
        assert_eq!(&*cache.get(&key("a")).0.unwrap(), b"aaaa");
        assert_eq!(&*cache.get(&key("c")).0.unwrap(), b"cccc");
        let s = cache.stats();
        assert_eq!((s.memory_hits, s.misses), (3, 1));
    }

    #[test]
    fn disk_cache_survives_a_new_instance_and_rejects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let first = ScriptCache::on_disk(dir.path(), 1 << 20, 1 << 20).unwrap();
        first.put(key("obj"), b"object bytes").unwrap();
        drop(first);

        let second = ScriptCache::on_disk(dir.path(), 1 << 20, 1 << 20).unwrap();
        let (bytes, outcome) = second.get(&key("obj"));
        assert_eq!(outcome, CacheOutcome::DiskHit);
        assert_eq!(&*bytes.unwrap(), b"object bytes");

        // Damage the entry on disk: a fresh instance sees a miss, removes it, and can store it again.
        let path = dir.path().join(format!("{}.tjo", key("obj").hex()));
        let mut raw = fs::read(&path).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 0xff;
        fs::write(&path, &raw).unwrap();
        let third = ScriptCache::on_disk(dir.path(), 1 << 20, 1 << 20).unwrap();
        assert_eq!(third.get(&key("obj")).1, CacheOutcome::Miss);
        assert_eq!(third.stats().corrupt_entries, 1);
        assert!(!path.exists());
        third.put(key("obj"), b"object bytes").unwrap();
        assert_eq!(
            decode_entry(&fs::read(&path).unwrap()).unwrap(),
            b"object bytes"
        );

        // Truncated entries are misses too.
        fs::write(&path, &raw[..10]).unwrap();
        let fourth = ScriptCache::on_disk(dir.path(), 1 << 20, 1 << 20).unwrap();
        assert_eq!(fourth.get(&key("obj")).1, CacheOutcome::Miss);
    }

    #[test]
    fn disk_cache_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let entry = encode_entry(&[0u8; 100]).len() as u64;
        let cache = ScriptCache::on_disk(dir.path(), 0, entry * 3).unwrap();
        for i in 0..10 {
            cache.put(key(&i.to_string()), &[i as u8; 100]).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let files: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .collect();
        assert_eq!(files.len(), 3, "bounded to three entries");
        assert_eq!(cache.stats().evictions, 7);
        // The three most recent survive.
        for i in 7..10 {
            assert!(cache.get(&key(&i.to_string())).1.is_hit());
        }
    }

    #[test]
    fn concurrent_writers_leave_whole_entries() {
        let dir = tempfile::tempdir().unwrap();
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::thread::scope(|s| {
            for _ in 0..4 {
                let dir = dir.path();
                let payload = &payload;
                s.spawn(move || {
                    let cache = ScriptCache::on_disk(dir, 0, u64::MAX).unwrap();
                    for i in 0..20 {
                        cache.put(key(&format!("k{}", i % 5)), payload).unwrap();
                    }
                });
            }
        });
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(names.len(), 5, "no temporary files left behind: {names:?}");
        for p in names {
            assert_eq!(decode_entry(&fs::read(p).unwrap()).unwrap(), payload);
        }
    }
}
