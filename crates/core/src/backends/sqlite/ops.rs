//! The statements of the backend as plain functions of a connection, so that the JS thread's
//! connection and the worker's run exactly the same code.

use super::sql::{prefix_upper_bound, Statements, TextBytes};
use super::stmt::{Conn, Query};
use crate::core::{Change, Write};

/// The committed value of `key`.
pub fn read(conn: &Conn, sql: &Statements, key: &str) -> rusqlite::Result<Option<String>> {
    read_with(conn, sql, key, |v| v.map(str::to_owned))
}

/// Hands `read` the committed value of `key`, borrowed from SQLite (no copy).
pub fn read_with<R>(
    conn: &Conn,
    sql: &Statements,
    key: &str,
    read: impl FnOnce(Option<&str>) -> R,
) -> rusqlite::Result<R> {
    let mut stmt = conn.start(sql, Query::Get, &[key.as_bytes()])?;
    match stmt.step()? {
        true => stmt.with_value(0, read),
        false => Ok(read(None)),
    }
}

/// Keys starting with `prefix`, in UTF-8 byte order: a range scan of the primary key.
pub fn list(conn: &Conn, sql: &Statements, prefix: &str) -> rusqlite::Result<Vec<String>> {
    let collect = |rows: rusqlite::Rows<'_>| -> rusqlite::Result<Vec<String>> {
        rows.mapped(|row| row.get::<_, String>(0))
            .collect::<rusqlite::Result<Vec<String>>>()
    };
    let keys = match prefix_upper_bound(prefix.as_bytes()) {
        None => {
            let mut stmt = conn.prepare_cached(&sql.list_all)?;
            let rows = stmt.query([])?;
            collect(rows)?
        }
        Some(upper) => {
            let mut stmt = conn.prepare_cached(&sql.list_range)?;
            let rows = stmt.query((prefix, TextBytes(&upper)))?;
            collect(rows)?
        }
    };
    // An empty prefix lists everything; otherwise the range already holds only matches.
    Ok(keys)
}

/// Applies `change` in one autocommit statement (or as part of the caller's transaction).
pub fn apply(conn: &Conn, sql: &Statements, key: &str, change: &Change) -> rusqlite::Result<()> {
    change
        .as_write()
        .map_or(Ok(()), |w| write(conn, sql, key, w))
}

/// Applies `write` in one autocommit statement (or as part of the caller's transaction).
pub fn write(conn: &Conn, sql: &Statements, key: &str, write: Write<'_>) -> rusqlite::Result<()> {
    match write {
        Write::Put(json) => conn
            .start(sql, Query::Put, &[key.as_bytes(), json.as_bytes()])?
            .execute(),
        Write::Delete => conn.start(sql, Query::Delete, &[key.as_bytes()])?.execute(),
    }
}
