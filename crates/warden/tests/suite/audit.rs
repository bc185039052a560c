//! The audit trail in storage, on both backends: atomic with the change, append-only,
//! chained, and every kind of tampering detected.

use std::sync::Arc;

use serde_json::json;
use time::OffsetDateTime;
use warden_crypto::MasterKey;
use warden_domain::audit::{Action, Actor, ActorKind, NewEvent, Outcome};
use warden_domain::clock::SystemClock;
use warden_store::audit::{ChainKey, Tamper, Verification};
use warden_store::{Backend, Store, keyring};
use warden_testkit::TestDb;

use crate::storage::{count, raw_exec};

pub(crate) fn event(n: usize) -> NewEvent {
    NewEvent {
        at: OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(1_800_000_000 + n as i64),
        actor: Actor {
            kind: ActorKind::User,
            id: Some(format!("user-{n}")),
        },
        workspace_id: Some("ws-1".into()),
        action: Action::parse("workspace.updated").unwrap(),
        resource_type: "workspace".into(),
        resource_id: Some("ws-1".into()),
        outcome: Outcome::Success,
        client_ip: Some("127.0.0.1".parse().unwrap()),
        user_agent: Some("test/1".into()),
        request_id: Some(format!("req-{n}")),
        duration_ms: 3,
        summary: json!({"name": {"old": "a", "new": format!("b{n}")}}),
    }
}

async fn setup() -> (TestDb, Store, ChainKey) {
    let (db, store, key, _) = setup_with_known_key().await;
    (db, store, key)
}

/// A migrated database with its keyring and chain key, and the master key (hex) that the
/// `warden` binary needs to open it.
async fn setup_with_known_key() -> (TestDb, Store, ChainKey, String) {
    let db = TestDb::new().await.unwrap();
    let store = db.store().await.unwrap();
    let key_hex = warden_testkit::random_key_hex();
    let master = MasterKey::from_hex(&key_hex).unwrap();
    let ring = keyring::load_or_create(&store, &master, &SystemClock)
        .await
        .unwrap();
    let key = ChainKey::load_or_create(&store, &ring, &SystemClock)
        .await
        .unwrap();
    (db, store, key, key_hex)
}

/// Records `n` events, each in its own transaction, and chains them.
pub(crate) async fn append(store: &Store, key: &ChainKey, n: usize) {
    for i in 0..n {
        let mut tx = store.begin().await.unwrap();
        tx.record(key, &event(i)).await.unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(store.chain_audit(key).await.unwrap().unsealed, None);
}

fn intact(n: u64) -> Verification {
    Verification {
        checked: n,
        broken: None,
    }
}

#[tokio::test]
async fn an_event_commits_with_its_transaction_and_vanishes_with_its_rollback() {
    let (db, store, key) = setup().await;
    let mut tx = store.begin().await.unwrap();
    tx.record(&key, &event(1)).await.unwrap();
    tx.rollback().await.unwrap();
    {
        let mut tx = store.begin().await.unwrap();
        tx.record(&key, &event(2)).await.unwrap();
        // dropped without commit
    }
    assert_eq!(store.chain_audit(&key).await.unwrap().linked, 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit_pending").await, 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit_events").await, 0);
    assert_eq!(verify_unpurged(&store, &key).await, intact(0));

    let mut tx = store.begin().await.unwrap();
    let id = tx.record(&key, &event(3)).await.unwrap();
    tx.commit().await.unwrap();
    // Committed: waiting to be chained until the chainer (or a reader) comes.
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit_pending").await, 1);
    let rows = warden_store::audit::newest(&store, &key, 10).await.unwrap();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit_pending").await, 0);
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.event_id, id);
    assert_eq!((row.seq, row.action.as_str()), (1, "workspace.updated"));
    assert_eq!(row.actor_kind, "user");
    assert_eq!(row.actor_id.as_deref(), Some("user-3"));
    assert_eq!(row.request_id.as_deref(), Some("req-3"));
    assert_eq!(row.client_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(row.outcome, "success");
    assert_eq!(verify_unpurged(&store, &key).await, intact(1));
}

#[tokio::test]
async fn a_change_whose_event_cannot_be_written_fails_with_it() {
    let (db, store, key) = setup().await;
    // The database refuses one event, as a full disk or a damaged table would.
    match db.backend {
        Backend::Sqlite => {
            raw_exec(
                &db,
                "CREATE TRIGGER refuse_one BEFORE INSERT ON audit_pending \
                 WHEN NEW.request_id = 'req-13' BEGIN SELECT RAISE(ABORT, 'refused'); END",
            )
            .await;
        }
        Backend::Postgres => {
            raw_exec(
                &db,
                "CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN IF NEW.request_id = 'req-13' THEN RAISE EXCEPTION 'refused'; END IF; \
                 RETURN NEW; END $$; CREATE TRIGGER refuse_one BEFORE INSERT ON audit_pending \
                 FOR EACH ROW EXECUTE FUNCTION refuse_one()",
            )
            .await;
        }
    }
    // A change and its event: neither is kept.
    let mut tx = store.begin().await.unwrap();
    tx.insert_setup_token(b"changed-with-a-refused-event", 0, 0)
        .await
        .unwrap();
    let outcome = async {
        tx.record(&key, &event(13)).await?;
        tx.commit().await
    }
    .await;
    assert!(outcome.is_err());
    assert_eq!(count(&db, "SELECT COUNT(*) FROM setup_tokens").await, 0);
    // An event on its own (the group commit on SQLite): refused, nothing kept.
    let outcome = async {
        let mut tx = store.begin().await?;
        tx.record(&key, &event(13)).await?;
        tx.commit().await
    }
    .await;
    assert!(outcome.is_err());
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit_pending").await, 0);
    // Other events and changes go on.
    let mut tx = store.begin().await.unwrap();
    tx.insert_setup_token(b"changed", 0, 0).await.unwrap();
    tx.record(&key, &event(1)).await.unwrap();
    tx.commit().await.unwrap();
    append(&store, &key, 2).await;
    assert_eq!(count(&db, "SELECT COUNT(*) FROM setup_tokens").await, 1);
    assert_eq!(verify_unpurged(&store, &key).await, intact(3));
}

#[tokio::test]
async fn the_database_refuses_to_update_or_delete_audit_events() {
    let (db, store, key) = setup().await;
    append(&store, &key, 2).await;
    for sql in [
        "UPDATE audit_events SET summary = '{}' WHERE seq = 1",
        "DELETE FROM audit_events WHERE seq = 2",
        "DELETE FROM audit_events",
    ] {
        // The owner is stopped by the append-only triggers; the application role (on
        // PostgreSQL) is stopped earlier still, by its missing privileges or the same triggers.
        let err = try_exec(&db, &db.owner_url, sql).await.unwrap_err();
        assert!(err.contains("append-only"), "{sql}: {err}");
        try_exec(&db, &db.url, sql).await.unwrap_err();
    }
    if db.backend == Backend::Postgres {
        let err = try_exec(&db, &db.owner_url, "TRUNCATE audit_events")
            .await
            .unwrap_err();
        assert!(err.contains("append-only"), "{err}");
        let err = try_exec(&db, &db.url, "TRUNCATE audit_events")
            .await
            .unwrap_err();
        assert!(err.contains("permission denied"), "{err}");
    }
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit_events").await, 2);
    assert_eq!(verify_unpurged(&store, &key).await, intact(2));
}

#[tokio::test]
async fn an_event_waiting_to_be_chained_leaves_only_by_being_chained() {
    let (db, store, key) = setup().await;
    append(&store, &key, 1).await;
    let mut tx = store.begin().await.unwrap();
    tx.record(&key, &event(7)).await.unwrap();
    tx.commit().await.unwrap();
    let mut attempts = vec![
        "UPDATE audit_pending SET outcome = 'failed'",
        "DELETE FROM audit_pending",
    ];
    if db.backend == Backend::Postgres {
        attempts.push("TRUNCATE audit_pending");
    }
    for sql in attempts {
        let err = try_exec(&db, &db.owner_url, sql).await.unwrap_err();
        assert!(err.contains("leave only by being chained"), "{sql}: {err}");
        try_exec(&db, &db.url, sql).await.unwrap_err();
    }
    // Nor by giving it the id of an event already in the chain.
    let err = try_exec(
        &db,
        &db.url,
        "INSERT INTO audit_events (seq, event_id, occurred_at_us, actor_kind, action, \
         resource_type, outcome, duration_ms, summary, prev_hash, hash) \
         SELECT 2, event_id, occurred_at_us, actor_kind, action, resource_type, outcome, \
         duration_ms, summary, hash, hash FROM audit_events WHERE seq = 1",
    )
    .await
    .unwrap_err();
    assert!(err.to_lowercase().contains("unique"), "{err}");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit_pending").await, 1);
    assert_eq!(store.chain_audit(&key).await.unwrap().linked, 1);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit_pending").await, 0);
    assert_eq!(verify_unpurged(&store, &key).await, intact(2));

    // A row in audit_events made only as a ticket to delete a waiting event (its id, but an
    // old time, so the ticket could be purged afterwards) does not let it go.
    let mut tx = store.begin().await.unwrap();
    tx.record(&key, &event(8)).await.unwrap();
    tx.commit().await.unwrap();
    try_exec(
        &db,
        &db.url,
        "INSERT INTO audit_events (seq, event_id, occurred_at_us, actor_kind, actor_id, \
         workspace_id, action, resource_type, resource_id, outcome, client_ip, user_agent, \
         request_id, duration_ms, summary, prev_hash, hash) SELECT 1000, event_id, 0, \
         actor_kind, actor_id, workspace_id, action, resource_type, resource_id, outcome, \
         client_ip, user_agent, request_id, duration_ms, summary, seal, seal FROM audit_pending",
    )
    .await
    .unwrap();
    let err = try_exec(&db, &db.url, "DELETE FROM audit_pending")
        .await
        .unwrap_err();
    assert!(err.contains("leave only by being chained"), "{err}");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit_pending").await, 1);
    // The ticket does not stop the chainer: other events are chained; the one it names waits.
    let mut tx = store.begin().await.unwrap();
    tx.record(&key, &event(9)).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.chain_audit(&key).await.unwrap().linked, 1);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit_pending").await, 1);
    // And the ticket itself shows.
    assert!(verify_unpurged(&store, &key).await.broken.is_some());
}

/// Plays an attacker with direct database access on the events waiting to be chained.
async fn disable_pending_guards(db: &TestDb) {
    match db.backend {
        Backend::Sqlite => {
            raw_exec(db, "DROP TRIGGER audit_pending_no_update").await;
            raw_exec(db, "DROP TRIGGER audit_pending_no_delete").await;
        }
        Backend::Postgres => {
            raw_exec(db, "ALTER TABLE audit_pending DISABLE TRIGGER USER").await;
        }
    }
}

#[tokio::test]
async fn an_edited_or_forged_event_waiting_to_be_chained_is_never_chained() {
    // Edited after its transaction committed, before the chainer came.
    let (db, store, key) = setup().await;
    append(&store, &key, 3).await;
    let mut tx = store.begin().await.unwrap();
    let edited = tx.record(&key, &event(3)).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.record(&key, &event(4)).await.unwrap();
    tx.commit().await.unwrap();
    disable_pending_guards(&db).await;
    raw_exec(
        &db,
        "UPDATE audit_pending SET outcome = 'denied' WHERE request_id = 'req-3'",
    )
    .await;
    let done = store.chain_audit(&key).await.unwrap();
    // The event after it is chained; it stays out of the chain, waiting for the operator, and
    // every check says so.
    assert_eq!(done.linked, 1);
    assert_eq!(done.unsealed, Some((5, edited.clone())));
    assert_eq!(count(&db, "SELECT MAX(seq) FROM audit_events").await, 4);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit_pending").await, 1);
    assert_eq!(
        verify_unpurged(&store, &key).await,
        Verification {
            checked: 4,
            broken: Some((5, Tamper::Unsealed)),
        }
    );
    assert_eq!(
        store.chain_audit(&key).await.unwrap().unsealed,
        Some((5, edited.clone()))
    );
    let monitor = warden_core::audit::AuditMonitor::new();
    monitor.chain(&store, &key).await;
    let status = monitor.status();
    assert_eq!(
        (status.status, status.broken_at, status.tamper.as_deref()),
        ("broken", Some(5), Some("unsealed"))
    );

    // Inserted by someone without the key, after a genuine event.
    let (db, store, key) = setup().await;
    append(&store, &key, 2).await;
    let mut tx = store.begin().await.unwrap();
    tx.record(&key, &event(2)).await.unwrap();
    tx.commit().await.unwrap();
    raw_exec(
        &db,
        "INSERT INTO audit_pending (event_id, occurred_at_us, actor_kind, actor_id, action, \
         resource_type, outcome, duration_ms, summary, seal) SELECT 'forged-1', \
         occurred_at_us, actor_kind, 'admin', action, resource_type, outcome, duration_ms, \
         summary, seal FROM audit_pending",
    )
    .await;
    let done = store.chain_audit(&key).await.unwrap();
    assert_eq!(done.linked, 1);
    assert_eq!(done.unsealed, Some((4, "forged-1".to_owned())));
    assert_eq!(
        verify_unpurged(&store, &key).await,
        Verification {
            checked: 3,
            broken: Some((4, Tamper::Unsealed)),
        }
    );
}

async fn try_exec(db: &TestDb, url: &str, sql: &'static str) -> Result<(), String> {
    let res = match db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            sqlx::raw_sql(sql).execute(&pool).await.map(drop)
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::raw_sql(sql).execute(&pool).await.map(drop)
        }
    };
    res.map_err(|e| e.to_string())
}

#[tokio::test]
async fn thirty_two_concurrent_writers_keep_one_unbroken_chain() {
    let (db, store, key) = setup().await;
    let key = Arc::new(key);
    let mut tasks = Vec::new();
    for w in 0..32 {
        let store = store.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let mut tx = store.begin().await.unwrap();
                tx.record(&key, &event(w * 100 + i)).await.unwrap();
                tx.commit().await.unwrap();
            }
        }));
    }
    // Chaining while they write.
    let chainer = chain_until_aborted(store.clone(), key.clone());
    for t in tasks {
        t.await.unwrap();
    }
    chainer.abort();
    store.chain_audit(&key).await.unwrap();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit_pending").await, 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit_events").await, 320);
    assert_eq!(count(&db, "SELECT MAX(seq) FROM audit_events").await, 320);
    assert_eq!(verify_unpurged(&store, &key).await, intact(320));
}

#[tokio::test]
async fn two_nodes_sharing_a_database_keep_one_unbroken_chain() {
    let (db, store, key) = setup().await;
    let other = db.connect().await.unwrap();
    let key = Arc::new(key);
    let mut tasks = Vec::new();
    for (n, node) in [store.clone(), other.clone()].into_iter().enumerate() {
        for w in 0..8 {
            let node = node.clone();
            let key = key.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..10 {
                    let mut tx = node.begin().await.unwrap();
                    tx.record(&key, &event(n * 1000 + w * 10 + i))
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                }
            }));
        }
    }
    // Both nodes chain while both write: the chain's lock makes them take turns.
    let chainers = [
        chain_until_aborted(store.clone(), key.clone()),
        chain_until_aborted(other.clone(), key.clone()),
    ];
    for t in tasks {
        t.await.unwrap();
    }
    for c in chainers {
        c.abort();
    }
    other.chain_audit(&key).await.unwrap();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit_pending").await, 0);
    assert_eq!(count(&db, "SELECT MAX(seq) FROM audit_events").await, 160);
    assert_eq!(verify_unpurged(&store, &key).await, intact(160));
}

/// Chains in a loop, as a node's chainer does under load.
fn chain_until_aborted(store: Store, key: Arc<ChainKey>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let done = store.chain_audit(&key).await.unwrap();
            assert_eq!(done.unsealed, None);
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    })
}

/// Lets the test play an attacker with direct database access.
pub(crate) async fn disable_guards(db: &TestDb) {
    match db.backend {
        Backend::Sqlite => {
            raw_exec(db, "DROP TRIGGER audit_events_no_update").await;
            raw_exec(db, "DROP TRIGGER audit_events_no_delete").await;
        }
        Backend::Postgres => {
            raw_exec(db, "ALTER TABLE audit_events DISABLE TRIGGER USER").await;
        }
    }
}

async fn tampered(sqls: &[&'static str]) -> Verification {
    let (db, store, key) = setup().await;
    append(&store, &key, 10).await;
    assert_eq!(verify_unpurged(&store, &key).await, intact(10));
    disable_guards(&db).await;
    for sql in sqls {
        raw_exec(&db, sql).await;
    }
    verify_unpurged(&store, &key).await
}

#[tokio::test]
async fn an_edited_event_is_named() {
    let v = tampered(&["UPDATE audit_events SET outcome = 'failed' WHERE seq = 4"]).await;
    assert_eq!(v.broken, Some((4, Tamper::Edited)));
    assert_eq!(v.checked, 3);
    let v = tampered(&["UPDATE audit_events SET summary = '{}' WHERE seq = 10"]).await;
    assert_eq!(v.broken, Some((10, Tamper::Edited)));
}

#[tokio::test]
async fn a_deleted_event_is_named() {
    let v = tampered(&["DELETE FROM audit_events WHERE seq = 6"]).await;
    assert_eq!(v.broken, Some((6, Tamper::Deleted)));
    // The newest event, whose removal leaves no gap behind it.
    let v = tampered(&["DELETE FROM audit_events WHERE seq = 10"]).await;
    assert_eq!(v.broken, Some((10, Tamper::Deleted)));
    // A deletion hidden by renumbering the events after it.
    let v = tampered(&[
        "DELETE FROM audit_events WHERE seq = 5",
        "UPDATE audit_events SET seq = seq + 1000 WHERE seq > 5",
        "UPDATE audit_events SET seq = seq - 1001 WHERE seq > 1000",
    ])
    .await;
    assert_eq!(v.broken, Some((5, Tamper::Deleted)));
}

const FORGED: &str = "INSERT INTO audit_events (seq, event_id, occurred_at_us, actor_kind, \
    actor_id, workspace_id, action, resource_type, resource_id, outcome, client_ip, user_agent, \
    request_id, duration_ms, summary, prev_hash, hash) SELECT 7, 'forged', occurred_at_us, \
    actor_kind, 'intruder', workspace_id, 'user.role_changed', resource_type, resource_id, \
    outcome, client_ip, user_agent, request_id, duration_ms, summary, hash, hash \
    FROM audit_events WHERE seq = 6";

#[tokio::test]
async fn an_inserted_event_is_named() {
    let v = tampered(&[
        "UPDATE audit_events SET seq = seq + 1000 WHERE seq > 6",
        "UPDATE audit_events SET seq = seq - 999 WHERE seq > 1000",
        FORGED,
    ])
    .await;
    assert_eq!(v.broken, Some((7, Tamper::Inserted)));
    assert_eq!(v.checked, 6);
    // Appended after the newest event.
    let v = tampered(&[FORGED_AT_END]).await;
    assert_eq!(v.broken, Some((11, Tamper::Inserted)));
}

const FORGED_AT_END: &str = "INSERT INTO audit_events (seq, event_id, occurred_at_us, \
    actor_kind, actor_id, workspace_id, action, resource_type, resource_id, outcome, client_ip, \
    user_agent, request_id, duration_ms, summary, prev_hash, hash) SELECT 11, 'forged', \
    occurred_at_us, actor_kind, 'intruder', workspace_id, action, resource_type, resource_id, \
    outcome, client_ip, user_agent, request_id, duration_ms, summary, hash, hash \
    FROM audit_events WHERE seq = 10";

#[tokio::test]
async fn reordered_events_are_named() {
    let v = tampered(&[
        "UPDATE audit_events SET seq = 1003 WHERE seq = 3",
        "UPDATE audit_events SET seq = 3 WHERE seq = 4",
        "UPDATE audit_events SET seq = 4 WHERE seq = 1003",
    ])
    .await;
    assert_eq!(v.broken, Some((3, Tamper::Reordered)));
    assert_eq!(v.checked, 2);
}

#[tokio::test]
async fn a_forged_chain_without_the_key_does_not_verify() {
    // An attacker who recomputes plain hashes cannot produce the keyed ones.
    let (_db, store, key) = setup().await;
    append(&store, &key, 3).await;
    let other = ChainKey::from_bytes(&[7u8; 32]);
    let v = verify_unpurged(&store, &other).await;
    assert_eq!(v.broken.map(|(seq, _)| seq), Some(1));
}

#[derive(serde::Serialize)]
struct SetProviderKey {
    provider: String,
    api_key: String,
    label: Option<String>,
}
warden_domain::audited!(SetProviderKey {
    provider: Value,
    api_key: Changed,
    label: Value
});

#[tokio::test]
async fn no_secret_from_an_audited_input_reaches_the_table() {
    let (db, store, key) = setup().await;
    let secret = "sk-live-7f3a9c1e5b2d4f6a8c0e";
    let input = SetProviderKey {
        provider: "claude_code".into(),
        api_key: secret.into(),
        label: Some("team key".into()),
    };
    warden_domain::audit::check_declarations(&input).unwrap();
    let mut e = event(1);
    e.summary = warden_domain::audit::summarize(&input).unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.record(&key, &e).await.unwrap();
    tx.commit().await.unwrap();
    // Not while it waits to be chained,
    let waiting = dump(&db, "audit_pending").await;
    assert_eq!(waiting.len(), 1);
    assert!(waiting.iter().all(|row| !row.contains(secret)));

    let rows = warden_store::audit::newest(&store, &key, 10).await.unwrap();
    let everything = format!("{rows:?}");
    assert!(!everything.contains(secret));
    assert!(rows[0].summary.contains("[changed]"), "{}", rows[0].summary);
    assert!(rows[0].summary.contains("claude_code"));
    // Not in the raw table either, whatever the column.
    let dump = dump(&db, "audit_events").await;
    assert!(dump.iter().all(|row| !row.contains(secret)));
}

/// Every row of an audit table as text, every text column in it.
async fn dump(db: &TestDb, table: &str) -> Vec<String> {
    let sql = match db.backend {
        Backend::Sqlite => format!(
            "SELECT event_id || occurred_at_us || actor_kind || coalesce(actor_id, '') || \
             coalesce(workspace_id, '') || action || resource_type || \
             coalesce(resource_id, '') || outcome || coalesce(client_ip, '') || \
             coalesce(user_agent, '') || coalesce(request_id, '') || summary FROM {table}"
        ),
        Backend::Postgres => format!("SELECT {table}::text FROM {table}"),
    };
    let sql = sqlx::AssertSqlSafe(sql);
    match db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap()
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap()
        }
    }
}

#[tokio::test]
async fn warden_audit_verify_reports_an_intact_chain_and_names_a_tampered_event() {
    let (db, store, key, key_hex) = setup_with_known_key().await;
    append(&store, &key, 5).await;
    store.close().await;

    let run = |db: &TestDb| {
        std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
            .env_clear()
            .env("WARDEN_DATABASE_URL", &db.url)
            .env("WARDEN_ENCRYPTION_KEY", &key_hex)
            .env("WARDEN_DATA_DIR", db.data_dir())
            .env("WARDEN_LOG_LEVEL", "warn")
            .args(["audit", "verify"])
            .output()
            .unwrap()
    };
    let out = run(&db);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "audit chain intact: 5 events verified"
    );

    disable_guards(&db).await;
    raw_exec(
        &db,
        "UPDATE audit_events SET actor_id = 'someone-else' WHERE seq = 3",
    )
    .await;
    let out = run(&db);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("audit chain broken at event 3: edited (2 events before it verified)"),
        "{err}"
    );
}

pub(crate) async fn audit_status(app: &warden_testkit::TestApp, until: &str) -> serde_json::Value {
    for _ in 0..100 {
        let body: serde_json::Value = app
            .client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if body["audit"]["status"] == until {
            return body["audit"].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("audit status never became {until}");
}

#[tokio::test]
async fn the_server_verifies_new_events_in_the_background_and_reports_a_break_in_readyz() {
    let app = warden_testkit::TestApp::spawn_with(warden_testkit::AppOptions {
        env: vec![("WARDEN_AUDIT_VERIFY_INTERVAL_SECS".into(), "1".into())],
        ..Default::default()
    })
    .await
    .unwrap();
    let status = audit_status(&app, "intact").await;
    assert_eq!(status["verified_through"], 0);

    let key = app.audit_key().await.unwrap();
    append(app.server.store(), &key, 4).await;
    for _ in 0..100 {
        let s = audit_status(&app, "intact").await;
        if s["verified_through"] == 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(audit_status(&app, "intact").await["verified_through"], 4);
    // What the monitor verified, it signs a checkpoint for.
    for _ in 0..50 {
        if count(
            &app.db,
            "SELECT COUNT(*) FROM audit_checkpoints WHERE seq = 4",
        )
        .await
            == 1
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        count(
            &app.db,
            "SELECT COUNT(*) FROM audit_checkpoints WHERE seq = 4"
        )
        .await,
        1
    );

    disable_guards(&app.db).await;
    raw_exec(&app.db, "DELETE FROM audit_events WHERE seq = 4").await;
    let status = audit_status(&app, "broken").await;
    assert_eq!(status["broken_at"], 4, "{status}");
    assert_eq!(status["tamper"], "deleted", "{status}");
    // Administrators see it on every console page.
    let admin = crate::identity::admin_token(&app).await;
    let (_, page) = warden_testkit::browser::Browser::signed_in(&app, &admin)
        .get("/console")
        .await;
    assert!(
        page.contains("The audit trail fails its check at event 4 (deleted)"),
        "{page}"
    );
}

#[tokio::test]
async fn the_audit_status_endpoint_refuses_anonymous_callers() {
    let app = warden_testkit::TestApp::spawn().await.unwrap();
    let res = app
        .client
        .get(app.url("/api/v1/audit/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn queries_filter_and_page_newest_first() {
    let (_db, store, key) = setup().await;
    for i in 0..12 {
        let mut e = event(i);
        if i % 3 == 0 {
            e.action = Action::parse("user.sign_in").unwrap();
            e.outcome = Outcome::Denied;
        }
        let mut tx = store.begin().await.unwrap();
        tx.record(&key, &e).await.unwrap();
        tx.commit().await.unwrap();
    }
    store.chain_audit(&key).await.unwrap();
    let all = warden_store::audit::Filter::default();
    let first = store.audit_page(&all, None, 5).await.unwrap();
    let seqs: Vec<i64> = first.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![12, 11, 10, 9, 8]);
    let next = store.audit_page(&all, Some(8), 5).await.unwrap();
    assert_eq!(next.first().map(|r| r.seq), Some(7));

    let sign_ins = warden_store::audit::Filter {
        action_prefix: Some("user.".into()),
        outcome: Some("denied".into()),
        ..Default::default()
    };
    let rows = store.audit_page(&sign_ins, None, 100).await.unwrap();
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r.action == "user.sign_in"));
    assert_eq!(store.audit_count(&sign_ins).await.unwrap(), 4);

    let window = warden_store::audit::Filter {
        since_us: Some((1_800_000_000 + 2) * 1_000_000),
        until_us: Some((1_800_000_000 + 5) * 1_000_000),
        actor_id: Some("user-3".into()),
        ..Default::default()
    };
    let rows = store.audit_page(&window, None, 100).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].actor_id.as_deref(), Some("user-3"));
    // A prefix is a prefix, not a pattern.
    let pattern = warden_store::audit::Filter {
        action_prefix: Some("%".into()),
        ..Default::default()
    };
    assert_eq!(store.audit_count(&pattern).await.unwrap(), 0);
}

#[tokio::test]
async fn audit_routes_refuse_anonymous_callers() {
    let app = warden_testkit::TestApp::spawn().await.unwrap();
    for path in [
        "/api/v1/audit/events",
        "/api/v1/audit/events?since=yesterday",
        "/api/v1/audit/export.csv",
    ] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 401, "{path}");
    }
}

#[tokio::test]
async fn warden_audit_export_writes_rfc4180_csv_with_formulas_neutralised() {
    let (db, store, key, key_hex) = setup_with_known_key().await;
    for i in 0..700 {
        let mut e = event(i);
        if i == 3 {
            e.resource_id = Some("=cmd|' /C calc'!A0".into());
            e.user_agent = Some("@SUM(1+1)".into());
            e.summary = json!({"note": "a \"quoted\", comma\nnewline"});
        }
        if i % 2 == 0 {
            e.action = Action::parse("host.key_created").unwrap();
        }
        let mut tx = store.begin().await.unwrap();
        tx.record(&key, &e).await.unwrap();
        tx.commit().await.unwrap();
    }
    store.close().await;

    let out_dir = tempfile::tempdir().unwrap();
    let output = out_dir.path().join("audit.csv");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
            .env_clear()
            .env("WARDEN_DATABASE_URL", &db.url)
            .env("WARDEN_ENCRYPTION_KEY", &key_hex)
            .env("WARDEN_DATA_DIR", db.data_dir())
            .env("WARDEN_LOG_LEVEL", "warn")
            .args(["audit", "export"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--output", output.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut reader = csv::Reader::from_path(&output).unwrap();
    assert_eq!(reader.headers().unwrap().get(0), Some("seq"));
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), 700);
    assert_eq!(records[0].get(0), Some("1"));
    let tricky = &records[3];
    assert_eq!(tricky.get(8), Some("'=cmd|' /C calc'!A0"));
    assert_eq!(tricky.get(11), Some("'@SUM(1+1)"));
    assert_eq!(
        tricky.get(14),
        Some(r#"{"note":"a \"quoted\", comma\nnewline"}"#)
    );

    // Filters apply; a malformed one is refused and leaves no file behind.
    let filtered = out_dir.path().join("hosts.csv");
    let out = run(&["--output", filtered.to_str().unwrap(), "--action", "host."]);
    assert!(out.status.success());
    assert_eq!(
        csv::Reader::from_path(&filtered).unwrap().records().count(),
        350
    );
    let bad = out_dir.path().join("bad.csv");
    let out = run(&["--output", bad.to_str().unwrap(), "--since", "yesterday"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));
    let left: Vec<_> = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !left
            .iter()
            .any(|n| n.contains("bad") || n.contains("partial")),
        "{left:?}"
    );
}

/// Verifies a log from which nothing was purged (no checkpoint key needed).
async fn verify_unpurged(store: &Store, key: &ChainKey) -> Verification {
    store.verify_audit(key, &[]).await.unwrap()
}

fn days_ago(days: i64) -> OffsetDateTime {
    #[allow(clippy::disallowed_methods)]
    let now = OffsetDateTime::now_utc();
    now - time::Duration::days(days)
}

#[tokio::test]
async fn purging_past_retention_keeps_the_log_verifiable_from_a_signed_checkpoint() {
    let (db, store, key) = setup().await;
    let signer = {
        // The signer lives beside the chain key, sealed by the same keyring.
        let ring = warden_crypto::Keyring::new([(1, warden_crypto::DataKey::generate().unwrap())])
            .unwrap();
        warden_store::audit::CheckpointSigner::load_or_create(&store, &ring, &SystemClock)
            .await
            .unwrap()
    };
    let public = signer.public_key();
    // Six old events, then four recent ones.
    for i in 0..10 {
        let mut e = event(i);
        e.at = if i < 6 { days_ago(200) } else { days_ago(1) };
        let mut tx = store.begin().await.unwrap();
        tx.record(&key, &e).await.unwrap();
        tx.commit().await.unwrap();
    }
    store.chain_audit(&key).await.unwrap();
    // The database refuses to delete even old events until a checkpoint covers them.
    let refused = try_exec(&db, &db.url, "DELETE FROM audit_events WHERE seq = 1").await;
    assert!(refused.unwrap_err().contains("append-only"));

    // A checkpoint at event 4, as the monitor writes after verifying that far.
    let (v, anchor) = store
        .verify_audit_from(&key, &public, &warden_store::audit::Anchor::genesis())
        .await
        .unwrap();
    assert_eq!(v.checked, 10);
    let mut at4 = warden_store::audit::Anchor::genesis();
    for row in warden_store::audit::newest(&store, &key, 100)
        .await
        .unwrap()
    {
        if row.seq == 4 {
            at4 = warden_store::audit::Anchor {
                next_seq: 5,
                prev_hash: row.hash.clone(),
            };
        }
    }
    assert_eq!(anchor.next_seq, 11);
    store
        .write_checkpoint(&signer, &at4, &SystemClock)
        .await
        .unwrap();

    let cutoff_us = (days_ago(90).unix_timestamp_nanos() / 1_000) as i64;
    assert_eq!(store.purge_audit(cutoff_us).await.unwrap(), 4);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit_events").await, 6);
    assert_eq!(count(&db, "SELECT MIN(seq) FROM audit_events").await, 5);
    // Old events beyond the checkpoint and recent events stay protected.
    for sql in [
        "DELETE FROM audit_events WHERE seq = 5",
        "DELETE FROM audit_events WHERE seq = 10",
    ] {
        assert!(
            try_exec(&db, &db.url, sql)
                .await
                .unwrap_err()
                .contains("append-only"),
            "{sql}"
        );
    }

    // Nor can the checkpoint that vouches for the purged events be removed.
    let err = try_exec(&db, &db.owner_url, "DELETE FROM audit_checkpoints")
        .await
        .unwrap_err();
    assert!(err.contains("append-only"), "{err}");
    try_exec(&db, &db.url, "DELETE FROM audit_checkpoints")
        .await
        .unwrap_err();
    if db.backend == Backend::Postgres {
        let err = try_exec(&db, &db.url, "TRUNCATE audit_checkpoints")
            .await
            .unwrap_err();
        assert!(err.contains("permission denied"), "{err}");
    }
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM audit_checkpoints").await,
        1
    );

    let v = store.verify_audit(&key, &public).await.unwrap();
    assert_eq!(v, intact(6));
    // Without the right public key the checkpoint does not vouch for the purged part.
    let v = store.verify_audit(&key, &[4u8; 65]).await.unwrap();
    assert!(v.broken.is_some());
    // A forged checkpoint (its hash changed) does not verify either.
    disable_guards(&db).await;
    match db.backend {
        Backend::Sqlite => raw_exec(&db, "DROP TRIGGER audit_checkpoints_no_update").await,
        Backend::Postgres => {
            raw_exec(&db, "ALTER TABLE audit_checkpoints DISABLE TRIGGER USER").await
        }
    }
    raw_exec(
        &db,
        "UPDATE audit_checkpoints SET signed_at_us = signed_at_us + 1",
    )
    .await;
    assert!(
        store
            .verify_audit(&key, &public)
            .await
            .unwrap()
            .broken
            .is_none()
    );
    raw_exec(&db, "UPDATE audit_checkpoints SET hash = prev FROM (SELECT hash AS prev FROM audit_events WHERE seq = 5) p").await;
    let v = store.verify_audit(&key, &public).await.unwrap();
    assert!(v.broken.is_some(), "{v:?}");
}

#[tokio::test]
async fn every_checkpoint_a_verification_passes_must_carry_the_servers_signature() {
    let db = TestDb::new().await.unwrap();
    let store = db.store().await.unwrap();
    let key_hex = warden_testkit::random_key_hex();
    let master = MasterKey::from_hex(&key_hex).unwrap();
    let ring = keyring::load_or_create(&store, &master, &SystemClock)
        .await
        .unwrap();
    let key = ChainKey::load_or_create(&store, &ring, &SystemClock)
        .await
        .unwrap();
    let signer = warden_store::audit::CheckpointSigner::load_or_create(&store, &ring, &SystemClock)
        .await
        .unwrap();
    let public = signer.public_key();
    for i in 0..10 {
        let mut tx = store.begin().await.unwrap();
        tx.record(&key, &event(i)).await.unwrap();
        tx.commit().await.unwrap();
    }
    store.chain_audit(&key).await.unwrap();
    let genesis = warden_store::audit::Anchor::genesis();
    let (_, at10) = store
        .verify_audit_from(&key, &public, &genesis)
        .await
        .unwrap();
    // A genuine checkpoint at the head is fine.
    store
        .write_checkpoint(&signer, &at10, &SystemClock)
        .await
        .unwrap();
    assert_eq!(store.verify_audit(&key, &public).await.unwrap(), intact(10));
    // The application role can add a checkpoint, but without the private key it cannot
    // sign one: a checkpoint with the right hash and a bogus signature is reported.
    try_exec(
        &db,
        &db.url,
        "INSERT INTO audit_checkpoints (seq, hash, signed_at_us, signature) \
         SELECT seq, hash, 0, hash FROM audit_events WHERE seq = 7",
    )
    .await
    .unwrap();
    let v = store.verify_audit(&key, &public).await.unwrap();
    assert_eq!(v.broken, Some((7, Tamper::Checkpoint)), "{v:?}");
    assert_eq!(v.checked, 6);
    // The periodic check (from any anchor before it) reports it too.
    let (v, _) = store
        .verify_audit_from(&key, &public, &genesis)
        .await
        .unwrap();
    assert_eq!(v.broken, Some((7, Tamper::Checkpoint)));
    // And `warden audit verify` names it.
    store.close().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .env_clear()
        .env("WARDEN_DATABASE_URL", &db.url)
        .env("WARDEN_ENCRYPTION_KEY", &key_hex)
        .env("WARDEN_DATA_DIR", db.data_dir())
        .env("WARDEN_LOG_LEVEL", "warn")
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("event 7") && text.contains("checkpoint"),
        "{text}"
    );
}

#[test]
fn retention_below_ninety_days_is_refused_at_boot() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .current_dir(dir.path())
        .env_clear()
        .env("WARDEN_AUDIT_RETENTION_DAYS", "30")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("audit.retention_days: must be at least 90"),
        "{err}"
    );
}

mod over_http {
    use reqwest::StatusCode;
    use serde_json::Value;
    use warden_testkit::TestApp;

    use super::event;
    use crate::identity::admin_token;

    async fn fill(app: &TestApp, n: usize) {
        let key = app.audit_key().await.unwrap();
        let mut tx = app.server.store().begin().await.unwrap();
        for i in 0..n {
            let mut e = event(i);
            if i % 3 == 0 {
                e.outcome = warden_domain::audit::Outcome::Denied;
            }
            tx.record(&key, &e).await.unwrap();
        }
        tx.commit().await.unwrap();
    }

    async fn get(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
        app.client
            .get(app.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn an_admin_pages_through_filtered_events_newest_first() {
        let app = TestApp::spawn().await.unwrap();
        let admin = admin_token(&app).await;
        fill(&app, 25).await;
        let mut seen = Vec::new();
        let mut path = "/api/v1/audit/events?action=workspace.&outcome=denied&limit=4".to_owned();
        loop {
            let page: Value = get(&app, &admin, &path).await.json().await.unwrap();
            for e in page["events"].as_array().unwrap() {
                assert_eq!(e["outcome"], "denied");
                assert_eq!(e["action"], "workspace.updated");
                seen.push(e["seq"].as_i64().unwrap());
            }
            match page["next_cursor"].as_str() {
                Some(c) => {
                    path = format!(
                        "/api/v1/audit/events?action=workspace.&outcome=denied&limit=4&cursor={c}"
                    );
                }
                None => break,
            }
        }
        assert_eq!(seen.len(), 9, "every third of 25 events was denied");
        assert!(
            seen.windows(2).all(|w| w[0] > w[1]),
            "newest first: {seen:?}"
        );

        // A time range (events are at 1_800_000_000 + n seconds).
        let page: Value = get(
            &app,
            &admin,
            "/api/v1/audit/events?action=workspace.&since=2027-01-15T08:00:05Z&until=2027-01-15T08:00:10Z",
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(page["events"].as_array().unwrap().len(), 5, "{page}");

        // Huge pages are capped.
        let page: Value = get(&app, &admin, "/api/v1/audit/events?limit=100000")
            .await
            .json()
            .await
            .unwrap();
        assert!(page["events"].as_array().unwrap().len() <= 500);
    }

    #[tokio::test]
    async fn malformed_filters_are_400_problems() {
        let app = TestApp::spawn().await.unwrap();
        let admin = admin_token(&app).await;
        for q in [
            "since=yesterday",
            "until=2026-13-01T00:00:00Z",
            "outcome=maybe",
            "actor_kind=robot",
            "cursor=abc",
            "limit=-1",
            "colour=blue",
        ] {
            let res = get(&app, &admin, &format!("/api/v1/audit/events?{q}")).await;
            assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{q}");
            assert_eq!(
                res.headers()["content-type"],
                "application/problem+json",
                "{q}"
            );
            let body = res.text().await.unwrap();
            assert!(
                !body.contains("yesterday") && !body.contains("robot"),
                "{body}"
            );
            let res = get(&app, &admin, &format!("/api/v1/audit/export.csv?{q}")).await;
            assert_eq!(res.status(), StatusCode::BAD_REQUEST, "export {q}");
        }
    }

    #[tokio::test]
    async fn the_csv_export_streams_filtered_events_and_survives_a_client_that_hangs_up() {
        let app = TestApp::spawn().await.unwrap();
        let admin = admin_token(&app).await;
        fill(&app, 3_000).await;
        let res = get(
            &app,
            &admin,
            "/api/v1/audit/export.csv?outcome=denied&action=workspace.",
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
        let text = res.text().await.unwrap();
        let mut rows = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(rows.records().count(), 1_000);

        // A client that reads a little and hangs up: the server stops and keeps serving.
        let mut res = get(&app, &admin, "/api/v1/audit/export.csv").await;
        let first = res.chunk().await.unwrap().unwrap();
        assert!(!first.is_empty());
        drop(res);
        for _ in 0..3 {
            let res = get(&app, &admin, "/api/v1/audit/status").await;
            assert_eq!(res.status(), StatusCode::OK);
        }
        let full = get(&app, &admin, "/api/v1/audit/export.csv")
            .await
            .text()
            .await
            .unwrap();
        assert!(csv::Reader::from_reader(full.as_bytes()).records().count() >= 3_000);
    }
}
