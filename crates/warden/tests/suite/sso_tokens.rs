//! Forged and broken ID tokens: a hostile provider (a small server at the network boundary
//! speaking OpenID Connect's documented wire format — discovery, keys, token endpoint) hands
//! Warden crafted tokens. Each must be refused; a correctly signed one (the control) passes,
//! so the refusals are about the token and nothing else.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use reqwest::{Method, StatusCode};
use serde_json::json;
use warden_testkit::TestApp;
use warden_testkit::forger::{keys, rs256, start_forger, unsigned};

use crate::identity::{admin_token, audit_rows};

/// Starts a sign-in at Warden: the binding cookie, the `state` and the `nonce`.
async fn begin(app: &TestApp) -> (String, String, String) {
    let client = warden_testkit::no_redirect_client();
    let res = client
        .get(app.url("/api/v1/auth/sso/forged/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("__Host-warden_sso="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let url = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    (cookie, param("state"), param("nonce"))
}

async fn finish(app: &TestApp, cookie: &str, state: &str) -> StatusCode {
    warden_testkit::no_redirect_client()
        .get(app.url(&format!(
            "/api/v1/auth/sso/forged/callback?code=c0de&state={state}"
        )))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn forged_expired_and_misdirected_id_tokens_are_refused() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let k = keys();
    let kid = k.jwk.kid.clone();
    let jwks = json!({"keys": [serde_json::to_value(&k.jwk).unwrap()]});
    let f = start_forger(jwks).await;
    let (code, body) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/admin/sso/providers",
            Some(
                json!({"slug": "forged", "display_name": "Forged", "preset": "oidc",
                        "issuer": f.base, "client_id": "warden", "client_secret": "s",
                        "jit": true, "allow_private_network": true}),
            ),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let now = warden_domain::clock::Clock::now(&warden_domain::clock::SystemClock).unix_timestamp();
    let claims = |nonce: &str| {
        json!({"iss": f.base, "sub": "victim-1", "aud": "warden", "exp": now + 300,
               "iat": now, "nonce": nonce, "email": "victim@example.com",
               "email_verified": true})
    };
    let public_key_bytes = B64.decode(k.jwk.n.as_deref().unwrap()).unwrap();
    type Forge<'a> = Box<dyn Fn(&str) -> String + 'a>;
    let cases: Vec<(&str, Forge)> = vec![
        (
            "aud is another client",
            Box::new(|n| {
                let mut c = claims(n);
                c["aud"] = json!("someone-else");
                rs256(&k, &kid, &c)
            }),
        ),
        (
            "a foreign iss",
            Box::new(|n| {
                let mut c = claims(n);
                c["iss"] = json!("https://evil.example");
                rs256(&k, &kid, &c)
            }),
        ),
        (
            "alg none",
            Box::new(|n| unsigned("none", &kid, &claims(n), b"")),
        ),
        (
            "HS256 keyed with the public key",
            Box::new(|n| unsigned("HS256", &kid, &claims(n), &public_key_bytes)),
        ),
        (
            "HS256 keyed with the client secret",
            Box::new(|n| unsigned("HS256", &kid, &claims(n), b"s")),
        ),
        (
            "expired",
            Box::new(|n| {
                let mut c = claims(n);
                c["exp"] = json!(now - 60);
                c["iat"] = json!(now - 3600);
                rs256(&k, &kid, &c)
            }),
        ),
        (
            "issued in the future",
            Box::new(|n| {
                let mut c = claims(n);
                c["iat"] = json!(now + 3600);
                rs256(&k, &kid, &c)
            }),
        ),
        (
            "another nonce",
            Box::new(|_| rs256(&k, &kid, &claims("not-the-nonce"))),
        ),
        (
            "azp names another client",
            Box::new(|n| {
                let mut c = claims(n);
                c["azp"] = json!("someone-else");
                rs256(&k, &kid, &c)
            }),
        ),
        (
            "a tampered payload",
            Box::new(|n| {
                let good = rs256(&k, &kid, &claims(n));
                let parts: Vec<&str> = good.split('.').collect();
                let mut c = claims(n);
                c["sub"] = json!("admin-1");
                format!("{}.{}.{}", parts[0], B64.encode(c.to_string()), parts[2])
            }),
        ),
        (
            "an unknown key",
            Box::new(|n| {
                let other = keys();
                rs256(&other, "unknown-kid", &claims(n))
            }),
        ),
    ];
    for (name, forge) in &cases {
        let (cookie, state, nonce) = begin(&app).await;
        *f.next.lock().unwrap() = forge(&nonce);
        assert_eq!(
            finish(&app, &cookie, &state).await,
            StatusCode::BAD_REQUEST,
            "{name}"
        );
    }
    let refused = audit_rows(&app, "auth.sign_in")
        .await
        .into_iter()
        .filter(|r| r.summary.contains("id_token_invalid"))
        .count();
    assert_eq!(refused, cases.len());

    // The control: the same token, correctly made, signs in.
    let (cookie, state, nonce) = begin(&app).await;
    let good = rs256(&k, &kid, &claims(&nonce));
    *f.next.lock().unwrap() = good.clone();
    assert_eq!(finish(&app, &cookie, &state).await, StatusCode::SEE_OTHER);
    // Replayed into a new sign-in, the same ID token fails on its nonce.
    let (cookie, state, _) = begin(&app).await;
    *f.next.lock().unwrap() = good;
    assert_eq!(finish(&app, &cookie, &state).await, StatusCode::BAD_REQUEST);

    // One callback sent eight times at once: this provider answers every exchange with a
    // valid token, so only the attempt being taken once stands between them — exactly one
    // signs in, and that one session is all that was opened.
    let (cookie, state, nonce) = begin(&app).await;
    *f.next.lock().unwrap() = rs256(&k, &kid, &claims(&nonce));
    let sessions_before = audit_rows(&app, "auth.sign_in")
        .await
        .into_iter()
        .filter(|r| r.outcome == "success")
        .count();
    let racing: Vec<_> = (0..8).map(|_| finish(&app, &cookie, &state)).collect();
    let codes = futures_util::future::join_all(racing).await;
    let signed_in = codes
        .iter()
        .filter(|c| **c == StatusCode::SEE_OTHER)
        .count();
    assert_eq!(signed_in, 1, "{codes:?}");
    assert!(
        codes
            .iter()
            .all(|c| *c == StatusCode::SEE_OTHER || *c == StatusCode::BAD_REQUEST),
        "{codes:?}"
    );
    let sessions_after = audit_rows(&app, "auth.sign_in")
        .await
        .into_iter()
        .filter(|r| r.outcome == "success")
        .count();
    assert_eq!(sessions_after, sessions_before + 1);
}

#[tokio::test]
async fn rotated_provider_keys_are_fetched_again_at_most_once_a_minute() {
    use std::sync::Arc;
    use warden_domain::clock::{Clock, ManualClock, SystemClock};
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let app = TestApp::spawn_with(warden_testkit::AppOptions {
        clock: clock.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let admin = admin_token(&app).await;
    let (old, new) = (keys(), keys());
    let f = start_forger(json!({"keys": [serde_json::to_value(&old.jwk).unwrap()]})).await;
    let (code, body) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/admin/sso/providers",
            Some(
                json!({"slug": "forged", "display_name": "Forged", "preset": "oidc",
                        "issuer": f.base, "client_id": "warden", "client_secret": "s",
                        "jit": true, "allow_private_network": true}),
            ),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let sign_in_with = |k: &warden_testkit::forger::Keys| {
        let k_jwk = k.jwk.kid.clone();
        let app = &app;
        let f = f.clone();
        let clock = clock.clone();
        async move {
            let (cookie, state, nonce) = begin(app).await;
            let now = clock.now().unix_timestamp();
            let claims = json!({"iss": f.base, "sub": "p-1", "aud": "warden", "exp": now + 300,
                                "iat": now, "nonce": nonce, "email": "p@example.com",
                                "email_verified": true});
            (cookie, state, k_jwk, claims)
        }
    };
    let fetches = || app.server.state().ctx.oidc.fetches();
    let (cookie, state, kid, claims) = sign_in_with(&old).await;
    *f.next.lock().unwrap() = rs256(&old, &kid, &claims);
    assert_eq!(finish(&app, &cookie, &state).await, StatusCode::SEE_OTHER);
    assert_eq!(fetches(), 1);
    // The provider rotates its key. Within the minute, an unknown key fetches nothing.
    *f.jwks.lock().unwrap() = json!({"keys": [serde_json::to_value(&new.jwk).unwrap()]});
    let (cookie, state, kid, claims) = sign_in_with(&new).await;
    *f.next.lock().unwrap() = rs256(&new, &kid, &claims);
    assert_eq!(finish(&app, &cookie, &state).await, StatusCode::BAD_REQUEST);
    assert_eq!(fetches(), 1);
    // A minute later the unknown key is looked up once, and then known.
    clock.advance(time::Duration::seconds(61));
    for _ in 0..2 {
        let (cookie, state, kid, claims) = sign_in_with(&new).await;
        *f.next.lock().unwrap() = rs256(&new, &kid, &claims);
        assert_eq!(finish(&app, &cookie, &state).await, StatusCode::SEE_OTHER);
    }
    assert_eq!(fetches(), 2);
    // The old key is gone with the refetch.
    let (cookie, state, kid, claims) = sign_in_with(&old).await;
    *f.next.lock().unwrap() = rs256(&old, &kid, &claims);
    assert_eq!(finish(&app, &cookie, &state).await, StatusCode::BAD_REQUEST);
}
