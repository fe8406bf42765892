//! TLS for PostgreSQL connections with rustls and ring: no system OpenSSL needed.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::config::Tls;
use crate::core::{DatastoreError, Result};

/// The rustls connector for `tls`, or `None` for plain TCP.
pub fn connector(tls: &Tls) -> Result<Option<MakeRustlsConnect>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| DatastoreError::backend(format!("TLS setup failed: {e}")))?;
    let config = match tls {
        Tls::Disable => return Ok(None),
        Tls::Prefer | Tls::RequireUnverified => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCertificateCheck(provider)))
            .with_no_client_auth(),
        Tls::Verified { ca_pem } => {
            let mut roots = RootCertStore::empty();
            match ca_pem {
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
                Some(pem) => {
                    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                        let cert = cert.map_err(|e| {
                            DatastoreError::invalid_argument(format!(
                                "ssl.ca is not a PEM certificate: {e}"
                            ))
                        })?;
                        roots.add(cert).map_err(|e| {
                            DatastoreError::invalid_argument(format!(
                                "ssl.ca holds a certificate rustls cannot use: {e}"
                            ))
                        })?;
                    }
                    if roots.is_empty() {
                        return Err(DatastoreError::invalid_argument(
                            "ssl.ca holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                        ));
                    }
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(Some(MakeRustlsConnect::new(config)))
}

/// Encrypts without authenticating the server (libpq's `sslmode=require`, node-postgres's
/// `rejectUnauthorized: false`). Handshake signatures are still checked.
#[derive(Debug)]
struct NoCertificateCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCertificateCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connectors_build() {
        assert!(connector(&Tls::Disable).unwrap().is_none());
        assert!(connector(&Tls::Prefer).unwrap().is_some());
        assert!(connector(&Tls::Verified { ca_pem: None })
            .unwrap()
            .is_some());
        let bad = Tls::Verified {
            ca_pem: Some("not a certificate".into()),
        };
        assert_eq!(
            connector(&bad).err().map(|e| e.code()),
            Some("ERR_DATASTORE_INVALID_ARGUMENT")
        );
    }
}
