//! The Redis [`Backend`]: values as Redis strings of JSON text, keys locked across servers
//! with leases (`lease.rs`), expiry by Redis itself (`PX`). Key layout: `keys.rs`.
//!
//! - `update`: the lease is taken and the value read in one script; the final write is one
//!   script that checks the lease's token, writes (or deletes) and releases. A lease lost in
//!   between (it expired while its renewal could not run, or was deleted) rejects the write
//!   with `LeaseLost`, and nothing is written.
//! - `set` / `remove`: one script writes when no lease is held; when one is, they wait for it
//!   like an update (bounded by `lockTimeout`), then write under a lease of their own.
//! - If the connection an update took its lease on fails, the update fails and writes nothing;
//!   the next operation opens a new connection.

use std::rc::Rc;
use std::time::Instant;

use super::client::Client;
use super::config::RedisConfig;
use super::conn::Conn;
use super::keys;
use super::lease::{self, Lease};
use super::resp::Reply;
use super::scripts;
use super::slots;
use crate::core::key::has_prefix;
use crate::core::{Backend, Change, DatastoreError, Deadline, HeldKey, KeyList, Result};
use crate::runtime::executor::BusyGuard;

pub struct RedisBackend {
    client: Rc<Client>,
}

impl RedisBackend {
    /// No I/O here: the first operation connects.
    pub fn new(config: RedisConfig) -> Self {
        RedisBackend {
            client: Client::new(config),
        }
    }

    fn prefix(&self) -> &str {
        &self.client.config.prefix
    }
}

/// A key of one operation, with its lease once taken.
pub struct RedisHeld {
    client: Rc<Client>,
    key: String,
    deadline: Option<Instant>,
    lease: Option<Lease>,
}

/// `op, value, ms` of a change, as the scripts take it (`scripts.rs`); the value borrowed.
fn write_args(change: &Change) -> (&'static [u8], &[u8], Vec<u8>) {
    match change {
        Change::Keep => (b"keep", b"", Vec::new()),
        Change::Put(json) => (b"put", json.as_bytes(), Vec::new()),
        Change::PutFor(json, ttl) => (
            b"px",
            json.as_bytes(),
            ttl.as_micros()
                .div_ceil(1000)
                .max(1)
                .to_string()
                .into_bytes(),
        ),
        Change::Delete => (b"del", b"", Vec::new()),
    }
}

fn lease_lost(key: &str) -> DatastoreError {
    DatastoreError::LeaseLost {
        key: key.to_owned(),
    }
}

/// The error of an update whose lease's connection failed: nothing was written.
fn conn_lost(client: &Client, key: &str) -> DatastoreError {
    client.lost(&format!(
        "the connection was lost while key {key:?} was held; nothing was written"
    ))
}

fn text(client: &Client, reply: Reply) -> Result<Option<String>> {
    reply.into_text().map_err(|e| client.lost(&e))
}

impl RedisBackend {
    /// Every data key name under the store's prefix whose store key starts with `start`,
    /// gathered with SCAN on every server that holds keys (in a cluster, each node serving a
    /// slot; SCAN may repeat a name: they are deduplicated), sorted.
    async fn scan(&self, start: &str) -> Result<Vec<String>> {
        let _busy = BusyGuard::new();
        let client = &self.client;
        let pattern = keys::pattern(self.prefix(), start);
        let mut found = Vec::new();
        for conn in client.every_node().await? {
            let mut cursor = b"0".to_vec();
            loop {
                let reply = client
                    .on(
                        &conn,
                        &[b"SCAN", &cursor, b"MATCH", &pattern, b"COUNT", b"1000"],
                    )
                    .await?;
                let Reply::Array(Some(mut parts)) = reply else {
                    return Err(client.lost("unexpected reply to SCAN"));
                };
                let (Some(Reply::Array(Some(names))), Some(Reply::Bulk(Some(next)))) =
                    (parts.pop(), parts.pop())
                else {
                    return Err(client.lost("unexpected reply to SCAN"));
                };
                for name in names {
                    if let Reply::Bulk(Some(name)) = name {
                        if let Some(key) = keys::store_key(self.prefix(), &name) {
                            if has_prefix(key, start) {
                                found.push(key.to_owned());
                            }
                        }
                    }
                }
                if next == b"0" {
                    break;
                }
                cursor = next;
            }
        }
        found.sort_unstable();
        found.dedup();
        Ok(found)
    }

    /// The values of `keys`: one MGET, or in a cluster one per hash slot, sent together (a
    /// snapshot per slot only: Redis Cluster has no read across slots).
    async fn mget(&self, keys: impl Iterator<Item = &str>) -> Result<Vec<Option<String>>> {
        let names: Vec<Vec<u8>> = keys.map(|k| keys::data(self.prefix(), k)).collect();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let _busy = BusyGuard::new();
        let groups = self.by_slot(names.iter().map(Vec::as_slice));
        let replies = futures_util::future::join_all(groups.iter().map(|group| {
            let mut args: Vec<&[u8]> = vec![b"MGET"];
            args.extend(group.iter().map(|&i| names[i].as_slice()));
            async move { self.client.cmd(&args).await }
        }))
        .await;
        let mut values = vec![None; names.len()];
        for (group, reply) in groups.iter().zip(replies) {
            match reply? {
                Reply::Array(Some(got)) if got.len() == group.len() => {
                    for (&i, v) in group.iter().zip(got) {
                        values[i] = text(&self.client, v)?;
                    }
                }
                _ => return Err(self.client.lost("unexpected reply to MGET")),
            }
        }
        Ok(values)
    }

    /// The indices of `names`, grouped by hash slot in a cluster (first appearance order);
    /// one group of all of them otherwise.
    fn by_slot<'a>(&self, names: impl Iterator<Item = &'a [u8]>) -> Vec<Vec<usize>> {
        if !self.client.config.cluster {
            return vec![names.enumerate().map(|(i, _)| i).collect()];
        }
        let mut groups: Vec<(u16, Vec<usize>)> = Vec::new();
        for (i, name) in names.enumerate() {
            let slot = slots::slot(name);
            match groups.iter_mut().find(|(s, _)| *s == slot) {
                Some((_, group)) => group.push(i),
                None => groups.push((slot, vec![i])),
            }
        }
        groups.into_iter().map(|(_, g)| g).collect()
    }
}

impl Backend for RedisBackend {
    type Held = RedisHeld;

    async fn lock(&self, key: &str, deadline: &Deadline) -> Result<RedisHeld> {
        // The lease is taken by the first step that needs it (`read` or `finish`).
        Ok(RedisHeld {
            client: self.client.clone(),
            key: key.to_owned(),
            deadline: deadline.instant(),
            lease: None,
        })
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        let _busy = BusyGuard::new();
        let name = keys::data(self.prefix(), key);
        let reply = self.client.cmd(&[b"GET", &name]).await?;
        text(&self.client, reply)
    }

    async fn get_many(&self, keys: &[Rc<str>]) -> Result<Vec<Option<String>>> {
        self.mget(keys.iter().map(|k| &**k)).await
    }

    /// Redis keeps no ordered index of string keys: each page is a `SCAN` of the database.
    fn pages_walk_every_key(&self) -> bool {
        true
    }

    async fn list_keys(&self, prefix: &str) -> Result<KeyList> {
        Ok(self.scan(prefix).await?.into_iter().collect())
    }

    /// Takes every key's lease, then writes them all and releases the leases in one script
    /// (all or nothing: none is written if any lease was lost). In a cluster a script may only
    /// touch one hash slot, so there it is one script per slot, run one after another: all or
    /// nothing per slot (docs/redis.md, Cluster).
    async fn finish_many(
        &self,
        held: Vec<(Rc<str>, RedisHeld)>,
        changes: Vec<Change>,
    ) -> Result<()> {
        let _busy = BusyGuard::new();
        let client = &self.client;
        let mut held: Vec<RedisHeld> = held.into_iter().map(|(_, h)| h).collect();
        take_leases(client, &mut held).await?;
        let data: Vec<Vec<u8>> = held
            .iter()
            .map(|h| keys::data(self.prefix(), &h.key))
            .collect();
        for group in self.by_slot(data.iter().map(Vec::as_slice)) {
            let mut conn: Option<Rc<Conn>> = None;
            let mut names = Vec::with_capacity(group.len() * 2);
            let mut args: Vec<Vec<u8>> = Vec::with_capacity(group.len() * 4);
            for &i in &group {
                let h = &held[i];
                let Some(l) = &h.lease else { continue };
                // Every lease of a group was taken on the connection it is written on.
                let c = conn.get_or_insert_with(|| l.conn.clone());
                if !Rc::ptr_eq(&l.conn, c) || c.is_dead() {
                    return Err(conn_lost(client, &h.key));
                }
                names.push(data[i].clone());
                names.push(keys::lease(self.prefix(), &h.key));
                let (op, value, ms) = write_args(&changes[i]);
                args.extend([l.token.clone(), op.to_vec(), value.to_vec(), ms]);
            }
            let Some(conn) = conn else { continue };
            let names: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
            let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            match client
                .eval(&conn, &scripts::FINISH_MANY, &names, &args)
                .await?
            {
                Reply::Int(1) => {
                    // Released by the script.
                    group.iter().for_each(|&i| drop(held[i].lease.take()));
                }
                _ => return Err(lease_lost(&held[group[0]].key)),
            }
        }
        Ok(())
    }

    /// In a cluster, a key and its lease must hash to one slot, which their names' hash tag
    /// `{prefix+key}` ensures unless the tag is empty: a key starting with `}` under an empty
    /// prefix (a prefix starting with `}` is refused at construction).
    fn check_key(&self, key: &str) -> Result<()> {
        if self.client.config.cluster && self.prefix().is_empty() && key.starts_with('}') {
            return Err(DatastoreError::InvalidKey {
                reason: format!(
                    "in a Redis Cluster, a key cannot start with '}}' unless the store has a \
                     prefix (its lease would hash to another slot), got {:?}",
                    key.chars().take(32).collect::<String>()
                ),
            });
        }
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        self.client.close();
        Ok(())
    }
}

impl HeldKey for RedisHeld {
    async fn read(&mut self, key: &str) -> Result<Option<String>> {
        let _busy = BusyGuard::new();
        if self.lease.is_some() {
            let name = keys::data(&self.client.config.prefix, key);
            let reply = self.client.cmd(&[b"GET", &name]).await?;
            return text(&self.client, reply);
        }
        let (l, value) = lease::acquire(&self.client, key, true, self.deadline).await?;
        self.lease = Some(l);
        Ok(value)
    }

    async fn finish(mut self, key: &str, change: Change) -> Result<()> {
        let _busy = BusyGuard::new();
        let client = self.client.clone();
        let prefix = &client.config.prefix;
        let (op, value, ms) = write_args(&change);
        let (data_name, lease_name) = (keys::data(prefix, key), keys::lease(prefix, key));
        let names: [&[u8]; 2] = [&data_name, &lease_name];
        if self.lease.is_none() {
            if change == Change::Keep {
                return Ok(()); // never leased, nothing to do
            }
            // No lease of ours: write at once unless another holder has one.
            let conn = client.conn_for(&data_name).await?;
            let reply = client
                .eval(&conn, &scripts::WRITE_IF_FREE, &names, &[op, value, &ms])
                .await?;
            if reply == Reply::Int(1) {
                return Ok(());
            }
            let (l, _) = lease::acquire(&client, key, false, self.deadline).await?;
            self.lease = Some(l);
        }
        let Some(l) = self.lease.take() else {
            return Ok(());
        };
        if l.conn.is_dead() {
            lease::release(&client, key, l);
            return Err(conn_lost(&client, key));
        }
        let reply = client
            .eval(
                &l.conn,
                &scripts::FINISH,
                &names,
                &[&l.token, op, value, &ms],
            )
            .await;
        match reply {
            Ok(Reply::Int(1)) => Ok(()),
            Ok(_) => Err(lease_lost(key)),
            Err(e) => {
                lease::release(&client, key, l);
                Err(e)
            }
        }
    }
}

/// How many leases one step of [`take_leases`] tries at once, pipelined.
const TRY_AT_ONCE: usize = 100;

/// Takes the lease of every key of `held` (in key order) that has none yet. Up to
/// [`TRY_AT_ONCE`] are tried at once without waiting, pipelined on the connection: one round
/// trip for them instead of one each (setMany of 1,000 keys took ~90 ms). The run taken before
/// the first that another holder has is kept; any taken after it are given back, so nothing is
/// held out of key order while waiting, and that one is waited for alone before the rest are
/// tried again.
async fn take_leases(client: &Rc<Client>, held: &mut [RedisHeld]) -> Result<()> {
    let mut i = 0;
    while i < held.len() {
        if held[i].lease.is_some() {
            i += 1;
            continue;
        }
        let end = (i + TRY_AT_ONCE).min(held.len());
        let now = Some(Instant::now());
        let tries = held[i..end].iter().map(|h| async move {
            match &h.lease {
                Some(_) => None,
                None => Some(lease::acquire(client, &h.key, false, now).await),
            }
        });
        let tried = futures_util::future::join_all(tries).await;
        let mut blocked = None;
        let mut failed = None;
        for (j, got) in (i..end).zip(tried) {
            match got {
                None => {}
                Some(Ok((l, _))) if blocked.is_none() && failed.is_none() => {
                    held[j].lease = Some(l)
                }
                Some(Ok((l, _))) => lease::release(client, &held[j].key, l),
                Some(Err(DatastoreError::LockTimeout { .. })) => blocked = blocked.or(Some(j)),
                Some(Err(e)) => failed = failed.or(Some(e)),
            }
        }
        // Every lease of this step is kept or given back by now; those kept are released as
        // `held` drops.
        if let Some(e) = failed {
            return Err(e);
        }
        let Some(j) = blocked else {
            i = end;
            continue;
        };
        let h = &mut held[j];
        let waited = lease::acquire(client, &h.key, false, h.deadline).await;
        h.lease = Some(waited.map_err(|e| e.for_key(&h.key))?.0);
        i = j + 1;
    }
    Ok(())
}

impl Drop for RedisHeld {
    fn drop(&mut self) {
        if let Some(l) = self.lease.take() {
            lease::release(&self.client, &self.key, l);
        }
    }
}
