//! Redis Cluster's view of the keyspace (docs/redis.md, Cluster): which of 16,384 hash slots a
//! key is in, which node serves each slot (learnt with `CLUSTER SLOTS`, corrected by `MOVED`),
//! and the redirections a node answers with. Pure functions and data, tested without a server.

use super::resp::Reply;

/// How many hash slots a cluster has.
pub const SLOTS: u16 = 16384;

const CRC16: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_XMODEM);

/// The hash slot of the Redis key `name`: CRC16 of its hash tag — what lies between the first
/// `{` and the next `}` when that is not empty — or of the whole name.
pub fn slot(name: &[u8]) -> u16 {
    let tag = name
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &name[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(name);
    CRC16.checksum(tag) % SLOTS
}

/// Which node ("host:port") serves each slot: ranges sorted by their first slot.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Topology {
    ranges: Vec<(u16, u16, String)>,
}

impl Topology {
    /// The topology of a `CLUSTER SLOTS` reply: `[[first, last, [host, port, …], replicas…], …]`.
    /// A node listed without a host (or as `?`) is at `seed_host`, the host that was asked.
    pub fn from_reply(reply: Reply, seed_host: &str) -> Result<Topology, String> {
        let bad = || "unexpected reply to CLUSTER SLOTS".to_owned();
        let Reply::Array(Some(entries)) = reply else {
            return Err(bad());
        };
        let mut ranges = Vec::with_capacity(entries.len());
        for entry in entries {
            let Reply::Array(Some(parts)) = entry else {
                return Err(bad());
            };
            let (Some(first), Some(last), Some(Reply::Array(Some(master)))) =
                (parts.first(), parts.get(1), parts.get(2))
            else {
                return Err(bad());
            };
            let (Some(first), Some(last)) = (first.as_int(), last.as_int()) else {
                return Err(bad());
            };
            let host = match master.first() {
                Some(Reply::Bulk(Some(h))) if !h.is_empty() && h.as_slice() != b"?" => {
                    String::from_utf8(h.clone()).map_err(|_| bad())?
                }
                Some(Reply::Bulk(_)) => seed_host.to_owned(),
                _ => return Err(bad()),
            };
            let port = master.get(1).and_then(Reply::as_int).ok_or_else(bad)?;
            let in_range = |n: i64| (0..i64::from(SLOTS)).contains(&n);
            if !in_range(first) || !in_range(last) || first > last || !(1..65536).contains(&port) {
                return Err(bad());
            }
            ranges.push((first as u16, last as u16, address(&host, port as u16)));
        }
        ranges.sort_unstable_by_key(|r| r.0);
        Ok(Topology { ranges })
    }

    /// The node serving `slot`, if one is known.
    pub fn node(&self, slot: u16) -> Option<&str> {
        let i = self
            .ranges
            .partition_point(|r| r.0 <= slot)
            .checked_sub(1)?;
        let (_, last, node) = &self.ranges[i];
        (slot <= *last).then_some(node.as_str())
    }

    /// Records that `node` serves `slot` now (a `MOVED` redirection).
    pub fn moved(&mut self, slot: u16, node: &str) {
        if self.node(slot) == Some(node) {
            return;
        }
        let mut ranges = Vec::with_capacity(self.ranges.len() + 2);
        for (first, last, n) in self.ranges.drain(..) {
            if slot < first || slot > last {
                ranges.push((first, last, n));
                continue;
            }
            if first < slot {
                ranges.push((first, slot - 1, n.clone()));
            }
            if slot < last {
                ranges.push((slot + 1, last, n));
            }
        }
        ranges.push((slot, slot, node.to_owned()));
        ranges.sort_unstable_by_key(|r| r.0);
        self.ranges = ranges;
    }

    /// Every node that serves a slot, each once.
    pub fn nodes(&self) -> Vec<String> {
        let mut nodes: Vec<String> = self.ranges.iter().map(|r| r.2.clone()).collect();
        nodes.sort_unstable();
        nodes.dedup();
        nodes
    }
}

/// "host:port", with an IPv6 host in brackets.
pub fn address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The host and port of an [`address`].
pub fn split_address(node: &str) -> Option<(String, u16)> {
    let (host, port) = node.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_owned(), port.parse().ok()?))
}

/// A redirection in an error reply: `MOVED <slot> <host:port>` (the slot lives there now),
/// `ASK <slot> <host:port>` (this one command goes there, after `ASKING`), or `TRYAGAIN` (a
/// command on several keys of a slot being moved, some moved and some not: ask again soon).
#[derive(Debug, PartialEq, Eq)]
pub enum Redirect {
    Moved { slot: u16, node: String },
    Ask { node: String },
    TryAgain,
}

/// The redirection an error reply's text asks for, if any.
pub fn redirect(error: &str) -> Option<Redirect> {
    if error.starts_with("TRYAGAIN") {
        return Some(Redirect::TryAgain);
    }
    let mut words = error.split(' ');
    let kind = words.next()?;
    let slot: u16 = words.next()?.parse().ok().filter(|&s| s < SLOTS)?;
    let node = words.next()?;
    split_address(node)?;
    match kind {
        "MOVED" => Some(Redirect::Moved {
            slot,
            node: node.to_owned(),
        }),
        "ASK" => Some(Redirect::Ask {
            node: node.to_owned(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_as_the_cluster_specification_computes_them() {
        // The specification's check value, and slots redis-cli's CLUSTER KEYSLOT gives.
        assert_eq!(CRC16.checksum(b"123456789"), 0x31C3);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"bar"), 5061);
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        assert_eq!(slot(b"foo{}{bar}"), CRC16.checksum(b"foo{}{bar}") % SLOTS);
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
        assert_eq!(slot(b"foo{bar}{zap}"), slot(b"bar"));
    }

    fn node(host: &str, port: i64) -> Reply {
        Reply::Array(Some(vec![
            Reply::Bulk(Some(host.as_bytes().to_vec())),
            Reply::Int(port),
            Reply::Bulk(Some(b"id".to_vec())),
        ]))
    }

    fn range(first: i64, last: i64, master: Reply) -> Reply {
        Reply::Array(Some(vec![Reply::Int(first), Reply::Int(last), master]))
    }

    #[test]
    fn topology_from_cluster_slots_and_moved() {
        let reply = Reply::Array(Some(vec![
            range(5461, 10922, node("10.0.0.2", 7001)),
            range(0, 5460, node("", 7000)),
            range(10923, 16383, node("::1", 7002)),
        ]));
        let mut t = Topology::from_reply(reply, "seed").unwrap();
        assert_eq!(t.node(0), Some("seed:7000"));
        assert_eq!(t.node(5461), Some("10.0.0.2:7001"));
        assert_eq!(t.node(16383), Some("[::1]:7002"));
        assert_eq!(t.nodes().len(), 3);
        t.moved(5461, "seed:7000");
        assert_eq!(t.node(5461), Some("seed:7000"));
        assert_eq!(t.node(5460), Some("seed:7000"));
        assert_eq!(t.node(5462), Some("10.0.0.2:7001"));
        assert_eq!(t.node(10922), Some("10.0.0.2:7001"));
        assert_eq!(Topology::default().node(7), None);
        assert!(Topology::from_reply(Reply::Int(1), "x").is_err());
        assert!(
            Topology::from_reply(Reply::Array(Some(vec![range(0, 16384, node("a", 1))])), "x")
                .is_err()
        );
    }

    #[test]
    fn redirections() {
        assert_eq!(
            redirect("MOVED 3999 127.0.0.1:6381"),
            Some(Redirect::Moved {
                slot: 3999,
                node: "127.0.0.1:6381".into()
            })
        );
        assert_eq!(
            redirect("ASK 3999 [::1]:6381"),
            Some(Redirect::Ask {
                node: "[::1]:6381".into()
            })
        );
        assert_eq!(split_address("[::1]:6381"), Some(("::1".into(), 6381)));
        assert_eq!(
            redirect("TRYAGAIN Multiple keys request during rehashing of slot"),
            Some(Redirect::TryAgain)
        );
        assert_eq!(redirect("ERR unknown command"), None);
        assert_eq!(redirect("MOVED 99999 a:1"), None);
        assert_eq!(redirect("MOVED 1 nowhere"), None);
    }
}
