//! Session output end to end (BENCHMARKS.md, sessions): Warden in process (embedded SQLite),
//! the release `warden-agent` connected over loopback, a session whose provider writes as fast
//! as it can, followed by a client on `…/stream` (server-sent events): bytes per second at the
//! client; then a provider that prints its own clock every 10 ms: the delay per line until the
//! client has it.
//!
//! Last, start-up through the API: from "create session" to "provider process started" on a
//! repository of 10,000 files, against a bare `git worktree add` of the same mirror.
//!
//! `cargo build --release -p warden-agent && cargo run --release -p warden-agent --example session_stream -- [MIB] [RUNS]`
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warden_testkit::TestApp;

const PASSWORD: &str = "violet tractor 93 lagoon";

async fn call(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> Value {
    app.api()
        .call(token, method, path, Some(&body))
        .await
        .expect(path)
}

/// Follows a session's stream; calls `each` with every output event's data; returns the
/// bytes received.
async fn follow(app: &TestApp, token: &str, path: &str, mut each: impl FnMut(&str)) -> usize {
    let mut res = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let mut pending = String::new();
    let mut bytes = 0;
    while let Some(chunk) = res.chunk().await.unwrap() {
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = pending.find("\n\n") {
            let event = pending[..end + 2].to_owned();
            pending.replace_range(..end + 2, "");
            if event.contains("event: end") {
                return bytes;
            }
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                let v: Value = serde_json::from_str(data).unwrap();
                let text = v["data"].as_str().unwrap();
                bytes += text.len();
                each(text);
            }
        }
    }
    bytes
}

#[tokio::main]
async fn main() {
    let mib: usize = std::env::args().nth(1).map_or(64, |a| a.parse().unwrap());
    warden_testkit::install_crypto_provider();
    let app = TestApp::spawn().await.unwrap();
    let link = app.server.setup_link().unwrap().to_owned();
    let token = link.split("token=").nth(1).unwrap().to_owned();
    app.client
        .post(app.url("/setup"))
        .form(&[
            ("token", token.as_str()),
            ("email", "ops@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let signed: Value = app
        .client
        .post(app.url("/api/v1/auth/sign-in"))
        .json(&json!({"email": "ops@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin = signed["access_token"].as_str().unwrap().to_owned();
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("README.md"), "x\n").unwrap();
    assert!(
        std::process::Command::new("sh")
            .arg("-c")
            .arg("git init -q -b main && git add -A && git -c user.name=t -c user.email=t@example.com commit -q -m init")
            .current_dir(&repo)
            .status()
            .unwrap()
            .success()
    );
    let post = reqwest::Method::POST;
    let ws = call(
        &app,
        &admin,
        post.clone(),
        "/api/v1/workspaces",
        json!({"name": "Bench"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    call(
        &app,
        &admin,
        reqwest::Method::PUT,
        &format!("/api/v1/workspaces/{ws}/settings"),
        json!({"repository": repo.display().to_string()}),
    )
    .await;
    let host = call(
        &app,
        &admin,
        post.clone(),
        "/api/v1/hosts",
        json!({"name": "bench", "kind": "session"}),
    )
    .await;
    let host_id = host["host"]["id"].as_str().unwrap().to_owned();
    call(
        &app,
        &admin,
        post.clone(),
        &format!("/api/v1/hosts/{host_id}/approve"),
        json!({}),
    )
    .await;
    let agent_bin =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/warden-agent");
    let _agent = tokio::process::Command::new(agent_bin)
        .arg("--url")
        .arg(&app.base)
        .arg("--data-dir")
        .arg(root.path().join("agent"))
        .env("WARDEN_HOST_KEY", host["api_key"].as_str().unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sessions = format!("/api/v1/workspaces/{ws}/sessions");

    // Throughput.
    let script = format!("head -c {} /dev/zero | tr '\\0' 'x'", mib << 20);
    let s = call(
        &app,
        &admin,
        post.clone(),
        &sessions,
        json!({"provider": "command", "command": ["sh", "-c", script]}),
    )
    .await;
    let id = s["id"].as_str().unwrap();
    let t = Instant::now();
    let bytes = follow(&app, &admin, &format!("{sessions}/{id}/stream"), |_| {}).await;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "output to a client on /stream: {:.1} MB in {secs:.2} s = {:.1} MB/s",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / secs
    );

    // Latency per line.
    let s = call(
        &app,
        &admin,
        post,
        &sessions,
        json!({"provider": "command", "command": ["sh", "-c", "for i in $(seq 300); do date +%s%N; sleep 0.01; done"]}),
    )
    .await;
    let id = s["id"].as_str().unwrap();
    let mut delays = Vec::new();
    follow(&app, &admin, &format!("{sessions}/{id}/stream"), |text| {
        #[allow(clippy::disallowed_methods)]
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        for line in text.lines() {
            if let Ok(sent) = line.trim().parse::<i128>() {
                delays.push((now - sent) as f64 / 1e6);
            }
        }
    })
    .await;
    delays.sort_by(f64::total_cmp);
    let p = |q: f64| delays[((delays.len() as f64 - 1.0) * q) as usize];
    println!(
        "added latency per line ({} lines): median {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        delays.len(),
        p(0.5),
        p(0.99),
        p(1.0)
    );

    // Start-up through the API: "create session" (the record's created_at) to "provider
    // process started" (its started_at, when the host's report arrived), on a repository of
    // 10,000 files, alternating with a bare `git worktree add` of the agent's mirror.
    let big = root.path().join("big");
    for i in 0..10_000 {
        let dir = big.join(format!("src/m{:03}", i % 100));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("f{i}.rs")),
            format!("pub fn f{i}() -> u32 {{ {i} }}\n"),
        )
        .unwrap();
    }
    assert!(
        std::process::Command::new("sh")
            .arg("-c")
            .arg("git init -q -b main && git add -A && git -c user.name=t -c user.email=t@example.com commit -q -m init")
            .current_dir(&big)
            .status()
            .unwrap()
            .success()
    );
    let big_ws = call(
        &app,
        &admin,
        reqwest::Method::POST,
        "/api/v1/workspaces",
        json!({"name": "Big"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    call(
        &app,
        &admin,
        reqwest::Method::PUT,
        &format!("/api/v1/workspaces/{big_ws}/settings"),
        json!({"repository": big.display().to_string()}),
    )
    .await;
    let big_sessions = format!("/api/v1/workspaces/{big_ws}/sessions");
    let parse = |v: &Value| {
        time::OffsetDateTime::parse(
            v.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    let open = || {
        let (app, admin, path) = (&app, &admin, big_sessions.clone());
        async move {
            let s = call(
                app,
                admin,
                reqwest::Method::POST,
                &path,
                json!({"provider": "command", "command": ["true"], "mode": "chat"}),
            )
            .await;
            let id = s["id"].as_str().unwrap().to_owned();
            loop {
                let s = call(
                    app,
                    admin,
                    reqwest::Method::GET,
                    &format!("{path}/{id}"),
                    Value::Null,
                )
                .await;
                if s["status"] != "waiting" && s["status"] != "running" {
                    assert_eq!(s["status"], "done", "{s}");
                    return (parse(&s["started_at"]) - parse(&s["created_at"])).as_seconds_f64()
                        * 1000.0;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let first = open().await;
    let mirror = root.path().join(format!("agent/mirrors/{big_ws}.git"));
    let runs: usize = std::env::args().nth(2).map_or(7, |a| a.parse().unwrap());
    let (mut session_ms, mut bare_ms) = (Vec::new(), Vec::new());
    for n in 0..runs {
        session_ms.push(open().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let dir = root.path().join(format!("bare-{n}"));
        let t = Instant::now();
        assert!(
            std::process::Command::new("git")
                .args(["-c", "safe.directory=*", "-C"])
                .arg(&mirror)
                .args(["worktree", "add", "-q", "-b", &format!("bare/{n}")])
                .arg(&dir)
                .arg("HEAD")
                .status()
                .unwrap()
                .success()
        );
        bare_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (s, b) = (median(&session_ms), median(&bare_ms));
    println!("start-up on 10,000 files, {runs} runs each (first session, cloning: {first:.0} ms):");
    println!("  create session -> provider started  {s:7.1} ms median  {session_ms:.1?}");
    println!("  bare `git worktree add`            {b:7.1} ms median  {bare_ms:.1?}");
    println!("  ratio                              {:7.2}x", s / b);
}
