//! The bytes of a store file (docs/file-format.md): a base — one JSON object of key → value, as
//! reshuffle 1.0.9 writes it — then optional whitespace, then records, one per line:
//!
//! ```text
//! <crc32 of BODY, 8 lowercase hex digits> <BODY>\n
//! BODY = ["s",<key as JSON string>,<value JSON>]                    (set)
//!      | ["t",<key as JSON string>,<expiry>,<value JSON>]           (set, expiring)
//!      | ["d",<key as JSON string>]                                 (delete)
//!      | ["b",[BODY,BODY,…]]                  (a batch of s, t, d: all or nothing)
//! ```
//!
//! `<expiry>` is when the value expires, in milliseconds since the Unix epoch. A base whose
//! keys expire holds their expiries under [`EXPIRIES_KEY`], a key longer than any key can be
//! (so never a key of the store), as an object of key → expiry.
//!
//! Invariants: a record never contains a newline except its last byte (JSON text from
//! `JSON.stringify` has none; [`encode_put`] turns any stray CR/LF, which JSON only allows as
//! whitespace, into spaces), so a record is complete exactly when its newline is there. Only the
//! last line of a file may be bad (torn by a crash); a bad line followed by anything is damage.

use std::collections::BTreeMap;

use serde_json::value::RawValue;

use crate::core::json::{is_json, on_big_stack};

/// A change read from or written to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put(String, String),
    /// A put that expires at the given time (ms since the Unix epoch).
    PutUntil(String, String, u64),
    Delete(String),
}

/// The base's entry that holds the expiries of its keys: longer than the longest key
/// (`core::key::MAX_KEY_BYTES`), so no key of the store can be it.
pub fn expiries_key() -> String {
    format!("reshuffle-datastore expiries {}", "-".repeat(2048))
}

/// Damage at byte `position` of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub position: u64,
    pub reason: String,
}

/// CRC-32 (IEEE 802.3, as zlib and PNG use it).
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

fn json_string(s: &str) -> String {
    // Serializing a str cannot fail.
    serde_json::to_string(s).unwrap_or_default()
}

fn frame(body: &str) -> Vec<u8> {
    let mut line = Vec::with_capacity(body.len() + 10);
    line.extend_from_slice(format!("{:08x} ", crc32(body.as_bytes())).as_bytes());
    line.extend_from_slice(body.as_bytes());
    line.push(b'\n');
    line
}

/// JSON text as a record holds it: on one line (any stray CR/LF, which JSON only allows as
/// whitespace, becomes a space), trimmed.
fn one_line(value: &str) -> std::borrow::Cow<'_, str> {
    // Byte searches (memchr in std), fast for values of many megabytes.
    let bytes = value.as_bytes();
    if bytes.contains(&b'\n') || bytes.contains(&b'\r') {
        std::borrow::Cow::Owned(value.replace(['\n', '\r'], " ").trim().to_owned())
    } else {
        std::borrow::Cow::Borrowed(value.trim())
    }
}

/// The body of the record of `op`.
pub fn body(op: &Op) -> String {
    match op {
        Op::Put(key, value) => format!("[\"s\",{},{}]", json_string(key), one_line(value)),
        Op::PutUntil(key, value, at) => {
            format!("[\"t\",{},{at},{}]", json_string(key), one_line(value))
        }
        Op::Delete(key) => format!("[\"d\",{}]", json_string(key)),
    }
}

/// The record that sets `key` to the JSON text `value`.
#[cfg(any(test, feature = "fuzzing"))]
pub fn encode_put(key: &str, value: &str) -> Vec<u8> {
    frame(&body(&Op::Put(key.to_owned(), value.to_owned())))
}

/// The record of `op`.
pub fn encode(op: &Op) -> Vec<u8> {
    frame(&body(op))
}

/// The record that deletes `key`.
#[cfg(any(test, feature = "fuzzing"))]
pub fn encode_delete(key: &str) -> Vec<u8> {
    frame(&body(&Op::Delete(key.to_owned())))
}

/// One record holding every op of `ops`: a reader applies all of them or, torn, none.
pub fn encode_batch(ops: &[Op]) -> Vec<u8> {
    let bodies: Vec<String> = ops.iter().map(body).collect();
    frame(&format!("[\"b\",[{}]]", bodies.join(",")))
}

/// A base holding `map`: one JSON object, then a newline.
pub fn encode_base(map: &BTreeMap<String, String>) -> Vec<u8> {
    encode_base_expiring(map, &BTreeMap::new())
}

/// A base holding `map`, and the `expiries` of its keys under [`expiries_key`] if any.
pub fn encode_base_expiring(
    map: &BTreeMap<String, String>,
    expiries: &BTreeMap<String, u64>,
) -> Vec<u8> {
    let size: usize = map.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
    let mut out = Vec::with_capacity(size + 3);
    out.push(b'{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(json_string(k).as_bytes());
        out.push(b':');
        out.extend_from_slice(v.as_bytes());
    }
    if !expiries.is_empty() {
        if !map.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(json_string(&expiries_key()).as_bytes());
        out.push(b':');
        out.extend_from_slice(
            serde_json::to_string(expiries)
                .unwrap_or_else(|_| "{}".into())
                .as_bytes(),
        );
    }
    out.extend_from_slice(b"}\n");
    out
}

/// The ops of a record's body (one, or a batch's), or why it is not a record.
fn decode_ops(body: &str, ops: &mut Vec<Op>) -> Result<(), String> {
    let Some(rest) = body.strip_prefix("[\"b\",") else {
        ops.push(decode_body(body)?);
        return Ok(());
    };
    let items = rest
        .strip_suffix(']')
        .and_then(|list| serde_json::from_str::<Vec<&RawValue>>(list).ok())
        .ok_or("bad batch record")?;
    let start = ops.len();
    for item in items {
        if item.get().starts_with("[\"b\",") {
            ops.truncate(start);
            return Err("a batch inside a batch".into());
        }
        match decode_body(item.get()) {
            Ok(op) => ops.push(op),
            Err(e) => {
                ops.truncate(start);
                return Err(e);
            }
        }
    }
    Ok(())
}

/// The body of one record (not a batch), or why it is not one.
fn decode_body(body: &str) -> Result<Op, String> {
    let (kind, rest) = if let Some(rest) = body.strip_prefix("[\"s\",") {
        ('s', rest)
    } else if let Some(rest) = body.strip_prefix("[\"t\",") {
        ('t', rest)
    } else if let Some(rest) = body.strip_prefix("[\"d\",") {
        ('d', rest)
    } else {
        return Err("unknown record type".into());
    };
    let mut keys = serde_json::Deserializer::from_str(rest).into_iter::<String>();
    let key = match keys.next() {
        Some(Ok(k)) => k,
        _ => return Err("bad key in record".into()),
    };
    let after = &rest[keys.byte_offset()..];
    match kind {
        's' => {
            let value = after
                .strip_prefix(',')
                .and_then(|v| v.strip_suffix(']'))
                .map(str::trim)
                .filter(|v| is_json(v))
                .ok_or("bad value in record")?;
            Ok(Op::Put(key, value.to_owned()))
        }
        't' => {
            let rest = after.strip_prefix(',').ok_or("bad expiring record")?;
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let at: u64 = rest[..digits].parse().map_err(|_| "bad expiry in record")?;
            let value = rest[digits..]
                .strip_prefix(',')
                .and_then(|v| v.strip_suffix(']'))
                .map(str::trim)
                .filter(|v| is_json(v))
                .ok_or("bad value in record")?;
            Ok(Op::PutUntil(key, value.to_owned(), at))
        }
        _ if after == "]" => Ok(Op::Delete(key)),
        _ => Err("bad delete record".into()),
    }
}

/// One line without its newline (checksum, space, body): its ops.
fn decode_line(line: &[u8]) -> Result<Vec<Op>, String> {
    if line.len() < 10 || line[8] != b' ' {
        return Err("not a record".into());
    }
    let crc = std::str::from_utf8(&line[..8])
        .ok()
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .ok_or("bad checksum field")?;
    let body = &line[9..];
    if crc32(body) != crc {
        return Err("checksum mismatch".into());
    }
    let body = std::str::from_utf8(body).map_err(|_| "record is not UTF-8")?;
    let mut ops = Vec::with_capacity(1);
    decode_ops(body, &mut ops)?;
    Ok(ops)
}

/// Records parsed from a stretch of the log.
#[derive(Debug, Default)]
pub struct Log {
    pub ops: Vec<Op>,
    /// Bytes of `buf` made of whole, valid records.
    pub valid_len: usize,
    /// Whether bytes after `valid_len` form a torn last record.
    pub torn: bool,
}

/// Parses records from `buf`, which starts at file offset `start` and ends at the end of the
/// file as far as the caller read it. A bad line that is the last one is torn; any other bad
/// line is damage.
pub fn parse_log(buf: &[u8], start: u64) -> Result<Log, Damage> {
    let mut log = Log::default();
    let mut pos = 0;
    while pos < buf.len() {
        let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n').map(|i| pos + i) else {
            log.torn = true;
            break;
        };
        match decode_line(&buf[pos..nl]) {
            Ok(ops) => log.ops.extend(ops),
            Err(_) if nl + 1 == buf.len() => {
                log.torn = true;
                break;
            }
            Err(reason) => {
                return Err(Damage {
                    position: start + pos as u64,
                    reason,
                })
            }
        }
        pos = nl + 1;
        log.valid_len = pos;
    }
    Ok(log)
}

/// A whole file: its base and the records after it.
#[derive(Debug)]
pub struct Parsed {
    pub map: BTreeMap<String, String>,
    /// Expiries of the base's keys (from [`expiries_key`]).
    pub expiries: BTreeMap<String, u64>,
    /// Where the records start (after the base and its trailing whitespace).
    pub base_end: u64,
    pub log: Log,
}

/// Byte offset of a serde_json error's line and column in `buf`.
fn offset_of(buf: &[u8], line: usize, column: usize) -> u64 {
    let mut start = 0;
    for _ in 1..line {
        match buf[start..].iter().position(|&b| b == b'\n') {
            Some(i) => start += i + 1,
            None => break,
        }
    }
    (start + column.saturating_sub(1)).min(buf.len()) as u64
}

fn parse_base(buf: &[u8]) -> Result<(BTreeMap<String, Box<RawValue>>, usize), Damage> {
    let mut de = serde_json::Deserializer::from_slice(buf);
    // Values as deep as JSON.stringify makes them must load; the caller gives this a big stack.
    de.disable_recursion_limit();
    let mut stream = de.into_iter::<BTreeMap<String, Box<RawValue>>>();
    match stream.next() {
        Some(Ok(map)) => Ok((map, stream.byte_offset())),
        Some(Err(e)) => Err(Damage {
            position: offset_of(buf, e.line(), e.column()),
            reason: format!("the base is not a JSON object: {e}"),
        }),
        None => Err(Damage {
            position: 0,
            reason: "the file is empty; expected a JSON object".into(),
        }),
    }
}

/// Parses a base on a big stack ([`on_big_stack`]).
fn parse_base_deep(buf: &[u8]) -> Result<(BTreeMap<String, Box<RawValue>>, usize), Damage> {
    on_big_stack(|| parse_base(buf)).unwrap_or_else(|| {
        Err(Damage {
            position: 0,
            reason: "the parser failed".into(),
        })
    })
}

/// Parses a whole file.
pub fn parse_file(buf: &[u8]) -> Result<Parsed, Damage> {
    let (map, end) = parse_base_deep(buf)?;
    let mut base_end = end;
    while base_end < buf.len() && matches!(buf[base_end], b' ' | b'\t' | b'\r' | b'\n') {
        base_end += 1;
    }
    let log = parse_log(&buf[base_end..], base_end as u64)?;
    let mut map: BTreeMap<String, String> = map
        .into_iter()
        .map(|(k, v)| (k, String::from(Box::<str>::from(v))))
        .collect();
    let expiries = match map.remove(&expiries_key()) {
        None => BTreeMap::new(),
        Some(text) => serde_json::from_str::<BTreeMap<String, u64>>(&text).map_err(|e| Damage {
            position: 0,
            reason: format!("the base's expiries are not an object of key → time: {e}"),
        })?,
    };
    Ok(Parsed {
        map,
        expiries,
        base_end: base_end as u64,
        log,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn records_round_trip() {
        let mut buf = encode_put("k\"\n🎉", "{\"a\":\n[1, \"x\"]}");
        buf.extend(encode_delete("gone"));
        buf.extend(encode_put("n", "null"));
        let log = parse_log(&buf, 0).unwrap();
        assert_eq!(
            log.ops,
            vec![
                Op::Put("k\"\n🎉".into(), "{\"a\": [1, \"x\"]}".into()),
                Op::Delete("gone".into()),
                Op::Put("n".into(), "null".into()),
            ]
        );
        assert_eq!(log.valid_len, buf.len());
        assert!(!log.torn);
    }

    #[test]
    fn a_torn_last_record_is_reported_not_damage() {
        let mut buf = encode_put("a", "1");
        let whole = buf.len();
        let second = encode_put("b", "2");
        for cut in 1..second.len() {
            let mut b = buf.clone();
            b.extend_from_slice(&second[..cut]);
            let log = parse_log(&b, 0).unwrap();
            assert_eq!(log.ops.len(), 1);
            assert_eq!(log.valid_len, whole);
            assert!(log.torn);
        }
        // A complete last line with a bad checksum is torn too.
        buf.extend_from_slice(b"00000000 [\"s\",\"b\",2]\n");
        assert!(parse_log(&buf, 0).unwrap().torn);
    }

    #[test]
    fn a_record_whose_value_is_not_json_is_bad_even_with_its_checksum() {
        for value in ["nope", "{", "1 2", "[1,]", "\"\\ud800\"x"] {
            let mut buf = frame(&format!("[\"s\",\"k\",{value}]"));
            let log = parse_log(&buf, 0).unwrap();
            assert!(log.torn && log.ops.is_empty(), "{value}");
            buf.extend(encode_put("a", "1"));
            assert!(parse_log(&buf, 0).is_err(), "{value}");
        }
        let depth = 5000;
        let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let log = parse_log(&encode_put("d", &deep), 0).unwrap();
        assert_eq!(log.ops, vec![Op::Put("d".into(), deep.clone())]);
        let bad = format!("{}{}", "[".repeat(depth), "]".repeat(depth - 1));
        assert!(parse_log(&encode_put("d", &bad), 0).unwrap().torn);
    }

    #[test]
    fn damage_before_the_end_names_its_position() {
        let mut buf = encode_put("a", "1");
        let at = buf.len();
        let mut bad = encode_put("b", "2");
        bad[12] ^= 1;
        buf.extend(bad);
        buf.extend(encode_put("c", "3"));
        let d = parse_log(&buf, 100).unwrap_err();
        assert_eq!(d.position, 100 + at as u64);
    }

    #[test]
    fn files_parse_with_base_and_records() {
        let mut file = br#"{"a":1,"b":{"x":[1,2]}}"#.to_vec();
        file.extend(encode_put("c", "true"));
        file.extend(encode_delete("a"));
        let p = parse_file(&file).unwrap();
        assert_eq!(p.base_end, 23);
        assert_eq!(p.map.get("b").map(String::as_str), Some(r#"{"x":[1,2]}"#));
        assert_eq!(p.log.ops.len(), 2);

        let pretty = b"{\n  \"a\": 1\n}\n\n";
        let p = parse_file(pretty).unwrap();
        assert_eq!(p.base_end, pretty.len() as u64);
        assert_eq!(p.map.get("a").map(String::as_str), Some("1"));
    }

    #[test]
    fn a_bad_base_is_damage() {
        for bad in [
            &b"null"[..],
            b"[1]",
            b"",
            b"{\"a\":",
            b"{\"a\" 1}",
            b"\"x\"",
        ] {
            assert!(
                parse_file(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let d = parse_file(b"{\"a\":1,\n\"b\":x}").unwrap_err();
        assert_eq!(d.position, 12);
    }

    #[test]
    fn deep_values_load() {
        let depth = 5000;
        let value = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let mut map = BTreeMap::new();
        map.insert("deep".to_owned(), value.clone());
        let p = parse_file(&encode_base(&map)).unwrap();
        assert_eq!(p.map.get("deep"), Some(&value));
    }
}
