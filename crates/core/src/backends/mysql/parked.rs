//! Key locks handed from one operation to the next of the same store (docs/mysql.md, "Handing
//! a held key on").
//!
//! When operations of this store wait for a key (the core says so with `HeldKey::next_waits`),
//! the one that writes it does not unlock: it parks its lock here with the value it wrote, and
//! the next takes it over and reads the value from here — while the session holds the key's
//! lock no other session can change the row — saving a `RELEASE_LOCK`, a `GET_LOCK` and a read.
//! A chain of hand-overs ends [`MAX_CHAIN`] after the lock was taken, so a process waiting for
//! the key waits at most about that long; a lock nobody takes (the next operation gave up
//! waiting) is released after [`UNCLAIMED`].
//!
//! Invariants: an entry is parked only by the session holding the key's lock, after its write
//! committed and before the write's caller is answered, with exactly the value that write left
//! (no expiry: an expiring row may vanish by the server's clock); whoever removes an entry owns
//! its lock and must release it or write under it. Entries are removed before their lock is
//! released, so nothing is taken from here once another session may hold the key.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a parked lock waits for the operation it was parked for before it is released.
pub const UNCLAIMED: Duration = Duration::from_millis(2);

/// How long one lock may be handed from operation to operation before it must be released.
pub const MAX_CHAIN: Duration = Duration::from_millis(2);

/// Values up to this size are parked with their lock (a larger one is not parked).
pub const VALUE_BYTES: usize = 64 << 10;

/// A held lock with what its row holds.
pub struct Parked<H> {
    pub hold: H,
    /// The row's value; `None` when the write removed it.
    pub value: Option<String>,
    /// When the lock was taken, before any hand-over.
    pub since: Instant,
}

impl<H> Parked<H> {
    /// Whether the chain of hand-overs may go on.
    pub fn fresh(&self) -> bool {
        chain_open(self.since)
    }
}

/// Whether a lock taken at `since` may still be handed on.
pub fn chain_open(since: Instant) -> bool {
    since.elapsed() < MAX_CHAIN
}

/// The parked locks of one store, by key.
pub struct ParkedLocks<H> {
    by_key: parking_lot::Mutex<HashMap<String, (u64, Parked<H>)>>,
    tickets: AtomicU64,
}

impl<H> Default for ParkedLocks<H> {
    fn default() -> Self {
        ParkedLocks {
            by_key: parking_lot::Mutex::new(HashMap::new()),
            tickets: AtomicU64::new(0),
        }
    }
}

impl<H> ParkedLocks<H> {
    /// Parks `parked` for `key`; the ticket names this parking for [`ParkedLocks::reclaim`].
    pub fn park(&self, key: &str, parked: Parked<H>) -> u64 {
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        // A key has at most one entry: only its lock's holder parks, and one session holds it.
        self.by_key.lock().insert(key.to_owned(), (ticket, parked));
        ticket
    }

    /// Takes `key`'s parked lock over, if one is parked.
    pub fn take(&self, key: &str) -> Option<Parked<H>> {
        let mut by_key = self.by_key.lock();
        if by_key.is_empty() {
            return None;
        }
        by_key.remove(key).map(|(_, p)| p)
    }

    /// Takes `key`'s parked lock back if it is still the one parked under `ticket`.
    pub fn reclaim(&self, key: &str, ticket: u64) -> Option<Parked<H>> {
        let mut by_key = self.by_key.lock();
        match by_key.get(key) {
            Some((t, _)) if *t == ticket => by_key.remove(key).map(|(_, p)| p),
            _ => None,
        }
    }

    /// Takes every parked lock (the store is closing).
    pub fn drain(&self) -> Vec<Parked<H>> {
        self.by_key.lock().drain().map(|(_, (_, p))| p).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parked(value: &str) -> Parked<u8> {
        Parked {
            hold: 0,
            value: Some(value.to_owned()),
            since: Instant::now(),
        }
    }

    #[test]
    fn a_parked_lock_is_taken_once() {
        let locks = ParkedLocks::default();
        let ticket = locks.park("k", parked("1"));
        assert!(locks.take("other").is_none());
        assert_eq!(locks.take("k").and_then(|p| p.value).as_deref(), Some("1"));
        assert!(locks.take("k").is_none());
        assert!(locks.reclaim("k", ticket).is_none());
    }

    #[test]
    fn reclaim_takes_only_its_own_parking() {
        let locks = ParkedLocks::default();
        let first = locks.park("k", parked("1"));
        let _ = locks.take("k");
        let second = locks.park("k", parked("2"));
        // The first parking's wait ends after its lock was handed on and parked again.
        assert!(locks.reclaim("k", first).is_none());
        let back = locks.reclaim("k", second).and_then(|p| p.value);
        assert_eq!(back.as_deref(), Some("2"));
        assert!(locks.drain().is_empty());
    }

    #[test]
    fn a_chain_ends_after_max_chain() {
        let mut p = parked("1");
        assert!(p.fresh());
        p.since = Instant::now() - MAX_CHAIN;
        assert!(!p.fresh());
    }
}
