//! Mail over TLS to a real SMTP server (aiosmtpd): STARTTLS and implicit TLS, the server's
//! certificate checked against `smtp.ca_file` (a private CA) — and refused without it.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_testkit::smtp::{Smtp, free_port};
use warden_testkit::{AppOptions, TestApp};

use crate::identity::admin_token;

async fn app_with(env: Vec<(&str, String)>) -> (TestApp, String) {
    let app = TestApp::spawn_with(AppOptions {
        env: env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let admin = admin_token(&app).await;
    (app, admin)
}

/// Invites someone (which mails them) and waits for the mail log to settle on it.
async fn mail_one(app: &TestApp, admin: &str, settled: &[&str]) -> Value {
    let (code, _) = app
        .call(
            admin,
            Method::POST,
            "/api/v1/admin/invitations",
            Some(json!({"email": "newcomer@example.com"})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    let mut entry = Value::Null;
    for _ in 0..200 {
        let (_, log) = app
            .call(admin, Method::GET, "/api/v1/admin/mail-log", None)
            .await;
        entry = log["items"][0].clone();
        let done = entry["status"] != "queued" || entry["attempts"].as_i64() > Some(0);
        if done && settled.iter().any(|s| entry["status"] == *s) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    entry
}

#[tokio::test]
async fn mail_goes_over_starttls_and_implicit_tls_to_a_server_whose_certificate_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = crate::tls::self_signed(dir.path());
    // STARTTLS (required), trusting the private CA.
    let port = free_port();
    let smtp = Smtp::start_with(port, &["--tlscert", &cert, "--tlskey", &key]).await;
    let (app, admin) = app_with(vec![
        (
            "WARDEN_SMTP_URL",
            format!("smtp://127.0.0.1:{port}?tls=required"),
        ),
        ("WARDEN_SMTP_CA_FILE", cert.clone()),
    ])
    .await;
    let entry = mail_one(&app, &admin, &["sent"]).await;
    assert_eq!(entry["status"], "sent", "{entry}");
    assert_eq!(smtp.wait_for(1).await.len(), 1);

    // Implicit TLS.
    let port = free_port();
    let smtps = Smtp::start_with(port, &["--smtpscert", &cert, "--smtpskey", &key]).await;
    let (app, admin) = app_with(vec![
        ("WARDEN_SMTP_URL", format!("smtps://127.0.0.1:{port}")),
        ("WARDEN_SMTP_CA_FILE", cert.clone()),
    ])
    .await;
    let entry = mail_one(&app, &admin, &["sent"]).await;
    assert_eq!(entry["status"], "sent", "{entry}");
    assert_eq!(smtps.wait_for(1).await.len(), 1);

    // Without the CA the certificate is not trusted: nothing is sent, and the log says why.
    let port = free_port();
    let untrusted = Smtp::start_with(port, &["--smtpscert", &cert, "--smtpskey", &key]).await;
    let (app, admin) = app_with(vec![(
        "WARDEN_SMTP_URL",
        format!("smtps://127.0.0.1:{port}"),
    )])
    .await;
    let entry = mail_one(&app, &admin, &["queued"]).await;
    assert_eq!(entry["status"], "queued", "{entry}");
    assert_eq!(entry["attempts"], 1, "{entry}");
    assert!(entry["last_error"].as_str().is_some_and(|e| !e.is_empty()));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(untrusted.messages().is_empty());

    // A file that is not a certificate stops start-up, naming the setting.
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let err = TestApp::spawn_with(AppOptions {
        env: vec![
            (
                "WARDEN_SMTP_URL".to_owned(),
                "smtps://127.0.0.1:1".to_owned(),
            ),
            ("WARDEN_SMTP_CA_FILE".to_owned(), bad.display().to_string()),
        ],
        ..AppOptions::default()
    })
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("smtp.ca_file"), "{err}");
}
