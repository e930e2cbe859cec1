//! The content-addressed store of module bytes: every module the manager
//! runs is copied here as `<sha256>.wasm` first, so a version is exactly the
//! bytes that were compiled, and a rollback has the previous bytes even when
//! the original file changed or the module was uploaded.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::control::types::sha256_hex;

/// A directory of modules named by the SHA-256 of their bytes.
#[derive(Debug, Clone)]
pub struct ModuleStore {
    dir: PathBuf,
}

impl ModuleStore {
    /// Opens (creating it if needed) the store in `dir`; the path is made absolute.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: std::path::absolute(dir)?,
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// True when `path` is a file of this store (an uploaded or copied module).
    pub fn contains(&self, path: &Path) -> bool {
        path.parent() == Some(self.dir.as_path())
    }

    /// Stores `bytes` (atomically: temp file, then rename) unless present,
    /// and returns their lower-case hex SHA-256 and the stored file.
    pub fn put(&self, bytes: &[u8]) -> std::io::Result<(String, PathBuf)> {
        let sha = sha256_hex(bytes);
        let path = self.dir.join(format!("{sha}.wasm"));
        if !path.is_file() {
            let mut temp = tempfile::NamedTempFile::new_in(&self.dir)?;
            temp.write_all(bytes)?;
            temp.as_file().sync_all()?;
            temp.persist(&path).map_err(|e| e.error)?;
        }
        Ok((sha, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_names_files_by_content_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModuleStore::open(dir.path()).unwrap();
        let (sha, path) = store.put(b"abc").unwrap();
        assert_eq!(
            sha,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
        assert!(store.contains(&path));
        let (again, same) = store.put(b"abc").unwrap();
        assert_eq!((again, same), (sha, path));
        assert!(!store.contains(Path::new("/elsewhere/x.wasm")));
    }
}
