//! The part of GitHub's REST API ticket sync uses (`2022-11-28`): a repository's issues and
//! issue comments, read with `since` and `Link` pagination; an issue's state set; a comment
//! added. Calls go through a client that refuses private addresses (unless the operator
//! allowed private trackers) and link-local ones always, follows no redirects and no `Link`
//! to another origin (the token goes only where the workspace pointed it), and honours the
//! rate limit: once `x-ratelimit-remaining` reaches 0, or GitHub answers 403/429 with a
//! rate-limit or `retry-after` header, no further call is made until the reset. Error texts
//! never carry the token or a response body.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use warden_oidc::http::Guard;
use zeroize::Zeroizing;

/// Where GitHub's API is when the ticket source names no `base_url`.
pub const DEFAULT_BASE: &str = "https://api.github.com";
const TIMEOUT: Duration = Duration::from_secs(20);
const MAX_BODY: usize = 16 << 20;

/// An issue (pull requests come back from the same endpoint; they carry `pull_request`).
#[derive(Debug, Clone, Deserialize)]
pub struct Issue {
    /// Its number in the repository.
    pub number: i64,
    /// Title.
    pub title: String,
    /// Markdown body.
    #[serde(default)]
    pub body: Option<String>,
    /// `open` or `closed`.
    pub state: String,
    /// `completed`, `not_planned`, `reopened` or none.
    #[serde(default)]
    pub state_reason: Option<String>,
    /// Labels.
    #[serde(default)]
    pub labels: Vec<Label>,
    /// Its page on GitHub.
    pub html_url: String,
    /// Last changed (ISO 8601).
    pub updated_at: String,
    /// Present on pull requests.
    #[serde(default)]
    pub pull_request: Option<serde_json::Value>,
}

impl Issue {
    /// The state as ticket sync compares it: `open`, `closed:completed` or
    /// `closed:not_planned`.
    pub fn sync_state(&self) -> &'static str {
        match (self.state.as_str(), self.state_reason.as_deref()) {
            ("closed", Some("not_planned")) => super::CLOSED_NOT_PLANNED,
            ("closed", _) => super::CLOSED_COMPLETED,
            _ => super::OPEN,
        }
    }
}

/// A label.
#[derive(Debug, Clone, Deserialize)]
pub struct Label {
    /// Its name.
    pub name: String,
}

/// A comment on an issue.
#[derive(Debug, Clone, Deserialize)]
pub struct Comment {
    /// Its id.
    pub id: i64,
    /// Markdown body.
    #[serde(default)]
    pub body: Option<String>,
    /// Who wrote it.
    #[serde(default)]
    pub user: Option<User>,
    /// The issue's API address (ends with `/issues/{number}`).
    pub issue_url: String,
    /// Written (ISO 8601).
    pub created_at: String,
    /// Last changed (ISO 8601).
    pub updated_at: String,
}

impl Comment {
    /// The number of the issue it is on.
    pub fn issue_number(&self) -> Option<i64> {
        self.issue_url.rsplit('/').next()?.parse().ok()
    }
}

/// A GitHub account.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    /// Its login.
    pub login: String,
}

/// One page of a listing, and the address of the next.
#[derive(Debug)]
pub struct Page<T> {
    /// Its items.
    pub items: Vec<T>,
    /// The next page (same origin only), if any.
    pub next: Option<String>,
}

/// Why a call failed, in words safe to store and show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// GitHub's rate limit holds further calls until then (Unix seconds).
    RateLimited(i64),
    /// GitHub answered, refusing; the text says why.
    Refused(String),
    /// GitHub could not be reached.
    Unreachable(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::RateLimited(until) => write!(
                f,
                "GitHub's rate limit is used up until {}; the sync goes on then",
                crate::op::rfc3339(until.saturating_mul(1_000_000))
            ),
            Self::Refused(why) | Self::Unreachable(why) => f.write_str(why),
        }
    }
}

/// A repository's issues, through GitHub's API, with the workspace's token.
pub struct GitHub {
    http: reqwest::Client,
    base: url::Url,
    repo: String,
    token: Zeroizing<String>,
    now: Arc<dyn Fn() -> i64 + Send + Sync>,
    held_until: Mutex<Option<i64>>,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub")
            .field("base", &self.base.as_str())
            .field("repo", &self.repo)
            .finish_non_exhaustive()
    }
}

impl GitHub {
    /// A client for `owner/repo` at `base` (GitHub's API, or an Enterprise server's
    /// `https://host/api/v3`); `now` gives Unix seconds.
    pub fn new(
        base: &str,
        repo: &str,
        token: Zeroizing<String>,
        allow_private: bool,
        now: Arc<dyn Fn() -> i64 + Send + Sync>,
    ) -> Result<Self, CallError> {
        let base = warden_llm::upstream::check_base_url(base, allow_private)
            .map_err(|e| CallError::Refused(format!("the tracker's address is {e}")))?;
        let valid_part = |p: &str| {
            !p.is_empty()
                && p.len() <= 100
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && p != "."
                && p != ".."
        };
        match repo.split_once('/') {
            Some((owner, name)) if valid_part(owner) && valid_part(name) => {}
            _ => {
                return Err(CallError::Refused(
                    "a GitHub project is written owner/repository".into(),
                ));
            }
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "x-github-api-version",
            HeaderValue::from_static("2022-11-28"),
        );
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .no_proxy()
            .user_agent("warden-ticket-sync")
            .default_headers(headers)
            .dns_resolver(Arc::new(Guard {
                allow_private,
                never_link_local: true,
            }))
            .build()
            .map_err(|_| CallError::Unreachable("cannot build an HTTP client".into()))?;
        Ok(Self {
            http,
            base,
            repo: repo.to_owned(),
            token,
            now,
            held_until: Mutex::new(None),
        })
    }

    fn url(&self, tail: &str) -> String {
        format!(
            "{}/repos/{}{tail}",
            self.base.as_str().trim_end_matches('/'),
            self.repo
        )
    }

    /// The repository's issues changed since `since` (ISO 8601), oldest change first; `page`
    /// continues a listing.
    pub async fn issues(
        &self,
        since: Option<&str>,
        page: Option<&str>,
    ) -> Result<Page<Issue>, CallError> {
        let url = match page {
            Some(p) => p.to_owned(),
            None => {
                let mut u = url::Url::parse(&self.url("/issues"))
                    .map_err(|_| CallError::Refused("the tracker's address is not a URL".into()))?;
                u.query_pairs_mut()
                    .append_pair("state", "all")
                    .append_pair("sort", "updated")
                    .append_pair("direction", "asc")
                    .append_pair("per_page", "100");
                if let Some(s) = since {
                    u.query_pairs_mut().append_pair("since", s);
                }
                u.to_string()
            }
        };
        self.list(&url).await
    }

    /// The repository's issue comments changed since `since`, oldest change first.
    pub async fn comments(
        &self,
        since: Option<&str>,
        page: Option<&str>,
    ) -> Result<Page<Comment>, CallError> {
        let url = match page {
            Some(p) => p.to_owned(),
            None => {
                let mut u = url::Url::parse(&self.url("/issues/comments"))
                    .map_err(|_| CallError::Refused("the tracker's address is not a URL".into()))?;
                u.query_pairs_mut()
                    .append_pair("sort", "updated")
                    .append_pair("direction", "asc")
                    .append_pair("per_page", "100");
                if let Some(s) = since {
                    u.query_pairs_mut().append_pair("since", s);
                }
                u.to_string()
            }
        };
        self.list(&url).await
    }

    /// Opens or closes an issue (`closed:completed`, `closed:not_planned` or `open`).
    pub async fn set_state(&self, number: i64, state: &str) -> Result<(), CallError> {
        let body = match state {
            super::CLOSED_COMPLETED => json!({"state": "closed", "state_reason": "completed"}),
            super::CLOSED_NOT_PLANNED => json!({"state": "closed", "state_reason": "not_planned"}),
            _ => json!({"state": "open"}),
        };
        let url = self.url(&format!("/issues/{number}"));
        self.send(reqwest::Method::PATCH, &url, Some(body))
            .await
            .map(drop)
    }

    /// Adds a comment to an issue.
    pub async fn add_comment(&self, number: i64, body: &str) -> Result<Comment, CallError> {
        let url = self.url(&format!("/issues/{number}/comments"));
        let (_, bytes) = self
            .send(reqwest::Method::POST, &url, Some(json!({ "body": body })))
            .await?;
        parse(&bytes)
    }

    async fn list<T: DeserializeOwned>(&self, url: &str) -> Result<Page<T>, CallError> {
        let (headers, bytes) = self.send(reqwest::Method::GET, url, None).await?;
        let items = parse(&bytes)?;
        let next = next_link(&headers).filter(|n| self.same_origin(n));
        Ok(Page { items, next })
    }

    fn same_origin(&self, url: &str) -> bool {
        url::Url::parse(url).is_ok_and(|u| u.origin() == self.base.origin())
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(HeaderMap, Vec<u8>), CallError> {
        let now = (self.now)();
        if let Some(until) = *self.held_until.lock().map_err(|_| poisoned())?
            && until > now
        {
            return Err(CallError::RateLimited(until));
        }
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", self.token.as_str())).map_err(|_| {
                CallError::Refused("the personal access token is not a header value".into())
            })?;
        auth.set_sensitive(true);
        let mut request = self
            .http
            .request(method, url)
            .header(reqwest::header::AUTHORIZATION, auth);
        if let Some(b) = body {
            request = request.json(&b);
        }
        let mut response = request.send().await.map_err(|e| {
            CallError::Unreachable(if e.is_timeout() {
                "GitHub did not answer in time".into()
            } else {
                "GitHub could not be reached".into()
            })
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let remaining = header_i64(&headers, "x-ratelimit-remaining");
        let reset = header_i64(&headers, "x-ratelimit-reset");
        let retry_after = header_i64(&headers, "retry-after");
        let limited_until = match (remaining, reset, retry_after) {
            (_, _, Some(secs)) if !status.is_success() => Some(now + secs.max(1)),
            (Some(0), Some(reset), _) => Some(reset.max(now + 1)),
            _ => None,
        };
        if let Some(until) = limited_until {
            *self.held_until.lock().map_err(|_| poisoned())? = Some(until);
            if matches!(status.as_u16(), 403 | 429) {
                return Err(CallError::RateLimited(until));
            }
        }
        if !status.is_success() {
            return Err(CallError::Refused(match status.as_u16() {
                401 => "GitHub refused the personal access token (401)".to_owned(),
                403 => "GitHub refused access (403): the token may lack the issues permission"
                    .to_owned(),
                404 => format!(
                    "GitHub has no repository {} that this token can see (404)",
                    self.repo
                ),
                410 => format!("issues are turned off in {} (410)", self.repo),
                n => format!("GitHub answered {n}"),
            }));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|_| CallError::Unreachable("GitHub's answer was cut off".into()))?
        {
            if bytes.len() + chunk.len() > MAX_BODY {
                return Err(CallError::Refused("GitHub's answer is too large".into()));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok((headers, bytes))
    }
}

fn poisoned() -> CallError {
    CallError::Unreachable("the rate-limit state is unusable".into())
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CallError> {
    serde_json::from_slice(bytes)
        .map_err(|_| CallError::Refused("GitHub's answer is not what its API documents".into()))
}

fn header_i64(headers: &HeaderMap, name: &str) -> Option<i64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// The `rel="next"` address of a `Link` header.
fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().eq_ignore_ascii_case("rel=\"next\""));
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_is_read_from_githubs_link_header() {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            HeaderValue::from_static(
                "<https://api.github.com/repositories/1/issues?page=2>; rel=\"next\", \
                 <https://api.github.com/repositories/1/issues?page=5>; rel=\"last\"",
            ),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://api.github.com/repositories/1/issues?page=2")
        );
        h.insert(
            reqwest::header::LINK,
            HeaderValue::from_static("<https://x/?page=1>; rel=\"prev\""),
        );
        assert_eq!(next_link(&h), None);
    }

    #[test]
    fn a_project_must_be_owner_slash_repository() {
        let now: Arc<dyn Fn() -> i64 + Send + Sync> = Arc::new(|| 0);
        for bad in ["", "a", "a/b/c", "../x", "a/..", "a b/c", "a/b?x=1"] {
            assert!(
                GitHub::new(
                    DEFAULT_BASE,
                    bad,
                    Zeroizing::new("t".into()),
                    false,
                    now.clone()
                )
                .is_err(),
                "{bad}"
            );
        }
        assert!(
            GitHub::new(
                DEFAULT_BASE,
                "team/app.rs",
                Zeroizing::new("t".into()),
                false,
                now
            )
            .is_ok()
        );
    }
}
