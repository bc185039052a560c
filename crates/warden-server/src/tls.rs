//! TLS termination with rustls: certificate chain and key from PEM files, TLS 1.2 and 1.3 only.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsConfig;

/// Builds the rustls server configuration. Errors name the file and the problem, never key bytes.
pub fn server_config(tls: &TlsConfig) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert_file)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            format!(
                "tls.cert_file {}: cannot read a PEM certificate chain ({e})",
                tls.cert_file.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "tls.cert_file {}: no certificate found in the file",
            tls.cert_file.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key_file).map_err(|_| {
        format!(
            "tls.key_file {}: cannot read a PEM private key from the file",
            tls.key_file.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("tls: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "tls.key_file {}: the key does not suit the certificate ({e})",
                tls.key_file.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
