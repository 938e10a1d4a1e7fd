//! `file://` mirrors: a local folder no path may escape, not by `..` and not by symlinks.

use std::fs::{self, File, Metadata};
use std::io;
use std::ops::Range;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{OriginError, OriginResult};
use crate::origin::{FileMeta, Listing, Origin};
use crate::relpath::RelPath;

/// A folder of the local file system. Every path is resolved (symlinks included) and must end
/// up inside the folder, else it does not exist as far as clients can tell.
#[derive(Clone)]
pub struct FileOrigin {
    root: Arc<Path>,
}

impl FileOrigin {
    /// The tree under folder `root`, which must exist.
    pub fn new(root: impl AsRef<Path>) -> OriginResult<Self> {
        let root = root.as_ref();
        let canonical = fs::canonicalize(root).map_err(|e| {
            OriginError::config(format!("folder {} cannot be used: {e}", root.display()))
        })?;
        if !canonical.is_dir() {
            return Err(OriginError::config(format!(
                "{} is not a folder",
                root.display()
            )));
        }
        Ok(Self {
            root: canonical.into(),
        })
    }

    /// The folder's canonical path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How messages name `path`: inside the mirror, never as a path of the server's disk.
    fn what(&self, path: &RelPath) -> String {
        format!("/{path}")
    }

    /// The real location of `path`, symlinks resolved, checked to be inside the root.
    fn resolve(&self, path: &RelPath) -> OriginResult<PathBuf> {
        let mut joined = self.root.to_path_buf();
        joined.extend(path.segments());
        let real = fs::canonicalize(&joined).map_err(|e| io_error(&self.what(path), &e))?;
        if real.starts_with(&self.root) {
            Ok(real)
        } else {
            Err(OriginError::OutsideMirror {
                path: path.to_string(),
                reason: "a symlink pointing outside the mirror",
            })
        }
    }

    fn list_blocking(&self, dir: &RelPath) -> OriginResult<Listing> {
        let what = self.what(dir);
        let real = self.resolve(dir)?;
        let entries = fs::read_dir(&real).map_err(|e| io_error(&what, &e))?;
        let mut listing = Listing::default();
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&what, &e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue; // not representable in a URL path as text
            };
            // Hidden files stay hidden, as in nginx's autoindex.
            if name.starts_with('.') {
                continue;
            }
            let Ok(child) = dir.join(&name) else {
                continue;
            };
            // Resolving through `resolve` drops symlinks that leave the mirror.
            let Ok(meta) = self
                .resolve(&child)
                .and_then(|p| fs::metadata(&p).map_err(|e| io_error(&self.what(&child), &e)))
            else {
                continue;
            };
            if meta.is_dir() {
                listing.directories.push(name);
            } else if meta.is_file() {
                listing.files.push(name);
            }
        }
        Ok(listing.normalised())
    }

    fn stat_blocking(&self, path: &RelPath) -> OriginResult<FileMeta> {
        let what = self.what(path);
        let meta = fs::metadata(self.resolve(path)?).map_err(|e| io_error(&what, &e))?;
        if !meta.is_file() {
            return Err(OriginError::not_found(what));
        }
        Ok(file_meta(&meta))
    }

    fn read_blocking(
        &self,
        path: &RelPath,
        pinned: &FileMeta,
        range: Range<u64>,
    ) -> OriginResult<Bytes> {
        let what = self.what(path);
        let file = File::open(self.resolve(path)?).map_err(|e| io_error(&what, &e))?;
        let check_version = |file: &File| -> OriginResult<()> {
            let now = file_meta(&file.metadata().map_err(|e| io_error(&what, &e))?);
            if now.size == pinned.size && now.last_modified == pinned.last_modified {
                Ok(())
            } else {
                Err(OriginError::changed(
                    &what,
                    format!("{} became {}", pinned.validator(), now.validator()),
                ))
            }
        };
        check_version(&file)?;
        let len = usize::try_from(range.end - range.start)
            .map_err(|_| OriginError::bad_response(&what, "range too large for memory"))?;
        let mut buf = vec![0; len];
        file.read_exact_at(&mut buf, range.start).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                OriginError::changed(&what, "file shrank")
            } else {
                io_error(&what, &e)
            }
        })?;
        // A write during the read moves the mtime: never hand out a mix of two versions.
        check_version(&file)?;
        Ok(Bytes::from(buf))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        what: String,
        work: impl FnOnce(Self) -> OriginResult<T> + Send + 'static,
    ) -> OriginResult<T> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || work(this))
            .await
            .map_err(|e| OriginError::unavailable(what, format!("I/O task failed: {e}")))?
    }
}

fn file_meta(meta: &Metadata) -> FileMeta {
    let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
    FileMeta {
        size: meta.len(),
        etag: None,
        last_modified: Some(format!("{mtime_ns}ns")),
        from_overlay: false,
    }
}

fn io_error(what: &str, error: &io::Error) -> OriginError {
    match error.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => OriginError::not_found(what),
        _ => OriginError::unavailable(what, error.to_string()),
    }
}

#[async_trait]
impl Origin for FileOrigin {
    fn describe(&self) -> String {
        format!("file://{}/", self.root.display())
    }

    async fn list(&self, dir: &RelPath) -> OriginResult<Listing> {
        let dir = dir.clone();
        self.blocking(self.what(&dir), move |this| this.list_blocking(&dir))
            .await
    }

    async fn stat(&self, path: &RelPath) -> OriginResult<FileMeta> {
        let path = path.clone();
        self.blocking(self.what(&path), move |this| this.stat_blocking(&path))
            .await
    }

    async fn read(
        &self,
        path: &RelPath,
        pinned: &FileMeta,
        range: Range<u64>,
    ) -> OriginResult<Bytes> {
        let (path, pinned) = (path.clone(), pinned.clone());
        self.blocking(self.what(&path), move |this| {
            this.read_blocking(&path, &pinned, range)
        })
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed set-up should fail the test loudly
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> (tempfile::TempDir, tempfile::TempDir, FileOrigin) {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("sub dir")).unwrap();
        fs::write(root.path().join("sub dir/ü & b.mov"), b"0123456789").unwrap();
        fs::write(root.path().join(".hidden"), b"x").unwrap();
        fs::write(outside.path().join("secret.mov"), b"secret").unwrap();
        symlink(
            outside.path().join("secret.mov"),
            root.path().join("escape.mov"),
        )
        .unwrap();
        symlink(outside.path(), root.path().join("escape dir")).unwrap();
        symlink("sub dir/ü & b.mov", root.path().join("inside.mov")).unwrap();
        let origin = FileOrigin::new(root.path()).unwrap();
        (root, outside, origin)
    }

    #[tokio::test]
    async fn lists_without_hidden_files_or_escaping_links() {
        let (_root, _outside, origin) = tree();
        let listing = origin.list(&RelPath::root()).await.unwrap();
        assert_eq!(listing.files, ["inside.mov"]);
        assert_eq!(listing.directories, ["sub dir"]);
        let sub = origin
            .list(&RelPath::parse("sub dir").unwrap())
            .await
            .unwrap();
        assert_eq!(sub.files, ["ü & b.mov"]);
    }

    #[tokio::test]
    async fn symlinks_out_of_the_root_are_refused() {
        let (_root, _outside, origin) = tree();
        for path in ["escape.mov", "escape dir/secret.mov"] {
            let err = origin
                .stat(&RelPath::parse(path).unwrap())
                .await
                .unwrap_err();
            assert!(
                matches!(err, OriginError::OutsideMirror { .. }),
                "{path}: {err}"
            );
        }
        let err = origin
            .list(&RelPath::parse("escape dir").unwrap())
            .await
            .unwrap_err();
        assert!(err.is_not_found());
        let inside = origin
            .stat(&RelPath::parse("inside.mov").unwrap())
            .await
            .unwrap();
        assert_eq!(inside.size, 10);
    }

    #[tokio::test]
    async fn reads_pinned_ranges_and_notices_changes() {
        let (root, _outside, origin) = tree();
        let path = RelPath::parse("sub dir/ü & b.mov").unwrap();
        let meta = origin.stat(&path).await.unwrap();
        assert_eq!(meta.size, 10);
        assert_eq!(&origin.read(&path, &meta, 2..5).await.unwrap()[..], b"234");
        fs::write(root.path().join("sub dir/ü & b.mov"), b"01234567890").unwrap();
        let err = origin.read(&path, &meta, 2..5).await.unwrap_err();
        assert!(err.is_changed(), "{err}");
        assert!(
            origin
                .stat(&RelPath::parse("sub dir").unwrap())
                .await
                .unwrap_err()
                .is_not_found()
        );
        assert!(
            origin
                .stat(&RelPath::parse("nope.mov").unwrap())
                .await
                .unwrap_err()
                .is_not_found()
        );
    }
}
