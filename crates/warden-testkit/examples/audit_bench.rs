//! Audit trail throughput (BENCHMARKS.md): events appended per second by 32 concurrent
//! writers, each event in its own transaction, counted when the last one is in the chain (the
//! chainer runs alongside, as in the server); first transactions that only record the event
//! (a denied action, a failed sign-in), then transactions that write a row first, as most
//! handlers do (and the same without the event, for comparison); then chain verification speed.
//!
//! `TESTKIT_BACKEND=sqlite|postgres cargo run --release -p warden-testkit --example audit_bench -- [EVENTS [WRITERS]]`
//! (PostgreSQL also needs `TESTKIT_POSTGRES_URL`; `scripts/bench-audit` sets both up.)

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use serde_json::json;
use warden_crypto::MasterKey;
use warden_domain::audit::{Action, Actor, ActorKind, NewEvent, Outcome};
use warden_domain::clock::{Clock, SystemClock};
use warden_store::audit::ChainKey;
use warden_store::keyring;
use warden_testkit::TestDb;

#[tokio::main]
#[allow(clippy::print_stdout, clippy::disallowed_methods)]
async fn main() -> Result<()> {
    let total: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let writers: usize = std::env::args()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(32);
    let db = TestDb::new().await?;
    let store = db.store().await?;
    let ring = keyring::load_or_create(&store, &MasterKey::generate()?, &SystemClock).await?;
    let key = Arc::new(ChainKey::load_or_create(&store, &ring, &SystemClock).await?);
    let action = Action::parse("workspace.updated").ok_or_else(|| anyhow::anyhow!("action"))?;

    // The chainer runs as in the server: woken by each commit that recorded an event.
    let chainer = warden_core::audit::AuditMonitor::new().spawn_chainer(
        store.clone(),
        key.clone(),
        std::time::Duration::from_secs(1),
    );
    // (change first, record an event): the last run, the same changes without events, is the
    // baseline that shows what recording costs a transaction.
    for (with_change, with_event) in [(false, true), (true, true), (true, false)] {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..writers {
            let (store, key, action) = (store.clone(), key.clone(), action.clone());
            tasks.push(tokio::spawn(async move {
                for i in (w..total).step_by(writers) {
                    let event = NewEvent {
                        at: SystemClock.now(),
                        actor: Actor {
                            kind: ActorKind::User,
                            id: Some(format!("user-{w}")),
                        },
                        workspace_id: Some("ws-1".into()),
                        action: action.clone(),
                        resource_type: "workspace".into(),
                        resource_id: Some(format!("ws-{i}")),
                        outcome: Outcome::Success,
                        client_ip: "127.0.0.1".parse().ok(),
                        user_agent: Some("audit-bench/1".into()),
                        request_id: Some(format!("req-{i}")),
                        duration_ms: 2,
                        summary: json!({"name": {"old": "a", "new": "b"}}),
                    };
                    let mut tx = store.begin().await?;
                    if with_change {
                        // A row written before the event, as a handler's change would be.
                        let row = format!("bench-{with_event}-{i}");
                        tx.insert_setup_token(row.as_bytes(), 0, 0).await?;
                    }
                    if with_event {
                        tx.record(&key, &event).await?;
                    }
                    tx.commit().await?;
                }
                Ok::<_, warden_store::StoreError>(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        let committed = started.elapsed();
        // Appended means in the chain: wait for the chainer to catch up.
        while store.audit_pending(&key).await?.0 > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let append = started.elapsed();
        if !with_event {
            println!(
                "{}: baseline, the same {total} changes without events: {:.0} transactions/s",
                db.backend.name(),
                total as f64 / append.as_secs_f64(),
            );
            continue;
        }
        println!(
            "{}: appended {total} events{} with {writers} writers in {:.2} s: {:.0} events/s \
             (all committed after {:.2} s, chained {:.0} ms later)",
            db.backend.name(),
            if with_change {
                ", each after a change in its transaction,"
            } else {
                ""
            },
            append.as_secs_f64(),
            total as f64 / append.as_secs_f64(),
            committed.as_secs_f64(),
            (append - committed).as_secs_f64() * 1000.0
        );
    }
    chainer.abort();

    let started = Instant::now();
    let v = store.verify_audit(&key, &[]).await?;
    let verify = started.elapsed();
    anyhow::ensure!(
        v.broken.is_none() && v.checked == 2 * total as u64,
        "chain broken: {v:?}"
    );
    println!(
        "{}: verified {} events in {:.2} s: {:.0} events/s",
        db.backend.name(),
        v.checked,
        verify.as_secs_f64(),
        v.checked as f64 / verify.as_secs_f64()
    );
    store.close().await;
    Ok(())
}
