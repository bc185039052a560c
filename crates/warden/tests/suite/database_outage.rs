//! The database goes away under load — its connections cut, then a restart — and comes back:
//! while it is away requests fail with a clean 503 (no internals in the body, `Retry-After`),
//! service resumes within seconds of its return without a restart of Warden, and nothing a
//! client saw acknowledged is lost. PostgreSQL only: it runs on a cluster of this test's own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use warden_store::Backend;
use warden_testkit::private_postgres::PrivatePostgres;
use warden_testkit::{AppOptions, TestApp};

use crate::identity::admin_token;

/// One write as the client saw it: when it was answered, its status, its body.
type Answer = (Instant, StatusCode, Value, String);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_load_gives_clean_503s_then_recovers_and_loses_nothing() {
    if warden_testkit::backend() != Backend::Postgres {
        return;
    }
    let pg = Arc::new(PrivatePostgres::start().unwrap());
    let (url, owner) = pg.database().await.unwrap();
    let db_name = url.rsplit('/').next().unwrap().to_owned();
    let app = Arc::new(
        TestApp::spawn_with(AppOptions {
            env: vec![
                ("WARDEN_DATABASE_URL".to_owned(), url),
                ("WARDEN_DATABASE_OWNER_URL".to_owned(), owner),
                (
                    "WARDEN_DATABASE_CONNECT_TIMEOUT_SECS".to_owned(),
                    "2".to_owned(),
                ),
            ],
            ..AppOptions::default()
        })
        .await
        .unwrap(),
    );
    let admin = admin_token(&app).await;

    // Two clients write at full speed: each creates workspaces, one after another.
    let running = Arc::new(AtomicBool::new(true));
    let answers: Arc<Mutex<Vec<Answer>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..2 {
        let (app, admin, running, answers) =
            (app.clone(), admin.clone(), running.clone(), answers.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while running.load(Ordering::Relaxed) {
                let name = format!("load-{w}-{i}");
                let res = app
                    .client
                    .post(app.url("/api/v1/workspaces"))
                    .bearer_auth(&admin)
                    .json(&json!({ "name": name }))
                    .send()
                    .await
                    .unwrap();
                let status = res.status();
                let retry = res
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let body: Value = res.json().await.unwrap_or(Value::Null);
                answers.lock().await.push((
                    Instant::now(),
                    status,
                    body,
                    format!("{name} {retry}"),
                ));
                if !status.is_success() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                i += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Every connection Warden holds is cut (an administrator's pg_terminate_backend, a
    // failover): the next requests get fresh connections.
    let cut = pg.cut_connections(&db_name).await.unwrap();
    assert!(cut > 0, "Warden held no connection to cut");
    tokio::time::sleep(Duration::from_secs(1)).await;

    // PostgreSQL restarts: down for three seconds.
    let p = pg.clone();
    tokio::task::spawn_blocking(move || p.stop())
        .await
        .unwrap()
        .unwrap();
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let p = pg.clone();
    tokio::task::spawn_blocking(move || p.start_again())
        .await
        .unwrap()
        .unwrap();
    let back = Instant::now();
    // Served again: the first acknowledged write after the database's return.
    let mut recovered = None;
    for _ in 0..150 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let seen = answers.lock().await;
        if let Some(t) = seen
            .iter()
            .find(|(t, s, _, _)| *t > back && s.is_success())
            .map(|a| a.0)
        {
            recovered = Some(t);
            break;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    running.store(false, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let recovered = recovered.unwrap_or_else(|| {
        panic!(
            "no write succeeded within 15 s of the database's return; its log:\n{}",
            pg.log()
        )
    });
    let recovery = recovered - back;
    eprintln!(
        "database outage: service back {} ms after PostgreSQL accepted connections again",
        recovery.as_millis()
    );
    assert!(
        recovery < Duration::from_secs(5),
        "recovery took {recovery:?}"
    );

    // What the clients saw: successes and clean 503s, nothing else.
    let answers = answers.lock().await;
    let mut acknowledged = Vec::new();
    let mut unavailable = 0;
    for (at, status, body, what) in answers.iter() {
        if status.is_success() {
            acknowledged.push(body["name"].as_str().unwrap().to_owned());
            continue;
        }
        assert_eq!(
            *status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{what}: {status} {body} (at {:?} after the stop)",
            at.checked_duration_since(down)
        );
        unavailable += 1;
        assert_eq!(body["code"], "unavailable", "{body}");
        assert!(what.ends_with(" 1"), "no Retry-After: 1 on {what}: {body}");
        let text = body.to_string().to_lowercase();
        for internal in [
            "postgres",
            "sqlx",
            "127.0.0.1",
            "pool",
            "connection",
            &db_name,
        ] {
            assert!(!text.contains(internal), "{internal:?} in {body}");
        }
    }
    assert!(unavailable > 0, "no request met the outage");
    assert!(
        acknowledged.len() > 10,
        "too little load: {}",
        acknowledged.len()
    );

    // Every acknowledged workspace is there, and the audit chain is whole.
    let mut names = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = app
            .call(
                &admin,
                Method::GET,
                &format!("/api/v1/workspaces?limit=200{cursor}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for w in page["items"].as_array().unwrap() {
            names.push(w["name"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    for name in &acknowledged {
        assert!(names.contains(name), "acknowledged {name} is gone");
    }
    let ctx = app.server.state().ctx.clone();
    let verified = ctx.store.verify_audit(&ctx.audit_key, &[]).await.unwrap();
    assert!(verified.broken.is_none(), "{verified:?}");
    assert!(verified.checked as usize > acknowledged.len());
}
