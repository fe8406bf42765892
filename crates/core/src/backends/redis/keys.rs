//! The key layout (docs/redis.md). For a store key `k` under `options.prefix` `p`:
//! - the value lives at `{pk}` (a Redis string of JSON text);
//! - the lease of an `update` at `{pk}:lease` (a string holding the holder's token).
//!
//! Both names begin with the hash tag `{pk}` cut at its first `}`, so Redis Cluster puts a key
//! and its lease in one hash slot, which a script touching both needs. Data names end with `}`
//! and lease names with `:lease`, so a listing tells them apart whatever `k` holds.

use crate::core::key::strip_prefix;

/// The suffix of a lease's name.
const LEASE: &str = ":lease";

/// The name of the Redis key holding `key`'s value.
pub fn data(prefix: &str, key: &str) -> Vec<u8> {
    let mut name = Vec::with_capacity(prefix.len() + key.len() + 2);
    name.push(b'{');
    name.extend_from_slice(prefix.as_bytes());
    name.extend_from_slice(key.as_bytes());
    name.push(b'}');
    name
}

/// The name of the Redis key holding `key`'s lease.
pub fn lease(prefix: &str, key: &str) -> Vec<u8> {
    let mut name = data(prefix, key);
    name.extend_from_slice(LEASE.as_bytes());
    name
}

/// The store key of a Redis data key name under `prefix`; `None` for a lease or any other
/// name (a key of another program sharing the database).
pub fn store_key<'a>(prefix: &str, name: &'a [u8]) -> Option<&'a str> {
    let inner = name.strip_prefix(b"{")?.strip_suffix(b"}")?;
    let key = strip_prefix(inner, prefix.as_bytes())?;
    let key = std::str::from_utf8(key).ok()?;
    (!key.is_empty()).then_some(key)
}

/// The SCAN MATCH pattern of the data keys whose store key starts with `start`: glob
/// characters are escaped, so every key is matched as itself.
pub fn pattern(prefix: &str, start: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(prefix.len() + start.len() + 8);
    p.extend_from_slice(b"\\{");
    for &b in prefix.as_bytes().iter().chain(start.as_bytes()) {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\' | b'^' | b'-') {
            p.push(b'\\');
        }
        p.push(b);
    }
    p.extend_from_slice(b"*}");
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_and_lease_names_are_told_apart() {
        for key in ["a", "x}:lease", "}", "{", "é🎉", "\u{0}"] {
            let d = data("p:", key);
            let l = lease("p:", key);
            assert_eq!(store_key("p:", &d), Some(key));
            assert_eq!(store_key("p:", &l), None);
            assert_eq!(store_key("q:", &d), None);
            assert!(l.starts_with(&d));
        }
    }

    #[test]
    fn patterns_escape_globs() {
        assert_eq!(pattern("p", "a*[?"), b"\\{pa\\*\\[\\?*}".to_vec());
        assert_eq!(pattern("", ""), b"\\{*}".to_vec());
    }
}
