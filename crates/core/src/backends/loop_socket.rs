//! Connections to a database server as sockets of the JS thread's [`Reactor`]: the driver
//! (tokio-postgres, or the Redis client) reads and writes them where the store runs, so a
//! query costs no thread hop.
//!
//! Only resolving a host name blocks; it runs on a helper thread. A numeric address or a Unix
//! socket directory connects without one.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use mio::event::Source;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::runtime::executor::run_blocking;
use crate::runtime::reactor::{Direction, Reactor};

enum Stream {
    Tcp(mio::net::TcpStream),
    #[cfg(unix)]
    Unix(mio::net::UnixStream),
}

impl Stream {
    fn source(&mut self) -> &mut dyn Source {
        match self {
            Stream::Tcp(s) => s,
            #[cfg(unix)]
            Stream::Unix(s) => s,
        }
    }
}

/// A non-blocking socket registered with this thread's reactor. `Send` (the TLS layer asks
/// for it) but used on the thread that opened it: elsewhere it finds no registration and its
/// I/O fails instead of waiting.
pub struct LoopSocket {
    stream: Stream,
    token: usize,
}

// Reactor lookups go through the thread-local reactor by token; the socket holds no `Rc`.
fn reactor() -> io::Result<Rc<Reactor>> {
    Reactor::current()
}

impl LoopSocket {
    fn new(mut stream: Stream) -> io::Result<Self> {
        let token = reactor()?.register(stream.source())?;
        Ok(LoopSocket { stream, token })
    }

    /// Runs `op` until it does not block, waiting for readiness in direction `d` in between.
    fn poll_io<T>(
        &mut self,
        d: Direction,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&mut Stream) -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        let r = reactor()?;
        loop {
            if r.poll_ready(self.token, d, cx).is_pending() {
                return Poll::Pending;
            }
            match op(&mut self.stream) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => r.clear_ready(self.token, d),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return Poll::Ready(other),
            }
        }
    }
}

impl LoopSocket {
    /// A second descriptor of this socket, for [`LastWord`]; `None` where none can be made.
    pub fn last_word(&self) -> Option<LastWord> {
        #[cfg(unix)]
        {
            use std::os::fd::{AsFd, OwnedFd};
            let fd: io::Result<OwnedFd> = match &self.stream {
                Stream::Tcp(s) => s.as_fd().try_clone_to_owned(),
                Stream::Unix(s) => s.as_fd().try_clone_to_owned(),
            };
            fd.ok().map(LastWord)
        }
        #[cfg(not(unix))]
        None
    }
}

/// A second descriptor of a connection's socket, for the few bytes a connection sends while
/// its thread's JS environment ends, when no reactor is left to wait on: they are written
/// without waiting, or not at all. It keeps the connection open until it is dropped too, so
/// it works after the socket itself was dropped.
pub struct LastWord(#[cfg(unix)] std::os::fd::OwnedFd);

impl LastWord {
    /// Writes what of `bytes` the socket takes now; returns how many bytes that was.
    pub fn say(&self, bytes: &[u8]) -> usize {
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            let mut sent = 0;
            while sent < bytes.len() {
                let rest = &bytes[sent..];
                // SAFETY: a valid descriptor owned by `self`, and a buffer valid for `rest.len()`
                // bytes. MSG_DONTWAIT never blocks; MSG_NOSIGNAL turns a closed peer into EPIPE
                // instead of SIGPIPE.
                let n = unsafe {
                    libc::send(
                        self.0.as_raw_fd(),
                        rest.as_ptr().cast(),
                        rest.len(),
                        libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    )
                };
                match n {
                    n if n > 0 => sent += n as usize,
                    _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
                    _ => break,
                }
            }
            sent
        }
        #[cfg(not(unix))]
        {
            let _ = bytes;
            0
        }
    }
}

/// How a connection's last bytes reach its server once no reactor is left to wait on (its
/// thread's JS environment ending): written at once without waiting, or not at all.
pub trait Say {
    /// Writes what of `bytes` can be written now; returns how many bytes that was.
    fn say(&self, bytes: &[u8]) -> usize;
}

impl Say for LastWord {
    fn say(&self, bytes: &[u8]) -> usize {
        LastWord::say(self, bytes)
    }
}

/// A [`LastWord`] as a writer (for a TLS session to write its records to): a write that
/// takes nothing is `WouldBlock`, since nothing can wait for the socket.
impl Write for &LastWord {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match LastWord::say(self, bytes) {
            0 if !bytes.is_empty() => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LoopSocket {
    fn drop(&mut self) {
        if let Some(r) = Reactor::started() {
            r.deregister(self.stream.source(), self.token);
        }
    }
}

impl AsyncRead for LoopSocket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = match self.poll_io(Direction::Read, cx, |s| match s {
            Stream::Tcp(s) => s.read(buf.initialize_unfilled()),
            #[cfg(unix)]
            Stream::Unix(s) => s.read(buf.initialize_unfilled()),
        }) {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for LoopSocket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(Direction::Write, cx, |s| match s {
            Stream::Tcp(s) => s.write(data),
            #[cfg(unix)]
            Stream::Unix(s) => s.write(data),
        })
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(())) // writes go straight to the socket
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = match &self.stream {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            #[cfg(unix)]
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
        };
        Poll::Ready(match r {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            r => r,
        })
    }
}

/// Opens a Unix socket at `path`.
#[cfg(unix)]
pub async fn connect_unix(path: &std::path::Path) -> io::Result<LoopSocket> {
    let socket = LoopSocket::new(Stream::Unix(mio::net::UnixStream::connect(path)?))?;
    finish_connect(socket).await
}

/// Opens a TCP socket to `host` (a name or an address) and `port`.
pub async fn connect(host: &str, port: u16) -> io::Result<LoopSocket> {
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => {
            let name = format!("{host}:{port}");
            run_blocking(move || name.to_socket_addrs().map(Vec::from_iter))
                .await
                .unwrap_or_else(|| Err(io::Error::other("host name lookup stopped")))?
        }
    };
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
    for addr in addrs {
        let attempt = async {
            let stream = mio::net::TcpStream::connect(addr)?;
            let _ = stream.set_nodelay(true);
            keepalive(&stream);
            finish_connect(LoopSocket::new(Stream::Tcp(stream))?).await
        };
        match attempt.await {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Waits until a non-blocking connect completes, and reports how it ended.
async fn finish_connect(mut socket: LoopSocket) -> io::Result<LoopSocket> {
    std::future::poll_fn(|cx| {
        socket.poll_io(Direction::Write, cx, |s| {
            let (error, peer) = match s {
                Stream::Tcp(s) => (s.take_error(), s.peer_addr().map(|_| ())),
                #[cfg(unix)]
                Stream::Unix(s) => (s.take_error(), s.peer_addr().map(|_| ())),
            };
            if let Some(e) = error? {
                return Err(e);
            }
            match peer {
                // Not connected yet: the next write readiness says when it is.
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    Err(io::ErrorKind::WouldBlock.into())
                }
                other => other,
            }
        })
    })
    .await?;
    Ok(socket)
}

/// TCP keepalive, as node-postgres, libpq and Redis clients ask for: a dead peer is noticed
/// eventually.
fn keepalive(stream: &mio::net::TcpStream) {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        let on: libc::c_int = 1;
        // SAFETY: a valid socket descriptor and a pointer to a c_int of the stated size.
        unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_KEEPALIVE,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    #[cfg(not(unix))]
    let _ = stream;
}
