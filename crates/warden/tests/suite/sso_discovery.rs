//! Home-realm discovery: an email address leads to the single sign-on providers its domain is
//! trusted with (JSON for clients, a form on the sign-in page for people), by domain alone —
//! never revealing whether an account exists — and the browser goes on to sign in there.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_testkit::TestApp;
use warden_testkit::oidc::{OidcProvider, browse};

use crate::identity::admin_token;

const SECRET: &str = "oidc-client-secret-4d2a";

async fn add(app: &TestApp, admin: &str, slug: &str, name: &str, issuer: &str, domains: Value) {
    let body = json!({
        "slug": slug, "display_name": name, "preset": "oidc", "issuer": issuer,
        "client_id": "warden", "client_secret": SECRET, "allow_private_network": true,
        "allowed_domains": domains, "jit": true,
    });
    let (code, out) = app
        .call(
            admin,
            Method::POST,
            "/api/v1/admin/sso/providers",
            Some(body),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{out}");
}

async fn discover(app: &TestApp, email: &str) -> (StatusCode, Value) {
    app.call(
        "",
        Method::POST,
        "/api/v1/auth/sso/discover",
        Some(json!({ "email": email })),
    )
    .await
}

fn slugs(v: &Value) -> Vec<&str> {
    v["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["slug"].as_str().unwrap())
        .collect()
}

async fn continue_with(app: &TestApp, query: &str) -> reqwest::Response {
    warden_testkit::no_redirect_client()
        .get(app.url(&format!("/sign-in/sso?{query}")))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_email_domain_leads_to_its_provider_and_on_to_a_signed_in_browser() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    // No provider serves a domain yet: the sign-in page has no discovery form.
    let page = reqwest::get(app.url("/sign-in"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("Continue with single sign-on"));

    let acme = OidcProvider::start("warden", SECRET, &app.url("/api/v1/auth/sso/acme/callback"));
    add(
        &app,
        &admin,
        "acme",
        "Acme",
        &acme.issuer,
        json!(["example.com", "acme.test"]),
    )
    .await;
    let page = reqwest::get(app.url("/sign-in"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Continue with single sign-on"), "{page}");

    // JSON: by domain, case-insensitively, exact domains only.
    let (code, out) = discover(&app, "  Alice@Example.COM ").await;
    assert_eq!(code, StatusCode::OK, "{out}");
    assert_eq!(slugs(&out), ["acme"]);
    assert_eq!(out["providers"][0]["name"], "Acme");
    assert_eq!(out["providers"][0]["protocol"], "oidc");
    assert_eq!(out["providers"][0]["start"], "/api/v1/auth/sso/acme/start");
    assert_eq!(slugs(&discover(&app, "bob@acme.test").await.1), ["acme"]);
    for elsewhere in [
        "bob@sub.example.com",
        "bob@example.com.evil.test",
        "bob@example.org",
    ] {
        let (code, out) = discover(&app, elsewhere).await;
        assert_eq!(code, StatusCode::OK);
        assert!(slugs(&out).is_empty(), "{elsewhere}: {out}");
    }
    // Whether an account exists changes nothing: the administrator's own address (an account)
    // and a stranger's at the same domain get the same answer.
    let (_, known) = discover(&app, crate::identity::ADMIN_EMAIL).await;
    let domain = crate::identity::ADMIN_EMAIL.rsplit_once('@').unwrap().1;
    let (_, unknown) = discover(&app, &format!("nobody-here-7f3a@{domain}")).await;
    assert_eq!(known, unknown);
    // Not an address: 422 on the field; unknown fields refused.
    for bad in ["example.com", "@example.com", "a b@example.com", ""] {
        let (code, out) = discover(&app, bad).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {out}");
        assert_eq!(out["field"], "email", "{out}");
    }
    let (code, _) = app
        .call(
            "",
            Method::POST,
            "/api/v1/auth/sso/discover",
            Some(json!({"email": "a@example.com", "domain": "acme.test"})),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);

    // The page (the form without script): one provider → its link, keeping a safe `next`.
    let res = continue_with(&app, "email=carol%40example.com&next=%2Fconsole%2Fhome").await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    let to = "/api/v1/auth/sso/acme/start?redirect=%2Fconsole%2Fhome";
    assert!(text.contains(&format!("href=\"{to}\"")), "{text}");
    // …an unsafe one becomes the console.
    let res = continue_with(&app, "email=carol%40example.com&next=%2F%2Fevil.test").await;
    let text = res.text().await.unwrap();
    assert!(
        text.contains("href=\"/api/v1/auth/sso/acme/start?redirect=%2Fconsole\"")
            && !text.contains("evil"),
        "{text}"
    );
    // …and the browser signs in there and lands where it asked.
    let b = browse(&app.url(to), &app.base, "carol@example.com").await;
    let back = warden_testkit::no_redirect_client()
        .get(&b.callback)
        .header("cookie", &b.binding)
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    assert_eq!(back.headers()["location"], "/console/home");

    // No provider for the domain: says so (the domain escaped), with the way back.
    let res = continue_with(&app, "email=dan%40%3Cb%3Eevil.test").await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    assert!(text.contains("No single sign-on is set up for"), "{text}");
    assert!(
        text.contains("&lt;b&gt;evil.test") && !text.contains("<b>evil"),
        "{text}"
    );
    // Not an address: 422, on a page.
    let res = continue_with(&app, "email=nobody").await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Two providers trusted for one domain (say, during a move between them): a choice.
    let beta = OidcProvider::start("warden", SECRET, &app.url("/api/v1/auth/sso/beta/callback"));
    add(
        &app,
        &admin,
        "beta",
        "Beta",
        &beta.issuer,
        json!(["example.com"]),
    )
    .await;
    let (_, out) = discover(&app, "erin@example.com").await;
    assert_eq!(slugs(&out), ["acme", "beta"]);
    assert_eq!(slugs(&discover(&app, "erin@acme.test").await.1), ["acme"]);
    let res = continue_with(&app, "email=erin%40example.com").await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    assert!(
        text.contains("/api/v1/auth/sso/acme/start?redirect=%2Fconsole")
            && text.contains("/api/v1/auth/sso/beta/start?redirect=%2Fconsole"),
        "{text}"
    );
}
