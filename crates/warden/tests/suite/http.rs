//! The HTTP stack as a client sees it: headers, request ids, limits and problem documents.

use std::time::Duration;

use axum::http::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use utoipa_axum::routes;
use warden_domain::access::Access;
use warden_server::http::json::ApiJson;
use warden_server::http::problem::ApiError;
use warden_server::http::routes::Routes;
use warden_server::state::AppState;
use warden_testkit::{AppOptions, TestApp};

const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
];

#[derive(serde::Deserialize, utoipa::ToSchema)]
pub(crate) struct EchoInput {
    name: String,
    count: u32,
}

/// Echoes its JSON input: a stand-in for the API's JSON routes.
#[utoipa::path(post, path = "/api/v1/test/echo", request_body = EchoInput,
    responses((status = 200, description = "echo")))]
pub(crate) async fn echo(ApiJson(input): ApiJson<EchoInput>) -> axum::Json<Value> {
    axum::Json(json!({ "name": input.name, "count": input.count }))
}

/// Fails the way a database error would, with internals in the cause.
#[utoipa::path(get, path = "/api/v1/test/fail", responses((status = 500, description = "fails")))]
pub(crate) async fn fail() -> Result<(), ApiError> {
    Err(ApiError::internal(
        &"error returned from database: relation \"users\" does not exist; SELECT password_hash FROM users",
    ))
}

/// Panics with a message that must not reach the client.
#[utoipa::path(get, path = "/api/v1/test/panic", responses((status = 500, description = "panics")))]
#[allow(clippy::panic)]
pub(crate) async fn boom() -> &'static str {
    panic!("secret-token-in-panic at src/whatever.rs:12")
}

/// Takes a while.
#[utoipa::path(get, path = "/api/v1/test/slow", responses((status = 200, description = "slow")))]
pub(crate) async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    "done"
}

pub(crate) fn test_routes() -> Routes<AppState> {
    Routes::new()
        .add(Access::Public, routes!(echo))
        .add(Access::Public, routes!(fail))
        .add(Access::Public, routes!(boom))
        .add(Access::Public, routes!(slow))
}

async fn app_with_test_routes(env: &[(&str, &str)]) -> TestApp {
    TestApp::spawn_with(AppOptions {
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        extra_routes: test_routes(),
        ..AppOptions::default()
    })
    .await
    .unwrap()
}

async fn problem(res: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status.as_u16());
    assert_eq!(
        res.headers()[CONTENT_TYPE].to_str().unwrap(),
        "application/problem+json"
    );
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    assert_eq!(body["code"], code);
    assert_eq!(body["type"], format!("urn:warden:problem:{code}"));
    assert_eq!(body["request_id"], id);
    body
}

fn assert_no_internals(body: &Value) {
    let text = body.to_string().to_lowercase();
    for leak in [
        "select",
        "relation",
        "database",
        "panicked",
        "secret",
        ".rs",
        "serde",
        "failed to",
        "invalid type",
        "missing field",
        "u32",
        "line 1",
    ] {
        assert!(!text.contains(leak), "{leak:?} leaked in {text}");
    }
}

#[tokio::test]
async fn healthz_answers_ok_with_every_security_header() {
    let app = TestApp::spawn().await.unwrap();
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(res.headers()[*name], *value, "{name}");
    }
    assert!(res.headers().get("strict-transport-security").is_none());
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_reports_the_backend_and_schema_version() {
    let app = TestApp::spawn().await.unwrap();
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["database"]["backend"], app.db.backend.name());
    assert_eq!(
        body["database"]["schema_version"],
        warden_store::latest_schema_version()
    );
}

#[tokio::test]
async fn readyz_answers_503_once_the_database_is_gone() {
    let app = TestApp::spawn().await.unwrap();
    app.server.store().close().await;
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    let body = problem(res, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    assert_no_internals(&body);
}

#[tokio::test]
async fn a_well_formed_request_id_is_kept_and_a_malformed_one_replaced() {
    let app = TestApp::spawn().await.unwrap();
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "client-trace:42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "client-trace:42");

    for bad in ["has space", "<script>", &"a".repeat(65)] {
        let res = app
            .client
            .get(app.url("/nowhere"))
            .header("x-request-id", bad)
            .send()
            .await
            .unwrap();
        let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_ne!(id, bad);
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        let body = problem(res, StatusCode::NOT_FOUND, "not-found").await;
        assert_eq!(body["request_id"], id);
    }

    let a = app.client.get(app.url("/healthz")).send().await.unwrap();
    let b = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_ne!(a.headers()["x-request-id"], b.headers()["x-request-id"]);
}

#[tokio::test]
async fn an_unknown_route_is_a_404_problem_with_security_headers() {
    let app = TestApp::spawn().await.unwrap();
    let res = app
        .client
        .get(app.url("/api/v1/../../etc/passwd"))
        .send()
        .await
        .unwrap();
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(res.headers()[*name], *value, "{name}");
    }
    let body = problem(res, StatusCode::NOT_FOUND, "not-found").await;
    assert_no_internals(&body);
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem_naming_the_allowed_ones() {
    let app = TestApp::spawn().await.unwrap();
    let res = app.client.delete(app.url("/healthz")).send().await.unwrap();
    let allow = res.headers()["allow"].to_str().unwrap().to_owned();
    assert!(allow.contains("GET"), "{allow}");
    problem(res, StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed").await;
}

#[tokio::test]
async fn json_bodies_are_accepted_when_well_formed() {
    let app = app_with_test_routes(&[]).await;
    let res = app
        .client
        .post(app.url("/api/v1/test/echo"))
        .json(&json!({"name": "a", "count": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"name": "a", "count": 2})
    );
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413() {
    let app = app_with_test_routes(&[("WARDEN_HTTP_BODY_LIMIT_BYTES", "1024")]).await;
    let big = json!({"name": "x".repeat(4096), "count": 1});
    let res = app
        .client
        .post(app.url("/api/v1/test/echo"))
        .json(&big)
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large").await;

    // Without a Content-Length (chunked), the limit holds while reading.
    let stream = futures_stream(vec![vec![b' '; 800], vec![b' '; 800]]);
    let res = app
        .client
        .post(app.url("/api/v1/test/echo"))
        .header(CONTENT_TYPE, "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large").await;
}

fn futures_stream(
    chunks: Vec<Vec<u8>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::iter(chunks.into_iter().map(Ok))
}

#[tokio::test]
async fn a_body_that_is_not_declared_json_is_refused_with_415() {
    let app = app_with_test_routes(&[]).await;
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut req = app
            .client
            .post(app.url("/api/v1/test/echo"))
            .body(r#"{"name":"a","count":1}"#);
        if let Some(ct) = ct {
            req = req.header(CONTENT_TYPE, ct);
        }
        let res = req.send().await.unwrap();
        problem(
            res,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
        )
        .await;
    }
}

#[tokio::test]
async fn malformed_json_is_a_400_and_the_wrong_shape_a_422_without_echoing_input() {
    let app = app_with_test_routes(&[]).await;
    let send = |body: &'static str| {
        app.client
            .post(app.url("/api/v1/test/echo"))
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
    };
    let body = problem(
        send("{\"name\": \"secret-typo").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "bad-request",
    )
    .await;
    assert_no_internals(&body);
    // Each wrong shape names the field (a JSON pointer) and what was expected, never the
    // value sent.
    for (wrong, pointer, reason) in [
        (r#"{"name":"a"}"#, "/count", "is required"),
        (
            r#"{"name":"a","count":"secret-value"}"#,
            "/count",
            "expected a whole number, 0 or more",
        ),
        (r#"{"name":1,"count":1}"#, "/name", "expected a string"),
        (
            r#"{"name":"a","count":-7}"#,
            "/count",
            "expected a whole number, 0 or more",
        ),
    ] {
        let body = problem(
            send(wrong).await.unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable-content",
        )
        .await;
        assert_no_internals(&body);
        assert_eq!(
            body["errors"],
            json!([{"pointer": pointer, "reason": reason}]),
            "{wrong}: {body}"
        );
        // (Not "-7" anywhere: the request id is a UUIDv7.)
        assert!(
            !body.to_string().contains("secret-value")
                && !body["errors"].to_string().contains("-7")
        );
    }
    let body = problem(
        send("[]").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable-content",
    )
    .await;
    assert_no_internals(&body);
}

#[tokio::test]
async fn an_internal_error_shows_the_client_only_a_generic_problem() {
    let app = app_with_test_routes(&[]).await;
    let res = app
        .client
        .get(app.url("/api/v1/test/fail"))
        .send()
        .await
        .unwrap();
    let body = problem(res, StatusCode::INTERNAL_SERVER_ERROR, "internal").await;
    assert_no_internals(&body);
}

#[tokio::test]
async fn a_panicking_handler_answers_500_without_the_panic_message() {
    let app = app_with_test_routes(&[]).await;
    let res = app
        .client
        .get(app.url("/api/v1/test/panic"))
        .send()
        .await
        .unwrap();
    let body = problem(res, StatusCode::INTERNAL_SERVER_ERROR, "internal").await;
    assert_no_internals(&body);
    // The server keeps serving.
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_request_that_outlives_the_timeout_is_answered_408() {
    let app = app_with_test_routes(&[("WARDEN_HTTP_REQUEST_TIMEOUT_SECS", "1")]).await;
    let res = app
        .client
        .get(app.url("/api/v1/test/slow"))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::REQUEST_TIMEOUT, "request-timeout").await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish_and_then_refuses_connections() {
    let app = app_with_test_routes(&[]).await;
    let url = app.url("/api/v1/test/slow");
    let client = app.client.clone();
    let in_flight = tokio::spawn(async move { client.get(url).send().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let base = app.base.clone();
    app.server.shutdown().await.unwrap();
    let res = in_flight.await.unwrap().unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "done");
    let fresh = reqwest::Client::builder().no_proxy().build().unwrap();
    assert!(fresh.get(format!("{base}/healthz")).send().await.is_err());
}
