//! File watching: a change to the configuration file or to a filter's module
//! file triggers the same validated apply as `weir config apply` (the file
//! is read again, module bytes are hashed, and only what changed is
//! rebuilt). A burst of events (an editor's write-rename-chmod) is
//! debounced into one apply. A failed apply keeps the running version; the
//! reason is logged and published as a `config_rejected` event.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Manager;

/// Quiet time after the last file event before applying.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// Watching in the background; stops when dropped.
pub struct FileWatcher {
    task: JoinHandle<()>,
}

impl std::fmt::Debug for FileWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWatcher").finish_non_exhaustive()
    }
}

impl Drop for FileWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The files to watch: the configuration file and the module files.
async fn interesting(manager: &Manager) -> BTreeSet<PathBuf> {
    let mut files: BTreeSet<PathBuf> = manager.module_paths().await.into_iter().collect();
    files.insert(manager.config_path().to_path_buf());
    files
}

/// Watches the directories of `files` (files themselves are often replaced
/// by a rename, which a watch on the old inode would miss).
fn watch_dirs(
    watcher: &mut RecommendedWatcher,
    watched: &mut BTreeSet<PathBuf>,
    files: &BTreeSet<PathBuf>,
) -> notify::Result<()> {
    let dirs: BTreeSet<PathBuf> = files
        .iter()
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .collect();
    for dir in watched.difference(&dirs).cloned().collect::<Vec<_>>() {
        let _ = watcher.unwatch(&dir);
        watched.remove(&dir);
    }
    for dir in dirs {
        if !watched.contains(&dir) {
            watcher.watch(&dir, RecursiveMode::NonRecursive)?;
            watched.insert(dir);
        }
    }
    Ok(())
}

/// Starts watching the configuration file of `manager` and its filters'
/// module files.
pub async fn spawn(manager: Arc<Manager>) -> notify::Result<FileWatcher> {
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !matches!(event.kind, notify::EventKind::Access(_))
        {
            for path in event.paths {
                let _ = tx.send(path);
            }
        }
    })?;
    let mut files = interesting(&manager).await;
    let mut watched = BTreeSet::new();
    watch_dirs(&mut watcher, &mut watched, &files)?;
    tracing::info!(
        files = files.len(),
        "watching the config and module files for changes"
    );
    let task = tokio::spawn(async move {
        while let Some(path) = rx.recv().await {
            if !files.contains(&path) {
                continue;
            }
            let mut changed = vec![path];
            // Debounce: apply once things have been quiet for DEBOUNCE.
            while let Ok(Some(path)) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                if files.contains(&path) {
                    changed.push(path);
                }
            }
            changed.sort();
            changed.dedup();
            let names: Vec<String> = changed.iter().map(|p| p.display().to_string()).collect();
            tracing::info!(files = %names.join(", "), "file change: applying the configuration");
            match manager.reapply_config_file().await {
                Ok(summary) => {
                    tracing::info!(changes = summary.changes.len(), "file change applied")
                }
                // Logged and published by the apply path; the old version serves.
                Err(err) => tracing::debug!("file change not applied: {err}"),
            }
            files = interesting(&manager).await;
            if let Err(err) = watch_dirs(&mut watcher, &mut watched, &files) {
                tracing::warn!("cannot watch the new module directories: {err}");
            }
        }
    });
    Ok(FileWatcher { task })
}
