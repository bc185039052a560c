//! `/metrics`: off (404) by default, opened only by its token, requests counted by route
//! template (never a raw path), failed sign-ins counted, the installation's gauges read at
//! scrape time, no secret anywhere in it — and the exposition valid to the official
//! Prometheus client's parser.

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::{Value, json};
use warden_testkit::{AppOptions, TestApp};

use crate::identity::{ADMIN_EMAIL, ADMIN_PASSWORD, admin_token};

const TOKEN: &str = "mK7pQ2vX9rT4wZ8nB3cF6hJ1dL5sA0gY";

/// The setting that turns metrics on, its token in a file in the returned directory.
pub(crate) fn token_setting() -> (tempfile::TempDir, (String, String)) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrics-token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let setting = (
        "WARDEN_METRICS_TOKEN_FILE".to_owned(),
        file.display().to_string(),
    );
    (dir, setting)
}

/// A Warden with metrics on, and the token file's directory.
async fn with_metrics() -> (TestApp, tempfile::TempDir) {
    let (dir, setting) = token_setting();
    let app = TestApp::spawn_with(AppOptions {
        env: vec![setting],
        ..AppOptions::default()
    })
    .await
    .unwrap();
    (app, dir)
}

/// The exposition, read with the token.
pub(crate) async fn scrape(app: &TestApp) -> String {
    let res = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{:?}",
        res.headers()
    );
    res.text().await.unwrap()
}

/// The exposition as the official Prometheus client parses it: `{"families", "samples"}`.
pub(crate) async fn parsed(text: &str) -> Value {
    use tokio::io::AsyncWriteExt;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/parse_metrics.py");
    let mut child = tokio::process::Command::new(warden_testkit::smtp::python())
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The value of the sample `name` whose labels include `labels`, if any.
pub(crate) fn sample(parsed: &Value, name: &str, labels: &Value) -> Option<f64> {
    parsed["samples"].as_array().unwrap().iter().find_map(|s| {
        let matches = s[0] == name
            && labels
                .as_object()
                .unwrap()
                .iter()
                .all(|(k, v)| s[1].get(k) == Some(v));
        matches.then(|| s[2].as_f64().unwrap())
    })
}

#[tokio::test]
async fn metrics_are_off_unless_configured_and_the_endpoint_is_then_404() {
    let app = TestApp::spawn().await.unwrap();
    for auth in [None, Some(TOKEN)] {
        let mut req = app.client.get(app.url("/metrics"));
        if let Some(t) = auth {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "a 404 like any unknown path"
        );
    }
}

#[tokio::test]
async fn metrics_answer_401_to_anyone_without_the_token() {
    let (app, _dir) = with_metrics().await;
    let admin = admin_token(&app).await;
    let wrong = [
        None,
        Some(format!("Bearer {}", &TOKEN[..TOKEN.len() - 1])),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Bearer {}", TOKEN.to_lowercase())),
        Some(format!("Basic {TOKEN}")),
        Some(TOKEN.to_owned()),
        // An administrator's access token is not the metrics token.
        Some(format!("Bearer {admin}")),
    ];
    for auth in wrong {
        let mut req = app.client.get(app.url("/metrics"));
        if let Some(a) = &auth {
            req = req.header("authorization", a);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        let body = res.text().await.unwrap();
        assert!(!body.contains("warden_"), "{body}");
    }
    // Not in the query string either.
    let res = app
        .client
        .get(app.url(&format!("/metrics?token={TOKEN}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn requests_are_counted_by_route_template_and_no_secret_or_raw_path_appears() {
    let (app, _dir) = with_metrics().await;
    let admin = admin_token(&app).await;
    // A workspace, read by its id: the id must not become a label.
    let ws_id = crate::llm::workspace(&app, &admin, "metrics-ws").await;
    for _ in 0..3 {
        let (s, _) = app
            .call(
                &admin,
                reqwest::Method::GET,
                &format!("/api/v1/workspaces/{ws_id}"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    // A path no route matches, carrying something secret-looking.
    let stray = "/api/v1/nothing-here/sk-live-4f9a8b7c6d5e";
    let res = app.client.get(app.url(stray)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // Two wrong passwords, and one right one.
    for _ in 0..2 {
        let res = app
            .client
            .post(app.url("/api/v1/auth/sign-in"))
            .json(&json!({"email": ADMIN_EMAIL, "password": "not the password at all"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }

    let text = scrape(&app).await;
    let m = parsed(&text).await;
    let route = "/api/v1/workspaces/{workspace_id}";
    assert_eq!(
        sample(
            &m,
            "warden_http_requests_total",
            &json!({"method": "GET", "route": route, "status": "200"})
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &m,
            "warden_http_request_duration_seconds_count",
            &json!({"method": "GET", "route": route})
        ),
        Some(3.0)
    );
    assert_eq!(
        m["families"]["warden_http_request_duration_seconds"],
        "histogram"
    );
    assert_eq!(
        sample(
            &m,
            "warden_http_requests_total",
            &json!({"method": "GET", "route": "unmatched", "status": "404"})
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            "warden_http_requests_total",
            &json!({"method": "POST", "route": "/api/v1/auth/sign-in", "status": "401"})
        ),
        Some(2.0)
    );
    // The successful sign-ins (setup's and admin_token's) are not failures.
    assert_eq!(
        sample(
            &m,
            "warden_sign_in_failures_total",
            &json!({"method": "password"})
        ),
        Some(2.0)
    );
    // Gauges read at scrape time.
    for (name, labels) in [
        ("warden_hosts_connected", json!({"scope": "node"})),
        ("warden_hosts_connected", json!({"scope": "cluster"})),
        ("warden_sessions", json!({"state": "running"})),
        ("warden_jobs", json!({"state": "queued"})),
        ("warden_audit_unchained_events", json!({})),
        ("warden_audit_unverified_events", json!({})),
    ] {
        assert!(
            sample(&m, name, &labels).is_some_and(|v| v >= 0.0),
            "{name} {labels}: {text}"
        );
    }
    assert_eq!(
        sample(&m, "warden_audit_chain_intact", &json!({})),
        Some(1.0)
    );
    assert!(sample(&m, "warden_db_pool_connections", &json!({"state": "max"})).unwrap() >= 1.0);
    // An unlicensed build reports no licence.
    assert_eq!(sample(&m, "warden_license_valid", &json!({})), None);

    // Nothing secret, nothing raw.
    for secret in [
        TOKEN,
        ADMIN_PASSWORD,
        ADMIN_EMAIL,
        admin.as_str(),
        app.master_key_hex.as_str(),
        ws_id.as_str(),
        "sk-live-4f9a8b7c6d5e",
        "nothing-here",
        "metrics-ws",
    ] {
        assert!(!text.contains(secret), "{secret} leaked into /metrics");
    }
}

#[tokio::test]
async fn a_token_file_too_short_or_missing_stops_the_start_and_never_echoes_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let short: PathBuf = dir.path().join("short");
    std::fs::write(&short, "tooshort-secret-123").unwrap();
    let missing = dir.path().join("missing");
    for (file, expect) in [
        (&short, "at least 32 characters"),
        (&missing, "cannot read"),
    ] {
        let err = TestApp::spawn_with(AppOptions {
            env: vec![(
                "WARDEN_METRICS_TOKEN_FILE".to_owned(),
                file.display().to_string(),
            )],
            ..AppOptions::default()
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains(expect), "{err}");
        assert!(err.contains(&file.display().to_string()), "{err}");
        assert!(!err.contains("tooshort-secret-123"), "{err}");
    }
}
