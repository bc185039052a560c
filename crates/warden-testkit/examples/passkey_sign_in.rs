//! Server-side time of a passkey sign-in: Warden in process (embedded SQLite, access tokens
//! signed ES256 as by default, or RS256 with the RSA size given), one passkey registered by the software
//! authenticator, then N sign-ins, each timed from the client in two parts — the options
//! (`POST /api/v1/auth/passkey/options`, the ceremony stored) and the answer
//! (`POST /api/v1/auth/passkey`: the ceremony taken, the assertion verified, the counter
//! stored, a session opened and its access token signed). Sign-ins come from 50 loopback
//! addresses, so the per-address limit on starts (60 a minute) is not what is measured.
//! `cargo run --release -p warden-testkit --example passkey_sign_in [N] [ES256|2048|3072]`

use std::time::Instant;

use serde_json::{Value, json};
use warden_testkit::TestApp;
use warden_testkit::passkey::{Bend, SoftPasskey};

const ORIGIN: &str = "https://warden.example.test";

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main]
#[allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let signing = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "ES256".to_owned());
    let app = TestApp::spawn_with(warden_testkit::AppOptions {
        env: [
            warden_testkit::signing_key_env(&signing),
            vec![("WARDEN_PUBLIC_URL".to_owned(), ORIGIN.to_owned())],
        ]
        .concat(),
        ..Default::default()
    })
    .await?;
    let admin = &app
        .first_admin("ops@example.com", "bench password 7781 heron")
        .await?;
    let mut key = SoftPasskey::new(ORIGIN);
    let (_, start) = app
        .call(
            admin,
            reqwest::Method::POST,
            "/api/v1/me/passkeys/registration",
            None,
        )
        .await;
    let credential = key.register(&start["options"], &Bend::default());
    let (status, body) = app
        .call(
            admin,
            reqwest::Method::POST,
            "/api/v1/me/passkeys",
            Some(json!({"ceremony": start["ceremony"], "name": "bench", "credential": credential})),
        )
        .await;
    anyhow::ensure!(
        status == reqwest::StatusCode::CREATED,
        "registration: {body}"
    );

    let clients: Vec<reqwest::Client> = (2..52)
        .map(|i| {
            reqwest::Client::builder()
                .no_proxy()
                .local_address(std::net::IpAddr::from([127, 0, 0, i]))
                .build()
                .unwrap()
        })
        .collect();
    let (mut start_ms, mut finish_ms) = (Vec::new(), Vec::new());
    for i in 0..n + 20 {
        let client = &clients[i % clients.len()];
        let t = Instant::now();
        let begun: Value = client
            .post(app.url("/api/v1/auth/passkey/options"))
            .json(&json!({}))
            .send()
            .await?
            .json()
            .await?;
        let started = t.elapsed();
        // The authenticator's signature is the client's work, outside the timing.
        let credential = key.assert(&begun["options"], &Bend::default());
        let t = Instant::now();
        let res = client
            .post(app.url("/api/v1/auth/passkey"))
            .json(&json!({"ceremony": begun["ceremony"], "credential": credential}))
            .send()
            .await?;
        anyhow::ensure!(res.status().is_success(), "sign-in {i}: {}", res.status());
        let _ = res.bytes().await?;
        let finished = t.elapsed();
        if i >= 20 {
            start_ms.push(started.as_secs_f64() * 1000.0);
            finish_ms.push(finished.as_secs_f64() * 1000.0);
        }
    }
    start_ms.sort_by(f64::total_cmp);
    finish_ms.sort_by(f64::total_cmp);
    println!(
        "passkey sign-ins: {n}, access tokens signed with {signing}, machine {} cores",
        num_cpus()
    );
    for (name, v) in [("options", &start_ms), ("sign-in", &finish_ms)] {
        println!(
            "{name}: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms",
            pct(v, 0.5),
            pct(v, 0.9),
            pct(v, 0.99)
        );
    }
    Ok(())
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}
