//! File watching: a change to the configuration file or to a filter's module
//! file triggers the same validated apply as `weir config apply` (the file
//! is read again, module bytes are hashed, and only what changed is
//! rebuilt). A failed apply keeps the running version; the reason is logged
//! and published as a `config_rejected` event.
//!
//! A burst of events (an editor's write-rename-chmod, a deploy writing the
//! config and a module) is debounced into one apply. How long to wait
//! depends on what was seen last for each changed file: a file closed after
//! writing, or renamed into place, is complete, so a short [`SETTLE`] of
//! quiet is enough; anything else (a write still going on, a removal, a
//! creation) waits for [`DEBOUNCE`] of quiet, so a half-written file is not
//! read (and if it were, the failed apply changes nothing and the next event
//! applies the finished file).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Manager;

/// Quiet time after the last file event before applying, while some changed
/// file may still be being written.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// Quiet time before applying once every changed file is complete (closed
/// after writing, or renamed into place).
pub const SETTLE: Duration = Duration::from_millis(10);

/// One file event, reduced to what debouncing needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Change {
    path: PathBuf,
    /// The file is in its final state (closed after writing, renamed into
    /// place, or only its metadata changed).
    complete: bool,
}

/// The changes one notify event reports; none for reads.
fn changes(event: notify::Event) -> Vec<Change> {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
    let last = event.paths.len().saturating_sub(1);
    event
        .paths
        .into_iter()
        .enumerate()
        .filter_map(|(i, path)| {
            let complete = match event.kind {
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
                EventKind::Access(_) => return None,
                EventKind::Modify(ModifyKind::Name(RenameMode::To)) => true,
                // [from, to]: the destination is complete, the source is gone.
                EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => i == last,
                EventKind::Modify(ModifyKind::Metadata(_)) => true,
                _ => false,
            };
            Some(Change { path, complete })
        })
        .collect()
}

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
    let (tx, mut rx) = mpsc::unbounded_channel::<Change>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            for change in changes(event) {
                let _ = tx.send(change);
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
        while let Some(change) = rx.recv().await {
            if !files.contains(&change.path) {
                continue;
            }
            // Debounce: the last word on each changed file decides how long
            // to wait for quiet.
            let mut changed = BTreeMap::from([(change.path, change.complete)]);
            loop {
                let quiet = if changed.values().all(|complete| *complete) {
                    SETTLE
                } else {
                    DEBOUNCE
                };
                match tokio::time::timeout(quiet, rx.recv()).await {
                    Ok(Some(change)) if files.contains(&change.path) => {
                        changed.insert(change.path, change.complete);
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
            let names: Vec<String> = changed.keys().map(|p| p.display().to_string()).collect();
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

#[cfg(test)]
mod tests {
    use notify::EventKind;
    use notify::event::{
        AccessKind, AccessMode, CreateKind, DataChange, MetadataKind, ModifyKind, RenameMode,
    };

    use super::*;

    fn event(kind: EventKind, paths: &[&str]) -> notify::Event {
        paths.iter().fold(notify::Event::new(kind), |e, p| {
            e.add_path(PathBuf::from(p))
        })
    }

    fn complete(kind: EventKind, paths: &[&str]) -> Vec<(String, bool)> {
        changes(event(kind, paths))
            .into_iter()
            .map(|c| (c.path.display().to_string(), c.complete))
            .collect()
    }

    #[test]
    fn closed_after_writing_or_renamed_into_place_is_complete() {
        let close = EventKind::Access(AccessKind::Close(AccessMode::Write));
        assert_eq!(complete(close, &["/m.wasm"]), [("/m.wasm".into(), true)]);
        let moved = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        assert_eq!(complete(moved, &["/m.wasm"]), [("/m.wasm".into(), true)]);
        let both = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
        assert_eq!(
            complete(both, &["/m.wasm.tmp", "/m.wasm"]),
            [("/m.wasm.tmp".into(), false), ("/m.wasm".into(), true)]
        );
        let chmod = EventKind::Modify(ModifyKind::Metadata(MetadataKind::Permissions));
        assert_eq!(complete(chmod, &["/m.wasm"]), [("/m.wasm".into(), true)]);
    }

    #[test]
    fn writes_in_progress_creations_and_removals_are_not_complete() {
        for kind in [
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Create(CreateKind::File),
            EventKind::Remove(notify::event::RemoveKind::File),
            EventKind::Modify(ModifyKind::Name(RenameMode::From)),
        ] {
            assert_eq!(complete(kind, &["/m.wasm"]), [("/m.wasm".into(), false)]);
        }
    }

    #[test]
    fn reads_are_not_changes() {
        let read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        assert!(changes(event(read, &["/m.wasm"])).is_empty());
        let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
        assert!(changes(event(open, &["/m.wasm"])).is_empty());
    }
}
