//! Properties checked by the fuzz targets in `fuzz/` (cargo-fuzz) and, over seeded random
//! inputs, by `cargo test`. Not part of the package's API: built for tests and with the
//! `fuzzing` feature, which `fuzz/` turns on.
//!
//! Each `check_*` function panics when its property does not hold for the input.

use std::collections::BTreeMap;

use crate::backends::file::format::{self, Op};
use crate::core::key::{validate_key, MAX_KEY_BYTES};

/// Whether `text` is exactly one JSON value (surrounding whitespace allowed).
fn is_one_json_value(text: &str) -> bool {
    let mut de = serde_json::Deserializer::from_str(text);
    de.disable_recursion_limit();
    // RawValue checks the grammar only: numbers beyond f64 (`1e999`) are JSON too.
    let mut values = de.into_iter::<&serde_json::value::RawValue>();
    matches!((values.next(), values.next()), (Some(Ok(_)), None))
}

fn replay(base: &BTreeMap<String, String>, ops: &[Op]) -> BTreeMap<String, String> {
    let mut map = base.clone();
    for op in ops {
        match op {
            Op::Put(k, v) | Op::PutUntil(k, v, _) => map.insert(k.clone(), v.clone()),
            Op::Delete(k) => map.remove(k),
        };
    }
    map
}

/// The store-file reader on arbitrary bytes. It never panics, and either
/// - reports damage (`ERR_DATASTORE_CORRUPT`) at a position within the input, or
/// - accepts a prefix `bytes[..valid_end]` (base, whitespace, whole records) such that:
///   1. what follows it is at most one line, the torn tail (`torn` exactly when it is there);
///   2. the prefix alone reads as the same base and records, with nothing torn;
///   3. every value of the replayed store is one JSON value (bytes are never taken for data
///      that callers could not parse);
///   4. re-serializing gives back the same store: the replayed map written as a base reads
///      as that map with no records, and the base followed by the records re-encoded reads as
///      the same base and records.
pub fn check_store_file(bytes: &[u8]) {
    let parsed = match format::parse_file(bytes) {
        Err(damage) => {
            assert!(damage.position <= bytes.len() as u64, "{damage:?}");
            return;
        }
        Ok(p) => p,
    };
    let log = &parsed.log;
    let valid_end = parsed.base_end as usize + log.valid_len;
    assert!(valid_end <= bytes.len());
    let tail = &bytes[valid_end..];
    assert_eq!(log.torn, !tail.is_empty(), "torn flag vs tail {tail:?}");
    if let Some(nl) = tail.iter().position(|&b| b == b'\n') {
        assert_eq!(nl + 1, tail.len(), "more than one line dropped as torn");
    }

    let prefix = format::parse_file(&bytes[..valid_end]).expect("the valid prefix reads");
    assert_eq!(prefix.map, parsed.map);
    assert_eq!(prefix.base_end, parsed.base_end);
    assert_eq!(prefix.log.ops, log.ops);
    assert!(!prefix.log.torn);

    let store = replay(&parsed.map, &log.ops);
    for (k, v) in &store {
        assert!(is_one_json_value(v), "key {k:?} holds non-JSON {v:?}");
    }

    let base = format::encode_base(&store);
    let again = format::parse_file(&base).expect("a written base reads");
    assert_eq!(again.map, store);
    assert!(again.log.ops.is_empty() && !again.log.torn);
    assert_eq!(again.base_end as usize, base.len());

    let mut file = format::encode_base(&parsed.map);
    for op in &log.ops {
        file.extend(format::encode(op));
    }
    let again = format::parse_file(&file).expect("re-encoded records read");
    assert_eq!(again.map, parsed.map);
    // Writing a record turns CR (whitespace in a value) into a space.
    let normalized: Vec<Op> = log
        .ops
        .iter()
        .map(|op| match op {
            Op::Put(k, v) => Op::Put(k.clone(), v.replace('\r', " ")),
            Op::PutUntil(k, v, at) => Op::PutUntil(k.clone(), v.replace('\r', " "), *at),
            other => other.clone(),
        })
        .collect();
    assert_eq!(again.log.ops, normalized);
    assert_eq!(again.log.valid_len + again.base_end as usize, file.len());
}

/// Key validation and the JSON text written to and read from the file, on `bytes` split at
/// the first 0xFF byte into a key and a value (lossily decoded as UTF-8):
/// 1. `validate_key` accepts exactly the non-empty keys of at most `MAX_KEY_BYTES` bytes and
///    rejects the others with `ERR_DATASTORE_INVALID_KEY`;
/// 2. for a valid key and a value that is one JSON value, the record written for it is one
///    line that reads back as that key and the value with CR and LF (whitespace in JSON text)
///    turned into spaces and the ends trimmed, a base holding it reads back as the trimmed
///    value, and the delete record reads back as the key;
/// 3. whatever the value, a record written for it is either read back as one JSON value or
///    not accepted at all (torn).
pub fn check_key_and_value(bytes: &[u8]) {
    let split = bytes.iter().position(|&b| b == 0xFF).unwrap_or(bytes.len());
    let key = String::from_utf8_lossy(&bytes[..split]);
    let value = String::from_utf8_lossy(bytes.get(split + 1..).unwrap_or_default());
    match validate_key(&key) {
        Ok(()) => assert!(!key.is_empty() && key.len() <= MAX_KEY_BYTES),
        Err(e) => {
            assert_eq!(e.code(), "ERR_DATASTORE_INVALID_KEY");
            assert!(key.is_empty() || key.len() > MAX_KEY_BYTES);
            return;
        }
    }

    let record = format::encode_put(&key, &value);
    assert_eq!(record.iter().filter(|&&b| b == b'\n').count(), 1);
    assert_eq!(record.last(), Some(&b'\n'));
    let log = format::parse_log(&record, 0).expect("one line is never damage");
    match log.ops.as_slice() {
        [Op::Put(k, v)] => {
            assert_eq!(k, &*key);
            assert!(is_one_json_value(v), "record accepted non-JSON {v:?}");
            assert_eq!(log.valid_len, record.len());
        }
        [] => assert!(log.torn),
        other => panic!("one record read as {other:?}"),
    }
    if is_one_json_value(&value) {
        let [Op::Put(_, v)] = log.ops.as_slice() else {
            panic!("the record of a JSON value was not read: {value:?}");
        };
        // CR and LF are whitespace in JSON text: written as spaces, the ends trimmed.
        assert_eq!(v, value.replace(['\n', '\r'], " ").trim());

        let base = format::encode_base(&BTreeMap::from([(key.to_string(), value.to_string())]));
        let parsed = format::parse_file(&base).expect("a base of one JSON value reads");
        let stored = parsed.map.get(&*key).expect("the key is in the base");
        assert_eq!(stored, value.trim());
    }

    let delete = format::encode_delete(&key);
    let log = format::parse_log(&delete, 0).expect("one line is never damage");
    assert_eq!(log.ops, vec![Op::Delete(key.into_owned())]);
}

#[cfg(test)]
mod tests {
    //! The fuzz properties over deterministic pseudo-random inputs: mutations of small store
    //! files (bit flips, cuts, inserted bytes, spliced records), so `cargo test` checks them
    //! even where cargo-fuzz cannot run.

    use super::*;

    /// xorshift64*: small, seeded, reproducible.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    fn seeds() -> Vec<Vec<u8>> {
        let mut file = br#"{"jobs":["a","b"],"position":{"offset":10}}"#.to_vec();
        file.push(b'\n');
        file.extend(format::encode_put("position", r#"{"offset":11}"#));
        file.extend(format::encode_delete("jobs"));
        file.extend(format::encode_put(
            "k\"\u{1F389}",
            "[1,\"x\",null,true,-2.5e3]",
        ));
        vec![
            file,
            b"{}\n".to_vec(),
            b"{\n  \"a\": 1\n}\n".to_vec(),
            format::encode_put("a", "1"),
        ]
    }

    fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
        const TOKENS: [&[u8]; 8] = [b"\n", b"{", b"}", b"\"", b"[\"s\",", b"[\"d\",", b",", b" "];
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(input.len() + 1);
            match rng.below(6) {
                0 if !input.is_empty() => {
                    let i = at.min(input.len() - 1);
                    input[i] ^= 1 << rng.below(8);
                }
                1 => input.truncate(at),
                2 => input.insert(at, rng.next() as u8),
                3 => {
                    let t = TOKENS[rng.below(TOKENS.len())];
                    input.splice(at..at, t.iter().copied());
                }
                4 => {
                    // A valid record, so damage and torn tails land between whole records.
                    let r = format::encode_put(&format!("k{}", rng.below(5)), "[0]");
                    input.splice(at..at, r);
                }
                _ if at < input.len() => {
                    input.remove(at);
                }
                _ => {}
            }
        }
    }

    const ROUNDS: usize = 5_000;

    #[test]
    fn the_store_file_reader_holds_its_property_on_mutated_files() {
        let mut rng = Rng(0x5EED_F11E);
        let seeds = seeds();
        for seed in &seeds {
            check_store_file(seed);
        }
        for _ in 0..ROUNDS {
            let mut input = seeds[rng.below(seeds.len())].clone();
            mutate(&mut rng, &mut input);
            check_store_file(&input);
        }
    }

    #[test]
    fn keys_and_values_hold_their_property_on_random_inputs() {
        let mut rng = Rng(0xC0FF_EE00);
        let samples: [&[u8]; 7] = [
            b"key\xff{\"a\":[1,2,{\"b\":null}]}",
            b"\xff1",
            b"k\xff\"a\nb\"",
            b"k\xff 1 2 ",
            b"\xe2\x82\xac\xff[\r\n1]",
            b"k\xff",
            b"k\xff1e921",
        ];
        for s in samples {
            check_key_and_value(s);
        }
        check_key_and_value(&[b'x'; MAX_KEY_BYTES + 1]);
        for _ in 0..ROUNDS {
            let mut input = samples[rng.below(samples.len())].to_vec();
            mutate(&mut rng, &mut input);
            check_key_and_value(&input);
        }
    }
}
