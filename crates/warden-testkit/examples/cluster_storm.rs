//! Three nodes on one PostgreSQL (BENCHMARKS.md, "Any node serves any host"): starts three
//! release `warden serve` processes on a fresh database (`TESTKIT_BACKEND=postgres`), then
//!
//! 1. a reconnect storm: N approved hosts registered directly in the database (one PBKDF2 key
//!    shared by all, each its own key id — a harness shortcut, as in `host_storm`), each with a
//!    session ticket minted with the installation's ticket secret, connect at once, host i to
//!    node i mod 3; the time until every one is welcomed;
//! 2. revocation across the nodes: R sessions of one account, each used on all three nodes
//!    (verified and cached everywhere), then signed out one by one on node i mod 3; the time from
//!    sending the sign-out until the session is refused on all three nodes.
//!
//! `cluster_storm PATH_TO_WARDEN [N] [R]`
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use warden_crypto::MasterKey;
use warden_testkit::storm::{approved_hosts, connect, free_port};

const EMAIL: &str = "ops@example.com";
const PASSWORD: &str = "bench password 7781 heron";

fn base_env(db: &warden_testkit::TestDb, key: &str) -> Vec<(String, String)> {
    let mut env = db.env();
    env.push(("WARDEN_ENCRYPTION_KEY".into(), key.into()));
    env.push(("WARDEN_LOG_LEVEL".into(), "error".into()));
    env.push(("WARDEN_LOCAL_HOST".into(), "false".into()));
    env.push(("WARDEN_AUTH_SIGNING_KEY_BITS".into(), "2048".into()));
    env
}

async fn start(
    warden: &str,
    env: &[(String, String)],
    dir: &std::path::Path,
    port: u16,
) -> Result<tokio::process::Child> {
    let child = tokio::process::Command::new(warden)
        .arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .envs(env.iter().cloned())
        .env("WARDEN_DATA_DIR", dir)
        // Every simulated host connects from 127.0.0.1.
        .env("WARDEN_HTTP_MAX_CONNECTIONS", "20000")
        .env("WARDEN_HTTP_MAX_CONNECTIONS_PER_IP", "20000")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let client = reqwest::Client::builder().no_proxy().build()?;
    for _ in 0..400 {
        if client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(child);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("warden did not start")
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let warden = args.next().context("PATH_TO_WARDEN")?;
    let n: usize = args.next().map_or(Ok(10_000), |a| a.parse())?;
    let rounds: usize = args.next().map_or(Ok(200), |a| a.parse())?;
    warden_testkit::install_crypto_provider();
    let db = warden_testkit::TestDb::new().await?;
    if db.backend != warden_store::Backend::Postgres {
        bail!("several nodes share PostgreSQL: run with TESTKIT_BACKEND=postgres");
    }
    let master = MasterKey::generate()?;
    let env = base_env(&db, &master.to_hex());
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    // The first node migrates and makes the keyring; then the other two join.
    let mut nodes = vec![start(&warden, &env, dirs[0].path(), ports[0]).await?];
    for i in 1..3 {
        nodes.push(start(&warden, &env, dirs[i].path(), ports[i]).await?);
    }

    // 1. Reconnect storm.
    let store = db.connect().await?;
    let tickets = approved_hosts(&store, &master, n).await?;
    store.close().await;
    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("ws://127.0.0.1:{p}/api/v1/agent/connect"))
        .collect();
    let t0 = Instant::now();
    let tasks: Vec<_> = tickets
        .into_iter()
        .enumerate()
        .map(|(i, t)| tokio::spawn(connect(urls[i % 3].clone(), t)))
        .collect();
    let mut held = Vec::with_capacity(n);
    let mut failed = 0;
    for t in tasks {
        match t.await {
            Ok(Some(ws)) => held.push(ws),
            _ => failed += 1,
        }
    }
    println!(
        "{n} hosts reconnecting at once, spread over 3 nodes on PostgreSQL: all done in {:.2} s ({} welcomed, {failed} failed)",
        t0.elapsed().as_secs_f64(),
        held.len()
    );
    drop(held);

    // 2. Revocation across the nodes.
    let created = tokio::process::Command::new(&warden)
        .args(["user", "create", "--email", EMAIL, "--admin"])
        .envs(env.iter().cloned())
        .env("WARDEN_DATA_DIR", dirs[0].path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut created = created;
    {
        use tokio::io::AsyncWriteExt as _;
        let mut stdin = created.stdin.take().context("stdin")?;
        stdin.write_all(format!("{PASSWORD}\n").as_bytes()).await?;
    }
    if !created.wait().await?.success() {
        bail!("warden user create failed");
    }
    let client = reqwest::Client::builder().no_proxy().build()?;
    let base = |i: usize| format!("http://127.0.0.1:{}", ports[i % 3]);
    let mut tokens = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let res: serde_json::Value = client
            .post(format!("{}/api/v1/auth/sign-in", base(i)))
            .json(&serde_json::json!({"email": EMAIL, "password": PASSWORD}))
            .send()
            .await?
            .json()
            .await?;
        let token = res["access_token"]
            .as_str()
            .with_context(|| format!("sign-in refused: {res}"))?
            .to_owned();
        for node in 0..3 {
            let s = client
                .get(format!("{}/api/v1/me", base(node)))
                .bearer_auth(&token)
                .send()
                .await?
                .status();
            if !s.is_success() {
                bail!("a fresh session was refused on node {node}: {s}");
            }
        }
        tokens.push(token);
    }
    let mut everywhere = Vec::with_capacity(rounds);
    let mut answered = Vec::with_capacity(rounds);
    for (i, token) in tokens.iter().enumerate() {
        let t0 = Instant::now();
        let s = client
            .post(format!("{}/api/v1/auth/sign-out", base(i)))
            .bearer_auth(token)
            .send()
            .await?
            .status();
        if s != reqwest::StatusCode::NO_CONTENT {
            bail!("sign-out answered {s}");
        }
        answered.push(t0.elapsed().as_secs_f64() * 1e3);
        for node in 0..3 {
            loop {
                let s = client
                    .get(format!("{}/api/v1/me", base(node)))
                    .bearer_auth(token)
                    .send()
                    .await?
                    .status();
                if s == reqwest::StatusCode::UNAUTHORIZED {
                    break;
                }
                if t0.elapsed() > Duration::from_secs(10) {
                    bail!("node {node} still accepts a session signed out 10 s ago");
                }
            }
        }
        everywhere.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    everywhere.sort_by(f64::total_cmp);
    answered.sort_by(f64::total_cmp);
    println!(
        "revocation across 3 nodes ({rounds} sessions, each signed out on one node): refused on all three {:.1} ms p50, {:.1} ms p99, {:.1} ms max after the sign-out was sent (the sign-out itself answered in {:.1} ms p50, {:.1} ms p99: it waits until every live node applied it)",
        percentile(&everywhere, 0.5),
        percentile(&everywhere, 0.99),
        percentile(&everywhere, 1.0),
        percentile(&answered, 0.5),
        percentile(&answered, 0.99),
    );
    drop(nodes);
    Ok(())
}
