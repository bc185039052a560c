//! Fills a database with N audit events for export and verification benchmarks
//! (BENCHMARKS.md), many events per transaction so filling is quick.
//!
//! `audit_fill DATABASE_URL MASTER_KEY_HEX N`

use anyhow::{Context as _, Result};
use serde_json::json;
use warden_crypto::MasterKey;
use warden_domain::audit::{Action, Actor, ActorKind, NewEvent, Outcome};
use warden_domain::clock::{Clock, SystemClock};
use warden_store::audit::ChainKey;
use warden_store::{ConnectOptions, Store, keyring};

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args.next().context("DATABASE_URL")?;
    let key = MasterKey::from_hex(&args.next().context("MASTER_KEY_HEX")?)?;
    let total: usize = args.next().context("N")?.parse()?;
    let store = Store::connect(&ConnectOptions::new(url)).await?;
    store.migrate(&SystemClock).await?;
    let ring = keyring::load_or_create(&store, &key, &SystemClock).await?;
    let chain = ChainKey::load_or_create(&store, &ring, &SystemClock).await?;
    let action = Action::parse("workspace.updated").context("action")?;
    let mut done = 0;
    while done < total {
        let mut tx = store.begin().await?;
        for i in done..(done + 5_000).min(total) {
            let event = NewEvent {
                at: SystemClock.now(),
                actor: Actor {
                    kind: ActorKind::User,
                    id: Some(format!("user-{}", i % 97)),
                },
                workspace_id: Some(format!("ws-{}", i % 13)),
                action: action.clone(),
                resource_type: "workspace".into(),
                resource_id: Some(format!("ws-{}", i % 13)),
                outcome: Outcome::Success,
                client_ip: "127.0.0.1".parse().ok(),
                user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) audit-fill/1".into()),
                request_id: Some(format!("req-{i}")),
                duration_ms: 2,
                summary: json!({"name": {"old": "alpha", "new": "beta"}, "token": "[changed]"}),
            };
            tx.record(&chain, &event).await?;
        }
        tx.commit().await?;
        store.chain_audit(&chain).await?;
        done = (done + 5_000).min(total);
    }
    store.close().await;
    Ok(())
}
