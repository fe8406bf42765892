//! In-process storage: a sorted map of JSON text. Not persistent, nothing to lock across
//! processes; every operation completes on its first poll.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::core::key::with_prefix;
use crate::core::{Backend, Change, Deadline, HeldKey, Result, Write};

type Map = Rc<RefCell<BTreeMap<String, String>>>;

#[derive(Default)]
pub struct MemoryBackend {
    map: Map,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }
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
        Ok(self.map.borrow().get(key).cloned())
    }

    fn get_now<R>(&self, key: &str, read: impl FnOnce(Option<&str>) -> R) -> Option<Result<R>> {
        Some(Ok(read(self.map.borrow().get(key).map(String::as_str))))
    }

    fn write_now(&self, key: &str, write: Write<'_>) -> Option<Result<()>> {
        let mut map = self.map.borrow_mut();
        match write {
            Write::Put(json) => match map.get_mut(key) {
                Some(slot) => json.clone_into(slot),
                None => {
                    map.insert(key.to_owned(), json.to_owned());
                }
            },
            Write::Delete => {
                map.remove(key);
            }
        }
        Some(Ok(()))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let map = self.map.borrow();
        Ok(with_prefix(&map, prefix).map(|(k, _)| k.clone()).collect())
    }

    async fn close(&self) -> Result<()> {
        self.map.borrow_mut().clear();
        Ok(())
    }
}

impl HeldKey for MemoryHeld {
    async fn read(&mut self, key: &str) -> Result<Option<String>> {
        Ok(self.map.borrow().get(key).cloned())
    }

    async fn finish(self, key: &str, change: Change) -> Result<()> {
        let mut map = self.map.borrow_mut();
        match change {
            Change::Keep => {}
            Change::Put(json) => match map.get_mut(key) {
                Some(slot) => *slot = json,
                None => {
                    map.insert(key.to_owned(), json);
                }
            },
            Change::Delete => {
                map.remove(key);
            }
        }
        Ok(())
    }
}
