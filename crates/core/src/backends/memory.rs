//! In-process storage: JSON text by key, hashed and in key order. Not persistent, nothing to lock across
//! processes; every operation completes on its first poll.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::SystemTime;

use crate::core::expiry::{self, now_ms};
use crate::core::key::with_prefix_after;
use crate::core::{Backend, Change, Deadline, HeldKey, KeyList, Result, StoredText, Write};

/// A stored value: JSON text, and when it expires (ms since the epoch), if ever.
struct Entry {
    json: String,
    expires: Option<u64>,
}

impl Entry {
    /// The text, unless expired at `now` (read lazily: most values never expire).
    fn live(&self, now: &mut Option<u64>) -> Option<&str> {
        match self.expires {
            Some(at) if expiry::is_expired(at, *now.get_or_insert_with(now_ms)) => None,
            _ => Some(&self.json),
        }
    }
}

/// The stored entries, found by hash (a get or a write: one hash, where a search of the
/// sorted map compared the key with a dozen others) and walked in key order (list, pages).
///
/// Invariants: `order` holds exactly the keys of `entries`, each the same `Rc`; `expiring`
/// counts the entries with an expiry (while none has, a walk needs no lookup of each entry).
#[derive(Default)]
struct Contents {
    entries: HashMap<Rc<str>, Entry, foldhash::fast::RandomState>,
    order: BTreeMap<Rc<str>, ()>,
    expiring: usize,
}

impl Contents {
    /// The live text of `key`.
    fn live(&self, key: &str, now: &mut Option<u64>) -> Option<&str> {
        self.entries.get(key)?.live(now)
    }

    /// The live entries whose key starts with `prefix`, after `after`, in key order.
    fn live_from<'a>(
        &'a self,
        prefix: &'a str,
        after: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Rc<str>, &'a str)> + 'a {
        let mut now = None;
        with_prefix_after(&self.order, prefix, after)
            .filter_map(move |(k, ())| self.live(k, &mut now).map(|json| (k, json)))
    }

    /// The live keys that start with `prefix`, in key order.
    fn live_keys<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a Rc<str>> + 'a {
        let mut now = None;
        with_prefix_after(&self.order, prefix, None)
            .map(|(k, ())| k)
            .filter(move |k| self.expiring == 0 || self.live(k, &mut now).is_some())
    }

    /// Applies `write`.
    fn apply(&mut self, key: &str, write: Write<'_>) {
        let (json, expires) = match write {
            Write::Put(json) => (json, None),
            Write::PutFor(json, ttl) => (json, Some(expiry::expires_at(ttl))),
            Write::Delete => {
                if let Some(old) = self.entries.remove(key) {
                    self.order.remove(key);
                    self.expiring -= usize::from(old.expires.is_some());
                }
                return;
            }
        };
        self.expiring += usize::from(expires.is_some());
        match self.entries.get_mut(key) {
            Some(entry) => {
                // Into the text's own buffer: a value written again allocates nothing.
                json.clone_into(&mut entry.json);
                self.expiring -= usize::from(entry.expires.is_some());
                entry.expires = expires;
            }
            None => {
                let key: Rc<str> = key.into();
                self.order.insert(key.clone(), ());
                let json = json.to_owned();
                self.entries.insert(key, Entry { json, expires });
            }
        }
    }

    /// Removes the entries expired at `now`; when the next of the others expires.
    fn purge(&mut self, now: u64) -> Option<u64> {
        let (order, expiring) = (&mut self.order, &mut self.expiring);
        self.entries.retain(|k, e| {
            let expired = e.expires.is_some_and(|at| expiry::is_expired(at, now));
            if expired {
                order.remove(k);
                *expiring -= 1;
            }
            !expired
        });
        self.entries.values().filter_map(|e| e.expires).min()
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
        self.expiring = 0;
    }
}

type Map = Rc<RefCell<Contents>>;

#[derive(Default)]
pub struct MemoryBackend {
    map: Map,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }
}

fn read(map: &Contents, key: &str) -> Option<String> {
    map.live(key, &mut None).map(str::to_owned)
}

/// A key of the memory backend; the store's in-process lock is all the locking it needs.
pub struct MemoryHeld {
    map: Map,
}

impl Backend for MemoryBackend {
    type Held = MemoryHeld;

    async fn lock(&self, _key: &str, _deadline: &Deadline) -> Result<MemoryHeld> {
        Ok(MemoryHeld {
            map: self.map.clone(),
        })
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        Ok(read(&self.map.borrow(), key))
    }

    fn get_now<R>(
        &self,
        key: &str,
        read: impl FnOnce(Option<StoredText<'_>>) -> R,
    ) -> Option<Result<R>> {
        let map = self.map.borrow();
        Some(Ok(read(map.live(key, &mut None).map(StoredText::Borrowed))))
    }

    fn write_now(&self, key: &str, write: Write<'_>) -> Option<Result<()>> {
        self.map.borrow_mut().apply(key, write);
        Some(Ok(()))
    }

    async fn list_keys(&self, prefix: &str) -> Result<KeyList> {
        Ok(self.map.borrow().live_keys(prefix).collect())
    }

    async fn list_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>> {
        Ok(self
            .entries_page(prefix, after, limit)
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }

    async fn entries_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>> {
        let map = self.map.borrow();
        Ok(map
            .live_from(prefix, after)
            .map(|(k, json)| (String::from(&**k), json.to_owned()))
            .take(limit)
            .collect())
    }

    async fn purge_expired(&self) -> Result<Option<SystemTime>> {
        let next = self.map.borrow_mut().purge(now_ms());
        Ok(next.map(expiry::system_time))
    }

    async fn close(&self) -> Result<()> {
        self.map.borrow_mut().clear();
        Ok(())
    }
}

impl HeldKey for MemoryHeld {
    async fn read(&mut self, key: &str) -> Result<Option<String>> {
        Ok(read(&self.map.borrow(), key))
    }

    async fn finish(self, key: &str, change: Change) -> Result<()> {
        if let Some(write) = change.as_write() {
            self.map.borrow_mut().apply(key, write);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The invariants written on [`Contents`].
    fn check(c: &Contents) {
        let mut hashed: Vec<&str> = c.entries.keys().map(|k| &**k).collect();
        hashed.sort_unstable();
        let ordered: Vec<&str> = c.order.keys().map(|k| &**k).collect();
        assert_eq!(hashed, ordered, "the order holds exactly the hashed keys");
        let with_expiry = c.entries.values().filter(|e| e.expires.is_some()).count();
        assert_eq!(
            c.expiring, with_expiry,
            "entries with an expiry are counted"
        );
    }

    #[test]
    fn writes_keep_the_order_and_the_count_of_expiring_entries() {
        let mut c = Contents::default();
        let long = Duration::from_secs(600);
        let steps: &[(&str, Write<'_>)] = &[
            ("a", Write::Put("1")),
            ("b", Write::PutFor("2", long)),
            ("b", Write::PutFor("3", long)),
            ("b", Write::Put("4")),
            ("c", Write::PutFor("5", long)),
            ("a", Write::PutFor("6", long)),
            ("c", Write::Delete),
            ("missing", Write::Delete),
            ("a", Write::Delete),
            ("d", Write::PutFor("7", Duration::from_millis(1))),
        ];
        for (key, write) in steps {
            c.apply(key, *write);
            check(&c);
        }
        std::thread::sleep(Duration::from_millis(5));
        let keys: Vec<&str> = c.live_keys("").map(|k| &**k).collect();
        assert_eq!(keys, ["b"], "an expired key is not listed");
        assert_eq!(c.purge(now_ms()), None);
        check(&c);
        c.apply("e", Write::PutFor("8", long));
        assert!(c.purge(now_ms()).is_some(), "the next expiry");
        check(&c);
        c.clear();
        check(&c);
    }
}
