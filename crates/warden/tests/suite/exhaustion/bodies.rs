//! Bodies as weapons: sent a byte at a time (slowloris on the body), 100 MB long (declared or
//! chunked), nested 10,000 deep. Each is refused — 408 and the connection closed, 413 before
//! the server has read more than its limit, 400/422 without a stack overflow — while healthy
//! clients are served, and the server's memory and descriptors return to where they were.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::{DB_FILES, MIB, Server, closed_within, connect_from, raise_own_open_files_limit};

/// Connections trickling their bodies.
const SLOW: usize = 200;
/// The body deadline the server runs with here (20 s by default).
const BODY_TIMEOUT_SECS: u64 = 3;
/// 100 MB.
const HUGE: u64 = 100 * 1024 * 1024;
/// What the whole attack may add to the server's resident memory (measured: 15–19 MiB; each
/// refused huge body is read up to the 1 MiB limit and no further).
const RSS_BOUND_KIB: u64 = 64 * MIB;

/// A connection from `from` that has sent the headers of a request to `path` whose body is
/// `declared` bytes long (`None`: chunked), split for reading the answer while writing.
async fn open(
    server: &Server,
    from: [u8; 4],
    path: &str,
    token: Option<&str>,
    declared: Option<u64>,
) -> (OwnedReadHalf, OwnedWriteHalf) {
    let framing = declared.map_or("Transfer-Encoding: chunked".to_owned(), |n| {
        format!("Content-Length: {n}")
    });
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n{framing}\r\n\r\n"
    );
    let mut conn = connect_from(server, from).await;
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.into_split()
}

/// Sends the headers, then a byte every 300 ms: the answer's status line, how long it took,
/// and whether the server closed the connection after it.
async fn trickle(
    server: &Server,
    from: [u8; 4],
    path: &str,
    token: Option<&str>,
    chunked: bool,
) -> (Option<String>, Duration, bool) {
    let declared = (!chunked).then_some(1000);
    let (mut read, mut write) = open(server, from, path, token, declared).await;
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        for _ in 0..100 {
            let piece: &[u8] = if chunked { b"1\r\n \r\n" } else { b" " };
            if write.write_all(piece).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        write
    });
    let line = read_status(&mut read, Duration::from_secs(20)).await;
    let took = started.elapsed();
    let write = writer.await.unwrap();
    let mut conn = read.reunite(write).unwrap();
    let closed = closed_within(&mut conn, Duration::from_secs(5)).await;
    (line, took, closed)
}

/// The status line of the answer (waiting up to `limit`), or `None` if the server closed the
/// connection without one or said nothing.
async fn read_status(read: &mut OwnedReadHalf, limit: Duration) -> Option<String> {
    let until = Instant::now() + limit;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(2).any(|w| w == b"\r\n") {
        match tokio::time::timeout_at(until.into(), read.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
    String::from_utf8_lossy(&buf)
        .lines()
        .next()
        .map(str::to_owned)
}

/// Sends 100 MB as fast as the server takes it (declared up front or chunked) and reads the
/// answer: its status line, and how many bytes the server took before it stopped reading.
async fn flood(
    server: &Server,
    from: [u8; 4],
    path: &str,
    token: Option<&str>,
    chunked: bool,
) -> (Option<String>, u64) {
    let declared = (!chunked).then_some(HUGE);
    let (mut read, mut write) = open(server, from, path, token, declared).await;
    let sent = Arc::new(AtomicU64::new(0));
    let counted = sent.clone();
    let writer = tokio::spawn(async move {
        let piece = vec![b' '; 64 * 1024];
        let framed = [
            format!("{:x}\r\n", piece.len()).into_bytes(),
            piece.clone(),
            b"\r\n".to_vec(),
        ]
        .concat();
        while counted.load(Ordering::Relaxed) < HUGE {
            let out = if chunked { &framed } else { &piece };
            if write.write_all(out).await.is_err() {
                break;
            }
            counted.fetch_add(piece.len() as u64, Ordering::Relaxed);
        }
    });
    let line = read_status(&mut read, Duration::from_secs(20)).await;
    writer.abort();
    (line, sent.load(Ordering::Relaxed))
}

/// `[[[…]]]` and `{"a":{"a":…}}`, `depth` deep.
fn nested(depth: usize) -> (String, String) {
    let arrays = "[".repeat(depth) + &"]".repeat(depth);
    let objects = "{\"a\":".repeat(depth) + "1" + &"}".repeat(depth);
    (arrays, objects)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_huge_and_deeply_nested_bodies_are_refused_and_healthy_clients_served() {
    raise_own_open_files_limit();
    let timeout = BODY_TIMEOUT_SECS.to_string();
    let Some(server) = Server::start(&[("WARDEN_HTTP_BODY_READ_TIMEOUT_SECS", &timeout)]).await
    else {
        return;
    };
    let server = Arc::new(server);
    server.serves_healthy_clients("warm-up").await;
    let (rss0, fds0, sockets0) = server.usage();
    let admin = server.admin.clone();

    // Slowloris on the body: 200 connections, public and signed-in routes, declared length
    // and chunked. The signed-in route's own timeout is 30 s: the body deadline is what ends
    // them.
    let slow = (0..SLOW).map(|i| {
        let (server, admin) = (server.clone(), admin.clone());
        tokio::spawn(async move {
            let from = [127, 0, 31, u8::try_from(i % 4 + 1).unwrap()];
            let (path, token) = if i % 2 == 0 {
                ("/api/v1/auth/sign-in", None)
            } else {
                ("/api/v1/workspaces", Some(admin.as_str()))
            };
            trickle(&server, from, path, token, i % 3 == 0).await
        })
    });
    let slow = tokio::spawn(futures_util::future::join_all(slow));
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.serves_healthy_clients("during slow bodies").await;
    for (i, outcome) in slow.await.unwrap().into_iter().enumerate() {
        let (line, took, closed) = outcome.unwrap();
        assert!(
            line.as_deref()
                .is_some_and(|l| l.starts_with("HTTP/1.1 408")),
            "slow body {i}: {line:?}"
        );
        assert!(
            took >= Duration::from_secs(BODY_TIMEOUT_SECS) - Duration::from_millis(200)
                && took < Duration::from_secs(BODY_TIMEOUT_SECS + 10),
            "slow body {i} answered after {took:?}"
        );
        assert!(
            closed,
            "slow body {i}: the connection stayed open after the 408"
        );
    }

    // 100 MB, declared and chunked, four of each at once, public and signed-in.
    let huge = (0..8).map(|i| {
        let (server, admin) = (server.clone(), admin.clone());
        tokio::spawn(async move {
            let from = [127, 0, 32, u8::try_from(i + 1).unwrap()];
            let (path, token) = if i % 2 == 0 {
                ("/api/v1/auth/sign-in", None)
            } else {
                ("/api/v1/workspaces", Some(admin.as_str()))
            };
            flood(&server, from, path, token, i >= 4).await
        })
    });
    let huge = futures_util::future::join_all(huge).await;
    for (i, outcome) in huge.into_iter().enumerate() {
        let (line, sent) = outcome.unwrap();
        assert!(
            line.as_deref()
                .is_some_and(|l| l.starts_with("HTTP/1.1 413")),
            "100 MB body {i}: {line:?} after {sent} bytes"
        );
        // The server stopped reading at its 1 MiB limit; what the client got out beyond that
        // sat in socket buffers.
        assert!(
            sent < 32 * 1024 * 1024,
            "100 MB body {i}: {sent} bytes taken"
        );
    }
    server.serves_healthy_clients("after huge bodies").await;

    // 10,000 deep: as a whole body (a typed route, public) and inside a field that takes any
    // JSON (a workspace's ticket configuration, signed in) — fifty of each at once.
    let (arrays, objects) = nested(10_000);
    let deep_field = format!("{{\"name\":\"deep\",\"ticket_config\":{objects}}}");
    let cases = [
        ("/api/v1/auth/sign-in", None, arrays.clone()),
        ("/api/v1/auth/sign-in", None, objects.clone()),
        ("/api/v1/workspaces", Some(admin.clone()), arrays),
        ("/api/v1/workspaces", Some(admin.clone()), deep_field),
    ];
    for (path, token, body) in cases {
        let calls = (0..50).map(|_| {
            let mut req = server
                .client
                .post(format!("{}{path}", server.url))
                .header("content-type", "application/json")
                .body(body.clone());
            if let Some(t) = &token {
                req = req.bearer_auth(t);
            }
            req.send()
        });
        for res in futures_util::future::join_all(calls).await {
            let res = res.unwrap_or_else(|e| panic!("{path}: {e}"));
            let status = res.status();
            assert!(
                status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
                "{path}: {status}"
            );
            let problem: Value = res.json().await.unwrap();
            assert!(problem["title"].is_string(), "{problem}");
        }
    }
    server.serves_healthy_clients("after deep bodies").await;

    let sockets1 = server.settles_to(sockets0, Duration::from_secs(10)).await;
    let (rss1, fds1, _) = server.usage();
    eprintln!("bodies: RSS {rss0} → {rss1} KiB, descriptors {fds0} → {fds1}");
    assert!(sockets1 <= sockets0, "sockets left open");
    assert!(
        fds1 <= fds0 + DB_FILES,
        "{fds1} descriptors open ({fds0} before)"
    );
    assert!(
        rss1.saturating_sub(rss0) < RSS_BOUND_KIB,
        "the attack grew the server from {rss0} to {rss1} KiB"
    );
}
