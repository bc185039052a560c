//! Cross-node session streaming (BENCHMARKS.md, "Any node serves any host"): two nodes of one
//! installation in this process on one database (PostgreSQL with `TESTKIT_BACKEND=postgres`),
//! the release `warden-agent` connected to node A. A session writes MIB MiB as fast as it can
//! while a client follows `…/stream` from A (the host's node) or from B (another node: it reads
//! what A recorded, woken by A's `NOTIFY`), alternating, RUNS times each. Then a provider that
//! prints its clock every 10 ms: the delay per line at a client on A and on B.
//!
//! `cargo build --release -p warden-agent && TESTKIT_BACKEND=postgres cargo run --release -p warden-agent --example cluster_stream -- [MIB] [RUNS]`
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use warden_testkit::TestApp;

/// Follows a session's stream from `app`; calls `each` with every output event's text; returns
/// the bytes received.
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
            let event: String = pending.drain(..end + 2).collect();
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

fn agent_binary() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        std::path::PathBuf::from,
    );
    target.join("release/warden-agent")
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().map_or(64, |a| a.parse().unwrap());
    let runs: usize = args.next().map_or(3, |a| a.parse().unwrap());
    warden_testkit::install_crypto_provider();
    let a = TestApp::spawn().await.unwrap();
    let b = a.another_node().await.unwrap();
    println!("backend: {:?}", a.db.backend);
    let admin = a
        .first_admin("ops@example.com", "violet tractor 93 lagoon")
        .await
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join("repo");
    warden_testkit::git_repo(&repo);
    let ws = a
        .ok(
            &admin,
            Method::POST,
            "/api/v1/workspaces",
            Some(json!({"name": "Bench"})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    a.ok(
        &admin,
        Method::PUT,
        &format!("/api/v1/workspaces/{ws}/settings"),
        Some(json!({"repository": repo.display().to_string()})),
    )
    .await;
    let host = a
        .ok(
            &admin,
            Method::POST,
            "/api/v1/hosts",
            Some(json!({"name": "bench", "kind": "session"})),
        )
        .await;
    let host_id = host["host"]["id"].as_str().unwrap().to_owned();
    a.ok(
        &admin,
        Method::POST,
        &format!("/api/v1/hosts/{host_id}/approve"),
        None,
    )
    .await;
    let _agent = warden_testkit::agent::start(
        agent_binary().to_str().unwrap(),
        &a,
        host["api_key"].as_str().unwrap(),
        &root.path().join("agent"),
    );
    warden_testkit::agent::wait_online(&a, &admin, &host_id).await;
    let seen = a
        .ok(
            &admin,
            Method::GET,
            &format!("/api/v1/hosts/{host_id}"),
            None,
        )
        .await;
    assert_eq!(
        seen["online"], true,
        "the agent did not stay connected: {seen}"
    );
    let sessions = format!("/api/v1/workspaces/{ws}/sessions");
    // The first session may find no host for a moment (noted in BENCHMARKS.md if it does).
    let started = Instant::now();
    for attempt in 0.. {
        let (status, body) = a
            .call(
                &admin,
                Method::POST,
                &sessions,
                Some(json!({"provider": "command", "command": ["true"]})),
            )
            .await;
        if status.is_success() {
            if attempt > 0 {
                println!(
                    "the first session found its host after {attempt} refusals ({:.2} s): {}",
                    started.elapsed().as_secs_f64(),
                    a.ok(
                        &admin,
                        Method::GET,
                        &format!("/api/v1/hosts/{host_id}"),
                        None
                    )
                    .await
                );
            }
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no session in a minute: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Throughput, alternating the node the client reads from.
    let script = format!("head -c {} /dev/zero | tr '\\0' 'x'", mib << 20);
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..runs {
        for (i, reader) in [&a, &b].into_iter().enumerate() {
            let (status, s) = a
                .call(
                    &admin,
                    Method::POST,
                    &sessions,
                    Some(json!({"provider": "command", "command": ["sh", "-c", &script]})),
                )
                .await;
            assert!(status.is_success(), "{status} {s}");
            let id = s["id"].as_str().unwrap();
            let t = Instant::now();
            let bytes = follow(reader, &admin, &format!("{sessions}/{id}/stream"), |_| {}).await;
            let rate = bytes as f64 / 1e6 / t.elapsed().as_secs_f64();
            assert_eq!(bytes, mib << 20, "the client missed output");
            rates[i].push(rate);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (same, cross) = (median(&mut rates[0]), median(&mut rates[1]));
    println!(
        "{mib} MiB to a client on /stream: same node {:?} MB/s (median {same:.1}), other node {:?} MB/s (median {cross:.1}): {:.0} %",
        rates[0]
            .iter()
            .map(|r| (r * 10.0).round() / 10.0)
            .collect::<Vec<_>>(),
        rates[1]
            .iter()
            .map(|r| (r * 10.0).round() / 10.0)
            .collect::<Vec<_>>(),
        cross / same * 100.0
    );

    // Latency per line, from each node.
    for (name, reader) in [("same node", &a), ("other node", &b)] {
        let s = a
            .ok(
                &admin,
                Method::POST,
                &sessions,
                Some(json!({"provider": "command", "command": ["sh", "-c",
                    "for i in $(seq 300); do date +%s%N; sleep 0.01; done"]})),
            )
            .await;
        let id = s["id"].as_str().unwrap();
        let mut delays = Vec::new();
        follow(reader, &admin, &format!("{sessions}/{id}/stream"), |text| {
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
            "added latency per line, client on the {name} ({} lines): median {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            delays.len(),
            p(0.5),
            p(0.99),
            p(1.0)
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
}
