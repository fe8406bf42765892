//! Socket readiness on the executor's thread, so that network I/O (PostgreSQL) runs where the
//! store runs: a round trip costs no thread hop, only the host's event loop noticing the reply.
//!
//! One `mio::Poll` per thread, made on first use. Its own file descriptor becomes readable
//! when any registered socket has an event; the host watches that descriptor (the binding: a
//! libuv poll handle, see [`set_host`]) and calls [`Reactor::turn`], then drains the executor.
//! Without a host (Rust tests) `executor::block_on` turns the reactor while it is idle.
//!
//! Invariants: registrations are edge-triggered, so a direction is marked not ready only after
//! the socket itself said `WouldBlock` ([`Reactor::clear_ready`]); an event that arrives later
//! marks it ready again and wakes the task waiting on it. Everything here stays on one thread.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use mio::{event::Source, Events, Interest, Poll as MioPoll, Token};

/// Which half of a socket an operation waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Read,
    Write,
}

#[derive(Default)]
struct Readiness {
    ready: [Cell<bool>; 2],
    waiting: [RefCell<Option<Waker>>; 2],
}

impl Readiness {
    fn mark(&self, d: Direction) {
        self.ready[d as usize].set(true);
        if let Some(w) = self.waiting[d as usize].borrow_mut().take() {
            w.wake();
        }
    }
}

/// The readiness of this thread's sockets.
pub struct Reactor {
    poll: RefCell<MioPoll>,
    events: RefCell<Events>,
    sockets: RefCell<HashMap<usize, Rc<Readiness>>>,
    next_token: Cell<usize>,
}

type HostWatch = Box<dyn Fn(i32) -> io::Result<()>>;

thread_local! {
    static REACTOR: RefCell<Option<Rc<Reactor>>> = const { RefCell::new(None) };
    static HOST: RefCell<Option<HostWatch>> = const { RefCell::new(None) };
}

/// Installs the host's watcher for this thread: called once with the reactor's file
/// descriptor when the reactor starts (an error fails the start); from then on the host calls
/// [`Reactor::turn`] whenever that descriptor is readable.
pub fn set_host(watch: impl Fn(i32) -> io::Result<()> + 'static) {
    HOST.with(|h| *h.borrow_mut() = Some(Box::new(watch)));
}

/// Whether a host watches this thread's reactor (otherwise `block_on` must turn it).
pub fn has_host() -> bool {
    HOST.with(|h| h.borrow().is_some())
}

impl Reactor {
    /// This thread's reactor, started on first use.
    pub fn current() -> io::Result<Rc<Reactor>> {
        if let Some(r) = REACTOR.with(|r| r.borrow().clone()) {
            return Ok(r);
        }
        // Elsewhere the poller has no descriptor for the host loop to watch.
        #[cfg(not(unix))]
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "network connections need a Unix event loop (Linux or macOS) in this version",
        ));
        let poll = MioPoll::new()?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&poll);
        let reactor = Rc::new(Reactor {
            poll: RefCell::new(poll),
            events: RefCell::new(Events::with_capacity(64)),
            sockets: RefCell::new(HashMap::new()),
            next_token: Cell::new(0),
        });
        HOST.with(|h| match &*h.borrow() {
            Some(watch) => watch(fd),
            None => Ok(()),
        })?;
        REACTOR.with(|r| *r.borrow_mut() = Some(reactor.clone()));
        Ok(reactor)
    }

    /// This thread's reactor if it was started.
    pub fn started() -> Option<Rc<Reactor>> {
        REACTOR.with(|r| r.borrow().clone())
    }

    /// Watches `source` for both directions; returns its token.
    pub fn register(&self, source: &mut (impl Source + ?Sized)) -> io::Result<usize> {
        let token = self.next_token.get();
        self.next_token.set(token.wrapping_add(1));
        self.poll.borrow().registry().register(
            source,
            Token(token),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.sockets
            .borrow_mut()
            .insert(token, Rc::new(Readiness::default()));
        Ok(token)
    }

    pub fn deregister(&self, source: &mut (impl Source + ?Sized), token: usize) {
        let _ = self.poll.borrow().registry().deregister(source);
        self.sockets.borrow_mut().remove(&token);
    }

    /// Ready when the socket may make progress in direction `d`; otherwise remembers the
    /// waker. A socket that is not registered is reported ready (its I/O then fails).
    pub fn poll_ready(&self, token: usize, d: Direction, cx: &mut Context<'_>) -> Poll<()> {
        let Some(r) = self.sockets.borrow().get(&token).cloned() else {
            return Poll::Ready(());
        };
        if r.ready[d as usize].get() {
            return Poll::Ready(());
        }
        *r.waiting[d as usize].borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }

    /// The socket said `WouldBlock` in direction `d`: wait for its next event.
    pub fn clear_ready(&self, token: usize, d: Direction) {
        if let Some(r) = self.sockets.borrow().get(&token) {
            r.ready[d as usize].set(false);
        }
    }

    /// Collects pending events (waiting at most `timeout`; `Some(ZERO)` never waits) and wakes
    /// the tasks waiting on them. Returns how many sockets had events.
    pub fn turn(&self, timeout: Option<Duration>) -> usize {
        let mut marked = Vec::new();
        {
            let mut events = self.events.borrow_mut();
            if self.poll.borrow_mut().poll(&mut events, timeout).is_err() {
                return 0; // EINTR: the host calls again while the descriptor stays readable
            }
            let sockets = self.sockets.borrow();
            for e in events.iter() {
                let Some(r) = sockets.get(&e.token().0) else {
                    continue;
                };
                let failed = e.is_error();
                let read = e.is_readable() || e.is_read_closed() || failed;
                let write = e.is_writable() || e.is_write_closed() || failed;
                marked.push((r.clone(), read, write));
            }
        }
        // Wakers run after the borrows end.
        let n = marked.len();
        for (r, read, write) in marked {
            if read {
                r.mark(Direction::Read);
            }
            if write {
                r.mark(Direction::Write);
            }
        }
        n
    }
}
