//! The tokio runtime that drives PostgreSQL connections, started on first use, and the bridge
//! that hands a result back to the store's executor thread.
//!
//! Idle connections live only on this runtime's threads, which Node does not wait for: only
//! an operation in flight (its [`executor::oneshot`] receiver) keeps the process alive.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Runtime};

use crate::core::executor;
use crate::core::{DatastoreError, Result};

static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();

/// The driver runtime (two worker threads: the work is waiting on sockets).
pub fn runtime() -> Result<&'static Runtime> {
    RUNTIME
        .get_or_init(|| {
            Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("reshuffle-pg")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| DatastoreError::backend(format!("cannot start the PostgreSQL runtime: {e}")))
}

/// Runs `fut` on the driver runtime and resolves, on the calling executor, to its result.
pub async fn run<T: Send + 'static>(
    fut: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    let rt = runtime()?;
    let (tx, rx) = executor::oneshot();
    rt.spawn(async move { tx.send(fut.await) });
    rx.await.unwrap_or_else(|| {
        Err(DatastoreError::backend(
            "a PostgreSQL operation stopped unexpectedly",
        ))
    })
}

/// Starts `fut` on the driver runtime without waiting for it (cleanup from `Drop`).
pub fn detach(fut: impl Future<Output = ()> + Send + 'static) {
    if let Ok(rt) = runtime() {
        rt.spawn(fut);
    }
}
