//! Leases: the cross-server lock of a key (docs/redis.md). A lease is the key's lease name set
//! to a random token with an expiry (`SET … PX lease NX`); its holder renews it while the
//! updater runs, and its final write is a script that applies only while the token is still
//! there. A holder that dies (a killed process, a lost network) stops renewing, so others wait
//! at most the lease time.

use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::client::Client;
use super::conn::Conn;
use super::keys;
use super::resp::Reply;
use super::scripts;
use crate::core::{DatastoreError, Result};
use crate::runtime::executor::Executor;
use crate::runtime::timer::Sleep;

/// A lease this store holds on one key.
pub struct Lease {
    pub token: Vec<u8>,
    /// The connection it was taken on: if that connection fails, the update it guards fails
    /// too (nothing is written), as with a database session.
    pub conn: Rc<Conn>,
    /// Alive while the lease is held; the renewal task stops when it is gone.
    _alive: Rc<()>,
}

/// A token no other holder uses: 128 random bits, as hex.
fn new_token() -> Vec<u8> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        // No system randomness: the process, the time and a counter are still unique.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes[..8].copy_from_slice(&nanos.to_le_bytes());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed) ^ (u64::from(std::process::id()) << 32);
        bytes[8..].copy_from_slice(&n.to_le_bytes());
    }
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into_bytes()
}

/// The longest pause between two tries of a held lease. Short, because a lease is usually held
/// for one read-update-write (a few ms): a waiter that slept longer would leave the key idle.
/// A try is one short script, so even many waiters cost the server little.
const MAX_BACKOFF: Duration = Duration::from_millis(8);

/// `d` scaled by a factor in [0.5, 1), different for each waiter and each try, so that waiters
/// that started together do not retry in lockstep.
fn jitter(d: Duration, token: &[u8]) -> Duration {
    static TRIES: AtomicU64 = AtomicU64::new(0);
    let mut x = TRIES.fetch_add(1, Ordering::Relaxed) ^ 0x9e37_79b9_7f4a_7c15;
    for &b in token.iter().take(16) {
        x = (x ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let fraction = 0.5 + (x >> 11) as f64 / (1u64 << 53) as f64 / 2.0;
    d.mul_f64(fraction)
}

/// A lease time in whole milliseconds, at least 1.
pub fn millis(d: Duration) -> Vec<u8> {
    d.as_millis().max(1).to_string().into_bytes()
}

/// The error of a wait for a lease that gave up (the store completes it).
fn timed_out() -> DatastoreError {
    DatastoreError::LockTimeout {
        key: String::new(),
        waited_ms: 0,
    }
}

/// Takes `key`'s lease, waiting (polling with back-off) while another holder has it, up to
/// `deadline`. With `read`, returns the value read in the same script, under the lease.
pub async fn acquire(
    client: &Rc<Client>,
    key: &str,
    read: bool,
    deadline: Option<Instant>,
) -> Result<(Lease, Option<String>)> {
    let prefix = &client.config.prefix;
    let (lease_name, data_name) = (keys::lease(prefix, key), keys::data(prefix, key));
    let token = new_token();
    let ms = millis(client.config.lease);
    let mut backoff = Duration::from_millis(1);
    loop {
        let conn = client.conn_for(&lease_name).await?;
        let reply = client
            .eval(
                &conn,
                scripts::ACQUIRE,
                &[&lease_name, &data_name],
                &[&token, &ms, if read { b"1" } else { b"0" }],
            )
            .await?;
        let (got, second) = match reply {
            Reply::Array(Some(mut items)) if items.len() == 2 => {
                let second = items.pop().unwrap_or(Reply::Bulk(None));
                (items[0].as_int() == Some(1), second)
            }
            other => {
                return Err(client.lost(&format!("unexpected reply to a lease request: {other:?}")))
            }
        };
        if got {
            let value = second.into_text().map_err(|e| client.lost(&e))?;
            let alive = Rc::new(());
            renew(
                client.clone(),
                lease_name,
                token.clone(),
                Rc::downgrade(&alive),
            );
            return Ok((
                Lease {
                    token,
                    conn,
                    _alive: alive,
                },
                value,
            ));
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Err(timed_out());
        }
        // The holder's lease ends in `left` ms at the latest (renewals aside).
        let left = second
            .as_int()
            .filter(|&ms| ms > 0)
            .map_or(backoff, |ms| Duration::from_millis(ms as u64));
        let mut next = now + jitter(backoff, &token).min(left);
        if let Some(d) = deadline {
            next = next.min(d);
        }
        Sleep::until(next).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Renews the lease every third of its time while `alive` lives; stops when the lease is no
/// longer ours (it expired, or was deleted) or the store closed. Runs in the background: it
/// keeps nothing alive by itself (the update it serves does).
fn renew(client: Rc<Client>, lease_name: Vec<u8>, token: Vec<u8>, alive: Weak<()>) {
    let Some(exec) = Executor::current() else {
        return;
    };
    let every = (client.config.lease / 3).max(Duration::from_millis(1));
    let ms = millis(client.config.lease);
    exec.start(async move {
        loop {
            Sleep::background(Instant::now() + every).await;
            if alive.upgrade().is_none() {
                return;
            }
            let Ok(conn) = client.conn_for(&lease_name).await else {
                return;
            };
            let renewed = client
                .eval(&conn, scripts::RENEW, &[&lease_name], &[&token, &ms])
                .await;
            if !matches!(renewed, Ok(Reply::Int(1))) {
                return;
            }
        }
    });
}

/// Releases `lease` if it is still ours, in the background (sent now, behind the commands
/// already queued on its connection).
pub fn release(client: &Rc<Client>, key: &str, lease: Lease) {
    let name = keys::lease(&client.config.prefix, key);
    let Some(exec) = Executor::current().filter(|e| !e.has_ended()) else {
        // This thread's JS environment is ending (a worker thread terminated or exiting): no
        // task runs any more, so the release is written to the lease's connection now (see
        // `Conn::say_last`), instead of leaving the key held until the lease expires.
        say_release(&lease.conn, &name, &lease.token);
        return;
    };
    let client = client.clone();
    // Made before the task so that it is dropped (and says the release) even if the task is
    // dropped before its first poll.
    let unanswered = ReleaseIfDropped {
        conn: lease.conn.clone(),
        name: name.clone(),
        token: lease.token.clone(),
        armed: true,
    };
    exec.start(async move {
        let mut unanswered = unanswered;
        let released = match client.conn_for(&name).await {
            Ok(conn) => {
                client
                    .eval(&conn, scripts::RELEASE, &[&name], &[&lease.token])
                    .await
            }
            Err(e) => Err(e),
        };
        unanswered.armed = false;
        if matches!(released, Err(DatastoreError::Backend { .. })) {
            client.orphan(name, lease.token.clone());
        }
        drop(lease);
    });
}

/// Writes the release of the lease `token` on `name` with [`Conn::say_last`]: only once this
/// thread's executor has ended (the connection's driver never runs again, so the reply, which
/// nobody asked for, is never read).
fn say_release(conn: &Conn, name: &[u8], token: &[u8]) {
    let release: [&[u8]; 5] = [b"EVAL", scripts::RELEASE.as_bytes(), b"1", name, token];
    conn.say_last(&release);
}

/// Armed while a background release (see [`release`]) has not been answered. Such a task is
/// dropped unfinished only when this thread's executor shuts down while it waits: for a
/// connection, or for the reply to the `SCRIPT LOAD` that `Client::eval` sends before a
/// script's first `EVALSHA` — e.g. a worker thread terminated while its updater ran: the
/// updater's call fails, the update ends, its release starts, and the env is torn down before
/// the reply comes. Nothing else would send that release (the driver's `FlushOnDrop` only
/// writes commands already queued), so the key would stay held until the lease expires: it is
/// said last on the lease's connection instead. A release already queued is sent twice then,
/// which is harmless (the script deletes the lease only while the token is there).
struct ReleaseIfDropped {
    conn: Rc<Conn>,
    name: Vec<u8>,
    token: Vec<u8>,
    armed: bool,
}

impl Drop for ReleaseIfDropped {
    fn drop(&mut self) {
        if self.armed && Executor::current().is_some_and(|e| e.has_ended()) {
            say_release(&self.conn, &self.name, &self.token);
        }
    }
}
