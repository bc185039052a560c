//! Single sign-on against a real OpenID provider (npm `oidc-provider`), a second one playing
//! a hostile provider, and the attacks on the flow: state, browser binding, replays, email
//! trust, linking, just-in-time accounts, redirect targets and provider addresses.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_testkit::TestApp;
use warden_testkit::oidc::{Browsed, OidcProvider, browse};

use crate::identity::{ADMIN_EMAIL, ADMIN_PASSWORD, admin_token, audit_rows, sign_in_with};

const SECRET: &str = "oidc-client-secret-7c1e";

struct Sso {
    app: TestApp,
    admin: String,
    acme: OidcProvider,
}

fn callback_of(app: &TestApp, slug: &str) -> String {
    app.url(&format!("/api/v1/auth/sso/{slug}/callback"))
}

async fn add_provider(
    app: &TestApp,
    admin: &str,
    slug: &str,
    issuer: &str,
    extra: Value,
) -> (StatusCode, Value) {
    let mut body = json!({
        "slug": slug, "display_name": format!("{slug} SSO"), "preset": "oidc",
        "issuer": issuer, "client_id": "warden", "client_secret": SECRET,
        "allow_private_network": true,
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    app.call(
        admin,
        Method::POST,
        "/api/v1/admin/sso/providers",
        Some(body),
    )
    .await
}

async fn start() -> Sso {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let acme = OidcProvider::start("warden", SECRET, &callback_of(&app, "acme"));
    let (code, body) = add_provider(
        &app,
        &admin,
        "acme",
        &acme.issuer,
        json!({"allowed_domains": ["example.com"], "jit": true}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    Sso { app, admin, acme }
}

/// Signs in at `slug` as `login`, up to the provider's redirect back.
async fn browse_as(s: &TestApp, slug: &str, login: &str, redirect: Option<&str>) -> Browsed {
    let mut start = s.url(&format!("/api/v1/auth/sso/{slug}/start"));
    if let Some(r) = redirect {
        start = format!("{start}?redirect={r}");
    }
    browse(&start, &s.base, login).await
}

/// Follows the provider's redirect back into Warden, with or without the binding cookie.
async fn come_back(b: &Browsed, with_cookie: bool) -> reqwest::Response {
    let client = warden_testkit::no_redirect_client();
    let mut req = client.get(&b.callback);
    if with_cookie {
        req = req.header("cookie", &b.binding);
    }
    req.send().await.unwrap()
}

fn cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap()[name.len() + 1..].to_owned())
}

async fn refused_with(app: &TestApp, reason: &str) -> bool {
    audit_rows(app, "auth.sign_in")
        .await
        .iter()
        .any(|r| r.outcome == "failed" && r.summary.contains(&format!("\"reason\":\"{reason}\"")))
}

#[tokio::test]
async fn signing_in_with_a_real_provider_provisions_once_and_gives_a_normal_session() {
    let s = start().await;
    let b = browse_as(&s.app, "acme", "alice@example.com", Some("/console/home")).await;
    assert!(
        b.authorize.contains("code_challenge_method=S256"),
        "{}",
        b.authorize
    );
    assert!(b.authorize.contains("nonce=") && b.authorize.contains("state="));
    let res = come_back(&b, true).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/console/home");
    let access = cookie(&res, "__Host-warden_access").expect("an access cookie");
    assert!(cookie(&res, "__Host-warden_refresh").is_some());
    let (code, me) = s.app.call(&access, Method::GET, "/api/v1/me", None).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(me["email"], "alice@example.com");
    // The same callback again: the attempt is spent.
    let again = come_back(&b, true).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert!(refused_with(&s.app, "unknown_state").await);

    // A second sign-in finds the same account (by issuer and subject), with warm keys.
    let fetches = s.app.server.state().ctx.oidc.fetches();
    let b = browse_as(&s.app, "acme", "alice@example.com", None).await;
    let res = come_back(&b, true).await;
    assert_eq!(res.headers()["location"], "/sso/signed-in");
    assert_eq!(
        s.app.server.state().ctx.oidc.fetches(),
        fetches,
        "no refetch"
    );
    let (_, users) = s
        .app
        .call(&s.admin, Method::GET, "/api/v1/admin/users", None)
        .await;
    let alices = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["email"] == "alice@example.com")
        .count();
    assert_eq!(alices, 1);
    assert_eq!(audit_rows(&s.app, "sso.user_provisioned").await.len(), 1);
    let ok = audit_rows(&s.app, "auth.sign_in").await;
    assert_eq!(
        ok.iter()
            .filter(|r| r.outcome == "success" && r.summary.contains("\"method\":\"sso\""))
            .count(),
        2
    );

    // The secret never comes back, in the API or the audit trail.
    let (_, listed) = s
        .app
        .call(&s.admin, Method::GET, "/api/v1/admin/sso/providers", None)
        .await;
    assert_eq!(listed[0]["has_client_secret"], true);
    assert_eq!(listed[0]["redirect_uri"], callback_of(&s.app, "acme"));
    assert!(!listed.to_string().contains(SECRET));
    let created = audit_rows(&s.app, "sso.provider_created").await;
    assert!(!created[0].summary.contains(SECRET));
    let methods: Value = s
        .app
        .client
        .get(s.app.url("/api/v1/auth/methods"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(methods["sso"][0]["slug"], "acme");
    assert_eq!(
        methods["sso"][0]["start_url"],
        "/api/v1/auth/sso/acme/start"
    );
}

#[tokio::test]
async fn the_callback_refuses_a_missing_or_foreign_state_and_another_browser() {
    let s = start().await;
    let client = warden_testkit::no_redirect_client();
    let cb = callback_of(&s.app, "acme");
    assert_eq!(
        client
            .get(format!("{cb}?code=abc"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert!(refused_with(&s.app, "missing_state").await);
    let b = browse_as(&s.app, "acme", "alice@example.com", None).await;
    let forged = b.callback.replace("state=", "state=x");
    let res = client
        .get(&forged)
        .header("cookie", &b.binding)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // Another browser (no binding cookie) cannot finish it, and the attempt is spent.
    assert_eq!(come_back(&b, false).await.status(), StatusCode::BAD_REQUEST);
    assert!(refused_with(&s.app, "browser_mismatch").await);
    assert_eq!(come_back(&b, true).await.status(), StatusCode::BAD_REQUEST);
    // Another browser's cookie neither.
    let b1 = browse_as(&s.app, "acme", "alice@example.com", None).await;
    let b2 = browse_as(&s.app, "acme", "alice@example.com", None).await;
    let swapped = Browsed {
        binding: b2.binding.clone(),
        ..b1.clone()
    };
    assert_eq!(
        come_back(&swapped, true).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(come_back(&b2, true).await.status(), StatusCode::SEE_OTHER);
    // A code from one sign-in injected into another: PKCE binds the code to its own
    // attempt, so the exchange fails.
    let first = browse_as(&s.app, "acme", "alice@example.com", None).await;
    let second = browse_as(&s.app, "acme", "alice@example.com", None).await;
    let code_of = |b: &Browsed| {
        url::Url::parse(&b.callback)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    let injected = Browsed {
        callback: second.callback.replace(&code_of(&second), &code_of(&first)),
        ..second.clone()
    };
    assert_eq!(
        come_back(&injected, true).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert!(refused_with(&s.app, "exchange_refused").await);
    // A response naming another issuer (mix-up, RFC 9207) is refused.
    let b = browse_as(&s.app, "acme", "alice@example.com", None).await;
    assert!(b.callback.contains("iss="), "{}", b.callback);
    let mixed = Browsed {
        callback: format!(
            "{}&iss=https%3A%2F%2Fevil.example",
            b.callback.split("&iss=").next().unwrap()
        ),
        ..b
    };
    assert_eq!(
        come_back(&mixed, true).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert!(refused_with(&s.app, "issuer_mismatch").await);
}

#[tokio::test]
async fn emails_are_trusted_only_verified_in_an_allowed_domain_and_never_across_providers() {
    let s = start().await;
    for (login, reason) in [
        ("bob@example.com!unverified", "email_unverified"),
        ("carol@other.example", "domain_not_allowed"),
    ] {
        let b = browse_as(&s.app, "acme", login, None).await;
        assert_eq!(
            come_back(&b, true).await.status(),
            StatusCode::BAD_REQUEST,
            "{login}"
        );
        assert!(refused_with(&s.app, reason).await, "{reason}");
    }
    // Just-in-time off: nobody new gets in.
    let (code, _) = s
        .app
        .call(
            &s.admin,
            Method::PUT,
            "/api/v1/admin/sso/providers/acme",
            Some(
                json!({"display_name": "Acme", "preset": "oidc", "issuer": s.acme.issuer,
                        "client_id": "warden", "allowed_domains": ["example.com"],
                        "allow_private_network": true}),
            ),
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    let b = browse_as(&s.app, "acme", "dave@example.com", None).await;
    assert_eq!(come_back(&b, true).await.status(), StatusCode::BAD_REQUEST);
    assert!(refused_with(&s.app, "no_account").await);

    // An existing account: not linked by email unless the provider may link.
    let (code, _) = s
        .app
        .call(
            &s.admin,
            Method::POST,
            "/api/v1/admin/users",
            Some(json!({"email": "erin@example.com", "password": "quiet harbor 4417 finch"})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    let b = browse_as(&s.app, "acme", "erin@example.com", None).await;
    assert_eq!(come_back(&b, true).await.status(), StatusCode::BAD_REQUEST);
    assert!(refused_with(&s.app, "account_not_linkable").await);

    // A hostile second provider asserting erin's (and the admin's) verified email reaches
    // neither account.
    let evil = OidcProvider::start("warden", SECRET, &callback_of(&s.app, "evil"));
    let (code, body) =
        add_provider(&s.app, &s.admin, "evil", &evil.issuer, json!({"jit": true})).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    for victim in ["erin@example.com", ADMIN_EMAIL] {
        let b = browse_as(&s.app, "evil", victim, None).await;
        let res = come_back(&b, true).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{victim}");
        assert!(cookie(&res, "__Host-warden_access").is_none());
    }

    // With linking allowed at acme, erin's verified email links her account.
    let (code, _) = s
        .app
        .call(
            &s.admin,
            Method::PUT,
            "/api/v1/admin/sso/providers/acme",
            Some(
                json!({"display_name": "Acme", "preset": "oidc", "issuer": s.acme.issuer,
                        "client_id": "warden", "allowed_domains": ["example.com"],
                        "link_by_email": true, "allow_private_network": true}),
            ),
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    let b = browse_as(&s.app, "acme", "erin@example.com", None).await;
    let res = come_back(&b, true).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let access = cookie(&res, "__Host-warden_access").unwrap();
    let (_, me) = s.app.call(&access, Method::GET, "/api/v1/me", None).await;
    assert_eq!(me["email"], "erin@example.com");
    assert_eq!(audit_rows(&s.app, "sso.identity_linked").await.len(), 1);
}

#[tokio::test]
async fn redirect_targets_and_provider_addresses_are_checked() {
    let s = start().await;
    let client = warden_testkit::no_redirect_client();
    for target in [
        "//evil.example",
        "/%5Cevil.example",
        "javascript:alert(1)",
        "%2F%2Fevil.example",
        "https://evil.example/console",
        "/elsewhere",
    ] {
        let url = format!(
            "{}?redirect={}",
            s.app.url("/api/v1/auth/sso/acme/start"),
            target.replace('/', "%2F").replace(':', "%3A")
        );
        let res = client.get(&url).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{target}");
        assert!(res.headers().get("location").is_none());
    }
    // A provider on the cloud metadata address, on loopback or in the clear is refused unless
    // the configuration says it lives on a private network.
    for issuer in [
        "https://169.254.169.254/latest",
        "http://169.254.169.254",
        &s.acme.issuer,
        "https://10.0.0.7/realms/x",
    ] {
        let (code, body) = s
            .app
            .call(
                &s.admin,
                Method::POST,
                "/api/v1/admin/sso/providers",
                Some(
                    json!({"slug": "meta", "display_name": "Meta", "preset": "oidc",
                            "issuer": issuer, "client_id": "warden"}),
                ),
            )
            .await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{issuer}: {body}");
    }
    // Presets fill in the issuer.
    let (code, body) = s
        .app
        .call(
            &s.admin,
            Method::POST,
            "/api/v1/admin/sso/providers",
            Some(
                json!({"slug": "entra", "display_name": "Microsoft", "preset": "entra",
                        "tenant": "contoso.onmicrosoft.com", "client_id": "abc"}),
            ),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["issuer"],
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0"
    );
    let (code, body) = s
        .app
        .call(
            &s.admin,
            Method::POST,
            "/api/v1/admin/sso/providers",
            Some(
                json!({"slug": "google", "display_name": "Google", "preset": "google",
                        "client_id": "abc.apps.googleusercontent.com", "jit": true,
                        "default_role": "admin"}),
            ),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(body["issuer"], "https://accounts.google.com");
}

#[tokio::test]
async fn with_passwords_off_single_sign_on_still_works() {
    let s = start().await;
    // No SMTP, no break glass: refused until an administrator can sign in through SSO.
    let off = json!({"password_sign_in": false});
    let (code, _) = s
        .app
        .call(
            &s.admin,
            Method::PUT,
            "/api/v1/admin/sign-in-policy",
            Some(off.clone()),
        )
        .await;
    assert_eq!(code, StatusCode::CONFLICT);
    let (code, _) = s
        .app
        .call(
            &s.admin,
            Method::PUT,
            "/api/v1/admin/sso/providers/acme",
            Some(
                json!({"display_name": "Acme", "preset": "oidc", "issuer": s.acme.issuer,
                        "client_id": "warden", "allowed_domains": ["example.com"], "jit": true,
                        "link_by_email": true, "allow_private_network": true}),
            ),
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    let b = browse_as(&s.app, "acme", ADMIN_EMAIL, None).await;
    assert_eq!(come_back(&b, true).await.status(), StatusCode::SEE_OTHER);
    let (code, body) = s
        .app
        .call(
            &s.admin,
            Method::PUT,
            "/api/v1/admin/sign-in-policy",
            Some(off),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, body) = s
        .app
        .call(
            &s.admin,
            Method::PUT,
            "/api/v1/admin/sign-in-policy",
            Some(json!({"password_sign_in": false, "break_glass_email": ADMIN_EMAIL})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let b = browse_as(&s.app, "acme", "frank@example.com", None).await;
    assert_eq!(come_back(&b, true).await.status(), StatusCode::SEE_OTHER);
    let (code, _) = s
        .app
        .call(
            &s.admin,
            Method::POST,
            "/api/v1/admin/users",
            Some(json!({"email": "gus@example.com", "password": "quiet harbor 4417 finch"})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    assert_eq!(
        sign_in_with(
            &s.app.client,
            &s.app,
            "gus@example.com",
            "quiet harbor 4417 finch"
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
    let _ = ADMIN_PASSWORD;
}

#[tokio::test]
async fn an_invitation_is_accepted_through_single_sign_on_for_the_invited_address_only() {
    let smtp = warden_testkit::smtp::Smtp::start().await;
    let app = warden_testkit::TestApp::spawn_with(warden_testkit::AppOptions {
        env: vec![(
            "WARDEN_SMTP_URL".to_owned(),
            format!("smtp://127.0.0.1:{}", smtp.port),
        )],
        ..Default::default()
    })
    .await
    .unwrap();
    let admin = admin_token(&app).await;
    let acme = OidcProvider::start("warden", SECRET, &callback_of(&app, "acme"));
    // No just-in-time accounts: only the invitation lets a newcomer in.
    let (code, _) = add_provider(&app, &admin, "acme", &acme.issuer, json!({})).await;
    assert_eq!(code, StatusCode::CREATED);
    let (code, _) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/admin/invitations",
            Some(json!({"email": "zoe@example.com", "platform_role": "auditor"})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    let got = smtp.wait_for(1).await;
    let link =
        warden_testkit::smtp::link_in(&warden_testkit::smtp::decoded(&got[0]), "/invitation")
            .unwrap();
    let token = link.split("token=").nth(1).unwrap().to_owned();
    // The invitation page offers the provider.
    let page = app
        .client
        .get(app.url(&format!("/invitation?token={token}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Join with acme SSO"), "{page}");
    let start = |invitation: &str| {
        format!(
            "{}?invitation={invitation}",
            app.url("/api/v1/auth/sso/acme/start")
        )
    };
    // Someone else's identity cannot take the invitation.
    let b = browse(&start(&token), &app.base, "mallory@example.com").await;
    assert_eq!(come_back(&b, true).await.status(), StatusCode::BAD_REQUEST);
    assert!(refused_with(&app, "invitation_email_mismatch").await);
    // The invited address, verified by the provider, joins with the invited role.
    let b = browse(&start(&token), &app.base, "zoe@example.com").await;
    let res = come_back(&b, true).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, users) = app
        .call(&admin, Method::GET, "/api/v1/admin/users", None)
        .await;
    let zoe = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "zoe@example.com")
        .unwrap()
        .clone();
    assert_eq!(zoe["platform_role"], "auditor");
    let (_, list) = app
        .call(&admin, Method::GET, "/api/v1/admin/invitations", None)
        .await;
    assert_eq!(list["items"][0]["status"], "accepted");
    // Spent: it starts nothing any more, and zoe signs in as herself from now on.
    let res = warden_testkit::no_redirect_client()
        .get(start(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let b = browse_as(&app, "acme", "zoe@example.com", None).await;
    assert_eq!(come_back(&b, true).await.status(), StatusCode::SEE_OTHER);
}
