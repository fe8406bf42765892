//! Driver and server errors as [`DatastoreError`]s naming the table. A value or key that does
//! not fit its column (strict mode: `ER_DATA_TOO_LONG`, `ER_TRUNCATED_WRONG_VALUE_FOR_FIELD`)
//! is the caller's, with the `ALTER TABLE` that makes it fit.

use mysql_async::Error;

use crate::core::DatastoreError;

/// Data too long for a column.
pub const ER_DATA_TOO_LONG: u16 = 1406;
/// Incorrect string value (a character the column's character set cannot hold).
pub const ER_TRUNCATED_WRONG_VALUE_FOR_FIELD: u16 = 1366;
/// A deadlock; the transaction was rolled back and may be retried.
pub const ER_LOCK_DEADLOCK: u16 = 1213;
/// Lock wait timeout exceeded.
pub const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
/// The packet is larger than the server's `max_allowed_packet`.
pub const ER_NET_PACKET_TOO_LARGE: u16 = 1153;
/// The table exists (a race of `CREATE TABLE` without `IF NOT EXISTS` elsewhere).
pub const ER_TABLE_EXISTS_ERROR: u16 = 1050;
/// Duplicate column name (another process added `expires_at` first).
pub const ER_DUP_FIELDNAME: u16 = 1060;
/// Duplicate key name (another process added the expiry index first).
pub const ER_DUP_KEYNAME: u16 = 1061;

/// The server's error code, if the server answered with one.
pub fn server_code(e: &Error) -> Option<u16> {
    match e {
        Error::Server(s) => Some(s.code),
        _ => None,
    }
}

/// The connection is gone (I/O failed, or the server closed it): a fresh one may succeed.
pub fn is_connection_lost(e: &Error) -> bool {
    match e {
        Error::Io(_) => true,
        Error::Driver(d) => matches!(d, mysql_async::DriverError::ConnectionClosed),
        Error::Server(s) => matches!(s.code, 1927 | 4031 | 2006 | 2013 | 1053),
        _ => false,
    }
}

/// `e` as a datastore error; `key` is the key being written, if any.
pub fn my_error(table: &str, key: Option<&str>, e: &Error) -> DatastoreError {
    if let Error::Other(o) = e {
        if o.is::<super::shared::TimedOut>() {
            return super::locked::timed_out();
        }
    }
    if let Error::Server(s) = e {
        let column = s.message.split('\'').nth(1).unwrap_or_default().to_owned();
        match (s.code, column.as_str(), key) {
            (ER_DATA_TOO_LONG | ER_TRUNCATED_WRONG_VALUE_FOR_FIELD, "id", _) => {
                return DatastoreError::InvalidKey {
                    reason: format!(
                        "MySQL table {table}: the key does not fit its id column ({}); to \
                         hold keys of up to 2,048 bytes, run: ALTER TABLE {table} MODIFY id \
                         VARBINARY(2048) NOT NULL",
                        s.message
                    ),
                }
            }
            (ER_DATA_TOO_LONG | ER_TRUNCATED_WRONG_VALUE_FOR_FIELD, "value", Some(k)) => {
                return DatastoreError::invalid_value(
                    k,
                    format!(
                        "MySQL table {table}: the value does not fit its value column ({}); \
                         nothing was written. To hold values of up to 64 MiB, run: ALTER \
                         TABLE {table} MODIFY value LONGTEXT CHARACTER SET utf8mb4",
                        s.message
                    ),
                )
            }
            (ER_NET_PACKET_TOO_LARGE, _, Some(k)) => {
                return DatastoreError::invalid_value(
                    k,
                    format!(
                        "MySQL table {table}: the write is larger than the server's \
                         max_allowed_packet ({}); nothing was written. Raise it: SET GLOBAL \
                         max_allowed_packet = 268435456",
                        s.message
                    ),
                )
            }
            _ => {}
        }
    }
    DatastoreError::backend(format!("MySQL table {table}: {e}"))
}
