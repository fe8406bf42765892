//! How keys are kept in the `id` column, and the numbers of their advisory locks.
//!
//! PostgreSQL text cannot hold NUL, but keys may (SPEC §3.1). A key with no NUL that does not
//! start with U+FFFF is stored as is — every key reshuffle could store, so tables stay
//! compatible. Any other key is stored as U+FFFF followed by the key with U+FFFF written as
//! U+FFFF `1` and NUL as U+FFFF `0`. The mapping is one-to-one: a stored id starts with U+FFFF
//! exactly when it is encoded.

const MARK: char = '\u{FFFF}';

/// The `id` stored for `key`.
pub fn encode(key: &str) -> String {
    if !key.contains('\0') && !key.starts_with(MARK) {
        return key.to_owned();
    }
    let mut out = String::with_capacity(key.len() + 8);
    out.push(MARK);
    for c in key.chars() {
        match c {
            MARK => out.push_str("\u{FFFF}1"),
            '\0' => out.push_str("\u{FFFF}0"),
            c => out.push(c),
        }
    }
    out
}

/// The key of a stored `id`; `None` for an id this package cannot have written.
pub fn decode(id: &str) -> Option<String> {
    let Some(body) = id.strip_prefix(MARK) else {
        return Some(id.to_owned());
    };
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c == MARK {
            match chars.next() {
                Some('1') => out.push(MARK),
                Some('0') => out.push('\0'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// The first character of every encoded id (for `list`'s prefix filter).
pub const ENCODED_MARK: &str = "\u{FFFF}";

fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff; // separator, so ("ab","c") and ("a","bc") differ
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
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

/// Second half of a key's advisory lock: the stored id. Two keys of one table may share a
/// number; they then exclude each other across processes, which is slower but still correct.
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
    fn ordinary_keys_are_stored_as_is() {
        for k in ["a", "quo'te\"", "emoji 🎉", "x\u{FFFF}y"] {
            assert_eq!(encode(k), k);
            assert_eq!(decode(k).as_deref(), Some(k));
        }
    }

    #[test]
    fn nul_and_mark_round_trip() {
        for k in [
            "nul\0byte",
            "\0",
            "\u{FFFF}",
            "\u{FFFF}0",
            "\u{FFFF}\0\u{FFFF}1",
        ] {
            let id = encode(k);
            assert!(!id.contains('\0'));
            assert!(id.starts_with(ENCODED_MARK));
            assert_eq!(decode(&id).as_deref(), Some(k), "{k:?}");
        }
        assert_eq!(decode("\u{FFFF}\u{FFFF}x"), None);
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
