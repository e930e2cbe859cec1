//! The on-disk cache of compiled components: restarting or reloading a
//! known module skips compilation.
//!
//! Files are named `<engine>-<sha256>.cwasm`: `<engine>` hashes
//! [`wasmtime::Engine::precompile_compatibility_hash`] (wasmtime version,
//! target, compiler settings), so an artifact is only ever offered to an
//! engine that can run it; `<sha256>` is the hash of the component's bytes.
//!
//! Deserializing a compiled artifact is `unsafe` in wasmtime: a forged or
//! corrupted file would be trusted as machine code. So this cache only ever
//! deserializes what it wrote itself:
//! - the directory is created with mode `0700` and must belong to this
//!   process's user with no group/other access;
//! - a random 32-byte secret is kept in `key` (mode `0600`) in that directory;
//! - each file starts with an HMAC-SHA256 over the artifact, keyed by the
//!   secret; it is verified (in constant time) before deserializing, on the
//!   bytes already in memory, so the file cannot change in between;
//! - files are written to a temporary file and renamed into place, so a
//!   reader never sees a half-written one.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use wasmtime::Engine;
use wasmtime::component::Component;

type HmacSha256 = Hmac<Sha256>;

const KEY_FILE: &str = "key";
const MAC_LEN: usize = 32;

/// A directory of compiled components this process (or an earlier run) wrote.
pub(crate) struct DiskCache {
    dir: PathBuf,
    key: [u8; 32],
    engine: u64,
}

impl std::fmt::Debug for DiskCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskCache")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn private_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::metadata(dir)?;
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(meta.uid());
    if meta.uid() != uid {
        return Err(std::io::Error::other(format!(
            "{} belongs to another user; refusing to use it as the compiled-module cache",
            dir.display()
        )));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

fn read_or_create_key(dir: &Path) -> std::io::Result<[u8; 32]> {
    let path = dir.join(KEY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() == 32 => {
            let mode = std::fs::metadata(&path)?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(std::io::Error::other(format!(
                    "{} is readable by others (mode {:o}); delete it or chmod 600",
                    path.display(),
                    mode & 0o777
                )));
            }
            let mut key = [0; 32];
            key.copy_from_slice(&bytes);
            Ok(key)
        }
        Ok(_) => Err(std::io::Error::other(format!(
            "{} is not a cache key (32 bytes); delete it to start a new cache",
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = rand::random();
            let temp = dir.join(format!(".key-{}", std::process::id()));
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)?;
            file.write_all(&key)?;
            file.sync_all()?;
            // Another process may have won the race: use whichever key is in place.
            if std::fs::hard_link(&temp, &path).is_err() && !path.exists() {
                std::fs::remove_file(&temp)?;
                return Err(std::io::Error::other("cannot create the cache key"));
            }
            std::fs::remove_file(&temp)?;
            read_or_create_key(dir)
        }
        Err(e) => Err(e),
    }
}

impl DiskCache {
    /// Opens (creating if needed) the cache in `dir` for `engine`.
    pub(crate) fn open(dir: &Path, engine: &Engine) -> std::io::Result<Self> {
        private_dir(dir)?;
        let key = read_or_create_key(dir)?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir: dir.to_owned(),
            key,
            engine: hasher.finish(),
        })
    }

    fn path(&self, sha: &[u8; 32]) -> PathBuf {
        let hex: String = sha.iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{:016x}-{hex}.cwasm", self.engine))
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length")
    }

    /// The compiled component for content `sha`, if this cache holds an
    /// authentic one. Anything else (absent, truncated, bad MAC, refused by
    /// wasmtime) is a miss.
    pub(crate) fn load(&self, engine: &Engine, sha: &[u8; 32]) -> Option<Component> {
        let path = self.path(sha);
        let file = std::fs::read(&path).ok()?;
        if file.len() <= MAC_LEN {
            return None;
        }
        let (tag, artifact) = file.split_at(MAC_LEN);
        let mut mac = self.mac();
        mac.update(artifact);
        if mac.verify_slice(tag).is_err() {
            tracing::warn!(file = %path.display(), "compiled-module cache entry failed its integrity check; recompiling");
            return None;
        }
        // SAFETY: `artifact` is exactly what `store` wrote: it carries a valid
        // HMAC-SHA256 keyed by the secret in this 0700 directory's 0600 key
        // file, which only this user can read, and it was verified on these
        // very bytes in memory (no re-read after the check). `store` only
        // writes the output of `Component::serialize` of an engine with the
        // same compatibility hash (part of the file name), which is what
        // `Component::deserialize` requires.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(engine, artifact) };
        match component {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(file = %path.display(), "compiled-module cache entry refused: {e:#}");
                None
            }
        }
    }

    /// Writes the compiled `component` for content `sha`, atomically.
    pub(crate) fn store(&self, sha: &[u8; 32], component: &Component) -> std::io::Result<()> {
        let artifact = component.serialize().map_err(std::io::Error::other)?;
        let mut mac = self.mac();
        mac.update(&artifact);
        let tag = mac.finalize().into_bytes();
        let mut temp = tempfile::NamedTempFile::new_in(&self.dir)?;
        temp.write_all(&tag)?;
        temp.write_all(&artifact)?;
        temp.as_file().sync_all()?;
        temp.persist(self.path(sha)).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tampered_entry_is_a_miss_and_an_authentic_one_loads() {
        let engine = Engine::default();
        let dir = tempfile::tempdir().unwrap();
        let cache_dir = dir.path().join("cache");
        let cache = DiskCache::open(&cache_dir, &engine).unwrap();
        let mode = std::fs::metadata(&cache_dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let key_mode = std::fs::metadata(cache_dir.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(key_mode & 0o777, 0o600);

        let component = Component::from_binary(&engine, b"\0asm\x0d\x00\x01\x00").unwrap();
        let sha = [7; 32];
        assert!(cache.load(&engine, &sha).is_none());
        cache.store(&sha, &component).unwrap();
        assert!(cache.load(&engine, &sha).is_some());

        // Same key on reopen (a restart).
        let reopened = DiskCache::open(&cache_dir, &engine).unwrap();
        assert!(reopened.load(&engine, &sha).is_some());

        let path = cache.path(&sha);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(cache.load(&engine, &sha).is_none());
    }
}
