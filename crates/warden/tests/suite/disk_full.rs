//! SQLite on a full disk: `warden serve` keeps its data on a small tmpfs (in a mount namespace
//! of its own, so nothing outside the test sees it), the disk is filled up under it, and then
//! freed. Writes fail with a clear `507 storage-full` (never a 500), reads go on, nothing
//! corrupts, and writes succeed again once space returns — without a restart.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cli::KillOnDrop;

const EMAIL: &str = "ops@example.com";
const PASSWORD: &str = "violet tractor 93 lagoon";

/// `warden serve` with its data directory on a 16 MiB tmpfs mounted at `mount` in its own
/// mount namespace; its address, and the directory as this process reaches it.
fn serve_on_tmpfs(mount: &Path) -> (KillOnDrop, String, PathBuf) {
    let rootless = !rustix::process::geteuid().is_root();
    let mut command = std::process::Command::new("unshare");
    if rootless {
        command.arg("--map-root-user");
    }
    let script = format!(
        "mount -t tmpfs -o size=16m warden-full-disk '{0}' && exec '{1}' serve --listen 127.0.0.1:0",
        mount.display(),
        env!("CARGO_BIN_EXE_warden")
    );
    command
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .current_dir(mount.parent().unwrap())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WARDEN_LOG_LEVEL", "warn")
        .env("WARDEN_DATA_DIR", mount)
        .env("WARDEN_LOCAL_HOST", "false")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(crate::cli::server_log());
    let mut child = KillOnDrop(command.spawn().expect("unshare runs"));
    let (url, link) = crate::cli::ready(&crate::cli::banner(&mut child));
    let link = link.unwrap_or_else(|| panic!("no setup link"));
    // The process's view of the file system, tmpfs included.
    let seen = PathBuf::from(format!("/proc/{}/root{}", child.id(), mount.display()));
    (child, format!("{url}\n{link}"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_clearly_corrupts_nothing_and_service_resumes_when_space_returns()
 {
    // One backend is enough: the server under test is its own process on SQLite.
    if warden_testkit::backend() != warden_store::Backend::Sqlite {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("data");
    std::fs::create_dir(&mount).unwrap();
    let (server, banner, seen) = serve_on_tmpfs(&mount);
    let (url, link) = banner.split_once('\n').unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    crate::cli::set_up(&client, url, link, EMAIL, PASSWORD).await;
    let signed: Value = client
        .post(format!("{url}/api/v1/auth/sign-in"))
        .json(&json!({"email": EMAIL, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = signed["access_token"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {access}");
    let create = |name: String| {
        let (client, auth, url) = (client.clone(), auth.clone(), url.to_owned());
        async move {
            let res = client
                .post(format!("{url}/api/v1/workspaces"))
                .header("authorization", auth)
                .json(&json!({ "name": name }))
                .send()
                .await
                .unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let mut acknowledged = Vec::new();
    for i in 0..5 {
        let (status, body) = create(format!("before-{i}")).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        acknowledged.push(format!("before-{i}"));
    }

    // Fill the disk.
    let filler = seen.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    loop {
        match file.write_all(&chunk) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling the tmpfs: {e}"),
        }
    }
    let _ = file.flush();
    drop(file);
    // Writes go on until what SQLite had already allocated is used up, then are refused,
    // each with the clear answer.
    let mut refused = 0;
    for i in 0..2000 {
        let name = format!("full-{i}");
        let (status, body) = create(name.clone()).await;
        if status.is_success() {
            acknowledged.push(name);
            continue;
        }
        assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
        assert_eq!(body["code"], "storage-full", "{body}");
        let text = body.to_string().to_lowercase();
        assert!(
            !text.contains("sqlite") && !text.contains(&mount.display().to_string()),
            "{body}"
        );
        refused += 1;
        if refused == 5 {
            break;
        }
    }
    assert_eq!(refused, 5, "the full disk never refused a write");
    // Reads are served meanwhile.
    let res = client
        .get(format!("{url}/api/v1/workspaces?limit=5"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // Space returns: writes succeed again, with no restart.
    std::fs::remove_file(&filler).unwrap();
    let mut back = false;
    for i in 0..50 {
        let (status, _) = create(format!("after-{i}")).await;
        if status.is_success() {
            acknowledged.push(format!("after-{i}"));
            back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(back, "writes did not resume once space returned");

    // Every acknowledged write is there; the database is intact; the audit chain verifies.
    let names: Vec<String> =
        crate::crash::all(&client, url, &access, "/api/v1/workspaces", "items")
            .await
            .iter()
            .map(|w| w["name"].as_str().unwrap().to_owned())
            .collect();
    for name in &acknowledged {
        assert!(names.contains(name), "acknowledged {name} is gone");
    }
    // Checked inside the server's mount namespace, where the tmpfs is (SQLite resolves the
    // /proc/PID/root link to this namespace's root): SQLite's own integrity check, and
    // `warden audit verify` over the whole chain.
    let pid = server.id().to_string();
    let inside = |program: &str| {
        let mut c = std::process::Command::new("nsenter");
        c.args(["-t", &pid, "-m"]);
        if !rustix::process::geteuid().is_root() {
            c.args(["-U", "--preserve-credentials"]);
        }
        c.arg(program);
        c
    };
    let db = mount.join("warden.db").display().to_string();
    let check = inside("python3")
        .args([
            "-c",
            "import sqlite3, sys; print(sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', \
             uri=True).execute('PRAGMA integrity_check').fetchone()[0])",
            &db,
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&check.stdout).trim(),
        "ok",
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let verify = inside(env!("CARGO_BIN_EXE_warden"))
        .args(["audit", "verify"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WARDEN_DATA_DIR", &mount)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&verify.stdout));
}
