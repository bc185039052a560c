//! Storage on both backends: migrations, locking, transactions, the stored keyring.

use std::sync::Arc;

use warden_crypto::{Context, KeyringError, MasterKey};
use warden_domain::clock::SystemClock;
use warden_store::{StoreError, keyring, latest_schema_version};
use warden_testkit::TestDb;

#[tokio::test]
async fn migrations_bring_a_fresh_database_to_the_latest_version_once() {
    let db = TestDb::new().await.unwrap();
    let store = db.connect_owner().await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 0);
    let first = store.migrate(&SystemClock).await.unwrap();
    assert_eq!((first.from, first.to), (0, latest_schema_version()));
    let again = store.migrate(&SystemClock).await.unwrap();
    assert_eq!(again.from, latest_schema_version());
    assert_eq!(
        store.schema_version().await.unwrap(),
        latest_schema_version()
    );
}

#[tokio::test]
async fn nodes_migrating_the_same_database_at_once_apply_each_migration_exactly_once() {
    let db = TestDb::new().await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = db.connect_owner().await.unwrap();
        tasks.push(tokio::spawn(
            async move { store.migrate(&SystemClock).await },
        ));
    }
    let mut applied_by = 0;
    for t in tasks {
        let r = t.await.unwrap().unwrap();
        assert_eq!(r.to, latest_schema_version());
        if r.from == 0 {
            applied_by += 1;
        }
    }
    assert_eq!(applied_by, 1, "exactly one node applies the migrations");
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM warden_schema_migrations").await,
        latest_schema_version()
    );
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_warden_is_refused() {
    let db = TestDb::new().await.unwrap();
    let store = db.store().await.unwrap();
    raw_exec(
        &db,
        "INSERT INTO warden_schema_migrations (version, name, checksum, applied_at) \
         VALUES (999, '0999_future', 'x', CURRENT_TIMESTAMP)",
    )
    .await;
    let err = store.migrate(&SystemClock).await.unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 999, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_database_whose_applied_migration_was_changed_is_refused() {
    let db = TestDb::new().await.unwrap();
    let store = db.store().await.unwrap();
    raw_exec(
        &db,
        "UPDATE warden_schema_migrations SET checksum = 'tampered' WHERE version = 1",
    )
    .await;
    let err = store.migrate(&SystemClock).await.unwrap_err();
    assert!(
        matches!(err, StoreError::MigrationChanged { version: 1 }),
        "{err}"
    );
}

#[tokio::test]
async fn the_stored_keyring_opens_secrets_after_a_restart_and_refuses_another_master_key() {
    let db = TestDb::new().await.unwrap();
    let store = db.store().await.unwrap();
    let master = MasterKey::from_hex(&warden_testkit::random_key_hex()).unwrap();
    let ring = keyring::load_or_create(&store, &master, &SystemClock)
        .await
        .unwrap();
    let ctx = Context::new("test.secret").with("row-1");
    let sealed = ring.seal(&ctx, b"provider-key-123").unwrap();
    store.close().await;

    let store = db.store().await.unwrap();
    let again = keyring::load_or_create(&store, &master, &SystemClock)
        .await
        .unwrap();
    assert_eq!(
        again.open(&ctx, &sealed).unwrap().as_slice(),
        b"provider-key-123"
    );

    let other = MasterKey::generate().unwrap();
    let err = keyring::load_or_create(&store, &other, &SystemClock)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Keyring(KeyringError::WrongMasterKey { version: 1 })
        ),
        "{err}"
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM keyring_keys").await, 1);
}

#[tokio::test]
async fn nodes_creating_the_keyring_at_once_agree_on_one_data_key() {
    let db = TestDb::new().await.unwrap();
    db.store().await.unwrap();
    let master = Arc::new(MasterKey::generate().unwrap());
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let store = db.connect().await.unwrap();
        let master = master.clone();
        tasks.push(tokio::spawn(async move {
            keyring::load_or_create(&store, &master, &SystemClock).await
        }));
    }
    let ctx = Context::new("test").with("x");
    let mut rings = Vec::new();
    for t in tasks {
        rings.push(t.await.unwrap().unwrap());
    }
    let sealed = rings[0].seal(&ctx, b"v").unwrap();
    for ring in &rings {
        assert_eq!(ring.open(&ctx, &sealed).unwrap().as_slice(), b"v");
    }
    assert_eq!(count(&db, "SELECT COUNT(*) FROM keyring_keys").await, 1);
}

#[tokio::test]
async fn stored_data_keys_are_wrapped_not_plain() {
    let db = TestDb::new().await.unwrap();
    let store = db.store().await.unwrap();
    let master = MasterKey::generate().unwrap();
    keyring::load_or_create(&store, &master, &SystemClock)
        .await
        .unwrap();
    let wrapped: Vec<u8> = match db.backend {
        warden_store::Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            sqlx::query_scalar("SELECT wrapped_key FROM keyring_keys")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
        warden_store::Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            sqlx::query_scalar("SELECT wrapped_key FROM keyring_keys")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    // format byte, version, nonce, 32-byte key, tag
    assert_eq!(wrapped.len(), 1 + 4 + 12 + 32 + 16);
    assert!(master.unwrap_key(1, &wrapped).is_ok());
}

pub(crate) async fn raw_exec(db: &TestDb, sql: &'static str) {
    match db.backend {
        warden_store::Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.owner_url).await.unwrap();
            sqlx::raw_sql(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
        warden_store::Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.owner_url).await.unwrap();
            sqlx::raw_sql(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
}

pub(crate) async fn count(db: &TestDb, sql: &'static str) -> i64 {
    match db.backend {
        warden_store::Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.owner_url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap()
        }
        warden_store::Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.owner_url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap()
        }
    }
}

/// SQLite: no commit copies the write-ahead log into the database — that made one commit in
/// a few hundred, and every writer queued behind it, wait for the copy and its sync — the
/// store's checkpointer does, while the store is open: what is written reaches the database
/// file, and the log starts again from its beginning instead of growing with every write.
#[tokio::test]
async fn sqlite_commits_leave_the_write_ahead_log_to_the_stores_checkpointer() {
    let db = TestDb::new().await.unwrap();
    if db.backend != warden_store::Backend::Sqlite {
        return;
    }
    let store = db.store().await.unwrap();
    let master = MasterKey::from_hex(&warden_testkit::random_key_hex()).unwrap();
    let ring = keyring::load_or_create(&store, &master, &SystemClock)
        .await
        .unwrap();
    let key = warden_store::audit::ChainKey::load_or_create(&store, &ring, &SystemClock)
        .await
        .unwrap();
    let file = db.dir.path().join("warden.db");
    let wal = db.dir.path().join("warden.db-wal");
    let before = std::fs::metadata(&file).unwrap().len();
    // 4,000 audit events of 4 KB, one a transaction: about 50 MiB through the log.
    let pad = "x".repeat(4_000);
    for n in 0..4_000 {
        let mut event = crate::audit::event(n);
        event.summary = serde_json::json!({ "pad": pad });
        let mut tx = store.begin().await.unwrap();
        tx.record(&key, &event).await.unwrap();
        tx.commit().await.unwrap();
    }
    let written = 4_000 * 4_000;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::metadata(&file).unwrap().len() < before + written {
        assert!(
            std::time::Instant::now() < deadline,
            "the database file holds {} bytes of the {written} written: the log was not copied",
            std::fs::metadata(&file).unwrap().len() - before
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The log was started again whenever it passed 4,096 pages (16 MiB), so its file never
    // grew to hold all that was written.
    let log = std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert!(
        log < 32 << 20,
        "the log grew to {log} bytes: it was not started again as it filled"
    );
    assert_eq!(store.chain_audit(&key).await.unwrap().unsealed, None);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit_events").await, 4_000);
}
