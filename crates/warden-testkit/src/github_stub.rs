//! A stand-in for GitHub's REST API (`2022-11-28`) at the network boundary, for ticket sync:
//! one repository's issues and issue comments, shaped after the examples in GitHub's public
//! documentation ("List repository issues", "List issue comments for a repository", "Update
//! an issue", "Create an issue comment").
//!
//! What it does as GitHub does: a bearer token is checked (401 `Bad credentials`); another
//! repository is 404; listings honour `state`, `since` (updated at or after), `sort=updated`,
//! `direction`, `per_page` and `page`, and link the next page with a `Link` header; pull
//! requests appear among issues with a `pull_request` key; every answer carries the
//! `x-ratelimit-*` headers, and once the budget is spent calls get 403 `API rate limit
//! exceeded` until the reset. Its clock is logical: each change is one second after the last.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use serde_json::{Value, json};

/// Seconds since the Unix epoch at which the stub's logical clock starts (2026-12-01).
const EPOCH: i64 = 1_796_083_200;

#[derive(Debug, Clone)]
struct Issue {
    number: i64,
    title: String,
    body: String,
    state: String,
    state_reason: Option<String>,
    labels: Vec<String>,
    pull_request: bool,
    created_at: i64,
    updated_at: i64,
    closed_at: Option<i64>,
}

#[derive(Debug, Clone)]
struct Comment {
    id: i64,
    issue: i64,
    login: String,
    body: String,
    created_at: i64,
    updated_at: i64,
}

#[derive(Debug)]
struct Inner {
    repo: String,
    token: String,
    base: String,
    tick: i64,
    issues: Vec<Issue>,
    comments: Vec<Comment>,
    next_comment: i64,
    page_size: usize,
    remaining: i64,
    reset: i64,
    requests: Vec<String>,
}

impl Inner {
    fn now(&mut self) -> i64 {
        self.tick += 1;
        EPOCH + self.tick
    }

    fn issue_json(&self, i: &Issue) -> Value {
        let api = format!("{}/repos/{}/issues/{}", self.base, self.repo, i.number);
        let html = format!("https://github.com/{}/issues/{}", self.repo, i.number);
        let mut v = json!({
            "id": 1_000_000 + i.number,
            "node_id": format!("I_kwDOstub{}", i.number),
            "url": api,
            "repository_url": format!("{}/repos/{}", self.base, self.repo),
            "labels_url": format!("{api}/labels{{/name}}"),
            "comments_url": format!("{api}/comments"),
            "events_url": format!("{api}/events"),
            "html_url": html,
            "number": i.number,
            "state": i.state,
            "state_reason": i.state_reason,
            "title": i.title,
            "body": i.body,
            "user": {"login": "octocat", "id": 1, "type": "User", "site_admin": false},
            "labels": i.labels.iter().enumerate().map(|(n, l)| json!({
                "id": 208_045_946 + n as i64, "node_id": "MDU6TGFiZWwyMDgwNDU5NDY=",
                "url": format!("{}/repos/{}/labels/{l}", self.base, self.repo),
                "name": l, "description": "", "color": "f29513", "default": false
            })).collect::<Vec<_>>(),
            "assignee": null,
            "assignees": [],
            "milestone": null,
            "locked": false,
            "active_lock_reason": null,
            "comments": self.comments.iter().filter(|c| c.issue == i.number).count(),
            "closed_at": i.closed_at.map(iso),
            "created_at": iso(i.created_at),
            "updated_at": iso(i.updated_at),
            "closed_by": null,
            "author_association": "COLLABORATOR"
        });
        if i.pull_request {
            v["pull_request"] = json!({
                "url": format!("{}/repos/{}/pulls/{}", self.base, self.repo, i.number),
                "html_url": format!("https://github.com/{}/pull/{}", self.repo, i.number),
                "diff_url": format!("https://github.com/{}/pull/{}.diff", self.repo, i.number),
                "patch_url": format!("https://github.com/{}/pull/{}.patch", self.repo, i.number)
            });
        }
        v
    }

    fn comment_json(&self, c: &Comment) -> Value {
        json!({
            "id": c.id,
            "node_id": format!("IC_kwDOstub{}", c.id),
            "url": format!("{}/repos/{}/issues/comments/{}", self.base, self.repo, c.id),
            "html_url": format!("https://github.com/{}/issues/{}#issuecomment-{}",
                self.repo, c.issue, c.id),
            "body": c.body,
            "user": {"login": c.login, "id": 2, "type": "User", "site_admin": false},
            "created_at": iso(c.created_at),
            "updated_at": iso(c.updated_at),
            "issue_url": format!("{}/repos/{}/issues/{}", self.base, self.repo, c.issue),
            "author_association": "COLLABORATOR"
        })
    }
}

fn iso(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn parse_iso(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|d| d.unix_timestamp())
}

type Shared = Arc<Mutex<Inner>>;

/// The running stub.
#[derive(Clone)]
pub struct GitHubStub {
    /// Its address.
    pub addr: SocketAddr,
    inner: Shared,
}

impl std::fmt::Debug for GitHubStub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubStub")
            .field("addr", &self.addr)
            .finish()
    }
}

impl GitHubStub {
    /// Starts one on a free loopback port serving `repo` (`owner/name`) to `token`.
    pub async fn start(repo: &str, token: &str) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Mutex::new(Inner {
            repo: repo.to_owned(),
            token: token.to_owned(),
            base: format!("http://{addr}"),
            tick: 0,
            issues: Vec::new(),
            comments: Vec::new(),
            next_comment: 1_081_119_000,
            page_size: 100,
            remaining: 5000,
            reset: EPOCH + 3600,
            requests: Vec::new(),
        }));
        let app = Router::new()
            .route("/repos/{owner}/{name}/issues", get(list_issues))
            .route("/repos/{owner}/{name}/issues/comments", get(list_comments))
            .route("/repos/{owner}/{name}/issues/{number}", patch(update_issue))
            .route(
                "/repos/{owner}/{name}/issues/{number}/comments",
                axum::routing::post(create_comment),
            )
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, inner })
    }

    /// The API's base URL (`http://127.0.0.1:PORT`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut g = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g)
    }

    fn push_issue(&self, title: &str, body: &str, labels: &[&str], pull_request: bool) -> i64 {
        self.with(|s| {
            let now = s.now();
            let number = s.issues.len() as i64 + 1;
            s.issues.push(Issue {
                number,
                title: title.to_owned(),
                body: body.to_owned(),
                state: "open".into(),
                state_reason: None,
                labels: labels.iter().map(|l| (*l).to_owned()).collect(),
                pull_request,
                created_at: now,
                updated_at: now,
                closed_at: None,
            });
            number
        })
    }

    /// Opens an issue, as someone on GitHub would; its number.
    pub fn add_issue(&self, title: &str, body: &str, labels: &[&str]) -> i64 {
        self.push_issue(title, body, labels, false)
    }

    /// Opens a pull request (listed among issues).
    pub fn add_pull_request(&self, title: &str) -> i64 {
        self.push_issue(title, "", &[], true)
    }

    /// Edits an issue's title and body on GitHub.
    pub fn edit_issue(&self, number: i64, title: &str, body: &str) {
        self.with(|s| {
            let now = s.now();
            if let Some(i) = s.issues.iter_mut().find(|i| i.number == number) {
                i.title = title.to_owned();
                i.body = body.to_owned();
                i.updated_at = now;
            }
        });
    }

    /// Closes (`completed` or `not_planned`) or, with `None`, reopens an issue on GitHub.
    pub fn set_state(&self, number: i64, closed_as: Option<&str>) {
        self.with(|s| {
            let now = s.now();
            if let Some(i) = s.issues.iter_mut().find(|i| i.number == number) {
                apply_state(i, closed_as, now);
            }
        });
    }

    /// Comments on an issue as `login`; the comment's id.
    pub fn comment(&self, number: i64, login: &str, body: &str) -> i64 {
        self.with(|s| add_comment(s, number, login, body))
    }

    /// An issue as the API shows it.
    pub fn issue(&self, number: i64) -> Value {
        self.with(|s| {
            s.issues
                .iter()
                .find(|i| i.number == number)
                .map(|i| s.issue_json(i))
                .unwrap_or(Value::Null)
        })
    }

    /// An issue's comments as the API shows them, oldest first.
    pub fn comments_on(&self, number: i64) -> Vec<Value> {
        self.with(|s| {
            s.comments
                .iter()
                .filter(|c| c.issue == number)
                .map(|c| s.comment_json(c))
                .collect()
        })
    }

    /// Leaves `remaining` calls in the rate-limit budget, renewed at `reset_at` (Unix
    /// seconds, as `x-ratelimit-reset` says; the stub itself never renews it).
    pub fn set_rate_limit(&self, remaining: i64, reset_at: i64) {
        self.with(|s| {
            s.remaining = remaining;
            s.reset = reset_at;
        });
    }

    /// Lists this many items per page at most (to make pagination show).
    pub fn set_page_size(&self, n: usize) {
        self.with(|s| s.page_size = n.max(1));
    }

    /// The requests received so far (`METHOD /path?query`), oldest first.
    pub fn requests(&self) -> Vec<String> {
        self.with(|s| s.requests.clone())
    }
}

fn apply_state(i: &mut Issue, closed_as: Option<&str>, now: i64) {
    match closed_as {
        Some(reason) => {
            i.state = "closed".into();
            i.state_reason = Some(reason.to_owned());
            i.closed_at = Some(now);
        }
        None => {
            i.state = "open".into();
            i.state_reason = Some("reopened".into());
            i.closed_at = None;
        }
    }
    i.updated_at = now;
}

fn add_comment(s: &mut Inner, number: i64, login: &str, body: &str) -> i64 {
    let now = s.now();
    s.next_comment += 1;
    let id = s.next_comment;
    s.comments.push(Comment {
        id,
        issue: number,
        login: login.to_owned(),
        body: body.to_owned(),
        created_at: now,
        updated_at: now,
    });
    if let Some(i) = s.issues.iter_mut().find(|i| i.number == number) {
        i.updated_at = now;
    }
    id
}

fn message(status: StatusCode, text: &str, headers: HeaderMap) -> Response {
    (
        status,
        headers,
        axum::Json(json!({
            "message": text,
            "documentation_url": "https://docs.github.com/rest",
            "status": status.as_u16().to_string()
        })),
    )
        .into_response()
}

/// Notes the request, checks the token, repository and rate limit; the headers to answer
/// with, or the refusal.
fn admit(
    s: &mut Inner,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    owner: &str,
    name: &str,
) -> Result<HeaderMap, Box<Response>> {
    s.requests.push(format!("{method} {uri}"));
    let mut out = HeaderMap::new();
    let expected = format!("Bearer {}", s.token);
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(&expected)
    {
        return Err(Box::new(message(
            StatusCode::UNAUTHORIZED,
            "Bad credentials",
            out,
        )));
    }
    let spent = s.remaining <= 0;
    if !spent {
        s.remaining -= 1;
    }
    for (k, v) in [
        ("x-ratelimit-limit", "5000".to_owned()),
        ("x-ratelimit-remaining", s.remaining.max(0).to_string()),
        ("x-ratelimit-reset", s.reset.to_string()),
        ("x-ratelimit-used", (5000 - s.remaining.max(0)).to_string()),
        ("x-ratelimit-resource", "core".to_owned()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            out.insert(k, v);
        }
    }
    if spent {
        return Err(Box::new(message(
            StatusCode::FORBIDDEN,
            "API rate limit exceeded for user ID 1.",
            out,
        )));
    }
    if format!("{owner}/{name}") != s.repo {
        return Err(Box::new(message(StatusCode::NOT_FOUND, "Not Found", out)));
    }
    Ok(out)
}

/// Sorts by last change, keeps those changed at or after `since`, and cuts a page.
fn page<T: Clone>(
    s: &Inner,
    uri: &Uri,
    q: &std::collections::HashMap<String, String>,
    mut items: Vec<(i64, T)>,
    headers: &mut HeaderMap,
) -> Vec<T> {
    if let Some(since) = q.get("since").and_then(|v| parse_iso(v)) {
        items.retain(|(t, _)| *t >= since);
    }
    items.sort_by_key(|(t, _)| *t);
    if q.get("direction").map(String::as_str) == Some("desc") {
        items.reverse();
    }
    let per_page = q
        .get("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100)
        .min(s.page_size);
    let number = q
        .get("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let start = (number - 1) * per_page;
    if start + per_page < items.len() {
        let mut next: Vec<String> = q
            .iter()
            .filter(|(k, _)| k.as_str() != "page")
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                )
            })
            .collect();
        next.sort();
        next.push(format!("page={}", number + 1));
        let link = format!(
            "<{}{}?{}>; rel=\"next\"",
            s.base,
            uri.path(),
            next.join("&")
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            headers.insert(header::LINK, v);
        }
    }
    items
        .into_iter()
        .skip(start)
        .take(per_page)
        .map(|(_, v)| v)
        .collect()
}

type Query_ = Query<std::collections::HashMap<String, String>>;

async fn list_issues(
    State(st): State<Shared>,
    Path((owner, name)): Path<(String, String)>,
    Query(q): Query_,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut s = match st.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    let mut out = match admit(&mut s, &method, &uri, &headers, &owner, &name) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let state = q.get("state").map_or("open", String::as_str).to_owned();
    let items: Vec<(i64, Issue)> = s
        .issues
        .iter()
        .filter(|i| state == "all" || i.state == state)
        .map(|i| (i.updated_at, i.clone()))
        .collect();
    let items = page(&s, &uri, &q, items, &mut out);
    let body: Vec<Value> = items.iter().map(|i| s.issue_json(i)).collect();
    (out, axum::Json(body)).into_response()
}

async fn list_comments(
    State(st): State<Shared>,
    Path((owner, name)): Path<(String, String)>,
    Query(q): Query_,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut s = match st.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    let mut out = match admit(&mut s, &method, &uri, &headers, &owner, &name) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let items: Vec<(i64, Comment)> = s
        .comments
        .iter()
        .map(|c| (c.updated_at, c.clone()))
        .collect();
    let items = page(&s, &uri, &q, items, &mut out);
    let body: Vec<Value> = items.iter().map(|c| s.comment_json(c)).collect();
    (out, axum::Json(body)).into_response()
}

async fn update_issue(
    State(st): State<Shared>,
    Path((owner, name, number)): Path<(String, String, i64)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut s = match st.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    let out = match admit(&mut s, &method, &uri, &headers, &owner, &name) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let now = s.now();
    let Some(i) = s.issues.iter_mut().find(|i| i.number == number) else {
        return message(StatusCode::NOT_FOUND, "Not Found", out);
    };
    match body["state"].as_str() {
        Some("closed") => apply_state(
            i,
            Some(body["state_reason"].as_str().unwrap_or("completed")),
            now,
        ),
        Some("open") => apply_state(i, None, now),
        Some(_) => {
            return message(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed", out);
        }
        None => {}
    }
    if let Some(t) = body["title"].as_str() {
        i.title = t.to_owned();
        i.updated_at = now;
    }
    let i = i.clone();
    let v = s.issue_json(&i);
    (out, axum::Json(v)).into_response()
}

async fn create_comment(
    State(st): State<Shared>,
    Path((owner, name, number)): Path<(String, String, i64)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut s = match st.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    let out = match admit(&mut s, &method, &uri, &headers, &owner, &name) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let Some(text) = body["body"].as_str() else {
        return message(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed", out);
    };
    if !s.issues.iter().any(|i| i.number == number) {
        return message(StatusCode::NOT_FOUND, "Not Found", out);
    }
    let id = add_comment(&mut s, number, "warden-bot", text);
    let v = s
        .comments
        .iter()
        .find(|c| c.id == id)
        .map(|c| s.comment_json(c))
        .unwrap_or(Value::Null);
    (StatusCode::CREATED, out, axum::Json(v)).into_response()
}
