//! RESP2, the Redis protocol: commands out as arrays of bulk strings, replies in as one of five
//! types. Pure functions over byte buffers, so the parser is tested without a server.

/// One reply of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Status(String),
    /// `-ERR …`: the command failed; the connection is fine.
    Error(String),
    Int(i64),
    /// `None`: the nil bulk string (a missing key).
    Bulk(Option<Vec<u8>>),
    /// `None`: the nil array.
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The text of a bulk or status reply; `None` for nil (and for other types).
    pub fn into_text(self) -> Result<Option<String>, String> {
        match self {
            Reply::Bulk(None) => Ok(None),
            Reply::Bulk(Some(b)) => String::from_utf8(b)
                .map(Some)
                .map_err(|_| "the stored value is not UTF-8 text".to_owned()),
            Reply::Status(s) => Ok(Some(s)),
            other => Err(format!("unexpected reply {other:?}")),
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Reply::Int(n) => Some(*n),
            _ => None,
        }
    }
}

/// Appends the command `args` to `out`.
pub fn encode(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// The largest bulk string accepted (Redis's own `proto-max-bulk-len` default).
const MAX_BULK: i64 = 512 * 1024 * 1024;
/// The deepest nesting of arrays accepted (our scripts reply with at most two levels).
const MAX_DEPTH: usize = 8;

/// Parses one reply from the start of `buf`: `Ok(None)` when `buf` holds only part of it,
/// else the reply and how many bytes it took. An error means the stream cannot be read on.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    parse_at(buf, 0, 0)
}

fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(at..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..end], at + end + 2))
}

fn number(text: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad number in reply: {:?}", String::from_utf8_lossy(text)))
}

fn parse_at(buf: &[u8], at: usize, depth: usize) -> Result<Option<(Reply, usize)>, String> {
    let Some(&kind) = buf.get(at) else {
        return Ok(None);
    };
    let Some((text, next)) = line(buf, at + 1) else {
        return Ok(None);
    };
    let utf8 = || String::from_utf8_lossy(text).into_owned();
    match kind {
        b'+' => Ok(Some((Reply::Status(utf8()), next))),
        b'-' => Ok(Some((Reply::Error(utf8()), next))),
        b':' => Ok(Some((Reply::Int(number(text)?), next))),
        b'$' => {
            let n = number(text)?;
            if n < 0 {
                return Ok(Some((Reply::Bulk(None), next)));
            }
            if n > MAX_BULK {
                return Err(format!("a reply of {n} bytes is too large"));
            }
            let end = next + n as usize;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err("a bulk reply does not end with CRLF".into());
            }
            Ok(Some((Reply::Bulk(Some(buf[next..end].to_vec())), end + 2)))
        }
        b'*' => {
            let n = number(text)?;
            if n < 0 {
                return Ok(Some((Reply::Array(None), next)));
            }
            if depth >= MAX_DEPTH {
                return Err("replies nested too deep".into());
            }
            let mut items = Vec::with_capacity((n as usize).min(1024));
            let mut pos = next;
            for _ in 0..n {
                match parse_at(buf, pos, depth + 1)? {
                    Some((item, after)) => {
                        items.push(item);
                        pos = after;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Reply::Array(Some(items)), pos)))
        }
        other => Err(format!("unknown reply type byte {other:#04x}")),
    }
}

/// How many bytes a reply starting at `buf` needs at least, when its header says so (a bulk
/// string): lets the reader grow its buffer once for a large value.
pub fn bulk_need(buf: &[u8]) -> Option<usize> {
    if buf.first() != Some(&b'$') {
        return None;
    }
    let (text, next) = line(buf, 1)?;
    let n = number(text).ok()?;
    (0..=MAX_BULK).contains(&n).then(|| next + n as usize + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_commands() {
        let mut out = Vec::new();
        encode(&[b"SET", b"k", b""], &mut out);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }

    #[test]
    fn parses_every_type_and_waits_for_the_rest() {
        let all =
            b"+OK\r\n-ERR no\r\n:42\r\n$3\r\na\r\n\r\n$-1\r\n*2\r\n:1\r\n*1\r\n$-1\r\n*-1\r\n";
        let mut pos = 0;
        let mut got = Vec::new();
        while pos < all.len() {
            // Every strict prefix of a reply is incomplete, never an error.
            let (reply, n) = parse(&all[pos..]).unwrap().unwrap();
            for cut in 0..n {
                assert_eq!(parse(&all[pos..pos + cut]).unwrap(), None);
            }
            got.push(reply);
            pos += n;
        }
        assert_eq!(
            got,
            [
                Reply::Status("OK".into()),
                Reply::Error("ERR no".into()),
                Reply::Int(42),
                Reply::Bulk(Some(b"a\r\n".to_vec())),
                Reply::Bulk(None),
                Reply::Array(Some(vec![
                    Reply::Int(1),
                    Reply::Array(Some(vec![Reply::Bulk(None)]))
                ])),
                Reply::Array(None),
            ]
        );
    }

    #[test]
    fn refuses_garbage() {
        assert!(parse(b"?x\r\n").is_err());
        assert!(parse(b":x\r\n").is_err());
        assert!(parse(b"$1\r\nab\r\n").is_err());
        assert!(parse(b"$999999999999\r\n").is_err());
        assert_eq!(bulk_need(b"$10\r\nab"), Some(17));
    }
}
