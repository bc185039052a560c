//! Crash consistency: `warden serve` is killed with SIGKILL at random moments while clients
//! write at full speed — workspaces (each one audited), refresh-token rotations, a host
//! streaming a session's output, and a provider's webhook deliveries — and started again
//! each time. Then: every write a client saw acknowledged is there, every workspace has
//! exactly one audit event, the audit chain verifies, no rotated refresh token works again,
//! the session's output holds every chunk the server confirmed, once each, and every
//! webhook delivery answered `200` is stored, once, with one automation job
//! ([`webhooks`]).
//!
//! `WARDEN_CRASH_KILLS` sets how many kills (5 by default; `scripts/reliability` runs 25).

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use warden_protocol::{AgentMessage, PROTOCOL_VERSION, ServerMessage, Stream};
use warden_testkit::{TestDb, protocol_host};

use crate::cli::KillOnDrop;

mod webhooks;

const EMAIL: &str = "ops@example.com";
const PASSWORD: &str = "violet tractor 93 lagoon";
/// Chunks a host sends ahead of the server's confirmation.
const AHEAD: u64 = 64;

/// `warden serve` on `db`: the process, its address and, on the first start, its setup link.
fn start(db: &TestDb, key: &str) -> (KillOnDrop, String, Option<String>) {
    let mut command = crate::cli::warden(db.dir.path());
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .envs(db.env())
        .env("WARDEN_DATA_DIR", db.data_dir())
        .env("WARDEN_ENCRYPTION_KEY", key)
        .env("WARDEN_LOCAL_HOST", "false")
        .env("WARDEN_AUTH_SIGNING_KEY_BITS", "2048")
        .stdout(Stdio::piped())
        .stderr(crate::cli::server_log());
    let mut child = KillOnDrop(command.spawn().expect("warden serve runs"));
    let (url, setup) = crate::cli::ready(&crate::cli::banner(&mut child));
    (child, url, setup)
}

/// One API call; `None` when the server is gone (killed mid-request).
async fn call(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Option<(StatusCode, Value)> {
    let mut req = client
        .request(method, format!("{url}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.ok()?;
    let status = res.status();
    let body = res.json::<Value>().await.ok()?;
    Some((status, body))
}

async fn ok(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let (status, body) = call(client, url, token, method, path, body)
        .await
        .expect("the server answers");
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

/// Signs in: (access token, refresh token).
async fn sign_in(client: &reqwest::Client, url: &str) -> Option<(String, String)> {
    let res = client
        .post(format!("{url}/api/v1/auth/sign-in"))
        .json(&json!({"email": EMAIL, "password": PASSWORD}))
        .send()
        .await
        .ok()?;
    assert!(res.status().is_success(), "sign-in: {}", res.status());
    let v: Value = res.json().await.ok()?;
    Some((
        v["access_token"].as_str()?.to_owned(),
        v["refresh_token"].as_str()?.to_owned(),
    ))
}

async fn refresh(client: &reqwest::Client, url: &str, token: &str) -> Option<(StatusCode, Value)> {
    let res = client
        .post(format!("{url}/api/v1/auth/refresh"))
        .json(&json!({ "refresh_token": token }))
        .send()
        .await
        .ok()?;
    let status = res.status();
    Some((status, res.json().await.ok()?))
}

/// What the clients saw acknowledged, across every life of the server.
#[derive(Default)]
struct Seen {
    /// Workspace names created with a 2xx.
    workspaces: Mutex<Vec<String>>,
    /// Refresh tokens a rotation was acknowledged for (each must never work again).
    rotated: Mutex<Vec<String>>,
    /// The refresh token the client holds now.
    current: Mutex<String>,
    /// Output chunks the server confirmed storing: sequence numbers below this.
    confirmed: AtomicU64,
    /// Answers no client should get (anything but 2xx, 401 after a crash, 429).
    wrong: Mutex<Vec<String>>,
}

/// Creates workspaces one after another until the server is gone.
async fn create_workspaces(
    client: reqwest::Client,
    url: String,
    token: String,
    seen: Arc<Seen>,
    prefix: String,
) {
    for i in 0.. {
        let name = format!("{prefix}-{i}");
        match call(
            &client,
            &url,
            &token,
            Method::POST,
            "/api/v1/workspaces",
            Some(json!({"name": name})),
        )
        .await
        {
            None => return,
            Some((s, _)) if s.is_success() => seen.workspaces.lock().unwrap().push(name),
            Some((StatusCode::TOO_MANY_REQUESTS, _)) => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Some((s, body)) => {
                seen.wrong
                    .lock()
                    .unwrap()
                    .push(format!("creating {name}: {s} {body}"));
                return;
            }
        }
    }
}

/// Rotates the refresh token as fast as it is answered until the server is gone. A token
/// refused after a crash (its rotation was stored, the answer never arrived, so presenting it
/// again is reuse and ends the family) is replaced by signing in again.
async fn rotate(client: reqwest::Client, url: String, seen: Arc<Seen>) {
    loop {
        let token = seen.current.lock().unwrap().clone();
        match refresh(&client, &url, &token).await {
            None => return,
            Some((s, body)) if s.is_success() => {
                let Some(next) = body["refresh_token"].as_str() else {
                    seen.wrong
                        .lock()
                        .unwrap()
                        .push(format!("refresh without a token: {body}"));
                    return;
                };
                seen.rotated.lock().unwrap().push(token);
                *seen.current.lock().unwrap() = next.to_owned();
            }
            Some((StatusCode::UNAUTHORIZED, _)) => match sign_in(&client, &url).await {
                Some((_, fresh)) => *seen.current.lock().unwrap() = fresh,
                None => return,
            },
            Some((StatusCode::TOO_MANY_REQUESTS, _)) => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Some((s, body)) => {
                seen.wrong
                    .lock()
                    .unwrap()
                    .push(format!("refresh: {s} {body}"));
                return;
            }
        }
    }
}

/// A host that reconnects, lists its running session and streams its output, resending
/// whatever the server has not confirmed, until the server is gone.
async fn stream_output(url: String, key: String, session: String, seen: Arc<Seen>) {
    let Ok(ws) = protocol_host::connect_at(&url, &key).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    let hello = protocol_host::hello(PROTOCOL_VERSION);
    let running = Message::text(
        AgentMessage::Running {
            session_ids: vec![session.clone()],
        }
        .encode(),
    );
    if sink.send(hello).await.is_err() || sink.send(running).await.is_err() {
        return;
    }
    let reader = async {
        while let Some(Ok(frame)) = stream.next().await {
            if let Message::Text(t) = frame
                && let Ok(ServerMessage::Recorded {
                    through: Some(through),
                    ..
                }) = ServerMessage::decode(t.as_str())
            {
                seen.confirmed.fetch_max(through + 1, Ordering::SeqCst);
            }
        }
    };
    let writer = async {
        let mut next = seen.confirmed.load(Ordering::SeqCst);
        loop {
            if next >= seen.confirmed.load(Ordering::SeqCst) + AHEAD {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
            let chunk = AgentMessage::SessionOutput {
                session_id: session.clone(),
                seq: next,
                stream: Stream::Stdout,
                data: format!("line {next}\n"),
            };
            if sink.send(Message::text(chunk.encode())).await.is_err() {
                return;
            }
            next += 1;
        }
    };
    tokio::select! {
        () = reader => {}
        () = writer => {}
    }
}

/// Every page of a listing (`items`/`next_cursor`).
pub(crate) async fn all(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    path: &str,
    key: &str,
) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let page = ok(
            client,
            url,
            token,
            Method::GET,
            &format!("{path}{sep}limit=200{cursor}"),
            None,
        )
        .await;
        out.extend(page[key].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_write_again_and_again_it_loses_nothing_it_acknowledged() {
    let kills: u32 = std::env::var("WARDEN_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let db = TestDb::new().await.unwrap();
    let key = warden_testkit::random_key_hex();
    let (mut server, mut url, setup) = start(&db, &key);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let setup = setup.expect("a setup link on the first start");
    crate::cli::set_up(&client, &url, &setup, EMAIL, PASSWORD).await;
    // The writers and the rotating client are separate sign-ins (devices): a family ended by
    // a replay after a crash takes its access tokens with it, and only its own.
    let (admin, _) = sign_in(&client, &url).await.unwrap();
    let seen = Arc::new(Seen::default());
    *seen.current.lock().unwrap() = sign_in(&client, &url).await.unwrap().1;

    // A workspace with a host running one session.
    let ws = ok(
        &client,
        &url,
        &admin,
        Method::POST,
        "/api/v1/workspaces",
        Some(json!({"name": "crash"})),
    )
    .await;
    let ws = ws["id"].as_str().unwrap().to_owned();
    ok(
        &client,
        &url,
        &admin,
        Method::PUT,
        &format!("/api/v1/workspaces/{ws}/settings"),
        Some(json!({"repository": "/srv/repositories/agents"})),
    )
    .await;
    let host = ok(
        &client,
        &url,
        &admin,
        Method::POST,
        "/api/v1/hosts",
        Some(json!({"name": "agent-01", "kind": "session"})),
    )
    .await;
    let host_id = host["host"]["id"].as_str().unwrap().to_owned();
    let host_key = host["api_key"].as_str().unwrap().to_owned();
    ok(
        &client,
        &url,
        &admin,
        Method::POST,
        &format!("/api/v1/hosts/{host_id}/approve"),
        None,
    )
    .await;
    let (mut conn, _) = {
        let mut c = protocol_host::connect_at(&url, &host_key).await.unwrap();
        c.send(protocol_host::hello(PROTOCOL_VERSION))
            .await
            .unwrap();
        let welcome = protocol_host::next(&mut c).await;
        (c, welcome)
    };
    let created = ok(
        &client,
        &url,
        &admin,
        Method::POST,
        &format!("/api/v1/workspaces/{ws}/sessions"),
        Some(json!({"provider": "claude-code", "prompt": "Count.", "host_id": host_id})),
    )
    .await;
    let session = created["id"].as_str().unwrap().to_owned();
    let hooks = webhooks::set_up(&client, &url, &admin).await;
    let sent = Arc::new(webhooks::Sent::default());
    loop {
        match protocol_host::next(&mut conn).await {
            Some(ServerMessage::StartSession { .. }) => break,
            Some(_) => {}
            None => panic!("the host's connection closed"),
        }
    }
    let started = AgentMessage::SessionStarted {
        session_id: session.clone(),
        isolation: "none".into(),
    };
    conn.send(Message::text(started.encode())).await.unwrap();
    drop(conn);

    let mut workspaces_before = 0;
    let mut rotations_before = 0;
    for round in 0..kills {
        let tasks = vec![
            tokio::spawn(create_workspaces(
                client.clone(),
                url.clone(),
                admin.clone(),
                seen.clone(),
                format!("w{round}a"),
            )),
            tokio::spawn(create_workspaces(
                client.clone(),
                url.clone(),
                admin.clone(),
                seen.clone(),
                format!("w{round}b"),
            )),
            tokio::spawn(rotate(client.clone(), url.clone(), seen.clone())),
            tokio::spawn(stream_output(
                url.clone(),
                host_key.clone(),
                session.clone(),
                seen.clone(),
            )),
            tokio::spawn(webhooks::send(
                client.clone(),
                url.clone(),
                hooks.path.clone(),
                format!("d{round}"),
                sent.clone(),
            )),
        ];
        let wait = 200 + (uuid::Uuid::new_v4().as_u128() % 800) as u64;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        server.kill().unwrap();
        server.wait().unwrap();
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(20), t)
                .await
                .expect("a client notices the server is gone")
                .unwrap();
        }
        let mut wrong = seen.wrong.lock().unwrap().clone();
        wrong.extend(sent.wrong.lock().unwrap().iter().cloned());
        assert!(wrong.is_empty(), "round {round}: {wrong:?}");
        let (w, r) = (
            seen.workspaces.lock().unwrap().len(),
            seen.rotated.lock().unwrap().len(),
        );
        eprintln!(
            "round {round}: killed after {wait} ms; {} workspaces, {} rotations, {} output chunks, {} webhook deliveries acknowledged so far",
            w - workspaces_before,
            r - rotations_before,
            seen.confirmed.load(Ordering::SeqCst),
            sent.acknowledged.lock().unwrap().len()
        );
        (workspaces_before, rotations_before) = (w, r);
        (server, url, _) = start(&db, &key);
    }
    assert!(
        workspaces_before > 0 && rotations_before > 0 && seen.confirmed.load(Ordering::SeqCst) > 0,
        "the clients got writes through before the kills"
    );

    // Every acknowledged workspace is there, and each has exactly one audit event.
    let listed: HashMap<String, String> = all(&client, &url, &admin, "/api/v1/workspaces", "items")
        .await
        .into_iter()
        .map(|w| {
            (
                w["name"].as_str().unwrap().to_owned(),
                w["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for name in seen.workspaces.lock().unwrap().iter() {
        assert!(
            listed.contains_key(name),
            "acknowledged workspace {name} is gone"
        );
    }
    let events = all(
        &client,
        &url,
        &admin,
        "/api/v1/audit/events?action=workspace.created",
        "events",
    )
    .await;
    let mut audited: HashMap<String, usize> = HashMap::new();
    for e in &events {
        *audited
            .entry(e["resource_id"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    for (name, id) in &listed {
        assert_eq!(
            audited.get(id),
            Some(&1),
            "workspace {name} ({id}) audited {:?} times",
            audited.get(id)
        );
    }
    assert_eq!(
        events.len(),
        listed.len(),
        "an audit event for a workspace that does not exist"
    );

    // The output holds every confirmed chunk once, in order.
    let confirmed = seen.confirmed.load(Ordering::SeqCst);
    let mut chunks = Vec::new();
    let mut after = String::new();
    loop {
        let page = ok(
            &client,
            &url,
            &admin,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/sessions/{session}/output?limit=1000{after}"),
            None,
        )
        .await;
        let got = page["chunks"].as_array().unwrap().clone();
        if got.is_empty() {
            break;
        }
        after = format!("&after={}", got.last().unwrap()["seq"]);
        chunks.extend(got);
    }
    let mut seqs = HashSet::new();
    for c in &chunks {
        let seq = c["seq"].as_u64().unwrap();
        assert!(seqs.insert(seq), "chunk {seq} stored twice");
        assert_eq!(c["data"], format!("line {seq}\n"));
    }
    for seq in 0..confirmed {
        assert!(
            seqs.contains(&seq),
            "confirmed chunk {seq} of {confirmed} is gone"
        );
    }

    // No rotated refresh token works again (past the grace window for a lost answer).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let rotated = seen.rotated.lock().unwrap().clone();
    for token in &rotated {
        let (s, body) = refresh(&client, &url, token).await.unwrap();
        assert_eq!(
            s,
            StatusCode::UNAUTHORIZED,
            "a rotated refresh token worked again: {body}"
        );
    }

    // Every webhook delivery answered 200 is stored, once, with one job.
    let (delivered, stored) = webhooks::check(&client, &url, &admin, &hooks, &sent).await;

    // The audit chain verifies over every life of the server.
    server.kill().unwrap();
    server.wait().unwrap();
    let verify = crate::cli::warden(db.dir.path())
        .args(["audit", "verify"])
        .envs(db.env())
        .env("WARDEN_DATA_DIR", db.data_dir())
        .env("WARDEN_ENCRYPTION_KEY", &key)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    eprintln!(
        "{kills} kills: {} workspaces, {} rotations, {confirmed} output chunks, {delivered} webhook deliveries acknowledged ({stored} stored, each with one job), all present; {}",
        seen.workspaces.lock().unwrap().len(),
        rotated.len(),
        printed.trim()
    );
}
