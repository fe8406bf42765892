//! What a file store holds, as this process last read it: the live map, the expiries of its
//! keys and the size a compacted base would have. `Send`, so a whole file can be read, parsed
//! and replayed on another thread ([`Whole::read`]) and handed to the JS thread ready to use.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;

use super::disk::{self, FileId};
use super::format::{self, Damage, Op};
use crate::core::expiry::now_ms;
use crate::core::key::with_prefix;

/// The data of a store (invariant: `live_bytes` is the sum over `map` of key and value
/// lengths plus 4 per entry, kept by [`Contents::apply`] and [`Contents::reset`]).
#[derive(Default)]
pub(super) struct Contents {
    pub map: BTreeMap<String, String>,
    /// When keys written with a time to live expire (ms since the epoch); a key absent here
    /// never expires. Reads leave expired keys out; the purge deletes them.
    pub expiries: BTreeMap<String, u64>,
    /// Sum of key and value lengths: the size of a compacted base, roughly.
    pub live_bytes: u64,
}

impl Contents {
    pub fn apply(&mut self, op: Op) {
        let (k, v, expires) = match op {
            Op::Put(k, v) => (k, v, None),
            Op::PutUntil(k, v, at) => (k, v, Some(at)),
            Op::Delete(k) => {
                if let Some(old) = self.map.remove(&k) {
                    self.live_bytes -= (k.len() + old.len() + 4) as u64;
                }
                self.expiries.remove(&k);
                return;
            }
        };
        match expires {
            Some(at) => {
                self.expiries.insert(k.clone(), at);
            }
            None if !self.expiries.is_empty() => {
                self.expiries.remove(&k);
            }
            None => {}
        }
        let add = (k.len() + v.len() + 4) as u64;
        if let Some(old) = self.map.insert(k.clone(), v) {
            self.live_bytes -= (k.len() + old.len() + 4) as u64;
        }
        self.live_bytes += add;
    }

    /// Whether `key` has expired at `now` (read lazily: most stores have no expiring key).
    pub fn expired(&self, key: &str, now: &mut Option<u64>) -> bool {
        !self.expiries.is_empty()
            && self.expiries.get(key).is_some_and(|&at| {
                crate::core::expiry::is_expired(at, *now.get_or_insert_with(now_ms))
            })
    }

    /// The live value of `key`.
    pub fn value(&self, key: &str) -> Option<&str> {
        let v = self.map.get(key)?;
        (!self.expired(key, &mut None)).then_some(v.as_str())
    }

    /// The live entries starting with `prefix`, after `after`.
    pub fn live_from<'a>(
        &'a self,
        prefix: &'a str,
        after: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a String, &'a String)> + 'a {
        let mut now = None;
        with_prefix(&self.map, prefix)
            .filter(move |(k, _)| after.is_none_or(|a| k.as_str() > a))
            .filter(move |(k, _)| !self.expired(k, &mut now))
    }

    /// A base of the live data (expired keys dropped), with the expiries of its keys.
    pub fn encode_base(&self) -> Vec<u8> {
        if self.expiries.is_empty() {
            return format::encode_base(&self.map);
        }
        let now = now_ms();
        let live = |k: &String| {
            !self
                .expiries
                .get(k)
                .is_some_and(|&at| crate::core::expiry::is_expired(at, now))
        };
        let map = self
            .map
            .iter()
            .filter(|(k, _)| live(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let expiries = self
            .expiries
            .iter()
            .filter(|(k, _)| live(k))
            .map(|(k, &at)| (k.clone(), at))
            .collect();
        format::encode_base_expiring(&map, &expiries)
    }

    pub fn reset(&mut self, map: BTreeMap<String, String>, expiries: BTreeMap<String, u64>) {
        self.live_bytes = map
            .iter()
            .map(|(k, v)| (k.len() + v.len() + 4) as u64)
            .sum();
        self.map = map;
        self.expiries = expiries;
    }
}

/// A whole data file read and parsed, its records applied: what a reload installs.
pub(super) struct Whole {
    pub file: File,
    pub id: FileId,
    pub contents: Contents,
    /// End of the records applied: a record boundary.
    pub applied: u64,
    pub base_end: u64,
    /// Bytes after `applied` form a torn last record.
    pub torn: bool,
}

impl Whole {
    /// Reads the file at `path` whole. `Ok(None)`: there is no file; `Ok(Some(Err))`: it is
    /// damaged at the position given.
    pub fn read(path: &std::path::Path) -> io::Result<Option<Result<Whole, Damage>>> {
        let file = match disk::open_data(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        let buf = disk::read_at(&file, 0, meta.len())?;
        let parsed = match format::parse_file(&buf) {
            Ok(p) => p,
            Err(damage) => return Ok(Some(Err(damage))),
        };
        drop(buf);
        let mut contents = Contents::default();
        contents.reset(parsed.map, parsed.expiries);
        for op in parsed.log.ops {
            contents.apply(op);
        }
        Ok(Some(Ok(Whole {
            file,
            id: disk::file_id(&meta),
            contents,
            applied: parsed.base_end + parsed.log.valid_len as u64,
            base_end: parsed.base_end,
            torn: parsed.log.torn,
        })))
    }
}
