//! `warden host …`: host administration from a terminal, through the API with the
//! credentials `warden login` saved (so deleting or rejecting a host drops its live connection
//! at once, exactly as in the console).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::cli::HostCommand;
use crate::commands::print;

#[derive(Deserialize, Serialize)]
struct Saved {
    url: String,
    email: String,
    session_id: String,
    refresh_token: String,
}

#[derive(Deserialize)]
struct Refreshed {
    access_token: String,
    refresh_token: String,
}

struct Api {
    base: String,
    client: reqwest::Client,
    token: Zeroizing<String>,
}

/// Refreshes the saved session (the refresh token rotates, so the file is rewritten).
async fn connect(credentials: Option<PathBuf>) -> Result<Api> {
    let path = match credentials {
        Some(p) => p,
        None => crate::login::default_path()?,
    };
    let text = Zeroizing::new(std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no credentials at {}: run `warden login` first",
            path.display()
        )
    })?);
    let mut saved: Saved = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a Warden credentials file", path.display()))?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let res = client
        .post(format!("{}/api/v1/auth/refresh", saved.url))
        .json(&serde_json::json!({ "refresh_token": saved.refresh_token }))
        .send()
        .await
        .with_context(|| format!("cannot reach {}", saved.url))?;
    if !res.status().is_success() {
        bail!(
            "the saved session has ended (signed out, expired or revoked): run `warden login` again"
        );
    }
    let fresh: Refreshed = res.json().await.context("not a token response")?;
    saved.refresh_token = fresh.refresh_token;
    let text = Zeroizing::new(serde_json::to_string_pretty(&saved)?);
    crate::login::write_private(&path, text.as_bytes())?;
    Ok(Api {
        base: saved.url,
        client,
        token: Zeroizing::new(fresh.access_token),
    })
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.token.as_str());
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let detail = body["detail"].as_str().unwrap_or("request refused");
            bail!("{} ({})", detail, status.as_u16());
        }
        Ok(body)
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Runs a `warden host` command.
pub async fn run(credentials: Option<PathBuf>, command: HostCommand) -> Result<()> {
    let api = connect(credentials).await?;
    match command {
        HostCommand::List => {
            let hosts = api
                .call(reqwest::Method::GET, "/api/v1/hosts", None)
                .await?;
            print(
                "ID                                    NAME  KIND  STATUS  ONLINE  LAST SEEN  VERSION  OS  IP",
            );
            for h in hosts.as_array().into_iter().flatten() {
                let online = if h["online"] == true {
                    "online"
                } else {
                    "offline"
                };
                print(&format!(
                    "{}  {}  {}  {}  {}  {}  {}  {}  {}",
                    text(&h["id"]),
                    text(&h["name"]),
                    text(&h["kind"]),
                    text(&h["status"]),
                    online,
                    text(&h["last_seen_at"]),
                    text(&h["agent_version"]),
                    text(&h["os"]),
                    text(&h["last_ip"]),
                ));
            }
        }
        HostCommand::Approve { id } => {
            let h = api
                .call(
                    reqwest::Method::POST,
                    &format!("/api/v1/hosts/{id}/approve"),
                    None,
                )
                .await?;
            print(&format!(
                "host {} is {}",
                text(&h["id"]),
                text(&h["status"])
            ));
        }
        HostCommand::Reject { id } => {
            let h = api
                .call(
                    reqwest::Method::POST,
                    &format!("/api/v1/hosts/{id}/reject"),
                    None,
                )
                .await?;
            print(&format!(
                "host {} is {}",
                text(&h["id"]),
                text(&h["status"])
            ));
        }
        HostCommand::RotateKey { id, grace_minutes } => {
            let r = api
                .call(
                    reqwest::Method::POST,
                    &format!("/api/v1/hosts/{id}/rotate-key"),
                    Some(serde_json::json!({ "grace_minutes": grace_minutes })),
                )
                .await?;
            print(&format!(
                "new key for host {} (shown once; the old one works for {grace_minutes} more minutes):\n{}",
                text(&r["host"]["id"]),
                text(&r["api_key"])
            ));
        }
        HostCommand::Delete { id } => {
            api.call(
                reqwest::Method::DELETE,
                &format!("/api/v1/hosts/{id}"),
                None,
            )
            .await?;
            print(&format!(
                "host {id} deleted; its keys and tickets no longer work"
            ));
        }
    }
    Ok(())
}
