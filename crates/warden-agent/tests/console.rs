//! The console's workspace and session pages end to end, with the real `warden-agent`: a
//! workspace created and set up through its forms (repository, a variable, a provider key —
//! shown as "set", never as values), a host approved, a session started from a prompt form
//! whose provider prints terminal escapes and markup (shown as plain, inert text), a file
//! opened and edited in the worktree, the diff, the close. A member of another workspace
//! reaches none of it (404 pages), and no form works without the session's CSRF field and
//! Warden's own origin.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_testkit::TestApp;
use warden_testkit::browser::{Browser, hidden};

const EMAIL: &str = "ops@example.com";
const PASSWORD: &str = "violet tractor 93 lagoon";
const OUTSIDER: &str = "outsider@example.com";
/// A workspace name that would run, break out of an attribute, or be evaluated by a
/// template engine if it were not escaped.
const HOSTILE: &str = "Alpha <script>alert(1)</script>\"><img src=x onerror=alert(2)> {{7*7}}";

async fn ok(app: &TestApp, token: &str, method: Method, path: &str, body: Option<Value>) -> Value {
    app.ok(token, method, path, body).await
}

fn repo(dir: &Path) {
    warden_testkit::git_repo(dir);
}

/// Opens `path` (200) and returns the page with its CSRF field.
async fn open(browser: &Browser, path: &str) -> (String, String) {
    let (status, page) = browser.get(path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {page}");
    let csrf = hidden(&page, "csrf").unwrap_or_default();
    (page, csrf)
}

async fn wait_ended(app: &TestApp, token: &str, ws: &str, id: &str) -> Value {
    for _ in 0..300 {
        let s = ok(
            app,
            token,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/sessions/{id}"),
            None,
        )
        .await;
        if !matches!(s["status"].as_str(), Some("waiting" | "running")) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the session did not end");
}

#[tokio::test]
async fn a_workspace_is_set_up_and_a_session_run_edited_and_closed_from_the_console() {
    warden_testkit::install_crypto_provider();
    let app = TestApp::spawn().await.unwrap();
    let admin = app.first_admin(EMAIL, PASSWORD).await.unwrap();
    let browser = Browser::signed_in(&app, &admin);
    let root = tempfile::tempdir().unwrap();
    repo(&root.path().join("repo"));

    // A workspace, created by its form: the owner lands on its settings.
    let (page, csrf) = open(&browser, "/console/workspaces").await;
    assert!(page.contains("New workspace"), "{page}");
    let to = browser
        .submit("/console/workspaces", &[("csrf", &csrf), ("name", HOSTILE)])
        .await;
    let ws = to.split('/').nth(3).unwrap().to_owned();
    assert_eq!(
        to,
        format!("/console/workspaces/{ws}/settings?done=workspace-created")
    );
    let (page, csrf) = open(&browser, &to).await;
    assert!(page.contains("The workspace is created"), "{page}");
    assert!(!page.contains("<script>alert") && !page.contains("<img src=x"));
    assert!(page.contains("&#60;script&#62;") && page.contains("{{7*7}}"));
    let settings = format!("/console/workspaces/{ws}");
    let repo_path = root.path().join("repo").display().to_string();
    browser
        .submit(
            &format!("{settings}/settings"),
            &[
                ("csrf", &csrf),
                ("repository", &repo_path),
                ("pre_session", "echo pre-hook-ran\r\n"),
                ("post_session", ""),
            ],
        )
        .await;
    for (kind, name, value) in [
        ("variable", "GREETING", "hello-from-the-workspace"),
        ("provider", "claude-code", "sk-ant-console-0123456789"),
        ("pat", "", "ghp_consolePatValue0123456789"),
    ] {
        let to = browser
            .submit(
                &format!("{settings}/secrets"),
                &[
                    ("csrf", &csrf),
                    ("kind", kind),
                    ("name", name),
                    ("value", value),
                ],
            )
            .await;
        assert!(to.ends_with("?done=secret-set"), "{to}");
    }
    let (page, _) = open(&browser, &format!("{settings}/settings")).await;
    assert!(page.contains(&repo_path) && page.contains("echo pre-hook-ran"));
    assert!(page.contains("<code>GREETING</code> <span class=\"tag\">set</span>"));
    assert!(page.contains("claude-code</strong> <span class=\"tag\">set</span>"));
    assert!(page.contains(&format!("by {EMAIL}")), "{page}");
    for secret in [
        "hello-from-the-workspace",
        "sk-ant-console",
        "ghp_consolePat",
    ] {
        assert!(!page.contains(secret), "a write-only value was shown");
    }
    // A form without the CSRF field, or from another origin, changes nothing.
    let (status, _) = browser
        .post(
            &format!("{settings}/secrets/remove"),
            &[("kind", "variable"), ("name", "GREETING")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut evil = browser.clone();
    evil.origin = "https://evil.example".to_owned();
    let (status, _) = evil
        .post(
            &format!("{settings}/secrets/remove"),
            &[("csrf", &csrf), ("kind", "variable"), ("name", "GREETING")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A bad value is refused with the reason, on a page.
    let (status, page) = browser
        .post(
            &format!("{settings}/settings"),
            &[
                ("csrf", &csrf),
                ("repository", "https://user:pw@git.example/r"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.contains("repository: the URL must not carry credentials"),
        "{page}"
    );
    assert!(!page.contains("user:pw"), "the value sent is not echoed");

    // A host, approved from the console, and the real agent on it.
    let created = ok(
        &app,
        &admin,
        Method::POST,
        "/api/v1/hosts",
        Some(json!({"name": "runner", "kind": "session"})),
    )
    .await;
    let host = created["host"]["id"].as_str().unwrap().to_owned();
    let _agent = warden_testkit::agent::start(
        env!("CARGO_BIN_EXE_warden-agent"),
        &app,
        created["api_key"].as_str().unwrap(),
        &root.path().join("agent-data"),
    );
    warden_testkit::agent::wait_online(&app, &admin, &host).await;
    let (home, _) = open(&browser, "/console").await;
    assert!(
        home.contains("Host runner waits for your approval"),
        "{home}"
    );
    // Connected while waiting for approval; approved from the console, it takes work at once.
    let (page, csrf) = open(&browser, "/console/hosts").await;
    assert!(
        page.contains("Waiting for approval") && page.contains("online"),
        "{page}"
    );
    browser
        .submit(
            &format!("/console/hosts/{host}/approve"),
            &[("csrf", &csrf)],
        )
        .await;

    // A session from the prompt form; its provider prints colours, markup and the secret.
    let (page, csrf) = open(&browser, &settings).await;
    assert!(page.contains("Start a session"), "{page}");
    let script = "printf '\\033[31mred\\033[0m <b>bold</b> <script>alert(3)</script>\\n'; \
                  echo \"says-$GREETING\"; echo notes > notes.txt";
    let to = browser
        .submit(
            &format!("{settings}/sessions"),
            &[
                ("csrf", &csrf),
                ("provider", "command"),
                ("prompt", "tidy the README"),
                ("mode", "chat"),
                ("command", &format!("sh\r\n-c\r\n{script}\r\n")),
            ],
        )
        .await;
    let id = to.rsplit('/').next().unwrap().to_owned();
    assert_eq!(to, format!("{settings}/sessions/{id}"));
    let ended = wait_ended(&app, &admin, &ws, &id).await;
    assert_eq!(ended["status"], "done", "{ended}");
    let (page, csrf) = open(&browser, &to).await;
    assert!(page.contains("red &#60;b&#62;bold&#60;/b&#62;"), "{page}");
    assert!(!page.contains('\u{1b}'), "terminal escapes are removed");
    assert!(!page.contains("<b>bold") && !page.contains("<script>alert(3)"));
    assert!(page.contains("says-***"), "the secret is masked: {page}");
    assert!(page.contains("tidy the README"));
    assert!(page.contains("data-live=\"false\""));
    let (page, _) = open(&browser, &settings).await;
    assert!(page.contains(&format!(
        "/sessions/{id}\"><strong>tidy the README</strong>"
    )));
    let (home, _) = open(&browser, "/console").await;
    assert!(
        home.contains(&format!(
            "href=\"{to}\">Session done in Alpha &#60;script&#62;"
        )),
        "{home}"
    );
    assert!(!home.contains("waits for your approval"), "{home}");

    // Its worktree: the files, one opened and edited, the diff.
    let (page, _) = open(&browser, &format!("{to}/files")).await;
    assert!(
        page.contains(">README.md</a>") && page.contains(">notes.txt</a>"),
        "{page}"
    );
    let (page, _) = open(&browser, &format!("{to}/file?path=README.md")).await;
    assert!(page.contains("# demo"), "{page}");
    let back = browser
        .submit(
            &format!("{to}/file"),
            &[
                ("csrf", &csrf),
                ("path", "README.md"),
                ("content", "# demo\r\nchanged <i>from</i> the console\r\n"),
            ],
        )
        .await;
    assert_eq!(back, format!("{to}/file?path=README.md&done=file-saved"));
    let (page, _) = open(&browser, &back).await;
    assert!(page.contains("The file is saved"), "{page}");
    assert!(page.contains("changed &#60;i&#62;from&#60;/i&#62; the console"));
    let (page, _) = open(&browser, &format!("{to}/diff")).await;
    assert!(
        page.contains("<span class=\"add\">+changed &#60;i&#62;from&#60;/i&#62; the console"),
        "{page}"
    );
    // A file deleted from its page: back to its directory, without it.
    let back = browser
        .submit(
            &format!("{to}/file/delete"),
            &[("csrf", &csrf), ("path", "notes.txt")],
        )
        .await;
    assert_eq!(back, format!("{to}/files?path="));
    let (page, _) = open(&browser, &back).await;
    assert!(
        !page.contains(">notes.txt</a>") && page.contains(">README.md</a>"),
        "{page}"
    );
    let audit = ok(
        &app,
        &admin,
        Method::GET,
        "/api/v1/audit/events?action=session.file_written",
        None,
    )
    .await;
    assert_eq!(audit["events"].as_array().unwrap().len(), 1, "{audit}");

    // Another workspace's member sees none of it: every URL is the same 404 page.
    ok(
        &app,
        &admin,
        Method::POST,
        "/api/v1/admin/users",
        Some(json!({"email": OUTSIDER, "password": PASSWORD})),
    )
    .await;
    let (_, csrf_ws) = open(&browser, "/console/workspaces").await;
    let other = browser
        .submit(
            "/console/workspaces",
            &[("csrf", &csrf_ws), ("name", "Beta")],
        )
        .await;
    let beta = other.split('/').nth(3).unwrap().to_owned();
    let (_, csrf_beta) = open(&browser, &format!("/console/workspaces/{beta}/members")).await;
    browser
        .submit(
            &format!("/console/workspaces/{beta}/members"),
            &[("csrf", &csrf_beta), ("email", OUTSIDER), ("role", "owner")],
        )
        .await;
    let outsider_token = app.sign_in(OUTSIDER, PASSWORD).await.unwrap();
    let outsider = Browser::signed_in(&app, &outsider_token);
    let (page, their_csrf) = open(&outsider, "/console/workspaces").await;
    assert!(page.contains("Beta") && !page.contains("Alpha"), "{page}");
    let (home, _) = open(&outsider, "/console").await;
    assert!(
        !home.contains("tidy the README") && !home.contains("runner"),
        "{home}"
    );
    for path in [
        settings.clone(),
        format!("{settings}/settings"),
        format!("{settings}/members"),
        to.clone(),
        format!("{to}/files"),
        format!("{to}/file?path=README.md"),
        format!("{to}/diff"),
    ] {
        let (status, page) = outsider.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(page.contains("<h1>Not found</h1>"), "{path}: {page}");
        assert!(!page.contains("Alpha"), "{path}: {page}");
    }
    for path in [format!("{to}/close"), format!("{settings}/secrets/remove")] {
        let (status, _) = outsider
            .post(&path, &[("csrf", &their_csrf), ("kind", "pat")])
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }

    // Closed from its page: the worktree goes, the record and output stay.
    let (_, csrf) = open(&browser, &to).await;
    let back = browser
        .submit(&format!("{to}/close"), &[("csrf", &csrf)])
        .await;
    let (page, _) = open(&browser, &back).await;
    assert!(page.contains("The session is closed"), "{page}");
    assert!(page.contains("says-***"), "{page}");
    assert!(!page.contains(">Files</a>"), "{page}");
}
