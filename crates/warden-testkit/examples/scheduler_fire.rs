//! Scheduler lateness (BENCHMARKS.md): NODES Warden nodes in process sharing one database
//! (the backend named by `TESTKIT_BACKEND`; PostgreSQL for a real cluster), AUTOMATIONS
//! recurring automations (`* * * * *`) all due at the next minute. After the instant, every
//! automation must have exactly one run job; lateness is the job's enqueue time minus the
//! instant it is for (its batch's start), and the time until the last of them is committed
//! and visible. The nodes schedule but run no jobs (`automations.run_jobs = false`), so the
//! jobs stay queued where they can be counted.
//! `cargo run --release -p warden-testkit --example scheduler_fire [AUTOMATIONS] [NODES]`

use std::time::Duration;

use serde_json::json;
use warden_domain::access::Permission;
use warden_domain::clock::{Clock, SystemClock};
use warden_domain::identity::Principal;
use warden_domain::tenancy::WorkspaceId;
use warden_store::automations::AutomationSpec;
use warden_testkit::{AppOptions, TestApp};

const PASSWORD: &str = "bench password 7781 heron";

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn pct(sorted: &[i64], p: f64) -> f64 {
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    #[allow(clippy::cast_precision_loss)]
    let ms = sorted[i] as f64 / 1000.0;
    ms
}

#[tokio::main]
#[allow(clippy::print_stdout, clippy::unwrap_used)]
async fn main() -> anyhow::Result<()> {
    let (count, nodes) = (arg(1, 10_000), arg(2, 2));
    let first = TestApp::spawn_with(AppOptions {
        env: vec![
            ("WARDEN_LOG_LEVEL".to_owned(), "error".to_owned()),
            ("WARDEN_AUTOMATIONS_RUN_JOBS".to_owned(), "false".to_owned()),
        ],
        ..AppOptions::default()
    })
    .await?;
    let mut others = Vec::new();
    for _ in 1..nodes {
        others.push(
            TestApp::spawn_with(AppOptions {
                env: vec![
                    ("WARDEN_DATABASE_URL".to_owned(), first.db.url.clone()),
                    (
                        "WARDEN_ENCRYPTION_KEY".to_owned(),
                        first.master_key_hex.clone(),
                    ),
                    ("WARDEN_LOG_LEVEL".to_owned(), "error".to_owned()),
                    ("WARDEN_AUTOMATIONS_RUN_JOBS".to_owned(), "false".to_owned()),
                ],
                ..AppOptions::default()
            })
            .await?,
        );
    }
    let admin = first.first_admin("ops@example.com", PASSWORD).await?;
    let (_, ws) = first
        .call(
            &admin,
            reqwest::Method::POST,
            "/api/v1/workspaces",
            Some(json!({"name": "Cron"})),
        )
        .await;
    let ws = WorkspaceId::parse(ws["id"].as_str().unwrap()).unwrap();
    let (_, me) = first
        .call(&admin, reqwest::Method::GET, "/api/v1/me", None)
        .await;
    let user = me["id"].as_str().unwrap().parse()?;
    let store = first.server.store();
    // The next whole minute at least 20 s away, so the load is in before it.
    let now = warden_core::op::unix_us(SystemClock.now());
    let minute = 60_000_000;
    let due = (now + 20_000_000).div_euclid(minute) * minute + minute;
    let grant = store
        .authorize(
            &Principal::session(user, uuid::Uuid::now_v7()),
            ws,
            Permission::AUTOMATIONS_CREATE,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut tx = store
        .scoped(&grant)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for n in 0..count {
        let spec = AutomationSpec {
            name: format!("every-minute-{n:05}"),
            kind: "cron".to_owned(),
            run_at: None,
            cron: Some("* * * * *".to_owned()),
            timezone: Some("UTC".to_owned()),
            loop_interval_secs: None,
            loop_max: None,
            prompt: "tick".to_owned(),
            prompt_name: None,
            provider: "claude-code".to_owned(),
            command: None,
            mode: "develop".to_owned(),
            host_id: None,
            missed: "skip".to_owned(),
            enabled: true,
            next_run_at: Some(due),
        };
        tx.insert_automation(uuid::Uuid::now_v7(), &spec, now)
            .await?;
    }
    tx.commit().await?;
    println!(
        "backend {}, {} cores, {nodes} nodes, {count} automations due at one instant",
        warden_testkit::backend().name(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let wait = due - warden_core::op::unix_us(SystemClock.now());
    tokio::time::sleep(Duration::from_micros(u64::try_from(wait).unwrap_or(0))).await;
    // When the last of them is visible in the queue (committed), as a client sees it.
    let mut all_visible = None;
    for _ in 0..1500 {
        let c = store.job_counts().await?;
        if usize::try_from(c.queued + c.running + c.dead).unwrap_or(0) >= count {
            all_visible = Some(warden_core::op::unix_us(SystemClock.now()) - due);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    // Every run job of that instant, wherever it is now.
    let mut late = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for status in ["queued", "running", "done", "dead"] {
        let mut cursor = None;
        loop {
            let page = store.jobs_in(status, cursor, 200).await?;
            for j in &page {
                // A job changing state between two pages is listed twice: count it once.
                if j.kind == "automation.run" && seen.insert(j.id) {
                    late.push(j.created_at - due);
                }
            }
            match page.last() {
                Some(last) if page.len() == 200 => cursor = Some(last.id),
                _ => break,
            }
        }
    }
    late.sort_unstable();
    let fired = late.len();
    println!(
        "fired {fired} run jobs for {count} automations ({} twice); lateness (batch start) \
         p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; all {count} visible in the queue {} ms \
         after the instant",
        fired.saturating_sub(count),
        pct(&late, 0.5),
        pct(&late, 0.99),
        pct(&late, 1.0),
        all_visible.map_or_else(|| "never (15 s)".to_owned(), |us| (us / 1000).to_string())
    );
    drop(others);
    Ok(())
}
