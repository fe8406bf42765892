//! Where PostgreSQL work runs: on the store's executor (the JS thread), with the sessions'
//! sockets watched by that thread's reactor. Idle sessions keep nothing alive; an operation in
//! flight holds a [`BusyGuard`], which keeps the host (Node) running until it ends.

use std::future::Future;

use crate::core::executor::{BusyGuard, Executor};

/// Runs `fut` on this thread's executor, keeping the host alive until it ends.
pub async fn run<T>(fut: impl Future<Output = T>) -> T {
    let _busy = BusyGuard::new();
    fut.await
}

/// Starts `fut` without waiting for it: its first poll runs now (a statement it sends is queued
/// behind those sent before). It too keeps the host alive.
pub fn detach(fut: impl Future<Output = ()> + 'static) {
    if let Some(exec) = Executor::current() {
        exec.start(run(fut));
    }
}
