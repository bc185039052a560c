//! Passkeys through the API with a software authenticator that can bend one thing at a time:
//! registration and sign-in (discoverable and by email) work, and every check holds — a
//! reused challenge, another origin, a registration's clientData at sign-in, user presence
//! cleared, another RP id, a counter that went backwards (flagged), another user's credential
//! id, registering without a recent sign-in or with a token, removing the last passkey in
//! password-free mode. The browser itself is driven in `browser.rs`.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_domain::clock::{Clock, ManualClock, SystemClock};
use warden_testkit::passkey::{Bend, SoftPasskey};
use warden_testkit::smtp::Smtp;
use warden_testkit::{AppOptions, TestApp};

use crate::identity::{ADMIN_EMAIL, ADMIN_PASSWORD, admin_token, audit_rows, sign_in};

const ORIGIN: &str = "https://warden.example.test";
const DEV: &str = "dev@example.com";
const DEV_PASSWORD: &str = "quiet harbor 4417 finch";

async fn app_with(clock: Arc<dyn Clock>, extra: Vec<(String, String)>) -> TestApp {
    let mut env = vec![("WARDEN_PUBLIC_URL".to_owned(), ORIGIN.to_owned())];
    env.extend(extra);
    TestApp::spawn_with(AppOptions {
        env,
        clock,
        ..AppOptions::default()
    })
    .await
    .unwrap()
}

async fn app() -> TestApp {
    app_with(Arc::new(SystemClock), Vec::new()).await
}

/// Registers `key` for the holder of `token`, bent by `bend`: the status and body.
async fn register(
    app: &TestApp,
    token: &str,
    key: &mut SoftPasskey,
    bend: &Bend,
) -> (StatusCode, Value) {
    let (status, start) = app
        .call(
            token,
            Method::POST,
            "/api/v1/me/passkeys/registration",
            None,
        )
        .await;
    if status != StatusCode::OK {
        return (status, start);
    }
    let credential = key.register(&start["options"], bend);
    app.call(
        token,
        Method::POST,
        "/api/v1/me/passkeys",
        Some(json!({"ceremony": start["ceremony"], "name": "laptop", "credential": credential})),
    )
    .await
}

async fn options(app: &TestApp, email: Option<&str>) -> Value {
    let body = email.map_or_else(|| json!({}), |e| json!({"email": e}));
    let res = app
        .client
        .post(app.url("/api/v1/auth/passkey/options"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn finish(app: &TestApp, ceremony: &Value, credential: &Value) -> (StatusCode, Value) {
    let res = app
        .client
        .post(app.url("/api/v1/auth/passkey"))
        .json(&json!({"ceremony": ceremony, "credential": credential}))
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap_or(Value::Null))
}

/// A sign-in with `key`, bent by `bend`.
async fn sign_in_with(
    app: &TestApp,
    key: &mut SoftPasskey,
    email: Option<&str>,
    bend: &Bend,
) -> (StatusCode, Value) {
    let start = options(app, email).await;
    let credential = key.assert(&start["options"], bend);
    finish(app, &start["ceremony"], &credential).await
}

#[tokio::test]
async fn a_passkey_registers_then_signs_in_with_no_email_typed_and_with_one() {
    let app = app().await;
    let admin = admin_token(&app).await;
    let mut key = SoftPasskey::new(ORIGIN);
    let (status, body) = register(&app, &admin, &mut key, &Bend::default()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["name"], "laptop");
    let (_, listed) = app
        .call(&admin, Method::GET, "/api/v1/me/passkeys", None)
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0]["flagged_at"].is_null());

    // Discoverable: the options name no credential; the authenticator says who.
    let start = options(&app, None).await;
    assert!(start["ceremony"].as_str().unwrap().starts_with("wpc_"));
    assert_eq!(start["options"]["publicKey"]["rpId"], "warden.example.test");
    assert_eq!(
        start["options"]["publicKey"]["userVerification"],
        "required"
    );
    assert!(
        start["options"]["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty)
    );
    let credential = key.assert(&start["options"], &Bend::default());
    let (status, grant) = finish(&app, &start["ceremony"], &credential).await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    let token = grant["access_token"].as_str().unwrap();
    let (_, me) = app.call(token, Method::GET, "/api/v1/me", None).await;
    assert_eq!(me["email"], ADMIN_EMAIL);

    // By email: the account's credentials are offered.
    let start = options(&app, Some(ADMIN_EMAIL)).await;
    assert_eq!(
        start["options"]["publicKey"]["allowCredentials"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let credential = key.assert(&start["options"], &Bend::default());
    let (status, _) = finish(&app, &start["ceremony"], &credential).await;
    assert_eq!(status, StatusCode::OK);

    let signed_in: Vec<_> = audit_rows(&app, "auth.sign_in")
        .await
        .into_iter()
        .filter(|r| r.summary.contains("\"method\":\"passkey\"") && r.outcome == "success")
        .collect();
    assert_eq!(signed_in.len(), 2);
    assert_eq!(audit_rows(&app, "passkey.registered").await.len(), 1);
    let (_, listed) = app
        .call(&admin, Method::GET, "/api/v1/me/passkeys", None)
        .await;
    assert!(listed[0]["last_used_at"].is_string());
    let (_, methods) = app
        .call(&admin, Method::GET, "/api/v1/auth/methods", None)
        .await;
    assert_eq!(methods["passkey"], true);
}

#[tokio::test]
async fn registration_needs_a_recent_sign_in_an_honest_answer_and_a_credential_of_ones_own() {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let app = app_with(clock.clone(), Vec::new()).await;
    let admin = admin_token(&app).await;

    // Bent answers are refused, each with a fresh ceremony.
    for bend in [
        Bend {
            origin: Some("https://evil.example".into()),
            ..Bend::default()
        },
        Bend {
            no_user_presence: true,
            ..Bend::default()
        },
        Bend {
            rp_id: Some("evil.example".into()),
            ..Bend::default()
        },
        Bend {
            ceremony_type: Some("webauthn.get".into()),
            ..Bend::default()
        },
    ] {
        let mut key = SoftPasskey::new(ORIGIN);
        let (status, body) = register(&app, &admin, &mut key, &bend).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bend:?}: {body}");
        assert_eq!(body["code"], "passkey-rejected");
    }

    // A ceremony is answered once.
    let (_, start) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/me/passkeys/registration",
            None,
        )
        .await;
    let mut key = SoftPasskey::new(ORIGIN);
    let credential = key.register(&start["options"], &Bend::default());
    let body = json!({"ceremony": start["ceremony"], "name": "one", "credential": credential});
    let (first, _) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/me/passkeys",
            Some(body.clone()),
        )
        .await;
    assert_eq!(first, StatusCode::CREATED);
    let (again, again_body) = app
        .call(&admin, Method::POST, "/api/v1/me/passkeys", Some(body))
        .await;
    assert_eq!(again, StatusCode::BAD_REQUEST, "{again_body}");

    // Another user registering the admin's credential id: 409.
    let (code, _) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/admin/users",
            Some(json!({"email": DEV, "password": DEV_PASSWORD})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    let dev = sign_in(&app, DEV, DEV_PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut thief = SoftPasskey::new(ORIGIN);
    let stolen = Bend {
        credential_id: Some(key.credential_id.clone()),
        ..Bend::default()
    };
    let (status, body) = register(&app, &dev, &mut thief, &stolen).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "passkey-taken");
    let (_, mine) = app
        .call(&dev, Method::GET, "/api/v1/me/passkeys", None)
        .await;
    assert_eq!(mine.as_array().unwrap().len(), 0);

    // A personal access token never registers one.
    let (_, pat) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/me/tokens",
            Some(json!({"name": "ci", "permissions": ["users.read"], "expires_in_days": 7})),
        )
        .await;
    let pat = pat["token"].as_str().unwrap();
    let (status, body) = app
        .call(pat, Method::POST, "/api/v1/me/passkeys/registration", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // Six minutes after signing in: sign in again first (removing too).
    clock.advance(time::Duration::minutes(6));
    let mut late = SoftPasskey::new(ORIGIN);
    let (status, body) = register(&app, &admin, &mut late, &Bend::default()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "reauthentication-required");
    let (_, mine) = app
        .call(&admin, Method::GET, "/api/v1/me/passkeys", None)
        .await;
    let id = mine[0]["id"].as_str().unwrap();
    let (status, body) = app
        .call(
            &admin,
            Method::DELETE,
            &format!("/api/v1/me/passkeys/{id}"),
            None,
        )
        .await;
    assert_eq!(body["code"], "reauthentication-required", "{status}");
    let fresh = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = register(&app, &fresh, &mut late, &Bend::default()).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn sign_in_refuses_every_bent_answer_and_flags_a_counter_that_went_back() {
    let app = app().await;
    let admin = admin_token(&app).await;
    let mut key = SoftPasskey::new(ORIGIN);
    let (status, _) = register(&app, &admin, &mut key, &Bend::default()).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = sign_in_with(&app, &mut key, None, &Bend::default()).await;
    assert_eq!(status, StatusCode::OK);

    for bend in [
        Bend {
            origin: Some("https://evil.example".into()),
            ..Bend::default()
        },
        Bend {
            ceremony_type: Some("webauthn.create".into()),
            ..Bend::default()
        },
        Bend {
            no_user_presence: true,
            ..Bend::default()
        },
        Bend {
            rp_id: Some("evil.example".into()),
            ..Bend::default()
        },
    ] {
        let (status, body) = sign_in_with(&app, &mut key, None, &bend).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bend:?}: {body}");
    }

    // A challenge is answered once: the same honest answer a second time is refused.
    let start = options(&app, None).await;
    let credential = key.assert(&start["options"], &Bend::default());
    assert_eq!(
        finish(&app, &start["ceremony"], &credential).await.0,
        StatusCode::OK
    );
    assert_eq!(
        finish(&app, &start["ceremony"], &credential).await.0,
        StatusCode::UNAUTHORIZED
    );
    // A made-up ceremony handle too.
    let start = options(&app, None).await;
    let credential = key.assert(&start["options"], &Bend::default());
    assert_eq!(
        finish(&app, &json!("wpc_nothing"), &credential).await.0,
        StatusCode::UNAUTHORIZED
    );
    // A device code or a magic-link token is no ceremony.
    assert_eq!(
        finish(&app, &json!("wdc_AAAA"), &credential).await.0,
        StatusCode::UNAUTHORIZED
    );

    // The counter goes backwards (a cloned authenticator): refused and flagged.
    let behind = Bend {
        counter: Some(1),
        ..Bend::default()
    };
    let (status, _) = sign_in_with(&app, &mut key, None, &behind).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, mine) = app
        .call(&admin, Method::GET, "/api/v1/me/passkeys", None)
        .await;
    assert!(mine[0]["flagged_at"].is_string(), "{mine}");
    assert_eq!(mine[0]["flagged_reason"], "sign_counter_did_not_increase");
    let (_, all) = app
        .call(&admin, Method::GET, "/api/v1/admin/passkeys", None)
        .await;
    assert!(all[0]["flagged_at"].is_string());
    assert_eq!(audit_rows(&app, "passkey.flagged").await.len(), 1);
    // Flagged, it signs nobody in, even honestly.
    let (status, _) = sign_in_with(&app, &mut key, None, &Bend::default()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let denied = audit_rows(&app, "auth.sign_in")
        .await
        .into_iter()
        .filter(|r| r.outcome == "denied" && r.summary.contains("passkey"))
        .count();
    assert!(denied >= 6, "{denied}");
}

#[tokio::test]
async fn the_last_passkey_stays_while_password_sign_in_is_off_and_there_is_no_sso() {
    let smtp = Smtp::start().await;
    let app = app_with(
        Arc::new(SystemClock),
        vec![(
            "WARDEN_SMTP_URL".to_owned(),
            format!("smtp://127.0.0.1:{}", smtp.port),
        )],
    )
    .await;
    let admin = admin_token(&app).await;
    let (code, _) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/admin/users",
            Some(json!({"email": DEV, "password": DEV_PASSWORD})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    let dev = sign_in(&app, DEV, DEV_PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut one = SoftPasskey::new(ORIGIN);
    let mut two = SoftPasskey::new(ORIGIN);
    assert_eq!(
        register(&app, &dev, &mut one, &Bend::default()).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        register(&app, &dev, &mut two, &Bend::default()).await.0,
        StatusCode::CREATED
    );
    let (code, body) = app
        .call(
            &admin,
            Method::PUT,
            "/api/v1/admin/sign-in-policy",
            Some(json!({"password_sign_in": false, "break_glass_email": ADMIN_EMAIL})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");

    let (_, mine) = app
        .call(&dev, Method::GET, "/api/v1/me/passkeys", None)
        .await;
    let ids: Vec<String> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    let (status, _) = app
        .call(
            &dev,
            Method::DELETE,
            &format!("/api/v1/me/passkeys/{}", ids[0]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .call(
            &dev,
            Method::DELETE,
            &format!("/api/v1/me/passkeys/{}", ids[1]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "last-passkey");
    // The passkey still signs in.
    let (status, _) = sign_in_with(&app, &mut two, Some(DEV), &Bend::default()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(audit_rows(&app, "passkey.removed").await.len(), 1);
}

#[tokio::test]
async fn a_sign_in_by_email_does_not_tell_which_addresses_have_passkeys() {
    let app = app().await;
    let admin = admin_token(&app).await;
    let mut key = SoftPasskey::new(ORIGIN);
    assert_eq!(
        register(&app, &admin, &mut key, &Bend::default()).await.0,
        StatusCode::CREATED
    );
    let (code, _) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/admin/users",
            Some(json!({"email": DEV, "password": DEV_PASSWORD})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);

    let shape = |v: &Value| {
        let pk = &v["options"]["publicKey"];
        let mut keys: Vec<String> = pk.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        let allowed = pk["allowCredentials"].as_array().unwrap();
        let entry: Vec<String> = allowed[0].as_object().unwrap().keys().cloned().collect();
        (
            keys,
            allowed.len(),
            entry,
            allowed[0]["id"].as_str().unwrap().len(),
        )
    };
    let with_passkey = options(&app, Some(ADMIN_EMAIL)).await;
    let without = options(&app, Some(DEV)).await;
    let nobody = options(&app, Some("nobody@example.com")).await;
    assert_eq!(shape(&with_passkey).0, shape(&without).0);
    assert_eq!(shape(&without), shape(&nobody));
    assert_eq!(shape(&with_passkey).1, 1);
    // The stand-in is stable per address (asking twice shows nothing) and differs between them.
    let again = options(&app, Some("nobody@example.com")).await;
    let id = |v: &Value| v["options"]["publicKey"]["allowCredentials"][0]["id"].clone();
    assert_eq!(id(&nobody), id(&again));
    assert_ne!(id(&nobody), id(&without));
    // And the real passkey still signs in by email.
    let (status, _) = sign_in_with(&app, &mut key, Some(ADMIN_EMAIL), &Bend::default()).await;
    assert_eq!(status, StatusCode::OK);
}
