//! The backup drill an operator runs: populate, back up while serving, destroy, restore,
//! and find everything working — the audit chain verifies, sealed secrets decrypt, people
//! sign in — and the refusals that keep a restore from making things worse.

use std::path::Path;
use std::process::Output;

use crate::cli::{assert_refused, warden};
use crate::local::Local;

fn cli(dir: &Path, args: &[&str]) -> Output {
    warden(dir).args(args).output().unwrap()
}

fn ok(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_drill_restores_a_working_installation() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("warden-data");

    // Populate: an administrator, a workspace whose variable is a sealed secret.
    let local = Local::start(dir.path(), "ops@example.com").await;
    let ws = local.workspace(dir.path(), "Drill").await;
    local
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/workspaces/{ws}/variables/DRILL_VALUE"),
            serde_json::json!({"value": "kept through the drill"}),
        )
        .await;
    let check = [
        "sh",
        "-c",
        "test \"$DRILL_VALUE\" = 'kept through the drill' && echo value-intact",
    ];
    let (_, before) = local.run(&ws, &check).await;
    assert!(before.contains("value-intact"), "{before}");

    // Back up while the server serves; the copy is private and never overwritten.
    let backup = dir.path().join("warden.backup");
    let printed = ok(&cli(dir.path(), &["backup", "--output", "warden.backup"]));
    assert!(printed.contains("audit chain intact"), "{printed}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&backup).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    assert_refused(
        &cli(dir.path(), &["backup", "--output", "warden.backup"]),
        "never overwrites",
    );
    local.stop();

    // Destroy the database (the key file stays: it is backed up apart).
    for name in ["warden.db", "warden.db-wal", "warden.db-shm"] {
        let _ = std::fs::remove_file(data.join(name));
    }

    // The wrong master key: refused, naming the key, and nothing is put in place.
    let key = std::fs::read_to_string(data.join("encryption.key")).unwrap();
    let other = if key.starts_with('0') { "1" } else { "0" }.repeat(64);
    std::fs::write(data.join("encryption.key"), &other).unwrap();
    let line = assert_refused(
        &cli(dir.path(), &["restore", "--input", "warden.backup"]),
        "master key does not open this backup",
    );
    assert!(
        !line.contains(&other) && !line.contains(key.trim()),
        "{line}"
    );
    assert!(!data.join("warden.db").exists());
    std::fs::write(data.join("encryption.key"), &key).unwrap();

    // A file that is not a backup: refused.
    std::fs::write(dir.path().join("junk.backup"), "not a database").unwrap();
    assert_refused(
        &cli(dir.path(), &["restore", "--input", "junk.backup"]),
        "not a Warden database",
    );
    assert!(!data.join("warden.db").exists());

    // Restore, then the chain verifies from the command line.
    let printed = ok(&cli(dir.path(), &["restore", "--input", "warden.backup"]));
    assert!(printed.contains("restored"), "{printed}");
    let printed = ok(&cli(dir.path(), &["audit", "verify"]));
    assert!(printed.contains("audit chain intact"), "{printed}");
    // Restoring over a database needs --replace, and keeps the one it replaces.
    assert_refused(
        &cli(dir.path(), &["restore", "--input", "warden.backup"]),
        "--replace",
    );
    let printed = ok(&cli(
        dir.path(),
        &["restore", "--input", "warden.backup", "--replace"],
    ));
    assert!(printed.contains("kept at"), "{printed}");

    // Serving again: the administrator signs in with the same password (a new token, signed
    // by the restored signing key), the workspace is there, its sealed variable decrypts.
    let local = Local::start(dir.path(), "ops@example.com").await;
    assert!(
        !local.banner.contains("/setup?token="),
        "a restored installation asked for setup again: {}",
        local.banner
    );
    let (done, after) = local.run(&ws, &check).await;
    assert_eq!(done["status"], "done", "{done}");
    assert!(after.contains("value-intact"), "{after}");
    let events = local
        .get("/api/v1/audit/events?action=workspace.created")
        .await;
    assert!(
        events.to_string().contains(&ws),
        "the restored audit trail lost the workspace's creation: {events}"
    );
    local.stop();

    // And a server started with the wrong key refuses the restored database.
    std::fs::write(data.join("encryption.key"), &other).unwrap();
    let out = warden(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_refused(&out, "does not match");
}
