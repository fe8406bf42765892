//! Where PostgreSQL work runs: on the store's executor (the JS thread), with the sessions'
//! sockets watched by that thread's reactor. Idle sessions keep nothing alive; an operation in
//! flight holds a [`BusyGuard`], which keeps the host (Node) running until it ends. A statement
//! whose reply should come soon runs inside [`reply`], so that the host's loop polls for it
//! (`core::busy_poll`); waits for another session's lock do not.

use std::future::Future;
use std::time::Duration;

use crate::runtime::busy_poll::Awaiting;
use crate::runtime::executor::{BusyGuard, Executor};

/// Awaits `fut`, a statement expected to be answered soon, with the loop polling for its reply
/// for up to `busy_poll`.
pub async fn reply<T>(busy_poll: Duration, fut: impl Future<Output = T>) -> T {
    let _awaiting = Awaiting::begin(busy_poll);
    fut.await
}

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
