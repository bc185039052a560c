//! A client for Warden's HTTP API: one place that knows how to send a request, read a
//! problem document (RFC 9457, with its stable code and request id) and sign in. The command
//! line and the test suites use it; a front end that needs an endpoint not covered by a typed
//! method uses [`Client::send`].
//!
//! Secrets stay out of `Debug`: tokens are [`Zeroizing`] and printed redacted.

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use zeroize::Zeroizing;

/// Why a call did not produce the answer asked for.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached, or the connection broke.
    #[error("cannot reach {base}: {source}")]
    Transport {
        /// The server's base address.
        base: String,
        /// What went wrong.
        source: reqwest::Error,
    },
    /// The server answered with an error.
    #[error("{0}")]
    Refused(Box<Problem>),
    /// A success whose body is not what the endpoint documents.
    #[error("unexpected answer from the server: {0}")]
    Unexpected(String),
    /// A device authorization ended without approval: `access_denied` (someone denied the
    /// code), `expired_token` (nobody approved it in time) or `invalid_grant`.
    #[error("{}", device_refusal(.error, .description))]
    DeviceRefused {
        /// The OAuth error code.
        error: String,
        /// The server's description.
        description: String,
    },
}

fn device_refusal(error: &str, description: &str) -> String {
    match error {
        "access_denied" => "the code was denied in Warden".to_owned(),
        "expired_token" => "the code expired before anyone approved it; start again".to_owned(),
        _ => format!("{error}: {description}"),
    }
}

/// One input at fault in a request body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FieldProblem {
    /// JSON pointer to the input.
    pub pointer: String,
    /// What is wrong with it.
    pub reason: String,
}

/// An error answer, as the server describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Problem {
    /// HTTP status.
    #[serde(default)]
    pub status: u16,
    /// Stable code (`not-found`, `last-owner`, …).
    #[serde(default)]
    pub code: String,
    /// A sentence safe to show.
    #[serde(default)]
    pub detail: String,
    /// The request's id, to quote when reporting it.
    #[serde(default)]
    pub request_id: String,
    /// The input the problem is about.
    #[serde(default)]
    pub field: Option<String>,
    /// Each input at fault, for bodies of the wrong shape.
    #[serde(default)]
    pub errors: Vec<FieldProblem>,
    /// Seconds to wait before trying again (`Retry-After`), for throttles and busy answers.
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let detail = if self.detail.is_empty() {
            "request refused"
        } else {
            &self.detail
        };
        write!(f, "{detail} ({})", self.status)?;
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        if !self.errors.is_empty() {
            let fields: Vec<String> = self
                .errors
                .iter()
                .map(|e| format!("{} {}", e.pointer, e.reason))
                .collect();
            write!(f, ": {}", fields.join("; "))?;
        }
        Ok(())
    }
}

/// A response: its status and its body as JSON (`Null` when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: Value,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
}

impl Answer {
    /// The problem document of an error answer.
    pub fn problem(&self) -> Option<Problem> {
        if self.status.is_success() {
            return None;
        }
        let mut problem: Problem =
            serde_json::from_value(self.body.clone()).unwrap_or_else(|_| Problem {
                status: 0,
                code: String::new(),
                detail: String::new(),
                request_id: String::new(),
                field: None,
                errors: Vec::new(),
                retry_after: None,
            });
        problem.status = self.status.as_u16();
        problem.retry_after = self.retry_after;
        Some(problem)
    }

    /// The body of a success; the problem of an error.
    pub fn into_result(self) -> Result<Value, ClientError> {
        match self.problem() {
            None => Ok(self.body),
            Some(p) => Err(ClientError::Refused(Box::new(p))),
        }
    }
}

/// Tokens from a sign-in or a refresh.
pub struct Tokens {
    /// The access token (minutes).
    pub access_token: Zeroizing<String>,
    /// The refresh token (rotates at every use).
    pub refresh_token: Zeroizing<String>,
    /// The device session.
    pub session_id: Option<String>,
    /// Seconds the access token lasts.
    pub expires_in: Option<i64>,
}

/// The wire form of [`Tokens`]; its strings move into `Zeroizing` at once.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    refresh_token: String,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
}

impl From<TokenAnswer> for Tokens {
    fn from(t: TokenAnswer) -> Self {
        Self {
            access_token: Zeroizing::new(t.access_token),
            refresh_token: Zeroizing::new(t.refresh_token),
            session_id: t.session_id,
            expires_in: t.expires_in,
        }
    }
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

/// A client of one Warden server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// A client of the server at `base` (`https://warden.example`), following no redirects.
    pub fn new(base: impl Into<String>) -> Result<Self, ClientError> {
        let base = base.into();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| ClientError::Transport {
                base: base.clone(),
                source,
            })?;
        Ok(Self::with(http, base))
    }

    /// A client over an existing HTTP client (its TLS roots, timeouts, cookies).
    pub fn with(http: reqwest::Client, base: impl Into<String>) -> Self {
        Self {
            http,
            base: base.into().trim_end_matches('/').to_owned(),
        }
    }

    /// The server's base address.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request, with a bearer token when given and a JSON body when given, and
    /// returns the answer whatever its status.
    pub async fn send(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, ClientError> {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.map_err(|source| ClientError::Transport {
            base: self.base.clone(),
            source,
        })?;
        let status = res.status();
        let retry_after = res
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let text = res.text().await.map_err(|source| ClientError::Transport {
            base: self.base.clone(),
            source,
        })?;
        Ok(Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            retry_after,
        })
    }

    /// Sends a request and returns the body of a success, or the problem.
    pub async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        self.send(Some(token), method, path, body)
            .await?
            .into_result()
    }

    /// Signs in with email and password.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<Tokens, ClientError> {
        let body = serde_json::json!({ "email": email, "password": password });
        let answer = self
            .send(None, Method::POST, "/api/v1/auth/sign-in", Some(&body))
            .await?;
        tokens(answer)
    }

    /// Exchanges a refresh token for new tokens (the presented one is spent).
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, ClientError> {
        let body = serde_json::json!({ "refresh_token": refresh_token });
        let answer = self
            .send(None, Method::POST, "/api/v1/auth/refresh", Some(&body))
            .await?;
        tokens(answer)
    }

    /// Starts a device authorization (RFC 8628): `kind` `user` (sign this terminal in) or
    /// `host` (enrol an agent as `host_name`).
    pub async fn device_start(
        &self,
        kind: &str,
        client_name: &str,
        host_name: Option<&str>,
    ) -> Result<DeviceStart, ClientError> {
        let body = serde_json::json!({
            "kind": kind, "client_name": client_name, "host_name": host_name,
        });
        let answer = self
            .send(None, Method::POST, "/api/v1/auth/device", Some(&body))
            .await?
            .into_result()?;
        serde_json::from_value(answer).map_err(|e| ClientError::Unexpected(e.to_string()))
    }

    /// Polls the token endpoint with `device_code` every `interval` seconds (longer after a
    /// `slow_down`) until the grant is approved (the answer's body), denied or expired.
    pub async fn device_wait(
        &self,
        device_code: &str,
        mut interval: u64,
    ) -> Result<Value, ClientError> {
        let body = serde_json::json!({
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": device_code,
        });
        loop {
            tokio_sleep(interval).await;
            let answer = self
                .send(None, Method::POST, "/api/v1/auth/token", Some(&body))
                .await?;
            if answer.status.is_success() {
                return Ok(answer.body);
            }
            match answer.body["error"].as_str() {
                Some("authorization_pending") => {}
                Some("slow_down") => interval += 5,
                Some(error) => {
                    return Err(ClientError::DeviceRefused {
                        error: error.to_owned(),
                        description: answer.body["error_description"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    });
                }
                None => {
                    return Err(answer.into_result().err().unwrap_or_else(|| {
                        ClientError::Unexpected("the token endpoint answered nothing".to_owned())
                    }));
                }
            }
        }
    }

    /// Who is signed in: `{id, email, session_id}`.
    pub async fn me(&self, token: &str) -> Result<Value, ClientError> {
        self.call(token, Method::GET, "/api/v1/me", None).await
    }
}

async fn tokio_sleep(secs: u64) {
    tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
}

/// The codes of a device authorization.
#[derive(Deserialize)]
pub struct DeviceStart {
    /// Secret: poll with it.
    pub device_code: Zeroizing<String>,
    /// Show it to the person.
    pub user_code: String,
    /// Where the person enters it.
    pub verification_uri: String,
    /// The same, with the code.
    pub verification_uri_complete: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// Seconds between polls.
    pub interval: u64,
}

impl std::fmt::Debug for DeviceStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceStart")
            .field("user_code", &self.user_code)
            .finish_non_exhaustive()
    }
}

/// Reads a token answer (sign-in, refresh, or a redeemed device grant).
pub fn tokens_from(body: Value) -> Result<Tokens, ClientError> {
    serde_json::from_value::<TokenAnswer>(body)
        .map(Tokens::from)
        .map_err(|e| ClientError::Unexpected(e.to_string()))
}

fn tokens(answer: Answer) -> Result<Tokens, ClientError> {
    let body = answer.into_result()?;
    serde_json::from_value::<TokenAnswer>(body)
        .map(Tokens::from)
        .map_err(|e| ClientError::Unexpected(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::StatusCode as Status;
    use axum::routing::get;

    async fn server() -> Client {
        let app = axum::Router::new()
            .route(
                "/ok",
                get(|| async { axum::Json(serde_json::json!({"fine": true})) }),
            )
            .route(
                "/refused",
                get(|| async {
                    (
                        Status::CONFLICT,
                        axum::Json(serde_json::json!({
                            "status": 409, "code": "last-owner",
                            "detail": "A workspace keeps at least one owner.",
                            "request_id": "r-1",
                            "errors": [{"pointer": "/role", "reason": "is required"}]
                        })),
                    )
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Client::new(format!("http://{addr}/")).unwrap()
    }

    #[tokio::test]
    async fn a_success_is_its_body_and_an_error_its_problem() {
        let c = server().await;
        assert_eq!(
            c.call("t", Method::GET, "/ok", None).await.unwrap()["fine"],
            true
        );
        let err = c
            .call("t", Method::GET, "/refused", None)
            .await
            .unwrap_err();
        let ClientError::Refused(p) = err else {
            panic!("not a refusal");
        };
        assert_eq!(p.code, "last-owner");
        assert_eq!(p.request_id, "r-1");
        assert_eq!(
            p.to_string(),
            "A workspace keeps at least one owner. (409): /role is required"
        );
        // An error without a problem document still has its status.
        let answer = c.send(None, Method::GET, "/missing", None).await.unwrap();
        assert_eq!(answer.problem().unwrap().status, 404);
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_transport_error_naming_it() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let c = Client::new(format!("http://{addr}")).unwrap();
        let err = c.me("t").await.unwrap_err();
        assert!(matches!(err, ClientError::Transport { .. }));
        assert!(err.to_string().contains(&addr.to_string()));
    }

    #[test]
    fn tokens_never_print() {
        let t: Tokens = serde_json::from_value::<TokenAnswer>(serde_json::json!({
            "access_token": "secret-access", "refresh_token": "secret-refresh"
        }))
        .unwrap()
        .into();
        let shown = format!("{t:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
