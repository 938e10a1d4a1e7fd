//! Where the disk tier keeps its files, and the blocking file operations on them: the start-up
//! scan, atomic writes (temp file, fsync, rename) and reads.
//!
//! `DIR/entries/ab/<64 hex digits>.lce` holds the entry whose key digest starts with `ab`;
//! `DIR/tmp/` holds writes in progress and is emptied at start-up. Nothing else in `DIR` is
//! touched, so pointing the tier at a directory with other content is harmless.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use crate::envelope;
use crate::error::TierError;
use crate::key::KeyDigest;
use crate::value::CachedValue;

const ENTRY_EXTENSION: &str = "lce";

/// The file layout under one cache directory.
pub(super) struct Layout {
    root: PathBuf,
    entries: PathBuf,
    tmp: PathBuf,
    temp_counter: AtomicU64,
}

/// An entry found by the start-up scan.
pub(super) struct FoundEntry {
    pub digest: KeyDigest,
    pub size: u64,
    pub modified: SystemTime,
}

impl Layout {
    pub(super) fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            entries: root.join("entries"),
            tmp: root.join("tmp"),
            temp_counter: AtomicU64::new(0),
        }
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    pub(super) fn entry_path(&self, digest: &KeyDigest) -> PathBuf {
        let hex = digest.to_hex();
        self.entries
            .join(&hex[..2])
            .join(format!("{hex}.{ENTRY_EXTENSION}"))
    }

    /// Creates the folders, deletes stray temp files, proves the directory is writable, and
    /// returns the entries already there.
    pub(super) fn prepare(&self) -> Result<Vec<FoundEntry>, TierError> {
        for shard in 0..=255u8 {
            let dir = self.entries.join(format!("{shard:02x}"));
            fs::create_dir_all(&dir).map_err(|e| TierError::io("create", &dir, e))?;
        }
        fs::create_dir_all(&self.tmp).map_err(|e| TierError::io("create", &self.tmp, e))?;
        self.delete_stray_temp_files()?;
        self.prove_writable()?;
        self.scan_entries()
    }

    fn delete_stray_temp_files(&self) -> Result<(), TierError> {
        let listing = fs::read_dir(&self.tmp).map_err(|e| TierError::io("list", &self.tmp, e))?;
        for item in listing {
            let item = item.map_err(|e| TierError::io("list", &self.tmp, e))?;
            let path = item.path();
            match fs::remove_file(&path) {
                Ok(()) => tracing::debug!(path = %path.display(), "deleted stray temp file"),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(TierError::io("delete", &path, e)),
            }
        }
        Ok(())
    }

    fn prove_writable(&self) -> Result<(), TierError> {
        let probe = self.temp_path("write-probe");
        let result = File::create(&probe).and_then(|mut file| file.write_all(b"probe"));
        let _ = fs::remove_file(&probe);
        result.map_err(|e| TierError::io("write", &probe, e))
    }

    fn scan_entries(&self) -> Result<Vec<FoundEntry>, TierError> {
        let mut found = Vec::new();
        for shard in 0..=255u8 {
            let dir = self.entries.join(format!("{shard:02x}"));
            let listing = fs::read_dir(&dir).map_err(|e| TierError::io("list", &dir, e))?;
            for item in listing {
                let item = item.map_err(|e| TierError::io("list", &dir, e))?;
                let path = item.path();
                if path.extension().and_then(|e| e.to_str()) != Some(ENTRY_EXTENSION) {
                    continue;
                }
                let digest = path
                    .file_stem()
                    .and_then(|stem| stem.to_str())
                    .and_then(KeyDigest::from_hex)
                    .filter(|digest| self.entry_path(digest) == path);
                let Some(digest) = digest else {
                    tracing::debug!(path = %path.display(), "deleting misnamed cache entry");
                    let _ = fs::remove_file(&path);
                    continue;
                };
                let metadata = match item.metadata() {
                    Ok(metadata) if metadata.is_file() => metadata,
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(TierError::io("stat", &path, e)),
                };
                found.push(FoundEntry {
                    digest,
                    size: metadata.len(),
                    modified: metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                });
            }
        }
        Ok(found)
    }

    /// Writes an entry to a fresh temp file and syncs it; the caller renames it into place.
    pub(super) fn write_temp(
        &self,
        digest: &KeyDigest,
        canonical_key: &str,
        value: &CachedValue,
    ) -> Result<PathBuf, TierError> {
        let temp = self.temp_path(&digest.to_hex());
        let result = recreating_folder(&self.tmp, || {
            let mut file = File::create_new(&temp)?;
            file.write_all(&envelope::encode_header(canonical_key, value))?;
            file.write_all(value.bytes())?;
            file.sync_data()
        });
        match result {
            Ok(()) => Ok(temp),
            Err(e) => {
                let _ = fs::remove_file(&temp);
                Err(TierError::io("write", &temp, e))
            }
        }
    }

    /// Atomically replaces the entry with the finished temp file.
    pub(super) fn publish(&self, temp: &Path, digest: &KeyDigest) -> Result<(), TierError> {
        let target = self.entry_path(digest);
        let shard = target.parent().unwrap_or(&self.entries);
        recreating_folder(shard, || fs::rename(temp, &target)).map_err(|e| {
            let _ = fs::remove_file(temp);
            TierError::io("rename", &target, e)
        })
    }

    /// Deletes an entry's file; a missing file is fine.
    pub(super) fn delete_entry(&self, digest: &KeyDigest) -> Result<(), TierError> {
        let path = self.entry_path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(TierError::io("delete", &path, e)),
        }
    }

    /// The entry's bytes, or `None` when the file is gone.
    pub(super) fn read_entry(&self, digest: &KeyDigest) -> Result<Option<Vec<u8>>, TierError> {
        let path = self.entry_path(digest);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(TierError::io("read", &path, e)),
        }
    }

    fn temp_path(&self, stem: &str) -> PathBuf {
        let serial = self.temp_counter.fetch_add(1, Ordering::Relaxed);
        self.tmp
            .join(format!("{stem}.{}.{serial}.tmp", std::process::id()))
    }
}

/// Runs `operation`; if it fails because `folder` is gone (someone emptied the cache directory
/// while the server ran), recreates the folder and tries once more.
fn recreating_folder(
    folder: &Path,
    mut operation: impl FnMut() -> io::Result<()>,
) -> io::Result<()> {
    match operation() {
        Err(e) if e.kind() == io::ErrorKind::NotFound && !folder.is_dir() => {
            fs::create_dir_all(folder)?;
            operation()
        }
        result => result,
    }
}
