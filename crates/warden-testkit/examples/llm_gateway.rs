//! LLM gateway benchmark (BENCHMARKS.md): Warden in process (backend from `TESTKIT_BACKEND`)
//! with quotas and filters on, in front of the stub provider (`llm_stub_server`, its own
//! process, answering after 0 ms at STUB0 and 50 ms at STUB50); measured side by side with
//! calling the stub directly and with the LiteLLM proxy (LITELLM0 / LITELLM50, when set).
//!
//! 1. Throughput: wrk, 32 and 256 connections, SECONDS each.
//! 2. Added latency at a fixed 1,000 requests/s (open loop, its own thread and runtime):
//!    p50 and p99 through Warden minus direct.
//! 3. Streaming time to first byte, sequential: through Warden minus direct.
//! 4. The process's resident memory after the 256-connection run.
//!
//! `STUB0=127.0.0.1:p STUB50=127.0.0.1:q [LITELLM0=http://…] [LITELLM50=http://…]
//!  llm_gateway [SECONDS]`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use serde_json::json;
use warden_testkit::{AppOptions, TestApp};

// The allocator the `warden` binary uses, so the memory measured is what a node would hold.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PASSWORD: &str = "bench password 7781 heron";
const LITELLM_KEY: &str = "sk-litellm-bench-master";

fn body(model: &str, stream: bool) -> String {
    json!({"model": model, "max_tokens": 16, "stream": stream,
           "messages": [{"role": "user", "content": "Say hello to the benchmark, please."}]})
    .to_string()
}

/// wrk against `url` with `conns` connections: (req/s, p50, p99, non-2xx).
fn wrk(url: &str, key: &str, model: &str, conns: u32, secs: u64) -> [String; 4] {
    let lua = format!(
        "wrk.method = \"POST\"\nwrk.body = '{}'\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n\
         wrk.headers[\"Authorization\"] = \"Bearer {key}\"\n",
        body(model, false)
    );
    let r = warden_testkit::wrk::run(url, &lua, 2, conns, secs);
    [r.rate, r.p50, r.p99, r.non2xx]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Open loop: `rate` requests per second for `secs`, on a thread and runtime of its own.
/// Returns sorted latencies and the number of failures.
fn open_loop(
    url: String,
    key: String,
    model: &'static str,
    rate: u64,
    secs: u64,
) -> (Vec<Duration>, usize) {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(512)
                .build()
                .unwrap();
            // Warm the pool.
            for _ in 0..50 {
                let _ = client
                    .post(&url)
                    .bearer_auth(&key)
                    .header("content-type", "application/json")
                    .body(body(model, false))
                    .send()
                    .await;
            }
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut handles = Vec::new();
            for _ in 0..rate * secs {
                tick.tick().await;
                let c = client.clone();
                let (u, k) = (url.clone(), key.clone());
                handles.push(tokio::spawn(async move {
                    let t = Instant::now();
                    let ok = match c
                        .post(&u)
                        .bearer_auth(&k)
                        .header("content-type", "application/json")
                        .body(body(model, false))
                        .send()
                        .await
                    {
                        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    (t.elapsed(), ok)
                }));
            }
            let mut lat = Vec::new();
            let mut failed = 0;
            for h in handles {
                let (d, ok) = h.await.unwrap();
                if ok {
                    lat.push(d);
                } else {
                    failed += 1;
                }
            }
            lat.sort();
            (lat, failed)
        })
    })
    .join()
    .unwrap()
}

/// Sequential streaming calls: sorted times to the first body byte.
fn ttfb(url: String, key: String, model: &'static str, n: usize) -> Vec<Duration> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let client = reqwest::Client::new();
            let mut out = Vec::new();
            for i in 0..n + 20 {
                let t = Instant::now();
                let mut res = client
                    .post(&url)
                    .bearer_auth(&key)
                    .header("content-type", "application/json")
                    .body(body(model, true))
                    .send()
                    .await
                    .unwrap();
                let _first = res.chunk().await.unwrap();
                let d = t.elapsed();
                while res.chunk().await.unwrap().is_some() {}
                if i >= 20 {
                    out.push(d);
                }
            }
            out.sort();
            out
        })
    })
    .join()
    .unwrap()
}

fn rss() -> (String, String) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_owned()))
            .unwrap_or_default()
    };
    (get("VmRSS:"), get("VmHWM:"))
}

/// The floor: a bare forwarding proxy on the same stack (axum in, pooled reqwest out, no
/// key, policy, filter, quota or record), so what any gateway's extra hop costs on this
/// machine is measured apart from what Warden's governance adds.
async fn bare_proxy(stub: String) -> String {
    use axum::body::Bytes;
    use axum::response::IntoResponse;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let target = format!("http://{stub}/v1/chat/completions");
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move |body: Bytes| {
            let client = client.clone();
            let target = target.clone();
            async move {
                match client
                    .post(&target)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) => {
                        let status = r.status();
                        let body = r.bytes().await.unwrap_or_default();
                        (status, body).into_response()
                    }
                    Err(_) => axum::http::StatusCode::BAD_GATEWAY.into_response(),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/v1/chat/completions")
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let stub0 = std::env::var("STUB0").expect("STUB0");
    let stub50 = std::env::var("STUB50").expect("STUB50");
    let litellm0 = std::env::var("LITELLM0").ok();
    let litellm50 = std::env::var("LITELLM50").ok();
    let app = TestApp::spawn_with(AppOptions {
        env: vec![
            ("WARDEN_LLM_ALLOW_PRIVATE_UPSTREAMS".into(), "true".into()),
            ("WARDEN_LOG_LEVEL".into(), "warn".into()),
        ],
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let admin = app.first_admin("ops@example.com", PASSWORD).await.unwrap();
    let (_, ws) = app
        .call(
            &admin,
            reqwest::Method::POST,
            "/api/v1/workspaces",
            Some(json!({"name": "bench"})),
        )
        .await;
    let ws = ws["id"].as_str().unwrap().to_owned();
    for (name, addr, model) in [("d0", &stub0, "gpt-d0"), ("d50", &stub50, "gpt-d50")] {
        let (s, b) = app
            .call(
                &admin,
                reqwest::Method::POST,
                &format!("/api/v1/workspaces/{ws}/llm/upstreams"),
                Some(json!({"name": name, "kind": "openai_compatible",
                            "base_url": format!("http://{addr}/v1"), "api_key": "sk-bench-upstream-key-0123456789",
                            "models": [model], "allow_private_network": true})),
            )
            .await;
        assert!(s.is_success(), "{b}");
    }
    let (s, b) = app
        .call(
            &admin,
            reqwest::Method::PUT,
            &format!("/api/v1/workspaces/{ws}/llm/policy"),
            Some(json!({"enabled": true, "policy": {
                "quotas": {"workspace": {"tokens_per_month": 100_000_000_000i64, "requests_per_minute": 100_000_000},
                           "per_user": {"requests_per_day": 1_000_000_000, "tokens_per_day": 100_000_000_000i64}},
                "prices": {"gpt-d0": {"input_micros_per_million": 2_500_000, "output_micros_per_million": 10_000_000}},
                "filters": {"secrets": "block", "personal_data": "redact", "prompt_injection": "flag"}}})),
        )
        .await;
    assert!(s.is_success(), "{b}");
    let (_, made) = app
        .call(
            &admin,
            reqwest::Method::POST,
            &format!("/api/v1/workspaces/{ws}/llm/keys"),
            Some(json!({"name": "bench"})),
        )
        .await;
    let key = made["secret"].as_str().unwrap().to_owned();
    let warden = app.url("/llm/v1/chat/completions");
    println!(
        "machine: {} cores; backend {:?}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        warden_testkit::backend()
    );
    println!("rss at start: {:?}", rss());

    println!("\n| stub delay | connections | target | req/s | p50 | p99 | non-2xx |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let mut after_256 = None;
    for (delay, stub, model, lite) in [
        (0, &stub0, "gpt-d0", &litellm0),
        (50, &stub50, "gpt-d50", &litellm50),
    ] {
        for conns in [32u32, 256] {
            let direct = format!("http://{stub}/v1/chat/completions");
            let mut rows = vec![
                ("direct", wrk(&direct, "sk-direct", model, conns, secs)),
                ("Warden", wrk(&warden, &key, model, conns, secs)),
            ];
            if conns == 256 && delay == 0 {
                after_256 = Some(rss());
            }
            if let Some(l) = lite {
                rows.push((
                    "LiteLLM",
                    wrk(
                        &format!("{l}/v1/chat/completions"),
                        LITELLM_KEY,
                        "gpt-test",
                        conns,
                        secs,
                    ),
                ));
            }
            for (target, [rate, p50, p99, bad]) in rows {
                println!("| {delay} ms | {conns} | {target} | {rate} | {p50} | {p99} | {bad} |");
            }
        }
    }
    if let Some((now, peak)) = after_256 {
        println!("\nrss after the 256-connection run: {now} (peak {peak})");
    }

    println!("\nadded latency at 1,000 req/s, open loop, {secs} s each (stub 0 ms):");
    let (direct, df) = open_loop(
        format!("http://{stub0}/v1/chat/completions"),
        "sk-direct".into(),
        "gpt-d0",
        1000,
        secs,
    );
    let bare = bare_proxy(stub0.clone()).await;
    let (floor, ff) = open_loop(bare.clone(), "x".into(), "gpt-d0", 1000, secs);
    let (through, wf) = open_loop(warden.clone(), key.clone(), "gpt-d0", 1000, secs);
    let (d50, d99) = (percentile(&direct, 0.5), percentile(&direct, 0.99));
    let (w50, w99) = (percentile(&through, 0.5), percentile(&through, 0.99));
    println!(
        "  direct p50 {:.0} µs p99 {:.0} µs ({} ok, {df} failed)",
        us(d50),
        us(d99),
        direct.len()
    );
    println!(
        "  Warden p50 {:.0} µs p99 {:.0} µs ({} ok, {wf} failed)",
        us(w50),
        us(w99),
        through.len()
    );
    let (f50, f99) = (percentile(&floor, 0.5), percentile(&floor, 0.99));
    println!(
        "  bare proxy p50 {:.0} µs p99 {:.0} µs ({} ok, {ff} failed): the hop alone adds p50 {:.0} µs, p99 {:.0} µs",
        us(f50),
        us(f99),
        floor.len(),
        us(f50) - us(d50),
        us(f99) - us(d99)
    );
    println!(
        "  added over direct: p50 {:.0} µs, p99 {:.0} µs; over the bare proxy (governance): p50 {:.0} µs, p99 {:.0} µs",
        us(w50) - us(d50),
        us(w99) - us(d99),
        us(w50) - us(f50),
        us(w99) - us(f99)
    );
    if let Some(l) = &litellm0 {
        let (lite, lf) = open_loop(
            format!("{l}/v1/chat/completions"),
            LITELLM_KEY.into(),
            "gpt-test",
            1000,
            secs,
        );
        let (l50, l99) = (percentile(&lite, 0.5), percentile(&lite, 0.99));
        println!(
            "  LiteLLM p50 {:.0} µs p99 {:.0} µs ({} ok, {lf} failed); added p50 {:.0} µs",
            us(l50),
            us(l99),
            lite.len(),
            us(l50) - us(d50)
        );
    }

    println!("\nthroughput of the bare proxy (the hop alone), stub 0 ms:");
    for conns in [32u32, 256] {
        let [rate, p50, p99, bad] = wrk(&bare, "x", "gpt-d0", conns, secs);
        println!("| 0 ms | {conns} | bare proxy | {rate} | {p50} | {p99} | {bad} |");
    }

    println!("\nstreaming time to first byte, 500 sequential calls (stub 0 ms):");
    let direct = ttfb(
        format!("http://{stub0}/v1/chat/completions"),
        "sk-direct".into(),
        "gpt-d0",
        500,
    );
    let through = ttfb(warden, key, "gpt-d0", 500);
    println!(
        "  direct p50 {:.0} µs, Warden p50 {:.0} µs: added p50 {:.0} µs, p99 {:.0} µs",
        us(percentile(&direct, 0.5)),
        us(percentile(&through, 0.5)),
        us(percentile(&through, 0.5)) - us(percentile(&direct, 0.5)),
        us(percentile(&through, 0.99)) - us(percentile(&direct, 0.99)),
    );
    println!("rss at the end: {:?}", rss());
}
