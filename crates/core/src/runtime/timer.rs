//! Deadlines for waiting operations (the `lockTimeout` option), without a thread per wait.
//!
//! One timer thread per process, started on first use, sleeps until the earliest registered
//! deadline and wakes the tasks whose deadline passed; their wakers queue them on their
//! executor and, from this thread, ask the JS thread to drain (see `executor`).
//!
//! A registered deadline keeps the host alive (it holds a [`BusyGuard`]) until it fires or is
//! dropped: the wait it bounds then ends with an error the caller sees, instead of the process
//! exiting silently with the operation lost — e.g. an async updater that awaits an operation
//! on its own key would otherwise leave nothing alive and Node would quit mid-update. This
//! keeps Node alive for at most the limit: after it, nothing of the store is pending on a
//! timer, so a store left with only an abandoned updater (and no timed waiter) never holds the
//! process. Without a `lockTimeout` nothing registers here.
//!
//! Only waits that are actually pending register (an uncontended lock never reads the clock).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::executor::BusyGuard;

#[derive(Default)]
struct State {
    /// Pending deadlines, earliest first; the `u64` makes equal instants distinct.
    entries: BTreeMap<(Instant, u64), Waker>,
    next_id: u64,
    thread_started: bool,
}

struct Timer {
    state: Mutex<State>,
    changed: Condvar,
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<Timer> = OnceLock::new();
    TIMER.get_or_init(|| Timer {
        state: Mutex::new(State::default()),
        changed: Condvar::new(),
    })
}

impl Timer {
    fn run(&self) {
        let mut state = self.state.lock();
        loop {
            let now = Instant::now();
            let mut due = Vec::new();
            while let Some(entry) = state.entries.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                due.push(entry.remove());
            }
            if !due.is_empty() {
                drop(state);
                due.into_iter().for_each(Waker::wake);
                state = self.state.lock();
                continue;
            }
            match state.entries.keys().next().map(|k| k.0) {
                Some(at) => {
                    self.changed.wait_until(&mut state, at);
                }
                None => self.changed.wait(&mut state),
            }
        }
    }
}

/// Resolves once `deadline` has passed. Dropping it unregisters it. Poll and drop it on the
/// executor's thread (it holds a [`BusyGuard`] while registered).
pub struct Sleep {
    deadline: Instant,
    id: Option<u64>,
    _busy: Option<BusyGuard>,
    keep_alive: bool,
}

impl Sleep {
    pub fn until(deadline: Instant) -> Self {
        Sleep {
            deadline,
            id: None,
            _busy: None,
            keep_alive: true,
        }
    }

    /// A sleep that does not keep the host alive (housekeeping such as closing idle
    /// connections: if nothing else runs, the process may exit before it fires).
    pub fn background(deadline: Instant) -> Self {
        let mut sleep = Sleep::until(deadline);
        sleep.keep_alive = false;
        sleep
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            self._busy = None;
            return Poll::Ready(());
        }
        if self._busy.is_none() && self.keep_alive {
            self._busy = Some(BusyGuard::new());
        }
        let t = timer();
        let mut state = t.state.lock();
        let id = match self.id {
            Some(id) => id,
            None => {
                let id = state.next_id;
                state.next_id += 1;
                self.id = Some(id);
                id
            }
        };
        let first_before = state.entries.keys().next().map(|k| k.0);
        state
            .entries
            .insert((self.deadline, id), cx.waker().clone());
        if !state.thread_started {
            let spawned = std::thread::Builder::new()
                .name("datastore-timer".into())
                .spawn(|| timer().run());
            // Without the thread deadlines cannot fire; waits then last as they would without
            // a `lockTimeout`, which is the documented default.
            state.thread_started = spawned.is_ok();
        }
        if first_before.is_none_or(|f| self.deadline < f) {
            t.changed.notify_one();
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            timer().state.lock().entries.remove(&(self.deadline, id));
        }
    }
}

/// The wait of [`with_timeout`] or [`with_deadline`] outlasted its limit.
#[derive(Debug, PartialEq, Eq)]
pub struct Elapsed;

/// When a [`WithTimeout`] gives up.
enum Limit {
    /// This long after the wrapped future was first pending.
    After(Duration),
    /// At this instant; `None`: never.
    At(Option<Instant>),
}

/// Runs `fut` until it completes or, once it has been pending, `limit` passes (measured from
/// its first pending poll); then `fut` is dropped (for a lock wait: it leaves the queue).
pub fn with_timeout<F: Future + Unpin>(fut: F, limit: Duration) -> WithTimeout<F> {
    WithTimeout {
        fut,
        limit: Limit::After(limit),
        sleep: None,
    }
}

/// Runs `fut` until it completes or `deadline` passes (`None`: no limit); then `fut` is
/// dropped. A future that is ready when first polled completes even after the deadline.
pub fn with_deadline<F: Future + Unpin>(fut: F, deadline: Option<Instant>) -> WithTimeout<F> {
    WithTimeout {
        fut,
        limit: Limit::At(deadline),
        sleep: None,
    }
}

pub struct WithTimeout<F> {
    fut: F,
    limit: Limit,
    sleep: Option<Sleep>,
}

impl<F: Future + Unpin> Future for WithTimeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Poll::Ready(v) = Pin::new(&mut this.fut).poll(cx) {
            this.sleep = None;
            return Poll::Ready(Ok(v));
        }
        if this.sleep.is_none() {
            let at = match this.limit {
                Limit::After(limit) => Instant::now().checked_add(limit),
                Limit::At(at) => at,
            };
            match at {
                Some(at) => this.sleep = Some(Sleep::until(at)),
                None => return Poll::Pending, // no limit: only `fut` can end the wait
            }
        }
        match this.sleep.as_mut().map(|s| Pin::new(s).poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Err(Elapsed)),
            _ => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::executor::block_on;
    use std::future::pending;

    #[test]
    fn sleeps_fire_in_deadline_order_and_dropped_ones_do_not_count() {
        let start = Instant::now();
        block_on(async move {
            let dropped = Sleep::until(Instant::now() + Duration::from_secs(3600));
            let mut dropped = Box::pin(dropped);
            // Register it, then drop it: the timer must not wait for it.
            let waker = Waker::noop();
            assert!(dropped
                .as_mut()
                .poll(&mut Context::from_waker(waker))
                .is_pending());
            drop(dropped);
            Sleep::until(Instant::now() + Duration::from_millis(20)).await;
        });
        assert!(start.elapsed() >= Duration::from_millis(20));
        let far = Instant::now() + Duration::from_secs(1800);
        let leaked = timer().state.lock().entries.keys().any(|k| k.0 > far);
        assert!(!leaked, "a dropped sleep leaves the timer");
    }

    #[test]
    fn with_timeout_gives_up_on_a_wait_that_never_ends_and_passes_ready_values() {
        let out = block_on(async {
            let a = with_timeout(Box::pin(pending::<()>()), Duration::from_millis(10)).await;
            let b = with_timeout(Box::pin(async { 7 }), Duration::from_millis(10)).await;
            (a, b)
        });
        assert_eq!(out, (Err(Elapsed), Ok(7)));
    }
}
