//! A `warden serve` process on the embedded default (SQLite, generated key, local host) in a
//! directory of the test's, reached over HTTP as a person would: the operator-level tests
//! (the single-machine default, backup and restore) share it.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::cli::{KillOnDrop, serve_in};

pub(crate) const PASSWORD: &str = "violet tractor 93 lagoon";

/// A running `warden serve` and a client signed in as `email`.
pub(crate) struct Local {
    pub(crate) process: KillOnDrop,
    pub(crate) banner: String,
    pub(crate) url: String,
    client: reqwest::Client,
    auth: String,
}

impl Local {
    /// Starts `warden serve` in `dir`; on a fresh install creates `email` as administrator
    /// through the printed setup link. Then signs in and waits for the local host.
    pub(crate) async fn start(dir: &Path, email: &str) -> Self {
        let (process, banner) = serve_in(dir);
        let url = banner
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("Warden is ready at "))
            .unwrap_or_else(|| panic!("no ready line: {banner}"))
            .trim()
            .to_owned();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        if let Some(link) = banner.lines().find(|l| l.contains("/setup?token=")) {
            let token = link.trim().split("token=").nth(1).unwrap().to_owned();
            let res = client
                .post(format!("{url}/setup"))
                .form(&[
                    ("token", token.as_str()),
                    ("email", email),
                    ("password", PASSWORD),
                ])
                .send()
                .await
                .unwrap();
            assert!(res.status().is_success(), "{}", res.status());
        }
        let signed: Value = client
            .post(format!("{url}/api/v1/auth/sign-in"))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = signed["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("sign-in refused: {signed}"));
        let local = Self {
            process,
            banner,
            url,
            client,
            auth: format!("Bearer {token}"),
        };
        local.wait_for_local_host().await;
        local
    }

    async fn wait_for_local_host(&self) {
        for _ in 0..100 {
            let hosts = self.get("/api/v1/hosts").await;
            if hosts
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["name"] == "local" && h["online"] == true && h["status"] == "approved")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the local host did not come online");
    }

    /// GET `path` (relative to the server) as the signed-in person.
    pub(crate) async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// `method` `path` with a JSON body; the answer must be a success.
    pub(crate) async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        self.call(method, path, Some(body)).await
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.url))
            .header("authorization", &self.auth);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// A workspace on a fresh git repository under `dir`; its id.
    pub(crate) async fn workspace(&self, dir: &Path, name: &str) -> String {
        let repo = dir.join(format!("repo-{name}"));
        std::fs::create_dir_all(&repo).unwrap();
        std::fs::write(repo.join("README.md"), "# local\n").unwrap();
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(
                "git init -q -b main && git add -A && \
                 git -c user.name=t -c user.email=t@example.com commit -q -m init",
            )
            .current_dir(&repo)
            .status()
            .unwrap();
        assert!(status.success());
        let ws = self
            .send(
                reqwest::Method::POST,
                "/api/v1/workspaces",
                json!({ "name": name }),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        self.send(
            reqwest::Method::PUT,
            &format!("/api/v1/workspaces/{ws}/settings"),
            json!({"repository": repo.display().to_string()}),
        )
        .await;
        ws
    }

    /// Runs `command` in a session of workspace `ws` on the local host until it ends; its
    /// final state and everything it printed.
    pub(crate) async fn run(&self, ws: &str, command: &[&str]) -> (Value, String) {
        let session = self
            .send(
                reqwest::Method::POST,
                &format!("/api/v1/workspaces/{ws}/sessions"),
                json!({"provider": "command", "command": command}),
            )
            .await;
        let id = session["id"].as_str().unwrap();
        let mut done = Value::Null;
        for _ in 0..200 {
            done = self
                .get(&format!("/api/v1/workspaces/{ws}/sessions/{id}"))
                .await;
            if done["status"] != "waiting" && done["status"] != "running" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let output = self
            .get(&format!("/api/v1/workspaces/{ws}/sessions/{id}/output"))
            .await;
        let text = output["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["data"].as_str().unwrap())
            .collect();
        (done, text)
    }

    /// Stops the server the way a supervisor does (SIGTERM) and waits for it to exit.
    pub(crate) fn stop(mut self) {
        std::process::Command::new("kill")
            .args(["-TERM", &self.process.id().to_string()])
            .status()
            .unwrap();
        let status = crate::cli::wait_with_timeout(&mut self.process, Duration::from_secs(15));
        assert!(status.success(), "{status:?}");
    }
}
