//! Webhook intake throughput (BENCHMARKS.md): Warden in process on the backend named by
//! `TESTKIT_BACKEND`, SOURCES generic event sources with a signing secret, each pointed at a
//! (disabled) trigger automation, so every accepted delivery is stored and its run enqueued
//! on the work queue. wrk sends signed deliveries over 32 connections for SECONDS seconds,
//! spread over the sources; then the same load with an unknown token. Reported: the HTTP
//! rate and latency, and — since the answer is always 200 — what the worker actually
//! accepted into the queue per second (counted on the sources, until drained).
//! `cargo run --release -p warden-testkit --example webhook_intake [SECONDS] [SOURCES]`

use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use serde_json::json;
use warden_testkit::{AppOptions, TestApp};

const PASSWORD: &str = "bench password 7781 heron";
const SECRET: &str = "bench-signing-secret-0123456789";
const BODY: &str = r#"{"type":"build.finished","status":"green","ref":"refs/heads/main"}"#;

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Runs wrk against `paths` (round robin); returns (req/s, p50, p99, non-2xx).
fn wrk(
    base: &str,
    paths: &[String],
    secs: u64,
    signature: &str,
) -> (String, String, String, String) {
    let list = paths
        .iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let lua = format!(
        "local paths = {{{list}}}\nlocal i = 0\n\
         wrk.method = \"POST\"\nwrk.body = '{BODY}'\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n\
         wrk.headers[\"X-Signature\"] = \"sha256={signature}\"\n\
         request = function()\n  i = i + 1\n  return wrk.format(nil, paths[(i % #paths) + 1])\nend\n"
    );
    let r = warden_testkit::wrk::run(base, &lua, 4, 32, secs);
    (r.rate, r.p50, r.p99, r.non2xx)
}

/// Accepted and dropped deliveries, summed over the sources.
#[allow(clippy::unwrap_used)]
async fn accepted(app: &TestApp, admin: &str, ids: &[String], ws: &str) -> (i64, i64) {
    let mut total = (0i64, 0i64);
    for id in ids {
        let (_, s) = app
            .call(
                admin,
                reqwest::Method::GET,
                &format!("/api/v1/workspaces/{ws}/event-sources/{id}"),
                None,
            )
            .await;
        let c = &s["counters"];
        total.0 += c["accepted"].as_i64().unwrap_or(0);
        total.1 += ["dropped_backlog", "dropped_rate", "dropped_signature"]
            .iter()
            .filter_map(|k| c[*k].as_i64())
            .sum::<i64>();
    }
    total
}

#[tokio::main]
#[allow(clippy::print_stdout, clippy::unwrap_used, clippy::cast_precision_loss)]
async fn main() -> anyhow::Result<()> {
    let (secs, sources) = (arg(1, 10), arg(2, 32));
    // RUN_JOBS=false: an intake node, as a cluster may keep them (the queued runs wait for
    // worker nodes); default true, a single node doing everything.
    let run_jobs = std::env::var("RUN_JOBS").unwrap_or_else(|_| "true".to_owned());
    let app = TestApp::spawn_with(AppOptions {
        env: vec![
            ("WARDEN_LOG_LEVEL".to_owned(), "error".to_owned()),
            ("WARDEN_AUTOMATIONS_RUN_JOBS".to_owned(), run_jobs.clone()),
        ],
        ..AppOptions::default()
    })
    .await?;
    let admin = app.first_admin("ops@example.com", PASSWORD).await?;
    let (_, ws) = app
        .call(
            &admin,
            reqwest::Method::POST,
            "/api/v1/workspaces",
            Some(json!({"name": "Bench"})),
        )
        .await;
    let ws = ws["id"].as_str().unwrap().to_owned();
    let (_, automation) = app
        .call(
            &admin,
            reqwest::Method::POST,
            &format!("/api/v1/workspaces/{ws}/automations"),
            Some(
                json!({"name": "on build", "kind": "trigger", "prompt": "{{ event.status }}",
                        "provider": "claude-code", "enabled": false}),
            ),
        )
        .await;
    let automation = automation["id"].as_str().unwrap().to_owned();
    let mut paths = Vec::new();
    let mut ids = Vec::new();
    for n in 0..sources {
        let (status, created) = app
            .call(
                &admin,
                reqwest::Method::POST,
                &format!("/api/v1/workspaces/{ws}/event-sources"),
                Some(
                    json!({"name": format!("ci-{n}"), "kind": "generic", "secret": SECRET,
                            "automation_id": automation, "rate_per_minute": 1_000_000,
                            "backlog": 100_000}),
                ),
            )
            .await;
        assert!(status.is_success(), "{created}");
        let url = created["url"].as_str().unwrap();
        paths.push(url.split(&app.base).nth(1).unwrap().to_owned());
        ids.push(created["source"]["id"].as_str().unwrap().to_owned());
    }
    let signature = {
        let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
        hex::encode(hmac::sign(&key, BODY.as_bytes()).as_ref())
    };
    println!(
        "backend {}, {} cores, {sources} sources, {secs} s per run, 32 connections (wrk -t4), \
         this node runs jobs: {run_jobs}",
        warden_testkit::backend().name(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    // Warm-up.
    let _ = wrk(&app.base, &paths, 2, &signature);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = accepted(&app, &admin, &ids, &ws).await;
    let started = Instant::now();
    let (rate, p50, p99, non2xx) = wrk(&app.base, &paths, secs, &signature);
    // Drained when the count stops moving.
    let mut last = accepted(&app, &admin, &ids, &ws).await;
    let mut drained = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = accepted(&app, &admin, &ids, &ws).await;
        if now == last {
            break;
        }
        last = now;
        drained = Instant::now();
    }
    let got = last.0 - before.0;
    let dropped = last.1 - before.1;
    let elapsed = drained
        .duration_since(started)
        .as_secs_f64()
        .max(secs as f64);
    println!(
        "signed deliveries: HTTP {rate} req/s, p50 {p50}, p99 {p99}, non-2xx {non2xx}; \
         accepted into the queue {got} in {elapsed:.1} s = {:.0}/s; dropped {dropped}",
        got as f64 / elapsed
    );
    let unknown: Vec<String> =
        vec!["/webhooks/wwh_unknownunknownunknownunknownunknownunknown0".to_owned()];
    let (rate, p50, p99, non2xx) = wrk(&app.base, &unknown, secs, &signature);
    println!("unknown token:     HTTP {rate} req/s, p50 {p50}, p99 {p99}, non-2xx {non2xx}");
    let counts = app.server.store().job_counts().await?;
    println!(
        "queue after the run: {} queued, {} running, {} dead",
        counts.queued, counts.running, counts.dead
    );
    Ok(())
}
