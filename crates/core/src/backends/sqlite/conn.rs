//! Opening SQLite connections: flags, pragmas and the table.

use std::ffi::c_int;
use std::path::Path;
use std::sync::Once;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::sql::{is_busy, Statements};
use super::stmt::Conn;
use crate::core::{DatastoreError, Result};

/// How far a resolved write has gone (README, Semantics: durability).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// WAL with `synchronous=NORMAL`: a commit is in the operating system when it resolves,
    /// so it survives the process being killed.
    Normal,
    /// WAL with `synchronous=FULL`: a commit is on disk when it resolves.
    Fsync,
}

/// How long the JS thread's connection waits for another connection's lock before the
/// statement is handed to the worker thread.
pub const INLINE_BUSY_TIMEOUT: Duration = Duration::from_millis(5);

/// How long the worker thread waits for another connection's lock before reporting
/// "database is locked". Other processes of this package hold write locks for one short
/// statement, so only a foreign program holding a long transaction gets this far.
pub const WORKER_BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// Turns off SQLite's memory statistics (nothing reads them, and they take a global mutex
/// on every allocation), once, before the first connection opens: SQLite accepts it only
/// before it initializes. Should something else initialize this SQLite first, the call
/// fails and the statistics simply stay on.
fn configure_sqlite() {
    static ONCE: Once = Once::new();
    // SAFETY: SQLITE_CONFIG_MEMSTATUS takes one int. sqlite3_config must not run while
    // another thread uses SQLite: every connection of this crate opens after this call (the
    // `Once` makes concurrent openers wait). After initialization it only reports misuse.
    ONCE.call_once(|| unsafe {
        rusqlite::ffi::sqlite3_config(rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int);
    });
}

/// No `SQLITE_OPEN_URI`: the target is a plain path, even if it starts with `file:`.
fn flags() -> OpenFlags {
    OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
}

fn open_error(path: &Path, e: rusqlite::Error) -> DatastoreError {
    DatastoreError::io(
        path.display(),
        format!("cannot open the SQLite database: {e}"),
    )
}

/// How long the first opening keeps retrying a step that SQLite refuses with `SQLITE_BUSY`
/// without waiting (see [`retry_while_busy`]).
pub const OPEN_BUSY_LIMIT: Duration = Duration::from_secs(30);

/// Runs `step` again while it fails with `SQLITE_BUSY` or `SQLITE_LOCKED`, with back-off from
/// 1 to 50 ms, for at most `limit`. The busy handler does not cover every case: when several
/// processes open a new database at the same instant, switching it to WAL (which needs the
/// exclusive lock) or creating the table can fail at once, without waiting, to avoid a
/// deadlock between connections upgrading their locks. Both steps are idempotent.
pub fn retry_while_busy<T>(
    limit: Duration,
    mut step: impl FnMut() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let start = std::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match step() {
            Err(e) if is_busy(&e) && start.elapsed() + pause < limit => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            r => return r,
        }
    }
}

/// Opens the database at `path` for the worker thread, turns WAL on and creates the table.
/// Runs on a thread: it may wait for other processes' locks, and several processes may be
/// doing the same to a database that did not exist a moment ago.
pub fn open_worker(path: &Path, durability: Durability, sql: &Statements) -> Result<Conn> {
    configure_sqlite();
    let conn = Connection::open_with_flags(path, flags()).map_err(|e| open_error(path, e))?;
    let setup = || -> rusqlite::Result<()> {
        conn.busy_timeout(WORKER_BUSY_TIMEOUT)?;
        // Returns the mode in force; a file system without WAL support keeps its own.
        retry_while_busy(OPEN_BUSY_LIMIT, || {
            conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
        })?;
        set_synchronous(&conn, durability)
    };
    setup().map_err(|e| open_error(path, e))?;
    retry_while_busy(OPEN_BUSY_LIMIT, || create_table(&conn, sql)).map_err(|e| sql.error(e))?;
    Ok(Conn::new(conn))
}

/// Creates the table, or adds `expires_at` to one that lacks it (a table reshuffle or an older
/// version of this package made), and the partial index of expiring rows.
fn create_table(conn: &Connection, sql: &Statements) -> rusqlite::Result<()> {
    conn.execute(&sql.create, [])?;
    let has_expiry = conn.prepare(&sql.has_expiry)?.exists([])?;
    if !has_expiry {
        match conn.execute(&sql.add_expiry, []) {
            // Another process added it meanwhile.
            Err(e) if e.to_string().contains("duplicate column") => {}
            r => {
                r?;
            }
        }
    }
    conn.execute(&sql.expiry_index, [])?;
    Ok(())
}

/// Opens the connection of the JS thread, once [`open_worker`] has set the database up. It
/// waits only briefly for locks, and never checkpoints (the worker does).
pub fn open_inline(path: &Path, durability: Durability) -> Result<Conn> {
    configure_sqlite();
    let conn = Connection::open_with_flags(path, flags()).map_err(|e| open_error(path, e))?;
    let setup = || -> rusqlite::Result<()> {
        conn.busy_timeout(INLINE_BUSY_TIMEOUT)?;
        set_synchronous(&conn, durability)?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        Ok(())
    };
    setup().map_err(|e| open_error(path, e))?;
    Ok(Conn::new(conn))
}

/// A private in-memory database with the table.
pub fn open_memory(sql: &Statements) -> Result<Conn> {
    configure_sqlite();
    let conn = Connection::open_in_memory_with_flags(flags()).map_err(|e| sql.error(e))?;
    create_table(&conn, sql).map_err(|e| sql.error(e))?;
    Ok(Conn::new(conn))
}

fn set_synchronous(conn: &Connection, durability: Durability) -> rusqlite::Result<()> {
    let level = match durability {
        Durability::Normal => "NORMAL",
        Durability::Fsync => "FULL",
    };
    conn.pragma_update(None, "synchronous", level)
}
