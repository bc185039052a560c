//! Alerts that reach people: a host key used from a refused network and an audit-chain break
//! are mailed to the administrators once per incident (through a real SMTP server), audited,
//! shown in `/readyz` and counted in `/metrics`. The licence alerts (clock moved back, a
//! signature that no longer verifies) are in `license.rs`, where the licences are made.

use reqwest::StatusCode;
use serde_json::{Value, json};
use warden_testkit::smtp::{Smtp, decoded};
use warden_testkit::{AppOptions, TestApp};

use crate::identity::{ADMIN_EMAIL, admin_token, audit_rows};
use crate::metrics::{parsed, sample, scrape, token_setting};
use crate::storage::{count, raw_exec};

/// A Warden that mails through `smtp`, with metrics on, plus `extra` settings.
pub(crate) async fn alerting(smtp: &Smtp, extra: &[(&str, &str)]) -> (TestApp, tempfile::TempDir) {
    let (dir, metrics) = token_setting();
    let mut env = vec![
        (
            "WARDEN_SMTP_URL".to_owned(),
            format!("smtp://127.0.0.1:{}", smtp.port),
        ),
        (
            "WARDEN_SMTP_FROM".to_owned(),
            "warden@example.com".to_owned(),
        ),
        metrics,
    ];
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let app = TestApp::spawn_with(AppOptions {
        env,
        ..AppOptions::default()
    })
    .await
    .unwrap();
    (app, dir)
}

/// The alerts `/readyz` shows.
pub(crate) async fn readyz_alerts(app: &TestApp) -> Vec<Value> {
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "an alert does not make a node unready"
    );
    let body: Value = res.json().await.unwrap();
    body["alerts"].as_array().unwrap().clone()
}

/// The mails about `subject` that arrived (waiting up to 10 s for the first).
pub(crate) async fn alert_mails(smtp: &Smtp, subject: &str) -> Vec<String> {
    let mut mails = Vec::new();
    for _ in 0..200 {
        mails = smtp
            .messages()
            .into_iter()
            .map(|m| decoded(&m))
            .filter(|m| m.contains(subject))
            .collect();
        if !mails.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    mails
}

#[tokio::test]
async fn a_host_key_used_from_a_refused_network_mails_the_administrators_once_and_is_audited() {
    let smtp = Smtp::start().await;
    let (app, _dir) = alerting(&smtp, &[]).await;
    let admin = admin_token(&app).await;
    let ctx = &app.server.state().ctx;
    // A wrong key from anywhere is a failed attempt, not an alert.
    let (other_id, _) = crate::hosts::register(&app, &admin, &[]).await;
    let (s, _) = crate::hosts::hello(
        &app,
        "whk_00000000000000000000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    warden_core::alerts::check(ctx).await.unwrap();
    assert!(readyz_alerts(&app).await.is_empty());

    // The right key of a host allowed only from 10.0.0.0/8, from 127.0.0.1: refused, alerted.
    let (host_id, key) = crate::hosts::register(&app, &admin, &["10.0.0.0/8"]).await;
    let (s, _) = crate::hosts::hello(&app, &key).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    warden_core::alerts::check(ctx).await.unwrap();
    let subject = "Warden alert: a host key was used from a refused network";
    let mails = alert_mails(&smtp, subject).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].contains(ADMIN_EMAIL), "{}", mails[0]);
    assert!(mails[0].contains(&host_id), "{}", mails[0]);
    assert!(mails[0].contains("warden host rotate-key"), "{}", mails[0]);
    // `whk_<id>_<secret>`: the secret is base64url and may itself contain `_`.
    let secret = key.splitn(3, '_').nth(2).unwrap();
    assert!(secret.len() >= 40, "{key}");
    assert!(!mails[0].contains(secret), "the key reached the mail");

    // Tried again the same day: the same incident, counted, never mailed again.
    let (s, _) = crate::hosts::hello(&app, &key).await;
    assert!(
        s == StatusCode::UNAUTHORIZED || s == StatusCode::TOO_MANY_REQUESTS,
        "{s}"
    );
    assert_eq!(warden_core::alerts::mail_new(ctx).await.unwrap(), 0);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(alert_mails(&smtp, subject).await.len(), 1);

    // Audited once, naming the host and the address, never the key.
    let raised = audit_rows(&app, "alert.raised").await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert!(raised[0].summary.contains("host_refused_network"));
    assert!(raised[0].summary.contains(&host_id));
    assert!(raised[0].summary.contains("127.0.0.1"));
    assert!(!raised[0].summary.contains(secret));
    assert!(!raised[0].summary.contains(&other_id));

    // /readyz shows it (what and when only); /metrics counts it.
    let alerts = readyz_alerts(&app).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["kind"], "host_refused_network");
    assert!(alerts[0]["occurrences"].as_i64().unwrap() >= 1);
    assert!(!alerts[0].to_string().contains(&host_id));
    let m = parsed(&scrape(&app).await).await;
    let kind = |k: &str| json!({ "kind": k });
    assert_eq!(
        sample(&m, "warden_alerts_active", &kind("host_refused_network")),
        Some(1.0)
    );
    assert_eq!(
        sample(&m, "warden_alert_incidents", &kind("host_refused_network")),
        Some(1.0)
    );
    assert_eq!(
        sample(&m, "warden_alerts_active", &kind("audit_chain_broken")),
        Some(0.0)
    );
}

#[tokio::test]
async fn an_audit_chain_break_is_mailed_once_and_shown_in_readyz_and_metrics() {
    let smtp = Smtp::start().await;
    let (app, _dir) = alerting(&smtp, &[("WARDEN_AUDIT_VERIFY_INTERVAL_SECS", "1")]).await;
    let _admin = admin_token(&app).await;
    let key = app.audit_key().await.unwrap();
    crate::audit::append(app.server.store(), &key, 3).await;
    // Wait until the monitor verified everything written so far, then delete the last event
    // it verified.
    let mut through = 0;
    for _ in 0..100 {
        let status = crate::audit::audit_status(&app, "intact").await;
        through = status["verified_through"].as_i64().unwrap();
        let head = count(&app.db, "SELECT COALESCE(MAX(seq), 0) FROM audit_events").await;
        if through > 0 && through == head {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(through > 0);
    crate::audit::disable_guards(&app.db).await;
    let delete: &'static str =
        Box::leak(format!("DELETE FROM audit_events WHERE seq = {through}").into_boxed_str());
    raw_exec(&app.db, delete).await;
    let status = crate::audit::audit_status(&app, "broken").await;
    assert_eq!(status["broken_at"], through, "{status}");

    // The watcher mails it without being asked; a second look mails nothing more.
    let subject = "Warden alert: the audit chain is broken";
    let mails = alert_mails(&smtp, subject).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].contains(ADMIN_EMAIL));
    assert!(
        mails[0].contains(&format!("event {through}")),
        "{}",
        mails[0]
    );
    assert!(mails[0].contains("warden audit verify"));
    warden_core::alerts::check(&app.server.state().ctx)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(alert_mails(&smtp, subject).await.len(), 1);

    // Audited (the trail is broken, but new events are still written and chained).
    let mut raised = 0;
    for _ in 0..50 {
        raised = count(
            &app.db,
            "SELECT (SELECT COUNT(*) FROM audit_events WHERE action = 'alert.raised') \
             + (SELECT COUNT(*) FROM audit_pending WHERE action = 'alert.raised')",
        )
        .await;
        if raised > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(raised, 1);
    let alerts = readyz_alerts(&app).await;
    assert!(
        alerts.iter().any(|a| a["kind"] == "audit_chain_broken"),
        "{alerts:?}"
    );
    let m = parsed(&scrape(&app).await).await;
    assert_eq!(
        sample(
            &m,
            "warden_alerts_active",
            &json!({"kind": "audit_chain_broken"})
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&m, "warden_audit_chain_intact", &json!({})),
        Some(0.0)
    );
}
