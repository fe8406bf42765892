//! The store's link to the server: one multiplexed connection ([`Conn`]), opened on first use
//! and opened again by the next command after it fails. Redis runs commands one at a time, so
//! one pipelined connection carries a store's work as fast as several would.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use rustc_hash::FxHashMap;

use super::config::RedisConfig;
use super::conn::Conn;
use super::resp::Reply;
use super::scripts::RELEASE;
use super::tls;
use crate::backends::loop_socket;
use crate::core::{DatastoreError, Result};
use crate::runtime::busy_poll::Awaiting;
use crate::runtime::timer::with_timeout;

/// How long the event loop polls for a reply before it sleeps (`core::busy_poll`).
const BUSY_POLL: Duration = Duration::from_micros(1000);
/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Client {
    pub config: RedisConfig,
    conn: RefCell<Option<Rc<Conn>>>,
    /// Serialises opening, so that commands arriving together share one new connection.
    opening: tokio::sync::Mutex<()>,
    closed: Cell<bool>,
    /// Leases (name, token) this store could not release because the connection was down:
    /// released first thing on the next connection, so they do not hold their keys until
    /// they expire.
    orphans: RefCell<Vec<(Vec<u8>, Vec<u8>)>>,
    /// The SHA1 of each script the server has loaded for this store, by the script's address.
    shas: RefCell<FxHashMap<usize, Rc<[u8]>>>,
}

impl Client {
    pub fn new(config: RedisConfig) -> Rc<Client> {
        Rc::new(Client {
            config,
            conn: RefCell::new(None),
            opening: tokio::sync::Mutex::new(()),
            closed: Cell::new(false),
            orphans: RefCell::new(Vec::new()),
            shas: RefCell::new(FxHashMap::default()),
        })
    }

    fn server(&self) -> String {
        format!("Redis at {}:{}", self.config.host, self.config.port)
    }

    /// The error of a connection that failed with `why`.
    pub fn lost(&self, why: &str) -> DatastoreError {
        DatastoreError::backend(format!("{}: {why}", self.server()))
    }

    /// The open connection, opened now when there is none or it failed.
    pub async fn conn(&self) -> Result<Rc<Conn>> {
        loop {
            if self.closed.get() {
                return Err(DatastoreError::Closed);
            }
            if let Some(c) = self.conn.borrow().as_ref().filter(|c| !c.is_dead()) {
                return Ok(c.clone());
            }
            let _opening = self.opening.lock().await;
            let current = self.conn.borrow().clone();
            if current.is_some_and(|c| !c.is_dead()) {
                continue;
            }
            let opened = with_timeout(Box::pin(self.open()), CONNECT_TIMEOUT)
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "timed out after {} ms",
                        CONNECT_TIMEOUT.as_millis()
                    ))
                })
                .map_err(|why| {
                    DatastoreError::backend(format!("cannot connect to {}: {why}", self.server()))
                })?;
            if self.closed.get() {
                return Err(DatastoreError::Closed);
            }
            let conn = Rc::new(opened);
            for (name, token) in self.orphans.borrow_mut().drain(..) {
                // Queued ahead of every command of the new connection; the reply is not awaited.
                let release: [&[u8]; 5] = [b"EVAL", RELEASE.as_bytes(), b"1", &name, &token];
                drop(conn.send(&release));
            }
            *self.conn.borrow_mut() = Some(conn.clone());
            return Ok(conn);
        }
    }

    /// Opens a connection: AUTH and SELECT as configured, pipelined.
    async fn open(&self) -> std::result::Result<Conn, String> {
        let c = &self.config;
        let socket = loop_socket::connect(&c.host, c.port)
            .await
            .map_err(|e| e.to_string())?;
        let conn = match &c.tls {
            None => {
                let last_word = socket.last_word();
                Conn::start(socket, last_word)?
            }
            Some(t) => {
                let config = tls::client_config(t).map_err(|e| e.to_string())?;
                Conn::start(tls::handshake(config, &c.host, socket).await?, None)?
            }
        };
        let mut setup: Vec<Vec<Vec<u8>>> = Vec::new();
        if let Some(password) = &c.password {
            let mut auth = vec![b"AUTH".to_vec()];
            if let Some(user) = &c.username {
                auth.push(user.clone().into_bytes());
            }
            auth.push(password.clone().into_bytes());
            setup.push(auth);
        }
        if c.db != 0 {
            setup.push(vec![b"SELECT".to_vec(), c.db.to_string().into_bytes()]);
        }
        setup.push(vec![b"PING".to_vec()]);
        let replies: Vec<_> = setup
            .iter()
            .map(|cmd| {
                let args: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
                conn.send(&args)
            })
            .collect();
        for reply in futures_util::future::join_all(replies).await {
            if let Reply::Error(e) = reply? {
                return Err(e);
            }
        }
        Ok(conn)
    }

    /// Runs one command and returns its reply; an error reply is a `Backend` error.
    pub async fn cmd(&self, args: &[&[u8]]) -> Result<Reply> {
        let conn = self.conn().await?;
        self.on(&conn, args).await
    }

    /// Runs one command on `conn` (a connection the caller holds on to).
    pub async fn on(&self, conn: &Conn, args: &[&[u8]]) -> Result<Reply> {
        let sent = conn.send(args);
        let _awaiting = Awaiting::begin(BUSY_POLL);
        match sent.await {
            Ok(Reply::Error(e)) => Err(DatastoreError::backend(format!("{}: {e}", self.server()))),
            Ok(reply) => Ok(reply),
            Err(why) => Err(self.lost(&why)),
        }
    }

    /// Runs a script by its SHA1 (`EVALSHA`), loading it first (`SCRIPT LOAD`) the first time
    /// this store runs it; the server keeps loaded scripts for every connection. A server that
    /// has forgotten it (restarted, `SCRIPT FLUSH`) answers NOSCRIPT: the text is sent then
    /// (`EVAL`) and loaded again next time. A script sent by its SHA1 spares the server
    /// reading and hashing its text at every call.
    pub async fn eval(
        &self,
        conn: &Conn,
        script: &'static str,
        keys: &[&[u8]],
        args: &[&[u8]],
    ) -> Result<Reply> {
        let id = script.as_ptr() as usize;
        let known = self.shas.borrow().get(&id).cloned();
        let sha = match known {
            Some(sha) => sha,
            None => match self
                .on(conn, &[b"SCRIPT", b"LOAD", script.as_bytes()])
                .await?
            {
                Reply::Bulk(Some(sha)) => {
                    let sha: Rc<[u8]> = sha.into();
                    self.shas.borrow_mut().insert(id, sha.clone());
                    sha
                }
                _ => return self.eval_text(conn, script, keys, args).await,
            },
        };
        match self.run_script(conn, b"EVALSHA", &sha, keys, args).await {
            Err(DatastoreError::Backend { message }) if message.contains("NOSCRIPT") => {
                self.shas.borrow_mut().remove(&id);
                self.eval_text(conn, script, keys, args).await
            }
            other => other,
        }
    }

    /// Runs a script by its text: `EVAL script numkeys keys… args…`.
    async fn eval_text(
        &self,
        conn: &Conn,
        script: &str,
        keys: &[&[u8]],
        args: &[&[u8]],
    ) -> Result<Reply> {
        self.run_script(conn, b"EVAL", script.as_bytes(), keys, args)
            .await
    }

    async fn run_script(
        &self,
        conn: &Conn,
        verb: &[u8],
        script: &[u8],
        keys: &[&[u8]],
        args: &[&[u8]],
    ) -> Result<Reply> {
        let numkeys = keys.len().to_string();
        let mut all: Vec<&[u8]> = Vec::with_capacity(3 + keys.len() + args.len());
        all.extend([verb, script, numkeys.as_bytes()]);
        all.extend_from_slice(keys);
        all.extend_from_slice(args);
        self.on(conn, &all).await
    }

    /// Remembers a lease that could not be released now, to release it on the next connection.
    pub fn orphan(&self, name: Vec<u8>, token: Vec<u8>) {
        if !self.closed.get() {
            self.orphans.borrow_mut().push((name, token));
        }
    }

    /// Ends the connection; later commands reject with `Closed`.
    pub fn close(&self) {
        self.closed.set(true);
        self.conn.borrow_mut().take();
    }
}
