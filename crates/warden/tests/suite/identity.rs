//! Identity: first-run setup, sign-in and its throttle, access tokens and every forgery the
//! verifier must refuse, refresh rotation and reuse detection, devices and immediate
//! revocation (also across two nodes), cookies and CSRF.

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_crypto::jwt::AccessClaims;
use warden_testkit::{AppOptions, TestApp};

pub(crate) const ADMIN_EMAIL: &str = "admin@example.com";
pub(crate) const ADMIN_PASSWORD: &str = "violet tractor 93 lagoon";

/// Creates the first administrator through the setup link, as an operator would.
pub(crate) async fn setup_admin(app: &TestApp) {
    let link = app
        .server
        .setup_link()
        .expect("a fresh install offers a setup link")
        .to_owned();
    let page = app.client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let res = app
        .client
        .post(app.url("/setup"))
        .form(&[
            ("token", token.as_str()),
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "{}",
        res.text().await.unwrap()
    );
}

pub(crate) fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

pub(crate) async fn sign_in_with(
    client: &reqwest::Client,
    app: &TestApp,
    email: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(app.url("/api/v1/auth/sign-in"))
        .header("user-agent", "warden-tests/1")
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

pub(crate) async fn sign_in(app: &TestApp, email: &str, password: &str) -> Value {
    let res = sign_in_with(&app.client, app, email, password).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

pub(crate) async fn admin_token(app: &TestApp) -> String {
    setup_admin(app).await;
    sign_in(app, ADMIN_EMAIL, ADMIN_PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn create_user(app: &TestApp, admin: &str, email: &str) -> String {
    let res = app
        .client
        .post(app.url("/api/v1/admin/users"))
        .bearer_auth(admin)
        .json(&json!({"email": email, "password": "quiet harbor 4417 finch"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn get_me(app: &TestApp, token: &str) -> StatusCode {
    app.client
        .get(app.url("/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({ "refresh_token": token }))
        .send()
        .await
        .unwrap()
}

pub(crate) async fn audit_rows(app: &TestApp, action: &str) -> Vec<warden_store::audit::Row> {
    warden_store::audit::newest(app.server.store(), &app.server.state().ctx.audit_key, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action == action)
        .collect()
}

#[tokio::test]
async fn the_setup_link_creates_the_first_admin_once() {
    let app = TestApp::spawn().await.unwrap();
    let link = app.server.setup_link().unwrap().to_owned();
    setup_admin(&app).await;
    // The same link again: setup is over.
    let token = link.split("token=").nth(1).unwrap();
    let again = app
        .client
        .post(app.url("/setup"))
        .form(&[
            ("token", token),
            ("email", "second@example.com"),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::GONE);
    assert_eq!(
        app.client.get(&link).send().await.unwrap().status(),
        StatusCode::GONE
    );
    let me: Value = app
        .client
        .get(app.url("/api/v1/me"))
        .bearer_auth(
            sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await["access_token"]
                .as_str()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], ADMIN_EMAIL);
    let created = audit_rows(&app, "user.created").await;
    assert_eq!(created.len(), 1);
    assert!(!created[0].summary.contains(ADMIN_PASSWORD));
}

#[tokio::test]
async fn a_forged_or_weak_setup_is_refused() {
    let app = TestApp::spawn().await.unwrap();
    let bad_token = app
        .client
        .post(app.url("/setup"))
        .form(&[
            ("token", "wsu_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad_token.status(), StatusCode::BAD_REQUEST);
    let link = app.server.setup_link().unwrap().to_owned();
    let token = link.split("token=").nth(1).unwrap();
    for weak in ["short", "password12345", "qwerty123456"] {
        let res = app
            .client
            .post(app.url("/setup"))
            .form(&[("token", token), ("email", ADMIN_EMAIL), ("password", weak)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{weak}");
    }
    // The link was not spent by the refusals.
    setup_admin(&app).await;
}

#[tokio::test]
async fn sign_in_answers_alike_for_an_unknown_email_and_a_wrong_password_and_audits_both() {
    let app = TestApp::spawn().await.unwrap();
    setup_admin(&app).await;
    let wrong = sign_in_with(&app.client, &app, ADMIN_EMAIL, "not the password at all").await;
    let unknown = sign_in_with(
        &app.client,
        &app,
        "nobody@example.com",
        "not the password at all",
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let a: Value = wrong.json().await.unwrap();
    let b: Value = unknown.json().await.unwrap();
    assert_eq!(a["type"], b["type"]);
    assert_eq!(a["detail"], b["detail"]);
    let failed = audit_rows(&app, "auth.sign_in").await;
    assert_eq!(failed.iter().filter(|r| r.outcome == "failed").count(), 2);
    for r in &failed {
        assert!(!r.summary.contains("not the password"), "{}", r.summary);
        assert_eq!(r.client_ip.as_deref(), Some("127.0.0.1"));
    }
}

#[tokio::test]
async fn repeated_failures_are_throttled_with_retry_after_without_locking_out_the_owner() {
    let app = TestApp::spawn().await.unwrap();
    setup_admin(&app).await;
    let attacker = client_from("127.0.0.2");
    let mut last = StatusCode::OK;
    for _ in 0..8 {
        last = sign_in_with(&attacker, &app, ADMIN_EMAIL, "guessing wrong again")
            .await
            .status();
        if last == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    let res = sign_in_with(&attacker, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&wait));
    // The owner, from their own address, is not locked out by the stranger.
    let owner = sign_in_with(&app.client, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(owner.status(), StatusCode::OK);
    let denied = audit_rows(&app, "auth.sign_in").await;
    assert!(
        denied
            .iter()
            .any(|r| r.outcome == "denied" && r.client_ip.as_deref() == Some("127.0.0.2"))
    );
}

/// 40 wrong passwords for one account sent at once get no more password checks than 40 sent
/// one after another: the attempt is reserved before hashing.
#[tokio::test]
async fn parallel_wrong_passwords_get_no_more_checks_than_serial_ones() {
    use std::sync::Arc;
    use warden_domain::clock::{Clock, ManualClock, SystemClock};
    // A stopped clock: the one-second block cannot lapse while the burst is in flight.
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let app = TestApp::spawn_with(AppOptions {
        clock,
        ..AppOptions::default()
    })
    .await
    .unwrap();
    setup_admin(&app).await;
    let attacker = client_from("127.0.0.3");
    let burst = (0..40).map(|i| {
        let attacker = attacker.clone();
        let app = &app;
        async move {
            sign_in_with(
                &attacker,
                app,
                ADMIN_EMAIL,
                &format!("wrong guess number {i}"),
            )
            .await
            .status()
        }
    });
    let statuses = futures_util::future::join_all(burst).await;
    let unauthorized = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let throttled = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    // One after another: five free failures, the sixth closes the pair.
    assert_eq!((unauthorized, throttled), (6, 34), "{statuses:?}");
    let rows = audit_rows(&app, "auth.sign_in").await;
    assert_eq!(rows.iter().filter(|r| r.outcome == "failed").count(), 6);
    assert_eq!(rows.iter().filter(|r| r.outcome == "denied").count(), 34);
    // The owner, from their own address, still signs in.
    let owner = sign_in_with(&app.client, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(owner.status(), StatusCode::OK);
}

#[tokio::test]
async fn sign_in_gives_a_working_token_a_refresh_token_and_no_store() {
    let app = TestApp::spawn().await.unwrap();
    setup_admin(&app).await;
    let res = sign_in_with(&app.client, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert!(res.headers().get("set-cookie").is_none());
    let body: Value = res.json().await.unwrap();
    assert!(body["refresh_token"].as_str().unwrap().starts_with("wrt_"));
    assert_eq!(body["expires_in"], 900);
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(get_me(&app, token).await, StatusCode::OK);
    // The header names the published key.
    let header: Value =
        serde_json::from_slice(&B64URL.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kid"], header["kid"]);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "no private parts published"
    );
}

fn b64(v: &Value) -> String {
    B64URL.encode(serde_json::to_vec(v).unwrap())
}

#[tokio::test]
async fn forged_tokens_are_refused_with_401() {
    // ES256 (the default) and RS256.
    forged_tokens_are_refused(&TestApp::spawn().await.unwrap()).await;
    let rsa = TestApp::spawn_with(AppOptions {
        env: warden_testkit::signing_key_env("2048"),
        ..AppOptions::default()
    })
    .await
    .unwrap();
    forged_tokens_are_refused(&rsa).await;
}

async fn forged_tokens_are_refused(app: &TestApp) {
    let good = admin_token(app).await;
    let parts: Vec<&str> = good.split('.').collect();
    let claims: AccessClaims = serde_json::from_slice(&B64URL.decode(parts[1]).unwrap()).unwrap();
    let header: Value = serde_json::from_slice(&B64URL.decode(parts[0]).unwrap()).unwrap();
    let kid = header["kid"].as_str().unwrap();
    let alg = header["alg"].as_str().unwrap();
    let keys = app.server.state().ctx.identity.keys();
    let sign = |c: &AccessClaims| keys.sign(c).unwrap();
    let payload = b64(&serde_json::to_value(&claims).unwrap());
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public = jwks["keys"][0].clone();
    // What an attacker would key an HMAC with: the modulus or the point's x, as published.
    let secret = public["n"].as_str().or(public["x"].as_str()).unwrap();

    let mut forged: Vec<(&str, String)> = Vec::new();
    forged.push((
        "alg none",
        format!("{}.{payload}.", b64(&json!({"alg": "none", "kid": kid}))),
    ));
    let hs_input = format!("{}.{payload}", b64(&json!({"alg": "HS256", "kid": kid})));
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes()),
        hs_input.as_bytes(),
    );
    forged.push((
        "HS256 keyed with the public key",
        format!("{hs_input}.{}", B64URL.encode(tag)),
    ));
    // The genuine signature under any other algorithm's name.
    for other in ["RS256", "RS384", "ES256", "ES384", "PS256"] {
        if other != alg {
            forged.push((
                other,
                format!(
                    "{}.{payload}.{}",
                    b64(&json!({"alg": other, "kid": kid})),
                    parts[2]
                ),
            ));
        }
    }
    forged.push((
        "unknown kid",
        format!(
            "{}.{payload}.{}",
            b64(&json!({"alg": alg, "kid": "nope"})),
            parts[2]
        ),
    ));
    forged.push((
        "jku header",
        format!(
            "{}.{payload}.{}",
            b64(&json!({"alg": alg, "kid": kid, "jku": "http://127.0.0.1:9/k"})),
            parts[2]
        ),
    ));
    forged.push((
        "embedded jwk",
        format!(
            "{}.{payload}.{}",
            b64(&json!({"alg": alg, "kid": kid, "jwk": public})),
            parts[2]
        ),
    ));
    forged.push((
        "x5u header",
        format!(
            "{}.{payload}.{}",
            b64(&json!({"alg": alg, "kid": kid, "x5u": "http://127.0.0.1:9/c"})),
            parts[2]
        ),
    ));
    let mut tampered = claims.clone();
    tampered.sub = uuid::Uuid::now_v7().to_string();
    forged.push((
        "bad signature",
        format!(
            "{}.{}.{}",
            parts[0],
            b64(&serde_json::to_value(&tampered).unwrap()),
            parts[2]
        ),
    ));
    let mut c = claims.clone();
    c.iss = "https://evil.example".to_owned();
    forged.push(("wrong iss", sign(&c)));
    let mut c = claims.clone();
    c.aud = "another-api".to_owned();
    forged.push(("wrong aud", sign(&c)));
    let mut c = claims.clone();
    c.iat -= 3600;
    c.exp = c.iat + 900;
    forged.push(("expired", sign(&c)));
    let mut c = claims.clone();
    c.iat += 600;
    c.exp = c.iat + 900;
    forged.push(("issued in the future", sign(&c)));
    let mut c = claims.clone();
    c.nbf = Some(c.iat + 600);
    forged.push(("nbf in the future", sign(&c)));
    forged.push((
        "oversized",
        format!("{}.{}.{}", parts[0], "A".repeat(9 * 1024), parts[2]),
    ));
    forged.push(("malformed", "not.a.jwt".to_owned()));
    forged.push(("two parts", format!("{}.{}", parts[0], parts[1])));

    for (what, token) in &forged {
        let res = app
            .client
            .get(app.url("/api/v1/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer", "{what}");
    }
    // And the genuine token still works.
    assert_eq!(get_me(app, &good).await, StatusCode::OK);
    // A non-Bearer scheme is refused too.
    let basic = app
        .client
        .get(app.url("/api/v1/me"))
        .basic_auth("a", Some("b"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn refresh_rotates_and_a_stolen_token_kills_only_its_family() {
    let app = TestApp::spawn_with(AppOptions {
        env: vec![("WARDEN_AUTH_REFRESH_GRACE_SECS".to_owned(), "0".to_owned())],
        ..AppOptions::default()
    })
    .await
    .unwrap();
    setup_admin(&app).await;
    let laptop = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let phone = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let stolen = laptop["refresh_token"].as_str().unwrap().to_owned();

    // The owner refreshes: new tokens, and the old refresh token is spent.
    let res = refresh(&app, &stolen).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let owner: Value = res.json().await.unwrap();
    assert_ne!(owner["refresh_token"], laptop["refresh_token"]);
    assert_eq!(owner["session_id"], laptop["session_id"]);
    let owner_access = owner["access_token"].as_str().unwrap();
    assert_eq!(get_me(&app, owner_access).await, StatusCode::OK);

    // The thief presents the stolen (already rotated) token from another address.
    let thief = client_from("127.0.0.3");
    let res = thief
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({ "refresh_token": stolen }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // The whole family is dead: the owner's new refresh and access tokens too.
    assert_eq!(
        refresh(&app, owner["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(get_me(&app, owner_access).await, StatusCode::UNAUTHORIZED);
    // The other device is untouched.
    assert_eq!(
        get_me(&app, phone["access_token"].as_str().unwrap()).await,
        StatusCode::OK
    );
    assert_eq!(
        refresh(&app, phone["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );

    let reuse = audit_rows(&app, "auth.refresh_reuse_detected").await;
    assert_eq!(reuse.len(), 1);
    assert_eq!(reuse[0].client_ip.as_deref(), Some("127.0.0.3"));
    assert_eq!(
        reuse[0].resource_id.as_ref(),
        laptop["session_id"].as_str().map(str::to_owned).as_ref()
    );
    // The session row remembers who triggered it.
    let sid: uuid::Uuid = laptop["session_id"].as_str().unwrap().parse().unwrap();
    let mut tx = app.server.store().begin_read().await.unwrap();
    let row = tx.device(sid).await.unwrap().unwrap();
    assert_eq!(row.revoked_ip.as_deref(), Some("127.0.0.3"));
    assert_eq!(row.revoked_reason.as_deref(), Some("refresh_reuse"));
}

#[tokio::test]
async fn concurrent_refreshes_within_the_grace_window_get_the_same_successor() {
    let app = TestApp::spawn().await.unwrap();
    setup_admin(&app).await;
    let s = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let token = s["refresh_token"].as_str().unwrap();
    let (a, b) = tokio::join!(refresh(&app, token), refresh(&app, token));
    assert_eq!(a.status(), StatusCode::OK);
    assert_eq!(b.status(), StatusCode::OK);
    let a: Value = a.json().await.unwrap();
    let b: Value = b.json().await.unwrap();
    assert_eq!(a["refresh_token"], b["refresh_token"]);
    // Only one successor exists, and it works.
    assert_eq!(
        refresh(&app, a["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
    assert!(
        audit_rows(&app, "auth.refresh_reuse_detected")
            .await
            .is_empty()
    );
    // The second got the successor again: that re-issue is on record.
    assert_eq!(
        audit_rows(&app, "auth.refresh_grace_reissued").await.len(),
        1
    );
}

/// Within the grace window the old token is honoured again only for the client that rotated
/// it; the same token from another address, or another user agent, is a stolen copy.
#[tokio::test]
async fn a_replay_within_the_grace_window_from_another_client_ends_the_family() {
    let app = TestApp::spawn().await.unwrap();
    setup_admin(&app).await;
    for (thief_ip, thief_agent) in [("127.0.2.9", None), ("127.0.0.1", Some("curl/8.0"))] {
        let s = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let token = s["refresh_token"].as_str().unwrap();
        let owner = refresh(&app, token).await;
        assert_eq!(owner.status(), StatusCode::OK);
        let owner: Value = owner.json().await.unwrap();
        let mut replay = client_from(thief_ip)
            .post(app.url("/api/v1/auth/refresh"))
            .json(&json!({ "refresh_token": token }));
        if let Some(agent) = thief_agent {
            replay = replay.header("user-agent", agent);
        }
        let res = replay.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{thief_ip}");
        // The family is over: the owner's fresh tokens too.
        assert_eq!(
            refresh(&app, owner["refresh_token"].as_str().unwrap())
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            get_me(&app, owner["access_token"].as_str().unwrap()).await,
            StatusCode::UNAUTHORIZED
        );
    }
    let reuse = audit_rows(&app, "auth.refresh_reuse_detected").await;
    assert_eq!(reuse.len(), 2);
    assert!(
        reuse
            .iter()
            .all(|r| r.summary.contains("grace_replay_from_another_client"))
    );
    // Twenty refreshes of one token from twenty addresses at once: one rotation at most,
    // and the family ends.
    let s = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let token = s["refresh_token"].as_str().unwrap().to_owned();
    let burst = (1..=20u8).map(|i| {
        let (app, token) = (&app, token.clone());
        async move {
            let res = client_from(&format!("127.0.3.{i}"))
                .post(app.url("/api/v1/auth/refresh"))
                .json(&json!({ "refresh_token": token }))
                .send()
                .await
                .unwrap();
            let status = res.status();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            (status, body)
        }
    });
    let answers = futures_util::future::join_all(burst).await;
    let granted: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .map(|(_, b)| b)
        .collect();
    assert!(
        granted.len() <= 1,
        "{} successors handed out",
        granted.len()
    );
    for g in granted {
        assert_eq!(
            get_me(&app, g["access_token"].as_str().unwrap()).await,
            StatusCode::UNAUTHORIZED
        );
    }
}

/// New signing keys are P-256 (ES256) by default; an RSA key already in use (as on an
/// installation from before, or one that chose RS256) keeps verifying its tokens while it is
/// published, beside the new key.
#[tokio::test]
async fn the_default_signing_key_is_p256_and_rsa_keys_already_in_use_keep_verifying() {
    let jwks = |app: &TestApp| {
        let url = app.url("/.well-known/jwks.json");
        let client = app.client.clone();
        async move {
            let v: Value = client.get(url).send().await.unwrap().json().await.unwrap();
            v["keys"].as_array().unwrap().clone()
        }
    };
    let alg_of = |t: &Value| {
        let header = t["access_token"]
            .as_str()
            .unwrap()
            .split('.')
            .next()
            .unwrap();
        serde_json::from_slice::<Value>(&B64URL.decode(header).unwrap()).unwrap()["alg"].clone()
    };
    let fresh = TestApp::spawn().await.unwrap();
    setup_admin(&fresh).await;
    let token = sign_in(&fresh, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(alg_of(&token), "ES256");
    assert_eq!(
        get_me(&fresh, token["access_token"].as_str().unwrap()).await,
        StatusCode::OK
    );
    let keys = jwks(&fresh).await;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "EC", "{keys:?}");
    assert_eq!(keys[0]["crv"], "P-256");
    assert_eq!(
        B64URL.decode(keys[0]["y"].as_str().unwrap()).unwrap().len(),
        32
    );

    // A server signing RS256 with a 3072-bit key moves to P-256 (as after an upgrade).
    let app = TestApp::spawn_with(AppOptions {
        env: warden_testkit::signing_key_env("3072"),
        ..AppOptions::default()
    })
    .await
    .unwrap();
    setup_admin(&app).await;
    let old = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(alg_of(&old), "RS256");
    let state = app.server.state();
    let mut config = state.ctx.identity.config.clone();
    config.signing_key = warden_crypto::jwt::KeyKind::Es256;
    warden_core::identity::keys::add_key(
        app.server.store(),
        &state.ctx.keyring,
        state.ctx.clock.as_ref(),
        &config,
        0,
        3600,
        None,
    )
    .await
    .unwrap();
    state
        .ctx
        .identity
        .reload_keys(
            app.server.store(),
            &state.ctx.keyring,
            state.ctx.clock.as_ref(),
        )
        .await
        .unwrap();
    let new = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(alg_of(&new), "ES256");
    for t in [&old, &new] {
        assert_eq!(
            get_me(&app, t["access_token"].as_str().unwrap()).await,
            StatusCode::OK
        );
    }
    let keys = jwks(&app).await;
    let mut kinds: Vec<(String, usize)> = keys
        .iter()
        .map(|k| {
            let n = k["n"]
                .as_str()
                .map_or(0, |n| B64URL.decode(n).unwrap().len());
            (k["kty"].as_str().unwrap().to_owned(), n)
        })
        .collect();
    kinds.sort();
    assert_eq!(kinds, [("EC".to_owned(), 0), ("RSA".to_owned(), 384)]);
}

#[tokio::test]
async fn revoking_a_device_refuses_its_access_token_at_once() {
    let app = TestApp::spawn().await.unwrap();
    setup_admin(&app).await;
    let a = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let b = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let a_token = a["access_token"].as_str().unwrap();
    let b_token = b["access_token"].as_str().unwrap();
    assert_eq!(get_me(&app, b_token).await, StatusCode::OK);
    let devices: Value = app
        .client
        .get(app.url("/api/v1/me/devices"))
        .bearer_auth(a_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = devices.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(
        list.iter()
            .all(|d| d["user_agent"] == "warden-tests/1" && d["first_ip"] == "127.0.0.1")
    );
    let res = app
        .client
        .delete(app.url(&format!(
            "/api/v1/me/devices/{}",
            b["session_id"].as_str().unwrap()
        )))
        .bearer_auth(a_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(get_me(&app, b_token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh(&app, b["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(get_me(&app, a_token).await, StatusCode::OK);
    // Someone else's or an unknown session: 404.
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/me/devices/{}", uuid::Uuid::now_v7())))
        .bearer_auth(a_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(audit_rows(&app, "session.revoked").await.len(), 1);
}

#[tokio::test]
async fn a_password_change_signs_out_everywhere_else_and_revocation_survives_a_restart() {
    let app = TestApp::spawn().await.unwrap();
    setup_admin(&app).await;
    let here = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let there = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let here_token = here["access_token"].as_str().unwrap();
    let res = app
        .client
        .post(app.url("/api/v1/me/password"))
        .bearer_auth(here_token)
        .json(&json!({"current_password": ADMIN_PASSWORD, "new_password": "amber lantern 2208 crane"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(get_me(&app, here_token).await, StatusCode::OK);
    let there_token = there["access_token"].as_str().unwrap().to_owned();
    assert_eq!(get_me(&app, &there_token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        sign_in_with(&app.client, &app, ADMIN_EMAIL, ADMIN_PASSWORD)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let changed = audit_rows(&app, "user.password_changed").await;
    assert_eq!(changed.len(), 1);
    assert!(!changed[0].summary.contains("amber lantern"));

    // A second node started later (a restart) refuses the revoked token too.
    let node = TestApp::spawn_with(AppOptions {
        env: vec![
            ("WARDEN_DATABASE_URL".to_owned(), app.db.url.clone()),
            (
                "WARDEN_ENCRYPTION_KEY".to_owned(),
                app.master_key_hex.clone(),
            ),
        ],
        ..AppOptions::default()
    })
    .await
    .unwrap();
    assert_eq!(get_me(&node, &there_token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(get_me(&node, here_token).await, StatusCode::OK);
}

/// `warden keys revoke-signing KID`: the key leaves the JWKS and every node; the tokens it
/// signed, already verified and cached on both nodes, are refused on their next request, and
/// a new key signs.
#[tokio::test]
async fn an_emergency_key_revocation_refuses_its_tokens_on_every_node_at_once() {
    let a = TestApp::spawn().await.unwrap();
    setup_admin(&a).await;
    let b = TestApp::spawn_with(AppOptions {
        env: vec![
            ("WARDEN_DATABASE_URL".to_owned(), a.db.url.clone()),
            ("WARDEN_ENCRYPTION_KEY".to_owned(), a.master_key_hex.clone()),
        ],
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let s = sign_in(&a, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let token = s["access_token"].as_str().unwrap();
    let header = token.split('.').next().unwrap();
    let kid = serde_json::from_slice::<Value>(&B64URL.decode(header).unwrap()).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(get_me(&a, token).await, StatusCode::OK);
    assert_eq!(get_me(&b, token).await, StatusCode::OK);

    // (Awaited: the servers run on this test's runtime and must keep answering meanwhile.)
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .env_clear()
        .envs(a.db.env())
        .env("WARDEN_ENCRYPTION_KEY", &a.master_key_hex)
        .env("WARDEN_DATA_DIR", a.db.data_dir())
        .env("WARDEN_LOG_LEVEL", "warn")
        .args(["keys", "revoke-signing", &kid])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("revoked") && said.contains("new signing key"),
        "{said}"
    );
    // The very next request, on either node.
    assert_eq!(get_me(&a, token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(get_me(&b, token).await, StatusCode::UNAUTHORIZED);
    for node in [&a, &b] {
        let jwks: Value = node
            .client
            .get(node.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(!jwks.to_string().contains(&kid), "{jwks}");
    }
    // Signing goes on with the new key, on both nodes.
    let again = sign_in(&b, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let fresh = again["access_token"].as_str().unwrap();
    assert_eq!(get_me(&a, fresh).await, StatusCode::OK);
    assert_eq!(get_me(&b, fresh).await, StatusCode::OK);
    let revoked = audit_rows(&a, "auth.signing_key_revoked").await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].resource_id.as_deref(), Some(kid.as_str()));
    // An unknown kid is an error that says where to look.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .env_clear()
        .envs(a.db.env())
        .env("WARDEN_ENCRYPTION_KEY", &a.master_key_hex)
        .env("WARDEN_DATA_DIR", a.db.data_dir())
        .args(["keys", "revoke-signing", &kid])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("jwks.json"));
}

#[tokio::test]
async fn a_deactivated_user_is_refused_at_once_on_another_node() {
    let a = TestApp::spawn().await.unwrap();
    let admin = admin_token(&a).await;
    let b = TestApp::spawn_with(AppOptions {
        env: vec![
            ("WARDEN_DATABASE_URL".to_owned(), a.db.url.clone()),
            ("WARDEN_ENCRYPTION_KEY".to_owned(), a.master_key_hex.clone()),
        ],
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let user_id = create_user(&a, &admin, "dev@example.com").await;
    let user = sign_in(&a, "dev@example.com", "quiet harbor 4417 finch").await;
    let token = user["access_token"].as_str().unwrap();
    // Node b has verified (and cached) the token.
    assert_eq!(get_me(&b, token).await, StatusCode::OK);
    // Not an admin: admin routes refuse.
    let res = b
        .client
        .get(b.url("/api/v1/admin/sessions"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let res = a
        .client
        .post(a.url(&format!("/api/v1/admin/users/{user_id}/deactivate")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // The very next request, on the other node.
    assert_eq!(get_me(&b, token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh(&b, user["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        sign_in_with(&b.client, &b, "dev@example.com", "quiet harbor 4417 finch")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(audit_rows(&a, "user.deactivated").await.len(), 1);
    let revoked = audit_rows(&a, "session.revoked").await;
    assert!(
        revoked
            .iter()
            .any(|r| r.summary.contains("user_deactivated")
                && r.resource_id.as_deref() == user["session_id"].as_str()),
        "every ended session is audited"
    );
}

#[tokio::test]
async fn admins_list_and_revoke_any_session() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let user_id = create_user(&app, &admin, "dev@example.com").await;
    let user = sign_in(&app, "dev@example.com", "quiet harbor 4417 finch").await;
    let list: Value = app
        .client
        .get(app.url(&format!("/api/v1/admin/sessions?user_id={user_id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], user["session_id"]);
    let res = app
        .client
        .delete(app.url(&format!(
            "/api/v1/admin/sessions/{}",
            user["session_id"].as_str().unwrap()
        )))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        get_me(&app, user["access_token"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn with_multiple_sessions_off_a_new_sign_in_ends_the_others() {
    let app = TestApp::spawn_with(AppOptions {
        env: vec![(
            "WARDEN_AUTH_MULTIPLE_ACTIVE_SESSIONS".to_owned(),
            "false".to_owned(),
        )],
        ..AppOptions::default()
    })
    .await
    .unwrap();
    setup_admin(&app).await;
    let first = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let second = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        get_me(&app, first["access_token"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get_me(&app, second["access_token"].as_str().unwrap()).await,
        StatusCode::OK
    );
}

fn cookie_header(res: &reqwest::Response) -> (String, Vec<String>) {
    let set: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let jar = set
        .iter()
        .map(|c| c.split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ");
    (jar, set)
}

#[tokio::test]
async fn browser_sessions_use_host_cookies_and_refuse_cross_site_requests() {
    let app = TestApp::spawn().await.unwrap();
    setup_admin(&app).await;
    let host = app.base.trim_start_matches("http://").to_owned();
    let origin = app.base.clone();
    // A sign-in started by another site is refused (login CSRF).
    let res = app
        .client
        .post(app.url("/api/v1/auth/sign-in"))
        .header("origin", "https://evil.example")
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "cookies": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let res = app
        .client
        .post(app.url("/api/v1/auth/sign-in"))
        .header("origin", &origin)
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "cookies": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let (jar, set) = cookie_header(&res);
    assert_eq!(set.len(), 3);
    for c in &set {
        assert!(c.starts_with("__Host-"), "{c}");
        for flag in ["Path=/", "Secure", "SameSite=Lax"] {
            assert!(c.contains(flag), "{c}");
        }
        assert!(!c.contains("Domain"), "{c}");
        if !c.starts_with("__Host-warden_csrf") {
            assert!(c.contains("HttpOnly"), "{c}");
        }
    }
    let body: Value = res.json().await.unwrap();
    assert!(
        body.get("refresh_token").is_none(),
        "the browser's refresh token never appears in a body"
    );
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();

    // Reading with the cookie works without CSRF ceremony.
    let me = app
        .client
        .get(app.url("/api/v1/me"))
        .header("cookie", &jar)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    // A state-changing request from another origin, or without the token, is refused.
    for (origin_hdr, token) in [
        ("https://evil.example", Some(csrf.as_str())),
        (origin.as_str(), None),
        (origin.as_str(), Some("forged")),
    ] {
        let mut req = app
            .client
            .post(app.url("/api/v1/me/devices/revoke-others"))
            .header("cookie", &jar)
            .header("host", &host)
            .header("origin", origin_hdr);
        if let Some(t) = token {
            req = req.header("x-csrf-token", t);
        }
        assert_eq!(
            req.send().await.unwrap().status(),
            StatusCode::FORBIDDEN,
            "{origin_hdr} {token:?}"
        );
    }
    // A cookie refresh rotates the cookies; the body still carries no refresh token.
    let res = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .header("cookie", &jar)
        .header("origin", &origin)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (jar2, _) = cookie_header(&res);
    let body: Value = res.json().await.unwrap();
    assert!(body.get("refresh_token").is_none());
    // Same-origin sign-out with the token: the session ends and the cookies are cleared.
    let res = app
        .client
        .post(app.url("/api/v1/auth/sign-out"))
        .header("cookie", &jar2)
        .header("origin", &origin)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (_, cleared) = cookie_header(&res);
    assert!(cleared.iter().all(|c| c.contains("Max-Age=0")));
    let me = app
        .client
        .get(app.url("/api/v1/me"))
        .header("cookie", &jar2)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(audit_rows(&app, "session.revoked").await.len(), 1);
}

#[tokio::test]
async fn audit_routes_answer_an_admin_and_refuse_a_plain_user() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    create_user(&app, &admin, "dev@example.com").await;
    let user = sign_in(&app, "dev@example.com", "quiet harbor 4417 finch").await;
    let res = app
        .client
        .get(app.url("/api/v1/audit/events"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert!(body.to_string().contains("user.created"));
    let res = app
        .client
        .get(app.url("/api/v1/audit/export.csv"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("auth.sign_in"));
    let res = app
        .client
        .get(app.url("/api/v1/audit/events"))
        .bearer_auth(user["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

fn kid_of(token: &str) -> String {
    let header: Value =
        serde_json::from_slice(&B64URL.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

async fn published_kids(app: &TestApp) -> Vec<String> {
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_rotated_key_is_published_first_signs_after_a_minute_and_the_old_one_is_withdrawn_later()
{
    use std::sync::Arc;
    use time::Duration;
    use warden_domain::clock::ManualClock;
    let clock = Arc::new(ManualClock::new(warden_domain::clock::Clock::now(
        &warden_domain::clock::SystemClock,
    )));
    let app = TestApp::spawn_with(AppOptions {
        clock: clock.clone(),
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let old_token = admin_token(&app).await;
    let old_kid = kid_of(&old_token);
    let state = app.server.state();
    let chain = app.audit_key().await.unwrap();
    let reload = || async {
        state
            .ctx
            .identity
            .reload_keys(
                app.server.store(),
                &state.ctx.keyring,
                state.ctx.clock.as_ref(),
            )
            .await
            .unwrap();
    };
    let kid = warden_core::identity::keys::rotate(
        app.server.store(),
        &state.ctx.keyring,
        &chain,
        &state.ctx.identity.config,
        clock.as_ref(),
    )
    .await
    .unwrap();
    reload().await;
    // Published at once, so every node accepts it before any node signs with it.
    let mut published = published_kids(&app).await;
    published.sort();
    let mut both = vec![kid.clone(), old_kid.clone()];
    both.sort();
    assert_eq!(published, both);
    let token = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(kid_of(&token), old_kid, "not signing with the new key yet");

    clock.advance(Duration::seconds(61));
    reload().await;
    let token = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(kid_of(&token), kid);
    assert_eq!(get_me(&app, &token).await, StatusCode::OK);
    assert_eq!(
        get_me(&app, &old_token).await,
        StatusCode::OK,
        "old tokens keep working"
    );

    // Once every token the old key signed has expired, it is withdrawn.
    clock.advance(Duration::seconds(20 * 60));
    reload().await;
    assert_eq!(published_kids(&app).await, vec![kid.clone()]);
    assert_eq!(audit_rows(&app, "auth.signing_key_rotated").await.len(), 1);
}

#[tokio::test]
async fn idle_and_expired_sessions_cannot_refresh_and_access_tokens_expire() {
    use std::sync::Arc;
    use time::Duration;
    use warden_domain::clock::ManualClock;
    let clock = Arc::new(ManualClock::new(warden_domain::clock::Clock::now(
        &warden_domain::clock::SystemClock,
    )));
    let app = TestApp::spawn_with(AppOptions {
        clock: clock.clone(),
        ..AppOptions::default()
    })
    .await
    .unwrap();
    setup_admin(&app).await;
    let s = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let access = s["access_token"].as_str().unwrap().to_owned();
    // Within 15 minutes (plus leeway) the access token works; after, it does not.
    clock.advance(Duration::seconds(14 * 60));
    assert_eq!(get_me(&app, &access).await, StatusCode::OK);
    clock.advance(Duration::seconds(2 * 60));
    assert_eq!(get_me(&app, &access).await, StatusCode::UNAUTHORIZED);
    // Used within the idle timeout, the session lives on.
    let r: Value = refresh(&app, s["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    clock.advance(Duration::seconds(6 * 86_400));
    let r: Value = refresh(&app, r["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    // Unused for more than 7 days, it ends.
    clock.advance(Duration::seconds(7 * 86_400 + 60));
    assert_eq!(
        refresh(&app, r["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // Refreshed often, a session still ends at its absolute lifetime (30 days).
    let s = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let mut token = s["refresh_token"].as_str().unwrap().to_owned();
    for i in 0..4 {
        clock.advance(Duration::seconds(6 * 86_400));
        let r: Value = refresh(&app, &token).await.json().await.unwrap();
        token = r["refresh_token"]
            .as_str()
            .unwrap_or_else(|| panic!("refresh {i}: {r}"))
            .to_owned();
    }
    clock.advance(Duration::seconds(6 * 86_400));
    assert_eq!(
        refresh(&app, &token).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_sign_in_always_starts_a_new_family_even_with_a_session_cookie() {
    let app = TestApp::spawn().await.unwrap();
    setup_admin(&app).await;
    let res = app
        .client
        .post(app.url("/api/v1/auth/sign-in"))
        .header("origin", &app.base)
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "cookies": true}))
        .send()
        .await
        .unwrap();
    let (jar, _) = cookie_header(&res);
    let first: Value = res.json().await.unwrap();
    let res = app
        .client
        .post(app.url("/api/v1/auth/sign-in"))
        .header("origin", &app.base)
        .header("cookie", &jar)
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "cookies": true}))
        .send()
        .await
        .unwrap();
    let (jar2, _) = cookie_header(&res);
    let second: Value = res.json().await.unwrap();
    assert_ne!(first["session_id"], second["session_id"]);
    assert_ne!(jar, jar2);
}

#[tokio::test]
async fn throttle_counts_restart_after_the_window_and_old_ones_are_pruned() {
    let db = warden_testkit::TestDb::new().await.unwrap();
    let store = db.store().await.unwrap();
    let delay = |n: u32| if n > 2 { 5_000 } else { 0 };
    let mut tx = store.begin().await.unwrap();
    for expect in 1..=3 {
        let n = tx
            .throttle_fail("pair:a|b", 1_000, 100, delay)
            .await
            .unwrap();
        assert_eq!(n, expect);
    }
    assert_eq!(
        tx.throttle_blocked_until(&["pair:a|b", "other"])
            .await
            .unwrap(),
        6_000
    );
    // After the window, counting starts over.
    assert_eq!(
        tx.throttle_fail("pair:a|b", 2_000, 100, delay)
            .await
            .unwrap(),
        1
    );
    tx.commit().await.unwrap();
    assert_eq!(
        store.prune_identity(1_500, 100).await.unwrap(),
        0,
        "window not over"
    );
    assert_eq!(store.prune_identity(10_000, 100).await.unwrap(), 1);
    let mut tx = store.begin_read().await.unwrap();
    assert_eq!(tx.throttle_blocked_until(&["pair:a|b"]).await.unwrap(), 0);
}

#[tokio::test]
async fn an_admin_password_reset_ends_every_session_of_the_user_at_once() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let user_id = create_user(&app, &admin, "dev@example.com").await;
    let a = sign_in(&app, "dev@example.com", "quiet harbor 4417 finch").await;
    let b = sign_in(&app, "dev@example.com", "quiet harbor 4417 finch").await;
    let reset = |password: &'static str| {
        app.client
            .post(app.url(&format!("/api/v1/admin/users/{user_id}/password")))
            .bearer_auth(&admin)
            .json(&json!({ "new_password": password }))
            .send()
    };
    assert_eq!(
        reset("password1234").await.unwrap().status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        reset("copper meadow 5521 owl").await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    for s in [&a, &b] {
        assert_eq!(
            get_me(&app, s["access_token"].as_str().unwrap()).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            refresh(&app, s["refresh_token"].as_str().unwrap())
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        sign_in_with(
            &app.client,
            &app,
            "dev@example.com",
            "quiet harbor 4417 finch"
        )
        .await
        .status(),
        StatusCode::UNAUTHORIZED
    );
    sign_in(&app, "dev@example.com", "copper meadow 5521 owl").await;
    let rows = audit_rows(&app, "user.password_reset").await;
    assert_eq!(rows.len(), 1);
    assert!(!rows[0].summary.contains("copper"));
    // Not for plain users.
    let user = sign_in(&app, "dev@example.com", "copper meadow 5521 owl").await;
    let res = app
        .client
        .post(app.url(&format!("/api/v1/admin/users/{user_id}/password")))
        .bearer_auth(user["access_token"].as_str().unwrap())
        .json(&json!({ "new_password": "copper meadow 5521 owl" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

/// Everything the database holds, as text: every row of every table (PostgreSQL), or the
/// database file and its write-ahead log byte for byte (SQLite).
pub(crate) async fn database_dump(app: &TestApp) -> String {
    match app.db.backend {
        warden_store::Backend::Sqlite => {
            let dir = app.db.dir.path();
            let mut all = Vec::new();
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.to_string_lossy().contains("warden.db") {
                    all.extend(std::fs::read(&path).unwrap());
                }
            }
            String::from_utf8_lossy(&all).into_owned()
        }
        warden_store::Backend::Postgres => {
            // As the owner: the application role would see only what row-level security lets
            // it, and a dump is what an attacker with the whole database has.
            let pool = sqlx::PgPool::connect(&app.db.owner_url).await.unwrap();
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            let mut out = String::new();
            for t in tables {
                let sql = format!("SELECT COALESCE(string_agg(x::text, ' '), '') FROM {t} x");
                let text: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                out.push_str(&text);
            }
            pool.close().await;
            out
        }
    }
}

#[tokio::test]
async fn no_password_or_token_is_stored_in_plaintext() {
    let app = TestApp::spawn().await.unwrap();
    let link = app.server.setup_link().unwrap().to_owned();
    let setup_token = link.split("token=").nth(1).unwrap().to_owned();
    setup_admin(&app).await;
    let s = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let first_refresh = s["refresh_token"].as_str().unwrap().to_owned();
    let r: Value = refresh(&app, &first_refresh).await.json().await.unwrap();
    let second_refresh = r["refresh_token"].as_str().unwrap().to_owned();
    let access = r["access_token"].as_str().unwrap().to_owned();
    let res = app
        .client
        .post(app.url("/api/v1/me/password"))
        .bearer_auth(&access)
        .json(&json!({"current_password": ADMIN_PASSWORD, "new_password": "amber lantern 2208 crane"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // Let the database write everything out.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let dump = database_dump(&app).await;
    assert!(
        dump.contains(ADMIN_EMAIL),
        "the dump is readable (sanity check)"
    );
    for (what, secret) in [
        ("password", ADMIN_PASSWORD),
        ("new password", "amber lantern 2208 crane"),
        ("setup link", setup_token.as_str()),
        ("refresh token", first_refresh.as_str()),
        ("rotated refresh token", second_refresh.as_str()),
        ("access token", access.as_str()),
        ("master key", app.master_key_hex.as_str()),
    ] {
        assert!(!dump.contains(secret), "{what} found in the database");
    }
}

#[tokio::test]
async fn admins_sign_devices_out_under_the_devices_name_and_the_former_sessions_name_still_answers()
{
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let user_id = create_user(&app, &admin, "dev@example.com").await;
    let first = sign_in(&app, "dev@example.com", "quiet harbor 4417 finch").await;
    let second = sign_in(&app, "dev@example.com", "quiet harbor 4417 finch").await;
    let path = format!("?user_id={user_id}");
    let (status, new) = app
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/admin/devices{path}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, old) = app
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/admin/sessions{path}"),
            None,
        )
        .await;
    assert_eq!(new, old, "both names list the same devices");
    assert_eq!(new.as_array().unwrap().len(), 2);
    for (route, who) in [("devices", &first), ("sessions", &second)] {
        let id = who["session_id"].as_str().unwrap();
        let (status, _) = app
            .call(
                &admin,
                Method::DELETE,
                &format!("/api/v1/admin/{route}/{id}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{route}");
        assert_eq!(
            get_me(&app, who["access_token"].as_str().unwrap()).await,
            StatusCode::UNAUTHORIZED
        );
    }
    // The OpenAPI document marks the former name deprecated.
    let doc = app.openapi().await.unwrap();
    assert_eq!(
        doc["paths"]["/api/v1/admin/sessions"]["get"]["deprecated"],
        true
    );
    assert!(doc["paths"]["/api/v1/admin/devices"]["get"]["deprecated"].is_null());
}
