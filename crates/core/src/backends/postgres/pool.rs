//! A small pool of PostgreSQL connections shared by one store, used in two ways:
//! - **shared**: many operations at once on one connection (tokio-postgres pipelines them);
//!   a new connection is opened when every shared one is busy, up to the pool size;
//! - **pinned**: one connection given to a single operation that waits on the server for a
//!   key lock (`pg_advisory_lock`); nothing else is queued behind that wait.
//!
//! Invariants that keep cross-process waits free of deadlock: a connection is pinned only when
//! nothing is in flight on it and no lease holds it (so it holds no advisory lock of ours), and
//! at most `size - 1` connections are pinned, so shared work always has a connection.

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{Notify, OnceCell};
use tokio_postgres::{Client, Statement};

use tokio_postgres::config::SslMode;
use tokio_postgres::tls::MakeTlsConnect;

use super::config::{PasswordSource, PgConfig, Tls};
use super::error::pg_error;
use super::keys;
use super::socket::{self, LoopSocket};
use super::tls;
use crate::core::Result;
use crate::runtime::executor::Executor;
use crate::runtime::timer::{with_timeout, Sleep};

/// Runs a session's connection task (the driver's socket I/O) on this thread's executor.
fn spawn_connection<F>(conn: F) -> std::result::Result<(), String>
where
    F: std::future::Future + 'static,
{
    let exec = Executor::current().ok_or("no executor on this thread")?;
    exec.start(async move {
        let _ = conn.await;
    });
    Ok(())
}

/// Shared connections carry this many operations before another connection is opened.
const BUSY: usize = 8;

/// The prepared statements of one connection.
pub struct Statements {
    pub get: Statement,
    pub list: Statement,
    pub put: Statement,
    /// The upsert under a transaction-scoped try-lock of the key: 0 rows when it is taken.
    pub put_if_free: Statement,
    pub delete: Statement,
    pub try_lock: Statement,
    pub lock: Statement,
    pub unlock: Statement,
    /// Sets the session's `lock_timeout` (text, e.g. `'250ms'`) for the wait that follows.
    pub set_lock_timeout: Statement,
    /// Back to the session's own `lock_timeout`.
    pub reset_lock_timeout: Statement,
    /// `$1` id, `$2` JSON, `$3` milliseconds to live.
    pub put_for: Statement,
    /// `put_if_free` with `$5` milliseconds to live.
    pub put_for_if_free: Statement,
    /// `$1` ids: `(id, value)` of the live ones.
    pub get_many: Statement,
    /// `$1` prefix, `$2` the id to start after (or NULL), `$3` the most rows.
    pub page: Statement,
    /// One statement, all or nothing: upserts of `$1` ids, `$2` values, `$3` milliseconds to
    /// live (NULL: none), then deletes of `$4` ids.
    pub write_many: Statement,
    /// Deletes the expired rows, then says when the next expires (ms since the epoch).
    pub purge: Statement,
}

/// The SQL of a row that has not expired.
const LIVE: &str = "(expires_at IS NULL OR expires_at > now())";
/// When a value written now with `$n` milliseconds to live expires.
fn expiry_of(n: u8) -> String {
    format!("now() + ${n}::bigint * interval '1 millisecond'")
}

pub struct Conn {
    pub client: Client,
    pub stmts: Statements,
    /// Leases out right now (operations in flight or keys held through this connection).
    load: AtomicUsize,
    pinned: AtomicBool,
    /// When `load` last dropped to 0, in milliseconds since the pool's `epoch`.
    idle_since: AtomicU64,
    /// Known dead although the driver has not noticed yet: never lent again.
    retired: AtomicBool,
}

impl Conn {
    /// Keeps this connection from being lent again (its session is known to be over).
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }

    fn usable(&self) -> bool {
        !self.retired.load(Ordering::Acquire) && !self.client.is_closed()
    }
}

pub struct Pool {
    config: PgConfig,
    /// Asked for the password of each new connection, when it is not fixed in `config`.
    password: Option<Rc<dyn PasswordSource>>,
    /// The table, quoted (folded) for SQL.
    pub table: String,
    /// The table as the caller wrote it, for messages.
    pub table_display: String,
    state: Mutex<State>,
    changed: Notify,
    table_ready: OnceCell<()>,
    closed: AtomicBool,
    epoch: Instant,
}

#[derive(Default)]
struct State {
    conns: Vec<Arc<Conn>>,
    /// Connections being opened (counted against the pool size)...
    opening: usize,
    /// ...of which this many will be pinned.
    opening_pinned: usize,
}

/// A connection lent to one operation; returned when dropped.
pub struct Lease {
    pool: Rc<Pool>,
    pub conn: Arc<Conn>,
    pinned: bool,
}

impl Lease {
    /// The table as the caller wrote it, for messages.
    pub fn pool_table(&self) -> String {
        self.pool.table_display.clone()
    }

    /// How long the event loop polls for a reply on this lease (see [`Pool::busy_poll`]).
    pub fn busy_poll(&self) -> std::time::Duration {
        self.pool.busy_poll()
    }
}

impl std::ops::Deref for Lease {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.conn
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        {
            let _state = self.pool.state.lock();
            if self.pinned {
                self.conn.pinned.store(false, Ordering::Release);
            }
            if self.conn.load.fetch_sub(1, Ordering::AcqRel) == 1 {
                self.conn
                    .idle_since
                    .store(self.pool.now_ms(), Ordering::Release);
            }
        }
        self.pool.changed.notify_waiters();
    }
}

enum Choice {
    Open,
    Wait,
}

impl Pool {
    pub fn new(
        config: PgConfig,
        password: Option<Rc<dyn PasswordSource>>,
        table: String,
        table_display: String,
    ) -> Rc<Pool> {
        Rc::new(Pool {
            config,
            password,
            table,
            table_display,
            state: Mutex::default(),
            changed: Notify::new(),
            table_ready: OnceCell::new(),
            closed: AtomicBool::new(false),
            epoch: Instant::now(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn size(&self) -> usize {
        self.config.pool_size
    }

    /// How long the event loop polls for an operation's reply before it sleeps.
    pub fn busy_poll(&self) -> Duration {
        self.config.busy_poll
    }

    fn lease(self: &Rc<Self>, conn: &Arc<Conn>, pinned: bool) -> Lease {
        conn.load.fetch_add(1, Ordering::AcqRel);
        if pinned {
            conn.pinned.store(true, Ordering::Release);
        }
        Lease {
            pool: self.clone(),
            conn: conn.clone(),
            pinned,
        }
    }

    /// A connection to share with other operations.
    pub async fn shared(self: &Rc<Self>) -> Result<Lease> {
        self.ensure_table().await?;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let choice = {
                let mut st = self.state.lock();
                self.check_open()?;
                st.conns.retain(|c| c.usable());
                let best = st
                    .conns
                    .iter()
                    .filter(|c| !c.pinned.load(Ordering::Acquire))
                    .min_by_key(|c| c.load.load(Ordering::Acquire))
                    .cloned();
                let room = st.conns.len() + st.opening < self.size();
                match best {
                    Some(c) if !room || c.load.load(Ordering::Acquire) < BUSY => {
                        return Ok(self.lease(&c, false));
                    }
                    _ if room => {
                        st.opening += 1;
                        Choice::Open
                    }
                    _ => Choice::Wait,
                }
            };
            match choice {
                Choice::Open => return self.open_and_lease(false).await,
                _ => changed.await,
            }
        }
    }

    /// A connection for this operation alone, or `None` when pinning one would leave shared
    /// work without a connection (the caller then polls instead of waiting on the server).
    pub async fn pinned(self: &Rc<Self>) -> Result<Option<Lease>> {
        self.ensure_table().await?;
        let choice = {
            let mut st = self.state.lock();
            self.check_open()?;
            st.conns.retain(|c| c.usable());
            let pinned = st
                .conns
                .iter()
                .filter(|c| c.pinned.load(Ordering::Acquire))
                .count();
            if pinned + st.opening_pinned + 1 >= self.size() {
                return Ok(None);
            }
            let idle = st
                .conns
                .iter()
                .find(|c| !c.pinned.load(Ordering::Acquire) && c.load.load(Ordering::Acquire) == 0)
                .cloned();
            match idle {
                // Leased under the state lock, so no shared lease can slip in before the pin.
                Some(c) => return Ok(Some(self.lease(&c, true))),
                None if st.conns.len() + st.opening < self.size() => {
                    st.opening += 1;
                    st.opening_pinned += 1;
                    Choice::Open
                }
                None => return Ok(None),
            }
        };
        match choice {
            Choice::Open => self.open_and_lease(true).await.map(Some),
            Choice::Wait => Ok(None),
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(crate::core::DatastoreError::Closed)
        } else {
            Ok(())
        }
    }

    async fn open_and_lease(self: &Rc<Self>, pinned: bool) -> Result<Lease> {
        let opened = self.open().await;
        let lease = {
            let mut st = self.state.lock();
            st.opening -= 1;
            if pinned {
                st.opening_pinned -= 1;
            }
            match opened {
                Ok(conn) => {
                    let conn = Arc::new(conn);
                    let lease = self.lease(&conn, pinned);
                    if !self.closed.load(Ordering::Acquire) {
                        st.conns.push(conn);
                    }
                    Ok(lease)
                }
                Err(e) => Err(e),
            }
        };
        self.changed.notify_waiters();
        lease
    }

    /// Opens a connection and prepares the statements (the table must exist).
    async fn open(&self) -> Result<Conn> {
        let client = self.connect().await?;
        self.prepare(client).await
    }

    async fn prepare(&self, client: Client) -> Result<Conn> {
        let t = &self.table;
        let (put_for, put_for_if_free, purge) = (
            format!(
                "INSERT INTO {t} (id, value, expires_at) VALUES ($1, $2, {}) \
                 ON CONFLICT (id) DO UPDATE SET value = EXCLUDED.value, \
                 expires_at = EXCLUDED.expires_at",
                expiry_of(3)
            ),
            format!(
                "WITH l AS (SELECT pg_try_advisory_xact_lock($3::int4, $4::int4) AS free) \
                 INSERT INTO {t} (id, value, expires_at) \
                 SELECT $1::varchar, $2::varchar, {} FROM l WHERE l.free \
                 ON CONFLICT (id) DO UPDATE SET value = EXCLUDED.value, \
                 expires_at = EXCLUDED.expires_at",
                expiry_of(5)
            ),
            format!(
                "WITH gone AS (DELETE FROM {t} WHERE expires_at <= now()) \
                 SELECT (extract(epoch FROM min(expires_at)) * 1000)::bigint FROM {t} \
                 WHERE expires_at > now()"
            ),
        );
        let sql = [
            format!("SELECT value FROM {t} WHERE id = $1 AND {LIVE}"),
            format!(
                "SELECT id FROM {t} WHERE value IS NOT NULL \
                 AND left(id, char_length($1::varchar)) = $1 AND {LIVE}"
            ),
            format!(
                "INSERT INTO {t} (id, value, expires_at) VALUES ($1, $2, NULL) \
                 ON CONFLICT (id) DO UPDATE SET value = EXCLUDED.value, expires_at = NULL"
            ),
            format!(
                "WITH l AS (SELECT pg_try_advisory_xact_lock($3::int4, $4::int4) AS free) \
                 INSERT INTO {t} (id, value, expires_at) \
                 SELECT $1::varchar, $2::varchar, NULL FROM l WHERE l.free \
                 ON CONFLICT (id) DO UPDATE SET value = EXCLUDED.value, expires_at = NULL"
            ),
            format!("DELETE FROM {t} WHERE id = $1"),
            "SELECT pg_try_advisory_lock($1::int4, $2::int4)".to_owned(),
            "SELECT 1 FROM pg_advisory_lock($1::int4, $2::int4)".to_owned(),
            "SELECT pg_advisory_unlock($1::int4, $2::int4)".to_owned(),
            "SELECT set_config('lock_timeout', $1::text, false)".to_owned(),
            "RESET lock_timeout".to_owned(),
            put_for,
            put_for_if_free,
            format!(
                "SELECT id, value FROM {t} WHERE id = ANY($1::varchar[]) \
                 AND value IS NOT NULL AND {LIVE}"
            ),
            format!(
                "SELECT id, value FROM {t} WHERE value IS NOT NULL \
                 AND left(id, char_length($1::varchar)) = $1 \
                 AND ($2::varchar IS NULL OR id COLLATE \"C\" > $2::varchar COLLATE \"C\") \
                 AND {LIVE} ORDER BY id COLLATE \"C\" LIMIT $3::bigint"
            ),
            format!(
                "WITH gone AS (DELETE FROM {t} WHERE id = ANY($4::varchar[])), \
                 put AS (INSERT INTO {t} (id, value, expires_at) \
                 SELECT k, v, CASE WHEN e IS NULL THEN NULL \
                 ELSE now() + e * interval '1 millisecond' END \
                 FROM unnest($1::varchar[], $2::varchar[], $3::bigint[]) AS u(k, v, e) \
                 ON CONFLICT (id) DO UPDATE SET value = EXCLUDED.value, \
                 expires_at = EXCLUDED.expires_at) \
                 SELECT 1"
            ),
            purge,
        ];
        let prepared =
            futures_util::future::try_join_all(sql.iter().map(|s| client.prepare(s))).await;
        let mut s = prepared
            .map_err(|e| pg_error(&self.table_display, &e))?
            .into_iter();
        let mut next = || s.next().ok_or_else(|| pg_error_text("statement missing"));
        let stmts = Statements {
            get: next()?,
            list: next()?,
            put: next()?,
            put_if_free: next()?,
            delete: next()?,
            try_lock: next()?,
            lock: next()?,
            unlock: next()?,
            set_lock_timeout: next()?,
            reset_lock_timeout: next()?,
            put_for: next()?,
            put_for_if_free: next()?,
            get_many: next()?,
            page: next()?,
            write_many: next()?,
            purge: next()?,
        };
        Ok(Conn {
            client,
            stmts,
            load: AtomicUsize::new(0),
            pinned: AtomicBool::new(false),
            idle_since: AtomicU64::new(self.now_ms()),
            retired: AtomicBool::new(false),
        })
    }

    /// Opens a session on a socket of this thread's reactor; its connection task runs on the
    /// executor and ends when the client is dropped.
    async fn connect(&self) -> Result<Client> {
        let c = &self.config;
        let mut pg = tokio_postgres::Config::new();
        pg.user(&c.user)
            .dbname(&c.database)
            .application_name(&c.application_name);
        match &self.password {
            Some(source) => {
                let password = source.password().await.map_err(|e| {
                    pg_error_text(format!(
                        "cannot connect to PostgreSQL at {}:{} as {}: the password function \
                         failed: {e}",
                        c.host, c.port, c.user
                    ))
                })?;
                pg.password(password);
            }
            None => {
                if let Some(p) = &c.password {
                    pg.password(p);
                }
            }
        }
        if let Some(o) = &c.options {
            pg.options(o);
        }
        let tls = tls::connector(&c.tls)?;
        let connecting = async {
            let socket = socket::connect(&c.host, c.port)
                .await
                .map_err(|e| e.to_string())?;
            let describe = |e: tokio_postgres::Error| super::error::describe(&e);
            match tls {
                None => {
                    pg.ssl_mode(SslMode::Disable);
                    let (client, conn) = pg
                        .connect_raw(socket, tokio_postgres::NoTls)
                        .await
                        .map_err(describe)?;
                    spawn_connection(conn)?;
                    Ok(client)
                }
                Some(mut make) => {
                    pg.ssl_mode(if c.tls == Tls::Prefer {
                        SslMode::Prefer
                    } else {
                        SslMode::Require
                    });
                    let tls = MakeTlsConnect::<LoopSocket>::make_tls_connect(&mut make, &c.host)
                        .map_err(|e| e.to_string())?;
                    let (client, conn) = pg.connect_raw(socket, tls).await.map_err(describe)?;
                    spawn_connection(conn)?;
                    Ok(client)
                }
            }
        };
        let connected = match c.connect_timeout {
            None => connecting.await,
            Some(limit) => with_timeout(Box::pin(connecting), limit)
                .await
                .unwrap_or_else(|_| Err(format!("timed out after {} ms", limit.as_millis()))),
        };
        connected.map_err(|reason: String| {
            pg_error_text(format!(
                "cannot connect to PostgreSQL at {}:{} as {} (database {}): {reason}",
                c.host, c.port, c.user, c.database
            ))
        })
    }

    /// Creates the table once per store, serialised across processes by a transaction-scoped
    /// advisory lock (concurrent `CREATE TABLE IF NOT EXISTS` can otherwise fail on pg_type).
    async fn ensure_table(self: &Rc<Self>) -> Result<()> {
        self.table_ready
            .get_or_try_init(|| async {
                let client = self.connect().await?;
                // An existing table needs no CREATE privilege (a read-only role can use it).
                let exists = client
                    .query_one("SELECT to_regclass($1::text) IS NOT NULL", &[&self.table])
                    .await
                    .and_then(|row| row.try_get::<_, bool>(0))
                    .map_err(|e| pg_error(&self.table_display, &e))?;
                if !exists {
                    self.create_table(&client).await?;
                } else {
                    self.add_expiry(&client).await?;
                }
                let conn = Arc::new(self.prepare(client).await?);
                let mut st = self.state.lock();
                self.check_open()?;
                st.conns.push(conn);
                if let Some(idle) = self.config.idle_timeout {
                    if let Some(exec) = Executor::current() {
                        exec.start(close_idle(Rc::downgrade(self), idle));
                    }
                }
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// `CREATE TABLE IF NOT EXISTS` under a transaction-scoped advisory lock of the table.
    async fn create_table(&self, client: &Client) -> Result<()> {
        let sql = format!(
            "BEGIN; SELECT pg_advisory_xact_lock({}); \
             CREATE TABLE IF NOT EXISTS {} \
             (id varchar primary key, value varchar, expires_at timestamptz); \
             {}; COMMIT",
            keys::create_lock_id(&self.table),
            self.table,
            self.expiry_index()
        );
        let mut attempt = 0;
        loop {
            match client.batch_execute(&sql).await {
                Ok(()) => return Ok(()),
                // A creator that does not take our lock (reshuffle itself) raced us.
                Err(e)
                    if attempt < 3
                        && e.as_db_error()
                            .is_some_and(|d| matches!(d.code().code(), "23505" | "42P07")) =>
                {
                    attempt += 1;
                    let _ = client.batch_execute("ROLLBACK").await;
                }
                Err(e) => return Err(pg_error(&self.table_display, &e)),
            }
        }
    }

    /// The partial index of the rows that expire, which the purge reads (rows that never expire
    /// cost nothing in it). Its name is made from a hash of the table's: one per table, within
    /// PostgreSQL's 63 bytes whatever the table's name.
    fn expiry_index(&self) -> String {
        format!(
            "CREATE INDEX IF NOT EXISTS \"reshuffle_expiry_{:016x}\" ON {} (expires_at) \
             WHERE expires_at IS NOT NULL",
            keys::create_lock_id(&self.table) as u64,
            self.table
        )
    }

    /// Adds `expires_at` (for values written with a time to live) to a table that lacks it,
    /// one made by reshuffle or an older version of this package; reshuffle's statements name
    /// their columns, so they go on working. Under the table's creation lock.
    async fn add_expiry(&self, client: &Client) -> Result<()> {
        let has = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1::text) \
                 AND attname = 'expires_at' AND NOT attisdropped)",
                &[&self.table],
            )
            .await
            .and_then(|row| row.try_get::<_, bool>(0))
            .map_err(|e| pg_error(&self.table_display, &e))?;
        if has {
            return Ok(());
        }
        let sql = format!(
            "BEGIN; SELECT pg_advisory_xact_lock({}); \
             ALTER TABLE {} ADD COLUMN IF NOT EXISTS expires_at timestamptz; {}; COMMIT",
            keys::create_lock_id(&self.table),
            self.table,
            self.expiry_index()
        );
        if let Err(e) = client.batch_execute(&sql).await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(pg_error_text(format!(
                "PostgreSQL table {}: it has no expires_at column (for values with a time to \
                 live) and this role cannot add it ({}); run: ALTER TABLE {} ADD COLUMN \
                 expires_at timestamptz",
                self.table_display,
                super::error::describe(&e),
                self.table
            )));
        }
        Ok(())
    }

    /// Ends every connection; leases still out end theirs when dropped.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let conns = std::mem::take(&mut self.state.lock().conns);
        drop(conns);
        self.changed.notify_waiters();
    }
}

/// Closes connections unused for `idle` (node-postgres's `idleTimeoutMillis`), until the pool
/// is closed or gone; the next operation opens a new one.
async fn close_idle(pool: std::rc::Weak<Pool>, idle: Duration) {
    let tick = (idle / 2).clamp(Duration::from_millis(10), Duration::from_secs(5));
    loop {
        Sleep::background(Instant::now() + tick).await;
        let Some(pool) = pool.upgrade() else { return };
        if pool.closed.load(Ordering::Acquire) {
            return;
        }
        let now = pool.now_ms();
        let limit = idle.as_millis() as u64;
        let closing: Vec<Arc<Conn>> = {
            let mut st = pool.state.lock();
            let (stale, keep) = std::mem::take(&mut st.conns).into_iter().partition(|c| {
                c.load.load(Ordering::Acquire) == 0
                    && !c.pinned.load(Ordering::Acquire)
                    && now.saturating_sub(c.idle_since.load(Ordering::Acquire)) >= limit
            });
            st.conns = keep;
            stale
        };
        drop(closing); // dropping the clients ends their connections
    }
}

fn pg_error_text(message: impl Into<String>) -> crate::core::DatastoreError {
    crate::core::DatastoreError::backend(message)
}
