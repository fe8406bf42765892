//! The engine under the core store, against a live server (REDIS_URL, default
//! redis://127.0.0.1:6379). Each test works under a random prefix and deletes its keys at the
//! end. Skipped with a message when no server answers, unless RESHUFFLE_DATASTORE_REQUIRE_REDIS=1.

use std::future::Future;
use std::time::Duration;

use super::client::Client;
use super::resp::Reply;
use super::{parse_url, RedisBackend, RedisConfig};
use crate::backends::contract_tests::{server_answers, AddOne};
use crate::core::{Backend, Change, Deadline, HeldKey, Store};
use crate::runtime::executor::{block_on, Executor};
use crate::runtime::timer::Sleep;

fn config(prefix: &str) -> RedisConfig {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut c = parse_url(&url).expect("REDIS_URL");
    c.prefix = prefix.to_owned();
    c
}

/// Runs one command on a connection of its own.
async fn admin(prefix: &str, args: &[&[u8]]) -> Result<super::resp::Reply, String> {
    let client = Client::new(config(prefix));
    let r = client.cmd(args).await.map_err(|e| e.to_string());
    client.close();
    r
}

/// Runs `test` with a fresh prefix, deleting its keys afterwards.
pub(crate) fn with_prefix<F: Future<Output = ()> + 'static>(
    name: &str,
    test: impl FnOnce(String) -> F,
) {
    let prefix = format!("rds-rust-{name}-{}-{:x}:", std::process::id(), rand_u32());
    let ping = block_on(async { admin("", &[b"PING"]).await.map(drop) });
    if !server_answers("Redis", "RESHUFFLE_DATASTORE_REQUIRE_REDIS", ping) {
        return;
    }
    block_on(test(prefix.clone()));
    block_on(async move {
        let script = "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end";
        let pattern = format!("{{{prefix}*");
        let _ = admin("", &[b"EVAL", script.as_bytes(), b"0", pattern.as_bytes()]).await;
    });
}

/// For the backend contract suite: runs `test` with a way to open backends on one fresh prefix.
pub(crate) fn with_test_prefix<F: Future<Output = ()> + 'static>(
    name: &str,
    test: impl FnOnce(Box<dyn Fn() -> RedisBackend>) -> F,
) {
    with_prefix(name, |p| test(Box::new(move || backend(&p, 5000))));
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    let _ = getrandom::getrandom(&mut b);
    u32::from_le_bytes(b)
}

fn backend(prefix: &str, lease_ms: u64) -> RedisBackend {
    let mut c = config(prefix);
    c.lease = Duration::from_millis(lease_ms);
    RedisBackend::new(c)
}

#[test]
fn get_set_list_ttl() {
    with_prefix("basic", |p| async move {
        let s = Store::new(backend(&p, 5000));
        assert_eq!(s.get("k").await.unwrap(), None);
        s.set("k", "\"v\"".into()).await.unwrap();
        s.set("nul\0key", "1".into()).await.unwrap();
        s.set("a*[?", "2".into()).await.unwrap();
        s.set("x}:lease", "3".into()).await.unwrap();
        assert_eq!(s.get("nul\0key").await.unwrap().as_deref(), Some("1"));
        assert_eq!(
            s.list("").await.unwrap(),
            vec!["a*[?", "k", "nul\0key", "x}:lease"]
        );
        assert_eq!(s.list("a*").await.unwrap(), vec!["a*[?"]);
        assert_eq!(s.list("a").await.unwrap(), vec!["a*[?"]);
        s.remove("k").await.unwrap();
        assert_eq!(s.get("k").await.unwrap(), None);
        s.close().await.unwrap();
        let b = backend(&p, 5000);
        let h = b.lock("t", &Deadline::never()).await.unwrap();
        h.finish("t", Change::PutFor("1".into(), Duration::from_millis(50)))
            .await
            .unwrap();
        assert_eq!(b.get("t").await.unwrap().as_deref(), Some("1"));
        Sleep::until(std::time::Instant::now() + Duration::from_millis(120)).await;
        assert_eq!(b.get("t").await.unwrap(), None);
        b.close().await.unwrap();
    });
}

#[test]
fn a_lost_lease_writes_nothing() {
    with_prefix("lost", |p| async move {
        let b = backend(&p, 5000);
        let mut h = b.lock("k", &Deadline::never()).await.unwrap();
        assert_eq!(h.read("k").await.unwrap(), None);
        let lease = super::keys::lease(&p, "k");
        admin("", &[b"DEL", &lease]).await.unwrap();
        let e = h.finish("k", Change::Put("1".into())).await.unwrap_err();
        assert_eq!(e.code(), "ERR_DATASTORE_LEASE_LOST");
        assert_eq!(b.get("k").await.unwrap(), None);

        // A lease that expires while its holder cannot renew it is lost too.
        let short = backend(&p, 100);
        let mut h = short.lock("k", &Deadline::never()).await.unwrap();
        h.read("k").await.unwrap();
        std::thread::sleep(Duration::from_millis(250)); // the thread is blocked: no renewal
        let e = h.finish("k", Change::Put("2".into())).await.unwrap_err();
        assert_eq!(e.code(), "ERR_DATASTORE_LEASE_LOST");
        assert_eq!(b.get("k").await.unwrap(), None);

        // A held lease is renewed past its time while the holder waits: a lease of 600 ms,
        // renewed every 200 ms, held for 1.5 s. (With a 100 ms lease, a loaded 2-core machine
        // sometimes kept the renewal from running in time, and the lease was lost.)
        let renewing = backend(&p, 600);
        let mut h = renewing.lock("k", &Deadline::never()).await.unwrap();
        h.read("k").await.unwrap();
        Sleep::until(std::time::Instant::now() + Duration::from_millis(1500)).await;
        h.finish("k", Change::Put("3".into())).await.unwrap();
        assert_eq!(b.get("k").await.unwrap().as_deref(), Some("3"));
        b.close().await.unwrap();
        short.close().await.unwrap();
        renewing.close().await.unwrap();
    });
}

#[test]
fn a_held_lease_makes_others_wait_until_the_deadline() {
    with_prefix("wait", |p| async move {
        let a = backend(&p, 5000);
        let b = backend(&p, 5000);
        let mut h = a.lock("k", &Deadline::never()).await.unwrap();
        h.read("k").await.unwrap();
        let d = Deadline::after(Some(Duration::from_millis(100)));
        let other = b.lock("k", &d).await.unwrap();
        let e = other
            .finish("k", Change::Put("2".into()))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "ERR_DATASTORE_LOCK_TIMEOUT");
        drop(h); // released in the background
        let other = b
            .lock("k", &Deadline::after(Some(Duration::from_secs(2))))
            .await;
        other
            .unwrap()
            .finish("k", Change::Put("2".into()))
            .await
            .unwrap();
        assert_eq!(a.get("k").await.unwrap().as_deref(), Some("2"));
        a.close().await.unwrap();
        b.close().await.unwrap();
    });
}

/// A release still waiting for a reply when its thread's executor shuts down (a worker thread
/// torn down just after its update ended: the release's `SCRIPT LOAD` is answered only after
/// the environment is gone) is said on the lease's connection as the executor ends, instead of
/// leaving the key held until the lease expires.
#[test]
fn a_release_cut_short_by_shut_down_still_reaches_the_server() {
    with_prefix("cutshort", |p| async move {
        let on_thread = p.clone();
        std::thread::spawn(move || {
            block_on(async move {
                let b = backend(&on_thread, 60_000);
                let mut h = b.lock("k", &Deadline::never()).await.unwrap();
                h.read("k").await.unwrap();
                drop(h); // its release starts, sends `SCRIPT LOAD` and waits for the reply
            });
            // Nothing turns the reactor any more: that reply is never read.
            Executor::current().unwrap().shut_down();
        })
        .join()
        .unwrap();
        let lease = super::keys::lease(&p, "k");
        let mut held = Reply::Int(1);
        for _ in 0..40 {
            held = admin("", &[b"EXISTS", &lease]).await.unwrap();
            if held == Reply::Int(0) {
                break;
            }
            Sleep::until(std::time::Instant::now() + Duration::from_millis(25)).await;
        }
        assert_eq!(held, Reply::Int(0), "the lease is still held (60 s)");
    });
}

#[test]
fn a_server_that_forgot_its_scripts_runs_them_again() {
    with_prefix("noscript", |p| async move {
        let s = Store::new(backend(&p, 5000));
        s.set("k", "1".into()).await.unwrap();
        admin("", &[b"SCRIPT", b"FLUSH"]).await.unwrap();
        s.set("k", "2".into()).await.unwrap();
        assert!(s.update("k", AddOne).await.is_ok());
        assert_eq!(s.get("k").await.unwrap().as_deref(), Some("3"));
        s.close().await.unwrap();
    });
}
