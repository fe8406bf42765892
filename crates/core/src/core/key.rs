//! Key rules (README, Semantics: keys): a non-empty string of at most 2,048 UTF-8 bytes, any characters.

use super::error::{DatastoreError, Result};

/// The longest key, in UTF-8 bytes: safely under PostgreSQL's index-entry limit.
pub const MAX_KEY_BYTES: usize = 2048;

/// Checks a key that is already a string.
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(DatastoreError::InvalidKey {
            reason: "a key must be a non-empty string, got ''".into(),
        });
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(DatastoreError::InvalidKey {
            reason: format!(
                "a key is at most {MAX_KEY_BYTES} UTF-8 bytes, got {} bytes (starting {:?})",
                key.len(),
                key.chars().take(32).collect::<String>()
            ),
        });
    }
    Ok(())
}

/// Whether `key` starts with `prefix`, for filters run on every key of a listing. An empty
/// prefix matches without a comparison, and that is not only a shortcut: an empty `String`'s
/// pointer is dangling (0x1), and glibc's AVX-512 `memcmp`, chosen on CPUs that have it, reads
/// even zero bytes with a masked load whose fault suppression on that unmapped page costs
/// ~80 ns on AMD Zen 4 (against ~2 ns for a real comparison): a listing of 10,000 keys spent
/// ~1 ms in it (docs/benchmarks.md, "Listings since run 14").
pub fn has_prefix(key: &str, prefix: &str) -> bool {
    prefix.is_empty() || key.starts_with(prefix)
}

/// `name` without `prefix`, as [`has_prefix`] tells (and for the same reason).
pub fn strip_prefix<'a>(name: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    if prefix.is_empty() {
        Some(name)
    } else {
        name.strip_prefix(prefix)
    }
}

/// The smallest string that sorts after every string starting with `prefix`, or `None` when
/// there is none (an empty prefix, or one of only `char::MAX`): `prefix` with its last
/// character replaced by the next one — dropped first while it is `char::MAX`. Every key from
/// `prefix` up to it, exclusive, starts with `prefix`, since no character lies between a
/// character and the next (the surrogate gap holds none).
pub fn prefix_end(prefix: &str) -> Option<String> {
    let mut end = prefix.to_owned();
    while let Some(last) = end.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            end.push(next);
            return Some(end);
        }
    }
    None
}

/// The entries of `map` whose key starts with `prefix`, in key order (= code point order),
/// from just after `after` (a page's last key) when given: one seek to each end of the range,
/// no comparison per key, so walking a map page by page costs what one walk does.
pub fn with_prefix_after<'a, K: std::borrow::Borrow<str> + Ord, V>(
    map: &'a std::collections::BTreeMap<K, V>,
    prefix: &'a str,
    after: Option<&'a str>,
) -> std::collections::btree_map::Range<'a, K, V> {
    use std::ops::Bound::{Excluded, Included, Unbounded};
    let end = prefix_end(prefix);
    let start = match after {
        Some(a) if a >= prefix => Excluded(a),
        // Every string sorts from "": no seek comparing with it (see `has_prefix`).
        _ if prefix.is_empty() => Unbounded,
        _ => Included(prefix),
    };
    if let (Excluded(a), Some(e)) = (start, end.as_deref()) {
        if a >= e {
            return map.range::<str, _>((Included(e), Excluded(e))); // empty: past the prefix
        }
    }
    let end = match &end {
        Some(e) => Excluded(e.as_str()),
        None => Unbounded,
    };
    map.range::<str, _>((start, end))
}

/// [`with_prefix_after`] from the first key.
pub fn with_prefix<'a, K: std::borrow::Borrow<str> + Ord, V>(
    map: &'a std::collections::BTreeMap<K, V>,
    prefix: &'a str,
) -> std::collections::btree_map::Range<'a, K, V> {
    with_prefix_after(map, prefix, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_any_characters() {
        for k in ["a", "quo'te\"", "%_/", "emoji 🎉", "nul\0byte"] {
            validate_key(k).unwrap();
        }
        validate_key(&"x".repeat(MAX_KEY_BYTES)).unwrap();
    }

    #[test]
    fn prefixes_match_as_starts_with_does() {
        // An owned empty prefix (a dangling pointer) as the engines hold it.
        let empty = String::new();
        for key in ["a", "ab", "b", "nul\0", "🎉x"] {
            assert!(has_prefix(key, &empty));
            assert_eq!(
                strip_prefix(key.as_bytes(), empty.as_bytes()),
                Some(key.as_bytes())
            );
            for prefix in ["a", "ab", "abc", "🎉", "nul\0"] {
                assert_eq!(
                    has_prefix(key, prefix),
                    key.starts_with(prefix),
                    "{key:?} {prefix:?}"
                );
                assert_eq!(
                    strip_prefix(key.as_bytes(), prefix.as_bytes()),
                    key.as_bytes().strip_prefix(prefix.as_bytes())
                );
            }
        }
    }

    #[test]
    fn prefix_scans_stop_past_the_prefix() {
        let map: std::collections::BTreeMap<String, u8> = ["a", "ab", "abc", "ac", "b", "\u{FFFF}"]
            .iter()
            .map(|k| (k.to_string(), 0))
            .collect();
        let keys = |p| {
            with_prefix(&map, p)
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(keys("ab"), ["ab", "abc"]);
        assert_eq!(keys(""), ["a", "ab", "abc", "ac", "b", "\u{FFFF}"]);
        assert_eq!(keys("\u{FFFF}"), ["\u{FFFF}"]);
        assert!(keys("z").is_empty());
    }

    #[test]
    fn prefix_ends_sort_after_the_prefix_and_nothing_between() {
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{10FFFF}\u{10FFFF}"), None);
        let map: std::collections::BTreeMap<String, u8> =
            ["a", "a\u{10FFFF}", "a\u{10FFFF}x", "b", "ab", "abc", "ac"]
                .iter()
                .map(|k| (k.to_string(), 0))
                .collect();
        let page = |p, after| {
            with_prefix_after(&map, p, after)
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(page("a\u{10FFFF}", None), ["a\u{10FFFF}", "a\u{10FFFF}x"]);
        assert_eq!(page("ab", Some("ab")), ["abc"]);
        assert_eq!(page("ab", Some("b")), Vec::<&str>::new());
        assert_eq!(page("ab", Some("ac")), Vec::<&str>::new());
        assert_eq!(page("ab", Some("a")), ["ab", "abc"]);
        assert_eq!(page("", Some("ac")), ["a\u{10FFFF}", "a\u{10FFFF}x", "b"]);
    }

    #[test]
    fn rejects_empty_and_long() {
        assert_eq!(
            validate_key("").unwrap_err().code(),
            "ERR_DATASTORE_INVALID_KEY"
        );
        let long = "é".repeat(MAX_KEY_BYTES / 2 + 1);
        assert_eq!(
            validate_key(&long).unwrap_err().code(),
            "ERR_DATASTORE_INVALID_KEY"
        );
    }
}
