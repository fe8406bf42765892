//! TLS for Redis connections (`rediss://`) with rustls and ring: no system OpenSSL needed. The
//! server's certificate is always verified: against Mozilla's roots, or against the CA the app's
//! client was given (`tls.ca`).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::backends::loop_socket::LoopSocket;
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
