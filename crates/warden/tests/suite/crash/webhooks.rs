//! The webhook intake under the crash test: a provider sends deliveries (each with its own
//! delivery id) at full speed while the server is killed. A `200` must mean stored: after
//! the kills, every delivery that was answered `200` is sent again, and each must be a
//! replay (already stored, not stored twice), and every stored delivery queued exactly one
//! automation job.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{all, ok};

/// A workspace with an event source whose deliveries run an automation.
pub(super) struct Hooks {
    pub ws: String,
    pub source: String,
    /// The path of the source's public URL (`/webhooks/wwh_…`), joined to the server's
    /// address of the moment.
    pub path: String,
}

/// Delivery ids answered `200`, and answers no provider should get.
#[derive(Default)]
pub(super) struct Sent {
    pub acknowledged: Mutex<Vec<String>>,
    pub wrong: Mutex<Vec<String>>,
}

pub(super) async fn set_up(client: &reqwest::Client, url: &str, admin: &str) -> Hooks {
    let ws = ok(
        client,
        url,
        admin,
        Method::POST,
        "/api/v1/workspaces",
        Some(json!({"name": "hooks"})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let automation = ok(
        client,
        url,
        admin,
        Method::POST,
        &format!("/api/v1/workspaces/{ws}/automations"),
        Some(
            json!({"name": "on delivery", "kind": "trigger", "prompt": "Delivery {{ event.n }}",
                    "provider": "command", "command": ["true"]}),
        ),
    )
    .await;
    let created = ok(
        client,
        url,
        admin,
        Method::POST,
        &format!("/api/v1/workspaces/{ws}/event-sources"),
        Some(
            json!({"name": "provider", "kind": "generic", "delivery_header": "x-delivery",
                    "automation_id": automation["id"], "rate_per_minute": 1_000_000,
                    "backlog": 100_000}),
        ),
    )
    .await;
    let full = created["url"].as_str().unwrap();
    Hooks {
        ws,
        source: created["source"]["id"].as_str().unwrap().to_owned(),
        path: full[full.find("/webhooks/").unwrap()..].to_owned(),
    }
}

/// One delivery; `None` when the server is gone.
async fn deliver(client: &reqwest::Client, url: &str, path: &str, id: &str) -> Option<StatusCode> {
    let res = client
        .post(format!("{url}{path}"))
        .header("x-delivery", id)
        .header("content-type", "application/json")
        .body(json!({"type": "tick", "n": id}).to_string())
        .send()
        .await
        .ok()?;
    Some(res.status())
}

/// Sends deliveries one after another until the server is gone.
pub(super) async fn send(
    client: reqwest::Client,
    url: String,
    path: String,
    prefix: String,
    sent: Arc<Sent>,
) {
    for i in 0.. {
        let id = format!("{prefix}-{i}");
        match deliver(&client, &url, &path, &id).await {
            None => return,
            Some(StatusCode::OK) => sent.acknowledged.lock().unwrap().push(id),
            // Not stored in time: a provider sends it again later (it is, below).
            Some(StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Some(s) => {
                sent.wrong
                    .lock()
                    .unwrap()
                    .push(format!("delivery {id}: {s}"));
                return;
            }
        }
    }
}

async fn counters(client: &reqwest::Client, url: &str, admin: &str, h: &Hooks) -> Value {
    ok(
        client,
        url,
        admin,
        Method::GET,
        &format!("/api/v1/workspaces/{}/event-sources/{}", h.ws, h.source),
        None,
    )
    .await["counters"]
        .clone()
}

/// After the kills: nothing acknowledged was lost, nothing stored twice, one job each.
pub(super) async fn check(
    client: &reqwest::Client,
    url: &str,
    admin: &str,
    h: &Hooks,
    sent: &Sent,
) -> (usize, i64) {
    let acknowledged = sent.acknowledged.lock().unwrap().clone();
    assert!(
        !acknowledged.is_empty(),
        "deliveries got through before the kills"
    );
    // What the last life left in the inbox is processed first.
    let mut before = counters(client, url, admin, h).await;
    for _ in 0..300 {
        if before["waiting"].as_i64() == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        before = counters(client, url, admin, h).await;
    }
    assert_eq!(
        before["waiting"].as_i64(),
        Some(0),
        "the inbox drained: {before}"
    );
    for id in &acknowledged {
        assert_eq!(
            deliver(client, url, &h.path, id).await,
            Some(StatusCode::OK)
        );
    }
    // The drop counters are written in batches: wait for the resends to be counted.
    let want = before["replayed"].as_i64().unwrap() + acknowledged.len() as i64;
    let mut now = before.clone();
    for _ in 0..100 {
        now = counters(client, url, admin, h).await;
        if now["replayed"].as_i64().unwrap() >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        now["accepted"], before["accepted"],
        "an acknowledged delivery was not stored: its resend was new ({before} -> {now})"
    );
    assert_eq!(now["replayed"].as_i64(), Some(want), "{before} -> {now}");
    let accepted = now["accepted"].as_i64().unwrap();
    let mut jobs = 0;
    for status in ["queued", "running", "done", "dead"] {
        jobs += all(
            client,
            url,
            admin,
            &format!("/api/v1/admin/jobs?status={status}"),
            "items",
        )
        .await
        .into_iter()
        .filter(|j| j["workspace_id"].as_str() == Some(h.ws.as_str()))
        .count();
    }
    assert_eq!(
        jobs as i64, accepted,
        "one automation job per stored delivery"
    );
    (acknowledged.len(), accepted)
}
