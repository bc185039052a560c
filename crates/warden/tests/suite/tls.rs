//! TLS termination: HTTPS with HSTS, and no plain HTTP on the TLS port.

use std::io::Write;

use rustls::pki_types::pem::PemObject;
use warden_testkit::{AppOptions, TestApp};

pub(crate) fn self_signed(dir: &std::path::Path) -> (String, String, Vec<u8>) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::File::create(&cert_path)
        .unwrap()
        .write_all(cert.cert.pem().as_bytes())
        .unwrap();
    std::fs::File::create(&key_path)
        .unwrap()
        .write_all(cert.signing_key.serialize_pem().as_bytes())
        .unwrap();
    (
        cert_path.display().to_string(),
        key_path.display().to_string(),
        cert.cert.pem().into_bytes(),
    )
}

/// Warden serving TLS with a fresh self-signed certificate (returned as PEM for clients).
async fn tls_app() -> (tempfile::TempDir, TestApp, Vec<u8>) {
    tls_app_with(&[]).await
}

async fn tls_app_with(extra: &[(&str, &str)]) -> (tempfile::TempDir, TestApp, Vec<u8>) {
    warden_testkit::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, pem) = self_signed(dir.path());
    let mut env = vec![
        ("WARDEN_TLS_CERT_FILE".to_owned(), cert),
        ("WARDEN_TLS_KEY_FILE".to_owned(), key),
    ];
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let app = TestApp::spawn_with(AppOptions {
        env,
        ..AppOptions::default()
    })
    .await
    .unwrap();
    (dir, app, pem)
}

#[tokio::test]
async fn with_tls_configured_warden_serves_https_with_hsts() {
    let (_dir, app, pem) = tls_app().await;
    assert!(app.base.starts_with("https://"));
    let client = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap();
    let res = client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );

    let plain = app.base.replace("https://", "http://");
    let res = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{plain}/healthz"))
        .send()
        .await;
    assert!(
        res.is_err(),
        "plain HTTP must not be served on the TLS port"
    );
}

/// A client that opens a connection to the TLS port and never completes the handshake, or
/// completes it and never sends a request, is cut off after the header-read timeout.
#[tokio::test]
async fn a_silent_client_on_the_tls_port_is_cut_off() {
    use tokio::io::AsyncReadExt;
    let (_dir, app, pem) = tls_app_with(&[("WARDEN_HTTP_HEADER_READ_TIMEOUT_SECS", "2")]).await;
    let mut raw = tokio::net::TcpStream::connect(app.server.local_addr())
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(std::time::Duration::from_secs(8), raw.read(&mut buf))
        .await
        .expect("the silent connection was closed");
    assert!(matches!(closed, Ok(0) | Err(_)));
    // After a finished handshake (HTTP/1.1 over TLS), silence is cut off too.
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(app.server.local_addr())
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(8), tls.read(&mut buf))
        .await
        .expect("the silent TLS connection was closed");
    assert!(matches!(closed, Ok(0) | Err(_)));
}

#[tokio::test]
async fn tls_1_2_and_1_3_clients_both_connect() {
    // rustls implements nothing older than TLS 1.2, and the server configuration names
    // exactly these two versions.
    let (_dir, app, pem) = tls_app().await;
    for version in [
        reqwest::tls::Version::TLS_1_2,
        reqwest::tls::Version::TLS_1_3,
    ] {
        let client = reqwest::Client::builder()
            .no_proxy()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
            .tls_version_min(version)
            .tls_version_max(version)
            .build()
            .unwrap();
        let res = client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(res.status(), 200, "{version:?}");
    }
}

#[tokio::test]
async fn an_unreadable_certificate_stops_boot_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("cert.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let err = TestApp::spawn_with(AppOptions {
        env: vec![
            ("WARDEN_TLS_CERT_FILE".into(), bogus.display().to_string()),
            ("WARDEN_TLS_KEY_FILE".into(), bogus.display().to_string()),
        ],
        ..AppOptions::default()
    })
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("tls.cert_file"), "{err}");
}
