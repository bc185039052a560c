//! The listener's limits, attacked as a slow or greedy client would: requests that never
//! finish their headers, connections that say nothing, idle keep-alive connections, one
//! address opening connection after connection — on plain HTTP and on TLS.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use warden_testkit::{AppOptions, TestApp};

async fn app_with(env: &[(&str, &str)]) -> TestApp {
    TestApp::spawn_with(AppOptions {
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..AppOptions::default()
    })
    .await
    .unwrap()
}

/// A TCP connection to the app from a given loopback address.
async fn connect_from(app: &TestApp, from: [u8; 4]) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::from((from, 0))).unwrap();
    socket.connect(app.server.local_addr()).await.unwrap()
}

/// Waits (at most `limit`) until the server closes the connection; returns how long it took,
/// or `None` if it stayed open.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((start + limit).into(), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

async fn healthz_from(app: &TestApp, from: [u8; 4]) -> bool {
    let client = reqwest::Client::builder()
        .no_proxy()
        .local_address(std::net::IpAddr::from(from))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    client
        .get(app.url("/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
}

#[tokio::test]
async fn a_client_that_trickles_headers_or_says_nothing_is_cut_off() {
    let app = app_with(&[("WARDEN_HTTP_HEADER_READ_TIMEOUT_SECS", "2")]).await;
    // Slowloris: a request line, then a header every half second, never the blank line.
    let mut slow = connect_from(&app, [127, 0, 3, 1]).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let trickle = async {
        for i in 0..20 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if slow
                .write_all(format!("X-Slow-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                return true;
            }
            let mut probe = [0u8; 1];
            if let Ok(Ok(0)) =
                tokio::time::timeout(Duration::from_millis(1), slow.read(&mut probe)).await
            {
                return true;
            }
        }
        false
    };
    let started = Instant::now();
    assert!(trickle.await, "the trickling connection stayed open");
    assert!(started.elapsed() < Duration::from_secs(6));
    // A connection that sends nothing at all.
    let mut silent = connect_from(&app, [127, 0, 3, 2]).await;
    let took = closed_within(&mut silent, Duration::from_secs(8)).await;
    assert!(
        took.is_some_and(|t| t >= Duration::from_millis(1500)),
        "{took:?}"
    );
    // A keep-alive connection left idle after its request.
    let mut idle = connect_from(&app, [127, 0, 3, 3]).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let took = closed_within(&mut idle, Duration::from_secs(8)).await;
    assert!(took.is_some(), "the idle keep-alive connection stayed open");
    // The server still answers.
    assert!(healthz_from(&app, [127, 0, 3, 4]).await);
}

#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    let app = app_with(&[
        ("WARDEN_HTTP_MAX_CONNECTIONS", "40"),
        ("WARDEN_HTTP_MAX_CONNECTIONS_PER_IP", "10"),
    ])
    .await;
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(connect_from(&app, [127, 0, 4, 1]).await);
    }
    // The eleventh from the same address is closed at once...
    let mut extra = connect_from(&app, [127, 0, 4, 1]).await;
    let took = closed_within(&mut extra, Duration::from_secs(3)).await;
    assert!(
        took.is_some(),
        "the 11th connection from one address was kept"
    );
    // ...while other addresses are served.
    assert!(healthz_from(&app, [127, 0, 4, 2]).await);
    // Once one of the ten closes, that address may connect again.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = connect_from(&app, [127, 0, 4, 1]).await;
    again
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    again.read_to_string(&mut text).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[tokio::test]
async fn past_the_connection_cap_new_connections_wait_until_one_closes() {
    let app = app_with(&[
        ("WARDEN_HTTP_MAX_CONNECTIONS", "6"),
        ("WARDEN_HTTP_MAX_CONNECTIONS_PER_IP", "3"),
    ])
    .await;
    let mut held = Vec::new();
    for host in 1..=6u8 {
        held.push(connect_from(&app, [127, 0, 5, host / 3 + 1]).await);
    }
    // Connection 7 is accepted by the kernel but not served while six are open.
    let waiting = healthz_from(&app, [127, 0, 5, 9]);
    tokio::pin!(waiting);
    assert!(
        tokio::time::timeout(Duration::from_millis(700), &mut waiting)
            .await
            .is_err(),
        "a seventh connection was served past the cap"
    );
    drop(held.pop());
    assert!(waiting.await, "served once a connection closed");
}

/// The header-read deadline moves with each request: a keep-alive connection whose client
/// keeps sending requests within the timeout is never cut, however long it lives.
#[tokio::test]
async fn a_busy_keep_alive_connection_outlives_the_header_timeout() {
    let app = app_with(&[("WARDEN_HTTP_HEADER_READ_TIMEOUT_SECS", "2")]).await;
    let mut conn = connect_from(&app, [127, 0, 6, 1]).await;
    let mut buf = vec![0u8; 4096];
    for i in 0..5 {
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
            "request {i}"
        );
        // 1.2 s apart: 6 s in all, three times the timeout.
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    // Then idle: cut after the timeout.
    assert!(
        closed_within(&mut conn, Duration::from_secs(6))
            .await
            .is_some()
    );
}
