//! The file overlay (SPEC §2 `--file-overlay`): local copies that take precedence over the
//! mirror's files, found by the same relative path or, flattened, by base name alone.

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use url::Url;

use crate::error::OriginResult;
use crate::file::FileOrigin;
use crate::origin::{FileMeta, Listing, Origin};
use crate::relpath::RelPath;

/// A mirror whose files are first looked for in a local folder.
pub struct OverlayOrigin {
    overlay: FileOrigin,
    flatten: bool,
    mirror: Arc<dyn Origin>,
}

impl OverlayOrigin {
    /// `mirror` with the folder `overlay` on top. With `flatten`, `a/b/c.mov` is looked for as
    /// `overlay/c.mov`; otherwise as `overlay/a/b/c.mov`.
    pub fn new(overlay: FileOrigin, flatten: bool, mirror: Arc<dyn Origin>) -> Self {
        Self {
            overlay,
            flatten,
            mirror,
        }
    }

    fn overlay_path(&self, path: &RelPath) -> OriginResult<RelPath> {
        match (self.flatten, path.file_name()) {
            (true, Some(name)) => RelPath::root().join(name),
            _ => Ok(path.clone()),
        }
    }
}

#[async_trait]
impl Origin for OverlayOrigin {
    fn describe(&self) -> String {
        self.mirror.describe()
    }

    /// Listings are the mirror's: the overlay replaces files, it does not add any.
    async fn list(&self, dir: &RelPath) -> OriginResult<Listing> {
        self.mirror.list(dir).await
    }

    async fn stat(&self, path: &RelPath) -> OriginResult<FileMeta> {
        if !path.is_root() {
            match self.overlay.stat(&self.overlay_path(path)?).await {
                Ok(meta) => {
                    return Ok(FileMeta {
                        from_overlay: true,
                        ..meta
                    });
                }
                Err(error) if error.is_not_found() => {}
                Err(error) => return Err(error),
            }
        }
        self.mirror.stat(path).await
    }

    async fn read(
        &self,
        path: &RelPath,
        pinned: &FileMeta,
        range: Range<u64>,
    ) -> OriginResult<Bytes> {
        if pinned.from_overlay {
            let local = FileMeta {
                from_overlay: false,
                ..pinned.clone()
            };
            self.overlay
                .read(&self.overlay_path(path)?, &local, range)
                .await
        } else {
            self.mirror.read(path, pinned, range).await
        }
    }

    fn public_url(&self, path: &RelPath) -> Option<Url> {
        self.mirror.public_url(path)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed set-up should fail the test loudly
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::path::Path as ObjectPath;
    use object_store::{ObjectStore, PutPayload};

    use crate::object::ObjectStoreOrigin;

    async fn mirror() -> Arc<dyn Origin> {
        let store = Arc::new(InMemory::new());
        for key in ["d/a.mov", "d/b.mov"] {
            store
                .put(
                    &ObjectPath::parse(key).unwrap(),
                    PutPayload::from_static(b"mirror"),
                )
                .await
                .unwrap();
        }
        Arc::new(ObjectStoreOrigin::new(store, "", "mem:///").unwrap())
    }

    #[tokio::test]
    async fn overlay_files_win_by_path() {
        let local = tempfile::tempdir().unwrap();
        std::fs::create_dir(local.path().join("d")).unwrap();
        std::fs::write(local.path().join("d/a.mov"), b"local copy").unwrap();
        std::fs::write(local.path().join("b.mov"), b"flat copy").unwrap();
        let origin = OverlayOrigin::new(
            FileOrigin::new(local.path()).unwrap(),
            false,
            mirror().await,
        );
        let a = RelPath::parse("d/a.mov").unwrap();
        let meta = origin.stat(&a).await.unwrap();
        assert!(meta.from_overlay && meta.validator().starts_with("overlay;"));
        assert_eq!(
            &origin.read(&a, &meta, 0..10).await.unwrap()[..],
            b"local copy"
        );
        let b = RelPath::parse("d/b.mov").unwrap();
        let meta = origin.stat(&b).await.unwrap();
        assert!(!meta.from_overlay);
        assert_eq!(&origin.read(&b, &meta, 0..6).await.unwrap()[..], b"mirror");
        assert_eq!(
            origin
                .list(&RelPath::parse("d").unwrap())
                .await
                .unwrap()
                .files,
            ["a.mov", "b.mov"]
        );
    }

    #[tokio::test]
    async fn flattened_overlay_matches_by_base_name() {
        let local = tempfile::tempdir().unwrap();
        std::fs::write(local.path().join("b.mov"), b"flat copy").unwrap();
        let origin =
            OverlayOrigin::new(FileOrigin::new(local.path()).unwrap(), true, mirror().await);
        let b = RelPath::parse("d/b.mov").unwrap();
        let meta = origin.stat(&b).await.unwrap();
        assert!(meta.from_overlay);
        assert_eq!(
            &origin.read(&b, &meta, 0..9).await.unwrap()[..],
            b"flat copy"
        );
        let a = RelPath::parse("d/a.mov").unwrap();
        assert!(!origin.stat(&a).await.unwrap().from_overlay);
    }
}
