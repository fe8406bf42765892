//! Compaction: the data rewritten as one JSON object, to a temp file renamed over the store.

use std::fs::File;
use std::io;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use super::disk::{self, FileId};
use super::{DataFile, Shared};
use crate::core::Result;
use crate::runtime::executor::{run_blocking, run_critical, Executor};

impl Shared {
    /// See [`FileBackend::compact`].
    pub(super) async fn compact(&self) -> Result<()> {
        let (_gate, _range) = self.lock_store().await?;
        let base = self.with_current(true, |open| match &open.data {
            Some(d) if d.applied > d.base_end => Some(open.encode_base()),
            _ => None,
        })?;
        let Some(base) = base else {
            return Ok(());
        };
        let path = self.path().to_owned();
        let len = base.len() as u64;
        // Critical: the rename must not outlive the store-wide lock held here.
        let file = run_critical(move || disk::replace(&path, &base))
            .await
            .unwrap_or_else(|| Err(io::Error::other("file thread stopped")))
            .map_err(|e| self.io(e))?;
        let meta = file.metadata().map_err(|e| self.io(e))?;
        let mut guard = self.open.borrow_mut();
        if let Some(open) = guard.as_mut() {
            open.data = Some(DataFile {
                file: Arc::new(file),
                id: disk::file_id(&meta),
                applied: len,
                base_end: len,
                torn: false,
            });
        }
        Ok(())
    }

    /// A compaction that holds the store-wide lock only to take a snapshot and, at the end, to
    /// copy the records appended meanwhile and rename: writers wait for neither the writing
    /// nor the flushing of the whole file. Leaves a base plus those records.
    async fn compact_in_background(&self) -> Result<()> {
        let snapshot = {
            let (_gate, _range) = self.lock_store().await?;
            self.with_current(true, |open| match &open.data {
                Some(d) if d.applied > d.base_end => {
                    Some((open.encode_base(), d.id, d.applied, d.file.clone()))
                }
                _ => None,
            })?
        };
        // The snapshot's file stays open to the end: while it is, no file created meanwhile (by
        // compactions that replace it) can get its inode number, so an equal id at the end
        // means the same file.
        let Some((base, id, from, _snapshot_file)) = snapshot else {
            return Ok(());
        };
        let base_len = base.len() as u64;
        let path = self.path().to_owned();
        let temp = disk::temp_path(&path, true);
        let (p, t) = (path.clone(), temp.clone());
        let written = run_blocking(move || disk::write_temp(&p, &t, &base))
            .await
            .unwrap_or_else(|| Err(io::Error::other("file thread stopped")));
        let result = match written {
            Ok(f) => self.finish_background(f, &temp, id, from, base_len).await,
            Err(e) => Err(self.io(e)),
        };
        if result.is_err() {
            std::fs::remove_file(&temp).ok();
        }
        result
    }

    /// The locked end of [`Shared::compact_in_background`]. If another process compacted the
    /// file meanwhile, the temp file is dropped instead.
    async fn finish_background(
        &self,
        temp_file: File,
        temp: &Path,
        id: FileId,
        from: u64,
        base_len: u64,
    ) -> Result<()> {
        let (_gate, _range) = self.lock_store().await?;
        let tail = self.with_current(true, |open| match &open.data {
            Some(d) if d.id == id && d.applied >= from => Some((d.file.clone(), d.applied)),
            _ => None,
        })?;
        let Some((old, to)) = tail else {
            std::fs::remove_file(temp).ok();
            return Ok(());
        };
        let (path, temp) = (self.path().to_owned(), temp.to_owned());
        // Critical: the copy and rename must not outlive the store-wide lock held here.
        let file = run_critical(move || {
            let tail = disk::Tail {
                file: &old,
                from,
                to,
            };
            disk::finish_temp(temp_file, &temp, &path, Some(tail))
        })
        .await
        .unwrap_or_else(|| Err(io::Error::other("file thread stopped")))
        .map_err(|e| self.io(e))?;
        let meta = file.metadata().map_err(|e| self.io(e))?;
        if let Some(open) = self.open.borrow_mut().as_mut() {
            open.data = Some(DataFile {
                file: Arc::new(file),
                id: disk::file_id(&meta),
                applied: base_len + (to - from),
                base_end: base_len,
                torn: false,
            });
        }
        Ok(())
    }

    /// Starts a compaction in the background (one at a time); a failed one is retried by the
    /// next write that finds the log too long, by `compact()` or by `close()`.
    pub(super) fn compact_soon(self: &Rc<Self>) {
        if self.compaction_queued.replace(true) {
            return;
        }
        let Some(exec) = Executor::current() else {
            self.compaction_queued.set(false);
            return;
        };
        let shared = self.clone();
        exec.spawn(async move {
            // Writes made during a compaction stay records after it: go again (a few times at
            // most) while that leaves the file too long.
            for _ in 0..3 {
                let again = shared.compact_in_background().await.is_ok()
                    && !shared.closed.get()
                    && shared
                        .open
                        .borrow()
                        .as_ref()
                        .is_some_and(|open| open.compaction_due(shared.compact_min()));
                if !again {
                    break;
                }
            }
            shared.compaction_queued.set(false);
            shared.compaction_waiters.wake_all();
        });
    }

    /// Resolves when no background compaction is running.
    pub(super) async fn background_done(&self) {
        self.compaction_waiters
            .until(|| !self.compaction_queued.get())
            .await
    }
}
