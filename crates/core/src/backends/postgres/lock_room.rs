//! How many advisory locks one bulk call may hold at once on a PostgreSQL server.
//!
//! `setMany`/`removeMany` hold one advisory lock per key until their write (docs/postgres.md).
//! Every session of the server shares one lock table, sized for
//! `max_locks_per_transaction × (max_connections + max_prepared_transactions)` locks (6,400 with
//! the defaults). A call that filled it would make the server's *other* sessions fail with
//! "out of shared memory" while it held its locks — other stores, other apps, even new
//! connections. So a call may take at most half of that room; a larger one is refused before
//! it takes any lock, and nothing is written.

use crate::core::{DatastoreError, Result};

/// Bulk calls of at most this many locks are not checked: they fit in half the lock table of
/// any server with the default `max_locks_per_transaction` (64) and at least two connections,
/// and most stores then never send the check's query.
pub const UNCHECKED: usize = 64;

/// The query that reads the settings, one row of three `int8`s (see [`LockRoom::from_row`]).
pub const QUERY: &str = "SELECT current_setting('max_locks_per_transaction')::int8, \
                                current_setting('max_connections')::int8, \
                                current_setting('max_prepared_transactions')::int8";

/// The server's settings that size its lock table. They change only when the server restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockRoom {
    pub per_transaction: i64,
    pub connections: i64,
    pub prepared: i64,
}

impl LockRoom {
    /// The settings from the row of [`QUERY`].
    pub fn from_row(row: &tokio_postgres::Row) -> std::result::Result<Self, tokio_postgres::Error> {
        Ok(LockRoom {
            per_transaction: row.try_get(0)?,
            connections: row.try_get(1)?,
            prepared: row.try_get(2)?,
        })
    }

    /// The locks the server's lock table is sized for, shared by all its sessions.
    pub fn total(&self) -> i64 {
        self.per_transaction
            .saturating_mul(self.connections.saturating_add(self.prepared))
    }

    /// The most one bulk call may hold: half the table, the other half left to the server's
    /// other sessions.
    pub fn per_call(&self) -> i64 {
        self.total() / 2
    }

    /// `Ok` when a call on `keys` keys holding `needed` locks (one per distinct lock number:
    /// two keys may share one) fits; otherwise the error that says why and what to do.
    pub fn check(&self, needed: usize, keys: usize, table: &str) -> Result<()> {
        let needed_locks = i64::try_from(needed).unwrap_or(i64::MAX);
        if needed_locks <= self.per_call() {
            return Ok(());
        }
        Err(DatastoreError::InvalidArgument {
            message: format!(
                "a setMany/removeMany of {keys} keys on PostgreSQL table {table} would hold \
                 {needed} advisory locks at once (one per key, unless two keys share one); one \
                 call may hold at most {} of them, half of the server's lock table \
                 (max_locks_per_transaction {} × (max_connections {} + \
                 max_prepared_transactions {}) = {}), which all its sessions share. Split the \
                 call, or raise max_locks_per_transaction. Nothing was written",
                self.per_call(),
                self.per_transaction,
                self.connections,
                self.prepared,
                self.total()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: LockRoom = LockRoom {
        per_transaction: 64,
        connections: 100,
        prepared: 0,
    };

    #[test]
    fn half_the_table_fits_and_one_more_is_refused_naming_the_settings() {
        assert_eq!(DEFAULTS.total(), 6400);
        assert!(DEFAULTS.check(3200, 3200, "t").is_ok());
        let e = DEFAULTS.check(3201, 3202, "items").unwrap_err();
        assert_eq!(e.code(), "ERR_DATASTORE_INVALID_ARGUMENT");
        let text = e.to_string();
        for part in [
            "3202 keys",
            "hold 3201 advisory locks",
            "items",
            "at most 3200",
            "max_locks_per_transaction 64",
            "6400",
        ] {
            assert!(text.contains(part), "{text}");
        }
    }

    #[test]
    fn prepared_transactions_count_and_huge_settings_do_not_overflow() {
        let room = LockRoom {
            prepared: 100,
            ..DEFAULTS
        };
        assert_eq!(room.per_call(), 6400);
        let huge = LockRoom {
            per_transaction: i64::MAX,
            connections: i64::MAX,
            prepared: 1,
        };
        assert_eq!(huge.total(), i64::MAX);
        assert!(huge.check(1 << 40, 1 << 40, "t").is_ok());
    }
}
