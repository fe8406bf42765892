//! When waits for a key give up: the `lockTimeout` option (README, Semantics: waits never hang silently), one limit for every
//! wait of one operation — its turn in this store's queue, then another thread's, process's
//! or server's lock on the key.
//!
//! The limit counts from the operation's first wait: an operation that never waits never
//! reads the clock.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// The deadline of one operation's waits. See the module docs.
#[derive(Debug, Default)]
pub struct Deadline {
    limit: Option<Duration>,
    at: Cell<Option<Instant>>,
}

impl Deadline {
    /// Waits give up `limit` after the first one started; `None`: never.
    pub fn after(limit: Option<Duration>) -> Self {
        Deadline {
            limit,
            at: Cell::new(None),
        }
    }

    /// No limit.
    pub fn never() -> Self {
        Self::default()
    }

    /// The instant waits give up, fixed by the first call (call it when a wait starts);
    /// `None` without a limit (or one too far to represent).
    pub fn instant(&self) -> Option<Instant> {
        let limit = self.limit?;
        if let Some(at) = self.at.get() {
            return Some(at);
        }
        let at = Instant::now().checked_add(limit)?;
        self.at.set(Some(at));
        Some(at)
    }

    /// The limit, for messages.
    pub fn limit(&self) -> Option<Duration> {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_by_the_first_wait_and_absent_without_a_limit() {
        assert_eq!(Deadline::never().instant(), None);
        let d = Deadline::after(Some(Duration::from_millis(50)));
        let first = d.instant().expect("a limit");
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(d.instant(), Some(first), "the first wait fixes it");
        // A limit beyond what Instant can hold means no limit, never a panic.
        assert_eq!(Deadline::after(Some(Duration::MAX)).instant(), None);
    }
}
