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

/// The entries of `map` whose key starts with `prefix`, in key order (= code point order): one
/// seek, then a scan that stops at the first key past the prefix.
pub fn with_prefix<'a, V>(
    map: &'a std::collections::BTreeMap<String, V>,
    prefix: &'a str,
) -> impl Iterator<Item = (&'a String, &'a V)> + 'a {
    map.range::<str, _>((
        std::ops::Bound::Included(prefix),
        std::ops::Bound::Unbounded,
    ))
    .take_while(move |(k, _)| k.starts_with(prefix))
}

/// [`with_prefix`] from just after `after` (a page's last key): one seek to where the page
/// starts, so walking a map page by page costs what one walk does.
pub fn with_prefix_after<'a, V>(
    map: &'a std::collections::BTreeMap<String, V>,
    prefix: &'a str,
    after: Option<&'a str>,
) -> impl Iterator<Item = (&'a String, &'a V)> + 'a {
    let start = match after {
        Some(a) if a >= prefix => std::ops::Bound::Excluded(a),
        _ => std::ops::Bound::Included(prefix),
    };
    map.range::<str, _>((start, std::ops::Bound::Unbounded))
        .take_while(move |(k, _)| k.starts_with(prefix))
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
