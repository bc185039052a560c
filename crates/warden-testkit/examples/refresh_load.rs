//! Load for the identity benchmark (scripts/bench-identity, BENCHMARKS.md).
//!
//! `refresh_load warden URL EMAIL PASSWORD CONCURRENCY SECONDS`: each of CONCURRENCY clients
//! signs in once, then refreshes in a loop with the token it last received.
//! `refresh_load oidc URL TOKENS_JSON CONCURRENCY SECONDS`: the same against oidc-provider's
//! token endpoint (refresh_token grant, rotation on), starting from minted refresh tokens.
//! `refresh_load rs256 THREADS SECONDS [BITS]`: RS256 signatures per second with a key of BITS
//! (default 2048), the ceiling for any refresh that issues a signed token;
//! `refresh_load es256 THREADS SECONDS`: the same with a P-256 key (Warden's default).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warden_crypto::jwt::KeyKind;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("rs256") => signatures(
            args[1].parse()?,
            args[2].parse()?,
            KeyKind::Rs256(args.get(3).map_or(Ok(2048), |b| b.parse())?),
        ),
        Some("es256") => signatures(args[1].parse()?, args[2].parse()?, KeyKind::Es256),
        Some("warden") => {
            let (url, email, password) = (args[1].clone(), args[2].clone(), args[3].clone());
            let (n, secs): (usize, u64) = (args[4].parse()?, args[5].parse()?);
            let client = reqwest::Client::builder().no_proxy().build()?;
            let mut tokens = Vec::new();
            for _ in 0..n {
                let body: Value = client
                    .post(format!("{url}/api/v1/auth/sign-in"))
                    .json(&json!({"email": email, "password": password}))
                    .send()
                    .await?
                    .json()
                    .await?;
                tokens.push(
                    body["refresh_token"]
                        .as_str()
                        .expect("sign-in failed")
                        .to_owned(),
                );
            }
            run(tokens, secs, move |client, token| {
                let url = url.clone();
                async move {
                    let res = client
                        .post(format!("{url}/api/v1/auth/refresh"))
                        .json(&json!({ "refresh_token": token }))
                        .send()
                        .await
                        .ok()?;
                    let body: Value = res.json().await.ok()?;
                    body["refresh_token"].as_str().map(str::to_owned)
                }
            })
            .await
        }
        Some("oidc") => {
            let url = args[1].clone();
            let minted: Value = serde_json::from_str(&std::fs::read_to_string(&args[2])?)?;
            let (n, secs): (usize, u64) = (args[3].parse()?, args[4].parse()?);
            let tokens: Vec<String> = minted["refresh"]
                .as_array()
                .unwrap()
                .iter()
                .take(n)
                .map(|t| t.as_str().unwrap().to_owned())
                .collect();
            run(tokens, secs, move |client, token| {
                let url = url.clone();
                async move {
                    let res = client
                        .post(format!("{url}/token"))
                        .basic_auth("bench", Some("bench-secret-not-a-real-secret"))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(format!("grant_type=refresh_token&refresh_token={token}"))
                        .send()
                        .await
                        .ok()?;
                    let body: Value = res.json().await.ok()?;
                    body["refresh_token"].as_str().map(str::to_owned)
                }
            })
            .await
        }
        _ => anyhow::bail!("usage: refresh_load warden|oidc|rs256|es256 ..."),
    }
}

async fn run<F, Fut>(tokens: Vec<String>, secs: u64, step: F) -> anyhow::Result<()>
where
    F: Fn(reqwest::Client, String) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Option<String>> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let client = reqwest::Client::builder().no_proxy().build()?;
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for mut token in tokens {
        let (done, failed, client, step) =
            (done.clone(), failed.clone(), client.clone(), step.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                match step(client.clone(), token.clone()).await {
                    Some(next) => {
                        token = next;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    None => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    println!(
        "refreshes: {n} in {elapsed:.1} s = {:.0}/s; failed chains: {}",
        n as f64 / elapsed,
        failed.load(Ordering::Relaxed)
    );
    Ok(())
}

fn signatures(threads: usize, secs: u64, kind: KeyKind) -> anyhow::Result<()> {
    let (key, _) = warden_crypto::jwt::SigningKey::generate(kind)?;
    let key = Arc::new(key);
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (key, done) = (key.clone(), done.clone());
            std::thread::spawn(move || {
                let claims = warden_crypto::jwt::AccessClaims {
                    iss: "warden".into(),
                    aud: "warden-api".into(),
                    sub: uuid::Uuid::now_v7().to_string(),
                    sid: uuid::Uuid::now_v7().to_string(),
                    jti: uuid::Uuid::now_v7().to_string(),
                    iat: 1,
                    exp: 901,
                    nbf: None,
                    org: None,
                };
                while Instant::now() < until {
                    key.sign(&claims).unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let n = done.load(Ordering::Relaxed);
    println!(
        "signatures ({kind:?} key): {n} in {secs} s on {threads} threads = {:.0}/s",
        n as f64 / started.elapsed().as_secs_f64()
    );
    Ok(())
}
