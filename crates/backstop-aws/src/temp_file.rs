//! The temporary file of a file download: [`TempFile`].
//!
//! A download writes `.<name>.backstop-<random>.part` beside its target and
//! renames it into place once complete. The file must not survive the
//! download's future being dropped at any moment, which rules out the obvious
//! guard: tokio runs file system calls on its blocking pool, and a call that
//! has started there (the create, the rename) finishes even when the future
//! awaiting it is dropped, after the guard's `Drop` has already cleaned up.
//!
//! So the guard exists before the file, and the file system calls are made
//! under the guard's lock, each checking first that it is still wanted:
//!
//! - `Drop` takes the lock, marks the file dropped and removes it; a create or
//!   rename that runs afterwards sees the mark and does nothing;
//! - each create gets a new generation: a create or rename made for an
//!   earlier create that runs late sees a newer generation and does nothing,
//!   so it cannot replace the file in use, nor rename it half-written into
//!   place (a download creates its file once, after its first answer; the
//!   generations keep this safe for any caller that creates again);
//! - a create removes the previous file first and makes a new one, so a late
//!   write to the old one lands in an unlinked file;
//! - a rename that succeeded disarms the guard.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A temporary file beside a download's target, removed when dropped unless
/// it was renamed into place; see the [module docs](self).
pub(crate) struct TempFile {
    path: PathBuf,
    state: Arc<Mutex<State>>,
}

/// What the file system calls check before they run.
#[derive(Debug, Default)]
struct State {
    /// The generation of the latest create; a call of an older one does nothing.
    generation: u64,
    /// The guard was dropped: the file is gone and must not come back.
    dropped: bool,
    /// The file was renamed into place: nothing to remove.
    persisted: bool,
}

/// The file one attempt created: write to it, then [`TempFile::persist`] it.
pub(crate) struct Created {
    pub(crate) file: tokio::fs::File,
    generation: u64,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn superseded() -> io::Error {
    io::Error::other("the download was cancelled or restarted")
}

impl TempFile {
    /// A name beside `target`; the file itself is made by [`create`](Self::create).
    pub(crate) fn beside(target: &Path) -> Self {
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let path = target.with_file_name(format!(".{name}.backstop-{:016x}.part", fastrand::u64(..)));
        Self { path, state: Arc::default() }
    }

    /// The temporary file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the file afresh (a new file, not the previous attempt's
    /// truncated) for a new attempt.
    pub(crate) async fn create(&self) -> io::Result<Created> {
        let generation = {
            let mut state = lock(&self.state);
            state.generation += 1;
            state.generation
        };
        let (path, state) = (self.path.clone(), Arc::clone(&self.state));
        let file = blocking(move || {
            let state = lock(&state);
            if state.dropped || state.persisted || state.generation != generation {
                return Err(superseded());
            }
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            std::fs::OpenOptions::new().write(true).create_new(true).open(&path)
        })
        .await?;
        Ok(Created { file: tokio::fs::File::from_std(file), generation })
    }

    /// Renames the file `created` wrote into place at `target`, and disarms
    /// the guard. Call it once the file is complete and synced.
    pub(crate) async fn persist(&self, created: Created, target: &Path) -> io::Result<()> {
        let Created { file, generation } = created;
        drop(file);
        let (path, target, state) = (self.path.clone(), target.to_owned(), Arc::clone(&self.state));
        blocking(move || {
            let mut state = lock(&state);
            if state.dropped || state.persisted || state.generation != generation {
                return Err(superseded());
            }
            std::fs::rename(&path, &target)?;
            state.persisted = true;
            Ok(())
        })
        .await
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        if state.persisted {
            return;
        }
        state.dropped = true;
        // Absent already when no attempt got as far as creating it.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Runs `f` on tokio's blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(io::Error::other)?
}
