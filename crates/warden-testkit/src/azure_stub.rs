//! A stand-in for Azure DevOps' REST API (7.1) at the network boundary, for ticket sync: one
//! project's work items and their comments, shaped after the examples in Microsoft's public
//! documentation ("Wiql - Query By Wiql", "Work Items - List", "Work Items - Update",
//! "Comments - Get Comments", "Comments - Add Comment").
//!
//! What it does as Azure DevOps does: a personal access token is checked as Basic
//! authentication (`:TOKEN`; otherwise 401); another organization or project is 404; a WIQL
//! query's `[System.ChangedDate] >= '…'` is honoured and results come oldest change first;
//! states follow the Scrum process (New, Approved, Committed, Done, Removed; another is 400
//! with a `TF401320` rule error); descriptions and comments are HTML; a throttled call gets
//! 429 with `Retry-After`. Its clock is logical: each change is one second after the last.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};

/// 2026-12-01T00:00:00Z, where the stub's logical clock starts.
const EPOCH: i64 = 1_796_083_200;
const STATES: [&str; 5] = ["New", "Approved", "Committed", "Done", "Removed"];

#[derive(Debug, Clone)]
struct WorkItem {
    id: i64,
    title: String,
    description: String,
    state: String,
    tags: Vec<String>,
    changed: i64,
    rev: i64,
}

#[derive(Debug, Clone)]
struct Comment {
    id: i64,
    item: i64,
    author: String,
    text: String,
    created: i64,
}

#[derive(Debug)]
struct Inner {
    org: String,
    project: String,
    token: String,
    base: String,
    tick: i64,
    items: Vec<WorkItem>,
    comments: Vec<Comment>,
    throttle: Option<i64>,
    requests: Vec<String>,
}

impl Inner {
    fn now(&mut self) -> i64 {
        self.tick += 1;
        EPOCH + self.tick
    }

    fn item_json(&self, w: &WorkItem) -> Value {
        json!({
            "id": w.id,
            "rev": w.rev,
            "fields": {
                "System.Id": w.id,
                "System.AreaPath": self.project,
                "System.TeamProject": self.project,
                "System.WorkItemType": "Product Backlog Item",
                "System.State": w.state,
                "System.Title": w.title,
                "System.Description": w.description,
                "System.Tags": w.tags.join("; "),
                "System.ChangedDate": iso(w.changed),
            },
            "url": format!("{}/{}/{}/_apis/wit/workItems/{}", self.base, self.org,
                self.project.replace(' ', "%20"), w.id)
        })
    }

    fn comment_json(&self, c: &Comment) -> Value {
        json!({
            "workItemId": c.item,
            "commentId": c.id,
            "version": 1,
            "text": c.text,
            "createdBy": {"displayName": c.author, "uniqueName": format!("{}@example.com",
                c.author.to_lowercase().replace(' ', "."))},
            "createdDate": iso(c.created),
            "modifiedDate": iso(c.created),
            "url": format!("{}/{}/{}/_apis/wit/workItems/{}/comments/{}", self.base, self.org,
                self.project.replace(' ', "%20"), c.item, c.id)
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

type Shared = Arc<Mutex<Inner>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    match s.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// The running stub.
#[derive(Clone)]
pub struct AzureStub {
    /// Its address.
    pub addr: SocketAddr,
    inner: Shared,
}

impl std::fmt::Debug for AzureStub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureStub")
            .field("addr", &self.addr)
            .finish()
    }
}

impl AzureStub {
    /// Starts one on a free loopback port serving `organization/project` to `token`.
    pub async fn start(org_project: &str, token: &str) -> anyhow::Result<Self> {
        let (org, project) = org_project
            .split_once('/')
            .ok_or_else(|| anyhow::anyhow!("organization/project"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Mutex::new(Inner {
            org: org.to_owned(),
            project: project.to_owned(),
            token: token.to_owned(),
            base: format!("http://{addr}"),
            tick: 0,
            items: Vec::new(),
            comments: Vec::new(),
            throttle: None,
            requests: Vec::new(),
        }));
        let app = Router::new()
            .route("/{org}/{project}/_apis/wit/wiql", post(wiql))
            .route("/{org}/{project}/_apis/wit/workitems", get(list_items))
            .route(
                "/{org}/{project}/_apis/wit/workitems/{id}",
                axum::routing::patch(update_item),
            )
            .route(
                "/{org}/{project}/_apis/wit/workItems/{id}/comments",
                get(list_comments).post(add_comment),
            )
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, inner })
    }

    /// The base URL (`http://127.0.0.1:PORT`, standing for `https://dev.azure.com`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates a work item in state `New`; its id.
    pub fn add_work_item(&self, title: &str, description_html: &str, tags: &[&str]) -> i64 {
        let mut s = lock(&self.inner);
        let now = s.now();
        let id = s.items.len() as i64 + 1;
        s.items.push(WorkItem {
            id,
            title: title.to_owned(),
            description: description_html.to_owned(),
            state: "New".into(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            changed: now,
            rev: 1,
        });
        id
    }

    /// Moves a work item to `state`, as someone on Azure DevOps would.
    pub fn set_state(&self, id: i64, state: &str) {
        let mut s = lock(&self.inner);
        let now = s.now();
        if let Some(w) = s.items.iter_mut().find(|w| w.id == id) {
            w.state = state.to_owned();
            w.changed = now;
            w.rev += 1;
        }
    }

    /// Comments on a work item as `author` (HTML); the comment's id.
    pub fn comment(&self, id: i64, author: &str, html: &str) -> i64 {
        add(&mut lock(&self.inner), id, author, html)
    }

    /// A work item as the API shows it.
    pub fn work_item(&self, id: i64) -> Value {
        let s = lock(&self.inner);
        s.items
            .iter()
            .find(|w| w.id == id)
            .map(|w| s.item_json(w))
            .unwrap_or(Value::Null)
    }

    /// A work item's comments as the API shows them, oldest first.
    pub fn comments_on(&self, id: i64) -> Vec<Value> {
        let s = lock(&self.inner);
        s.comments
            .iter()
            .filter(|c| c.item == id)
            .map(|c| s.comment_json(c))
            .collect()
    }

    /// Throttles every call from now on: 429 with `Retry-After: secs`.
    pub fn throttle(&self, secs: i64) {
        lock(&self.inner).throttle = Some(secs);
    }

    /// The requests received so far (`METHOD /path?query`), oldest first.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.inner).requests.clone()
    }
}

fn add(s: &mut Inner, id: i64, author: &str, text: &str) -> i64 {
    let now = s.now();
    let cid = 5_000_000 + s.comments.len() as i64 + 1;
    s.comments.push(Comment {
        id: cid,
        item: id,
        author: author.to_owned(),
        text: text.to_owned(),
        created: now,
    });
    if let Some(w) = s.items.iter_mut().find(|w| w.id == id) {
        w.changed = now;
        w.rev += 1;
    }
    cid
}

fn problem(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "$id": "1",
            "innerException": null,
            "message": message,
            "typeName": "Microsoft.TeamFoundation.WorkItemTracking.Server.WorkItemTrackingException",
            "typeKey": "WorkItemTrackingException",
            "errorCode": 0,
            "eventId": 3200
        })),
    )
        .into_response()
}

/// Notes the request; checks the token, the throttle and the project.
fn admit(
    s: &mut Inner,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    org: &str,
    project: &str,
) -> Result<(), Box<Response>> {
    s.requests.push(format!("{method} {uri}"));
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(":{}", s.token))
    );
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(&expected)
    {
        return Err(Box::new(StatusCode::UNAUTHORIZED.into_response()));
    }
    if let Some(secs) = s.throttle {
        let mut r = problem(
            StatusCode::TOO_MANY_REQUESTS,
            "TF400733: The request has been canceled: the rate limit was exceeded.",
        );
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r.headers_mut()
            .insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        return Err(Box::new(r));
    }
    if org != s.org || project != s.project {
        return Err(Box::new(problem(
            StatusCode::NOT_FOUND,
            "TF200016: The following project does not exist.",
        )));
    }
    Ok(())
}

type Params = Query<std::collections::HashMap<String, String>>;

async fn wiql(
    State(st): State<Shared>,
    Path((org, project)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = lock(&st);
    if let Err(r) = admit(&mut s, &method, &uri, &headers, &org, &project) {
        return *r;
    }
    let query: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let text = query["query"].as_str().unwrap_or_default();
    if !text.contains("@project") {
        return problem(
            StatusCode::BAD_REQUEST,
            "TF51005: The query references a field that does not exist.",
        );
    }
    let since = text
        .split("[System.ChangedDate] >= '")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
        .map(|t| t.unix_timestamp());
    let mut found: Vec<&WorkItem> = s
        .items
        .iter()
        .filter(|w| since.is_none_or(|t| w.changed >= t))
        .collect();
    found.sort_by_key(|w| w.changed);
    let ids: Vec<Value> = found
        .iter()
        .map(|w| json!({"id": w.id, "url": format!("{}/_apis/wit/workItems/{}", s.base, w.id)}))
        .collect();
    axum::Json(json!({
        "queryType": "flat",
        "queryResultType": "workItem",
        "asOf": iso(EPOCH + s.tick),
        "columns": [{"referenceName": "System.Id", "name": "ID"}],
        "sortColumns": [{"field": {"referenceName": "System.ChangedDate"}, "descending": false}],
        "workItems": ids
    }))
    .into_response()
}

async fn list_items(
    State(st): State<Shared>,
    Path((org, project)): Path<(String, String)>,
    Query(q): Params,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut s = lock(&st);
    if let Err(r) = admit(&mut s, &method, &uri, &headers, &org, &project) {
        return *r;
    }
    let ids: Vec<i64> = q
        .get("ids")
        .map(|v| v.split(',').filter_map(|i| i.trim().parse().ok()).collect())
        .unwrap_or_default();
    if ids.len() > 200 {
        return problem(StatusCode::BAD_REQUEST, "VS403474: at most 200 work items.");
    }
    let value: Vec<Value> = ids
        .iter()
        .filter_map(|id| s.items.iter().find(|w| w.id == *id))
        .map(|w| s.item_json(w))
        .collect();
    axum::Json(json!({"count": value.len(), "value": value})).into_response()
}

async fn update_item(
    State(st): State<Shared>,
    Path((org, project, id)): Path<(String, String, i64)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = lock(&st);
    if let Err(r) = admit(&mut s, &method, &uri, &headers, &org, &project) {
        return *r;
    }
    if headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        != Some("application/json-patch+json")
    {
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "VS402371: a JSON Patch document is expected.",
        );
    }
    let patch: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let now = s.now();
    let Some(pos) = s.items.iter().position(|w| w.id == id) else {
        return problem(StatusCode::NOT_FOUND, "TF401232: Work item does not exist.");
    };
    for op in patch.as_array().into_iter().flatten() {
        if op["path"] == "/fields/System.State" {
            let state = op["value"].as_str().unwrap_or_default();
            if !STATES.contains(&state) {
                return problem(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "TF401320: Rule Error for field State. Error code: Required, HasValues, LimitedToValues, AllowsOldValue, InvalidEmpty. ({state})"
                    ),
                );
            }
            s.items[pos].state = state.to_owned();
        }
    }
    s.items[pos].changed = now;
    s.items[pos].rev += 1;
    let w = s.items[pos].clone();
    axum::Json(s.item_json(&w)).into_response()
}

async fn list_comments(
    State(st): State<Shared>,
    Path((org, project, id)): Path<(String, String, i64)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut s = lock(&st);
    if let Err(r) = admit(&mut s, &method, &uri, &headers, &org, &project) {
        return *r;
    }
    let comments: Vec<Value> = s
        .comments
        .iter()
        .filter(|c| c.item == id)
        .map(|c| s.comment_json(c))
        .collect();
    axum::Json(
        json!({"totalCount": comments.len(), "count": comments.len(),
        "comments": comments, "continuationToken": null}),
    )
    .into_response()
}

async fn add_comment(
    State(st): State<Shared>,
    Path((org, project, id)): Path<(String, String, i64)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = lock(&st);
    if let Err(r) = admit(&mut s, &method, &uri, &headers, &org, &project) {
        return *r;
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(text) = v["text"].as_str() else {
        return problem(StatusCode::BAD_REQUEST, "VS403613: text is required.");
    };
    if !s.items.iter().any(|w| w.id == id) {
        return problem(StatusCode::NOT_FOUND, "TF401232: Work item does not exist.");
    }
    let cid = add(&mut s, id, "Warden Bot", text);
    let c = s.comments.iter().find(|c| c.id == cid).cloned();
    match c {
        Some(c) => (StatusCode::OK, axum::Json(s.comment_json(&c))).into_response(),
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
