//! Where MySQL work runs: mysql_async needs a tokio runtime (its sockets are tokio's), so the
//! engine's statements run on one small runtime thread shared by every MySQL store of the
//! process, and the JS thread awaits each reply through the executor's cross-thread
//! [`oneshot`]. The hop costs a thread wake-up each way (docs/mysql.md): the runtime thread's
//! is saved when it is still awake from the job before ([`spin_between_jobs`]), and for reads
//! the JS thread's by busy polling while the reply is due (`runtime::busy_poll`).
//! Idle connections live on that thread and keep nothing alive; a pending reply keeps the
//! host (Node) running, as its receiver's busy guard does.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::runtime::{Builder, Handle};
use tokio::sync::Notify;

use crate::core::{DatastoreError, Result};
use crate::runtime::busy_poll::Awaiting;
use crate::runtime::executor::{oneshot, start_thread};

/// How long the JS thread's event loop polls for a reply before it sleeps.
const BUSY_POLL: Duration = Duration::from_micros(1000);

/// How long the runtime thread keeps looking for the next job after the last one ended,
/// before it sleeps (see [`spin_between_jobs`]).
const IDLE_SPIN: Duration = Duration::from_micros(100);

/// Jobs spawned by [`hop`] and not finished yet (counted from the spawning thread).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Told when [`IN_FLIGHT`] falls to zero.
static ALL_DONE: Notify = Notify::const_new();

/// The runtime thread's handle, started on first use; `Err` if it could not start.
fn handle() -> Result<&'static Handle> {
    static HANDLE: OnceLock<std::result::Result<Handle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let rt = Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let handle = rt.handle().clone();
            // The thread runs the runtime for the life of the process; it blocks nothing
            // else and holds no handle of Node's loop.
            start_thread("reshuffle-mysql", move || {
                rt.block_on(spin_between_jobs());
            })
            .map_err(|e| e.to_string())?;
            Ok(handle)
        })
        .as_ref()
        .map_err(|e| DatastoreError::backend(format!("cannot start the MySQL thread: {e}")))
}

fn stopped() -> DatastoreError {
    DatastoreError::backend("the MySQL thread stopped before answering")
}

/// The runtime thread's main task: after each moment its last job ends, it stays awake for
/// [`IDLE_SPIN`], yielding to the scheduler (which polls the sockets and the queue of new jobs
/// each time), so that the next job of a sequence finds it running. A job sent to a sleeping
/// thread pays that thread's wake-up first, which on a VM whose idle CPUs halt costs about as
/// much as the server's answer (runtime::busy_poll). It never spins while a job is in flight:
/// then a server on the same machine needs the core.
async fn spin_between_jobs() {
    loop {
        ALL_DONE.notified().await;
        let until = Instant::now() + IDLE_SPIN;
        while IN_FLIGHT.load(Ordering::Acquire) == 0 && Instant::now() < until {
            // The JS thread the last job woke may be waiting for this very CPU (Node confined
            // to one CPU): let it run first. With nothing else ready it returns at once.
            std::thread::yield_now();
            tokio::task::yield_now().await;
        }
    }
}

/// Runs `fut` on the runtime thread and resolves to its output on the caller's executor.
/// Dropping the returned future leaves `fut` running to its end (it owns its connection, and
/// releases what it holds itself).
pub async fn hop<T, F>(fut: F) -> Result<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    let (tx, rx) = oneshot();
    let handle = handle()?;
    IN_FLIGHT.fetch_add(1, Ordering::AcqRel);
    handle.spawn(async move {
        tx.send(fut.await);
        if IN_FLIGHT.fetch_sub(1, Ordering::AcqRel) == 1 {
            ALL_DONE.notify_one();
        }
    });
    rx.await.unwrap_or_else(|| Err(stopped()))
}

/// [`hop`] for a plain read (`get`, `getMany`, `list`, a page): the JS thread's event loop
/// polls for the reply instead of sleeping. Other hops are not polled for: a commit waits for
/// the server's log flush and a lock may wait for another holder, and a JS thread spinning
/// meanwhile takes a core from the server and the runtime thread. Measured on the 2-core
/// machine (`npm run bench -- --only=mysql`, ratios against reshuffle's): polling every hop
/// took get from 1.08× to 1.86× but update from 1.46× to 1.03×; polling plain reads only,
/// get 1.82× and update 1.30×.
pub async fn read_hop<T, F>(fut: F) -> Result<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    let _awaiting = Awaiting::begin(BUSY_POLL);
    hop(fut).await
}

/// Starts `fut` on the runtime thread without waiting for it (a release, a disconnect).
pub fn detach(fut: impl Future<Output = ()> + Send + 'static) {
    if let Ok(h) = handle() {
        h.spawn(fut);
    }
}
