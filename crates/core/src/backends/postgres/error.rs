//! Driver and server errors as [`DatastoreError::Backend`], naming the table.

use crate::core::DatastoreError;

/// The server's own message (with its SQLSTATE) or the driver's.
pub fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        if let Some(d) = db.detail() {
            s.push_str(": ");
            s.push_str(d);
        }
        // What the server suggests ("You might need to increase max_locks_per_transaction.").
        if let Some(h) = db.hint() {
            s.push_str(" (");
            s.push_str(h.trim_end_matches('.'));
            s.push(')');
        }
        return s;
    }
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

pub fn pg_error(table: &str, e: &tokio_postgres::Error) -> DatastoreError {
    DatastoreError::backend(format!("PostgreSQL table {table}: {}", describe(e)))
}
