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
    // Prometheus scrapes hold no Warden account: the metrics token (metrics.token_file) is
    // the endpoint's own credential, and it answers 404 while metrics are off.
    "/metrics",
    "/.well-known/jwks.json",
    "/api/v1/openapi.json",
    "/api/v1/auth/",
    // First-run setup of the first administrator: part of signing in; it refuses (410)
    // once an administrator exists, and the one-time link is its credential.
    "/setup",
    // The pages emailed links open (magic sign-in, password reset, invitation): the link's
    // single-use token is their credential, and their forms accept same-origin posts only.
    "/sign-in/link",
    "/reset-password",
    "/invitation",
    // Where a single sign-on that named no destination ends (a static page).
    "/sso/signed-in",
    // The device verification page: it answers anyone, but shows and decides a code only
    // for a signed-in browser session (cookie), by a same-origin form with its CSRF field.
    "/device",
    // The passkey pages: static HTML and script; what they do goes through the API.
    "/sign-in",
    // The sign-in page's "email me a link" form: the same request as the public
    // /api/v1/auth/magic-link and password-reset routes, answered alike for every address and
    // throttled per address and client.
    "/sign-in/email",
    // The sign-in page's "continue with single sign-on" form: the same answer as the public
    // /api/v1/auth/sso/discover, from the email's domain alone (links to providers, no state).
    "/sign-in/sso",
    "/account/passkeys",
    "/assets/",
    "/webhooks/",
    "/api/v1/license",
    // Node-to-node relays: a node holds no account; the body is its own credential (sealed
    // with the installation's keyring for this one node, fresh, accepted once), and anything
    // else is 403 (crates/warden-agent/tests/cluster.rs attacks it).
    "/internal/v1/relay",
];

#[tokio::test]
async fn every_served_route_declares_an_access_rule_and_appears_in_the_openapi_document() {
    let app = TestApp::spawn().await.unwrap();
    let doc = app.openapi().await.unwrap();
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

/// The document declares what the server enforces, so a generated client expects it: the
/// problem document for every error, the body, query and access answers, and the parameter
/// limits and enumerations the server checks.
#[tokio::test]
async fn the_openapi_document_declares_enforced_statuses_and_constraints() {
    let app = TestApp::spawn().await.unwrap();
    let doc = app.openapi().await.unwrap();
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    let problem_of = |op: &Value, status: &str| -> bool {
        // Inline, or a reference to a shared response.
        let mut response = &op["responses"][status];
        if let Some(r) = response["$ref"].as_str() {
            let name = r.strip_prefix("#/components/responses/").unwrap();
            response = &doc["components"]["responses"][name];
        }
        response["content"]["application/problem+json"]["schema"]["$ref"]
            .as_str()
            .is_some_and(|r| r.ends_with("/Problem"))
    };
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let at = format!("{method} {path}");
            // The LLM gateway answers its OpenAI and Anthropic clients in their own error
            // formats, declared on each of its routes.
            if path.starts_with("/llm/") {
                assert!(op["responses"]["401"].is_object(), "{at}: no 401");
                continue;
            }
            // SCIM answers its directories in SCIM's error format.
            if path.starts_with("/scim/") {
                for s in ["401", "500"] {
                    let mut r = &op["responses"][s];
                    if let Some(name) = r["$ref"].as_str() {
                        let name = name.strip_prefix("#/components/responses/").unwrap();
                        r = &doc["components"]["responses"][name];
                    }
                    assert!(
                        r["content"]["application/scim+json"].is_object(),
                        "{at}: no SCIM {s}"
                    );
                }
                checked += 1;
                continue;
            }
            // The console answers a browser: pages, and the way to sign in.
            if path == "/console" || path.starts_with("/console/") {
                let page = |s: &str| op["responses"][s].is_object();
                assert!(page("500"), "{at}: no 500");
                if path.contains("{workspace_id}") {
                    for s in ["303", "403", "404"] {
                        assert!(page(s), "{at}: no {s}");
                    }
                }
                checked += 1;
                continue;
            }
            assert!(problem_of(op, "500"), "{at}: no 500");
            // (The first-run setup page is an HTML form, not part of the JSON API.)
            if op.get("requestBody").is_some() && path.starts_with("/api/") {
                for s in ["400", "413", "415", "422"] {
                    assert!(problem_of(op, s), "{at}: no {s}");
                }
            }
            if path.contains("{workspace_id}") {
                for s in ["401", "403", "404"] {
                    assert!(problem_of(op, s), "{at}: no {s}");
                }
            }
            if path.starts_with("/api/v1/admin/") {
                assert!(problem_of(op, "403"), "{at}: no 403");
            }
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked} operations");
    let sign_in = &doc["paths"]["/api/v1/auth/sign-in"]["post"];
    assert!(problem_of(sign_in, "429") && problem_of(sign_in, "503"));
    // Parameter limits and enumerations.
    let param = |path: &str, name: &str| -> Value {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{path} has no {name}"))["schema"]
            .clone()
    };
    for (path, max) in [("/api/v1/admin/users", 200), ("/api/v1/workspaces", 200)] {
        let limit = param(path, "limit");
        assert_eq!(limit["minimum"], 1, "{path}: {limit}");
        assert_eq!(limit["maximum"], max, "{path}: {limit}");
    }
    // The audit trail answers a larger page with its largest (500): no maximum to refuse.
    let limit = param("/api/v1/audit/events", "limit");
    assert_eq!(limit["minimum"], 1, "{limit}");
    assert!(limit.get("maximum").is_none(), "{limit}");
    let kinds = param("/api/v1/audit/events", "actor_kind").to_string();
    for k in ["user", "host", "api_key", "system"] {
        assert!(kinds.contains(&format!("\"{k}\"")), "{kinds}");
    }
    let outcome = param("/api/v1/audit/events", "outcome").to_string();
    assert!(outcome.contains("\"denied\""), "{outcome}");
}
