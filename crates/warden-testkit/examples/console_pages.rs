//! Server time of each console page (BENCHMARKS.md): Warden in process on the backend named by
//! `TESTKIT_BACKEND` (embedded SQLite by default), filled with AUDIT audit events (100,000),
//! USERS users (1,000) and HOSTS hosts (200) and a workspace with 50 members, then each page
//! fetched N times in a row by a signed-in browser's cookie after a warm-up; p50 and p99 per
//! page, from the client over loopback (so the server's time plus a loopback round trip).
//! On PostgreSQL the statistics are refreshed after the load (`ANALYZE`), as autovacuum
//! would within a minute: a plan made on the empty table's statistics is not what runs.
//! `cargo run --release -p warden-testkit --example console_pages [N] [AUDIT] [USERS] [HOSTS]`

use std::time::Instant;

use futures_util::{StreamExt, stream};
use serde_json::json;
use warden_domain::audit::{Action, Actor, ActorKind, NewEvent, Outcome};
use warden_domain::clock::{Clock, SystemClock};
use warden_testkit::TestApp;

const PASSWORD: &str = "bench password 7781 heron";

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
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
    let (n, audit, users, hosts) = (arg(1, 300), arg(2, 100_000), arg(3, 1_000), arg(4, 200));
    let app = TestApp::spawn().await?;
    let admin = app.first_admin("ops@example.com", PASSWORD).await?;

    let started = Instant::now();
    let (_, ws) = app
        .call(
            &admin,
            reqwest::Method::POST,
            "/api/v1/workspaces",
            Some(json!({"name": "Payments"})),
        )
        .await;
    let ws = ws["id"].as_str().unwrap().to_owned();
    let created: Vec<String> = stream::iter(0..users)
        .map(|i| {
            let (app, admin) = (&app, &admin);
            async move {
                let (status, body) = app
                    .call(
                        admin,
                        reqwest::Method::POST,
                        "/api/v1/admin/users",
                        Some(json!({"email": format!("user{i:04}@example.com"), "password": PASSWORD})),
                    )
                    .await;
                assert!(status.is_success(), "{body}");
                format!("user{i:04}@example.com")
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for email in created.iter().take(50) {
        let (status, body) = app
            .call(
                &admin,
                reqwest::Method::POST,
                &format!("/api/v1/workspaces/{ws}/members"),
                Some(json!({"email": email, "role": "member"})),
            )
            .await;
        assert!(status.is_success(), "{body}");
    }
    for i in 0..hosts {
        let (status, body) = app
            .call(
                &admin,
                reqwest::Method::POST,
                "/api/v1/hosts",
                Some(json!({"name": format!("build-{i:03}"), "kind": "session"})),
            )
            .await;
        assert!(status.is_success(), "{body}");
    }
    // Audit events straight into the chain, many to a transaction, as audit_fill does.
    let store = app.server.store();
    let chain = app.server.state().ctx.audit_key.clone();
    let action = Action::parse("workspace.updated").unwrap();
    let mut done = 0;
    while done < audit {
        let mut tx = store.begin().await?;
        for i in done..(done + 5_000).min(audit) {
            let event = NewEvent {
                at: SystemClock.now(),
                actor: Actor {
                    kind: ActorKind::User,
                    id: Some(format!("user-{}", i % 97)),
                },
                workspace_id: Some(ws.clone()),
                action: action.clone(),
                resource_type: "workspace".into(),
                resource_id: Some(ws.clone()),
                outcome: Outcome::Success,
                client_ip: "127.0.0.1".parse().ok(),
                user_agent: Some("console-bench/1".into()),
                request_id: Some(format!("req-{i}")),
                duration_ms: 2,
                summary: json!({"name": {"old": "alpha", "new": "beta"}}),
            };
            tx.record(&chain, &event).await?;
        }
        tx.commit().await?;
        store.chain_audit(&chain).await?;
        done = (done + 5_000).min(audit);
    }
    // What autovacuum does shortly after a bulk load: fresh planner statistics.
    if std::env::var("TESTKIT_BACKEND").as_deref() == Ok("postgres") {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&app.db.owner_url).await?;
        sqlx::query("ANALYZE").execute(&mut conn).await?;
        conn.close().await?;
    }
    println!(
        "backend {}, filled in {:.1} s: {audit} audit events, {users} users, {hosts} hosts",
        std::env::var("TESTKIT_BACKEND").unwrap_or_else(|_| "sqlite".to_owned()),
        started.elapsed().as_secs_f64()
    );

    // A signed-in browser: the console's access cookie.
    let browser = app.sign_in("ops@example.com", PASSWORD).await?;
    let client = reqwest::Client::builder().no_proxy().build()?;
    let cookie = format!("__Host-warden_access={browser}");
    let deep = audit / 2;
    let pages = [
        "/console".to_owned(),
        "/console/workspaces".to_owned(),
        format!("/console/workspaces/{ws}"),
        format!("/console/workspaces/{ws}/members"),
        format!("/console/workspaces/{ws}/settings"),
        "/console/hosts".to_owned(),
        "/console/sessions".to_owned(),
        "/console/admin/users".to_owned(),
        "/console/admin/roles".to_owned(),
        "/console/audit".to_owned(),
        "/console/audit?action=workspace.&outcome=success".to_owned(),
        format!("/console/audit?cursor={deep}"),
        format!("/console/audit?action=workspace.&outcome=success&cursor={deep}"),
        "/console/license".to_owned(),
        "/console/profile".to_owned(),
    ];
    println!(
        "{:<66} {:>9} {:>9} {:>8}",
        "page", "p50 ms", "p99 ms", "KiB"
    );
    for page in &pages {
        let mut times = Vec::with_capacity(n);
        let mut size = 0;
        for i in 0..(n + 20) {
            let t = Instant::now();
            let res = client
                .get(app.url(page))
                .header("cookie", &cookie)
                .send()
                .await?;
            anyhow::ensure!(res.status().is_success(), "{page}: {}", res.status());
            size = res.bytes().await?.len();
            if i >= 20 {
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        times.sort_by(f64::total_cmp);
        let shown = page.replace(&ws, "{ws}");
        println!(
            "{shown:<66} {:>9.2} {:>9.2} {:>8.1}",
            pct(&times, 0.5),
            pct(&times, 0.99),
            size as f64 / 1024.0
        );
    }
    Ok(())
}
