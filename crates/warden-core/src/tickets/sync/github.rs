//! The part of GitHub's REST API ticket sync uses (`2022-11-28`): a repository's issues and
//! issue comments, read with `since` and `Link` pagination (pull requests, which the issues
//! endpoint lists too, are left out); an issue's state set; a comment added. Calls go
//! through the shared tracker client (`http.rs`): address rules, no redirects, rate limits.

use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::json;

use super::http::{CallError, Http, Now, valid_segment};
use super::tracker::{Page, RemoteComment, RemoteIssue};

/// Where GitHub's API is when the ticket source names no `base_url`.
pub const DEFAULT_BASE: &str = "https://api.github.com";

/// An issue (pull requests come back from the same endpoint; they carry `pull_request`).
#[derive(Debug, Clone, Deserialize)]
struct Issue {
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
    fn sync_state(&self) -> &'static str {
        match (self.state.as_str(), self.state_reason.as_deref()) {
            ("closed", Some("not_planned")) => super::CLOSED_NOT_PLANNED,
            ("closed", _) => super::CLOSED_COMPLETED,
            _ => super::OPEN,
        }
    }
}

/// A label.
#[derive(Debug, Clone, Deserialize)]
struct Label {
    /// Its name.
    pub name: String,
}

/// A comment on an issue.
#[derive(Debug, Clone, Deserialize)]
struct Comment {
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
    fn issue_number(&self) -> Option<i64> {
        self.issue_url.rsplit('/').next()?.parse().ok()
    }
}

/// A GitHub account.
#[derive(Debug, Clone, Deserialize)]
struct User {
    /// Its login.
    pub login: String,
}

/// A repository's issues, through GitHub's API, with the workspace's token.
#[derive(Debug)]
pub struct GitHub {
    http: Http,
    repo: String,
}

impl GitHub {
    /// A client for `owner/repo` at `base` (GitHub's API, or an Enterprise server's
    /// `https://host/api/v3`).
    pub fn new(
        base: &str,
        repo: &str,
        token: &str,
        allow_private: bool,
        now: Now,
    ) -> Result<Self, CallError> {
        match repo.split_once('/') {
            Some((owner, name)) if valid_segment(owner) && valid_segment(name) => {}
            _ => {
                return Err(CallError::Refused(
                    "a GitHub project is written owner/repository".into(),
                ));
            }
        }
        let auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            CallError::Refused("the personal access token is not a header value".into())
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "x-github-api-version",
            HeaderValue::from_static("2022-11-28"),
        );
        let http = Http::new(
            "GitHub",
            base,
            format!("repository {repo}"),
            auth,
            headers,
            allow_private,
            now,
        )?;
        Ok(Self {
            http,
            repo: repo.to_owned(),
        })
    }

    fn url(&self, tail: &str) -> String {
        format!("{}/repos/{}{tail}", self.http.base(), self.repo)
    }

    fn first_page(
        &self,
        tail: &str,
        pairs: &[(&str, &str)],
        since: Option<&str>,
    ) -> Result<String, CallError> {
        let mut u = url::Url::parse(&self.url(tail))
            .map_err(|_| CallError::Refused("the tracker's address is not a URL".into()))?;
        u.query_pairs_mut().extend_pairs(pairs.iter().copied());
        if let Some(s) = since {
            u.query_pairs_mut().append_pair("since", s);
        }
        Ok(u.to_string())
    }

    async fn list<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<(Vec<T>, Option<String>), CallError> {
        let (headers, bytes) = self.http.send(reqwest::Method::GET, url, None).await?;
        let items = self.http.parse(&bytes)?;
        let next = next_link(&headers).filter(|n| self.http.same_origin(n));
        Ok((items, next))
    }

    /// The repository's issues changed since `since` (ISO 8601), oldest change first.
    pub async fn issues(
        &self,
        since: Option<&str>,
        page: Option<&str>,
    ) -> Result<Page<RemoteIssue>, CallError> {
        let url = match page {
            Some(p) => p.to_owned(),
            None => self.first_page(
                "/issues",
                &[
                    ("state", "all"),
                    ("sort", "updated"),
                    ("direction", "asc"),
                    ("per_page", "100"),
                ],
                since,
            )?,
        };
        let (raw, next): (Vec<Issue>, _) = self.list(&url).await?;
        let cursor = raw.last().map(|i| i.updated_at.clone());
        let items = raw
            .into_iter()
            .filter(|i| i.pull_request.is_none())
            .map(|i| RemoteIssue {
                id: i.number.to_string(),
                state: i.sync_state(),
                labels: i.labels.into_iter().map(|l| l.name).collect(),
                body: i.body.unwrap_or_default(),
                title: i.title,
                url: i.html_url,
            })
            .collect();
        Ok(Page {
            items,
            next,
            cursor,
        })
    }

    /// The repository's issue comments changed since `since`, oldest change first.
    pub async fn comments(
        &self,
        since: Option<&str>,
        page: Option<&str>,
    ) -> Result<Page<RemoteComment>, CallError> {
        let url = match page {
            Some(p) => p.to_owned(),
            None => self.first_page(
                "/issues/comments",
                &[
                    ("sort", "updated"),
                    ("direction", "asc"),
                    ("per_page", "100"),
                ],
                since,
            )?,
        };
        let (raw, next): (Vec<Comment>, _) = self.list(&url).await?;
        let cursor = raw.last().map(|c| c.updated_at.clone());
        let items = raw
            .into_iter()
            .filter_map(|c| {
                Some(RemoteComment {
                    issue: c.issue_number()?.to_string(),
                    id: c.id.to_string(),
                    body: c.body.unwrap_or_default(),
                    author: c
                        .user
                        .map_or_else(|| "someone on GitHub".to_owned(), |u| u.login),
                    created_at: c.created_at,
                })
            })
            .collect();
        Ok(Page {
            items,
            next,
            cursor,
        })
    }

    /// Opens or closes an issue (`closed:completed`, `closed:not_planned` or `open`).
    pub async fn set_state(&self, number: &str, state: &str) -> Result<(), CallError> {
        let body = match state {
            super::CLOSED_COMPLETED => json!({"state": "closed", "state_reason": "completed"}),
            super::CLOSED_NOT_PLANNED => json!({"state": "closed", "state_reason": "not_planned"}),
            _ => json!({"state": "open"}),
        };
        let url = self.url(&format!("/issues/{}", issue_number(number)?));
        self.http
            .send(
                reqwest::Method::PATCH,
                &url,
                Some(("application/json", body.to_string().into_bytes())),
            )
            .await
            .map(drop)
    }

    /// Adds a comment to an issue; its id.
    pub async fn add_comment(&self, number: &str, body: &str) -> Result<String, CallError> {
        let url = self.url(&format!("/issues/{}/comments", issue_number(number)?));
        let payload = json!({ "body": body }).to_string().into_bytes();
        let (_, bytes) = self
            .http
            .send(
                reqwest::Method::POST,
                &url,
                Some(("application/json", payload)),
            )
            .await?;
        let made: Comment = self.http.parse(&bytes)?;
        Ok(made.id.to_string())
    }
}

fn issue_number(id: &str) -> Result<i64, CallError> {
    id.parse()
        .map_err(|_| CallError::Refused("a GitHub issue is named by its number".into()))
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
        let now: Now = std::sync::Arc::new(|| 0);
        for bad in ["", "a", "a/b/c", "../x", "a/..", "a b/c", "a/b?x=1"] {
            assert!(
                GitHub::new(DEFAULT_BASE, bad, "t", false, now.clone()).is_err(),
                "{bad}"
            );
        }
        assert!(GitHub::new(DEFAULT_BASE, "team/app.rs", "t", false, now).is_ok());
    }
}
