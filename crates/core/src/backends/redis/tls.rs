//! TLS for Redis connections (`rediss://`) with rustls and ring: no system OpenSSL needed. The
//! server's certificate is always verified: against Mozilla's roots, or against the CA the app's
//! client was given (`tls.ca`).

use std::cell::RefCell;
use std::io::{self, Write};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::backends::loop_socket::{LastWord, LoopSocket, Say};
use crate::core::{DatastoreError, Result};

/// How a connection is encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisTls {
    /// PEM certificates to trust instead of Mozilla's roots.
    pub ca_pem: Option<String>,
}

/// The rustls configuration for `tls`. Errors name what is wrong with the CA.
pub fn client_config(tls: &RedisTls) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DatastoreError::backend(format!("TLS setup failed: {e}")))?;
    let mut roots = RootCertStore::empty();
    match &tls.ca_pem {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| {
                    DatastoreError::invalid_argument(format!(
                        "RedisStoreAdapter: tls.ca is not a PEM certificate: {e}"
                    ))
                })?;
                roots.add(cert).map_err(|e| {
                    DatastoreError::invalid_argument(format!(
                        "RedisStoreAdapter: tls.ca holds a certificate rustls cannot use: {e}"
                    ))
                })?;
            }
            if roots.is_empty() {
                return Err(DatastoreError::invalid_argument(
                    "RedisStoreAdapter: tls.ca holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                ));
            }
        }
    }
    Ok(Arc::new(
        builder.with_root_certificates(roots).with_no_client_auth(),
    ))
}

/// The TLS handshake on `socket` with the server named `host`.
pub async fn handshake(
    config: Arc<ClientConfig>,
    host: &str,
    socket: LoopSocket,
) -> std::result::Result<TlsStream<LoopSocket>, String> {
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| format!("{host:?} is not a server name TLS can check: {e}"))?;
    TlsConnector::from(config)
        .connect(name, socket)
        .await
        .map_err(|e| format!("TLS handshake failed: {e}"))
}

/// A TLS connection read and written by its driver through [`SharedTls`], and by its
/// [`TlsLastWord`] once the driver cannot run any more.
type Session = Rc<RefCell<TlsStream<LoopSocket>>>;

/// Splits `stream` into what its driver reads and writes, and — given `fd`, a second
/// descriptor of its socket — what says a connection's last command (see
/// `Conn::say_last`): the TLS session seals it, and its records are written to `fd` at once.
pub fn with_last_word(
    stream: TlsStream<LoopSocket>,
    fd: Option<LastWord>,
) -> (SharedTls, Option<Box<dyn Say>>) {
    let session: Session = Rc::new(RefCell::new(stream));
    let last_word = fd.map(|fd| {
        Box::new(TlsLastWord {
            session: session.clone(),
            fd,
        }) as Box<dyn Say>
    });
    (SharedTls(session), last_word)
}

/// The driver's side of a TLS connection. Only one side uses the session at a time: the
/// last word is said only once no task (so no driver) runs on the thread.
pub struct SharedTls(Session);

/// The error of a session in use by the other side (which the invariant above rules out).
fn in_use() -> io::Error {
    io::Error::other("the TLS session is in use")
}

impl AsyncRead for SharedTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.0.try_borrow_mut() {
            Ok(mut s) => Pin::new(&mut *s).poll_read(cx, buf),
            Err(_) => Poll::Ready(Err(in_use())),
        }
    }
}

impl AsyncWrite for SharedTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.0.try_borrow_mut() {
            Ok(mut s) => Pin::new(&mut *s).poll_write(cx, data),
            Err(_) => Poll::Ready(Err(in_use())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.0.try_borrow_mut() {
            Ok(mut s) => Pin::new(&mut *s).poll_flush(cx),
            Err(_) => Poll::Ready(Err(in_use())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.0.try_borrow_mut() {
            Ok(mut s) => Pin::new(&mut *s).poll_shutdown(cx),
            Err(_) => Poll::Ready(Err(in_use())),
        }
    }
}

/// Says a TLS connection's last command: sealed by its session (after any records the
/// driver left unwritten, which the session still holds, so the stream stays in order) and
/// written to a second descriptor of the socket without waiting.
struct TlsLastWord {
    session: Session,
    fd: LastWord,
}

impl Say for TlsLastWord {
    /// Returns `bytes.len()` once every record is written, else 0: a record cut short leaves
    /// the stream unreadable, and the caller gives the connection up.
    fn say(&self, bytes: &[u8]) -> usize {
        let Ok(mut stream) = self.session.try_borrow_mut() else {
            return 0;
        };
        let (_, tls) = stream.get_mut();
        let mut fd = &self.fd;
        let mut sealed = 0;
        loop {
            // The session takes as much plaintext as its buffer limit allows.
            match tls.writer().write(&bytes[sealed..]) {
                Ok(n) => sealed += n,
                Err(_) => return 0,
            }
            if sealed < bytes.len() && !tls.wants_write() {
                return 0; // it took nothing and holds nothing to make room with
            }
            while tls.wants_write() {
                match tls.write_tls(&mut fd) {
                    Ok(n) if n > 0 => {}
                    _ => return 0,
                }
            }
            if sealed == bytes.len() {
                return sealed;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_that_is_not_pem_is_refused() {
        for bad in [
            "not a certificate",
            "",
            "-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n",
        ] {
            let e = client_config(&RedisTls {
                ca_pem: Some(bad.into()),
            })
            .unwrap_err();
            assert_eq!(e.code(), "ERR_DATASTORE_INVALID_ARGUMENT", "{bad:?}");
        }
        assert!(client_config(&RedisTls { ca_pem: None }).is_ok());
    }
}
