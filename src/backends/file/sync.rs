//! In-process coordination of the file backend, on the executor's thread:
//! - [`Gate`]: a FIFO async mutex. Whoever holds it is this process's only user of the
//!   store-wide lock, which [`crate::backends::process_lock::ProcessLocks`] counts per process
//!   and so cannot make exclusive between two holders of one process.
//! - [`Syncer`]: group commit. Writes that arrive while a flush runs share the next one.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fs::File;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::disk;
use crate::core::executor::run_blocking;

#[derive(Default)]
struct Waiter {
    granted: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

/// A FIFO async mutex. Invariant: `held` is true exactly while a guard exists or a waiter has
/// been granted the gate and not yet taken it.
#[derive(Default)]
pub struct Gate {
    held: Cell<bool>,
    queue: RefCell<VecDeque<Rc<Waiter>>>,
}

impl Gate {
    /// Joins the queue now; resolves when it is this caller's turn.
    pub fn acquire(self: &Rc<Self>) -> GateAcquire {
        let waiter = if self.held.replace(true) {
            let w = Rc::new(Waiter::default());
            self.queue.borrow_mut().push_back(w.clone());
            Some(w)
        } else {
            None
        };
        GateAcquire {
            gate: self.clone(),
            waiter,
            done: false,
        }
    }

    fn release(&self) {
        let next = self.queue.borrow_mut().pop_front();
        match next {
            Some(w) => {
                w.granted.set(true);
                if let Some(waker) = w.waker.borrow_mut().take() {
                    waker.wake();
                }
            }
            None => self.held.set(false),
        }
    }
}

pub struct GateAcquire {
    gate: Rc<Gate>,
    waiter: Option<Rc<Waiter>>,
    done: bool,
}

impl Future for GateAcquire {
    type Output = GateGuard;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<GateGuard> {
        if let Some(w) = &self.waiter {
            if !w.granted.get() {
                *w.waker.borrow_mut() = Some(cx.waker().clone());
                return Poll::Pending;
            }
        }
        self.done = true;
        Poll::Ready(GateGuard {
            gate: self.gate.clone(),
        })
    }
}

impl Drop for GateAcquire {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        match &self.waiter {
            None => self.gate.release(),
            Some(w) if w.granted.get() => self.gate.release(),
            Some(w) => self.gate.queue.borrow_mut().retain(|x| !Rc::ptr_eq(x, w)),
        }
    }
}

/// Holding the gate; dropping it lets the next waiter in.
pub struct GateGuard {
    gate: Rc<Gate>,
}

impl Drop for GateGuard {
    fn drop(&mut self) {
        self.gate.release();
    }
}

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
    waiters: RefCell<Vec<Waker>>,
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

    fn wake_all(&self) {
        for w in std::mem::take(&mut *self.waiters.borrow_mut()) {
            w.wake();
        }
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
                        self.wake_all();
                        return Err(e);
                    }
                }
                self.wake_all();
                continue;
            }
            let mut registered = false;
            poll_fn(|cx| {
                if registered {
                    Poll::Ready(())
                } else {
                    registered = true;
                    self.waiters.borrow_mut().push(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::executor::block_on;

    #[test]
    fn the_gate_is_fifo_and_survives_dropped_waiters() {
        block_on(async {
            let gate = Rc::new(Gate::default());
            let order = Rc::new(RefCell::new(Vec::new()));
            let first = gate.acquire().await;
            let dropped = gate.acquire();
            let mut tasks = Vec::new();
            for i in 0..3 {
                let (g, o) = (gate.clone(), order.clone());
                let acq = g.acquire();
                tasks.push(async move {
                    let _guard = acq.await;
                    o.borrow_mut().push(i);
                });
            }
            drop(dropped);
            drop(first);
            for t in tasks {
                t.await;
            }
            assert_eq!(*order.borrow(), vec![0, 1, 2]);
            assert!(!gate.held.get());
        });
    }

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
