//! How keys are kept in the `id` column, and the numbers of their advisory locks.
//!
//! Every key is stored as itself (README, Semantics: keys), so a table shared with reshuffle reads the same
//! both ways — keys starting with U+FFFF included. PostgreSQL text cannot hold NUL: such a key
//! (or `list` prefix) is refused ([`check`]), never escaped, since no escape could keep every
//! other key reading as itself.

use crate::backends::lock_hash::fnv1a64;
use crate::core::{DatastoreError, Result};

/// Refuses what PostgreSQL text cannot hold: NUL (U+0000).
pub fn check(key: &str, what: &str) -> Result<()> {
    if key.contains('\0') {
        return Err(DatastoreError::InvalidKey {
            reason: format!(
                "PostgreSQL text cannot hold NUL (U+0000), and this {what} contains one: use \
                 another character, or a SQLite, file or memory store"
            ),
        });
    }
    Ok(())
}

fn fold32(h: u64) -> i32 {
    ((h >> 32) ^ (h & 0xffff_ffff)) as u32 as i32
}

/// First half of a key's advisory lock: the table (its folded, quoted name). Stable across
/// versions and processes: other servers must compute the same number.
pub fn table_lock_id(quoted_table: &str) -> i32 {
    fold32(fnv1a64(&[
        b"reshuffle-datastore table",
        quoted_table.as_bytes(),
    ]))
}

/// Second half of a key's advisory lock: the key (as stored). Two keys of one table may share
/// a number; they then exclude each other across processes, which is slower but still
/// correct.
pub fn key_lock_id(id: &str) -> i32 {
    fold32(fnv1a64(&[id.as_bytes()]))
}

/// The single-number advisory lock that serialises `CREATE TABLE` of one table.
pub fn create_lock_id(quoted_table: &str) -> i64 {
    fnv1a64(&[b"reshuffle-datastore create", quoted_table.as_bytes()]) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_refused_and_anything_else_accepted() {
        for k in [
            "a",
            "quo'te\"",
            "emoji 🎉",
            "\u{FFFF}",
            "\u{FFFF}1x",
            "x\u{FFFF}y",
        ] {
            check(k, "key").unwrap();
        }
        let e = check("nul\0byte", "key").unwrap_err();
        assert_eq!(e.code(), "ERR_DATASTORE_INVALID_KEY");
        assert!(e.to_string().contains("NUL"));
    }

    #[test]
    fn lock_ids_are_stable() {
        assert_eq!(key_lock_id("counter"), key_lock_id("counter"));
        assert_ne!(key_lock_id("a"), key_lock_id("b"));
        assert_ne!(table_lock_id("\"a\""), table_lock_id("\"b\""));
        // Pinned values: another version of this package must lock the same numbers.
        assert_eq!(fnv1a64(&[]), 0xcbf2_9ce4_8422_2325);
    }
}
