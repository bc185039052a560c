//! Offline licences: the 503 gate over every route, upload and its attacks, machine and domain
//! binding, feature flags, user and host limits, clock tampering across a restart, expiry
//! alerts through a real SMTP server, and a licence verified by a standard JOSE library.

use std::path::PathBuf;
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use warden_crypto::license::SigningKey;
use warden_domain::clock::{Clock, ManualClock};
use warden_domain::license::LicenseRule;
use warden_protocol::PROTOCOL_VERSION;
use warden_testkit::{AppOptions, TestApp};

use crate::agent::{connect, hello, next, refusal_code, register, welcomed};
use crate::identity::{ADMIN_EMAIL, ADMIN_PASSWORD, admin_token, audit_rows, sign_in};

const DAY: i64 = 86_400;
const MACHINE_ID: &str = "5f1c0b7e9a2d4c3b8e6f0a1b2c3d4e5f";

/// The operator (a key pair) and the customer's machine identity, as files.
struct Operator {
    key: SigningKey,
    dir: tempfile::TempDir,
    fingerprint: String,
}

impl Operator {
    fn new() -> Self {
        let (key, _) = SigningKey::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("operator.pub"), key.public_key().to_pem()).unwrap();
        std::fs::write(dir.path().join("machine-id"), format!("{MACHINE_ID}\n")).unwrap();
        let fingerprint =
            warden_core::license::machine::fingerprint(Some(&dir.path().join("machine-id")))
                .unwrap();
        Self {
            key,
            dir,
            fingerprint,
        }
    }

    fn public_key_file(&self) -> PathBuf {
        self.dir.path().join("operator.pub")
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "WARDEN_LICENSE_PUBLIC_KEY_FILE".to_owned(),
                self.public_key_file().display().to_string(),
            ),
            (
                "WARDEN_LICENSE_MACHINE_ID_FILE".to_owned(),
                self.dir.path().join("machine-id").display().to_string(),
            ),
        ]
    }

    /// A valid standard licence for this machine, issued at `now`, 90 days long.
    fn claims(&self, now: i64) -> Value {
        json!({
            "jti": "LIC-0001", "customer": "Acme Corp", "tier": "standard",
            "iat": now, "exp": now + 90 * DAY,
            "userLimit": 10, "sessionHosts": 5, "deployHosts": 2,
            "features": ["workflows", "bots", "multiple-active-sessions"],
            "fingerprint": self.fingerprint,
        })
    }

    fn sign(&self, claims: &Value) -> String {
        self.key.sign(claims).unwrap()
    }
}

fn unix(clock: &dyn Clock) -> i64 {
    clock.now().unix_timestamp()
}

async fn licensed(op: &Operator, clock: &Arc<ManualClock>, extra: &[(&str, &str)]) -> TestApp {
    let mut env = op.env();
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    TestApp::spawn_with(AppOptions {
        env,
        clock: clock.clone(),
        ..AppOptions::default()
    })
    .await
    .unwrap()
}

/// Another node on `a`'s database (and master key), with `env` on top.
async fn another_node(
    a: &TestApp,
    clock: &Arc<ManualClock>,
    mut env: Vec<(String, String)>,
) -> TestApp {
    env.push(("WARDEN_ENCRYPTION_KEY".to_owned(), a.master_key_hex.clone()));
    env.extend(a.db.env());
    TestApp::spawn_with(AppOptions {
        env,
        clock: clock.clone(),
        ..AppOptions::default()
    })
    .await
    .unwrap()
}

fn manual_clock() -> Arc<ManualClock> {
    #[allow(clippy::disallowed_methods)]
    let now = OffsetDateTime::now_utc();
    Arc::new(ManualClock::new(now))
}

async fn upload(app: &TestApp, token: &str, lic: &str) -> (StatusCode, Value) {
    let res = app
        .client
        .put(app.url("/api/v1/license"))
        .bearer_auth(token)
        .header("content-type", "application/jwt")
        .body(lic.to_owned())
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn status(app: &TestApp, token: &str) -> Value {
    let (s, v) = app.call(token, Method::GET, "/api/v1/license", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn create_user(app: &TestApp, admin: &str, email: &str) -> (StatusCode, Value) {
    app.call(
        admin,
        Method::POST,
        "/api/v1/admin/users",
        Some(json!({"email": email, "password": "quiet harbor 4417 finch"})),
    )
    .await
}

#[tokio::test]
async fn without_an_operator_key_warden_runs_unlicensed_with_every_feature() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let s = status(&app, &admin).await;
    assert_eq!(s["state"], "unlicensed");
    assert_eq!(
        s["features"].as_array().unwrap().len(),
        warden_domain::license::Feature::ALL.len()
    );
    let (code, _) = app.call(&admin, Method::GET, "/api/v1/hosts", None).await;
    assert_eq!(code, StatusCode::OK);
    let (code, body) = upload(&app, &admin, "x.y.z").await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
}

/// Every route the router serves, enumerated from its table: without a valid licence, an API
/// route answers 503 unless it is one of the six recovery routes; other routes are not blocked.
#[tokio::test]
async fn without_a_licence_every_api_route_but_the_recovery_routes_answers_503() {
    let op = Operator::new();
    let clock = manual_clock();
    let app = licensed(&op, &clock, &[]).await;
    let admin = admin_token(&app).await;

    let (_, _, table) = warden_server::api::routes().into_parts();
    let mut recovery = Vec::new();
    let mut checked = 0;
    for (method, path, declared) in table.declarations() {
        let filled: String = path
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    "0190b3b0-0000-7000-8000-000000000000"
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let body = (m != Method::GET && m != Method::DELETE).then(|| json!({}));
        let (code, problem) = app.call(&admin, m, &filled, body).await;
        let gated = path.starts_with("/api/") || path.starts_with("/console");
        if declared.license == LicenseRule::Recovery || !gated {
            assert_ne!(code, StatusCode::SERVICE_UNAVAILABLE, "{method} {path}");
            if path.starts_with("/api/") {
                recovery.push(format!("{method} {path}"));
            }
        } else {
            assert_eq!(
                code,
                StatusCode::SERVICE_UNAVAILABLE,
                "{method} {path}: {problem}"
            );
            // (A console page answers with the "Licence needed" page instead of JSON.)
            if path.starts_with("/api/") {
                assert_eq!(problem["code"], "license-missing", "{method} {path}");
            }
        }
        checked += 1;
    }
    assert!(checked > 50, "only {checked} routes");
    // The sweep signed the admin out (sign-out is a recovery route).
    let admin = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    recovery.sort();
    assert_eq!(
        recovery,
        [
            "GET /api/v1/auth/methods",
            "GET /api/v1/auth/sso/{slug}/callback",
            "GET /api/v1/auth/sso/{slug}/start",
            "GET /api/v1/license",
            "GET /api/v1/license/machine-info",
            "GET /api/v1/me",
            "POST /api/v1/auth/magic-link",
            "POST /api/v1/auth/magic-link/sign-in",
            "POST /api/v1/auth/passkey",
            "POST /api/v1/auth/passkey/options",
            "POST /api/v1/auth/password-reset",
            "POST /api/v1/auth/password-reset/complete",
            "POST /api/v1/auth/sign-in",
            "POST /api/v1/auth/sign-out",
            "POST /api/v1/auth/sso/discover",
            "PUT /api/v1/license",
        ]
    );
    let s = status(&app, &admin).await;
    assert_eq!(s["state"], "invalid");
    assert_eq!(s["problem"]["code"], "license-missing");
    assert_eq!(s["machine_id"], op.fingerprint.as_str());
    // Hosts are refused at connect with a licence error.
    match connect(&app, "whk_00000000000000000000000000000000_x").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), 503);
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn machine_info_names_this_machine_and_a_licence_signed_from_it_installs_at_once() {
    let op = Operator::new();
    let clock = manual_clock();
    let app = licensed(&op, &clock, &[]).await;
    let admin = admin_token(&app).await;
    let res = app
        .client
        .get(app.url("/api/v1/license/machine-info"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("machine-info.json")
    );
    let info: Value = res.json().await.unwrap();
    assert_eq!(info["fingerprint"], op.fingerprint.as_str());
    assert!(
        !info.to_string().contains(MACHINE_ID),
        "raw machine id leaked"
    );
    assert!(info["generatedAt"].is_string() && info["wardenVersion"].is_string());

    // The operator signs from it with the CLI; the upload works at once.
    let bin = env!("CARGO_BIN_EXE_warden");
    let keys = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin)
        .args(["license", "keygen", "--out"])
        .arg(keys.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let machine_file = keys.path().join("machine-info.json");
    std::fs::write(&machine_file, info.to_string()).unwrap();
    let lic = keys.path().join("acme.lic");
    let sign = |extra: &[&str]| {
        std::process::Command::new(bin)
            .args(["license", "sign", "--key"])
            .arg(keys.path().join("operator.key"))
            .args(["--customer", "Acme Corp", "--license-id", "LIC-CLI-1"])
            .args(["--expires", "2099-12-31", "--user-limit", "5"])
            .args(["--feature", "bots", "--out"])
            .arg(&lic)
            .args(extra)
            .output()
            .unwrap()
    };
    // Enterprise with a fingerprint is refused; standard needs the machine info.
    let refused = sign(&[
        "--tier",
        "enterprise",
        "--machine-info",
        machine_file.to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("machine-agnostic"));
    let signed = sign(&[
        "--tier",
        "standard",
        "--machine-info",
        machine_file.to_str().unwrap(),
    ]);
    assert!(signed.status.success(), "{signed:?}");
    // Stale machine info is refused.
    let mut old = info.clone();
    old["generatedAt"] = json!("2020-01-01T00:00:00Z");
    let old_file = keys.path().join("old-machine-info.json");
    std::fs::write(&old_file, old.to_string()).unwrap();
    let stale = sign(&[
        "--tier",
        "standard",
        "--machine-info",
        old_file.to_str().unwrap(),
    ]);
    assert!(!stale.status.success());
    assert!(String::from_utf8_lossy(&stale.stderr).contains("freshness window"));
    // inspect verifies against a given key.
    let inspect = std::process::Command::new(bin)
        .args(["license", "inspect"])
        .arg(&lic)
        .arg("--public-key")
        .arg(keys.path().join("operator.pub"))
        .output()
        .unwrap();
    assert!(inspect.status.success(), "{inspect:?}");
    let printed = String::from_utf8_lossy(&inspect.stdout);
    assert!(printed.contains("LIC-CLI-1") && printed.contains("signature: valid"));
    let wrong = std::process::Command::new(bin)
        .args(["license", "inspect"])
        .arg(&lic)
        .arg("--public-key")
        .arg(op.public_key_file())
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("INVALID"));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(keys.path().join("operator.key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    // This server trusts `op`'s key, not the CLI's: refused. With op's key: installed.
    let token = std::fs::read_to_string(&lic).unwrap();
    let (code, body) = upload(&app, &admin, &token).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "license-invalid-signature");
    let (code, _) = app.call(&admin, Method::GET, "/api/v1/hosts", None).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    let (code, body) = upload(&app, &admin, &op.sign(&op.claims(unix(clock.as_ref())))).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "valid");
    let (code, _) = app.call(&admin, Method::GET, "/api/v1/hosts", None).await;
    assert_eq!(code, StatusCode::OK);

    let s = status(&app, &admin).await;
    assert_eq!(s["license_id"], "LIC-0001");
    assert_eq!(s["customer"], "Acme Corp");
    assert_eq!(s["tier"], "standard");
    assert_eq!(s["days_left"], 90);
    assert_eq!(s["users"], json!({"used": 1, "limit": 10}));
    assert_eq!(s["session_hosts"], json!({"used": 0, "limit": 5}));
    assert_eq!(s["deploy_hosts"], json!({"used": 0, "limit": 2}));
    assert_eq!(
        s["features"],
        json!(["workflows", "bots", "multiple-active-sessions"])
    );
    assert_eq!(s["banner"], false);
    assert_eq!(s["history"].as_array().unwrap().len(), 1);
    let installed = audit_rows(&app, "license.installed").await;
    assert_eq!(installed.len(), 1);
    assert_eq!(installed[0].resource_id.as_deref(), Some("LIC-0001"));
    assert_eq!(audit_rows(&app, "license.install_refused").await.len(), 1);
}

fn b64(v: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
}

#[tokio::test]
async fn forged_tampered_expired_early_stale_and_foreign_licences_are_refused_and_audited() {
    let op = Operator::new();
    let clock = manual_clock();
    let app = licensed(&op, &clock, &[]).await;
    let admin = admin_token(&app).await;
    let now = unix(clock.as_ref());
    let good = op.sign(&op.claims(now));
    let (h, rest) = good.split_once('.').unwrap();
    let (p, _) = rest.split_once('.').unwrap();
    let kid = op.key.public_key().kid().to_owned();
    let signing_input = |header: Value| format!("{}.{p}", b64(header.to_string().as_bytes()));

    let mut flipped = good.clone().into_bytes();
    let i = h.len() + 5;
    flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let (other, _) = SigningKey::generate().unwrap();
    let none = format!("{}.", signing_input(json!({"alg": "none", "kid": kid})));
    let hs_input = signing_input(json!({"alg": "HS256", "kid": kid}));
    let mac = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            op.key.public_key().to_pem().as_bytes(),
        ),
        hs_input.as_bytes(),
    );
    let hs256 = format!("{hs_input}.{}", b64(mac.as_ref()));
    let rs256 = format!(
        "{}.{}",
        signing_input(json!({"alg": "RS256", "kid": kid})),
        b64(&[7u8; 256])
    );
    let with = |patch: Value| {
        let mut c = op.claims(now);
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        op.sign(&c)
    };
    let cases = [
        (flipped, "license-invalid-signature"),
        (
            other.sign(&op.claims(now)).unwrap(),
            "license-invalid-signature",
        ),
        (none, "license-invalid-signature"),
        (hs256, "license-invalid-signature"),
        (rs256, "license-invalid-signature"),
        (
            with(json!({"iat": now - 3 * DAY, "exp": now - DAY})),
            "license-expired",
        ),
        (with(json!({"nbf": now + 2 * DAY})), "license-not-yet-valid"),
        (with(json!({"iat": now - 8 * DAY})), "license-stale"),
        (
            with(json!({"fingerprint": "ab".repeat(32)})),
            "machine-identity-changed",
        ),
        (with(json!({"tier": "enterprise"})), "license-malformed"),
        ("garbage".to_owned(), "license-invalid-signature"),
    ];
    for (lic, expected) in &cases {
        let (code, body) = upload(&app, &admin, lic).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{expected}: {body}");
        assert_eq!(body["code"], *expected);
    }
    let refused = audit_rows(&app, "license.install_refused").await;
    assert_eq!(refused.len(), cases.len());
    assert!(refused.iter().all(|r| r.outcome == "failed"));
    assert_eq!(
        status(&app, &admin).await["problem"]["code"],
        "license-missing"
    );

    // A user without the admin permission may not upload.
    let (code, _) = create_user(&app, &admin, "mo@example.com").await;
    assert_eq!(
        code,
        StatusCode::SERVICE_UNAVAILABLE,
        "user creation is gated"
    );
}

/// An enterprise licence bound to `*.acme.internal` admits a server whose configured
/// `public_url` has exactly one label more; the `Host` a client sends changes nothing.
#[tokio::test]
async fn an_enterprise_domain_binding_admits_exactly_one_subdomain_label() {
    let op = Operator::new();
    for (public_url, ok) in [
        (Some("https://api.acme.internal"), true),
        (Some("https://API.ACME.internal:8443/"), true),
        (Some("https://api.v2.acme.internal"), false),
        (Some("https://acme.internal"), false),
        (Some("http://127.0.0.1:8080"), false),
        (None, false),
    ] {
        let clock = manual_clock();
        let extra: Vec<(&str, &str)> = public_url
            .map(|u| vec![("WARDEN_PUBLIC_URL", u)])
            .unwrap_or_default();
        let app = licensed(&op, &clock, &extra).await;
        let admin = admin_token(&app).await;
        let now = unix(clock.as_ref());
        let mut c = op.claims(now);
        c["tier"] = json!("enterprise");
        c["allowedDomain"] = json!("*.acme.internal");
        c.as_object_mut().unwrap().remove("fingerprint");
        let (code, body) = upload(&app, &admin, &op.sign(&c)).await;
        assert_eq!(code, StatusCode::OK, "{body}");
        assert_eq!(body["allowed_domain"], "*.acme.internal");
        assert_eq!(body["machine_id"], Value::Null);
        // The attack: a client naming an allowed host does not unlock a server whose
        // public_url is not one; nor does naming another lock out one whose public_url is.
        for host in ["api.acme.internal", "evil.example"] {
            let res = app
                .client
                .get(app.url("/api/v1/hosts"))
                .bearer_auth(&admin)
                .header("host", host)
                .send()
                .await
                .unwrap();
            if ok {
                assert_eq!(res.status(), StatusCode::OK, "{public_url:?} {host}");
            } else {
                assert_eq!(
                    res.status(),
                    StatusCode::SERVICE_UNAVAILABLE,
                    "{public_url:?} {host}"
                );
                let body: Value = res.json().await.unwrap();
                assert_eq!(body["code"], "license-domain-mismatch");
            }
        }
    }
}

#[tokio::test]
async fn missing_features_answer_403_and_single_sign_in_applies_without_multiple_sessions() {
    let op = Operator::new();
    let clock = manual_clock();
    let app = licensed(&op, &clock, &[]).await;
    let admin = admin_token(&app).await;
    let now = unix(clock.as_ref());
    let mut c = op.claims(now);
    c["features"] = json!(["bots"]);
    let (code, _) = upload(&app, &admin, &op.sign(&c)).await;
    assert_eq!(code, StatusCode::OK);
    let (code, body) = app
        .call(&admin, Method::GET, "/api/v1/audit/export.csv", None)
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "feature-not-licensed");
    assert_eq!(status(&app, &admin).await["features"], json!(["bots"]));
    // Without multiple-active-sessions, a new sign-in ends the user's other sessions.
    let (code, _) = app
        .call(&admin, Method::GET, "/api/v1/me/devices", None)
        .await;
    assert_eq!(code, StatusCode::OK);
    let second = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, _) = app.call(&admin, Method::GET, "/api/v1/me", None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "the first session survived");

    // Enterprise with audit-export: the export answers.
    let mut c = op.claims(now);
    c["tier"] = json!("enterprise");
    c["features"] = json!(["audit-export", "multiple-active-sessions"]);
    c.as_object_mut().unwrap().remove("fingerprint");
    let (code, body) = upload(&app, &second, &op.sign(&c)).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, _) = app
        .call(&second, Method::GET, "/api/v1/audit/export.csv", None)
        .await;
    assert_eq!(code, StatusCode::OK);
    sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (code, _) = app.call(&second, Method::GET, "/api/v1/me", None).await;
    assert_eq!(code, StatusCode::OK, "multiple sessions are licensed now");
}

#[tokio::test]
async fn the_user_limit_blocks_new_and_reactivated_users_and_a_lower_renewal_keeps_existing_ones() {
    let op = Operator::new();
    let clock = manual_clock();
    let app = licensed(&op, &clock, &[]).await;
    let admin = admin_token(&app).await;
    let now = unix(clock.as_ref());
    let mut c = op.claims(now);
    c["userLimit"] = json!(3);
    assert_eq!(upload(&app, &admin, &op.sign(&c)).await.0, StatusCode::OK);
    let (code, ann) = create_user(&app, &admin, "ann@example.com").await;
    assert_eq!(code, StatusCode::CREATED);
    let (code, _) = create_user(&app, &admin, "bob@example.com").await;
    assert_eq!(code, StatusCode::CREATED);
    let (code, body) = create_user(&app, &admin, "cy@example.com").await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "user-limit-reached");
    // Deactivating one frees a place; reactivating beyond the limit is refused.
    let ann = ann["id"].as_str().unwrap().to_owned();
    let path = |what: &str| format!("/api/v1/admin/users/{ann}/{what}");
    let (code, body) = app
        .call(&admin, Method::POST, &path("deactivate"), None)
        .await;
    assert!(code.is_success(), "{code} {body}");
    let (code, _) = create_user(&app, &admin, "cy@example.com").await;
    assert_eq!(code, StatusCode::CREATED);
    let (code, body) = app
        .call(&admin, Method::POST, &path("reactivate"), None)
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "user-limit-reached");

    // A renewal down to 1: the three active users keep working; nobody new gets in.
    c["jti"] = json!("LIC-0002");
    c["userLimit"] = json!(1);
    assert_eq!(upload(&app, &admin, &op.sign(&c)).await.0, StatusCode::OK);
    let bob = sign_in(&app, "bob@example.com", "quiet harbor 4417 finch").await;
    let bob = bob["access_token"].as_str().unwrap();
    assert_eq!(
        app.call(bob, Method::GET, "/api/v1/me", None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        create_user(&app, &admin, "dee@example.com").await.0,
        StatusCode::BAD_REQUEST
    );
    let s = status(&app, &admin).await;
    assert_eq!(s["users"], json!({"used": 3, "limit": 1}));
    assert_eq!(s["history"].as_array().unwrap().len(), 2);
    assert_eq!(s["history"][0]["license_id"], "LIC-0002");
}

#[tokio::test]
async fn the_licence_caps_concurrent_session_hosts() {
    let op = Operator::new();
    let clock = manual_clock();
    let app = licensed(&op, &clock, &[("WARDEN_HOSTS_MAX_SESSION_HOSTS", "50")]).await;
    let admin = admin_token(&app).await;
    let mut c = op.claims(unix(clock.as_ref()));
    c["sessionHosts"] = json!(1);
    assert_eq!(upload(&app, &admin, &op.sign(&c)).await.0, StatusCode::OK);
    let (_, first) = register(&app, &admin).await;
    let (_, second) = register(&app, &admin).await;
    let (_on, _) = welcomed(&app, &first).await;
    let mut ws = connect(&app, &second).await.unwrap();
    use futures_util::SinkExt;
    ws.send(hello(PROTOCOL_VERSION)).await.unwrap();
    assert_eq!(refusal_code(next(&mut ws).await), "host-limit");
    // A reconnect of the connected host is never refused.
    let (_again, _) = welcomed(&app, &first).await;
}

#[tokio::test]
async fn the_clock_moved_back_two_days_invalidates_the_licence_across_a_restart_and_12_hours_does_not()
 {
    let op = Operator::new();
    let clock = manual_clock();
    let t0 = unix(clock.as_ref());
    let a = licensed(&op, &clock, &[]).await;
    let admin = admin_token(&a).await;
    // Issued yesterday, so that moving the clock back half a day stays after its start.
    let mut c = op.claims(t0 - DAY);
    c["exp"] = json!(t0 + 20 * DAY);
    c["graceDays"] = json!(2);
    assert_eq!(upload(&a, &admin, &op.sign(&c)).await.0, StatusCode::OK);
    // Each check signs in afresh: an access token from another clock position would be
    // refused for its dates before the licence is even looked at.
    let hosts = |app: &TestApp| {
        let app_client = app.client.clone();
        let url = app.url("/api/v1/hosts");
        let sign_in_url = app.url("/api/v1/auth/sign-in");
        async move {
            let signed: Value = app_client
                .post(sign_in_url)
                .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let token = signed["access_token"].as_str().unwrap().to_owned();
            let res = app_client
                .get(url)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            let status = res.status();
            (
                status,
                res.json::<Value>().await.unwrap_or(Value::Null),
                token,
            )
        }
    };
    // In place: two days back is tampering; twelve hours is not.
    clock.advance(Duration::hours(-12));
    assert_eq!(hosts(&a).await.0, StatusCode::OK);
    clock.advance(Duration::hours(-36));
    let (code, body, _) = hosts(&a).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "license-clock-tampered");
    clock.set(OffsetDateTime::from_unix_timestamp(t0 + 60).unwrap());
    assert_eq!(hosts(&a).await.0, StatusCode::OK);

    // Across a restart: the high-water mark is in the database.
    let mut env = op.env();
    env.push(("WARDEN_ENCRYPTION_KEY".to_owned(), a.master_key_hex.clone()));
    env.extend(a.db.env());
    let TestApp { server, db, .. } = a;
    server.shutdown().await.unwrap();
    let restart = |env: Vec<(String, String)>| {
        let clock = clock.clone();
        async move {
            TestApp::spawn_with(AppOptions {
                env,
                clock,
                ..AppOptions::default()
            })
            .await
            .unwrap()
        }
    };
    clock.set(OffsetDateTime::from_unix_timestamp(t0 - 2 * DAY).unwrap());
    let b = restart(env.clone()).await;
    let (code, body, token) = hosts(&b).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "license-clock-tampered");
    assert_eq!(
        status(&b, &token).await["problem"]["code"],
        "license-clock-tampered"
    );
    // Still invalid half a day behind: the clock must pass the latest time seen again.
    clock.set(OffsetDateTime::from_unix_timestamp(t0 - DAY / 2).unwrap());
    assert_eq!(hosts(&b).await.0, StatusCode::SERVICE_UNAVAILABLE);
    clock.set(OffsetDateTime::from_unix_timestamp(t0 + 120).unwrap());
    assert_eq!(hosts(&b).await.0, StatusCode::OK);
    let TestApp { server, .. } = b;
    server.shutdown().await.unwrap();

    // Twelve hours back, across a restart: valid.
    clock.set(OffsetDateTime::from_unix_timestamp(t0 + 120 - DAY / 2).unwrap());
    let c2 = restart(env.clone()).await;
    assert_eq!(hosts(&c2).await.0, StatusCode::OK);

    // Expiry, then the grace period (everything works, with a warning), then 503.
    clock.set(OffsetDateTime::from_unix_timestamp(t0 + 20 * DAY + 60).unwrap());
    let (code, _, token) = hosts(&c2).await;
    assert_eq!(code, StatusCode::OK);
    let s = status(&c2, &token).await;
    assert_eq!(s["state"], "grace");
    assert_eq!(s["banner"], true);
    clock.set(OffsetDateTime::from_unix_timestamp(t0 + 22 * DAY + 60).unwrap());
    let (code, body, _) = hosts(&c2).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "license-expired");
    drop(db);
}

use warden_testkit::smtp::python;

#[test]
fn a_standard_jose_library_verifies_a_licence_with_the_operator_public_key() {
    let op = Operator::new();
    let lic = op.sign(&op.claims(1_900_000_000));
    let script = r#"
import json, sys
from joserfc import jws
from joserfc.jwk import ECKey
key = ECKey.import_key(open(sys.argv[1]).read())
token = open(sys.argv[2]).read().strip()
obj = jws.deserialize_compact(token, key, algorithms=["ES256"])
print(json.dumps({"alg": obj.protected["alg"], "kid": obj.protected["kid"],
                  "claims": json.loads(obj.payload)}))
"#;
    let lic_file = op.dir.path().join("acme.lic");
    std::fs::write(&lic_file, &lic).unwrap();
    let out = std::process::Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(op.public_key_file())
        .arg(&lic_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["alg"], "ES256");
    assert_eq!(got["kid"], op.key.public_key().kid());
    assert_eq!(got["claims"]["jti"], "LIC-0001");
    // And it refuses a tampered one.
    let (h, rest) = lic.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let forged = format!("{h}.{}.{sig}", b64(br#"{"jti":"LIC-9999"}"#));
    std::fs::write(&lic_file, forged).unwrap();
    let out = std::process::Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(op.public_key_file())
        .arg(&lic_file)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[tokio::test]
async fn expiry_alerts_reach_admins_once_per_milestone_and_a_missed_run_sends_no_old_one() {
    let smtp = warden_testkit::smtp::Smtp::start().await;
    let op = Operator::new();
    // 08:00 UTC on some day: before the daily run.
    let day0 = (unix(&warden_domain::clock::SystemClock) / DAY) * DAY;
    let clock = Arc::new(ManualClock::new(
        OffsetDateTime::from_unix_timestamp(day0 + 8 * 3600).unwrap(),
    ));
    let url = format!("smtp://127.0.0.1:{}", smtp.port);
    let app = licensed(
        &op,
        &clock,
        &[
            ("WARDEN_SMTP_URL", &url),
            ("WARDEN_SMTP_FROM", "warden@example.com"),
        ],
    )
    .await;
    let admin = admin_token(&app).await;
    let mut c = op.claims(unix(clock.as_ref()));
    // Expires at 06:00 on day 30: at 09:00 today 29 days and 21 hours are left, so the 30-day
    // milestone is due today.
    c["exp"] = json!(day0 + 30 * DAY + 6 * 3600);
    assert_eq!(upload(&app, &admin, &op.sign(&c)).await.0, StatusCode::OK);
    let state = &app.server.state().ctx;
    use warden_core::license::alerts::{Outcome, run, run_if_due};
    let at = |d: i64, h: i64| day0 + d * DAY + h * 3600;

    assert_eq!(
        run_if_due(state, at(0, 8)).await,
        Outcome::Idle,
        "before 09:00"
    );
    assert_eq!(
        run_if_due(state, at(0, 9)).await,
        Outcome::Sent {
            milestone: 30,
            to: vec![ADMIN_EMAIL.to_owned()]
        }
    );
    assert_eq!(
        run_if_due(state, at(0, 10)).await,
        Outcome::Idle,
        "once a day"
    );
    // Another node (or a restart) never sends it again.
    assert_eq!(run(state, at(0, 11)).await, Outcome::NothingDue);
    assert_eq!(run_if_due(state, at(1, 9)).await, Outcome::NothingDue);
    // The runs from 14 days left were missed; at 6 days left only the 7-day alert goes out.
    assert_eq!(
        run_if_due(state, at(24, 9)).await,
        Outcome::Sent {
            milestone: 7,
            to: vec![ADMIN_EMAIL.to_owned()]
        }
    );
    assert_eq!(run_if_due(state, at(25, 9)).await, Outcome::NothingDue);

    let mut received = Vec::new();
    for _ in 0..100 {
        received = smtp.messages();
        if received.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(received.len(), 2, "{received:?}");
    assert!(received.iter().any(|m| m.contains("expires in 30 day")));
    // The 7-day alert, sent with 6 days left.
    assert!(received.iter().any(|m| m.contains("expires in 6 day")));
    assert!(
        received
            .iter()
            .all(|m| m.contains(ADMIN_EMAIL) && m.contains("LIC-0001"))
    );
    assert!(!received.iter().any(|m| m.contains("expires in 14 day")));
}

#[tokio::test]
async fn every_node_sharing_the_database_picks_up_an_install_and_verifies_it_for_its_own_machine() {
    let op = Operator::new();
    let clock = manual_clock();
    let a = licensed(&op, &clock, &[]).await;
    let admin = admin_token(&a).await;
    // Nodes b and c share a's database, each with a machine identity of its own.
    let mut others = Vec::new();
    for (name, id) in [
        ("b-machine-id", "0000000000000000ffffffffffffffff"),
        ("c-machine-id", "1111111111111111eeeeeeeeeeeeeeee"),
    ] {
        let file = op.dir.path().join(name);
        std::fs::write(&file, format!("{id}\n")).unwrap();
        let mut env = op.env();
        env.retain(|(k, _)| k != "WARDEN_LICENSE_MACHINE_ID_FILE");
        env.push((
            "WARDEN_LICENSE_MACHINE_ID_FILE".to_owned(),
            file.display().to_string(),
        ));
        others.push(another_node(&a, &clock, env).await);
    }
    let c = others.pop().unwrap();
    let b = others.pop().unwrap();
    // Without a valid licence `multiple-active-sessions` is off, so each sign-in ends the
    // admin's other sessions: every step signs in afresh where it acts.
    async fn fresh(app: &TestApp) -> String {
        let v: Value = app
            .client
            .post(app.url("/api/v1/auth/sign-in"))
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["access_token"].as_str().unwrap().to_owned()
    }
    async fn problem_on(node: &TestApp) -> (StatusCode, String) {
        let token = fresh(node).await;
        let (code, body) = node.call(&token, Method::GET, "/api/v1/hosts", None).await;
        (code, body["code"].as_str().unwrap_or_default().to_owned())
    }
    drop(admin);
    assert_eq!(problem_on(&b).await.1, "license-missing");
    assert_eq!(problem_on(&c).await.1, "license-missing");

    // A standard licence for a's machine, uploaded on a: valid there at once; b and c learn
    // of it and find that it is not for their machines.
    let admin = fresh(&a).await;
    let (code, _) = upload(&a, &admin, &op.sign(&op.claims(unix(clock.as_ref())))).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        a.call(&admin, Method::GET, "/api/v1/hosts", None).await.0,
        StatusCode::OK
    );
    for node in [&b, &c] {
        let mut seen = String::new();
        for _ in 0..100 {
            seen = problem_on(node).await.1;
            if seen != "license-missing" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        assert_eq!(seen, "machine-identity-changed");
    }

    // An enterprise licence (machine-agnostic) works on all three.
    let mut claims = op.claims(unix(clock.as_ref()));
    claims["jti"] = json!("LIC-ENT");
    claims["tier"] = json!("enterprise");
    claims.as_object_mut().unwrap().remove("fingerprint");
    let admin = fresh(&a).await;
    assert_eq!(
        upload(&a, &admin, &op.sign(&claims)).await.0,
        StatusCode::OK
    );
    for node in [&b, &c] {
        let mut code = StatusCode::SERVICE_UNAVAILABLE;
        for _ in 0..100 {
            code = problem_on(node).await.0;
            if code == StatusCode::OK {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        assert_eq!(code, StatusCode::OK);
    }
}

/// A build with the operator's keys built in enforces licences even when no
/// `license.public_key_file` is configured (deleting the setting unlocks nothing); a configured
/// key is added to the built-in ones. A build without any key says it runs unlicensed.
#[tokio::test]
async fn built_in_operator_keys_cannot_be_switched_off_by_configuration() {
    let op = Operator::new();
    let other = Operator::new();
    let machine = (
        "WARDEN_LICENSE_MACHINE_ID_FILE".to_owned(),
        op.dir.path().join("machine-id").display().to_string(),
    );
    let clock = manual_clock();
    // No public_key_file at all: still enforced.
    let app = TestApp::spawn_with(AppOptions {
        env: vec![machine.clone()],
        clock: clock.clone(),
        embedded_operator_keys: Some(op.key.public_key().to_pem()),
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let admin = admin_token(&app).await;
    let (code, body) = app.call(&admin, Method::GET, "/api/v1/hosts", None).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "license-missing");
    let s = status(&app, &admin).await;
    assert_eq!(s["enforcement"], "embedded");
    assert_eq!(s["state"], "invalid");
    // Only the built-in operator's licences install.
    let now = unix(clock.as_ref());
    let (code, _) = upload(&app, &admin, &other.sign(&other.claims(now))).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    let (code, body) = upload(&app, &admin, &op.sign(&op.claims(now))).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, _) = app.call(&admin, Method::GET, "/api/v1/hosts", None).await;
    assert_eq!(code, StatusCode::OK);

    // A configured key adds to the built-in ones.
    let clock = manual_clock();
    let both = TestApp::spawn_with(AppOptions {
        env: vec![
            machine,
            (
                "WARDEN_LICENSE_PUBLIC_KEY_FILE".to_owned(),
                other.public_key_file().display().to_string(),
            ),
        ],
        clock: clock.clone(),
        embedded_operator_keys: Some(op.key.public_key().to_pem()),
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let admin = admin_token(&both).await;
    let (code, body) = upload(
        &both,
        &admin,
        &other.sign(&other.claims(unix(clock.as_ref()))),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(status(&both, &admin).await["enforcement"], "embedded");

    // This test build embeds no key: without configuration it runs unlicensed and says so.
    let free = TestApp::spawn().await.unwrap();
    let admin = admin_token(&free).await;
    let s = status(&free, &admin).await;
    assert_eq!(
        (s["state"].as_str(), s["enforcement"].as_str()),
        (Some("unlicensed"), Some("none"))
    );
    // A malformed built-in bundle stops boot.
    let err = TestApp::spawn_with(AppOptions {
        embedded_operator_keys: Some(
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".to_owned(),
        ),
        ..AppOptions::default()
    })
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("embedded"), "{err}");
}

#[tokio::test]
async fn without_a_licence_the_console_closes_but_an_administrator_installs_one_from_it() {
    use warden_testkit::browser::{Browser, hidden};
    let op = Operator::new();
    let clock = manual_clock();
    let app = licensed(&op, &clock, &[]).await;
    let admin = admin_token(&app).await;
    let browser = Browser::signed_in(&app, &admin);

    // Closed pages say why and where to go; the licence page answers.
    let (status, page) = browser.get("/console/hosts").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.contains("<h1>Licence needed</h1>"), "{page}");
    let (status, page) = browser.get("/console/license").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("There is no valid licence"), "{page}");
    assert!(
        page.contains(&op.fingerprint),
        "the machine to license: {page}"
    );
    let csrf = hidden(&page, "csrf").unwrap();

    // A file that is not a licence: refused with the reason, nothing changes.
    let (status, page) = browser
        .post(
            "/console/license",
            &[("csrf", &csrf), ("license", "not a licence")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("class=\"alert\""), "{page}");
    let (status, _) = browser.get("/console/hosts").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    // Cross-site, even with the token: refused.
    let lic = op.sign(&op.claims(unix(clock.as_ref())));
    let mut evil = browser.clone();
    evil.origin = "https://evil.example".to_owned();
    let (status, _) = evil
        .post("/console/license", &[("csrf", &csrf), ("license", &lic)])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The real file: in effect at once.
    let (status, _) = browser
        .post("/console/license", &[("csrf", &csrf), ("license", &lic)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, page) = browser.get("/console/license?done=license-installed").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("The licence is valid") && page.contains("Acme Corp"),
        "{page}"
    );
    let (status, _) = browser.get("/console/hosts").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn administrators_see_an_expiry_banner_in_the_console_from_30_days_before() {
    use warden_testkit::browser::Browser;
    let op = Operator::new();
    let clock = manual_clock();
    let app = licensed(&op, &clock, &[]).await;
    let admin = admin_token(&app).await;
    let now = unix(clock.as_ref());
    let mut claims = op.claims(now);
    claims["exp"] = json!(now + 40 * DAY);
    let (code, body) = upload(&app, &admin, &op.sign(&claims)).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let browser = Browser::signed_in(&app, &admin);
    let (_, page) = browser.get("/console").await;
    assert!(!page.contains("class=\"banner\""), "40 days left: {page}");

    clock.advance(time::Duration::days(20));
    // (Twenty days on, the access token has long expired: sign in again.)
    let admin = app.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.unwrap();
    let browser = Browser::signed_in(&app, &admin);
    let (_, page) = browser.get("/console").await;
    assert!(page.contains("The licence expires in 20 days"), "{page}");
    // A member sees no banner.
    let (code, _) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/admin/users",
            Some(json!({"email": "dev@example.com", "password": "quiet harbor 4417 finch"})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    let member = app
        .sign_in("dev@example.com", "quiet harbor 4417 finch")
        .await
        .unwrap();
    let (_, page) = Browser::signed_in(&app, &member).get("/console").await;
    assert!(!page.contains("class=\"banner\""), "{page}");
}

#[tokio::test]
async fn in_chromium_a_licence_run_out_closes_the_console_and_a_new_one_opens_it_without_restart() {
    if std::env::var("TESTKIT_BACKEND").as_deref() == Ok("postgres") {
        eprintln!("the browser test runs on the SQLite pass");
        return;
    }
    use warden_testkit::browser::{screenshots, walk_through};
    let op = Operator::new();
    let clock = manual_clock();
    let port = crate::browser::free_port();
    let public = format!("http://localhost:{port}");
    let mut env = op.env();
    env.push(("WARDEN_LISTEN".to_owned(), format!("127.0.0.1:{port}")));
    env.push(("WARDEN_PUBLIC_URL".to_owned(), public.clone()));
    let app = TestApp::spawn_with(AppOptions {
        env,
        clock: clock.clone(),
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let admin = admin_token(&app).await;
    // A licence for 30 days, a member, then 40 days pass.
    let mut claims = op.claims(unix(clock.as_ref()));
    claims["exp"] = json!(unix(clock.as_ref()) + 30 * DAY);
    let (code, body) = upload(&app, &admin, &op.sign(&claims)).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let member_password = "quiet harbor 4417 finch";
    let (code, _) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/admin/users",
            Some(json!({"email": "dev@example.com", "password": member_password})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    clock.advance(Duration::days(40));
    let now = unix(clock.as_ref());
    let mut expired = op.claims(now - 3 * DAY);
    expired["exp"] = json!(now - DAY);
    let valid = op.sign(&op.claims(now));

    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let summary = walk_through(
        &dir,
        "license.mjs",
        &[
            ("WARDEN_URL", public.as_ref()),
            ("EMAIL", ADMIN_EMAIL.as_ref()),
            ("PASSWORD", ADMIN_PASSWORD.as_ref()),
            ("MEMBER", "dev@example.com".as_ref()),
            ("MEMBER_PASSWORD", member_password.as_ref()),
            ("EXPIRED", op.sign(&expired).as_ref()),
            ("VALID", valid.as_ref()),
            ("SHOTS", shots.as_os_str()),
        ],
    )
    .await;
    assert_eq!(summary["problems"], json!([]), "{summary}");
    assert_eq!(screenshots(&summary, &shots), 6, "{summary}");
    // Closed: the navigation keeps only what works, the gated pages say why.
    assert_eq!(
        summary["nav_closed"],
        json!(["Home", "Licence", "Profile"]),
        "{summary}"
    );
    assert_eq!(summary["needed_status"], 503, "{summary}");
    assert_eq!(summary["needed_heading"], "Licence needed", "{summary}");
    assert_eq!(
        summary["headline"], "There is no valid licence",
        "{summary}"
    );
    assert!(
        summary["member_told"]
            .as_str()
            .unwrap()
            .contains(&format!("Ask {ADMIN_EMAIL}.")),
        "{summary}"
    );
    assert!(
        summary["refused"].as_str().unwrap().contains("expired"),
        "{summary}"
    );
    // Open again at once, the same process.
    assert_eq!(
        summary["installed_headline"], "The licence is valid",
        "{summary}"
    );
    let open: Vec<&str> = summary["nav_open"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for entry in ["Workspaces", "Hosts", "Admin", "Audit", "Licence"] {
        assert!(open.contains(&entry), "{entry}: {summary}");
    }
}

/// What each licence flag gates: the routes that answer 403 without it. Every flag is in the
/// match, so a new flag fails to compile until it is placed here.
fn gated_routes(f: warden_domain::license::Feature) -> Vec<(Method, &'static str)> {
    use warden_domain::license::Feature as F;
    match f {
        F::Automations => vec![
            (Method::GET, "/api/v1/workspaces/{ws}/automations"),
            (Method::POST, "/api/v1/workspaces/{ws}/automations"),
            (Method::GET, "/api/v1/workspaces/{ws}/event-sources"),
            (Method::POST, "/api/v1/workspaces/{ws}/event-sources"),
        ],
        F::AuditExport => vec![(Method::GET, "/api/v1/audit/export.csv")],
        // The gateway's own endpoints refuse too (in their clients' format; see llm.rs).
        F::LlmGateway => vec![
            (Method::GET, "/api/v1/workspaces/{ws}/llm/policy"),
            (Method::POST, "/api/v1/workspaces/{ws}/llm/keys"),
        ],
        F::Workflows => vec![
            (Method::GET, "/api/v1/workspaces/{ws}/workflows"),
            (Method::POST, "/api/v1/workspaces/{ws}/workflows"),
            (Method::GET, "/api/v1/workspaces/{ws}/workflow-runs"),
        ],
        F::Bots => vec![
            (Method::GET, "/api/v1/workspaces/{ws}/bots"),
            (Method::POST, "/api/v1/workspaces/{ws}/bots"),
        ],
        F::TicketSync => vec![
            (Method::GET, "/api/v1/workspaces/{ws}/ticket-sync"),
            (Method::POST, "/api/v1/workspaces/{ws}/ticket-sync"),
        ],
        // Sign-in behaviour, checked below: a second sign-in ends the first.
        F::MultipleActiveSessions => vec![],
        // Modules not built yet: the flag shows in `capabilities` only; their issues gate
        // their routes when they land.
        F::Planner
        | F::RoundTable
        | F::Insights
        | F::Deployments
        | F::CodeReview
        | F::Verification
        | F::Memory
        | F::SsoSaml => vec![],
        // Listing and switching organizations answer without it (the default one is always
        // there); making them and changing their members do not.
        F::MultiTenant => vec![(Method::POST, "/api/v1/organizations")],
    }
}

#[tokio::test]
async fn every_licence_flag_gates_its_module_and_shows_in_capabilities() {
    use warden_domain::license::Feature;
    let op = Operator::new();
    let clock = manual_clock();
    let app = licensed(&op, &clock, &[]).await;
    let mut token = admin_token(&app).await;
    let now = unix(clock.as_ref());
    let all: Vec<&str> = Feature::ALL.iter().map(|f| f.as_str()).collect();
    let mut c = op.claims(now);
    c["tier"] = json!("enterprise");
    c.as_object_mut().unwrap().remove("fingerprint");
    c["features"] = json!(all);
    let (code, body) = upload(&app, &token, &op.sign(&c)).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (_, ws) = app
        .call(
            &token,
            Method::POST,
            "/api/v1/workspaces",
            Some(json!({"name": "flags"})),
        )
        .await;
    let ws = ws["id"].as_str().unwrap().to_owned();
    // A gateway key, made while the licence has every module.
    let (_, made) = app
        .call(
            &token,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/llm/keys"),
            Some(json!({"name": "licence"})),
        )
        .await;
    let llm_key = made["secret"].as_str().unwrap().to_owned();
    let gateway = |app: &TestApp| {
        app.client
            .get(app.url("/llm/v1/models"))
            .bearer_auth(&llm_key)
            .send()
    };
    assert_eq!(gateway(&app).await.unwrap().status(), StatusCode::OK);
    for f in Feature::ALL.iter().copied() {
        let mut c = op.claims(now);
        c["tier"] = json!("enterprise");
        c.as_object_mut().unwrap().remove("fingerprint");
        c["features"] = json!(all.iter().filter(|n| **n != f.as_str()).collect::<Vec<_>>());
        let (code, body) = upload(&app, &token, &op.sign(&c)).await;
        assert_eq!(code, StatusCode::OK, "{f:?}: {body}");
        token = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let (_, me) = app.call(&token, Method::GET, "/api/v1/me", None).await;
        let caps: Vec<&str> = me["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(!caps.contains(&f.as_str()), "{f:?} still shown: {caps:?}");
        assert_eq!(caps.len(), all.len() - 1, "{caps:?}");
        for (method, path) in gated_routes(f) {
            let path = path.replace("{ws}", &ws);
            let body = (method == Method::POST).then(|| json!({}));
            let (code, problem) = app.call(&token, method.clone(), &path, body).await;
            assert_eq!(code, StatusCode::FORBIDDEN, "{f:?}: {method} {path}");
            assert_eq!(problem["code"], "feature-not-licensed", "{problem}");
        }
        if f == Feature::LlmGateway {
            // The gateway refuses its calls too, in its clients' format.
            let res = gateway(&app).await.unwrap();
            assert_eq!(res.status(), StatusCode::FORBIDDEN);
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"]["type"], "permission_error", "{body}");
        }
        if f == Feature::MultipleActiveSessions {
            let first = token.clone();
            token = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await["access_token"]
                .as_str()
                .unwrap()
                .to_owned();
            let (code, _) = app.call(&first, Method::GET, "/api/v1/me", None).await;
            assert_eq!(code, StatusCode::UNAUTHORIZED, "one sign-in at a time");
        }
    }
    // Every flag on: every gated route answers (whatever its own checks then say).
    let mut c = op.claims(now);
    c["tier"] = json!("enterprise");
    c.as_object_mut().unwrap().remove("fingerprint");
    c["features"] = json!(all);
    let (code, _) = upload(&app, &token, &op.sign(&c)).await;
    assert_eq!(code, StatusCode::OK);
    for f in Feature::ALL.iter().copied() {
        for (method, path) in gated_routes(f) {
            let path = path.replace("{ws}", &ws);
            let (code, _) = app.call(&token, method.clone(), &path, None).await;
            assert_ne!(code, StatusCode::FORBIDDEN, "{f:?}: {method} {path}");
        }
    }
}

#[tokio::test]
async fn an_invalid_licence_pauses_schedules_the_queue_and_webhooks_and_a_new_one_resumes_them() {
    let op = Operator::new();
    let clock = manual_clock();
    let app = licensed(&op, &clock, &[]).await;
    let admin = admin_token(&app).await;
    let now = unix(clock.as_ref());
    let mut c = op.claims(now);
    c["features"] = json!(["automations", "multiple-active-sessions"]);
    let (code, body) = upload(&app, &admin, &op.sign(&c)).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let repo = crate::automations::repository();
    let ws = crate::automations::workspace(&app, &admin, repo.path()).await;
    let (s, source) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/event-sources"),
            Some(json!({"name": "hooks", "kind": "generic"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{source}");
    let url = source["url"].as_str().unwrap().to_owned();
    let sid = source["source"]["id"].as_str().unwrap().to_owned();
    let in_an_hour = (clock.now() + Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (s, automation) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/automations"),
            Some(
                json!({"name": "later", "kind": "once", "run_at": in_an_hour,
                        "missed": "run_once", "prompt": "go", "provider": "command",
                        "command": ["true"]}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{automation}");
    let aid = automation["id"].as_str().unwrap().to_owned();

    // The licence runs out; the automation's instant passes meanwhile.
    clock.advance(Duration::days(91));
    let admin = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, _) = app
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/automations"),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    let res = app.client.post(&url).body("{}").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "the sender sees nothing");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let store = app.server.store();
    for status in ["queued", "running", "done", "dead"] {
        let jobs = store.jobs_in(status, None, 100).await.unwrap();
        assert!(
            jobs.iter().all(|j| j.kind != "automation.run"),
            "a run was queued while paused: {status}"
        );
    }

    // A valid licence: everything resumes without a restart.
    let mut c = op.claims(unix(clock.as_ref()));
    c["features"] = json!(["automations", "multiple-active-sessions"]);
    let (code, body) = upload(&app, &admin, &op.sign(&c)).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let detail = crate::automations::wait_for(&app, &admin, &ws, &aid, |d| {
        !d["runs"].as_array().unwrap().is_empty()
    })
    .await;
    assert_eq!(detail["runs"][0]["trigger"], "schedule", "{detail}");
    let res = app.client.post(&url).body("{}").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut counters = Value::Null;
    for _ in 0..50 {
        let (_, s) = app
            .call(
                &admin,
                Method::GET,
                &format!("/api/v1/workspaces/{ws}/event-sources/{sid}"),
                None,
            )
            .await;
        counters = s["counters"].clone();
        if counters["accepted"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(counters["accepted"], 1, "{counters}");
    assert_eq!(counters["dropped_paused"], 1, "{counters}");
}

#[tokio::test]
async fn metrics_show_whether_the_licence_is_valid_and_its_days_left() {
    use crate::metrics::{parsed, sample, scrape, token_setting};
    let op = Operator::new();
    let clock = manual_clock();
    let (_dir, (k, v)) = token_setting();
    let app = licensed(&op, &clock, &[(k.as_str(), v.as_str())]).await;
    let admin = admin_token(&app).await;
    let m = parsed(&scrape(&app).await).await;
    assert_eq!(sample(&m, "warden_license_valid", &json!({})), Some(0.0));
    assert_eq!(sample(&m, "warden_license_days_left", &json!({})), None);

    let (s, body) = upload(&app, &admin, &op.sign(&op.claims(unix(clock.as_ref())))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let m = parsed(&scrape(&app).await).await;
    assert_eq!(sample(&m, "warden_license_valid", &json!({})), Some(1.0));
    let days = sample(&m, "warden_license_days_left", &json!({})).unwrap();
    assert!((89.9..=90.0).contains(&days), "{days}");

    clock.advance(Duration::days(200));
    let m = parsed(&scrape(&app).await).await;
    assert_eq!(sample(&m, "warden_license_valid", &json!({})), Some(0.0));
    let days = sample(&m, "warden_license_days_left", &json!({})).unwrap();
    assert!((-110.1..=-109.9).contains(&days), "{days}");
}

#[tokio::test]
async fn a_clock_moved_back_and_a_licence_that_no_longer_verifies_are_mailed_once_each() {
    use crate::alerts::{alert_mails, readyz_alerts};
    let smtp = warden_testkit::smtp::Smtp::start().await;
    let op = Operator::new();
    let clock = manual_clock();
    let t0 = unix(clock.as_ref());
    let url = format!("smtp://127.0.0.1:{}", smtp.port);
    let smtp_env = [
        ("WARDEN_SMTP_URL", url.as_str()),
        ("WARDEN_SMTP_FROM", "warden@example.com"),
    ];
    let a = licensed(&op, &clock, &smtp_env).await;
    let admin = admin_token(&a).await;
    let mut c = op.claims(t0 - DAY);
    c["exp"] = json!(t0 + 20 * DAY);
    assert_eq!(upload(&a, &admin, &op.sign(&c)).await.0, StatusCode::OK);
    let ctx = &a.server.state().ctx;
    warden_core::alerts::check(ctx).await.unwrap();
    assert!(readyz_alerts(&a).await.is_empty());

    // Two days back: tampering, mailed once however often it is looked at.
    clock.advance(Duration::hours(-48));
    warden_core::alerts::check(ctx).await.unwrap();
    warden_core::alerts::check(ctx).await.unwrap();
    let subject = "Warden alert: the clock moved back; the licence is suspended";
    let mails = alert_mails(&smtp, subject).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].contains(ADMIN_EMAIL) && mails[0].contains("NTP"));
    assert_eq!(audit_rows(&a, "alert.raised").await.len(), 1);
    // Shown while the clock is where it was seen (the incident's times are the clock's).
    let kinds: Vec<Value> = readyz_alerts(&a)
        .await
        .into_iter()
        .map(|a| a["kind"].clone())
        .collect();
    assert_eq!(kinds, vec![json!("license_clock_tampered")]);
    clock.set(OffsetDateTime::from_unix_timestamp(t0 + 60).unwrap());

    // A node whose operator key did not sign the installed licence (the same database).
    let other = Operator::new();
    let mut env = other.env();
    env.extend(
        smtp_env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let b = another_node(&a, &clock, env).await;
    warden_core::alerts::check(&b.server.state().ctx)
        .await
        .unwrap();
    // Either node looking again mails nothing more.
    warden_core::alerts::check(ctx).await.unwrap();
    warden_core::alerts::check(&b.server.state().ctx)
        .await
        .unwrap();
    let subject = "Warden alert: the licence's signature does not verify";
    let mails = alert_mails(&smtp, subject).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].contains("LIC-0001"), "{}", mails[0]);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(smtp.messages().len(), 2);
    let kinds: Vec<Value> = readyz_alerts(&b)
        .await
        .into_iter()
        .map(|a| a["kind"].clone())
        .collect();
    assert!(
        kinds.contains(&json!("license_signature_invalid")),
        "{kinds:?}"
    );
}

/// Without `multi-tenant` there is one organization, as before organizations existed: the
/// default one is listed and can be switched to, but none is made, joined or entered.
#[tokio::test]
async fn without_the_multi_tenant_flag_there_is_one_organization() {
    let op = Operator::new();
    let clock = manual_clock();
    let app = licensed(&op, &clock, &[]).await;
    let token = admin_token(&app).await;
    let now = unix(clock.as_ref());
    // With the flag: an organization with the administrator in it.
    let mut c = op.claims(now);
    c["tier"] = json!("enterprise");
    c.as_object_mut().unwrap().remove("fingerprint");
    c["features"] = json!(["multi-tenant"]);
    let (s, v) = upload(&app, &token, &op.sign(&c)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, org) = app
        .call(
            &token,
            Method::POST,
            "/api/v1/organizations",
            Some(json!({"slug": "acme", "name": "Acme"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{org}");
    // Without it (the standard licence's features).
    assert_eq!(
        upload(&app, &token, &op.sign(&op.claims(now))).await.0,
        StatusCode::OK
    );
    let (s, v) = app
        .call(
            &token,
            Method::POST,
            "/api/v1/organizations",
            Some(json!({"slug": "globex", "name": "Globex"})),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("feature-not-licensed"))
    );
    for target in ["acme", org["id"].as_str().unwrap()] {
        let (s, v) = app
            .call(
                &token,
                Method::POST,
                "/api/v1/auth/organization",
                Some(json!({ "organization": target })),
            )
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("feature-not-licensed")),
            "{target}"
        );
    }
    let (s, v) = app
        .call(
            &token,
            Method::POST,
            "/api/v1/auth/organization",
            Some(json!({"organization": "default"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["organization"]["slug"], "default");
    let (s, v) = app
        .call(&token, Method::GET, "/api/v1/organizations", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["items"][0]["slug"], "default");
    assert_eq!(v["items"][0]["current"], true);
}
