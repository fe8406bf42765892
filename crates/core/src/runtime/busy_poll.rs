//! Busy polling: while a network operation of this thread expects its reply soon, the host's
//! event loop keeps polling instead of sleeping, for at most a short window.
//!
//! Why: on a virtual machine whose idle CPUs halt, waking a thread that sleeps in the event
//! loop costs more than the server's own work. Measured on the 2-core KVM guest this package is
//! tested on (guest halt polling off): a loopback ping-pong takes ~120 µs when the client
//! sleeps for the reply and ~42 µs when it polls. Linux's own `cpuidle-haltpoll` does the same
//! for a whole guest (200 µs by default) where it is enabled; this does it only while a reply
//! is due, only on the thread that waits for it.
//!
//! Rules (all on one thread):
//! - an operation that waits for a server holds an [`Awaiting`] guard while it runs; creating
//!   one opens (or extends) a window ending `window` after now, and asks the host to poll;
//! - the host calls [`keep_polling`] on every loop iteration and stops polling when it says no:
//!   nothing awaited any more, or the window ended;
//! - an operation that finished within its window is a hit. Windows are opened only while at
//!   least [`MIN_HITS`] of the last 32 operations were hits, so a server that answers slowly
//!   (remote, overloaded, or an operation waiting for another holder's lock) costs no polling.
//!   Operations are timed whether or not the loop polled, so polling resumes by itself once
//!   replies are quick again.

use std::cell::RefCell;
use std::time::{Duration, Instant};

/// Windows are opened while at least this many of the last 32 operations were hits.
pub const MIN_HITS: u32 = 8;

/// The polling state of one thread; pure logic, timed by the caller's instants.
#[derive(Debug)]
pub struct Policy {
    /// Operations holding a guard now.
    awaiting: usize,
    /// When the current window ends; `None`: no window open. With a host, a window is open
    /// exactly while the host polls: opening one starts it, and it stops when
    /// [`Policy::keep_polling`] closes the window.
    until: Option<Instant>,
    /// Bit i: whether the i-th most recent operation was a hit.
    history: u32,
}

impl Default for Policy {
    fn default() -> Self {
        // Starts by polling: the first operations show whether it pays.
        Policy {
            awaiting: 0,
            until: None,
            history: u32::MAX,
        }
    }
}

impl Policy {
    /// An operation starts waiting at `now`; returns whether the host must start polling
    /// (a window opened while none was).
    pub fn begin(&mut self, now: Instant, window: Duration) -> bool {
        self.awaiting += 1;
        if !self.enabled() {
            return false;
        }
        let end = now + window;
        let was_open = self.until.is_some();
        self.until = Some(self.until.map_or(end, |u| u.max(end)));
        !was_open
    }

    /// An operation that started at `started` ended at `now`.
    pub fn end(&mut self, started: Instant, now: Instant, window: Duration) {
        self.awaiting = self.awaiting.saturating_sub(1);
        let hit = now.saturating_duration_since(started) <= window;
        self.history = (self.history << 1) | u32::from(hit);
    }

    /// Whether the host should poll once more at `now`; `false` closes the window.
    pub fn keep_polling(&mut self, now: Instant) -> bool {
        let open = self.awaiting > 0 && self.until.is_some_and(|u| now < u);
        if !open {
            self.until = None;
        }
        open
    }

    /// Whether new windows are opened now.
    pub fn enabled(&self) -> bool {
        self.history.count_ones() >= MIN_HITS
    }
}

type StartPolling = Box<dyn Fn()>;

thread_local! {
    static POLICY: RefCell<Policy> = RefCell::new(Policy::default());
    static HOST: RefCell<Option<StartPolling>> = const { RefCell::new(None) };
}

/// Installs the host's way to start polling on this thread (the binding: a libuv idle
/// handle). Without a host, guards only keep the statistics.
pub fn set_host(start: impl Fn() + 'static) {
    HOST.with(|h| *h.borrow_mut() = Some(Box::new(start)));
}

/// Removes the host (its loop is going away): from now on guards only keep the statistics.
pub fn remove_host() {
    HOST.with(|h| *h.borrow_mut() = None);
}

/// Called by the host on each loop iteration while it polls; `false`: stop polling.
pub fn keep_polling() -> bool {
    POLICY.with(|p| p.borrow_mut().keep_polling(Instant::now()))
}

/// Held by an operation while it waits for a server's reply; see the module docs.
pub struct Awaiting {
    started: Instant,
    window: Duration,
}

impl Awaiting {
    /// Starts waiting with a polling window of `window`. A zero window (polling turned off
    /// for this store) neither polls nor counts.
    pub fn begin(window: Duration) -> Awaiting {
        let started = Instant::now();
        if window.is_zero() {
            return Awaiting { started, window };
        }
        let opened = POLICY.with(|p| p.borrow_mut().begin(started, window));
        if opened {
            HOST.with(|h| {
                if let Some(start) = &*h.borrow() {
                    start();
                }
            });
        }
        Awaiting { started, window }
    }
}

impl Drop for Awaiting {
    fn drop(&mut self) {
        if self.window.is_zero() {
            return;
        }
        let now = Instant::now();
        POLICY.with(|p| p.borrow_mut().end(self.started, now, self.window));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_micros(300);

    fn us(t: Instant, n: u64) -> Instant {
        t + Duration::from_micros(n)
    }

    #[test]
    fn a_window_lasts_while_awaited_and_until_it_ends() {
        let t = Instant::now();
        let mut p = Policy::default();
        assert!(p.begin(t, W), "the first wait opens a window");
        assert!(p.keep_polling(us(t, 100)));
        assert!(
            !p.begin(us(t, 100), W),
            "a second wait extends the open window"
        );
        assert!(p.keep_polling(us(t, 350)), "extended to 400 µs");
        assert!(!p.keep_polling(us(t, 400)), "ended");
        // Nothing awaited: polling stops at once, inside the window too.
        let mut p = Policy::default();
        p.begin(t, W);
        p.end(t, us(t, 50), W);
        assert!(!p.keep_polling(us(t, 60)));
    }

    #[test]
    fn slow_replies_stop_polling_and_quick_ones_resume_it() {
        let t = Instant::now();
        let mut p = Policy::default();
        for _ in 0..32 - MIN_HITS + 1 {
            p.begin(t, W);
            p.end(t, us(t, 1000), W); // misses
        }
        assert!(!p.enabled());
        let later = us(t, 2000); // the windows opened before have ended
        assert!(!p.begin(later, W), "no window while replies are slow");
        assert!(!p.keep_polling(later));
        p.end(later, us(later, 100), W); // a quick reply, timed without polling
        for _ in 0..MIN_HITS {
            p.begin(t, W);
            p.end(t, us(t, 100), W);
        }
        assert!(p.enabled());
        let last = us(t, 5000);
        assert!(!p.keep_polling(last), "nothing awaited");
        assert!(p.begin(last, W), "a window opens again");
    }

    #[test]
    fn a_zero_window_is_not_counted() {
        let before = POLICY.with(|p| p.borrow().history);
        drop(Awaiting::begin(Duration::ZERO));
        assert_eq!(POLICY.with(|p| p.borrow().history), before);
        assert_eq!(POLICY.with(|p| p.borrow().awaiting), 0);
        assert!(
            POLICY.with(|p| p.borrow().until.is_none()),
            "no window opened"
        );
    }
}
