//! The SQL text of the SQLite backend, and the mapping of SQLite's errors and values.
//!
//! The table layout is reshuffle's, `(id varchar primary key, value varchar)` holding JSON
//! text, plus `expires_at integer` (ms since the epoch; NULL: never) for values written with a
//! time to live, added to a table that lacks it when the database is opened. A row whose
//! expiry passed reads as missing; the purge deletes it. Every comparison of `id` says
//! `COLLATE BINARY`, so keys sort by UTF-8 bytes (= code point order) whatever collation the
//! table was declared with.

use std::ffi::CString;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{ErrorCode, ToSql};

use crate::backends::sql_identifier::TableName;
use crate::core::DatastoreError;

/// The statements of one table, built once from the validated, quoted table name.
#[derive(Debug)]
pub struct Statements {
    /// Shown in error messages.
    pub table: String,
    pub create: String,
    /// Whether the table has `expires_at`: `SELECT` of its `name` in `pragma_table_info`.
    pub has_expiry: String,
    pub add_expiry: String,
    /// A partial index of the rows that expire: the purge, the next expiry and
    /// [`Statements::any_expiring`] read it, and rows that never expire cost nothing in it.
    pub expiry_index: String,
    /// Whether any row expires (a row of the partial index). When none does, `list` runs the
    /// plain statements, a scan of the primary key's covering index.
    pub any_expiring: String,
    /// `?1` = key; one row or none: the value, or NULL when it is NULL or a
    /// [`LARGE_VALUE_BYTES`] value left to the blob reader (read in the same row's
    /// transaction, by `rowid`); the `rowid`. SQLite's `octet_length` reads only the record's
    /// header, so a large value is not loaded. [`Statements::value_length`] tells a NULL value
    /// from a large one, on the rare rows where column 0 is NULL: a small value, the common
    /// case, pays for one `octet_length` and nothing more.
    pub get: String,
    /// `?1` = `rowid`; the value's length in bytes, NULL for a NULL value.
    pub value_length: String,
    /// `?1` = key; the value. For a table without a `rowid` (a `WITHOUT ROWID` table made
    /// by another program), where [`Statements::get`] cannot be prepared.
    pub get_plain: String,
    /// Prepares only where the table has a `rowid`.
    pub has_rowid: String,
    /// The database (`main`, or the schema of `schema.table`) and table, for
    /// `sqlite3_blob_open`.
    pub blob_db: CString,
    pub blob_table: CString,
    pub put: String,
    pub put_for: String,
    pub delete: String,
    pub list_all: String,
    /// `?1` is the prefix, `?2` its exclusive upper bound ([`prefix_upper_bound`]).
    pub list_range: String,
    /// [`Statements::list_all`] and [`Statements::list_range`] leaving out expired rows.
    pub list_all_live: String,
    pub list_range_live: String,
    /// One page, by where it starts and whether the prefix has an upper bound ([`page_index`]):
    /// `?1` the lower bound — the prefix (inclusive) or the previous page's last key
    /// (exclusive) —, then the prefix's exclusive upper bound where there is one, then the most
    /// rows. Both bounds are plain ranges on the primary key, so a page costs what it returns,
    /// wherever it starts (with `?x IS NULL OR …` SQLite scanned from the prefix every time).
    pub pages: [String; 4],
    /// Deletes the rows whose expiry passed.
    pub purge: String,
    /// The next expiry, in ms since the epoch (NULL: none).
    pub next_expiry: String,
}

/// From this length on, a value is read with SQLite's blob reader into the reader's own buffer
/// (one copy) instead of being assembled by SQLite from its pages and then copied again. Below
/// it the extra `sqlite3_blob_open` costs more than the copy it saves; 128 KiB is also where
/// the binding starts to make external strings.
pub const LARGE_VALUE_BYTES: usize = 128 << 10;

/// A row that has not expired (`now` in ms since the epoch, by SQLite's clock, the system's).
const LIVE: &str =
    "(expires_at IS NULL OR expires_at > CAST(unixepoch('subsec') * 1000 AS INTEGER))";

impl Statements {
    pub fn new(table: &TableName) -> Self {
        let t = table.quoted();
        Statements {
            table: table.display(),
            create: format!(
                "CREATE TABLE IF NOT EXISTS {t} \
                 (id varchar primary key, value varchar, expires_at integer)"
            ),
            // Identifiers are validated (letters, digits, `_`, `$`): safe in a string literal.
            has_expiry: format!(
                "SELECT 1 FROM pragma_table_info('{}', '{}') WHERE name = 'expires_at'",
                table.table,
                table.schema.as_deref().unwrap_or("main")
            ),
            add_expiry: format!("ALTER TABLE {t} ADD COLUMN expires_at integer"),
            expiry_index: format!(
                "CREATE INDEX IF NOT EXISTS {} ON \"{}\" (expires_at) \
                 WHERE expires_at IS NOT NULL",
                TableName {
                    schema: table.schema.clone(),
                    table: format!("{}_expires_at", table.table),
                }
                .quoted(),
                table.table
            ),
            any_expiring: format!("SELECT 1 FROM {t} WHERE expires_at IS NOT NULL LIMIT 1"),
            get: format!(
                "SELECT iif(octet_length(value) < {LARGE_VALUE_BYTES}, value, NULL), rowid \
                 FROM {t} WHERE id = ?1 AND {LIVE}"
            ),
            value_length: format!("SELECT octet_length(value) FROM {t} WHERE rowid = ?1"),
            get_plain: format!("SELECT value FROM {t} WHERE id = ?1 AND {LIVE}"),
            has_rowid: format!("SELECT rowid FROM {t} LIMIT 0"),
            // Identifiers hold no NUL (validated): these never fail.
            blob_db: CString::new(table.schema.as_deref().unwrap_or("main")).unwrap_or_default(),
            blob_table: CString::new(table.table.as_str()).unwrap_or_default(),
            put: format!(
                "INSERT INTO {t} (id, value, expires_at) VALUES (?1, ?2, NULL) \
                 ON CONFLICT(id) DO UPDATE SET value = excluded.value, expires_at = NULL"
            ),
            put_for: format!(
                "INSERT INTO {t} (id, value, expires_at) VALUES (?1, ?2, CAST(?3 AS INTEGER)) \
                 ON CONFLICT(id) DO UPDATE SET value = excluded.value, \
                 expires_at = excluded.expires_at"
            ),
            delete: format!("DELETE FROM {t} WHERE id = ?1"),
            list_all: format!("SELECT id FROM {t} ORDER BY id COLLATE BINARY"),
            list_range: format!(
                "SELECT id FROM {t} WHERE id >= ?1 COLLATE BINARY AND id < ?2 COLLATE BINARY \
                 ORDER BY id COLLATE BINARY"
            ),
            list_all_live: format!("SELECT id FROM {t} WHERE {LIVE} ORDER BY id COLLATE BINARY"),
            list_range_live: format!(
                "SELECT id FROM {t} WHERE id >= ?1 COLLATE BINARY AND id < ?2 COLLATE BINARY \
                 AND {LIVE} ORDER BY id COLLATE BINARY"
            ),
            pages: [(false, false), (false, true), (true, false), (true, true)].map(
                |(after_key, bounded)| {
                    let lower = if after_key { ">" } else { ">=" };
                    let (upper, limit) = if bounded {
                        (" AND id < ?2 COLLATE BINARY", "?3")
                    } else {
                        ("", "?2")
                    };
                    format!(
                        "SELECT id, value FROM {t} WHERE id {lower} ?1 COLLATE BINARY{upper} \
                         AND value IS NOT NULL AND {LIVE} ORDER BY id COLLATE BINARY \
                         LIMIT {limit}"
                    )
                },
            ),
            purge: format!(
                "DELETE FROM {t} WHERE expires_at <= CAST(unixepoch('subsec') * 1000 AS INTEGER)"
            ),
            next_expiry: format!("SELECT min(expires_at) FROM {t} WHERE expires_at IS NOT NULL"),
        }
    }

    /// A SQLite error as the store reports it: SQLite's message and the table.
    pub fn error(&self, e: rusqlite::Error) -> DatastoreError {
        DatastoreError::backend(format!("SQLite error on table {}: {e}", self.table))
    }
}

/// Which of [`Statements::pages`] a page uses: whether it starts after a key (rather than at
/// the prefix), and whether the prefix has an upper bound.
pub fn page_index(after_key: bool, bounded: bool) -> usize {
    usize::from(after_key) * 2 + usize::from(bounded)
}

/// The smallest byte string greater than every string starting with `prefix`: the prefix with
/// its last byte below 0xFF incremented and the rest cut off. `None` when there is none (the
/// empty prefix, or only 0xFF bytes, which UTF-8 never holds).
pub fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let end = prefix.iter().rposition(|&b| b != 0xFF)?;
    let mut bound = prefix[..=end].to_vec();
    bound[end] += 1;
    Some(bound)
}

/// Bytes bound as TEXT even when they are not UTF-8 (an upper bound may end inside a
/// character); BINARY collation compares them with `memcmp`.
pub struct TextBytes<'a>(pub &'a [u8]);

impl ToSql for TextBytes<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.0)))
    }
}

/// Whether `e` means another connection holds a lock we need: worth waiting out.
pub fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Hands `read` a stored value as JSON text, borrowed where SQLite holds it as text. Rows
/// written by other programs may hold numbers (their text is JSON) or NULL (no value:
/// reported as missing).
pub fn with_value_text<R>(
    v: ValueRef<'_>,
    read: impl FnOnce(Option<&str>) -> R,
) -> rusqlite::Result<R> {
    Ok(match v {
        ValueRef::Null => read(None),
        ValueRef::Integer(i) => read(Some(&i.to_string())),
        ValueRef::Real(f) => read(Some(&f.to_string())),
        ValueRef::Text(b) | ValueRef::Blob(b) => read(Some(
            std::str::from_utf8(b).map_err(|e| rusqlite::Error::Utf8Error(0, e))?,
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_bounds() {
        assert_eq!(prefix_upper_bound(b""), None);
        assert_eq!(prefix_upper_bound(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_upper_bound(b"a\xFF"), Some(b"b".to_vec()));
        assert_eq!(prefix_upper_bound(b"\xFF\xFF"), None);
        // Ends inside a character: "é" is C3 A9.
        assert_eq!(prefix_upper_bound("é".as_bytes()), Some(vec![0xC3, 0xAA]));
    }
}
