//! The SQL text of the SQLite backend, and the mapping of SQLite's errors and values.
//!
//! The table layout is reshuffle's: `(id varchar primary key, value varchar)` holding JSON
//! text. Every comparison of `id` says `COLLATE BINARY`, so keys sort by UTF-8 bytes (= code
//! point order) whatever collation the table was declared with.

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
    pub get: String,
    pub put: String,
    pub delete: String,
    pub list_all: String,
    /// `?1` is the prefix, `?2` its exclusive upper bound ([`prefix_upper_bound`]).
    pub list_range: String,
}

impl Statements {
    pub fn new(table: &TableName) -> Self {
        let t = table.quoted();
        Statements {
            table: table.display(),
            create: format!(
                "CREATE TABLE IF NOT EXISTS {t} (id varchar primary key, value varchar)"
            ),
            get: format!("SELECT value FROM {t} WHERE id = ?1"),
            put: format!(
                "INSERT INTO {t} (id, value) VALUES (?1, ?2) \
                 ON CONFLICT(id) DO UPDATE SET value = excluded.value"
            ),
            delete: format!("DELETE FROM {t} WHERE id = ?1"),
            list_all: format!("SELECT id FROM {t} ORDER BY id COLLATE BINARY"),
            list_range: format!(
                "SELECT id FROM {t} WHERE id >= ?1 COLLATE BINARY AND id < ?2 COLLATE BINARY \
                 ORDER BY id COLLATE BINARY"
            ),
        }
    }

    /// A SQLite error as the store reports it: SQLite's message and the table.
    pub fn error(&self, e: rusqlite::Error) -> DatastoreError {
        DatastoreError::backend(format!("SQLite error on table {}: {e}", self.table))
    }
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
