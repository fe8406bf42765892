//! A session's socket: TCP to a host, or PostgreSQL's Unix socket in a directory.

use std::io;

pub use crate::backends::loop_socket::LoopSocket;

/// Opens a socket to `host` (a name, an address, or a Unix socket directory) and `port`.
pub async fn connect(host: &str, port: u16) -> io::Result<LoopSocket> {
    #[cfg(unix)]
    if host.starts_with('/') {
        let path = std::path::Path::new(host).join(format!(".s.PGSQL.{port}"));
        return crate::backends::loop_socket::connect_unix(&path).await;
    }
    crate::backends::loop_socket::connect(host, port).await
}
