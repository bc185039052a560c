//! The console walk-through in real Chromium with a real `warden-agent`
//! (`crates/warden/tests/browser/console.mjs`): a workspace set up from its forms, a host
//! registered from the console (the agent started with the key the page showed) and
//! approved once connected, a session started from a prompt with its output followed live,
//! a file edited, the diff, the close, the administration pages and the audit export.
//! Every page is checked for console errors, CSP violations and axe-core findings and
//! photographed at two widths into `$CARGO_TARGET_TMPDIR/screenshots`. The browser is the
//! slow peer: it runs once, on the SQLite pass.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use warden_testkit::browser::{screenshots, walk_through};
use warden_testkit::{AppOptions, TestApp, agent};

const EMAIL: &str = "ops@example.com";
const PASSWORD: &str = "violet tractor 93 lagoon";
const MEMBER: &str = "dev@example.com";
const HOST: &str = "build-07";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn the_console_walk_through_runs_a_session_in_chromium_on_a_real_agent() {
    if std::env::var("TESTKIT_BACKEND").as_deref() == Ok("postgres") {
        eprintln!("the browser test runs on the SQLite pass");
        return;
    }
    warden_testkit::install_crypto_provider();
    let port = free_port();
    let public = format!("http://localhost:{port}");
    let app = TestApp::spawn_with(AppOptions {
        env: vec![
            ("WARDEN_LISTEN".to_owned(), format!("127.0.0.1:{port}")),
            ("WARDEN_PUBLIC_URL".to_owned(), public.clone()),
        ],
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let admin = app.first_admin(EMAIL, PASSWORD).await.unwrap();
    let (status, _) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/admin/users",
            Some(json!({"email": MEMBER, "password": PASSWORD})),
        )
        .await;
    assert!(status.is_success());

    // A repository, and a host that connects while it waits for approval.
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("README.md"), "# demo\n").unwrap();
    let made = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(
            "git init -q -b main && git add -A && \
             git -c user.name=t -c user.email=t@example.com commit -q -m init",
        )
        .current_dir(&repo)
        .status()
        .await
        .unwrap();
    assert!(made.success());
    // The walk-through registers the host and writes its key here; the real agent starts
    // with it as soon as it appears, as an operator would on the host.
    let key_file = root.path().join("host.key");
    let agent = {
        let (key_file, data_dir, base) = (
            key_file.clone(),
            root.path().join("agent-data"),
            app.base.clone(),
        );
        tokio::spawn(async move {
            let key = loop {
                match tokio::fs::read_to_string(&key_file).await {
                    Ok(k) if k.starts_with("whk_") => break k,
                    _ => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            };
            let mut child =
                agent::start_at(env!("CARGO_BIN_EXE_warden-agent"), &base, &key, &data_dir);
            let _ = child.wait().await;
        })
    };

    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../warden/tests/browser");
    let summary = walk_through(
        &dir,
        "console.mjs",
        &[
            ("WARDEN_URL", public.as_ref()),
            ("EMAIL", EMAIL.as_ref()),
            ("PASSWORD", PASSWORD.as_ref()),
            ("MEMBER", MEMBER.as_ref()),
            ("HOST", HOST.as_ref()),
            ("REPO", repo.as_os_str()),
            ("SHOTS", shots.as_os_str()),
            ("KEY_FILE", key_file.as_os_str()),
        ],
    )
    .await;
    agent.abort();
    assert_eq!(summary["problems"], json!([]), "{summary}");
    assert_eq!(screenshots(&summary, &shots), 18, "{summary}");
    assert_eq!(summary["key_shown"], true, "{summary}");
    assert_eq!(summary["feed_waiting"], 1, "{summary}");
    assert_eq!(summary["second_host"], 201, "{summary}");
    assert_eq!(summary["refreshed_without_reload"], true, "{summary}");
    // The workspace's name is text, shown as typed.
    assert_eq!(
        summary["heading"],
        "Payments <script>alert(1)</script>\"><img src=x onerror=alert(2)> {{7*7}}",
        "{summary}"
    );
    assert_eq!(summary["secret_shown"], false, "{summary}");
    assert_eq!(summary["variable_set"], 1, "{summary}");
    assert_eq!(summary["members"], 2, "{summary}");
    // The output: every line, colours removed, markup as text, the secret masked.
    let output = summary["output"].as_str().unwrap();
    for i in 1..=10 {
        assert!(
            output.contains(&format!("line {i} <b>bold</b>")),
            "{output}"
        );
    }
    assert!(!output.contains('\u{1b}'), "{output}");
    assert!(output.contains("says-***"), "{output}");
    assert_eq!(summary["output_markup"], 0, "{summary}");
    // At the end, the page shows the ended session's facts and offers Close instead of Stop.
    assert!(
        summary["ended_fact"]
            .as_str()
            .unwrap()
            .ends_with("UTC · exit code 0"),
        "{summary}"
    );
    assert_eq!(
        summary["stop_became"], "Close: remove its worktree",
        "{summary}"
    );
    assert_eq!(summary["diff_added"], 1, "{summary}");
    let actions: Vec<&str> = summary["audit_actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for a in ["session.created", "session.file_written", "session.closed"] {
        assert!(actions.contains(&a), "{a}: {actions:?}");
    }
    assert_eq!(summary["invited"], 1, "{summary}");
    assert_eq!(summary["csv_status"], 200, "{summary}");
    assert_eq!(summary["csv_has_file_written"], true, "{summary}");
    assert_eq!(summary["feed_done"], 1, "{summary}");
    // How long a line took from the provider to the page (written down in BENCHMARKS.md by
    // scripts/bench-console, not asserted: a test is no benchmark).
    eprintln!("output line → page (ms): {}", summary["latencies"]);
}
