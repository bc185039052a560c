//! The `warden` binary as an operator runs it: start-up, shutdown, and refusals at boot.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const KEY: &str = "8f1c2e3d4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

pub(crate) fn warden(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WARDEN_LOG_LEVEL", "warn")
        .stdin(Stdio::null());
    cmd
}

/// Runs `warden ARGS --credentials CREDS` in `dir` with `stdin`, off the async runtime (the
/// server under test runs on it); gives whether it succeeded and what it printed.
pub(crate) fn run_cli(
    dir: &Path,
    creds: &Path,
    args: Vec<String>,
    stdin: &'static str,
) -> tokio::task::JoinHandle<(bool, String)> {
    let (dir, creds) = (dir.to_path_buf(), creds.to_path_buf());
    tokio::task::spawn_blocking(move || {
        let mut child = warden(&dir)
            .args(&args)
            .arg("--credentials")
            .arg(&creds)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), stdin.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    })
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

/// Exits non-zero with exactly one line on standard error, naming `must_name`.
pub(crate) fn assert_refused(out: &Output, must_name: &str) -> String {
    assert!(
        !out.status.success(),
        "expected failure, got {:?}",
        out.status
    );
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(
        lines[0].contains(must_name),
        "{must_name:?} not in: {stderr}"
    );
    lines[0].to_owned()
}

fn assert_nothing_left(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "warden.toml" && n != "blocker")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn help_lists_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(warden(dir.path()).arg("--help"));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "serve", "config", "migrate", "audit", "user", "login", "host", "session", "keys",
        "license", "ticket",
    ] {
        assert!(text.contains(cmd), "{text}");
    }
    let out = run(warden(dir.path()).args(["config", "--help"]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("check"));
}

/// The key generated beside the data serves loopback only: listening beyond the machine
/// without a configured key is refused before anything is bound or created, naming the fix.
#[test]
fn serve_beyond_loopback_refuses_the_key_generated_beside_the_data() {
    let dir = tempfile::tempdir().unwrap();
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let out = run(warden(dir.path()).args(["serve", "--listen", listen]));
        assert!(!out.status.success(), "{listen}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("WARDEN_ENCRYPTION_KEY") && err.contains("encryption_key_file"),
            "{err}"
        );
        assert!(
            !dir.path()
                .join("warden-data")
                .join("encryption.key")
                .exists(),
            "no key was generated"
        );
    }
}

#[test]
fn serve_with_no_configuration_runs_embedded_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = warden(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let url = first
        .trim()
        .strip_prefix("Warden is ready at ")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let body = ureq_get(&format!("{url}/readyz"));
    assert!(body.contains("\"backend\":\"sqlite\""), "{body}");

    let data = dir.path().join("warden-data");
    let key = data.join("encryption.key");
    assert_eq!(
        std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(std::fs::read_to_string(&key).unwrap().trim().len(), 64);
    assert!(data.join("warden.db").exists());

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = wait_with_timeout(&mut child, Duration::from_secs(15));
    assert!(status.success(), "{status:?}");
    // A clean close checkpoints SQLite's write-ahead log.
    assert!(!data.join("warden.db-wal").exists());

    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let key_text = std::fs::read_to_string(&key).unwrap();
    assert!(!stderr.contains(key_text.trim()), "the key reached the log");
}

pub(crate) fn wait_with_timeout(
    child: &mut std::process::Child,
    limit: Duration,
) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("warden did not stop within {limit:?}");
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

fn ureq_get(url: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        client.get(url).send().await.unwrap().text().await.unwrap()
    })
}

#[test]
fn malformed_toml_is_refused_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("warden.toml"),
        "listen = \"127.0.0.1:0\"\n[database\n",
    )
    .unwrap();
    let out = run(warden(dir.path()).args(["--config", "warden.toml", "serve"]));
    let line = assert_refused(&out, "warden.toml");
    assert!(line.contains("line 2"), "{line}");
    assert_nothing_left(dir.path());
}

#[test]
fn an_unknown_configuration_key_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("warden.toml"), "[http]\nbody_limit = 5\n").unwrap();
    let out = run(warden(dir.path()).args(["--config", "warden.toml", "serve"]));
    assert_refused(&out, "body_limit");
    assert_nothing_left(dir.path());
    let out = run(warden(dir.path()).env("WARDEN_LISTN", "x").arg("serve"));
    assert_refused(&out, "WARDEN_LISTN");
    assert_nothing_left(dir.path());
}

#[test]
fn a_bad_encryption_key_is_refused_naming_the_variable_and_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        "short",
        "zz1c2e3d4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
    ] {
        let out = run(warden(dir.path()).env("WARDEN_ENCRYPTION_KEY", bad).args([
            "serve",
            "--listen",
            "127.0.0.1:0",
        ]));
        let line = assert_refused(&out, "WARDEN_ENCRYPTION_KEY");
        assert!(line.contains("openssl rand -hex 32"), "{line}");
        assert!(!line.contains(bad));
        assert_nothing_left(dir.path());
    }
}

#[test]
fn an_unreachable_postgres_is_refused_without_revealing_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(warden(dir.path())
        .env(
            "WARDEN_DATABASE_URL",
            "postgres://warden:hunter2pw@127.0.0.1:1/warden",
        )
        .env("WARDEN_ENCRYPTION_KEY", KEY)
        .env("WARDEN_DATABASE_CONNECT_TIMEOUT_SECS", "2")
        .args(["serve", "--listen", "127.0.0.1:0"]));
    let line = assert_refused(&out, "cannot connect to PostgreSQL at 127.0.0.1:1");
    assert!(!line.contains("hunter2pw"), "{line}");
    assert_nothing_left(dir.path());
}

#[test]
fn postgres_without_an_encryption_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(warden(dir.path())
        .env(
            "WARDEN_DATABASE_URL",
            "postgres://warden@127.0.0.1:1/warden",
        )
        .arg("serve"));
    assert_refused(&out, "WARDEN_ENCRYPTION_KEY is not set");
}

#[test]
fn a_data_directory_that_cannot_be_created_is_refused() {
    // A path beneath a regular file cannot be created, even by root.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("blocker"), "").unwrap();
    let out = run(warden(dir.path())
        .env("WARDEN_DATA_DIR", "blocker/data")
        .args(["serve", "--listen", "127.0.0.1:0"]));
    assert_refused(&out, "data_dir blocker/data");
    assert_nothing_left(dir.path());
}

#[test]
fn a_port_already_in_use_is_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(warden(dir.path()).args(["serve", "--listen", &addr]));
    let line = assert_refused(&out, &addr);
    assert!(line.contains("already in use"), "{line}");
    assert_nothing_left(dir.path());
}

#[test]
fn a_different_encryption_key_for_an_existing_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(warden(dir.path())
        .env("WARDEN_ENCRYPTION_KEY", KEY)
        .arg("migrate"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // First start with KEY creates the keyring; it is then bound to KEY.
    let mut child = warden(dir.path())
        .env("WARDEN_ENCRYPTION_KEY", KEY)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("Warden is ready"), "{line}");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(wait_with_timeout(&mut child, Duration::from_secs(15)).success());

    let other = KEY.replace('8', "9");
    let out = run(warden(dir.path())
        .env("WARDEN_ENCRYPTION_KEY", &other)
        .args(["serve", "--listen", "127.0.0.1:0"]));
    let line = assert_refused(&out, "does not match");
    assert!(line.contains("WARDEN_ENCRYPTION_KEY"), "{line}");
    assert!(!line.contains(&other) && !line.contains(KEY));
    assert!(
        dir.path().join("warden-data/warden.db").exists(),
        "existing data kept"
    );
}

#[test]
fn config_check_prints_the_effective_configuration_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(warden(dir.path())
        .env(
            "WARDEN_DATABASE_URL",
            "postgres://warden:hunter2pw@db.internal:5432/warden",
        )
        .env("WARDEN_ENCRYPTION_KEY", KEY)
        .args(["config", "check"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("postgres://warden:[redacted]@db.internal:5432/warden"),
        "{text}"
    );
    assert!(text.contains("listen = \"127.0.0.1:8080\""), "{text}");
    assert!(!text.contains("hunter2pw") && !text.contains(KEY), "{text}");
    assert_nothing_left(dir.path());
}

#[test]
fn migrate_brings_the_embedded_database_up_to_date_and_is_repeatable() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(warden(dir.path()).arg("migrate"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let latest = warden_store::latest_schema_version();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("database schema at version {latest} (was 0)")
    );
    let out = run(warden(dir.path()).arg("migrate"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("database schema at version {latest} (was {latest})")
    );
}

/// Starts `warden serve` with `env`, makes one request with `X-Request-Id: id` to a missing
/// route, stops it, and returns what it logged.
fn logs_of_one_request(format: &str, id: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    // Only the test's own requests: no local host dialling in.
    let mut child = warden(dir.path())
        .env("WARDEN_LOG_LEVEL", "debug")
        .env("WARDEN_LOG_FORMAT", format)
        .env("WARDEN_LOCAL_HOST", "false")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain the log as it comes: at debug level it outgrows a pipe's buffer, and a server
    // blocked writing its log never stops.
    let mut err = child.stderr.take().unwrap();
    let drain = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut err, &mut text).unwrap();
        text
    });
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("Warden is ready at ")
        .unwrap()
        .to_owned();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let res = client
            .get(format!("{url}/api/v1/nothing?token=secret-in-query"))
            .header("x-request-id", id)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
        let res = client
            .get(format!("{url}/healthz"))
            .header("x-request-id", id)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    });
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(wait_with_timeout(&mut child, Duration::from_secs(15)).success());
    let stderr = drain.join().unwrap();
    assert!(
        !stderr.contains("secret-in-query"),
        "a query string reached the log"
    );
    stderr
}

#[test]
fn every_log_line_of_a_request_carries_its_id_in_text_format() {
    let logs = logs_of_one_request("text", "trace-text-1");
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("request handled"))
        .collect();
    assert_eq!(lines.len(), 2, "{logs}");
    for l in &lines {
        assert!(l.contains("request{id=trace-text-1 method=GET"), "{l}");
    }
    assert!(lines.iter().any(|l| l.contains("route=/healthz")), "{logs}");
}

#[test]
fn every_log_line_of_a_request_carries_its_id_in_json_format() {
    let logs = logs_of_one_request("json", "trace-json-1");
    let mut handled = 0;
    for line in logs.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        if v["message"] == "request handled" {
            handled += 1;
            assert_eq!(v["request_id"], "trace-json-1", "{line}");
            assert_eq!(v["method"], "GET");
        }
    }
    assert_eq!(handled, 2, "{logs}");
}

fn first_lines(dir: &Path) -> String {
    let mut child = warden(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    while !text.contains("stop with Ctrl-C") {
        assert!(stdout.read_line(&mut text).unwrap() > 0, "{text}");
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(wait_with_timeout(&mut child, Duration::from_secs(15)).success());
    text
}

#[test]
fn a_fresh_install_prints_a_setup_link_and_user_create_makes_the_admin_headlessly() {
    let dir = tempfile::tempdir().unwrap();
    let text = first_lines(dir.path());
    assert!(text.contains("/setup?token=wsu_"), "{text}");

    // Headless: the password comes on standard input, never as an argument.
    let mut child = warden(dir.path())
        .args(["user", "create", "--email", "Ops@Example.com", "--admin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"violet tractor 93 lagoon\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("created user ops@example.com")
            && printed.contains("with platform role admin"),
        "{printed}"
    );
    assert!(!printed.contains("violet"));

    // A weak password is refused with the policy's reason.
    let mut child = warden(dir.path())
        .args(["user", "create", "--email", "dev@example.com"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"password1\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 12 characters"));

    // Now an administrator exists: no setup link any more.
    let text = first_lines(dir.path());
    assert!(!text.contains("setup?token"), "{text}");
    assert!(text.contains("sign in with your account"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_keeps_a_working_refresh_token_in_a_private_file() {
    let app = warden_testkit::TestApp::spawn().await.unwrap();
    crate::identity::setup_admin(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("conf/warden/credentials.json");
    let run = |password: &'static str| {
        let (dir, base, creds) = (dir.path().to_path_buf(), app.base.clone(), creds.clone());
        tokio::task::spawn_blocking(move || {
            let mut child = warden(&dir)
                .args([
                    "login",
                    "--url",
                    &base,
                    "--email",
                    crate::identity::ADMIN_EMAIL,
                ])
                .arg("--credentials")
                .arg(&creds)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            std::io::Write::write_all(child.stdin.as_mut().unwrap(), password.as_bytes()).unwrap();
            child.wait_with_output().unwrap()
        })
    };
    let out = run("wrong password here\n").await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong email or password"));
    assert!(!creds.exists());

    let out = run("violet tractor 93 lagoon\n").await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&creds).unwrap()).unwrap();
    let token = saved["refresh_token"].as_str().unwrap();
    assert!(token.starts_with("wrt_"));
    let res = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .json(&serde_json::json!({ "refresh_token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::OK);
}

/// Makes `dir` unwritable even for root: `chattr +i` (immutable) when running as root,
/// permissions otherwise. Returns a guard that undoes it.
struct Unwritable(std::path::PathBuf);

impl Unwritable {
    fn new(dir: &Path) -> Self {
        if running_as_root() {
            let ok = Command::new("chattr")
                .arg("+i")
                .arg(dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                ok,
                "chattr +i failed: this test needs a filesystem with immutable attributes"
            );
        } else {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o500)).unwrap();
        }
        Self(dir.to_path_buf())
    }
}

impl Drop for Unwritable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o700));
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn an_existing_data_directory_that_is_not_writable_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let guard = Unwritable::new(&data);
    let out = run(warden(dir.path()).env("WARDEN_DATA_DIR", "data").args([
        "serve",
        "--listen",
        "127.0.0.1:0",
    ]));
    let line = assert_refused(&out, "data_dir data");
    assert!(line.contains("not writable"), "{line}");
    drop(guard);
    assert_eq!(
        std::fs::read_dir(&data).unwrap().count(),
        0,
        "nothing left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warden_host_manages_hosts_through_the_api_with_the_saved_login() {
    let app = warden_testkit::TestApp::spawn().await.unwrap();
    let admin = crate::identity::admin_token(&app).await;
    let created: serde_json::Value = app
        .client
        .post(app.url("/api/v1/hosts"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"name": "build-01", "kind": "session"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["host"]["id"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials.json");
    let run = |args: Vec<String>, stdin: &'static str| run_cli(dir.path(), &creds, args, stdin);
    let host = |cmd: &[&str]| {
        let mut v = vec!["host".to_owned()];
        v.extend(cmd.iter().map(|s| (*s).to_owned()));
        v
    };
    // Without a login there is nothing to use.
    let (ok, out) = run(host(&["list"]), "").await.unwrap();
    assert!(!ok && out.contains("warden login"), "{out}");
    let login = vec![
        "login".to_owned(),
        "--url".to_owned(),
        app.base.clone(),
        "--email".to_owned(),
        crate::identity::ADMIN_EMAIL.to_owned(),
    ];
    let (ok, out) = run(login, "violet tractor 93 lagoon\n").await.unwrap();
    assert!(ok, "{out}");
    let before = std::fs::read_to_string(&creds).unwrap();

    let (ok, out) = run(host(&["list"]), "").await.unwrap();
    assert!(
        ok && out.contains(&id) && out.contains("pending") && out.contains("offline"),
        "{out}"
    );
    assert_ne!(
        std::fs::read_to_string(&creds).unwrap(),
        before,
        "the refresh token rotated"
    );
    assert_eq!(
        std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (ok, out) = run(host(&["approve", &id]), "").await.unwrap();
    assert!(ok && out.contains("approved"), "{out}");
    let (ok, out) = run(host(&["rotate-key", &id, "--grace-minutes", "0"]), "")
        .await
        .unwrap();
    assert!(ok && out.contains("whk_"), "{out}");
    let (ok, out) = run(host(&["delete", &id]), "").await.unwrap();
    assert!(ok && out.contains("deleted"), "{out}");
    let (ok, out) = run(host(&["approve", &id]), "").await.unwrap();
    assert!(!ok && out.contains("404"), "{out}");
    let (ok, out) = run(host(&["list"]), "").await.unwrap();
    assert!(ok && !out.contains(&id), "{out}");
}

/// A server the test started, killed if the test fails before stopping it.
pub(crate) struct KillOnDrop(pub(crate) std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// `warden serve` with no configuration in `dir`, and what it printed up to "stop with Ctrl-C".
pub(crate) fn serve_in(dir: &Path) -> (KillOnDrop, String) {
    let mut child = KillOnDrop(
        warden(dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let banner = banner(&mut child);
    (child, banner)
}

/// The address a started `warden serve` printed in its banner, and its setup link if it
/// printed one (first start only). Panics, showing the banner, unless it started.
pub(crate) fn ready(banner: &str) -> (String, Option<String>) {
    assert!(
        banner.contains("stop with Ctrl-C"),
        "warden serve did not start: {banner}"
    );
    let url = banner
        .lines()
        .find_map(|l| l.strip_prefix("Warden is ready at "))
        .unwrap_or_else(|| panic!("no ready line: {banner}"))
        .trim()
        .to_owned();
    let setup = banner
        .lines()
        .find(|l| l.contains("/setup?token="))
        .map(|l| l.trim().to_owned());
    (url, setup)
}

/// Where a `warden serve` under test writes its log: this test's standard error when
/// `WARDEN_TEST_SERVER_LOG` is set, nowhere otherwise.
pub(crate) fn server_log() -> Stdio {
    if std::env::var_os("WARDEN_TEST_SERVER_LOG").is_some() {
        Stdio::inherit()
    } else {
        Stdio::null()
    }
}

/// Follows the setup link a fresh `warden serve` at `url` printed: `email` becomes its first
/// platform admin, with `password`.
pub(crate) async fn set_up(
    client: &reqwest::Client,
    url: &str,
    link: &str,
    email: &str,
    password: &str,
) {
    let token = link
        .split("token=")
        .nth(1)
        .expect("a token in the setup link");
    let res = client
        .post(format!("{url}/setup"))
        .form(&[("token", token), ("email", email), ("password", password)])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "setup: {}", res.status());
}

/// What a `warden serve` started with piped standard output printed, up to its last line
/// ("stop with Ctrl-C"), or everything it printed if it ended first.
pub(crate) fn banner(child: &mut KillOnDrop) -> String {
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        banner.push_str(&line);
        if line.contains("stop with Ctrl-C") {
            break;
        }
    }
    banner
}

/// The peak resident memory (VmHWM) of a process, in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024
}

/// The most memory a flood of sign-ins may add to `warden serve`: argon2id needs 19 MiB per
/// hash, and hashing is bounded to one per core with a short queue (then 503) — two cores
/// here, so about 40 MiB; unbounded, 100 parallel hashes would be 1.9 GiB.
const SIGN_IN_FLOOD_GROWTH_MIB: u64 = 64;
/// And the most it may reach in all: the debug build with SAML is about 95 MiB resident before
/// the flood, 70 MiB of it the binary's own code (libxml2, xmlsec1 and OpenSSL add 3 MiB).
const SIGN_IN_FLOOD_CEILING_MIB: u64 = 160;

/// 300 sign-ins sent at once (unknown accounts are hashed too, for equal timing) used to grow
/// the server by 19 MiB each; now the peak stays under a ceiling, the excess is told to retry
/// (503 with Retry-After), and the server keeps answering.
#[tokio::test]
async fn a_flood_of_parallel_sign_ins_keeps_memory_under_a_ceiling() {
    let dir = tempfile::tempdir().unwrap();
    let (child, banner) = serve_in(dir.path());
    let url = banner
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("Warden is ready at "))
        .unwrap()
        .trim()
        .to_owned();
    let pid = child.0.id();
    let before = peak_rss_mib(pid);
    let mut busy = 0;
    let mut unauthorized = 0;
    for wave in 0..3 {
        let flood = (0..100).map(|i| {
            // Each from its own address and account, so no throttle stops it before hashing.
            let client = reqwest::Client::builder()
                .no_proxy()
                .local_address(std::net::IpAddr::from([127, 1, wave, i]))
                .build()
                .unwrap();
            let url = url.clone();
            async move {
                let res = client
                    .post(format!("{url}/api/v1/auth/sign-in"))
                    .json(&serde_json::json!({
                        "email": format!("nobody{wave}-{i}@example.com"),
                        "password": "a long enough wrong password",
                    }))
                    .send()
                    .await
                    .unwrap();
                let retry = res.headers().get("retry-after").is_some();
                (res.status(), retry)
            }
        });
        for (status, retry) in futures_util::future::join_all(flood).await {
            match status.as_u16() {
                401 => unauthorized += 1,
                503 => {
                    assert!(retry, "503 without Retry-After");
                    busy += 1;
                }
                other => panic!("unexpected status {other}"),
            }
        }
    }
    let peak = peak_rss_mib(pid);
    eprintln!(
        "sign-in flood: peak {peak} MiB (before {before}), {unauthorized} checked, {busy} told to retry"
    );
    assert!(
        peak < SIGN_IN_FLOOD_CEILING_MIB && peak.saturating_sub(before) < SIGN_IN_FLOOD_GROWTH_MIB,
        "peak {peak} MiB (was {before} MiB before the flood)"
    );
    assert!(unauthorized >= 6, "{unauthorized} answered");
    assert!(busy > 0, "the queue never filled: the test means nothing");
    let health = reqwest::get(format!("{url}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    drop(child);
}

/// The single-machine default: `warden serve` with no configuration also runs a local host,
/// so a session works with nothing else installed.
#[tokio::test]
async fn serve_runs_a_local_host_that_takes_sessions_out_of_the_box() {
    let dir = tempfile::tempdir().unwrap();
    let local = crate::local::Local::start(dir.path(), "me@example.com").await;
    assert!(
        local.banner.contains("also runs a local host"),
        "{}",
        local.banner
    );
    let url = local.url.clone();
    let ws = local.workspace(dir.path(), "Local").await;
    let (done, text) = local
        .run(&ws, &["sh", "-c", "echo local-ok; cat README.md"])
        .await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["isolation"], "landlock");
    let id = done["id"].as_str().unwrap().to_owned();
    assert!(
        text.contains("local-ok") && text.contains("# local"),
        "{text}"
    );

    // The same from a terminal: `warden login`, then `warden session`.
    let creds = dir.path().join("credentials.json");
    let cli = |args: Vec<&str>, stdin: &'static str| {
        let mut cmd = warden(dir.path());
        // Options before `--`: everything after it is the provider's command.
        cmd.arg(args[0])
            .arg("--credentials")
            .arg(&creds)
            .args(&args[1..])
            .env("WARDEN_WORKSPACE", &ws)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        tokio::task::spawn_blocking(move || {
            let mut child = cmd.spawn().unwrap();
            std::io::Write::write_all(child.stdin.as_mut().unwrap(), stdin.as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
    };
    let (ok, _, err) = cli(
        vec!["login", "--url", &url, "--email", "me@example.com"],
        "violet tractor 93 lagoon\n",
    )
    .await
    .unwrap();
    assert!(ok, "{err}");
    let (ok, out, err) = cli(
        vec![
            "session",
            "create",
            "--provider",
            "command",
            "--follow",
            "--",
            "sh",
            "-c",
            "echo cli-ok; echo to-stderr >&2; cat README.md",
        ],
        "",
    )
    .await
    .unwrap();
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("cli-ok") && out.contains("# local"),
        "stdout: {out}\nstderr: {err}"
    );
    assert!(
        err.contains("to-stderr") && !out.contains("to-stderr"),
        "{err}"
    );
    // A failing provider fails the command, naming its status.
    let (ok, out, err) = cli(
        vec![
            "session",
            "create",
            "--provider",
            "command",
            "--mode",
            "chat",
            "--follow",
            "--",
            "sh",
            "-c",
            "echo about-to-fail; exit 3",
        ],
        "",
    )
    .await
    .unwrap();
    assert!(!ok, "{out}{err}");
    assert!(
        out.contains("about-to-fail"),
        "stdout: {out}\nstderr: {err}"
    );
    assert!(
        err.contains("failed (exit status 3)"),
        "stdout: {out}\nstderr: {err}"
    );
    let (ok, out, err) = cli(vec!["session", "list"], "").await.unwrap();
    assert!(ok, "{err}");
    assert!(out.contains(&id), "{out}");
    let chat = out
        .lines()
        .find(|l| l.contains("chat"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    let (ok, out, err) = cli(vec!["session", "logs", &chat], "").await.unwrap();
    assert!(ok && out == "about-to-fail\n", "{out}{err}");
    let (ok, out, err) = cli(vec!["session", "show", &chat], "").await.unwrap();
    assert!(ok && out.contains("\"exit_code\": 3"), "{out}{err}");
    let (ok, out, err) = cli(vec!["session", "close", &chat], "").await.unwrap();
    assert!(ok && out.contains("closed"), "{out}{err}");
    // A second server on this machine (another data directory) starts its own local host
    // while a session of this one runs: it must leave that session alone.
    let (ok, out, err) = cli(
        vec![
            "session",
            "create",
            "--provider",
            "command",
            "--",
            "sh",
            "-c",
            "echo waiting; sleep 4; echo survived",
        ],
        "",
    )
    .await
    .unwrap();
    assert!(ok, "{err}");
    let long = out.trim().to_owned();
    for _ in 0..100 {
        if local
            .get(&format!("/api/v1/workspaces/{ws}/sessions/{long}"))
            .await["status"]
            == "running"
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let other = tempfile::tempdir().unwrap();
    let (second, second_banner) = serve_in(other.path());
    assert!(
        second_banner.contains("also runs a local host"),
        "{second_banner}"
    );
    let (ok, out, err) = cli(vec!["session", "logs", &long, "--follow"], "")
        .await
        .unwrap();
    assert!(
        ok && out.contains("survived"),
        "stdout: {out}\nstderr: {err}"
    );
    drop(second);

    // An unknown session and a bad provider are refused with the server's reason.
    let (ok, _, err) = cli(
        vec!["session", "show", "01234567-89ab-7def-8123-456789abcdef"],
        "",
    )
    .await
    .unwrap();
    assert!(!ok && err.contains("404"), "{err}");
    let (ok, _, err) = cli(vec!["session", "create", "--provider", "nonsense"], "")
        .await
        .unwrap();
    assert!(!ok && err.contains("422"), "{err}");

    local.stop();
}

/// A new user's first steps without curl: create a workspace, point it at a repository
/// (keeping its hooks), add members, set secrets and variables from standard input, and
/// administer users — all through the API with the saved login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspaces_members_secrets_and_users_are_managed_from_the_cli() {
    let app = warden_testkit::TestApp::spawn().await.unwrap();
    let admin = crate::identity::admin_token(&app).await;
    let res = app
        .client
        .post(app.url("/api/v1/admin/users"))
        .bearer_auth(&admin)
        .json(
            &serde_json::json!({"email": "dev@example.com", "password": "quiet harbor 4417 finch"}),
        )
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials.json");
    let run = |args: &[&str], stdin: &'static str| {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        run_cli(dir.path(), &creds, args, stdin)
    };
    let (ok, out) = run(
        &[
            "login",
            "--url",
            &app.base,
            "--email",
            crate::identity::ADMIN_EMAIL,
        ],
        "violet tractor 93 lagoon\n",
    )
    .await
    .unwrap();
    assert!(ok, "{out}");

    let (ok, out) = run(&["workspace", "create", "Payments"], "").await.unwrap();
    assert!(ok && out.contains("created"), "{out}");
    let id = out.trim().rsplit(' ').next().unwrap().to_owned();
    let (ok, out) = run(&["workspace", "list"], "").await.unwrap();
    assert!(
        ok && out.contains(&id) && out.contains("Payments") && out.contains("owner"),
        "{out}"
    );

    // Hooks set through the API survive set-repo (the settings PUT replaces every field).
    let res = app
        .client
        .put(app.url(&format!("/api/v1/workspaces/{id}/settings")))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"repository": null, "hooks": {"pre_session": ["make deps"]}}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let (ok, out) = run(
        &[
            "workspace",
            "set-repo",
            "Payments",
            "https://git.example.com/pay.git",
        ],
        "",
    )
    .await
    .unwrap();
    assert!(ok, "{out}");
    let (ok, out) = run(&["workspace", "show", &id], "").await.unwrap();
    assert!(
        ok && out.contains("https://git.example.com/pay.git") && out.contains("make deps"),
        "{out}"
    );
    let (ok, out) = run(&["workspace", "set-repo", &id, "--clear"], "")
        .await
        .unwrap();
    assert!(ok && out.contains("removed"), "{out}");

    // Members by email.
    let (ok, out) = run(
        &[
            "workspace",
            "members",
            &id,
            "add",
            "dev@example.com",
            "--role",
            "viewer",
        ],
        "",
    )
    .await
    .unwrap();
    assert!(ok && out.contains("viewer"), "{out}");
    let (ok, out) = run(
        &[
            "workspace",
            "members",
            &id,
            "role",
            "dev@example.com",
            "maintainer",
        ],
        "",
    )
    .await
    .unwrap();
    assert!(ok && out.contains("maintainer"), "{out}");
    let (ok, out) = run(&["workspace", "members", &id], "").await.unwrap();
    assert!(
        ok && out.contains("dev@example.com") && out.contains("maintainer"),
        "{out}"
    );
    // The last owner cannot leave: the server's rule, shown as its sentence.
    let (ok, out) = run(
        &[
            "workspace",
            "members",
            &id,
            "remove",
            crate::identity::ADMIN_EMAIL,
        ],
        "",
    )
    .await
    .unwrap();
    assert!(!ok && out.contains("(409)"), "{out}");
    let (ok, out) = run(
        &["workspace", "members", &id, "remove", "dev@example.com"],
        "",
    )
    .await
    .unwrap();
    assert!(ok, "{out}");

    // Secrets and variables: values from standard input, never shown again.
    let (ok, out) = run(
        &["workspace", "variables", &id, "set", "DATABASE_URL"],
        "postgres://app:cli-secret-value@db/app\n",
    )
    .await
    .unwrap();
    assert!(ok, "{out}");
    let (ok, out) = run(
        &[
            "workspace",
            "secrets",
            &id,
            "set-provider-key",
            "claude-code",
        ],
        "sk-cli-provider-secret\n",
    )
    .await
    .unwrap();
    assert!(ok, "{out}");
    let (ok, out) = run(
        &["workspace", "secrets", &id, "set-pat"],
        "ghp_cli_pat_secret\n",
    )
    .await
    .unwrap();
    assert!(ok, "{out}");
    let (ok, out) = run(&["workspace", "variables", &id], "").await.unwrap();
    assert!(
        ok && out.contains("DATABASE_URL") && !out.contains("cli-secret-value"),
        "{out}"
    );
    let (ok, out) = run(&["workspace", "secrets", &id], "").await.unwrap();
    assert!(
        ok && out.contains("claude-code") && out.contains("set by"),
        "{out}"
    );
    assert!(!out.contains("sk-cli") && !out.contains("ghp_cli"), "{out}");
    let (ok, out) = run(&["workspace", "variables", &id, "set", "EMPTY"], "")
        .await
        .unwrap();
    assert!(!ok && out.contains("standard input"), "{out}");
    let (ok, out) = run(
        &["workspace", "variables", &id, "remove", "DATABASE_URL"],
        "",
    )
    .await
    .unwrap();
    assert!(ok, "{out}");
    let (ok, out) = run(&["workspace", "variables", &id, "set", "../x"], "v\n")
        .await
        .unwrap();
    assert!(!ok && out.contains("not a valid"), "{out}");

    // Users.
    let (ok, out) = run(&["user", "list"], "").await.unwrap();
    assert!(ok && out.contains("dev@example.com"), "{out}");
    let (ok, out) = run(&["user", "role", "dev@example.com", "auditor"], "")
        .await
        .unwrap();
    assert!(ok, "{out}");
    let (ok, out) = run(&["user", "disable", "dev@example.com"], "")
        .await
        .unwrap();
    assert!(ok && out.contains("deactivated"), "{out}");
    let res = app
        .client
        .post(app.url("/api/v1/auth/sign-in"))
        .json(
            &serde_json::json!({"email": "dev@example.com", "password": "quiet harbor 4417 finch"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let (ok, out) = run(&["user", "list"], "").await.unwrap();
    assert!(
        ok && out.contains("auditor") && out.contains("false"),
        "{out}"
    );
    let (ok, out) = run(&["user", "enable", "dev@example.com"], "")
        .await
        .unwrap();
    assert!(ok, "{out}");
    // Every change is in the audit trail, with the CLI user as actor.
    let events = crate::identity::audit_rows(&app, "workspace.created").await;
    assert_eq!(events.len(), 1);
}

#[tokio::test]
async fn warden_sso_manages_providers_with_the_secret_from_standard_input() {
    let app = warden_testkit::TestApp::spawn().await.unwrap();
    crate::identity::admin_token(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials.json");
    let run = |args: Vec<String>, stdin: &'static str| run_cli(dir.path(), &creds, args, stdin);
    let sso = |cmd: &[&str]| {
        let mut v = vec!["sso".to_owned()];
        v.extend(cmd.iter().map(|s| (*s).to_owned()));
        v
    };
    let login = vec![
        "login".to_owned(),
        "--url".to_owned(),
        app.base.clone(),
        "--email".to_owned(),
        crate::identity::ADMIN_EMAIL.to_owned(),
    ];
    let (ok, out) = run(login, "violet tractor 93 lagoon\n").await.unwrap();
    assert!(ok, "{out}");
    let (ok, out) = run(
        sso(&[
            "add",
            "acme",
            "--name",
            "Acme",
            "--issuer",
            "https://login.acme.example",
            "--client-id",
            "warden",
            "--client-secret-stdin",
            "--domain",
            "acme.example",
            "--jit",
        ]),
        "cli-secret-9a1\n",
    )
    .await
    .unwrap();
    assert!(
        ok && out.contains("/api/v1/auth/sso/acme/callback"),
        "{out}"
    );
    let (ok, out) = run(sso(&["list"]), "").await.unwrap();
    assert!(
        ok && out.contains("acme") && out.contains("https://login.acme.example"),
        "{out}"
    );
    assert!(!out.contains("cli-secret-9a1"));
    let (ok, out) = run(
        sso(&[
            "add",
            "meta",
            "--name",
            "Meta",
            "--issuer",
            "https://169.254.169.254",
            "--client-id",
            "x",
        ]),
        "",
    )
    .await
    .unwrap();
    assert!(!ok && out.contains("422"), "{out}");
    let (ok, out) = run(sso(&["remove", "acme"]), "").await.unwrap();
    assert!(ok && out.contains("removed"), "{out}");
    let (ok, out) = run(sso(&["list"]), "").await.unwrap();
    assert!(ok && !out.contains("login.acme.example"), "{out}");
}
