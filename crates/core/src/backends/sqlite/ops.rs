//! The statements of the backend as plain functions of a connection, so that the JS thread's
//! connection and the worker's run exactly the same code.

use std::rc::Rc;

use rusqlite::types::ValueRef;
use rusqlite::{Transaction, TransactionBehavior};

use super::sql::{page_index, prefix_upper_bound, with_value_text, Statements, TextBytes};
use super::stmt::{Conn, Query};
use crate::core::expiry;
use crate::core::{Change, KeyList, StoredText, Write};

/// The committed value of `key`.
pub fn read(conn: &Conn, sql: &Statements, key: &str) -> rusqlite::Result<Option<String>> {
    let mut stmt = conn.start(sql, conn.get_query(sql), &[key.as_bytes()])?;
    if !stmt.step()? {
        return Ok(None);
    }
    if let Some(mut large) = stmt.large_value(sql)? {
        return large.read_string().map(Some);
    }
    stmt.with_value(0, |v| v.map(str::to_owned))
}

/// Hands `read` the committed value of `key`: borrowed from SQLite (no copy), or when large
/// as a reader that copies it once into a buffer of `read`'s choosing (see
/// `sql::LARGE_VALUE_BYTES`).
pub fn read_with<R>(
    conn: &Conn,
    sql: &Statements,
    key: &str,
    read: impl FnOnce(Option<StoredText<'_>>) -> R,
) -> rusqlite::Result<R> {
    let mut stmt = conn.start(sql, conn.get_query(sql), &[key.as_bytes()])?;
    if !stmt.step()? {
        return Ok(read(None));
    }
    if let Some(mut large) = stmt.large_value(sql)? {
        return Ok(read(Some(StoredText::Large(&mut large))));
    }
    stmt.with_value(0, |v| read(v.map(StoredText::Borrowed)))
}

/// Keys starting with `prefix`, in UTF-8 byte order, gathered in a [`KeyList`] (no `String`
/// per key).
pub fn list_keys(conn: &Conn, sql: &Statements, prefix: &str) -> rusqlite::Result<KeyList> {
    let mut keys = KeyList::new();
    list_into(conn, sql, prefix, |k| keys.push(k))?;
    Ok(keys)
}

/// Hands `push` each key starting with `prefix`, in UTF-8 byte order, borrowed from SQLite: a
/// range scan of the primary key.
fn list_into(
    conn: &Conn,
    sql: &Statements,
    prefix: &str,
    mut push: impl FnMut(&str),
) -> rusqlite::Result<()> {
    let mut collect = |mut rows: rusqlite::Rows<'_>| -> rusqlite::Result<()> {
        while let Some(row) = rows.next()? {
            match row.get_ref(0)? {
                ValueRef::Text(b) => {
                    push(std::str::from_utf8(b).map_err(|e| rusqlite::Error::Utf8Error(0, e))?)
                }
                // Not text (a table written by something else): converted, or refused, as
                // rusqlite does.
                _ => push(&row.get::<_, String>(0)?),
            }
        }
        Ok(())
    };
    // One read transaction: the check for expiring rows and the list see one snapshot.
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Deferred)?;
    let expiring = conn.prepare_cached(&sql.any_expiring)?.exists([])?;
    match prefix_upper_bound(prefix.as_bytes()) {
        None => {
            let list = if expiring {
                &sql.list_all_live
            } else {
                &sql.list_all
            };
            let mut stmt = conn.prepare_cached(list)?;
            let rows = stmt.query([])?;
            collect(rows)?
        }
        Some(upper) => {
            let list = if expiring {
                &sql.list_range_live
            } else {
                &sql.list_range
            };
            let mut stmt = conn.prepare_cached(list)?;
            let rows = stmt.query((prefix, TextBytes(&upper)))?;
            collect(rows)?
        }
    };
    // An empty prefix lists everything; otherwise the range already holds only matches.
    tx.commit()
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
        Write::PutFor(json, ttl) => {
            let at = expiry::expires_at(ttl).to_string();
            let done = conn
                .start(
                    sql,
                    Query::PutFor,
                    &[key.as_bytes(), json.as_bytes(), at.as_bytes()],
                )?
                .execute();
            done
        }
        Write::Delete => conn.start(sql, Query::Delete, &[key.as_bytes()])?.execute(),
    }
}

/// Applies `changes` to `keys` in one transaction: all or nothing. A transaction guard rolls
/// back whatever did not commit.
pub fn write_many(
    conn: &Conn,
    sql: &Statements,
    keys: &[Rc<str>],
    changes: &[Change],
) -> rusqlite::Result<()> {
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    for (key, change) in keys.iter().zip(changes) {
        apply(conn, sql, key, change)?;
    }
    tx.commit()
}

/// The live values of `keys`, in their order, as one snapshot: each read by the cached
/// statement of `get`, all inside one read transaction (a WAL reader sees the database as it
/// was at its first read). Cheaper than one `IN (…)` statement, which had to be written out
/// and parsed anew for every call (100 keys: 150 → 110 µs a call, docs/sqlite.md).
pub fn read_many(
    conn: &Conn,
    sql: &Statements,
    keys: &[Rc<str>],
) -> rusqlite::Result<Vec<Option<String>>> {
    let tx = (keys.len() > 1)
        .then(|| Transaction::new_unchecked(conn, TransactionBehavior::Deferred))
        .transpose()?;
    let values = keys
        .iter()
        .map(|k| read(conn, sql, k))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if let Some(tx) = tx {
        tx.commit()?;
    }
    Ok(values)
}

/// One page of live entries: up to `limit` keys starting with `prefix`, after `after`. Rows
/// without a value (NULL, written by another program) are left out by the statement, so that
/// the `LIMIT` counts only the rows returned: a short page is the end of a walk.
pub fn page(
    conn: &Conn,
    sql: &Statements,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> rusqlite::Result<Vec<(String, String)>> {
    let upper = prefix_upper_bound(prefix.as_bytes());
    let (from, after_key) = match after {
        Some(a) if a >= prefix => (a, true),
        _ => (prefix, false),
    };
    let mut stmt = conn.prepare_cached(&sql.pages[page_index(after_key, upper.is_some())])?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = match &upper {
        Some(upper) => stmt.query((from, TextBytes(upper), limit))?,
        None => stmt.query((from, limit))?,
    };
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let key: String = row.get(0)?;
        if let Some(value) = with_value_text(row.get_ref(1)?, |v| v.map(str::to_owned))? {
            out.push((key, value));
        }
    }
    Ok(out)
}

/// Deletes the rows whose expiry passed; returns the next expiry (ms since the epoch).
pub fn purge(conn: &Conn, sql: &Statements) -> rusqlite::Result<Option<u64>> {
    conn.execute(&sql.purge, [])?;
    let next: Option<i64> = conn.query_row(&sql.next_expiry, [], |row| row.get(0))?;
    Ok(next.and_then(|n| u64::try_from(n).ok()))
}
