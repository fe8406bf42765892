//! One Redis connection, multiplexed: any number of commands in flight, written in call order
//! and answered in that order (RESP replies come back in order). A driver task on this
//! thread's executor owns the socket; callers queue encoded commands and await their reply.
//!
//! Invariants: a reply goes to the oldest waiting command; once the socket fails every
//! waiting and later command fails with the same reason (the connection is `dead`) and the
//! driver ends, dropping the socket. An idle connection keeps nothing alive: only a command
//! waiting for its reply does (its receiver holds a `BusyGuard`).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::resp::{self, Reply};
use crate::backends::loop_socket::Say;
use crate::runtime::executor::{oneshot, Executor, Sender};

/// The reply to one command: the server's reply (an `Error` reply included), or why the
/// connection failed.
pub type Answer = Result<Reply, String>;

#[derive(Default)]
struct Shared {
    /// Encoded commands not written yet, from `written` on.
    out: Vec<u8>,
    written: usize,
    waiting: VecDeque<Sender<Answer>>,
    driver: Option<Waker>,
    /// Why the connection is unusable, once it is.
    dead: Option<String>,
    /// Every handle is gone: the driver ends once nothing waits.
    closing: bool,
    /// How commands reach the server once the driver cannot run any more (`Conn::say_last`):
    /// a second descriptor of the socket, behind the TLS session over TLS; `None` where no
    /// second descriptor could be made.
    last_word: Option<Box<dyn Say>>,
}

/// A handle on a connection; the connection ends when the last handle is dropped.
pub struct Conn {
    shared: Rc<RefCell<Shared>>,
}

/// The most bytes read in one go while no large reply is known to be coming.
const READ_CHUNK: usize = 64 * 1024;

impl Conn {
    /// Starts the driver of `socket` (plain, or TLS over a loop socket) on this thread's
    /// executor; `last_word` writes to the same socket without it, for [`Conn::say_last`].
    pub fn start<S>(socket: S, last_word: Option<Box<dyn Say>>) -> Result<Conn, String>
    where
        S: AsyncRead + AsyncWrite + Unpin + 'static,
    {
        let exec = Executor::current().ok_or("no executor on this thread")?;
        let shared = Rc::new(RefCell::new(Shared {
            last_word,
            ..Shared::default()
        }));
        exec.start(drive(socket, shared.clone()));
        Ok(Conn { shared })
    }

    /// Whether the connection failed (a command sent now would fail at once).
    pub fn is_dead(&self) -> bool {
        self.shared.borrow().dead.is_some()
    }

    /// Sends the command `args` and waits for its reply. Commands sent one after another
    /// (without awaiting in between) are pipelined and run in that order.
    pub fn send(&self, args: &[&[u8]]) -> impl std::future::Future<Output = Answer> {
        let (tx, rx) = oneshot();
        {
            let mut sh = self.shared.borrow_mut();
            match &sh.dead {
                Some(why) => tx.send(Err(why.clone())),
                None => {
                    resp::encode(args, &mut sh.out);
                    sh.waiting.push_back(tx);
                    if let Some(w) = sh.driver.take() {
                        w.wake();
                    }
                }
            }
        }
        async move {
            rx.await
                .unwrap_or_else(|| Err("the connection was closed".to_owned()))
        }
    }
}

impl Conn {
    /// Sends `args` as this connection's last command, for when this thread's executor has
    /// ended (its JS environment is being torn down) and the driver will not run again: what
    /// is queued and not yet written goes first, so the server reads whole commands, then
    /// `args`, written at once without waiting (sealed by the TLS session first, over TLS);
    /// the reply is never read. On a dead connection, or one with no second descriptor,
    /// nothing is sent; nor while the connection's state is borrowed (never, at teardown,
    /// when no task runs; checked rather than assumed, since this runs from `Drop`s).
    pub fn say_last(&self, args: &[&[u8]]) {
        let Ok(mut sh) = self.shared.try_borrow_mut() else {
            return;
        };
        let sh = &mut *sh;
        let Some(last_word) = sh.last_word.as_ref().filter(|_| sh.dead.is_none()) else {
            return;
        };
        resp::encode(args, &mut sh.out);
        sh.written += last_word.say(&sh.out[sh.written..]);
        if sh.written != sh.out.len() {
            // A command cut short would make the rest of the stream unreadable: stop here.
            sh.dead = Some("the connection ended with its thread".to_owned());
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let mut sh = self.shared.borrow_mut();
        sh.closing = true;
        if let Some(w) = sh.driver.take() {
            w.wake();
        }
    }
}

/// Writes the commands queued and not yet written when the driver is dropped before it could
/// write them — its thread's JS environment ending, with a lease release just queued — as
/// [`Conn::say_last`] does. A driver that ends by itself has nothing queued: it ends when the
/// connection failed (the queue is dropped) or when nothing waits for a reply.
struct FlushOnDrop(Rc<RefCell<Shared>>);

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        let Ok(mut sh) = self.0.try_borrow_mut() else {
            return;
        };
        let sh = &mut *sh;
        if sh.dead.is_some() || sh.written >= sh.out.len() {
            return;
        }
        if let Some(last_word) = &sh.last_word {
            sh.written += last_word.say(&sh.out[sh.written..]);
        }
    }
}

/// Fails every waiting command with `why` and marks the connection dead.
fn fail(sh: &mut Shared, why: String) {
    for tx in sh.waiting.drain(..) {
        tx.send(Err(why.clone()));
    }
    sh.out.clear();
    sh.written = 0;
    sh.dead = Some(why);
}

/// The driver: writes queued commands, reads replies and hands them out, until the socket
/// fails or the last handle is dropped with nothing waiting.
async fn drive<S>(mut socket: S, shared: Rc<RefCell<Shared>>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _flush = FlushOnDrop(shared.clone());
    let mut inbuf: Vec<u8> = Vec::new();
    let mut filled = 0;
    poll_fn(|cx| {
        let mut sh = shared.borrow_mut();
        if sh.dead.is_some() || (sh.closing && sh.waiting.is_empty()) {
            return Poll::Ready(());
        }
        // Write what is queued.
        while sh.written < sh.out.len() {
            let from = sh.written;
            match Pin::new(&mut socket).poll_write(cx, &sh.out[from..]) {
                Poll::Ready(Ok(0)) => {
                    fail(&mut sh, "the server closed the connection".into());
                    return Poll::Ready(());
                }
                Poll::Ready(Ok(n)) => sh.written += n,
                Poll::Ready(Err(e)) => {
                    fail(&mut sh, format!("connection lost: {e}"));
                    return Poll::Ready(());
                }
                Poll::Pending => break,
            }
        }
        if sh.written == sh.out.len() {
            sh.out.clear();
            sh.written = 0;
            if sh.out.capacity() > 4 * READ_CHUNK {
                sh.out.shrink_to(READ_CHUNK);
            }
        }
        // Read what came, and answer the oldest commands. `inbuf[..filled]` holds bytes read
        // and not parsed yet; the rest of `inbuf` is zeroed room to read into, grown at once
        // to a large reply's size (so a 64 MiB value is not re-zeroed at every read).
        loop {
            let need = resp::bulk_need(&inbuf[..filled]).unwrap_or(0);
            let room = need.max(filled + READ_CHUNK);
            if inbuf.len() < room {
                inbuf.resize(room, 0);
            }
            let mut rb = ReadBuf::new(&mut inbuf[filled..]);
            let polled = Pin::new(&mut socket).poll_read(cx, &mut rb);
            let n = rb.filled().len();
            match polled {
                Poll::Pending => break,
                Poll::Ready(Err(e)) => {
                    fail(&mut sh, format!("connection lost: {e}"));
                    return Poll::Ready(());
                }
                Poll::Ready(Ok(())) if n == 0 => {
                    fail(&mut sh, "the server closed the connection".into());
                    return Poll::Ready(());
                }
                Poll::Ready(Ok(())) => filled += n,
            }
            if need > filled {
                continue; // a large reply, still incomplete: no need to parse yet
            }
            let mut used = 0;
            loop {
                match resp::parse(&inbuf[used..filled]) {
                    Ok(Some((reply, len))) => {
                        used += len;
                        match sh.waiting.pop_front() {
                            Some(tx) => tx.send(Ok(reply)),
                            None => {
                                fail(&mut sh, "a reply came that no command asked for".into());
                                return Poll::Ready(());
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        fail(&mut sh, format!("unreadable reply: {e}"));
                        return Poll::Ready(());
                    }
                }
            }
            if used > 0 {
                inbuf.copy_within(used..filled, 0);
                filled -= used;
            }
            if filled == 0 && inbuf.len() > 4 * READ_CHUNK {
                inbuf.truncate(READ_CHUNK);
                inbuf.shrink_to_fit();
            }
        }
        if sh.closing && sh.waiting.is_empty() {
            return Poll::Ready(());
        }
        sh.driver = Some(cx.waker().clone());
        Poll::Pending
    })
    .await;
    let _ = shared;
}
