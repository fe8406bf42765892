//! The store's links to the server: one multiplexed connection ([`Conn`]) per server, opened on
//! first use and opened again by the next command after it fails. Redis runs commands one at a
//! time, so one pipelined connection carries a store's work as fast as several would. In a
//! cluster (`config.cluster`) there is one per node, and each command goes to the node that
//! serves its key's hash slot (`slots.rs`), following redirections.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use super::config::RedisConfig;
use super::conn::Conn;
use super::resp::Reply;
use super::scripts::RELEASE;
use super::slots::{self, address, split_address, Redirect, Topology};
use super::tls;
use crate::backends::loop_socket::{self, Say};
use crate::core::{DatastoreError, Result};
use crate::runtime::busy_poll::Awaiting;
use crate::runtime::timer::{with_timeout, Sleep};

/// How long the event loop polls for a reply before it sleeps (`core::busy_poll`).
const BUSY_POLL: Duration = Duration::from_micros(1000);
/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One server's connection: opened on first use, and again by the next command after it
/// fails. Outside a cluster a store has one; in a cluster, one per node.
struct Link {
    host: String,
    port: u16,
    conn: RefCell<Option<Rc<Conn>>>,
    /// Serialises opening, so that commands arriving together share one new connection.
    opening: tokio::sync::Mutex<()>,
    /// Leases (name, token) this store could not release because the connection was down:
    /// released first thing on the next connection, so they do not hold their keys until
    /// they expire.
    orphans: RefCell<Vec<(Vec<u8>, Vec<u8>)>>,
}

pub struct Client {
    pub config: RedisConfig,
    /// The server of the configuration (in a cluster: the node first asked for the slots).
    seed: Rc<Link>,
    /// In a cluster, every other node's link, by address ("host:port").
    nodes: RefCell<FxHashMap<String, Rc<Link>>>,
    /// In a cluster, which node serves each slot: learnt with `CLUSTER SLOTS` on first use,
    /// then corrected slot by slot by `MOVED`.
    topology: RefCell<Option<Topology>>,
    /// Serialises learning the topology.
    learning: tokio::sync::Mutex<()>,
    closed: Cell<bool>,
    /// The SHA1 of each script the server has loaded for this store, by the script's address.
    shas: RefCell<FxHashMap<usize, Rc<[u8]>>>,
}

/// The most redirections one command follows (a slot moving while it is asked for).
const MAX_REDIRECTS: usize = 5;
/// The pauses before asking again after `TRYAGAIN`: doubling from the first to the last
/// (10 ms to 640 ms, about 1.3 s in all), while a resharding moves a slot's keys.
const TRY_AGAIN_FIRST: Duration = Duration::from_millis(10);
const TRY_AGAIN_LAST: Duration = Duration::from_millis(640);

impl Client {
    pub fn new(config: RedisConfig) -> Rc<Client> {
        let seed = Rc::new(Link::new(config.host.clone(), config.port));
        Rc::new(Client {
            config,
            seed,
            nodes: RefCell::new(FxHashMap::default()),
            topology: RefCell::new(None),
            learning: tokio::sync::Mutex::new(()),
            closed: Cell::new(false),
            shas: RefCell::new(FxHashMap::default()),
        })
    }

    fn server(&self) -> String {
        let what = if self.config.cluster {
            "Redis Cluster at"
        } else {
            "Redis at"
        };
        format!("{what} {}", address(&self.config.host, self.config.port))
    }

    /// The error of a connection that failed with `why`.
    pub fn lost(&self, why: &str) -> DatastoreError {
        DatastoreError::backend(format!("{}: {why}", self.server()))
    }

    /// The connection for commands on the Redis key `name`: outside a cluster the one server's,
    /// in a cluster the node's that serves its slot.
    pub async fn conn_for(&self, name: &[u8]) -> Result<Rc<Conn>> {
        if !self.config.cluster {
            return self.connect(&self.seed).await;
        }
        let node = self.node_of(slots::slot(name)).await?;
        let link = self.link(&node);
        self.connect(&link).await
    }

    /// A connection to every server that holds keys: the one server, or each cluster node
    /// that serves a slot.
    pub async fn every_node(&self) -> Result<Vec<Rc<Conn>>> {
        if !self.config.cluster {
            return Ok(vec![self.connect(&self.seed).await?]);
        }
        self.node_of(0).await?;
        let nodes = self
            .topology
            .borrow()
            .as_ref()
            .map(Topology::nodes)
            .unwrap_or_default();
        let mut conns = Vec::with_capacity(nodes.len());
        for node in nodes {
            let link = self.link(&node);
            conns.push(self.connect(&link).await?);
        }
        Ok(conns)
    }

    /// The node serving `slot`, learning the topology first if it is not known.
    async fn node_of(&self, slot: u16) -> Result<String> {
        loop {
            if let Some(node) = self.topology.borrow().as_ref().and_then(|t| t.node(slot)) {
                return Ok(node.to_owned());
            }
            let _learning = self.learning.lock().await;
            if self.topology.borrow().is_some() {
                // Learnt meanwhile; a slot no node serves is the cluster's fault, not ours.
                let known = self
                    .topology
                    .borrow()
                    .as_ref()
                    .and_then(|t| t.node(slot).map(str::to_owned));
                return known.ok_or_else(|| self.lost(&format!("no node serves hash slot {slot}")));
            }
            let conn = self.connect(&self.seed).await?;
            let reply = self.on(&conn, &[b"CLUSTER", b"SLOTS"]).await?;
            let topology =
                Topology::from_reply(reply, &self.config.host).map_err(|e| self.lost(&e))?;
            *self.topology.borrow_mut() = Some(topology);
        }
    }

    /// The link to the cluster node at `node` ("host:port"), made on first use.
    fn link(&self, node: &str) -> Rc<Link> {
        if node == address(&self.seed.host, self.seed.port) {
            return self.seed.clone();
        }
        if let Some(link) = self.nodes.borrow().get(node) {
            return link.clone();
        }
        let (host, port) = split_address(node).unwrap_or_else(|| (node.to_owned(), 6379));
        let link = Rc::new(Link::new(host, port));
        self.nodes
            .borrow_mut()
            .insert(node.to_owned(), link.clone());
        link
    }

    /// `link`'s open connection, opened now when there is none or it failed.
    async fn connect(&self, link: &Link) -> Result<Rc<Conn>> {
        loop {
            if self.closed.get() {
                return Err(DatastoreError::Closed);
            }
            if let Some(c) = link.conn.borrow().as_ref().filter(|c| !c.is_dead()) {
                return Ok(c.clone());
            }
            let _opening = link.opening.lock().await;
            let current = link.conn.borrow().clone();
            if current.is_some_and(|c| !c.is_dead()) {
                continue;
            }
            let opened = with_timeout(Box::pin(self.open(link)), CONNECT_TIMEOUT)
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "timed out after {} ms",
                        CONNECT_TIMEOUT.as_millis()
                    ))
                })
                .map_err(|why| {
                    let at = address(&link.host, link.port);
                    DatastoreError::backend(format!(
                        "cannot connect to {} ({at}): {why}",
                        self.server()
                    ))
                })?;
            if self.closed.get() {
                return Err(DatastoreError::Closed);
            }
            let conn = Rc::new(opened);
            for (name, token) in link.orphans.borrow_mut().drain(..) {
                // Queued ahead of every command of the new connection; the reply is not awaited.
                let release: [&[u8]; 5] = [b"EVAL", RELEASE.as_bytes(), b"1", &name, &token];
                drop(conn.send(&release));
            }
            *link.conn.borrow_mut() = Some(conn.clone());
            return Ok(conn);
        }
    }

    /// Opens a connection to `link`'s server: AUTH and SELECT as configured, pipelined.
    async fn open(&self, link: &Link) -> std::result::Result<Conn, String> {
        let c = &self.config;
        let socket = loop_socket::connect(&link.host, link.port)
            .await
            .map_err(|e| e.to_string())?;
        let last_word = socket.last_word();
        let conn = match &c.tls {
            None => Conn::start(socket, last_word.map(|w| Box::new(w) as Box<dyn Say>))?,
            Some(t) => {
                let config = tls::client_config(t).map_err(|e| e.to_string())?;
                let stream = tls::handshake(config, &link.host, socket).await?;
                let (stream, last_word) = tls::with_last_word(stream, last_word);
                Conn::start(stream, last_word)?
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

    /// Runs one command on the key its second argument names (`GET key`, `MGET key…` of one
    /// slot) and returns its reply; an error reply is a `Backend` error.
    pub async fn cmd(&self, args: &[&[u8]]) -> Result<Reply> {
        let conn = self
            .conn_for(args.get(1).copied().unwrap_or_default())
            .await?;
        self.on(&conn, args).await
    }

    /// Runs one command on `conn` (a connection the caller holds on to); an error reply is a
    /// `Backend` error. In a cluster, a redirection is followed: `MOVED` to the node that
    /// serves the slot now (remembered), `ASK` to the node importing it, for this command only.
    pub async fn on(&self, conn: &Rc<Conn>, args: &[&[u8]]) -> Result<Reply> {
        let first = conn;
        let mut conn = conn.clone();
        let mut asking = false;
        let mut retry_in = TRY_AGAIN_FIRST;
        let mut redirects = 0;
        loop {
            let reply = if asking {
                // Pipelined: ASKING applies to the command right after it.
                let ask = conn.send(&[b"ASKING"]);
                let reply = self.on_node(&conn, args);
                let _ = ask.await;
                reply.await?
            } else {
                self.on_node(&conn, args).await?
            };
            let Reply::Error(e) = reply else {
                return Ok(reply);
            };
            let redirect = self.config.cluster.then(|| slots::redirect(&e)).flatten();
            if matches!(
                redirect,
                Some(Redirect::Moved { .. } | Redirect::Ask { .. })
            ) {
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(self.lost(&format!(
                        "a command was redirected more than {MAX_REDIRECTS} times (the cluster \
                         is resharding)"
                    )));
                }
            }
            let node = match redirect {
                None => return Err(DatastoreError::backend(format!("{}: {e}", self.server()))),
                Some(Redirect::TryAgain) if retry_in <= TRY_AGAIN_LAST => {
                    // Asked again from the start, where the slot may have moved on meanwhile.
                    Sleep::until(Instant::now() + retry_in).await;
                    retry_in *= 2;
                    conn = first.clone();
                    asking = false;
                    continue;
                }
                Some(Redirect::TryAgain) => {
                    return Err(DatastoreError::backend(format!(
                        "{}: {e} (still so after {} ms)",
                        self.server(),
                        (TRY_AGAIN_LAST * 2 - TRY_AGAIN_FIRST).as_millis()
                    )))
                }
                Some(Redirect::Moved { slot, node }) => {
                    if let Some(t) = self.topology.borrow_mut().as_mut() {
                        t.moved(slot, &node);
                    }
                    asking = false;
                    node
                }
                Some(Redirect::Ask { node }) => {
                    asking = true;
                    node
                }
            };
            let link = self.link(&node);
            conn = self.connect(&link).await?;
        }
    }

    /// Sends one command on `conn` and waits for its reply, error replies included.
    async fn on_node(&self, conn: &Conn, args: &[&[u8]]) -> Result<Reply> {
        let sent = conn.send(args);
        let _awaiting = Awaiting::begin(BUSY_POLL);
        sent.await.map_err(|why| self.lost(&why))
    }

    /// Runs a script by its SHA1 (`EVALSHA`), loading it first (`SCRIPT LOAD`) the first time
    /// this store runs it; the server keeps loaded scripts for every connection. A server that
    /// has forgotten it (restarted, `SCRIPT FLUSH`) answers NOSCRIPT: the text is sent then
    /// (`EVAL`) and loaded again next time. A script sent by its SHA1 spares the server
    /// reading and hashing its text at every call.
    pub async fn eval(
        &self,
        conn: &Rc<Conn>,
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
        conn: &Rc<Conn>,
        script: &str,
        keys: &[&[u8]],
        args: &[&[u8]],
    ) -> Result<Reply> {
        self.run_script(conn, b"EVAL", script.as_bytes(), keys, args)
            .await
    }

    async fn run_script(
        &self,
        conn: &Rc<Conn>,
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

    /// Remembers a lease that could not be released now, to release it on the next connection
    /// to the server that holds it.
    pub fn orphan(&self, name: Vec<u8>, token: Vec<u8>) {
        if self.closed.get() {
            return;
        }
        let link = match self
            .topology
            .borrow()
            .as_ref()
            .and_then(|t| t.node(slots::slot(&name)))
        {
            Some(node) if self.config.cluster => self.link(node),
            _ => self.seed.clone(),
        };
        link.orphans.borrow_mut().push((name, token));
    }

    /// Ends the connections; later commands reject with `Closed`.
    pub fn close(&self) {
        self.closed.set(true);
        self.seed.conn.borrow_mut().take();
        for link in self.nodes.borrow().values() {
            link.conn.borrow_mut().take();
        }
    }
}

impl Link {
    fn new(host: String, port: u16) -> Link {
        Link {
            host,
            port,
            conn: RefCell::new(None),
            opening: tokio::sync::Mutex::new(()),
            orphans: RefCell::new(Vec::new()),
        }
    }
}
