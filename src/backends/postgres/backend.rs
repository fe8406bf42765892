//! The PostgreSQL [`Backend`]: reshuffle's table, keys locked across servers with session-level
//! advisory locks on `(table, key)` numbers.
//!
//! Locking a key (see docs/postgres.md):
//! 1. fast path: `pg_try_advisory_lock` on a shared connection, pipelined with other work;
//! 2. when another session holds it: a pinned connection waits with `pg_advisory_lock`;
//!    if no connection may be pinned, `pg_try_advisory_lock` is retried with back-off.
//!
//! The holder reads and writes on the connection that holds the lock, then unlocks there;
//! writes are single autocommit statements sent before the unlock, so another server sees
//! the write as soon as it gets the lock. If the connection dies the server drops the lock and
//! every later statement of the holder fails: an interrupted update writes nothing.

use std::sync::Arc;
use std::time::Duration;

use super::config::PgConfig;
use super::error::pg_error;
use super::keys;
use super::pool::{Lease, Pool};
use super::runtime::{detach, run};
use crate::backends::sql_identifier::TableName;
use crate::core::{Backend, Change, DatastoreError, HeldKey, Result};

pub struct PgBackend {
    pool: Arc<Pool>,
    table_id: i32,
}

impl PgBackend {
    /// No I/O here: the first operation connects and creates the table.
    pub fn new(config: PgConfig, table: &TableName) -> Self {
        let quoted = table.quoted_folded();
        PgBackend {
            table_id: keys::table_lock_id(&quoted),
            pool: Pool::new(config, quoted, table.display()),
        }
    }
}

/// A key whose advisory lock is held through `lease`'s connection.
pub struct PgHeld {
    lease: Option<Lease>,
    ids: (i32, i32),
    id: String,
}

fn is_closed_conn(e: &tokio_postgres::Error) -> bool {
    e.is_closed()
}

/// Runs a query that is safe to repeat on a fresh shared connection, retrying once when the
/// connection turns out to be dead (e.g. its server process was terminated while idle).
async fn on_shared<T, F, Fut>(pool: &Arc<Pool>, f: F) -> Result<(T, Lease)>
where
    F: Fn(Arc<super::pool::Conn>) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, tokio_postgres::Error>>,
{
    let mut retried = false;
    loop {
        let lease = pool.shared().await?;
        match f(lease.conn.clone()).await {
            Ok(v) => return Ok((v, lease)),
            Err(e) if !retried && is_closed_conn(&e) => retried = true,
            Err(e) => return Err(pg_error(&pool.table_display, &e)),
        }
    }
}

async fn lock_key(pool: Arc<Pool>, ids: (i32, i32)) -> Result<Lease> {
    let (t, k) = ids;
    let (got, lease) = on_shared(&pool, |c| async move {
        let row = c.client.query_one(&c.stmts.try_lock, &[&t, &k]).await?;
        row.try_get::<_, bool>(0)
    })
    .await?;
    if got {
        return Ok(lease);
    }
    drop(lease);
    let mut backoff = Duration::from_millis(1);
    loop {
        if let Some(pinned) = pool.pinned().await? {
            pinned
                .client
                .execute(&pinned.stmts.lock, &[&t, &k])
                .await
                .map_err(|e| pg_error(&pool.table_display, &e))?;
            return Ok(pinned);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(50));
        let (got, lease) = on_shared(&pool, |c| async move {
            let row = c.client.query_one(&c.stmts.try_lock, &[&t, &k]).await?;
            row.try_get::<_, bool>(0)
        })
        .await?;
        if got {
            return Ok(lease);
        }
    }
}

impl Backend for PgBackend {
    type Held = PgHeld;

    async fn lock(&self, key: &str) -> Result<PgHeld> {
        let id = keys::encode(key);
        let ids = (self.table_id, keys::key_lock_id(&id));
        let pool = self.pool.clone();
        let lease = run(lock_key(pool, ids)).await?;
        Ok(PgHeld {
            lease: Some(lease),
            ids,
            id,
        })
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        let id = keys::encode(key);
        let pool = self.pool.clone();
        run(async move {
            let (row, _lease) = on_shared(&pool, |c| {
                let id = id.clone();
                async move { c.client.query_opt(&c.stmts.get, &[&id]).await }
            })
            .await?;
            read_value(&pool, row)
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let prefix = prefix.to_owned();
        let pool = self.pool.clone();
        run(async move {
            let (rows, _lease) = on_shared(&pool, |c| {
                let p = prefix.clone();
                async move {
                    c.client
                        .query(&c.stmts.list, &[&p, &keys::ENCODED_MARK])
                        .await
                }
            })
            .await?;
            let mut keys = Vec::with_capacity(rows.len());
            for row in rows {
                let id: String = row
                    .try_get(0)
                    .map_err(|e| pg_error(&pool.table_display, &e))?;
                if let Some(k) = keys::decode(&id).filter(|k| k.starts_with(&prefix)) {
                    keys.push(k);
                }
            }
            keys.sort_unstable();
            Ok(keys)
        })
        .await
    }

    async fn close(&self) -> Result<()> {
        self.pool.close();
        Ok(())
    }
}

/// A row's value; a NULL value (reshuffle's `set(k, undefined)`) reads as missing.
fn read_value(pool: &Pool, row: Option<tokio_postgres::Row>) -> Result<Option<String>> {
    match row {
        None => Ok(None),
        Some(r) => r
            .try_get::<_, Option<String>>(0)
            .map_err(|e| pg_error(&pool.table_display, &e)),
    }
}

fn lost_lease() -> DatastoreError {
    DatastoreError::backend("the key's PostgreSQL connection was already released")
}

impl HeldKey for PgHeld {
    async fn read(&mut self, _key: &str) -> Result<Option<String>> {
        let conn = self.lease.as_ref().ok_or_else(lost_lease)?.conn.clone();
        let id = self.id.clone();
        let table = self
            .lease
            .as_ref()
            .map(|l| l.pool_table())
            .unwrap_or_default();
        run(async move {
            let row = conn
                .client
                .query_opt(&conn.stmts.get, &[&id])
                .await
                .map_err(|e| pg_error(&table, &e))?;
            match row {
                None => Ok(None),
                Some(r) => r
                    .try_get::<_, Option<String>>(0)
                    .map_err(|e| pg_error(&table, &e)),
            }
        })
        .await
    }

    async fn finish(mut self, _key: &str, change: Change) -> Result<()> {
        let lease = self.lease.take().ok_or_else(lost_lease)?;
        let (t, k) = self.ids;
        let id = std::mem::take(&mut self.id);
        run(async move {
            let c = &lease.conn;
            let table = lease.pool_table();
            // Pipelined: the unlock is sent right behind the write and runs after it.
            let write = async {
                match &change {
                    Change::Keep => Ok(0),
                    Change::Put(json) => c.client.execute(&c.stmts.put, &[&id, json]).await,
                    Change::Delete => c.client.execute(&c.stmts.delete, &[&id]).await,
                }
            };
            let unlock_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&t, &k];
            let unlock = c.client.execute(&c.stmts.unlock, &unlock_params);
            // `join` polls in order, so the write is sent first.
            let (written, _unlocked) = futures_util::future::join(write, unlock).await;
            drop(lease);
            written.map(|_| ()).map_err(|e| pg_error(&table, &e))
        })
        .await
    }
}

impl Drop for PgHeld {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            let (t, k) = self.ids;
            detach(async move {
                let _ = lease
                    .conn
                    .client
                    .execute(&lease.conn.stmts.unlock, &[&t, &k])
                    .await;
                drop(lease);
            });
        }
    }
}
