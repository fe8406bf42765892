//! A connection with its hot statements prepared once and held (`SQLITE_PREPARE_PERSISTENT`),
//! instead of being looked up in rusqlite's statement cache on every call.
//!
//! Invariants:
//! - A statement is prepared on first use (an error is returned and the next use tries
//!   again, as with rusqlite's cache) and finalized before its connection closes: [`Conn`]
//!   drops its statements first, and [`Conn::close`] finalizes them before closing.
//! - Each use binds every parameter, steps, then resets the statement and clears its bindings
//!   when the [`Running`] guard drops: no read transaction stays open, and no borrowed
//!   parameter (bound without a copy) is referenced after the call.
//! - Errors are the `rusqlite::Error`s rusqlite itself would return, so messages and busy
//!   detection do not depend on which path ran a statement.

use std::cell::Cell;
use std::ffi::{c_char, c_int, CStr};
use std::ops::Deref;
use std::ptr;

use rusqlite::ffi;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension};

use super::sql::{is_busy, with_value_text, Statements};
use crate::core::{LargeText, Result};

/// The statements held by a [`Conn`].
#[derive(Clone, Copy, Debug)]
pub enum Query {
    /// `?1` = key; one row or none: the value or NULL when it is NULL or large, the `rowid`
    /// (`Statements::get`; read it with [`Running::large_value`] first).
    Get,
    /// `?1` = key; one row with the value, or none (a table without `rowid`).
    GetPlain,
    /// `?1` = key, `?2` = JSON text (no expiry).
    Put,
    /// `?1` = key, `?2` = JSON text, `?3` = when it expires, in ms since the epoch (as text).
    PutFor,
    /// `?1` = key.
    Delete,
}

const QUERIES: usize = 5;

impl Query {
    fn sql(self, sql: &Statements) -> &str {
        match self {
            Query::Get => &sql.get,
            Query::GetPlain => &sql.get_plain,
            Query::Put => &sql.put,
            Query::PutFor => &sql.put_for,
            Query::Delete => &sql.delete,
        }
    }
}

/// Prepared statements of one connection; finalized on drop.
struct Prepared([Cell<*mut ffi::sqlite3_stmt>; QUERIES]);

impl Drop for Prepared {
    fn drop(&mut self) {
        for slot in &self.0 {
            // SAFETY: a non-null slot holds a statement prepared on this connection and not
            // finalized yet; finalizing NULL is a no-op.
            unsafe { ffi::sqlite3_finalize(slot.replace(ptr::null_mut())) };
        }
    }
}

/// A SQLite connection and its held statements. It derefs to the rusqlite connection for
/// everything else (pragmas, transactions, `list`).
pub struct Conn {
    // Declared first: dropped (finalized) before the connection closes.
    prepared: Prepared,
    conn: Connection,
    /// Whether the table has a `rowid` (and so [`Query::Get`] and blob reads), once known.
    has_rowid: Cell<Option<bool>>,
}

// SAFETY: connections are opened with SQLITE_OPEN_NO_MUTEX (multi-thread mode): a connection
// and its statements may move to another thread as long as one thread at a time uses them.
// `Conn` is not `Sync` (it holds `Cell`s), so only its owner's thread can use it.
unsafe impl Send for Conn {}

impl Deref for Conn {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl Conn {
    pub fn new(conn: Connection) -> Self {
        Conn {
            prepared: Prepared(Default::default()),
            conn,
            has_rowid: Cell::new(None),
        }
    }

    /// Finalizes the statements, then closes the connection.
    pub fn close(self) -> rusqlite::Result<()> {
        let Conn { prepared, conn, .. } = self;
        drop(prepared);
        conn.close().map_err(|(_, e)| e)
    }

    /// The statement that reads a value: [`Query::Get`] where the table has a `rowid` (every
    /// table this package or reshuffle creates), else [`Query::GetPlain`].
    pub fn get_query(&self, sql: &Statements) -> Query {
        let has_rowid = match self.has_rowid.get() {
            Some(known) => known,
            None => match self.conn.prepare(&sql.has_rowid) {
                Ok(_) => true,
                // Not known yet: ask again next time.
                Err(e) if is_busy(&e) => return Query::GetPlain,
                Err(_) => false,
            },
        };
        self.has_rowid.set(Some(has_rowid));
        if has_rowid {
            Query::Get
        } else {
            Query::GetPlain
        }
    }

    fn db(&self) -> *mut ffi::sqlite3 {
        // SAFETY: the handle is only used while `self.conn` is alive, and never closed here.
        unsafe { self.conn.handle() }
    }

    /// The error rusqlite reports for `code` on this connection.
    fn error(&self, code: c_int) -> rusqlite::Error {
        let db = self.db();
        // SAFETY: valid handle; SQLite's messages are NUL-terminated static or owned text.
        let msg = unsafe {
            let text = if ffi::sqlite3_errcode(db) == code {
                ffi::sqlite3_errmsg(db)
            } else {
                ffi::sqlite3_errstr(code)
            };
            (!text.is_null()).then(|| CStr::from_ptr(text).to_string_lossy().into_owned())
        };
        rusqlite::Error::SqliteFailure(ffi::Error::new(code), msg)
    }

    /// The statement of `query`, prepared now if needed.
    fn statement(
        &self,
        sql: &Statements,
        query: Query,
    ) -> rusqlite::Result<*mut ffi::sqlite3_stmt> {
        let slot = &self.prepared.0[query as usize];
        if !slot.get().is_null() {
            return Ok(slot.get());
        }
        let text = query.sql(sql);
        let mut stmt = ptr::null_mut();
        // SAFETY: valid handle; `text` outlives the call; the length is that of `text`.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                self.db(),
                text.as_ptr().cast::<c_char>(),
                c_int::try_from(text.len()).unwrap_or(c_int::MAX),
                ffi::SQLITE_PREPARE_PERSISTENT as _,
                &mut stmt,
                ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(self.prepare_error(rc, text));
        }
        slot.set(stmt);
        Ok(stmt)
    }

    /// As rusqlite reports a failed prepare: with the offending SQL and offset when known.
    fn prepare_error(&self, code: c_int, text: &str) -> rusqlite::Error {
        let error = self.error(code);
        // SAFETY: valid handle.
        let offset = unsafe { ffi::sqlite3_error_offset(self.db()) };
        match error {
            rusqlite::Error::SqliteFailure(e, msg)
                if e.code == rusqlite::ErrorCode::Unknown && offset >= 0 =>
            {
                rusqlite::Error::SqlInputError {
                    error: e,
                    msg: msg.unwrap_or_else(|| "error".to_owned()),
                    sql: text.to_owned(),
                    offset,
                }
            }
            e => e,
        }
    }

    /// Binds `params` (as TEXT, without copying them) to `query`'s statement; step it through
    /// the returned guard, which resets the statement when dropped.
    pub fn start<'a>(
        &'a self,
        sql: &Statements,
        query: Query,
        params: &[&'a [u8]],
    ) -> rusqlite::Result<Running<'a>> {
        let stmt = self.statement(sql, query)?;
        let running = Running { conn: self, stmt };
        for (i, p) in params.iter().enumerate() {
            // SAFETY: `stmt` is live; `p` outlives the guard, which clears the bindings
            // before `p` may go away (SQLITE_STATIC: SQLite does not copy it).
            let rc = unsafe {
                ffi::sqlite3_bind_text64(
                    stmt,
                    i as c_int + 1,
                    p.as_ptr().cast::<c_char>(),
                    p.len() as u64,
                    ffi::SQLITE_STATIC(),
                    ffi::SQLITE_UTF8 as u8,
                )
            };
            if rc != ffi::SQLITE_OK {
                return Err(self.error(rc));
            }
        }
        Ok(running)
    }
}

/// A statement in use; reset (and its bindings cleared) on drop.
pub struct Running<'a> {
    conn: &'a Conn,
    stmt: *mut ffi::sqlite3_stmt,
}

impl Running<'_> {
    /// Runs to the next row: `true` if there is one, `false` when done.
    pub fn step(&mut self) -> rusqlite::Result<bool> {
        // SAFETY: live statement with every parameter bound.
        match unsafe { ffi::sqlite3_step(self.stmt) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            rc => Err(self.conn.error(rc)),
        }
    }

    /// Runs a statement that returns no rows.
    pub fn execute(mut self) -> rusqlite::Result<()> {
        match self.step()? {
            false => Ok(()),
            true => Err(rusqlite::Error::ExecuteReturnedResults),
        }
    }

    /// The value of a [`Query::Get`] row when it is large: read it with the returned reader
    /// while this row is current. `None`: read column 0 with [`Running::with_value`].
    pub fn large_value<'s>(
        &'s self,
        sql: &'s Statements,
    ) -> rusqlite::Result<Option<BlobValue<'s>>> {
        // SAFETY: the statement is on a row (the caller's `step` returned `true`); the columns
        // read are in range (checked by the count first).
        let rowid = unsafe {
            let s = self.stmt;
            if ffi::sqlite3_column_count(s) != 2
                || ffi::sqlite3_column_type(s, 0) != ffi::SQLITE_NULL
            {
                return Ok(None);
            }
            ffi::sqlite3_column_int64(s, 1)
        };
        // A NULL value or a large one. Asked on this connection while this statement stands
        // on its row, so within the row's read transaction: the same row, a length or NULL.
        let len: Option<i64> = self
            .conn
            .prepare_cached(&sql.value_length)?
            .query_row([rowid], |row| row.get(0))
            .optional()?
            .flatten();
        Ok(len.map(|len| BlobValue {
            conn: self.conn,
            sql,
            rowid,
            len: usize::try_from(len).unwrap_or(0),
        }))
    }

    /// Hands `read` column `col` of the current row as JSON text (see [`with_value_text`]),
    /// borrowed from SQLite.
    pub fn with_value<R>(
        &self,
        col: c_int,
        read: impl FnOnce(Option<&str>) -> R,
    ) -> rusqlite::Result<R> {
        // SAFETY: the statement is on a row (the caller's `step` returned `true`); the
        // pointers SQLite returns stay valid until the next step, reset or type conversion,
        // none of which can happen while `read` runs (it has no access to the statement).
        let v = unsafe {
            let s = self.stmt;
            match ffi::sqlite3_column_type(s, col) {
                ffi::SQLITE_INTEGER => ValueRef::Integer(ffi::sqlite3_column_int64(s, col)),
                ffi::SQLITE_FLOAT => ValueRef::Real(ffi::sqlite3_column_double(s, col)),
                ffi::SQLITE_TEXT => {
                    ValueRef::Text(self.bytes(col, ffi::sqlite3_column_text(s, col))?)
                }
                ffi::SQLITE_BLOB => {
                    ValueRef::Blob(self.bytes(col, ffi::sqlite3_column_blob(s, col))?)
                }
                _ => ValueRef::Null,
            }
        };
        with_value_text(v, read)
    }

    /// The bytes of column `col` at `p`, just returned by its text or blob accessor.
    ///
    /// # Safety
    /// `p` is what `sqlite3_column_text` or `sqlite3_column_blob` returned for `col` of the
    /// current row, and the row is not stepped or reset while the bytes are used.
    unsafe fn bytes<T>(&self, col: c_int, p: *const T) -> rusqlite::Result<&[u8]> {
        // SAFETY: a statement with a current row; `col` is in range (the caller's contract).
        let len =
            usize::try_from(unsafe { ffi::sqlite3_column_bytes(self.stmt, col) }).unwrap_or(0);
        if len == 0 {
            return Ok(&[]);
        }
        if p.is_null() {
            return Err(self.conn.error(ffi::SQLITE_NOMEM));
        }
        // SAFETY: SQLite reported `len` bytes at `p`, valid until the row changes (the
        // caller's contract).
        Ok(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) })
    }
}

/// A large value read with SQLite's blob reader straight into the caller's buffer, by the
/// `rowid` its row gave. It borrows that row's [`Running`] statement, which keeps the read
/// transaction open: the blob read sees the same snapshot as the row, so a `rowid` reused by
/// another connection's delete and insert in between cannot be read by mistake.
pub struct BlobValue<'a> {
    conn: &'a Conn,
    sql: &'a Statements,
    rowid: i64,
    len: usize,
}

impl BlobValue<'_> {
    /// Appends the value to `buf`; `Ok(true)` when it is all ASCII. Not UTF-8: an error, and
    /// `buf` is left as it was.
    pub fn read_raw(&mut self, buf: &mut Vec<u8>) -> rusqlite::Result<bool> {
        let mut blob = ptr::null_mut();
        // SAFETY: valid handle; the names are NUL-terminated and outlive the call. On error
        // `blob` stays or becomes NULL, which `sqlite3_blob_close` accepts.
        let rc = unsafe {
            ffi::sqlite3_blob_open(
                self.conn.db(),
                self.sql.blob_db.as_ptr(),
                self.sql.blob_table.as_ptr(),
                c"value".as_ptr(),
                self.rowid,
                0,
                &mut blob,
            )
        };
        let blob = Blob(blob);
        if rc != ffi::SQLITE_OK {
            return Err(self.conn.error(rc));
        }
        // SAFETY: an open blob handle.
        let n = unsafe { ffi::sqlite3_blob_bytes(blob.0) };
        let len = usize::try_from(n).unwrap_or(0);
        let start = buf.len();
        buf.reserve(len);
        // SAFETY: `buf` has room for `len` more bytes after `start`; SQLite writes exactly `n`
        // bytes there or fails, and the length is set only after it succeeded.
        unsafe {
            let rc = ffi::sqlite3_blob_read(blob.0, buf.as_mut_ptr().add(start).cast(), n, 0);
            if rc != ffi::SQLITE_OK {
                return Err(self.conn.error(rc));
            }
            buf.set_len(start + len);
        }
        let text = &buf[start..];
        if text.is_ascii() {
            return Ok(true);
        }
        match std::str::from_utf8(text) {
            Ok(_) => Ok(false),
            Err(e) => {
                buf.truncate(start);
                Err(rusqlite::Error::Utf8Error(0, e))
            }
        }
    }

    /// The value as a `String`.
    pub fn read_string(&mut self) -> rusqlite::Result<String> {
        let mut buf = Vec::with_capacity(self.len);
        self.read_raw(&mut buf)?;
        String::from_utf8(buf).map_err(|e| rusqlite::Error::Utf8Error(0, e.utf8_error()))
    }
}

impl LargeText for BlobValue<'_> {
    fn len(&self) -> usize {
        self.len
    }

    fn read_into(&mut self, buf: &mut Vec<u8>) -> Result<bool> {
        self.read_raw(buf).map_err(|e| self.sql.error(e))
    }
}

/// An open blob handle (or NULL), closed on drop.
struct Blob(*mut ffi::sqlite3_blob);

impl Drop for Blob {
    fn drop(&mut self) {
        // SAFETY: an open handle, closed once here, or NULL (a no-op). A read-only handle's
        // close reports nothing worth handling.
        unsafe { ffi::sqlite3_blob_close(self.0) };
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        // SAFETY: live statement. Its step's error was already reported; reset only ends it.
        unsafe {
            ffi::sqlite3_reset(self.stmt);
            ffi::sqlite3_clear_bindings(self.stmt);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::sql_identifier::TableName;

    fn conn(ddl: &str) -> (Conn, Statements) {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(ddl).unwrap();
        // The column the backend adds on first use (conn.rs).
        c.execute_batch("ALTER TABLE t ADD COLUMN expires_at integer")
            .unwrap();
        (
            Conn::new(c),
            Statements::new(&TableName::parse("t").unwrap()),
        )
    }

    #[test]
    fn errors_read_as_rusqlite_reports_them() {
        let (c, sql) = conn("CREATE TABLE t (id varchar, value varchar)");
        let ours = c.start(&sql, Query::Put, &[b"k", b"1"]).err().unwrap();
        let theirs = c.prepare(&sql.put).err().unwrap();
        assert_eq!(format!("{ours:?}"), format!("{theirs:?}"));
        // An error at a known offset of the SQL.
        let (c, sql) = conn("CREATE TABLE t (id varchar primary key, other)");
        let ours = c.start(&sql, Query::Get, &[b"k"]).err().unwrap();
        let theirs = c.prepare(&sql.get).err().unwrap();
        assert_eq!(format!("{ours:?}"), format!("{theirs:?}"));
        assert!(
            matches!(ours, rusqlite::Error::SqlInputError { .. }),
            "{ours:?}"
        );
        // A failed prepare is tried again on the next use.
        c.execute_batch("ALTER TABLE t ADD COLUMN value").unwrap();
        assert!(c.start(&sql, Query::Get, &[b"k"]).is_ok());
    }

    #[test]
    fn values_of_every_type_read_as_json_text() {
        let (c, sql) = conn(
            "CREATE TABLE t (id varchar primary key, value);
             INSERT INTO t VALUES ('i', 42), ('f', 1.5), ('s', '\"x\"'), ('b', x'5b315d'),
                                  ('n', NULL), ('e', '')",
        );
        let get = |k: &str| {
            let mut s = c.start(&sql, Query::Get, &[k.as_bytes()]).unwrap();
            match s.step().unwrap() {
                true => s.with_value(0, |v| v.map(str::to_owned)).unwrap(),
                false => Some("<none>".into()),
            }
        };
        assert_eq!(get("i").as_deref(), Some("42"));
        assert_eq!(get("f").as_deref(), Some("1.5"));
        assert_eq!(get("s").as_deref(), Some("\"x\""));
        assert_eq!(get("b").as_deref(), Some("[1]"));
        assert_eq!(get("n"), None);
        assert_eq!(get("e").as_deref(), Some(""));
        assert_eq!(get("missing").as_deref(), Some("<none>"));
    }

    /// What [`Query::Get`] gives for `key`: `Ok(None)` for no row, else the value read the
    /// way `ops::read_with` reads it, and whether it came through the blob reader.
    fn read(c: &Conn, sql: &Statements, key: &str) -> rusqlite::Result<Option<(String, bool)>> {
        let mut s = c.start(sql, c.get_query(sql), &[key.as_bytes()])?;
        if !s.step()? {
            return Ok(None);
        }
        if let Some(mut large) = s.large_value(sql)? {
            assert_eq!(LargeText::len(&large), {
                let mut probe = Vec::new();
                large.read_raw(&mut probe)?;
                probe.len()
            });
            return Ok(Some((large.read_string()?, true)));
        }
        s.with_value(0, |v| Some((v.unwrap_or("<null>").to_owned(), false)))
    }

    #[test]
    fn large_values_go_through_the_blob_reader_and_small_ones_are_borrowed() {
        use super::super::sql::LARGE_VALUE_BYTES as LARGE;
        let (c, sql) = conn("CREATE TABLE t (id varchar primary key, value varchar)");
        let ascii = format!("\"{}\"", "a".repeat(LARGE));
        let accents = format!("\"{}\"", "é".repeat(LARGE));
        let below = format!("\"{}\"", "b".repeat(LARGE - 3));
        for (k, v) in [("ascii", &ascii), ("accents", &accents), ("below", &below)] {
            c.start(&sql, Query::Put, &[k.as_bytes(), v.as_bytes()])
                .unwrap()
                .execute()
                .unwrap();
        }
        assert_eq!(below.len(), LARGE - 1);
        assert_eq!(
            read(&c, &sql, "ascii").unwrap(),
            Some((ascii.clone(), true))
        );
        assert_eq!(
            read(&c, &sql, "accents").unwrap(),
            Some((accents.clone(), true))
        );
        assert_eq!(read(&c, &sql, "below").unwrap(), Some((below, false)));
        assert_eq!(read(&c, &sql, "missing").unwrap(), None);
        // A NULL value (another program's row) also reads NULL in column 0: not large.
        c.execute("INSERT INTO t (id, value) VALUES ('null', NULL)", [])
            .unwrap();
        assert_eq!(
            read(&c, &sql, "null").unwrap(),
            Some(("<null>".into(), false))
        );

        // Appended to what the buffer held, with the ASCII-ness reported.
        let mut s = c.start(&sql, Query::Get, &[b"accents"]).unwrap();
        assert!(s.step().unwrap());
        let mut large = s.large_value(&sql).unwrap().unwrap();
        let mut buf = b"xy".to_vec();
        assert!(!large.read_raw(&mut buf).unwrap());
        assert_eq!(&buf[..2], b"xy");
        assert_eq!(&buf[2..], accents.as_bytes());
        drop(s);
        let mut s = c.start(&sql, Query::Get, &[b"ascii"]).unwrap();
        assert!(s.step().unwrap());
        let mut buf = Vec::new();
        assert!(s
            .large_value(&sql)
            .unwrap()
            .unwrap()
            .read_raw(&mut buf)
            .unwrap());
        drop(s);

        // Bytes another program stored that are not UTF-8: an error, the buffer untouched.
        c.execute(
            "INSERT INTO t (id, value) VALUES ('bad', CAST(zeroblob(?1) || x'ff' AS TEXT))",
            [LARGE as i64],
        )
        .unwrap();
        let mut s = c.start(&sql, Query::Get, &[b"bad"]).unwrap();
        assert!(s.step().unwrap());
        let mut buf = b"kept".to_vec();
        let e = s
            .large_value(&sql)
            .unwrap()
            .unwrap()
            .read_raw(&mut buf)
            .unwrap_err();
        assert!(matches!(e, rusqlite::Error::Utf8Error(..)), "{e:?}");
        assert_eq!(buf, b"kept");
    }

    #[test]
    fn a_table_without_rowid_is_read_with_the_plain_statement() {
        let (c, sql) = conn(
            "CREATE TABLE t (id varchar primary key, value varchar) WITHOUT ROWID;
             INSERT INTO t VALUES ('small', '1');",
        );
        let big = format!("\"{}\"", "z".repeat(200_000));
        c.execute("INSERT INTO t (id, value) VALUES ('big', ?1)", [&big])
            .unwrap();
        assert!(matches!(c.get_query(&sql), Query::GetPlain));
        assert_eq!(read(&c, &sql, "small").unwrap(), Some(("1".into(), false)));
        assert_eq!(read(&c, &sql, "big").unwrap(), Some((big, false)));
    }

    /// The blob reader finds its row by `rowid`, which SQLite reuses after a delete: it reads
    /// within the row's own read transaction, so another connection's delete and insert in
    /// between are not seen, whatever `rowid` they reuse.
    #[test]
    fn a_large_value_is_read_from_the_snapshot_its_row_came_from() {
        let dir = std::env::temp_dir().join(format!("rd-blob-snapshot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("db.sqlite");
        let ours = Connection::open(&path).unwrap();
        ours.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
            .unwrap();
        ours.execute_batch(
            "CREATE TABLE t (id varchar primary key, value varchar, expires_at integer)",
        )
        .unwrap();
        let first = format!("\"{}\"", "1".repeat(300_000));
        let second = format!("\"{}\"", "2".repeat(250_000));
        ours.execute(
            "INSERT INTO t (rowid, id, value) VALUES (7, 'k', ?1)",
            [&first],
        )
        .unwrap();
        let (c, sql) = (
            Conn::new(ours),
            Statements::new(&TableName::parse("t").unwrap()),
        );
        let theirs = Connection::open(&path).unwrap();

        // The other connection commits after our row was stepped to, before its length and
        // value are read: both still come from our row's snapshot.
        let mut s = c.start(&sql, Query::Get, &[b"k"]).unwrap();
        assert!(s.step().unwrap());
        theirs
            .execute_batch(&format!(
                "DELETE FROM t WHERE id = 'k';
                 INSERT INTO t (rowid, id, value) VALUES (7, 'other', '{second}');"
            ))
            .unwrap();
        let mut large = s.large_value(&sql).unwrap().unwrap();
        assert_eq!(LargeText::len(&large), first.len());
        assert_eq!(large.read_string().unwrap(), first);
        drop(s);
        // The next read sees the other connection's commit.
        assert_eq!(read(&c, &sql, "k").unwrap(), None);
        assert_eq!(read(&c, &sql, "other").unwrap(), Some((second, true)));
        c.close().unwrap();
        drop(theirs);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_statement_is_reset_after_use_so_no_read_transaction_stays_open() {
        let (c, sql) = conn("CREATE TABLE t (id varchar primary key, value varchar)");
        c.start(&sql, Query::Put, &[b"k", b"1"])
            .unwrap()
            .execute()
            .unwrap();
        {
            let mut s = c.start(&sql, Query::Get, &[b"k"]).unwrap();
            assert!(s.step().unwrap());
        }
        assert!(c.is_autocommit());
        // SAFETY: valid handle; no statement of this connection is busy after the reset.
        let busy = unsafe { ffi::sqlite3_next_stmt(c.handle(), ptr::null_mut()) };
        let mut stmt = busy;
        while !stmt.is_null() {
            // SAFETY: `stmt` is a live statement of this connection (from sqlite3_next_stmt).
            assert_eq!(unsafe { ffi::sqlite3_stmt_busy(stmt) }, 0);
            // SAFETY: as above.
            stmt = unsafe { ffi::sqlite3_next_stmt(c.handle(), stmt) };
        }
        c.close().unwrap();
    }
}
