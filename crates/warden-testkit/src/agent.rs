//! A real `warden-agent` for a test: started against the app with a host key, and waited
//! for until the server sees it online. The binary's path comes from the crate that builds
//! it (`env!("CARGO_BIN_EXE_warden-agent")` in `warden-agent`'s tests).

#![allow(clippy::panic)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::TestApp;

/// Starts the agent at `binary` for `app` with the host key `key`, keeping its data in
/// `data_dir`; it is killed when the handle drops.
pub fn start(binary: &str, app: &TestApp, key: &str, data_dir: &Path) -> tokio::process::Child {
    start_at(binary, &app.base, key, data_dir)
}

/// [`start`] for the server at `base`. Its log goes nowhere unless `WARDEN_TEST_AGENT_LOG` is
/// set (then to this process's standard error).
pub fn start_at(binary: &str, base: &str, key: &str, data_dir: &Path) -> tokio::process::Child {
    start_trusting(binary, base, key, data_dir, None)
}

/// [`start_at`], trusting the CA certificate in `ca_file` for the server's TLS.
pub fn start_trusting(
    binary: &str,
    base: &str,
    key: &str,
    data_dir: &Path,
    ca_file: Option<&Path>,
) -> tokio::process::Child {
    let log = if std::env::var_os("WARDEN_TEST_AGENT_LOG").is_some() {
        Stdio::inherit()
    } else {
        Stdio::null()
    };
    let mut command = tokio::process::Command::new(binary);
    if let Some(ca) = ca_file {
        command.arg("--ca-file").arg(ca);
    }
    command
        .arg("--url")
        .arg(base)
        .arg("--data-dir")
        .arg(data_dir)
        .env("WARDEN_HOST_KEY", key)
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{binary} did not start: {e}"))
}

/// Waits (up to 10 s) until the host `host` is online as `token` sees it; fails the test
/// otherwise.
pub async fn wait_online(app: &TestApp, token: &str, host: &str) {
    for _ in 0..100 {
        let (_, h) = app
            .call(
                token,
                reqwest::Method::GET,
                &format!("/api/v1/hosts/{host}"),
                None,
            )
            .await;
        if h["online"] == true {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the agent of host {host} did not connect");
}
