//! Reconnect storm and idle-connection memory (BENCHMARKS.md, hosts): starts `warden serve`
//! (release, embedded SQLite), registers N approved hosts directly in its database (one
//! PBKDF2 key shared by all, each its own key id: a harness shortcut), mints each host's
//! session ticket with the server's own ticket secret, restarts the server, then connects all
//! N hosts at once with their tickets and times until every one is welcomed. With every
//! connection still open it reports the server's resident memory.
//!
//! `host_storm PATH_TO_WARDEN N`
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use warden_crypto::MasterKey;
use warden_store::{ConnectOptions, Store};
use warden_testkit::storm::{approved_hosts, connect, free_port};

async fn start(
    warden: &str,
    dir: &std::path::Path,
    key: &str,
    port: u16,
) -> Result<tokio::process::Child> {
    let child = tokio::process::Command::new(warden)
        .arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .env("WARDEN_DATA_DIR", dir)
        .env("WARDEN_ENCRYPTION_KEY", key)
        .env("WARDEN_LOG_LEVEL", "error")
        // Every simulated host connects from 127.0.0.1.
        .env("WARDEN_HTTP_MAX_CONNECTIONS", "20000")
        .env("WARDEN_HTTP_MAX_CONNECTIONS_PER_IP", "20000")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(child);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("warden did not start")
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let warden = args.next().context("PATH_TO_WARDEN")?;
    let n: usize = args.next().context("N")?.parse()?;
    let dir = tempfile::tempdir()?;
    let master = MasterKey::generate()?;
    let key_hex = master.to_hex().to_string();
    let port = free_port();

    let mut server = start(&warden, dir.path(), &key_hex, port).await?;
    let url = format!("sqlite://{}", dir.path().join("warden.db").display());
    let store = Store::connect(&ConnectOptions::new(url)).await?;
    let tickets = approved_hosts(&store, &master, n).await?;
    store.close().await;

    // Restart: stop (and wait for) the old server, start a new one on the same port.
    server.kill().await?;
    let server = start(&warden, dir.path(), &key_hex, port).await?;
    let pid = server.id().context("pid")?;
    let rss_before = rss_mib(pid);
    let url = format!("ws://127.0.0.1:{port}/api/v1/agent/connect");
    let t0 = Instant::now();
    let tasks: Vec<_> = tickets
        .into_iter()
        .map(|t| tokio::spawn(connect(url.clone(), t)))
        .collect();
    let mut held = Vec::with_capacity(n);
    let mut failed = 0;
    for t in tasks {
        match t.await {
            Ok(Some(ws)) => held.push(ws),
            _ => failed += 1,
        }
    }
    let elapsed = t0.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = rss_mib(pid);
    println!(
        "{n} hosts reconnecting at once after a restart: all done in {:.2} s ({} welcomed, {failed} failed)",
        elapsed.as_secs_f64(),
        held.len()
    );
    println!(
        "server resident memory: {rss_before:.1} MiB after restart, {rss:.1} MiB with {} connected hosts",
        held.len()
    );
    drop(held);
    drop(server);
    Ok(())
}
