//! The API client of the commands that work through a running server (`warden host`,
//! `warden session`): the credentials `warden login` saved, refreshed on every run.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zeroize::Zeroizing;

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

pub(crate) struct Api {
    base: String,
    client: reqwest::Client,
    token: Zeroizing<String>,
}

/// Refreshes the saved session (the refresh token rotates, so the file is rewritten).
pub(crate) async fn connect(credentials: Option<PathBuf>) -> Result<Api> {
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
    pub(crate) async fn call(
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

pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
