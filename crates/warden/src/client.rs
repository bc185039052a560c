//! The API client of the commands that work through a running server (`warden host`,
//! `warden session`): the credentials `warden login` saved, refreshed on every run, and again
//! whenever the server says the access token is no longer good (it expires after minutes; a
//! `warden session logs --follow` may run for hours).

use std::path::PathBuf;
use std::sync::Mutex;

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

pub(crate) struct Api {
    client: warden_client::Client,
    /// The saved session (refreshed), or `None` when a personal access token is used.
    session: Option<(PathBuf, Mutex<Saved>)>,
    token: Mutex<Zeroizing<String>>,
}

/// The environment variable holding a personal access token: when set, commands use it
/// instead of the saved session (with `WARDEN_URL`, or the saved session's server).
pub(crate) const TOKEN_VAR: &str = "WARDEN_TOKEN";
/// The server's URL, for `WARDEN_TOKEN`.
pub(crate) const URL_VAR: &str = "WARDEN_URL";

/// Uses `WARDEN_TOKEN` when it is set; otherwise reads the saved session and refreshes it
/// (the refresh token rotates, so the file is rewritten).
pub(crate) async fn connect(credentials: Option<PathBuf>) -> Result<Api> {
    if let Some(token) = std::env::var(TOKEN_VAR)
        .ok()
        .filter(|t| !t.trim().is_empty())
    {
        let token = Zeroizing::new(token.trim().to_owned());
        if !token.starts_with(warden_domain::identity::PAT_PREFIX) {
            bail!("{TOKEN_VAR} is not a personal access token (they start with wdn_pat_)");
        }
        let url = match std::env::var(URL_VAR).ok().filter(|u| !u.trim().is_empty()) {
            Some(url) => url,
            None => saved_url(credentials).with_context(|| {
                format!("{TOKEN_VAR} is set: set {URL_VAR} to the server's URL")
            })?,
        };
        return Ok(Api {
            client: warden_client::Client::new(url)?,
            session: None,
            token: Mutex::new(token),
        });
    }
    let (path, saved) = read_saved(credentials)?;
    let api = Api {
        client: warden_client::Client::new(saved.url.clone())?,
        session: Some((path, Mutex::new(saved))),
        token: Mutex::new(Zeroizing::new(String::new())),
    };
    api.refresh().await?;
    Ok(api)
}

fn saved_url(credentials: Option<PathBuf>) -> Result<String> {
    Ok(read_saved(credentials)?.1.url)
}

fn read_saved(credentials: Option<PathBuf>) -> Result<(PathBuf, Saved)> {
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
    let saved: Saved = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a Warden credentials file", path.display()))?;
    Ok((path, saved))
}

fn poisoned<T>(_: T) -> anyhow::Error {
    anyhow::anyhow!("internal error: a lock was poisoned")
}

impl Api {
    /// A new access token for the saved session; the rotated refresh token is saved.
    async fn refresh(&self) -> Result<()> {
        let Some((path, saved)) = &self.session else {
            bail!("{TOKEN_VAR} was refused (revoked, expired or mistyped)");
        };
        let current = Zeroizing::new(saved.lock().map_err(poisoned)?.refresh_token.clone());
        let fresh = match self.client.refresh(&current).await {
            Ok(tokens) => tokens,
            Err(warden_client::ClientError::Refused(_)) => bail!(
                "the saved session has ended (signed out, expired or revoked): run `warden login` again"
            ),
            Err(e) => return Err(e.into()),
        };
        let text = {
            let mut saved = saved.lock().map_err(poisoned)?;
            saved.refresh_token = fresh.refresh_token.to_string();
            Zeroizing::new(serde_json::to_string_pretty(&*saved)?)
        };
        crate::login::write_private(path, text.as_bytes())?;
        *self.token.lock().map_err(poisoned)? = fresh.access_token;
        Ok(())
    }

    /// Calls the API; on 401, refreshes once and tries again.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut refreshed = false;
        loop {
            let token = Zeroizing::new(self.token.lock().map_err(poisoned)?.as_str().to_owned());
            let answer = self
                .client
                .send(Some(token.as_str()), method.clone(), path, body.as_ref())
                .await?;
            if answer.status == reqwest::StatusCode::UNAUTHORIZED && !refreshed {
                refreshed = true;
                self.refresh().await?;
                continue;
            }
            return Ok(answer.into_result()?);
        }
    }
}

pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use axum::Json;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::{get, post};
    use serde_json::{Value, json};

    /// A server whose access tokens go stale: `a1` is refused, `a2` accepted; refresh tokens
    /// rotate `r1` → `r2` → `r3`.
    async fn server() -> String {
        let app = axum::Router::new()
            .route(
                "/api/v1/auth/refresh",
                post(|Json(body): Json<Value>| async move {
                    match body["refresh_token"].as_str() {
                        Some("r1") => {
                            Ok(Json(json!({"access_token": "a1", "refresh_token": "r2"})))
                        }
                        Some("r2") => {
                            Ok(Json(json!({"access_token": "a2", "refresh_token": "r3"})))
                        }
                        _ => Err(StatusCode::UNAUTHORIZED),
                    }
                }),
            )
            .route("/api/v1/never", get(|| async { StatusCode::UNAUTHORIZED }))
            .route(
                "/api/v1/thing",
                get(|headers: HeaderMap| async move {
                    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                        Some("Bearer a2") => Ok(Json(json!({"ok": true}))),
                        _ => Err(StatusCode::UNAUTHORIZED),
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    fn saved(dir: &std::path::Path, url: &str, refresh: &str) -> std::path::PathBuf {
        let path = dir.join("credentials.json");
        std::fs::write(
            &path,
            json!({"url": url, "email": "me@example.com", "session_id": "s", "refresh_token": refresh})
                .to_string(),
        )
        .unwrap();
        path
    }

    #[tokio::test]
    async fn a_stale_access_token_is_refreshed_once_and_the_call_repeated() {
        let url = server().await;
        let dir = tempfile::tempdir().unwrap();
        let path = saved(dir.path(), &url, "r1");
        let api = super::connect(Some(path.clone())).await.unwrap();
        let got = api
            .call(reqwest::Method::GET, "/api/v1/thing", None)
            .await
            .unwrap();
        assert_eq!(got["ok"], true);
        let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(file["refresh_token"], "r3", "each rotation is saved");
    }

    #[tokio::test]
    async fn an_ended_session_says_to_log_in_again() {
        let url = server().await;
        let dir = tempfile::tempdir().unwrap();
        let err = super::connect(Some(saved(dir.path(), &url, "revoked")))
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("warden login"), "{err}");
        // A token refused again after a refresh is an error, not a loop.
        let api = super::connect(Some(saved(dir.path(), &url, "r1")))
            .await
            .unwrap();
        let err = api
            .call(reqwest::Method::GET, "/api/v1/never", None)
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("(401)"), "{err}");
    }
}
