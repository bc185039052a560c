//! Every route declares who may call it; a route that declares nothing refuses everyone.

use axum::routing::get;
use serde_json::Value;
use utoipa_axum::routes;
use warden_domain::access::Access;
use warden_server::http::routes::Routes;
use warden_testkit::{AppOptions, TestApp};

/// DESIGN.md's list of public routes: nothing else may be `Access::Public`.
const PUBLIC_ALLOWED: &[&str] = &[
    "/healthz",
    "/readyz",
    "/.well-known/jwks.json",
    "/api/v1/openapi.json",
    "/api/v1/auth/",
    // First-run setup of the first administrator: part of signing in; it refuses (410)
    // once an administrator exists, and the one-time link is its credential.
    "/setup",
    "/webhooks/",
    "/api/v1/license",
];

#[tokio::test]
async fn every_served_route_declares_an_access_rule_and_appears_in_the_openapi_document() {
    let app = TestApp::spawn().await.unwrap();
    let doc: Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    documented.sort();

    let routes = warden_server::api::routes();
    let (_, _, table) = routes.into_parts();
    let mut declared: Vec<(String, String)> = table
        .entries()
        .map(|(m, p, _)| (m.to_owned(), p.to_owned()))
        .collect();
    declared.sort();
    assert_eq!(declared, documented, "router and OpenAPI document disagree");
    assert!(declared.contains(&("GET".into(), "/healthz".into())));
    assert!(declared.contains(&("GET".into(), "/readyz".into())));
    assert!(declared.contains(&("GET".into(), "/api/v1/openapi.json".into())));

    for (method, path, rule) in table.entries() {
        if rule == Access::Public {
            assert!(
                PUBLIC_ALLOWED
                    .iter()
                    .any(|p| path == *p || (p.ends_with('/') && path.starts_with(p))),
                "{method} {path} is public but not on DESIGN.md's public list"
            );
        }
    }
}

/// A route that needs a signed-in principal.
#[utoipa::path(get, path = "/api/v1/test/me", responses((status = 200, description = "me")))]
async fn me() -> &'static str {
    "you are in"
}

#[tokio::test]
async fn a_route_without_a_declared_rule_refuses_every_request() {
    let undeclared =
        axum::Router::new().route("/api/v1/test/undeclared", get(|| async { "leaked" }));
    let app = TestApp::spawn_with(AppOptions {
        extra_routes: Routes::new().merge_undeclared(undeclared),
        ..AppOptions::default()
    })
    .await
    .unwrap();
    for auth in [None, Some("Bearer anything")] {
        let mut req = app.client.get(app.url("/api/v1/test/undeclared"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 403);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        assert!(!res.text().await.unwrap().contains("leaked"));
    }
}

#[tokio::test]
async fn a_signed_in_route_answers_401_to_an_anonymous_or_forged_caller() {
    let app = TestApp::spawn_with(AppOptions {
        extra_routes: Routes::new().add(Access::SignedIn, routes!(me)),
        ..AppOptions::default()
    })
    .await
    .unwrap();
    for auth in [
        None,
        Some("Bearer eyJhbGciOiJub25lIn0.e30."),
        Some("Basic YTpi"),
    ] {
        let mut req = app.client.get(app.url("/api/v1/test/me"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401);
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "unauthenticated");
    }
}
