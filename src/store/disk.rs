//! A directory on disk as a [`Store`].

use super::{Key, Store, StoreError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A directory on disk.
pub struct DiskStore {
    root: PathBuf,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl DiskStore {
    pub fn new(root: impl Into<PathBuf>) -> DiskStore {
        DiskStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Refuse a path that resolves (through symbolic links) outside the root.
    fn check_inside(&self, path: &Path, key: &str) -> Result<(), StoreError> {
        let (Ok(real), Ok(root)) = (path.canonicalize(), self.root.canonicalize()) else {
            return Ok(()); // a missing file is reported by the read itself
        };
        if real.starts_with(root) {
            Ok(())
        } else {
            Err(StoreError::Escapes { path: key.into() })
        }
    }

    /// Refuse to write into `dir` when it, or the nearest part of it that exists, resolves (through symbolic
    /// links) outside the root: a link planted among the derivatives must not send writes elsewhere.
    fn check_write_dir(&self, dir: &Path, key: &str) -> Result<(), StoreError> {
        let Ok(root) = self.root.canonicalize() else {
            return Ok(()); // the root itself is made by the first write
        };
        let mut existing = dir;
        while !existing.exists() {
            match existing.parent() {
                Some(p) => existing = p,
                None => return Ok(()),
            }
        }
        match existing.canonicalize() {
            Ok(real) if real.starts_with(&root) => Ok(()),
            Ok(_) => Err(StoreError::Escapes { path: key.into() }),
            Err(source) => Err(StoreError::Io {
                path: existing.display().to_string(),
                source,
            }),
        }
    }

    /// The file for `key`, refusing keys that would leave the root (see [`Key`]).
    pub fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        let key = Key::parse(key)?;
        Ok(self.root.join(key.as_str()))
    }

    /// The directory for `key`; the empty key is the root.
    fn dir_path(&self, key: &str) -> Result<PathBuf, StoreError> {
        if key.trim_matches('/').is_empty() {
            Ok(self.root.clone())
        } else {
            self.path(key.trim_end_matches('/'))
        }
    }
}

impl Store for DiskStore {
    fn read(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.path(key)?;
        self.check_inside(&path, key)?;
        if path.is_dir() {
            return Err(StoreError::IsDir {
                path: path.display().to_string(),
            });
        }
        std::fs::read(&path).map_err(|source| {
            let path = path.display().to_string();
            if source.kind() == std::io::ErrorKind::NotFound {
                StoreError::NotFound { path }
            } else {
                StoreError::Io { path, source }
            }
        })
    }

    fn write(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let io = |source| StoreError::Io {
            path: path.display().to_string(),
            source,
        };
        let dir = path.parent().unwrap_or(&self.root);
        self.check_write_dir(dir, key)?;
        std::fs::create_dir_all(dir).map_err(io)?;
        // Again once it exists: a link may have been made while the directories were.
        self.check_write_dir(dir, key)?;
        // A temporary name in the same directory, renamed into place: a crash leaves no partial file at `path`.
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let tmp = dir.join(format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = std::fs::File::create(&tmp)
            .and_then(|mut f| f.write_all(bytes))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(io)
    }

    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.path(key)?.is_file())
    }

    fn list(&self, key: &str) -> Result<Option<Vec<String>>, StoreError> {
        let dir = self.dir_path(key)?;
        if !dir.is_dir() {
            return Ok(None);
        }
        self.check_inside(&dir, key)?;
        let mut keys = Vec::new();
        // Links are not followed into directories; a linked file counts only when it resolves inside the root.
        for entry in walkdir::WalkDir::new(&dir)
            .follow_links(false)
            .sort_by_file_name()
        {
            let entry = entry.map_err(|e| StoreError::Io {
                path: dir.display().to_string(),
                source: e.into(),
            })?;
            let ft = entry.file_type();
            let is_file = ft.is_file() || (ft.is_symlink() && entry.path().is_file());
            if !is_file || entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if ft.is_symlink() && self.check_inside(entry.path(), key).is_err() {
                continue;
            }
            if let Ok(rel) = entry.path().strip_prefix(&self.root) {
                let parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                keys.push(parts.join("/"));
            }
        }
        Ok(Some(keys))
    }

    fn describe(&self, key: &str) -> String {
        match self.path(key) {
            Ok(p) => p.display().to_string(),
            Err(_) => key.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_atomically_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let s = DiskStore::new(dir.path());
        s.write("a/b/c.jpg", b"xyz").unwrap();
        assert_eq!(s.read("a/b/c.jpg").unwrap(), b"xyz");
        assert!(s.exists("a/b/c.jpg").unwrap());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("a/b")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn refuses_keys_outside_the_root() {
        let s = DiskStore::new("/srv/images");
        for k in ["../x", "a/../../x", "a\\..\\x"] {
            assert!(matches!(s.path(k), Err(StoreError::BadKey { .. })), "{k}");
        }
        assert_eq!(
            s.path("/a/b.jpg").unwrap(),
            PathBuf::from("/srv/images/a/b.jpg")
        );
    }

    #[test]
    fn lists_files_below_a_directory_without_following_links_out() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.jpg"), b"x").unwrap();
        let s = DiskStore::new(dir.path());
        s.write("d/a.jpg", b"a").unwrap();
        s.write("d/sub/b.png", b"b").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.jpg"),
            dir.path().join("d/link.jpg"),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("d/linkdir")).unwrap();
        assert_eq!(s.list("d").unwrap().unwrap(), ["d/a.jpg", "d/sub/b.png"]);
        assert_eq!(s.list("d/a.jpg").unwrap(), None);
        assert!(matches!(
            s.read("d/link.jpg"),
            Err(StoreError::Escapes { .. })
        ));
    }

    #[test]
    fn never_writes_through_a_link_that_leaves_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let s = DiskStore::new(dir.path());
        std::os::unix::fs::symlink(outside.path(), dir.path().join("src")).unwrap();
        for key in ["src/a.jpg", "src/new/dir/a.jpg"] {
            assert!(
                matches!(s.write(key, b"x"), Err(StoreError::Escapes { .. })),
                "{key}"
            );
        }
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        // A link that stays inside the root is fine.
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("alias")).unwrap();
        s.write("alias/a.jpg", b"y").unwrap();
        assert_eq!(std::fs::read(dir.path().join("real/a.jpg")).unwrap(), b"y");
    }

    #[test]
    fn missing_file_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            DiskStore::new(dir.path()).read("nope.jpg"),
            Err(StoreError::NotFound { .. })
        ));
    }
}
