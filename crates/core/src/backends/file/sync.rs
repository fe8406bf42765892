//! Group commit of the file backend, on the executor's thread ([`Syncer`]): writes that arrive
//! while a flush runs share the next one.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::sync::Arc;

use super::disk;
use crate::runtime::executor::run_blocking;
use crate::runtime::wait_list::WaitList;

/// Group commit: every write registers the file it went to and gets a sequence number;
/// [`Syncer::wait_durable`] resolves once a flush that started after that write has finished.
/// Once a flush has failed, every write not flushed before it fails too.
#[derive(Default)]
pub struct Syncer {
    /// Files written since the last flush started (deduplicated).
    pending: RefCell<Vec<Arc<File>>>,
    written: Cell<u64>,
    synced: Cell<u64>,
    running: Cell<bool>,
    /// Woken when a flush ends.
    waiters: WaitList,
    flushes: Cell<u64>,
    /// The error of a failed flush. Sticky: after a failed `fdatasync` the kernel may have
    /// dropped the dirty pages, so a later flush that succeeds proves nothing about the
    /// writes before it.
    failed: RefCell<Option<(std::io::ErrorKind, String)>>,
}

impl Syncer {
    /// Notes a write to `file`; returns its sequence number.
    pub fn note_write(&self, file: &Arc<File>) -> u64 {
        let mut pending = self.pending.borrow_mut();
        if !pending.iter().any(|f| Arc::ptr_eq(f, file)) {
            pending.push(file.clone());
        }
        let seq = self.written.get() + 1;
        self.written.set(seq);
        seq
    }

    /// Flushes started so far.
    #[cfg(test)]
    pub fn flushes(&self) -> u64 {
        self.flushes.get()
    }

    /// Resolves once write `seq` has reached the disk (`fdatasync`, on a thread).
    pub async fn wait_durable(&self, seq: u64) -> std::io::Result<()> {
        loop {
            if self.synced.get() >= seq {
                return Ok(());
            }
            if let Some((kind, message)) = &*self.failed.borrow() {
                return Err(std::io::Error::new(
                    *kind,
                    format!("an earlier fdatasync failed: {message}"),
                ));
            }
            if !self.running.get() {
                self.running.set(true);
                self.flushes.set(self.flushes.get() + 1);
                let files = std::mem::take(&mut *self.pending.borrow_mut());
                let target = self.written.get();
                let flushed = files.clone();
                let result =
                    run_blocking(move || flushed.iter().try_for_each(|f| disk::sync_data(f)))
                        .await
                        .unwrap_or_else(|| Err(std::io::Error::other("flush thread stopped")));
                self.running.set(false);
                match result {
                    Ok(()) => self.synced.set(self.synced.get().max(target)),
                    Err(e) => {
                        *self.failed.borrow_mut() = Some((e.kind(), e.to_string()));
                        self.waiters.wake_all();
                        return Err(e);
                    }
                }
                self.waiters.wake_all();
                continue;
            }
            self.waiters.next_wake().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::executor::block_on;
    use std::rc::Rc;

    #[test]
    fn writes_share_flushes() {
        let dir = std::env::temp_dir().join(format!("rd-sync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = Arc::new(File::create(dir.join("f")).unwrap());
        block_on(async move {
            let s = Rc::new(Syncer::default());
            let a = s.note_write(&file);
            let b = s.note_write(&file);
            s.wait_durable(b).await.unwrap();
            assert_eq!(s.synced.get(), 2);
            s.wait_durable(a).await.unwrap();
            assert!(s.pending.borrow().is_empty());
        });
        std::fs::remove_dir_all(&dir).ok();
    }
}
