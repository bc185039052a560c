//! Master-key rotation while serving: `warden keys rotate-master` re-encrypts every value,
//! survives `kill -9` and resumes, the running server seals with the new data key at once, and
//! `warden keys finish-rotation` leaves the old master key opening nothing — with the
//! refusals that keep a half-done rotation from losing a value.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::json;
use warden_core::encryption::sweep;
use warden_store::sealed::{SealedColumn, SealedKey};
use warden_store::tenancy::SecretKind;
use warden_testkit::{AppOptions, TestApp};

use crate::identity::{admin_token, audit_rows};

const VALUES: usize = 400;

fn key_file(dir: &Path, name: &str, hex: &str) -> std::path::PathBuf {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    writeln!(f, "{hex}").unwrap();
    path
}

fn keys_cli(app: &TestApp, master_hex: &str, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden"));
    cmd.env_clear()
        .envs(app.db.env())
        .env("WARDEN_ENCRYPTION_KEY", master_hex)
        .env("WARDEN_DATA_DIR", app.db.data_dir())
        .env("WARDEN_LOG_LEVEL", "warn")
        .arg("keys")
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    cmd
}

async fn run(cmd: &mut tokio::process::Command) -> (bool, String) {
    let out = cmd.output().await.unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The workspace's variables as stored: name → what they open to with their own place's
/// associated data.
async fn variables(app: &TestApp, ws: uuid::Uuid) -> Vec<(String, String, u32)> {
    let ctx = &app.server.state().ctx;
    let mut tx = ctx.store.begin_sealed_read(Some(ws)).await.unwrap();
    let values = tx
        .sealed_not_under(SealedColumn::WorkspaceSecrets, Some(ws), 0, None, 100_000)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    values
        .into_iter()
        .map(|v| {
            let SealedKey::Secret { kind, name } = v.key else {
                panic!("{:?}", v.key)
            };
            let context = warden_core::secrets::context(
                warden_domain::tenancy::WorkspaceId::from_uuid(ws),
                SecretKind::parse(&kind).unwrap(),
                &name,
            );
            let plain = ctx.keyring.open(&context, &v.sealed).unwrap();
            let version = warden_crypto::Keyring::version_of(&v.sealed).unwrap();
            (name, String::from_utf8(plain.to_vec()).unwrap(), version)
        })
        .collect()
}

async fn readyz_keyring(app: &TestApp) -> serde_json::Value {
    let body: serde_json::Value = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["keyring"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_key_rotation_reencrypts_everything_while_serving_and_resumes_after_kill_9() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let ws_text = crate::llm::workspace(&app, &admin, "Rotation").await;
    let ws: uuid::Uuid = ws_text.parse().unwrap();
    // Values enough that a sweep one value per transaction takes a while.
    let puts = (0..VALUES).map(|i| {
        let (app, admin, ws_text) = (&app, &admin, &ws_text);
        async move {
            let (status, body) = app
                .call(
                    admin,
                    Method::PUT,
                    &format!("/api/v1/workspaces/{ws_text}/variables/V{i}"),
                    Some(json!({"value": format!("value number {i}")})),
                )
                .await;
            assert!(status.is_success(), "{status} {body}");
        }
    });
    let mut puts = futures_util::stream::iter(puts).buffer_unordered(8);
    while puts.next().await.is_some() {}
    let ctx = app.server.state().ctx.clone();
    assert_eq!(ctx.keyring.current_version(), 1);
    assert!(readyz_keyring(&app).await["rotation"].is_null());

    let dir = tempfile::tempdir().unwrap();
    let old_hex = app.master_key_hex.clone();
    let new_hex = hex::encode(rand_key());
    let new_file = key_file(dir.path(), "new.key", &new_hex);
    let other_file = key_file(dir.path(), "other.key", &hex::encode(rand_key()));
    let new_arg = new_file.to_str().unwrap();

    // The rotation starts, then is killed (SIGKILL) part-way through the re-encryption.
    let mut child = keys_cli(
        &app,
        &old_hex,
        &[
            "rotate-master",
            "--new-key-file",
            new_arg,
            "--batch-size",
            "1",
        ],
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let mut killed_at = None;
    for _ in 0..20_000 {
        let status = warden_core::encryption::status(&ctx.store, &ctx.keyring)
            .await
            .unwrap();
        if let Some(r) = status.rotation
            && r.reencrypted >= 20
        {
            child.start_kill().unwrap();
            killed_at = Some(r.reencrypted);
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let killed_at = killed_at.expect("the re-encryption never made progress");
    let exit = child.wait().await.unwrap();
    assert!(!exit.success(), "the rotation ended before it was killed");
    let rotation = warden_core::encryption::status(&ctx.store, &ctx.keyring)
        .await
        .unwrap()
        .rotation
        .unwrap();
    assert_eq!(rotation.target_version, 2);
    assert!(
        rotation.reencrypted >= killed_at && rotation.remaining > 0,
        "{rotation:?}"
    );

    // The running server learned the new data key without the master key, within a second or
    // two, and seals new values with it; /readyz shows the rotation's progress.
    for _ in 0..50 {
        if ctx.keyring.current_version() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ctx.keyring.current_version(), 2);
    let shown = readyz_keyring(&app).await;
    assert_eq!(shown["version"], 2, "{shown}");
    assert_eq!(shown["rotation"]["target_version"], 2, "{shown}");
    assert!(
        shown["rotation"]["remaining"].as_i64().unwrap() > 0,
        "{shown}"
    );
    let (status, _) = app
        .call(
            &admin,
            Method::PUT,
            &format!("/api/v1/workspaces/{ws_text}/variables/WRITTEN_DURING"),
            Some(json!({"value": "written mid-rotation"})),
        )
        .await;
    assert!(status.is_success());
    let during = variables(&app, ws).await;
    let written = during.iter().find(|v| v.0 == "WRITTEN_DURING").unwrap();
    assert_eq!((written.1.as_str(), written.2), ("written mid-rotation", 2));
    // Part moved, part not: every value still opens, each exactly once sealed.
    assert!(during.iter().any(|v| v.2 == 1) && during.iter().any(|v| v.2 == 2));
    assert!(
        during
            .iter()
            .all(|v| v.1.starts_with("value number ") || v.0 == "WRITTEN_DURING")
    );

    // Finishing now is refused: with the old key configured, and with values left.
    let (ok, said) = run(&mut keys_cli(&app, &old_hex, &["finish-rotation"])).await;
    assert!(!ok && said.contains("outgoing"), "{said}");
    let (ok, said) = run(&mut keys_cli(&app, &new_hex, &["finish-rotation"])).await;
    assert!(
        !ok && said.contains("still sealed with an older data key"),
        "{said}"
    );
    // Another new key while this rotation is under way: refused.
    let (ok, said) = run(&mut keys_cli(
        &app,
        &old_hex,
        &[
            "rotate-master",
            "--new-key-file",
            other_file.to_str().unwrap(),
        ],
    ))
    .await;
    assert!(!ok && said.contains("another master key"), "{said}");

    // Run again with the same file (and the new key configured, as after a restart): it
    // resumes and completes.
    let (ok, said) = run(&mut keys_cli(
        &app,
        &new_hex,
        &["rotate-master", "--new-key-file", new_arg],
    ))
    .await;
    assert!(ok, "{said}");
    assert!(
        said.contains("resuming") && said.contains("data key version 2"),
        "{said}"
    );
    assert!(
        !said.contains(&new_hex) && !said.contains(&old_hex),
        "{said}"
    );
    let after = variables(&app, ws).await;
    assert_eq!(after.len(), VALUES + 1);
    for (name, value, version) in &after {
        assert_eq!(*version, 2, "{name}");
        if let Some(i) = name.strip_prefix('V') {
            assert_eq!(value, &format!("value number {i}"), "{name}");
        }
    }
    // Every sealed value in the installation opens (signing keys, server secrets too).
    let opened = sweep::check(&ctx.store, &ctx.keyring).await.unwrap();
    assert!(opened > VALUES as i64, "{opened}");
    assert_eq!(sweep::count(&ctx.store, 2).await.unwrap(), 0);

    // Finish: the older data key goes, on the server too, which keeps serving.
    let (ok, said) = run(&mut keys_cli(&app, &new_hex, &["finish-rotation"])).await;
    assert!(ok && said.contains("rotation finished"), "{said}");
    for _ in 0..50 {
        if ctx.keyring.versions() == [2] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ctx.keyring.versions(), [2]);
    assert!(readyz_keyring(&app).await["rotation"].is_null());
    let (status, _) = app
        .call(
            &admin,
            Method::PUT,
            &format!("/api/v1/workspaces/{ws_text}/variables/AFTER"),
            Some(json!({"value": "after"})),
        )
        .await;
    assert!(status.is_success());
    assert_eq!(
        sweep::check(&ctx.store, &ctx.keyring).await.unwrap(),
        opened + 1
    );
    assert_eq!(audit_rows(&app, "keyring.rotation_started").await.len(), 1);
    assert_eq!(audit_rows(&app, "keyring.rotation_finished").await.len(), 1);

    // The old master key opens nothing now: a node configured with it refuses to start,
    // naming the problem; one with the new key starts and reads the values.
    let refused = TestApp::spawn_with(AppOptions {
        env: vec![
            ("WARDEN_DATABASE_URL".to_owned(), app.db.url.clone()),
            ("WARDEN_ENCRYPTION_KEY".to_owned(), old_hex.clone()),
        ],
        ..AppOptions::default()
    })
    .await;
    let Err(error) = refused else {
        panic!("a node started with the old master key")
    };
    let message = format!("{error:#}");
    assert!(message.contains("does not match"), "{message}");
    assert!(!message.contains(&old_hex) && !message.contains(&new_hex));
    let other = TestApp::spawn_with(AppOptions {
        env: vec![
            ("WARDEN_DATABASE_URL".to_owned(), app.db.url.clone()),
            ("WARDEN_ENCRYPTION_KEY".to_owned(), new_hex.clone()),
        ],
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let octx = &other.server.state().ctx;
    assert_eq!(
        sweep::check(&octx.store, &octx.keyring).await.unwrap(),
        opened + 1
    );
}

fn rand_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    aws_lc_rs::rand::fill(&mut key).unwrap();
    key
}

/// Every `sealed*` column in the schema is in the re-encryption's catalogue: a new one left
/// out would keep values under a data key a finished rotation deletes.
#[tokio::test]
async fn every_sealed_column_is_reencrypted_by_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let store = warden_store::Store::connect(&warden_store::ConnectOptions {
        url: format!("sqlite://{}", dir.path().join("w.db").display()),
        max_connections: 1,
        connect_timeout: Duration::from_secs(5),
        busy_timeout: Duration::from_secs(5),
    })
    .await
    .unwrap();
    store
        .migrate(&warden_domain::clock::SystemClock)
        .await
        .unwrap();
    let mut tx = store.begin_read().await.unwrap();
    let in_schema = tx.schema_sealed_columns().await.unwrap();
    tx.commit().await.unwrap();
    let mut catalogue: Vec<String> = SealedColumn::ALL.iter().map(|c| c.name()).collect();
    catalogue.sort();
    assert_eq!(in_schema, catalogue);
}

/// The swap replaces several values in one statement, yet each row only where it still holds
/// what was read: a value changed after the read keeps its new content, the others move.
#[tokio::test]
async fn a_swap_of_many_values_leaves_every_row_changed_meanwhile_alone() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let ws_text = crate::llm::workspace(&app, &admin, "Swap").await;
    let ws: uuid::Uuid = ws_text.parse().unwrap();
    // More than one statement's worth (SWAP_CHUNK is 100).
    for i in 0..230 {
        let (status, body) = app
            .call(
                &admin,
                Method::PUT,
                &format!("/api/v1/workspaces/{ws_text}/variables/V{i:03}"),
                Some(json!({"value": format!("value {i}")})),
            )
            .await;
        assert!(status.is_success(), "{status} {body}");
    }
    // Other kinds of the same table too (one swap statement per kind).
    for (path, value) in [
        ("pat", "a git token"),
        ("provider-keys/claude-code", "a provider key"),
    ] {
        let (status, body) = app
            .call(
                &admin,
                Method::PUT,
                &format!("/api/v1/workspaces/{ws_text}/{path}"),
                Some(json!({ "value": value })),
            )
            .await;
        assert!(status.is_success(), "{path}: {status} {body}");
    }
    let store = &app.server.state().ctx.store;
    let mut tx = store.begin_sealed_read(Some(ws)).await.unwrap();
    let read = tx
        .sealed_not_under(SealedColumn::WorkspaceSecrets, Some(ws), 0, None, 1_000)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(read.len(), 232);
    let name = |key: &SealedKey| match key {
        SealedKey::Secret { kind, name } => format!("{kind} {name}"),
        other => panic!("{other:?}"),
    };
    // Every seventh variable is written again after the read.
    let changed: Vec<String> = (0..230)
        .step_by(7)
        .map(|i| format!("variable V{i:03}"))
        .collect();
    for i in (0..230).step_by(7) {
        let (status, _) = app
            .call(
                &admin,
                Method::PUT,
                &format!("/api/v1/workspaces/{ws_text}/variables/V{i:03}"),
                Some(json!({"value": format!("changed {i}")})),
            )
            .await;
        assert!(status.is_success());
    }
    let swaps: Vec<_> = read
        .iter()
        .map(|v| {
            let fresh = format!("swapped {}", name(&v.key)).into_bytes();
            (v.key.clone(), v.sealed.clone(), fresh)
        })
        .collect();
    let mut tx = store.begin_sealed(Some(ws)).await.unwrap();
    let replaced = tx
        .replace_sealed(SealedColumn::WorkspaceSecrets, Some(ws), &swaps)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(replaced, (232 - changed.len()) as u64);
    let mut tx = store.begin_sealed_read(Some(ws)).await.unwrap();
    let after = tx
        .sealed_not_under(SealedColumn::WorkspaceSecrets, Some(ws), 0, None, 1_000)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(after.len(), 232);
    for v in &after {
        let n = name(&v.key);
        if changed.contains(&n) {
            assert!(!v.sealed.starts_with(b"swapped "), "{n}");
        } else {
            assert_eq!(v.sealed, format!("swapped {n}").into_bytes());
        }
    }
    // The rows changed meanwhile still open to what was written after the read.
    let values = variables_where_they_open(&app, ws, &after).await;
    assert_eq!(values.len(), changed.len());
    for i in (0..230).step_by(7) {
        assert_eq!(values[&format!("V{i:03}")], format!("changed {i}"));
    }
}

/// The values of `rows` that open (the swapped ones in the test above hold plain bytes).
async fn variables_where_they_open(
    app: &TestApp,
    ws: uuid::Uuid,
    rows: &[warden_store::sealed::SealedValue],
) -> std::collections::HashMap<String, String> {
    let ctx = &app.server.state().ctx;
    rows.iter()
        .filter_map(|v| {
            let SealedKey::Secret { kind, name } = &v.key else {
                return None;
            };
            let context = warden_core::secrets::context(
                warden_domain::tenancy::WorkspaceId::from_uuid(ws),
                SecretKind::parse(kind).unwrap(),
                name,
            );
            let plain = ctx.keyring.open(&context, &v.sealed).ok()?;
            Some((name.clone(), String::from_utf8(plain.to_vec()).unwrap()))
        })
        .collect()
}
