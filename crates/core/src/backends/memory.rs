//! In-process storage: a sorted map of JSON text. Not persistent, nothing to lock across
//! processes; every operation completes on its first poll.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::SystemTime;

use crate::core::expiry::{self, now_ms};
use crate::core::key::{with_prefix, with_prefix_after};
use crate::core::{Backend, Change, Deadline, HeldKey, Result, Write};

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

type Map = Rc<RefCell<BTreeMap<String, Entry>>>;

#[derive(Default)]
pub struct MemoryBackend {
    map: Map,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Applies `write` to `map`.
fn apply(map: &mut BTreeMap<String, Entry>, key: &str, write: Write<'_>) {
    let (json, expires) = match write {
        Write::Put(json) => (json, None),
        Write::PutFor(json, ttl) => (json, Some(expiry::expires_at(ttl))),
        Write::Delete => {
            map.remove(key);
            return;
        }
    };
    match map.get_mut(key) {
        Some(entry) => {
            json.clone_into(&mut entry.json);
            entry.expires = expires;
        }
        None => {
            let json = json.to_owned();
            map.insert(key.to_owned(), Entry { json, expires });
        }
    }
}

fn read(map: &BTreeMap<String, Entry>, key: &str) -> Option<String> {
    map.get(key)?.live(&mut None).map(str::to_owned)
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

    fn get_now<R>(&self, key: &str, read: impl FnOnce(Option<&str>) -> R) -> Option<Result<R>> {
        let map = self.map.borrow();
        Some(Ok(read(map.get(key).and_then(|e| e.live(&mut None)))))
    }

    fn write_now(&self, key: &str, write: Write<'_>) -> Option<Result<()>> {
        apply(&mut self.map.borrow_mut(), key, write);
        Some(Ok(()))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let map = self.map.borrow();
        let mut now = None;
        Ok(with_prefix(&map, prefix)
            .filter(|(_, e)| e.live(&mut now).is_some())
            .map(|(k, _)| k.clone())
            .collect())
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
        let mut now = None;
        Ok(with_prefix_after(&map, prefix, after)
            .filter_map(|(k, e)| e.live(&mut now).map(|json| (k.clone(), json.to_owned())))
            .take(limit)
            .collect())
    }

    async fn purge_expired(&self) -> Result<Option<SystemTime>> {
        let now = now_ms();
        let mut map = self.map.borrow_mut();
        map.retain(|_, e| !e.expires.is_some_and(|at| expiry::is_expired(at, now)));
        let next = map.values().filter_map(|e| e.expires).min();
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
            apply(&mut self.map.borrow_mut(), key, write);
        }
        Ok(())
    }
}
