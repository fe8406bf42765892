//! The in-process key locks: one FIFO queue of waiting operations per key.
//!
//! Invariants: a key has an entry exactly while some operation holds it (the holder is not in
//! the queue); release hands the lock to the first waiter (FIFO) by marking it granted before
//! waking it, so later arrivals can never overtake; an entry is removed when its last holder
//! releases, so the table is empty when the store is idle.

use std::cell::{Cell, RefCell};
use std::collections::hash_map::Entry;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use rustc_hash::FxHashMap;

#[derive(Default)]
struct Waiter {
    granted: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

/// Per-key FIFO locks of one store. Single-threaded: lives on the executor's thread.
#[derive(Default)]
pub struct LockTable {
    /// Keys are the caller's own allocation, shared with its [`Acquire`]/[`KeyGuard`].
    keys: RefCell<FxHashMap<Rc<str>, VecDeque<Rc<Waiter>>>>,
}

impl LockTable {
    pub fn new() -> Rc<Self> {
        Rc::new(Self::default())
    }

    /// Joins the key's queue now (call order is queue order) and resolves when it is this
    /// caller's turn.
    pub fn acquire(self: &Rc<Self>, key: Rc<str>) -> Acquire {
        let mut keys = self.keys.borrow_mut();
        let waiter = match keys.entry(key.clone()) {
            Entry::Vacant(e) => {
                e.insert(VecDeque::new());
                None
            }
            Entry::Occupied(mut e) => {
                let w = Rc::new(Waiter::default());
                e.get_mut().push_back(w.clone());
                Some(w)
            }
        };
        Acquire {
            table: self.clone(),
            key: Some(key),
            waiter,
        }
    }

    /// Whether an operation holds `key` or waits for it.
    pub fn is_held(&self, key: &str) -> bool {
        self.keys.borrow().contains_key(key)
    }

    /// Whether some operation waits for `key` (behind its holder).
    pub fn has_waiters(&self, key: &str) -> bool {
        self.keys.borrow().get(key).is_some_and(|q| !q.is_empty())
    }

    /// Number of keys currently held (for tests and leak checks).
    pub fn held_keys(&self) -> usize {
        self.keys.borrow().len()
    }

    fn release(&self, key: &Rc<str>) {
        let next = {
            let mut keys = self.keys.borrow_mut();
            let Entry::Occupied(mut e) = keys.entry(key.clone()) else {
                return;
            };
            match e.get_mut().pop_front() {
                Some(next) => next,
                None => {
                    e.remove();
                    return;
                }
            }
        };
        next.granted.set(true);
        let waker = next.waker.borrow_mut().take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn cancel(&self, key: &Rc<str>, waiter: &Rc<Waiter>) {
        if waiter.granted.get() {
            self.release(key);
            return;
        }
        if let Some(queue) = self.keys.borrow_mut().get_mut(key) {
            queue.retain(|w| !Rc::ptr_eq(w, waiter));
        }
    }
}

/// Future of [`LockTable::acquire`]. Dropping it before it resolves leaves the queue.
pub struct Acquire {
    table: Rc<LockTable>,
    key: Option<Rc<str>>,
    waiter: Option<Rc<Waiter>>,
}

impl Future for Acquire {
    type Output = KeyGuard;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<KeyGuard> {
        if let Some(w) = &self.waiter {
            if !w.granted.get() {
                *w.waker.borrow_mut() = Some(cx.waker().clone());
                return Poll::Pending;
            }
        }
        self.waiter = None;
        match self.key.take() {
            Some(key) => Poll::Ready(KeyGuard {
                table: self.table.clone(),
                key,
            }),
            None => Poll::Pending, // polled after completion
        }
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        if let Some(key) = &self.key {
            match &self.waiter {
                Some(w) => self.table.cancel(key, w),
                None => self.table.release(key), // acquired at once but never polled
            }
        }
    }
}

/// Holds a key's in-process lock; dropping it passes the lock to the next waiter.
pub struct KeyGuard {
    table: Rc<LockTable>,
    key: Rc<str>,
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        self.table.release(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::Wake;

    struct Flag(std::sync::atomic::AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn poll(a: &mut Acquire, flag: &Arc<Flag>) -> Option<KeyGuard> {
        let waker = Waker::from(flag.clone());
        match Pin::new(a).poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(g) => Some(g),
            Poll::Pending => None,
        }
    }

    #[test]
    fn fifo_handoff_and_cleanup() {
        let t = LockTable::new();
        let flag = Arc::new(Flag(false.into()));
        let mut a = t.acquire("k".into());
        let mut b = t.acquire("k".into());
        let mut c = t.acquire("k".into());
        let mut other = t.acquire("other".into());
        assert!(poll(&mut other, &flag).is_some(), "other keys never wait");
        let ga = poll(&mut a, &flag).expect("first is free");
        assert!(poll(&mut c, &flag).is_none());
        assert!(poll(&mut b, &flag).is_none());
        assert!(t.has_waiters("k") && !t.has_waiters("other"));
        drop(ga);
        assert!(poll(&mut c, &flag).is_none(), "c may not overtake b");
        let gb = poll(&mut b, &flag).expect("b is next");
        assert!(t.has_waiters("k"), "c still waits");
        drop(gb);
        let gc = poll(&mut c, &flag).expect("then c");
        assert!(!t.has_waiters("k") && t.is_held("k"));
        drop(gc);
        drop((a, b, c, other));
        assert_eq!(t.held_keys(), 0);
    }

    #[test]
    fn cancelled_waiters_leave_the_queue() {
        let t = LockTable::new();
        let flag = Arc::new(Flag(false.into()));
        let mut a = t.acquire("k".into());
        let ga = poll(&mut a, &flag).unwrap();
        let b = t.acquire("k".into());
        let mut c = t.acquire("k".into());
        drop(b);
        drop(ga);
        assert!(poll(&mut c, &flag).is_some());
        drop((a, c));
        // Granted but dropped before polling passes the lock on.
        let mut d = t.acquire("k".into());
        let gd = poll(&mut d, &flag).unwrap();
        let e = t.acquire("k".into());
        let mut f = t.acquire("k".into());
        drop(gd);
        drop(e);
        assert!(poll(&mut f, &flag).is_some());
        drop((d, f));
        assert_eq!(t.held_keys(), 0);
    }
}
