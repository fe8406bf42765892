//! The one error type of the datastore. Every failure that reaches a caller is one of these
//! variants; the binding maps them to JS errors in exactly one place (`js::error`).

use std::fmt;

/// Result of every fallible core operation.
pub type Result<T> = std::result::Result<T, DatastoreError>;

/// What went wrong, with enough context (key, path, table) to act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DatastoreError {
    /// A key that is not a non-empty string of at most [`crate::core::key::MAX_KEY_BYTES`] bytes.
    InvalidKey { reason: String },
    /// A value that JSON cannot represent (undefined, function, Symbol, BigInt, circular).
    InvalidValue { key: String, reason: String },
    /// A bad constructor argument or option, or an invalid table name.
    InvalidArgument { message: String },
    /// The store was closed before this operation was called.
    Closed,
    /// Stored data is damaged; `position` is the byte offset where it stops making sense.
    Corrupt {
        path: String,
        position: u64,
        reason: String,
    },
    /// An operating-system error on `path`.
    Io { path: String, message: String },
    /// An error reported by the database engine or driver.
    Backend { message: String },
    /// A lock could not be taken in time (the `lockTimeout` option). `key` is empty when the
    /// wait was `list`'s (or a compaction's) for the writes called before it.
    LockTimeout { key: String, waited_ms: u64 },
    /// An updater of `key` called `operation` on its own store while it was running, which
    /// would wait for the updater itself: on `key` (get/set/update/remove) or after it (list,
    /// close, compact). Rejected at once instead of waiting forever.
    Reentrant {
        key: String,
        operation: &'static str,
    },
    /// The promise an updater of `key` returned was garbage-collected without settling: it can
    /// never settle, so the update fails and the key is released.
    UpdaterAbandoned { key: String },
    /// The lease an `update` held on `key` (Redis) ended before its write: it expired while
    /// its renewal could not reach the server, or something deleted it. Nothing was written.
    LeaseLost { key: String },
    /// A bug of this package caught at the boundary with JS (a Rust panic), reported instead of
    /// aborting the process. The operation did not complete; nothing of it was written.
    Internal { message: String },
}

impl DatastoreError {
    /// The stable `error.code` seen by JS callers.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidKey { .. } => "ERR_DATASTORE_INVALID_KEY",
            Self::InvalidValue { .. } => "ERR_DATASTORE_INVALID_VALUE",
            Self::InvalidArgument { .. } => "ERR_DATASTORE_INVALID_ARGUMENT",
            Self::Closed => "ERR_DATASTORE_CLOSED",
            Self::Corrupt { .. } => "ERR_DATASTORE_CORRUPT",
            Self::Io { .. } => "ERR_DATASTORE_IO",
            Self::Backend { .. } => "ERR_DATASTORE_BACKEND",
            Self::LockTimeout { .. } => "ERR_DATASTORE_LOCK_TIMEOUT",
            Self::Reentrant { .. } => "ERR_DATASTORE_REENTRANT",
            Self::UpdaterAbandoned { .. } => "ERR_DATASTORE_UPDATER_ABANDONED",
            Self::LeaseLost { .. } => "ERR_DATASTORE_LEASE_LOST",
            Self::Internal { .. } => "ERR_DATASTORE_INTERNAL",
        }
    }

    /// A `LockTimeout` that names no key names `key` (what was waited for); anything else is
    /// returned as is.
    pub fn for_key(self, key: &str) -> Self {
        match self {
            Self::LockTimeout { key: k, waited_ms } if k.is_empty() => Self::LockTimeout {
                key: key.to_owned(),
                waited_ms,
            },
            other => other,
        }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            message: message.into(),
        }
    }

    pub fn invalid_value(key: &str, reason: impl Into<String>) -> Self {
        Self::InvalidValue {
            key: key.to_owned(),
            reason: reason.into(),
        }
    }

    pub fn io(path: impl fmt::Display, err: impl fmt::Display) -> Self {
        Self::Io {
            path: path.to_string(),
            message: err.to_string(),
        }
    }

    pub fn backend(message: impl Into<String>) -> Self {
        Self::Backend {
            message: message.into(),
        }
    }

    /// The stored value of `key` is not JSON text (another program wrote it). Named as `get`
    /// names it in JS: `the value of key "k" is corrupt at byte 0: …`.
    pub fn value_not_json(key: &str) -> Self {
        let quoted = serde_json::to_string(key).unwrap_or_else(|_| format!("{key:?}"));
        Self::Corrupt {
            path: format!("the value of key {quoted}"),
            position: 0,
            reason: "the stored value is not JSON".into(),
        }
    }
}

impl fmt::Display for DatastoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidKey { reason } => write!(f, "invalid key: {reason}"),
            Self::InvalidValue { key, reason } => {
                write!(f, "invalid value for key {key:?}: {reason}")
            }
            Self::InvalidArgument { message } => write!(f, "invalid argument: {message}"),
            Self::Closed => write!(f, "the store is closed"),
            Self::Corrupt {
                path,
                position,
                reason,
            } => write!(f, "{path} is corrupt at byte {position}: {reason}"),
            Self::Io { path, message } => write!(f, "{path}: {message}"),
            Self::Backend { message } => write!(f, "{message}"),
            Self::LockTimeout { key, waited_ms } if key.is_empty() => write!(
                f,
                "gave up waiting for the writes called before this operation after \
                 {waited_ms} ms (a key is held by a slow or stuck updater; an updater that \
                 awaits list() of its own store waits for itself)"
            ),
            Self::LockTimeout { key, waited_ms } => write!(
                f,
                "gave up waiting for the lock of key {key:?} after {waited_ms} ms \
                 (the key is held by a slow or stuck updater; an updater that awaits an \
                 operation on its own key waits for itself)"
            ),
            Self::Reentrant { key, operation } => write!(
                f,
                "the updater of key {key:?} called {operation}() on its own store, which would \
                 wait for the updater itself: an updater must not use its own key (or list or \
                 close its store); return the new value instead"
            ),
            Self::UpdaterAbandoned { key } => write!(
                f,
                "the promise returned by the updater of key {key:?} was garbage-collected \
                 without settling, so it can never settle; the update failed and the key was \
                 released"
            ),
            Self::LeaseLost { key } => write!(
                f,
                "the lease on key {key:?} ended before the update's write (the updater ran \
                 longer than the lease while its renewal could not reach Redis, or the lease \
                 was deleted); nothing was written"
            ),
            Self::Internal { message } => write!(
                f,
                "internal error of reshuffle-datastore (please report it): {message}; the \
                 operation did not complete"
            ),
        }
    }
}

impl std::error::Error for DatastoreError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(
            DatastoreError::InvalidKey { reason: "x".into() }.code(),
            "ERR_DATASTORE_INVALID_KEY"
        );
        assert_eq!(DatastoreError::Closed.code(), "ERR_DATASTORE_CLOSED");
        let e = DatastoreError::Corrupt {
            path: "/tmp/a".into(),
            position: 12,
            reason: "bad record".into(),
        };
        assert_eq!(e.code(), "ERR_DATASTORE_CORRUPT");
        assert!(e.to_string().contains("/tmp/a") && e.to_string().contains("12"));
    }
}
