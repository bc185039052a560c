//! The whole API against its own OpenAPI document, judged by `schemathesis` (PyPI): every
//! documented operation is called with generated valid and invalid requests — as a platform
//! administrator, a workspace member and a workspace viewer (each signed in with a bearer
//! token, signing in again when a generated request ended its own session), and with no
//! credentials at all (the public routes and the console). Any 5xx, any status code the
//! document does not list, any body or header that does not match it, an accepted request the
//! schema forbids, a secured route answering without credentials: the test fails. Where the
//! document lied, the document was fixed, not this test.
//!
//! Left out on purpose: `positive_data_acceptance` (it expects every schema-valid body to be
//! accepted, which cannot hold for references to things that do not exist — ids, permission
//! names; those answers are documented 404/409/422 and checked as such).
//! `WARDEN_SCHEMATHESIS_EXAMPLES` and `WARDEN_SCHEMATHESIS_SEED` widen a long run.

use std::path::Path;
use std::process::Stdio;

use reqwest::{Method, StatusCode};
use serde_json::json;
use warden_testkit::TestApp;

use crate::identity::{ADMIN_EMAIL, ADMIN_PASSWORD, admin_token};

const PASSWORD: &str = "quiet harbor 4417 finch";

/// Cases per operation and role; `WARDEN_SCHEMATHESIS_EXAMPLES` raises it for long runs.
const EXAMPLES: &str = "12";

async fn user(app: &TestApp, admin: &str, email: &str) {
    let (status, body) = app
        .call(
            admin,
            Method::POST,
            "/api/v1/admin/users",
            Some(json!({"email": email, "password": PASSWORD, "platform_role": "member"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn member(app: &TestApp, admin: &str, ws: &str, email: &str, role: &str) {
    let (status, body) = app
        .call(
            admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/members"),
            Some(json!({"email": email, "role": role})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// The run's configuration: real ids for path parameters most of the time (so requests reach
/// past the access guard), generated ones otherwise.
/// `login`: the role's email and password; the run signs in with it (and again whenever a request it made
/// ended its own session, such as revoking its own device).
fn config(dir: &Path, ws: &str, role: &str, login: Option<(&str, &str)>) -> std::path::PathBuf {
    let path = dir.join(format!("{role}.toml"));
    let auth = match login {
        Some((email, password)) => format!(
            r#"
[auth.dynamic.openapi.user]
path = "/api/v1/auth/sign-in"
payload = {{ email = "{email}", password = "{password}" }}
extract_selector = "/access_token"
retry_on = [401]
"#
        ),
        None => String::new(),
    };
    let text = format!(
        r#"
# Console forms are described as opaque form bodies: generating them trips this health check.
suppress-health-check = ["filter_too_much"]
# Redirects are answers to judge, not to follow.
max-redirects = 0

[dictionaries]
workspaces = {{ values = ["{ws}"] }}

[parameters]
"path.workspace_id" = {{ dictionary = "workspaces", probability = 0.8 }}

[generation]
allow-x00 = true

# The host routes throttle failed host-key attempts per address: after the run's earlier ones,
# a request without a key is answered 429 (documented), where this check insists on 401.
[[operations]]
include-path-regex = "^/api/v1/agent/"
checks.missing_required_header.enabled = false

# Without a session the console sends the browser to sign in before it reads the form.
[[operations]]
include-path-regex = "^/console(/|$)"
checks.negative_data_rejection.expected-statuses = [303, 400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
{auth}"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs schemathesis as `role` (`login` `None`: no credentials); true when it found nothing.
async fn judge(
    app: &TestApp,
    dir: &Path,
    ws: &str,
    role: &str,
    login: Option<(&str, &str)>,
    report: &Path,
) -> bool {
    let config = config(dir, ws, role, login);
    let python = std::env::var("WARDEN_TEST_PYTHON")
        .expect("WARDEN_TEST_PYTHON is not set: run the suite through scripts/test");
    let examples =
        std::env::var("WARDEN_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| EXAMPLES.to_owned());
    let seed = std::env::var("WARDEN_SCHEMATHESIS_SEED").unwrap_or_else(|_| "1".to_owned());
    let cli = Path::new(&python).with_file_name("schemathesis");
    let mut run = tokio::process::Command::new(cli);
    run.arg("--config-file")
        .arg(config)
        .arg("run")
        .arg(app.url("/api/v1/openapi.json"))
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        // One worker: CPython 3.11 compiles patterns with a recursion counter that two threads
        // can corrupt ("AST constructor recursion depth mismatch").
        .args([
            "--max-examples",
            &examples,
            "--seed",
            &seed,
            "--workers",
            "1",
        ])
        .args(["--report", "junit,ndjson", "--report-dir"])
        .arg(report.join(role))
        // Its example cache (`.schemathesis/`, replayed crashes included) lives and dies with
        // the run, so every run starts from the seed alone.
        .current_dir(dir)
        .stdin(Stdio::null());
    if role == "password" {
        // Each wrong current password counts against the account as a failed sign-in; judged
        // on its own, so the throttle it earns cannot lock the member's run out.
        run.args(["--include-path", "/api/v1/me/password"]);
    } else if login.is_some() {
        // A role's run judges what a person's bearer token reaches. Public routes answer
        // alike whoever calls (the anonymous run judges them, and their failed sign-ins would
        // get this address throttled before the run signs in again), and the console takes
        // a cookie session with CSRF fields, not a bearer token.
        run.args(["--include-by", "/security/0/user == []"])
            .args(["--exclude-path", "/api/v1/me/password"]);
    }
    if role == "admin" {
        // Archiving the judged workspace early would leave the rest of the run facing a
        // read-only workspace (409 for every change); archiving is the tenancy tests' subject.
        run.args([
            "--exclude-path",
            "/api/v1/workspaces/{workspace_id}/archive",
        ]);
    }
    let status = run.status().await.unwrap();
    status.success()
}

/// A server with a workspace, an administrator, a member and a viewer; returns the workspace.
async fn judged_server() -> (TestApp, String) {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let (status, ws) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/workspaces",
            Some(json!({"name": "judged"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ws}");
    let ws = ws["id"].as_str().unwrap().to_owned();
    user(&app, &admin, "member@example.com").await;
    user(&app, &admin, "viewer@example.com").await;
    member(&app, &admin, &ws, "member@example.com", "member").await;
    member(&app, &admin, &ws, "viewer@example.com", "viewer").await;
    (app, ws)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_operation_answers_as_documented_for_admin_member_and_viewer() {
    let dir = tempfile::tempdir().unwrap();
    let reports = std::env::var_os("WARDEN_SCHEMATHESIS_REPORTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().to_owned());
    let mut failed = Vec::new();
    // Each role on a server of its own. Schemathesis reuses ids it has seen in answers, so
    // an administrator's run reaches the other accounts: on one shared server it promoted
    // the member to administrator (the member's run then judged an administrator) and
    // deactivated the viewer (whose run could no longer sign in).
    for (role, login) in [
        ("admin", Some((ADMIN_EMAIL, ADMIN_PASSWORD))),
        ("member", Some(("member@example.com", PASSWORD))),
        ("viewer", Some(("viewer@example.com", PASSWORD))),
        ("password", Some(("member@example.com", PASSWORD))),
        ("anonymous", None),
    ] {
        let (app, ws) = judged_server().await;
        if !judge(&app, dir.path(), &ws, role, login, &reports).await {
            explain_sign_in_trouble(&app).await;
            failed.push(role);
        }
    }
    assert!(failed.is_empty(), "schemathesis failed as {failed:?}");
}

/// Prints what the audit log says about sign-ins that did not succeed and about changes to
/// who may sign in: when a role's run cannot fetch its token again ("Token fetch failed"),
/// this says why (throttled, password sign-in off, account changed) in the CI log.
async fn explain_sign_in_trouble(app: &TestApp) {
    let rows = warden_store::audit::newest(
        app.server.store(),
        &app.server.state().ctx.audit_key,
        100_000,
    )
    .await
    .unwrap();
    let telling = rows.iter().filter(|r| {
        let ours = [ADMIN_EMAIL, "member@example.com", "viewer@example.com"]
            .iter()
            .any(|e| r.summary.contains(e));
        (r.action == "auth.sign_in" && r.outcome != "success" && ours)
            || r.action.contains("policy")
            || r.action.starts_with("user.")
            || r.action.starts_with("admin.user")
    });
    for r in telling.take(40) {
        eprintln!(
            "audit #{} {} {} {} {:?}",
            r.seq, r.occurred_at_us, r.action, r.outcome, r.summary
        );
    }
}
