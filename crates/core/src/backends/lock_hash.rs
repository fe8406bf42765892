//! The hash that names a key's lock across processes and servers: a byte-range slot in a lock
//! file (file and SQLite stores) and a PostgreSQL advisory-lock number. Every process sharing a
//! store must compute the same number for the same key, whatever build or version of this
//! package it runs, so the algorithm is written here and pinned by tests (FNV-1a, 64 bits),
//! never taken from `std`'s `DefaultHasher`, whose algorithm std does not promise to keep.

/// FNV-1a (64-bit) of `parts`, each followed by a separator byte, so ("ab", "c") and ("a", "bc")
/// differ.
pub fn fnv1a64(parts: &[&[u8]]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
        h ^= 0xff;
        h = h.wrapping_mul(PRIME);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_values() {
        // Changing any of these breaks mutual exclusion between versions: never do.
        assert_eq!(fnv1a64(&[]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(&[b""]), 0xaf64_724c_8602_eb6e);
        assert_eq!(fnv1a64(&[b"counter"]), fnv1a64(&[b"counter"]));
        assert_ne!(fnv1a64(&[b"ab", b"c"]), fnv1a64(&[b"a", b"bc"]));
    }
}
