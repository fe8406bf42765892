//! A single-threaded task executor owned by the thread that calls the store (the JS thread).
//!
//! Store operations are futures. Most of them (memory, a file append, a SQLite statement)
//! finish on their first poll, so [`Executor::spawn`] polls inline and the caller's promise
//! settles without any thread hop. A future that waits — for a key's FIFO turn, for a JS
//! updater's promise, for another process's lock, for the network — is parked and polled again
//! when its waker fires:
//! - a wake on the owner thread only queues the task; every entry from JS ends with
//!   [`Executor::drain`], which polls what is queued;
//! - a wake from another thread queues the task and calls the `notify` hook once, which must
//!   arrange a `drain` on the owner thread (the binding uses one threadsafe function per thread).
//!
//! Work running on other threads holds a [`BusyGuard`]; the `on_busy` hook hears when the count
//! leaves and returns to zero, so an idle store never keeps the process alive.
//!
//! When the thread's host ends (a worker thread terminated, the process exiting),
//! [`Executor::shut_down`] drops every task: what they hold (key locks, files, connections) is
//! released, and what they had not finished writes nothing. Work on other threads that must
//! not be cut off half-way once it started (renaming a compacted file, committing a write)
//! runs as [`Critical`] work: the shutdown waits for it to end, and refuses to start more.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, ThreadId};

use parking_lot::Mutex;

type Task = Pin<Box<dyn Future<Output = ()>>>;

enum Slot {
    Free { next_free: usize },
    Parked(Task),
    Running,
}

struct SlotEntry {
    generation: u32,
    slot: Slot,
    /// The waker of the task in this slot, made on its first poll.
    waker: Option<Waker>,
}

/// Task ids queued for polling; shared with wakers on any thread.
struct ReadyQueue {
    ids: Mutex<Vec<(usize, u32)>>,
    owner: ThreadId,
    notify: Box<dyn Fn() + Send + Sync>,
    notified: AtomicBool,
}

struct TaskWaker {
    id: usize,
    generation: u32,
    queue: Arc<ReadyQueue>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.queue.ids.lock().push((self.id, self.generation));
        if thread::current().id() != self.queue.owner
            && !self.queue.notified.swap(true, Ordering::AcqRel)
        {
            (self.queue.notify)();
        }
    }
}

/// The executor of one thread. See the module docs.
pub struct Executor {
    slots: RefCell<Vec<SlotEntry>>,
    free_head: Cell<usize>,
    queue: Arc<ReadyQueue>,
    draining: Cell<bool>,
    busy: Cell<usize>,
    on_busy: Box<dyn Fn(bool)>,
    critical: Critical,
    /// Set by [`Executor::shut_down`]: new tasks are dropped at once.
    ended: Cell<bool>,
}

const NO_FREE: usize = usize::MAX;

thread_local! {
    // Leaked on purpose: tasks may hold host resources that must not be dropped after the host
    // (the JS environment) is gone, which is when thread-local destructors run.
    static CURRENT: Cell<Option<&'static Executor>> = const { Cell::new(None) };
}

impl Executor {
    /// Creates the executor of the calling thread and installs it as [`Executor::current`].
    /// `notify` is called from other threads; `on_busy` on this thread.
    pub fn install(
        notify: impl Fn() + Send + Sync + 'static,
        on_busy: impl Fn(bool) + 'static,
    ) -> &'static Executor {
        let exec: &'static Executor = Box::leak(Box::new(Executor {
            slots: RefCell::new(Vec::new()),
            free_head: Cell::new(NO_FREE),
            queue: Arc::new(ReadyQueue {
                ids: Mutex::new(Vec::new()),
                owner: thread::current().id(),
                notify: Box::new(notify),
                notified: AtomicBool::new(false),
            }),
            draining: Cell::new(false),
            busy: Cell::new(0),
            on_busy: Box::new(on_busy),
            critical: Critical::default(),
            ended: Cell::new(false),
        }));
        CURRENT.with(|c| c.set(Some(exec)));
        exec
    }

    /// The executor installed on this thread, if any.
    pub fn current() -> Option<&'static Executor> {
        CURRENT.with(|c| c.get())
    }

    /// Starts `fut`, polling it once right away, then drains whatever became ready.
    pub fn spawn(&self, fut: impl Future<Output = ()> + 'static) {
        if self.ended.get() {
            return;
        }
        let (id, generation) = self.insert(Box::pin(fut));
        if let Some(panic) = self.poll_task(id, generation) {
            std::panic::resume_unwind(panic);
        }
        self.drain();
    }

    /// Starts `fut`, polling it once right away (so what it sends is sent now, in order), but
    /// leaves the tasks it wakes to the next drain: safe to call from inside another task.
    pub fn start(&self, fut: impl Future<Output = ()> + 'static) {
        if self.ended.get() {
            return;
        }
        let (id, generation) = self.insert(Box::pin(fut));
        if let Some(panic) = self.poll_task(id, generation) {
            std::panic::resume_unwind(panic);
        }
    }

    /// Runs `fut` like [`Executor::spawn`]. If it finished by the time `spawn` returns, its output
    /// is returned at once (the common case: no promise, no allocation beyond the task);
    /// otherwise [`Later`] lets the caller choose what happens with the output when it comes.
    pub fn run<T: 'static>(&self, fut: impl Future<Output = T> + 'static) -> Outcome<T> {
        // Fast path: one poll with a no-op waker. A future that is not ready has registered that
        // waker somewhere, so it is polled again at once below, with its real one; every leaf
        // future here re-registers on each poll, so no wake-up is lost.
        let mut fut = Box::pin(fut);
        if let Poll::Ready(v) = fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            if !self.queue.ids.lock().is_empty() {
                self.drain(); // it released a key that others wait for
            }
            return Outcome::Ready(v);
        }
        let shared: Rc<RefCell<LaterState<T>>> = Rc::new(RefCell::new(LaterState::Waiting));
        let task_side = shared.clone();
        self.spawn(async move {
            let value = fut.await;
            let mut state = task_side.borrow_mut();
            match std::mem::replace(&mut *state, LaterState::Taken) {
                LaterState::Then(f) => {
                    drop(state);
                    f(value)
                }
                _ => *state = LaterState::Done(value),
            }
        });
        let done = matches!(*shared.borrow(), LaterState::Done(_));
        if done {
            if let LaterState::Done(v) =
                std::mem::replace(&mut *shared.borrow_mut(), LaterState::Taken)
            {
                return Outcome::Ready(v);
            }
        }
        Outcome::Later(Later { shared })
    }

    /// Polls every queued task until none is ready. Re-entrant calls return at once: the
    /// outermost call finishes the work.
    pub fn drain(&self) {
        if self.draining.replace(true) {
            return;
        }
        // Cleared however this ends, a task's panic unwinding through included.
        struct Draining<'a>(&'a Cell<bool>);
        impl Drop for Draining<'_> {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        let _draining = Draining(&self.draining);
        loop {
            self.queue.notified.store(false, Ordering::Release);
            let batch = std::mem::take(&mut *self.queue.ids.lock());
            if batch.is_empty() {
                break;
            }
            for (i, &(id, generation)) in batch.iter().enumerate() {
                if let Some(panic) = self.poll_task(id, generation) {
                    // The rest of the batch stays queued for the next drain.
                    self.queue.ids.lock().extend_from_slice(&batch[i + 1..]);
                    std::panic::resume_unwind(panic);
                }
            }
        }
    }

    /// The host of this thread is ending: waits for [`Critical`] work in progress, refuses
    /// more, then drops every task (see the module docs). Tasks started from now on are dropped
    /// at once. Call on the executor's thread, outside any poll.
    pub fn shut_down(&self) {
        self.ended.set(true);
        self.critical.close_and_wait();
        self.queue.ids.lock().clear();
        // Taken out first: dropping a task may wake or start others, which touch the slots.
        let slots = std::mem::take(&mut *self.slots.borrow_mut());
        self.free_head.set(NO_FREE);
        drop(slots);
        self.queue.ids.lock().clear();
    }

    /// Whether [`Executor::shut_down`] has run: no task runs or starts any more.
    pub fn has_ended(&self) -> bool {
        self.ended.get()
    }

    /// The handle through which other threads run [`Critical`] work for this thread's tasks.
    pub fn critical(&self) -> Critical {
        self.critical.clone()
    }

    /// Whether work on other threads keeps the host alive right now (see [`BusyGuard`]).
    pub fn is_busy(&self) -> bool {
        self.busy.get() > 0
    }

    /// Number of tasks not finished yet.
    pub fn pending_tasks(&self) -> usize {
        self.slots
            .borrow()
            .iter()
            .filter(|e| !matches!(e.slot, Slot::Free { .. }))
            .count()
    }

    fn insert(&self, task: Task) -> (usize, u32) {
        let mut slots = self.slots.borrow_mut();
        let head = self.free_head.get();
        if head == NO_FREE {
            slots.push(SlotEntry {
                generation: 0,
                slot: Slot::Parked(task),
                waker: None,
            });
            (slots.len() - 1, 0)
        } else {
            let entry = &mut slots[head];
            if let Slot::Free { next_free } = entry.slot {
                self.free_head.set(next_free);
            }
            entry.generation = entry.generation.wrapping_add(1);
            entry.slot = Slot::Parked(task);
            entry.waker = None;
            (head, entry.generation)
        }
    }

    /// Polls one task; returns its panic, if it panicked (the task is gone then).
    fn poll_task(&self, id: usize, generation: u32) -> Option<Box<dyn std::any::Any + Send>> {
        // Take the task out so that it may spawn or wake others while it runs.
        let (mut task, waker) = {
            let mut slots = self.slots.borrow_mut();
            let entry = slots.get_mut(id)?;
            if entry.generation != generation || !matches!(entry.slot, Slot::Parked(_)) {
                return None; // a stale wake, or already queued twice
            }
            let waker = entry
                .waker
                .get_or_insert_with(|| {
                    Waker::from(Arc::new(TaskWaker {
                        id,
                        generation,
                        queue: self.queue.clone(),
                    }))
                })
                .clone();
            match std::mem::replace(&mut entry.slot, Slot::Running) {
                Slot::Parked(task) => (task, waker),
                _ => return None,
            }
        };
        // A panicking task ends (it is dropped, its slot freed) and the panic goes on to the
        // caller, leaving the executor usable (see `drain`). The binding wraps operations so
        // that their panics become their errors before they get here.
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            task.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_ready()
        }));
        let done = *polled.as_ref().unwrap_or(&true);
        let mut slots = self.slots.borrow_mut();
        if done {
            drop(slots);
            drop(task); // may run drops that touch the executor
            let mut slots = self.slots.borrow_mut();
            slots[id].slot = Slot::Free {
                next_free: self.free_head.get(),
            };
            slots[id].waker = None;
            self.free_head.set(id);
        } else {
            slots[id].slot = Slot::Parked(task);
        }
        polled.err()
    }

    fn add_busy(&self, delta: isize) {
        let before = self.busy.get();
        let after = before.saturating_add_signed(delta);
        self.busy.set(after);
        if before == 0 && after > 0 {
            (self.on_busy)(true);
        } else if before > 0 && after == 0 {
            (self.on_busy)(false);
        }
    }
}

enum LaterState<T> {
    Waiting,
    Done(T),
    Then(Box<dyn FnOnce(T)>),
    Taken,
}

/// What [`Executor::run`] returns.
pub enum Outcome<T> {
    Ready(T),
    Later(Later<T>),
}

/// An operation still running; [`Later::then`] receives its output on the executor's thread.
pub struct Later<T> {
    shared: Rc<RefCell<LaterState<T>>>,
}

impl<T> Later<T> {
    pub fn then(self, f: impl FnOnce(T) + 'static) {
        let mut state = self.shared.borrow_mut();
        match std::mem::replace(&mut *state, LaterState::Taken) {
            LaterState::Done(v) => {
                drop(state);
                f(v)
            }
            _ => *state = LaterState::Then(Box::new(f)),
        }
    }
}

/// Held while work runs on another thread on behalf of a task of this thread's executor; keeps
/// the host alive (`on_busy(true)`) until every guard is dropped. Create and drop it on the
/// executor's thread.
pub struct BusyGuard {
    exec: Option<&'static Executor>,
}

impl BusyGuard {
    pub fn new() -> Self {
        let exec = Executor::current();
        if let Some(e) = &exec {
            e.add_busy(1);
        }
        BusyGuard { exec }
    }
}

impl Default for BusyGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        if let Some(e) = &self.exec {
            e.add_busy(-1);
        }
    }
}

/// A one-shot channel from any thread to a task of the executor's thread.
pub fn oneshot<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Mutex::new(OneshotState {
        value: None,
        waker: None,
        sender_gone: false,
        receiver_gone: false,
    }));
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver {
            shared,
            _busy: BusyGuard::new(),
        },
    )
}

struct OneshotState<T> {
    value: Option<T>,
    waker: Option<Waker>,
    sender_gone: bool,
    receiver_gone: bool,
}

/// Sending half of [`oneshot`]; `Send` when `T` is.
pub struct Sender<T> {
    shared: Arc<Mutex<OneshotState<T>>>,
}

impl<T> Sender<T> {
    /// Whether the receiver is gone: nobody waits for the value any more (its task was
    /// dropped), so work whose only purpose is this value need not be done.
    pub fn is_canceled(&self) -> bool {
        self.shared.lock().receiver_gone
    }

    pub fn send(self, value: T) {
        let waker = {
            let mut s = self.shared.lock();
            s.value = Some(value);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut s = self.shared.lock();
            s.sender_gone = true;
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Receiving half of [`oneshot`]: resolves to `None` if the sender was dropped unsent.
/// Keeps the executor busy (see [`BusyGuard`]) until dropped.
pub struct Receiver<T> {
    shared: Arc<Mutex<OneshotState<T>>>,
    _busy: BusyGuard,
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shared.lock().receiver_gone = true;
    }
}

impl<T> Future for Receiver<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut s = self.shared.lock();
        if let Some(v) = s.value.take() {
            return Poll::Ready(Some(v));
        }
        if s.sender_gone {
            return Poll::Ready(None);
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Starts a thread named `name` running `f`. Failing to start one (the system is out of
/// threads or memory) is an error to report, never a panic.
pub fn start_thread(
    name: &str,
    f: impl FnOnce() + Send + 'static,
) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new().name(name.to_owned()).spawn(f)
}

/// Runs `f` on a new thread and resolves to its result; for work that blocks (fsync, waiting
/// for another process's lock). `None` if the thread could not be started or ended without a
/// result.
pub async fn run_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = oneshot();
    start_thread("reshuffle-blocking", move || tx.send(f())).ok()?;
    rx.await
}

/// [`run_blocking`] for [`Critical`] work: once started, it runs to its end even if the
/// thread that asked for it ends meanwhile. `None` if it could not start (that thread is
/// ending, or no thread could be started): then `f` did not run.
pub async fn run_critical<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let critical = Executor::current()?.critical();
    let (tx, rx) = oneshot();
    start_thread("reshuffle-critical", move || {
        if let Some(_guard) = critical.enter() {
            tx.send(f());
        }
    })
    .ok()?;
    rx.await
}

/// Work on other threads that an executor's shutdown must wait for (see the module docs).
/// Cheap to clone; `Send`.
#[derive(Clone, Default)]
pub struct Critical(Arc<CriticalState>);

#[derive(Default)]
struct CriticalState {
    /// Work in progress, and whether the owner thread is ending.
    state: Mutex<(usize, bool)>,
    idle: parking_lot::Condvar,
}

/// Held while critical work runs; see [`Critical::enter`].
pub struct CriticalGuard(Arc<CriticalState>);

impl Critical {
    /// Starts critical work, or `None` once the owner thread is ending (then the work must not
    /// start: what it would finish is being dropped).
    pub fn enter(&self) -> Option<CriticalGuard> {
        let mut st = self.0.state.lock();
        if st.1 {
            return None;
        }
        st.0 += 1;
        Some(CriticalGuard(self.0.clone()))
    }

    fn close_and_wait(&self) {
        let mut st = self.0.state.lock();
        st.1 = true;
        while st.0 > 0 {
            self.0.idle.wait(&mut st);
        }
    }
}

impl Drop for CriticalGuard {
    fn drop(&mut self) {
        let mut st = self.0.state.lock();
        st.0 -= 1;
        if st.0 == 0 {
            self.0.idle.notify_all();
        }
    }
}

/// Test support: runs the executor of this thread until `fut` completes.
#[cfg(test)]
pub fn block_on<T: 'static>(fut: impl Future<Output = T> + 'static) -> T {
    use std::sync::Condvar;
    let signal = Arc::new((std::sync::Mutex::new(false), Condvar::new()));
    let exec = match Executor::current() {
        Some(e) => e,
        None => {
            let s = signal.clone();
            Executor::install(
                move || {
                    let (m, c) = &*s;
                    if let Ok(mut g) = m.lock() {
                        *g = true;
                    }
                    c.notify_all();
                },
                |_| {},
            )
        }
    };
    let out = Rc::new(RefCell::new(None));
    let out2 = out.clone();
    exec.spawn(async move {
        *out2.borrow_mut() = Some(fut.await);
    });
    loop {
        exec.drain();
        if let Some(v) = out.borrow_mut().take() {
            return v;
        }
        // Sockets of this thread have no host event loop here: wait on them instead, briefly,
        // so that wakes from other threads are still seen within a millisecond.
        if let Some(r) = super::reactor::Reactor::started() {
            if !super::reactor::has_host() {
                r.turn(Some(std::time::Duration::from_millis(1)));
                continue;
            }
        }
        let (m, c) = &*signal;
        let g = m.lock().unwrap_or_else(|e| e.into_inner());
        let (mut g, _) = c
            .wait_timeout(g, std::time::Duration::from_millis(5))
            .unwrap_or_else(|e| e.into_inner());
        *g = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_work_wakes_the_owner() {
        let v = block_on(async { run_blocking(|| 40 + 2).await });
        assert_eq!(v, Some(42));
        assert_eq!(Executor::current().map(|e| e.busy.get()), Some(0));
    }

    #[test]
    fn dropped_sender_resolves_none() {
        let v = block_on(async {
            let (tx, rx) = oneshot::<u8>();
            drop(tx);
            rx.await
        });
        assert_eq!(v, None);
    }

    #[test]
    fn run_returns_inline_results_and_defers_the_rest() {
        block_on(async {});
        let exec = Executor::current().unwrap();
        assert!(matches!(exec.run(async { 1 }), Outcome::Ready(1)));
        let (tx, rx) = oneshot::<u8>();
        let Outcome::Later(later) = exec.run(rx) else {
            panic!("a oneshot that was not sent cannot be ready")
        };
        let got = Rc::new(Cell::new(None));
        let g = got.clone();
        later.then(move |v| g.set(v));
        tx.send(9);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.get().is_none() && std::time::Instant::now() < deadline {
            exec.drain();
        }
        assert_eq!(got.get(), Some(9));
    }

    #[test]
    fn slots_are_reused() {
        block_on(async {});
        let exec = Executor::current().unwrap();
        for _ in 0..100 {
            exec.spawn(async {});
        }
        assert_eq!(exec.pending_tasks(), 0);
        assert!(exec.slots.borrow().len() <= 2);
    }
}
