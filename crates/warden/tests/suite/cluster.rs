//! A node that dies loses nothing: three nodes on one database — A and C in this process, B a
//! real `warden serve` process — and a host whose agent knows B and C. A session opened on A
//! runs on the host through B while a client follows its output from B; B is killed
//! (SIGSTOP for a second, then SIGKILL). The host reconnects to C by itself, the client resumes from C where it stopped,
//! and every line the session printed is there exactly once, in order — including what the
//! host reported to B in its last moments (reported again, since B never confirmed it). The
//! session stays running, its files and stop work through A (relayed to C now). A host whose
//! only node died is answered for with 503 and `Retry-After`, not 500.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_testkit::TestApp;

use crate::automations::{agent_at, repository, workspace};
use crate::identity::admin_token;

/// `warden serve` as another node of `a`'s installation (no local host); killed on drop.
struct Node {
    child: Child,
    base: String,
    _data: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn node_process(a: &TestApp) -> Node {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WARDEN_LOG_LEVEL", "warn")
        .env("WARDEN_DATA_DIR", data.path())
        .env("WARDEN_LOCAL_HOST", "false")
        .env("WARDEN_AUTH_SIGNING_KEY_BITS", "2048")
        .envs(a.cluster_env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let base = first
        .trim()
        .strip_prefix("Warden is ready at ")
        .unwrap_or_else(|| panic!("warden serve did not start: {first:?}"))
        .to_owned();
    // Keep reading what it prints so it never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while out.read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    });
    Node {
        child,
        base,
        _data: data,
    }
}

/// A server-sent event stream read as it arrives.
struct Events {
    res: reqwest::Response,
    buf: String,
}

/// One event: its name, id and data.
type Event = (String, Option<i64>, String);

impl Events {
    async fn open(client: &reqwest::Client, url: &str, token: &str, after: Option<i64>) -> Self {
        let mut req = client.get(url).bearer_auth(token);
        if let Some(after) = after {
            req = req.header("last-event-id", after.to_string());
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        Self {
            res,
            buf: String::new(),
        }
    }

    /// The next event; `None` when the stream ended or broke.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut name, mut id, mut data) = (String::new(), None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        name = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        id = v.parse().ok();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if name.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some((name, id, data));
            }
            match tokio::time::timeout(Duration::from_secs(30), self.res.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }
}

/// The tick numbers in `text`, in order.
fn ticks(text: &str) -> Vec<u64> {
    text.split("tick-")
        .skip(1)
        .filter_map(|t| {
            t.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_mid_stream_loses_nothing_and_its_hosts_and_sessions_move_to_another() {
    let a = TestApp::spawn().await.unwrap();
    let admin = admin_token(&a).await;
    let c = a.another_node().await.unwrap();
    let b = node_process(&a);
    let repo = repository();
    let ws = workspace(&a, &admin, repo.path()).await;
    let agent = agent_at(&a, &admin, &format!("{},{}", b.base, c.base)).await;
    // Connected to B (the first address): neither A nor C holds it.
    assert_eq!(a.server.state().ctx.connections.count(), 0);
    assert_eq!(c.server.state().ctx.connections.count(), 0);

    let sessions = format!("/api/v1/workspaces/{ws}/sessions");
    let created = a
        .ok(
            &admin,
            Method::POST,
            &sessions,
            Some(
                json!({"provider": "command", "mode": "chat", "command": ["sh", "-c",
                "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.01; done"]}),
            ),
        )
        .await;
    assert_eq!(created["host_id"], agent.host_id.as_str(), "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let stream_path = format!("{sessions}/{id}/stream");

    // Followed from B.
    let mut seqs: Vec<i64> = Vec::new();
    let mut text = String::new();
    let mut from_b =
        Events::open(&a.client, &format!("{}{stream_path}", b.base), &admin, None).await;
    while ticks(&text).len() < 50 {
        let (name, seq, data) = from_b.next().await.expect("B streams the output");
        assert_eq!(name, "output", "{data}");
        seqs.push(seq.unwrap());
        let chunk: Value = serde_json::from_str(&data).unwrap();
        text.push_str(chunk["data"].as_str().unwrap());
    }

    // B freezes (SIGSTOP) for a second — the host goes on reporting into a connection nobody
    // reads or stores — then dies (SIGKILL): what B never stored must come through C.
    let mut b = b;
    let frozen = Command::new("kill")
        .args(["-STOP", &b.child.id().to_string()])
        .status()
        .unwrap();
    assert!(frozen.success());
    tokio::time::sleep(Duration::from_secs(1)).await;
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    let killed = Instant::now();
    // Whatever B had already written to the socket may still arrive; then the stream breaks.
    while let Some((name, seq, data)) = from_b.next().await {
        assert_eq!(name, "output");
        seqs.push(seq.unwrap());
        let chunk: Value = serde_json::from_str(&data).unwrap();
        text.push_str(chunk["data"].as_str().unwrap());
    }

    // The host comes back through C by itself.
    while c.server.state().ctx.connections.count() != 1 {
        assert!(
            killed.elapsed() < Duration::from_secs(15),
            "the host did not reconnect to another node"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let moved = killed.elapsed();
    assert_eq!(a.server.state().ctx.connections.count(), 0);

    // The client resumes from C after the last event it got.
    let before = *ticks(&text).last().unwrap();
    let mut from_c = Events::open(
        &a.client,
        &c.url(&stream_path),
        &admin,
        seqs.last().copied(),
    )
    .await;
    while ticks(&text).last().copied().unwrap_or(0) < before + 300 {
        let (name, seq, data) = from_c.next().await.expect("C streams the output");
        assert_eq!(name, "output", "{data}");
        seqs.push(seq.unwrap());
        let chunk: Value = serde_json::from_str(&data).unwrap();
        text.push_str(chunk["data"].as_str().unwrap());
    }

    // Nothing lost, nothing twice: every chunk once, every line once, in order.
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "sequence numbers with a gap or a repeat: {seqs:?}"
    );
    let seen = ticks(&text);
    assert!(
        seen.iter().enumerate().all(|(i, n)| *n == i as u64),
        "lines lost or repeated around the node's death: {seen:?}"
    );

    // The session was never lost: running, and served by A through C.
    let detail = a
        .ok(&admin, Method::GET, &format!("{sessions}/{id}"), None)
        .await;
    assert_eq!(detail["status"], "running", "{detail}");
    a.ok(
        &admin,
        Method::PUT,
        &format!("{sessions}/{id}/file?path=after.txt"),
        Some(json!({"content": "written after the failover"})),
    )
    .await;
    let read = a
        .ok(
            &admin,
            Method::GET,
            &format!("{sessions}/{id}/file?path=after.txt"),
            None,
        )
        .await;
    assert_eq!(read["content"], "written after the failover", "{read}");

    // Stopped through A; the stream from C ends with the final status.
    a.ok(&admin, Method::POST, &format!("{sessions}/{id}/stop"), None)
        .await;
    let end = loop {
        let (name, _, data) = from_c.next().await.expect("the stream ends");
        if name == "end" {
            break data;
        }
    };
    assert!(end.contains("\"canceled\""), "{end}");
    eprintln!("the host was back through another node {moved:?} after the kill");
}

/// The node holding a host's connection dies and the host has nowhere else to go: a request
/// that must reach the host through it answers 503 `host-node-unreachable` with `Retry-After`
/// (it was a 500), naming neither the node nor its address.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_relayed_to_a_dead_node_answers_503_and_retry_after() {
    let a = TestApp::spawn().await.unwrap();
    let admin = admin_token(&a).await;
    let b = node_process(&a);
    let repo = repository();
    let ws = workspace(&a, &admin, repo.path()).await;
    // The agent knows B only.
    let _agent = agent_at(&a, &admin, &b.base).await;
    let sessions = format!("/api/v1/workspaces/{ws}/sessions");
    let created = a
        .ok(
            &admin,
            Method::POST,
            &sessions,
            Some(json!({"provider": "command", "mode": "chat", "command": ["sleep", "600"]})),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let file = format!("{sessions}/{id}/file?path=README.md");
    // Through A, relayed to B (once the host has made the worktree).
    let started = Instant::now();
    loop {
        let (s, v) = a.call(&admin, Method::GET, &file, None).await;
        if s == StatusCode::OK {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "{s} {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut b = b;
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    let res = a
        .client
        .get(a.url(&file))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        res.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body = res.text().await.unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["code"], "host-node-unreachable", "{v}");
    let port = b.base.rsplit(':').next().unwrap();
    assert!(
        !body.contains(port),
        "the answer names the node's address: {body}"
    );
}

/// Three nodes on one database share what must be one: a session signed out on one node is
/// refused by the very next request on each of the others; three nodes writing at once keep
/// one unbroken audit chain. (The host cap across nodes: `agent.rs`; the licence picked up by
/// every node: `license.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_share_revocations_and_keep_one_audit_chain_with_three_writers() {
    let a = TestApp::spawn().await.unwrap();
    admin_token(&a).await;
    let b = a.another_node().await.unwrap();
    let c = a.another_node().await.unwrap();
    let nodes = [&a, &b, &c];

    // One session per node, each accepted everywhere.
    let mut tokens = Vec::new();
    for node in nodes {
        tokens.push(
            crate::identity::sign_in(
                node,
                crate::identity::ADMIN_EMAIL,
                crate::identity::ADMIN_PASSWORD,
            )
            .await["access_token"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let me = |node: &TestApp, token: &str| {
        let req = node.client.get(node.url("/api/v1/me")).bearer_auth(token);
        async move { req.send().await.unwrap().status() }
    };
    for node in nodes {
        for t in &tokens {
            assert_eq!(me(node, t).await, StatusCode::OK);
        }
    }
    // Signed out on B: the very next request with it is refused on every node, no wait.
    let out = b
        .client
        .post(b.url("/api/v1/auth/sign-out"))
        .bearer_auth(&tokens[1])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    for node in nodes {
        assert_eq!(me(node, &tokens[1]).await, StatusCode::UNAUTHORIZED);
        assert_eq!(me(node, &tokens[0]).await, StatusCode::OK);
        assert_eq!(me(node, &tokens[2]).await, StatusCode::OK);
    }

    // Three writers at once: 3 nodes × 4 tasks × 5 workspaces.
    let mut writers = Vec::new();
    for (n, node) in nodes.into_iter().enumerate() {
        for w in 0..4 {
            let client = node.client.clone();
            let url = node.url("/api/v1/workspaces");
            let token = tokens[if n == 1 { 0 } else { n }].clone();
            writers.push(tokio::spawn(async move {
                for i in 0..5 {
                    let res = client
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&json!({"name": format!("n{n}-w{w}-{i}")}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), StatusCode::CREATED);
                }
            }));
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    let key = a.audit_key().await.unwrap();
    let store = a.server.store();
    let public = a.server.state().checkpoint_signer.public_key();
    let created = crate::identity::audit_rows(&a, "workspace.created").await;
    assert_eq!(created.len(), 60);
    // Each node chains its own events within a second; then the whole chain verifies.
    let mut report = store.verify_audit(&key, &public).await.unwrap();
    for _ in 0..100 {
        let (pending, unsealed) = store.audit_pending(&key).await.unwrap();
        assert_eq!(unsealed, None);
        report = store.verify_audit(&key, &public).await.unwrap();
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(report.broken, None, "{report:?}");
    assert!(report.checked >= 60, "{report:?}");
}
