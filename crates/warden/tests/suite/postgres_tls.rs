//! PostgreSQL over TLS with `sslmode=verify-full`: Warden reaches the test cluster through a
//! certificate signed by the test CA (`scripts/lib/postgres.sh` makes both; the cluster also
//! takes plain connections for the rest of the suite), every connection it holds is
//! encrypted, and a server it cannot verify — another CA, a name the certificate does not
//! cover — stops the start with the reason named. PostgreSQL only.

use warden_store::Backend;
use warden_testkit::{AppOptions, TestApp, TestDb};

use crate::identity::admin_token;

fn with_tls(url: &str, mode: &str, ca: &std::path::Path) -> String {
    format!("{url}?sslmode={mode}&sslrootcert={}", ca.display())
}

async fn spawn_on(url: String, owner_url: String) -> anyhow::Result<TestApp> {
    spawn_with_key(url, owner_url, None).await
}

/// As [`spawn_on`], with the master key the database was set up with.
async fn spawn_with_key(
    url: String,
    owner_url: String,
    key: Option<&str>,
) -> anyhow::Result<TestApp> {
    let mut env = vec![
        ("WARDEN_DATABASE_URL".to_owned(), url),
        ("WARDEN_DATABASE_OWNER_URL".to_owned(), owner_url),
    ];
    if let Some(key) = key {
        env.push(("WARDEN_ENCRYPTION_KEY".to_owned(), key.to_owned()));
    }
    TestApp::spawn_with(AppOptions {
        env,
        ..AppOptions::default()
    })
    .await
}

/// A certificate authority nobody signed the cluster's certificate with.
fn foreign_ca(dir: &std::path::Path) -> std::path::PathBuf {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    let path = dir.join("foreign-ca.crt");
    std::fs::write(&path, cert.pem()).unwrap();
    path
}

#[tokio::test]
async fn warden_reaches_postgres_over_verified_tls_and_refuses_a_server_it_cannot_verify() {
    let db = TestDb::new().await.unwrap();
    if db.backend != Backend::Postgres {
        return;
    }
    warden_testkit::install_crypto_provider();
    let ca = std::path::PathBuf::from(
        std::env::var("TESTKIT_POSTGRES_CA")
            .expect("TESTKIT_POSTGRES_CA is not set: run the suite through scripts/test"),
    );

    // verify-full with the test CA: Warden starts, migrates and serves.
    let app = spawn_on(
        with_tls(&db.url, "verify-full", &ca),
        with_tls(&db.owner_url, "verify-full", &ca),
    )
    .await
    .unwrap();
    let admin = admin_token(&app).await;
    crate::llm::workspace(&app, &admin, "over-tls").await;
    // Every connection Warden holds to its database is encrypted, as the server sees it.
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let admin_url = std::env::var("TESTKIT_POSTGRES_URL").unwrap();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url)
        .await
        .unwrap();
    let (encrypted, plain): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*) FILTER (WHERE s.ssl), COUNT(*) FILTER (WHERE NOT s.ssl) \
         FROM pg_stat_activity a JOIN pg_stat_ssl s ON s.pid = a.pid \
         WHERE a.datname = $1 AND a.application_name = 'warden'",
    )
    .bind(&name)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(encrypted >= 1, "no encrypted connection from Warden");
    assert_eq!(plain, 0, "Warden holds a plain connection");
    let key = app.master_key_hex.clone();
    drop(app);

    // A CA that did not sign the server's certificate: the start stops, naming why.
    let dir = tempfile::tempdir().unwrap();
    let foreign = foreign_ca(dir.path());
    let err = spawn_on(
        with_tls(&db.url, "verify-full", &foreign),
        with_tls(&db.owner_url, "verify-full", &foreign),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("cannot connect to PostgreSQL"), "{err}");
    assert!(err.contains("UnknownIssuer"), "{err}");

    // The right CA but a name the certificate does not cover (it names 127.0.0.1 only):
    // verify-full refuses, while verify-ca (which checks only the issuer) connects — so the
    // refusal is the name check.
    let by_name = |url: &str| url.replacen("@127.0.0.1:", "@localhost:", 1);
    let err = spawn_on(
        with_tls(&by_name(&db.url), "verify-full", &ca),
        with_tls(&by_name(&db.owner_url), "verify-full", &ca),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("certificate not valid for name \"localhost\""),
        "{err}"
    );
    let app = spawn_with_key(
        with_tls(&by_name(&db.url), "verify-ca", &ca),
        with_tls(&by_name(&db.owner_url), "verify-ca", &ca),
        Some(&key),
    )
    .await
    .unwrap();
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::OK);
}
