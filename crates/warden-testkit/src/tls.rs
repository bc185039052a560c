//! Certificates for tests that serve TLS: a private certificate authority and a server
//! certificate it signed for this machine (`127.0.0.1`, `::1`, `localhost`), as PEM files —
//! what an organisation's internal PKI hands a node.

use std::path::{Path, PathBuf};

use anyhow::Result;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// PEM files in one directory.
#[derive(Debug, Clone)]
pub struct PrivateCa {
    /// The authority's certificate (what clients are told to trust).
    pub ca_file: PathBuf,
    /// The server certificate it signed.
    pub cert_file: PathBuf,
    /// The server certificate's private key.
    pub key_file: PathBuf,
}

impl PrivateCa {
    /// A new authority and server certificate, written to `dir`.
    pub fn new(dir: &Path) -> Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Warden test internal CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        let key = KeyPair::generate()?;
        let names = ["127.0.0.1", "::1", "localhost"]
            .map(str::to_owned)
            .to_vec();
        let cert = CertificateParams::new(names)?.signed_by(&key, &*ca)?;
        let files = Self {
            ca_file: dir.join("ca.pem"),
            cert_file: dir.join("node.pem"),
            key_file: dir.join("node.key"),
        };
        std::fs::write(&files.ca_file, ca.pem())?;
        std::fs::write(&files.cert_file, cert.pem())?;
        std::fs::write(&files.key_file, key.serialize_pem())?;
        Ok(files)
    }

    /// The authority's certificate, PEM.
    pub fn ca_pem(&self) -> Result<Vec<u8>> {
        Ok(std::fs::read(&self.ca_file)?)
    }

    /// The settings that make Warden serve TLS with the server certificate.
    pub fn serve_env(&self) -> Vec<(String, String)> {
        vec![
            (
                "WARDEN_TLS_CERT_FILE".to_owned(),
                self.cert_file.display().to_string(),
            ),
            (
                "WARDEN_TLS_KEY_FILE".to_owned(),
                self.key_file.display().to_string(),
            ),
        ]
    }
}
