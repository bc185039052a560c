//! Any node serves any host: three nodes on one database, a real `warden-agent` connected to
//! the second. A session opened on the first runs there, its output streams from the first,
//! its worktree's files are read and written through the third and the first, it is stopped
//! through the third and closed through the first — each relayed to the host's node in an
//! envelope sealed with the shared keyring. And the relay refuses what did not come from a
//! node: garbage, an envelope for another node, a stale one, a replayed one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_core::cluster::envelope::{self, Relay};
use warden_testkit::tls::PrivateCa;
use warden_testkit::{AppOptions, TestApp};

const EMAIL: &str = "ops@example.com";
const PASSWORD: &str = "violet tractor 93 lagoon";

async fn ok(app: &TestApp, token: &str, method: Method, path: &str, body: Option<Value>) -> Value {
    app.ok(token, method, path, body).await
}

fn repo(dir: &Path) {
    warden_testkit::git_repo(dir);
}

async fn node_of(first: &TestApp) -> TestApp {
    TestApp::spawn_with(AppOptions {
        env: vec![
            ("WARDEN_DATABASE_URL".to_owned(), first.db.url.clone()),
            (
                "WARDEN_ENCRYPTION_KEY".to_owned(),
                first.master_key_hex.clone(),
            ),
        ],
        ..AppOptions::default()
    })
    .await
    .unwrap()
}

/// The session's output so far, read through `app`, until `until` appears (or 15 s).
async fn output_until(app: &TestApp, token: &str, ws: &str, id: &str, until: &str) -> String {
    let mut text = String::new();
    let mut after = -1i64;
    for _ in 0..150 {
        let page = ok(
            app,
            token,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/sessions/{id}/output?after={after}"),
            None,
        )
        .await;
        for c in page["chunks"].as_array().unwrap() {
            after = c["seq"].as_i64().unwrap();
            text.push_str(c["data"].as_str().unwrap());
        }
        if text.contains(until) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{until:?} never appeared in: {text}");
}

async fn status_becomes(app: &TestApp, token: &str, path: &str, want: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..150 {
        last = ok(app, token, Method::GET, path, None).await;
        if last["status"] == want {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("status never became {want}: {last}");
}

/// A workspace on a new git repository under `dir`, and an approved session host: (workspace
/// id, host id, host key).
async fn workspace_and_host(app: &TestApp, admin: &str, dir: &Path) -> (String, String, String) {
    repo(&dir.join("repo"));
    let ws = ok(
        app,
        admin,
        Method::POST,
        "/api/v1/workspaces",
        Some(json!({"name": "Cluster"})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(
        app,
        admin,
        Method::PUT,
        &format!("/api/v1/workspaces/{ws}/settings"),
        Some(json!({"repository": dir.join("repo").display().to_string()})),
    )
    .await;
    let host = ok(
        app,
        admin,
        Method::POST,
        "/api/v1/hosts",
        Some(json!({"name": "on-b", "kind": "session"})),
    )
    .await;
    let host_id = host["host"]["id"].as_str().unwrap().to_owned();
    ok(
        app,
        admin,
        Method::POST,
        &format!("/api/v1/hosts/{host_id}/approve"),
        None,
    )
    .await;
    (ws, host_id, host["api_key"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_on_a_host_of_another_node_is_served_by_every_node() {
    let a = TestApp::spawn().await.unwrap();
    let b = node_of(&a).await;
    let c = node_of(&a).await;
    let admin = a.first_admin(EMAIL, PASSWORD).await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let (ws, host_id, key) = workspace_and_host(&a, &admin, root.path()).await;
    ok(
        &a,
        &admin,
        Method::PUT,
        &format!("/api/v1/workspaces/{ws}/variables/GREETING"),
        Some(json!({"value": "sealed-across-nodes"})),
    )
    .await;
    // The agent connects to node B only.
    let _agent = warden_testkit::agent::start(
        env!("CARGO_BIN_EXE_warden-agent"),
        &b,
        &key,
        &root.path().join("agent"),
    );
    warden_testkit::agent::wait_online(&b, &admin, &host_id).await;
    assert_eq!(b.server.state().ctx.connections.count(), 1);
    assert_eq!(a.server.state().ctx.connections.count(), 0);

    // Opened on A: it starts on B's host, with the workspace's secret in its environment.
    let sessions = format!("/api/v1/workspaces/{ws}/sessions");
    let run = json!({"provider": "command", "mode": "chat", "command": ["sh", "-c",
        "echo from-the-worktree > note.txt; test \"$GREETING\" = sealed-across-nodes && \
         echo secret-ok; echo started; sleep 60"]});
    let created = ok(&a, &admin, Method::POST, &sessions, Some(run)).await;
    assert_eq!(created["host_id"], host_id.as_str(), "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    // Its output, read through A (and C), as the host reports it to B.
    let seen = output_until(&a, &admin, &ws, &id, "started").await;
    assert!(seen.contains("secret-ok"), "{seen}");
    output_until(&c, &admin, &ws, &id, "started").await;

    // The worktree's files through C and A (asked of the host through B).
    let files = format!("{sessions}/{id}/files");
    let read = ok(
        &c,
        &admin,
        Method::GET,
        &format!("{sessions}/{id}/file?path=note.txt"),
        None,
    )
    .await;
    assert_eq!(read["content"], "from-the-worktree\n", "{read}");
    ok(
        &a,
        &admin,
        Method::PUT,
        &format!("{sessions}/{id}/file?path=written.txt"),
        Some(json!({"content": "through node A"})),
    )
    .await;
    let listed = ok(&c, &admin, Method::GET, &files, None).await;
    assert!(listed.to_string().contains("written.txt"), "{listed}");
    let on_disk = std::fs::read_to_string(
        walk_for(&root.path().join("agent"), "written.txt").expect("written.txt on the host"),
    )
    .unwrap();
    assert_eq!(on_disk, "through node A");

    // Stopped through C: the host (on B) ends it.
    ok(
        &c,
        &admin,
        Method::POST,
        &format!("{sessions}/{id}/stop"),
        None,
    )
    .await;
    status_becomes(&a, &admin, &format!("{sessions}/{id}"), "canceled").await;
    // Closed through A: the host removes the worktree.
    let closed = ok(
        &a,
        &admin,
        Method::POST,
        &format!("{sessions}/{id}/close"),
        None,
    )
    .await;
    assert!(closed["archived_at"].is_string(), "{closed}");
    for _ in 0..100 {
        if walk_for(&root.path().join("agent"), "written.txt").is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        walk_for(&root.path().join("agent"), "written.txt").is_none(),
        "the closed session's worktree is still on the host"
    );

    // The relay refuses what no node of this installation sealed for it.
    let relay_url = b.url("/internal/v1/relay");
    let post = |body: Vec<u8>| {
        let client = b.client.clone();
        let url = relay_url.clone();
        async move {
            client
                .post(url)
                .header("content-type", "application/octet-stream")
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        post(b"not an envelope".to_vec()).await,
        StatusCode::FORBIDDEN
    );
    let actx = a.server.state().ctx.clone();
    let b_id = b.server.state().ctx.identity.node_id;
    let c_id = c.server.state().ctx.identity.node_id;
    let clock = actx.clock.clone();
    let now = || warden_core::identity::now_us(clock.as_ref());
    let envelope_for = |to, sent_at| Relay {
        to,
        sent_at,
        nonce: envelope::nonce(),
        host: host_id.parse().unwrap(),
        message: warden_protocol::ServerMessage::StopSession {
            session_id: id.clone(),
        },
        ask: false,
    };
    // A genuine envelope is accepted once; the same bytes again are a replay.
    let genuine = envelope::seal(&actx.keyring, &envelope_for(b_id, now())).unwrap();
    assert_eq!(post(genuine.clone()).await, StatusCode::OK);
    assert_eq!(post(genuine).await, StatusCode::FORBIDDEN);
    // Sealed for C, sent to B.
    let for_c = envelope::seal(&actx.keyring, &envelope_for(c_id, now())).unwrap();
    assert_eq!(post(for_c).await, StatusCode::FORBIDDEN);
    // Older than the window.
    let stale = envelope::seal(
        &actx.keyring,
        &envelope_for(b_id, now() - 2 * envelope::MAX_AGE_US),
    )
    .unwrap();
    assert_eq!(post(stale).await, StatusCode::FORBIDDEN);
    // Sealed by another installation's keyring (another master key, another database).
    let other = TestApp::spawn().await.unwrap();
    let foreign = envelope::seal(
        &other.server.state().ctx.keyring,
        &envelope_for(b_id, now()),
    )
    .unwrap();
    assert_eq!(post(foreign).await, StatusCode::FORBIDDEN);
    // One flipped byte.
    let mut altered = envelope::seal(&actx.keyring, &envelope_for(b_id, now())).unwrap();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    assert_eq!(post(altered).await, StatusCode::FORBIDDEN);
}

/// A node serving TLS with the certificate `ca` signed; `trust` gives it `node_ca_file` (the
/// other nodes' certificates are checked against `ca`). Its test client trusts `ca`.
async fn tls_node(first: Option<&TestApp>, ca: &PrivateCa, trust: bool) -> TestApp {
    let mut env = ca.serve_env();
    if let Some(first) = first {
        env.extend(first.cluster_env());
    }
    if trust {
        env.push((
            "WARDEN_NODE_CA_FILE".to_owned(),
            ca.ca_file.display().to_string(),
        ));
    }
    let mut app = TestApp::spawn_with(AppOptions {
        env,
        ..AppOptions::default()
    })
    .await
    .unwrap();
    assert!(app.base.starts_with("https://"), "{}", app.base);
    app.client = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca.ca_pem().unwrap()).unwrap()])
        .build()
        .unwrap();
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_serving_tls_with_an_internal_ca_relay_when_told_to_trust_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = PrivateCa::new(dir.path()).unwrap();
    let a = tls_node(None, &ca, true).await;
    let b = tls_node(Some(&a), &ca, true).await;
    // C was not given the CA: the system's roots do not vouch for B's certificate.
    let c = tls_node(Some(&a), &ca, false).await;
    let admin = a.first_admin(EMAIL, PASSWORD).await.unwrap();
    let (ws, host_id, key) = workspace_and_host(&a, &admin, dir.path()).await;
    let _agent = warden_testkit::agent::start_trusting(
        env!("CARGO_BIN_EXE_warden-agent"),
        &b.base,
        &key,
        &dir.path().join("agent"),
        Some(&ca.ca_file),
    );
    warden_testkit::agent::wait_online(&b, &admin, &host_id).await;
    assert_eq!(b.server.state().ctx.connections.count(), 1);

    // Opened on A, started on B's host over B's TLS.
    let sessions = format!("/api/v1/workspaces/{ws}/sessions");
    let run = json!({"provider": "command", "mode": "chat", "command": ["sh", "-c",
        "echo over-tls > note.txt; echo started; sleep 60"]});
    let id = ok(&a, &admin, Method::POST, &sessions, Some(run)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    output_until(&a, &admin, &ws, &id, "started").await;
    let file = format!("{sessions}/{id}/file?path=note.txt");
    let read = ok(&a, &admin, Method::GET, &file, None).await;
    assert_eq!(read["content"], "over-tls\n", "{read}");

    // C cannot reach B: the question fails and nothing is delivered.
    let (status, body) = c.call(&admin, Method::GET, &file, None).await;
    assert!(status.is_server_error(), "{status} {body}");
    let stop = warden_protocol::ServerMessage::StopSession {
        session_id: id.clone(),
    };
    let cctx = c.server.state().ctx.clone();
    let host_uuid = host_id.parse().unwrap();
    assert!(!warden_core::cluster::send(&cctx, host_uuid, stop.clone()).await);
    assert_eq!(
        ok(&a, &admin, Method::GET, &format!("{sessions}/{id}"), None).await["status"],
        "running"
    );
    // A delivers it.
    let actx = a.server.state().ctx.clone();
    assert!(warden_core::cluster::send(&actx, host_uuid, stop).await);
    status_becomes(&a, &admin, &format!("{sessions}/{id}"), "canceled").await;
}

/// The first file named `name` under `dir`.
fn walk_for(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
        if path.is_dir()
            && !path.is_symlink()
            && let Some(found) = walk_for(&path, name)
        {
            return Some(found);
        }
    }
    None
}
