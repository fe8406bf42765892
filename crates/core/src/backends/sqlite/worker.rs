//! The worker thread of a file database: it opens and sets up the database (waiting for
//! other processes as long as needed), hands the JS thread its own connection, then serves
//! what must not run on the JS thread on a second connection:
//! - statements that met another process's lock (`SQLITE_BUSY`) on the JS thread;
//! - with `durability: 'fsync'`, every write: writes queued together commit in one
//!   transaction, so they share one fsync (group commit);
//! - WAL checkpoints (the JS thread's connection never checkpoints: that fsyncs).
//!
//! The thread ends when the [`Worker`] is closed or dropped; it never keeps Node alive (only
//! a pending reply does, through its receiver's busy guard).

use std::path::PathBuf;

use rusqlite::{Transaction, TransactionBehavior};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use super::conn::{open_inline, open_worker, Durability};
use super::ops;
use super::sql::Statements;
use super::stmt::Conn;
use crate::core::{Change, DatastoreError, Result};
use crate::runtime::executor::{oneshot, run_blocking, start_thread, Critical, Executor, Sender};

type Task = Box<dyn FnOnce(&Conn, &Statements) + Send>;

enum Job {
    Write {
        key: String,
        change: Change,
        reply: Sender<Result<()>>,
    },
    Run(Task),
    Checkpoint,
}

/// Handle of the worker thread.
pub struct Worker {
    tx: mpsc::Sender<Job>,
    thread: Option<JoinHandle<()>>,
}

fn stopped() -> DatastoreError {
    DatastoreError::backend("the SQLite worker thread stopped")
}

impl Worker {
    /// Starts the thread, which opens `path`; resolves to the worker and the JS thread's
    /// connection once the database and its table are ready.
    pub async fn start(
        path: PathBuf,
        durability: Durability,
        sql: Arc<Statements>,
    ) -> Result<(Worker, Conn)> {
        let (tx, rx) = mpsc::channel();
        let (opened_tx, opened_rx) = oneshot();
        let critical = Executor::current()
            .map(Executor::critical)
            .unwrap_or_default();
        let thread = start_thread("reshuffle-sqlite", move || {
            let conn = match open_worker(&path, durability, &sql) {
                Ok(c) => c,
                Err(e) => return opened_tx.send(Err(e)),
            };
            let inline = open_inline(&path, durability);
            let ok = inline.is_ok();
            opened_tx.send(inline);
            if ok {
                serve(&conn, &sql, &rx, &critical);
            }
        })
        .map_err(|e| DatastoreError::backend(format!("cannot start a thread: {e}")))?;
        let worker = Worker {
            tx,
            thread: Some(thread),
        };
        let conn = opened_rx.await.unwrap_or_else(|| Err(stopped()))?;
        Ok((worker, conn))
    }

    /// Runs `op` on the worker's connection (which waits out other processes' locks).
    pub async fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Conn, &Statements) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, rx) = oneshot();
        let task: Task = Box::new(move |conn, sql| {
            // Nobody waits any more (the caller's thread ended): do nothing, write nothing.
            if !reply.is_canceled() {
                reply.send(op(conn, sql))
            }
        });
        self.tx.send(Job::Run(task)).map_err(|_| stopped())?;
        rx.await.unwrap_or_else(|| Err(stopped()))
    }

    /// Commits `change` of `key`, together with the writes queued with it.
    pub async fn write(&self, key: &str, change: Change) -> Result<()> {
        let (reply, rx) = oneshot();
        self.tx
            .send(Job::Write {
                key: key.to_owned(),
                change,
                reply,
            })
            .map_err(|_| stopped())?;
        rx.await.unwrap_or_else(|| Err(stopped()))
    }

    /// Asks for a passive WAL checkpoint; nobody waits for it.
    pub fn checkpoint(&self) {
        let _ = self.tx.send(Job::Checkpoint);
    }

    /// Stops the thread once the queued jobs are done, and waits until its connection is
    /// closed (the last connection of this process checkpoints the WAL).
    pub async fn close(mut self) {
        let thread = self.thread.take();
        drop(self);
        if let Some(t) = thread {
            run_blocking(move || {
                let _ = t.join();
            })
            .await;
        }
    }
}

/// Serves jobs until the [`Worker`] is gone. Each batch is [`Critical`] work of the thread that
/// owns the store: if that thread ends, the batch in progress finishes first, and no later one
/// starts (their callers are gone; nothing of theirs is written).
fn serve(conn: &Conn, sql: &Statements, rx: &mpsc::Receiver<Job>, critical: &Critical) {
    while let Ok(first) = rx.recv() {
        let Some(_critical) = critical.enter() else {
            return;
        };
        let mut writes = Vec::new();
        for job in std::iter::once(first).chain(rx.try_iter()) {
            match job {
                Job::Write { reply, .. } if reply.is_canceled() => {}
                Job::Write { key, change, reply } => writes.push((key, change, reply)),
                Job::Run(task) => {
                    commit(conn, sql, std::mem::take(&mut writes));
                    task(conn, sql);
                }
                Job::Checkpoint => {
                    commit(conn, sql, std::mem::take(&mut writes));
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            }
        }
        commit(conn, sql, writes);
    }
}

/// Commits `writes` in one transaction (one fsync), then answers each.
fn commit(conn: &Conn, sql: &Statements, writes: Vec<(String, Change, Sender<Result<()>>)>) {
    if let [(key, change, _)] = writes.as_slice() {
        let result = ops::apply(conn, sql, key, change).map_err(|e| sql.error(e));
        if let Some((_, _, reply)) = writes.into_iter().next() {
            reply.send(result);
        }
        return;
    }
    if writes.is_empty() {
        return;
    }
    // A guard that rolls back when dropped uncommitted (a panic included), as rusqlite's
    // transactions do; `new_unchecked` because the connection is shared with the prepared
    // statements of `ops` (no `&mut`), and nothing else runs on it meanwhile.
    let tx = match Transaction::new_unchecked(conn, TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let e = sql.error(e);
            for (_, _, reply) in writes {
                reply.send(Err(e.clone()));
            }
            return;
        }
    };
    let results: Vec<Result<()>> = writes
        .iter()
        .map(|(key, change, _)| ops::apply(conn, sql, key, change).map_err(|e| sql.error(e)))
        .collect();
    match tx.commit() {
        Ok(()) => {
            for ((_, _, reply), result) in writes.into_iter().zip(results) {
                reply.send(result);
            }
        }
        Err(e) => {
            // Rolled back when the failed commit dropped the transaction.
            let e = sql.error(e);
            for (_, _, reply) in writes {
                reply.send(Err(e.clone()));
            }
        }
    }
}
