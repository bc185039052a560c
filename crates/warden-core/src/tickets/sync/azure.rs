//! The part of Azure DevOps' REST API (7.1) ticket sync uses, for a project's work items: a
//! WIQL query for the work items changed since the cursor, the items read 200 at a time,
//! their comments read per changed item (`7.1-preview.4`), a state set with a JSON Patch, a
//! comment added. The project is `organization/project` (a collection on Azure DevOps
//! Server, whose base URL is then `https://host/tfs`); the token is sent as Basic
//! authentication, as Azure DevOps asks for personal access tokens. Descriptions and
//! comments are HTML there: they are reduced to their text here, and comments written in
//! Warden go out rendered (by the same safe renderer the console uses).

use std::sync::Mutex;

use base64::Engine;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use warden_domain::tenancy::TicketConfig;

use super::http::{CallError, Http, Now};
use super::tracker::{Page, RemoteComment, RemoteIssue};

/// Where Azure DevOps Services is when the ticket source names no `base_url`.
pub const DEFAULT_BASE: &str = "https://dev.azure.com";
/// Work items read per call.
const BATCH: usize = 200;
/// Work items a query returns at most; the next run goes on from the newest change seen.
const QUERY_TOP: &str = "2000";

const FIELDS: &str = "System.Id,System.Title,System.Description,System.State,System.Tags,\
     System.ChangedDate";

/// The states the sync sets, by the project's process (defaults fit Scrum; Agile closes
/// with `Closed`, Basic reopens to `To Do`).
#[derive(Debug, Clone)]
struct States {
    done: String,
    rejected: String,
    open: String,
}

/// A project's work items, through Azure DevOps' API, with the workspace's token.
#[derive(Debug)]
pub struct AzureDevOps {
    http: Http,
    /// `{base}/{organization}/{project}/_apis`, its segments encoded.
    api: url::Url,
    /// `{base}/{organization}/{project}`, for people's links.
    web: String,
    states: States,
    /// The ids the current query found, read a batch at a time.
    found: Mutex<Vec<i64>>,
}

#[derive(Deserialize)]
struct WiqlResult {
    #[serde(rename = "workItems", default)]
    work_items: Vec<WiqlItem>,
}

#[derive(Deserialize)]
struct WiqlItem {
    id: i64,
}

#[derive(Deserialize)]
struct Items {
    #[serde(default)]
    value: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    id: i64,
    #[serde(default)]
    fields: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct Comments {
    #[serde(default)]
    comments: Vec<ItemComment>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ItemComment {
    comment_id: i64,
    #[serde(default)]
    text: String,
    #[serde(default)]
    created_by: Option<Identity>,
    #[serde(default)]
    created_date: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Identity {
    #[serde(default)]
    display_name: String,
}

impl AzureDevOps {
    /// A client for the source's `organization/project`.
    pub fn new(
        config: &TicketConfig,
        token: &str,
        allow_private: bool,
        now: Now,
    ) -> Result<Self, CallError> {
        let base = config.base_url.as_deref().unwrap_or(DEFAULT_BASE);
        let Some((org, project)) = config.project.split_once('/') else {
            return Err(CallError::Refused(
                "an Azure DevOps project is written organization/project".into(),
            ));
        };
        let part_ok = |p: &str| {
            !p.trim().is_empty()
                && p.len() <= 128
                && !p.contains(['/', '\\', '?', '#', '%'])
                && !p.chars().any(char::is_control)
                && p != "."
                && p != ".."
        };
        if !part_ok(org) || !part_ok(project) {
            return Err(CallError::Refused(
                "an Azure DevOps project is written organization/project".into(),
            ));
        }
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(":{token}"));
        let auth = HeaderValue::from_str(&format!("Basic {basic}")).map_err(|_| {
            CallError::Refused("the personal access token is not a header value".into())
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        let http = Http::new(
            "Azure DevOps",
            base,
            format!("project {}", config.project),
            auth,
            headers,
            allow_private,
            now,
        )?;
        let mut web = url::Url::parse(http.base())
            .map_err(|_| CallError::Refused("the tracker's address is not a URL".into()))?;
        web.path_segments_mut()
            .map_err(|()| CallError::Refused("the tracker's address cannot have a path".into()))?
            .pop_if_empty()
            .push(org)
            .push(project);
        let mut api = web.clone();
        if let Ok(mut s) = api.path_segments_mut() {
            s.push("_apis");
        }
        let states = config.states.as_ref();
        Ok(Self {
            http,
            web: web.to_string(),
            api,
            states: States {
                done: states.map_or("Done", |s| s.done.as_str()).to_owned(),
                rejected: states.map_or("Removed", |s| s.rejected.as_str()).to_owned(),
                open: states.map_or("New", |s| s.open.as_str()).to_owned(),
            },
            found: Mutex::new(Vec::new()),
        })
    }

    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> String {
        let mut u = self.api.clone();
        if let Ok(mut s) = u.path_segments_mut() {
            s.extend(segments);
        }
        u.query_pairs_mut().extend_pairs(query.iter().copied());
        u.to_string()
    }

    fn state_of(&self, name: &str) -> &'static str {
        let is = |a: &str| name.eq_ignore_ascii_case(a);
        if is(&self.states.rejected) || is("Removed") || is("Cut") {
            super::CLOSED_NOT_PLANNED
        } else if is(&self.states.done) || is("Done") || is("Closed") || is("Completed") {
            super::CLOSED_COMPLETED
        } else {
            super::OPEN
        }
    }

    /// Work items changed since `since` (RFC 3339), oldest change first; `page` continues.
    pub async fn issues(
        &self,
        since: Option<&str>,
        page: Option<&str>,
    ) -> Result<Page<RemoteIssue>, CallError> {
        let batch: usize = match page {
            Some(p) => p.parse().map_err(|_| {
                CallError::Refused("a page of Azure DevOps work items is a number".into())
            })?,
            None => {
                let ids = self.query(since).await?;
                *self.found.lock().map_err(|_| poisoned())? = ids;
                0
            }
        };
        let ids: Vec<i64> = {
            let found = self.found.lock().map_err(|_| poisoned())?;
            found
                .iter()
                .skip(batch * BATCH)
                .take(BATCH)
                .copied()
                .collect()
        };
        let more = {
            let found = self.found.lock().map_err(|_| poisoned())?;
            found.len() > (batch + 1) * BATCH
        };
        if ids.is_empty() {
            return Ok(Page {
                items: Vec::new(),
                next: None,
                cursor: None,
            });
        }
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let url = self.url(
            &["wit", "workitems"],
            &[("ids", &list), ("fields", FIELDS), ("api-version", "7.1")],
        );
        let (_, bytes) = self.http.send(reqwest::Method::GET, &url, None).await?;
        let items: Items = self.http.parse(&bytes)?;
        let mut newest: Option<time::OffsetDateTime> = None;
        let mut out = Vec::with_capacity(items.value.len());
        for item in items.value {
            let field = |name: &str| {
                item.fields
                    .get(name)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            if let Ok(changed) = time::OffsetDateTime::parse(&field("System.ChangedDate"), &Rfc3339)
            {
                newest = Some(newest.map_or(changed, |n| n.max(changed)));
            }
            out.push(RemoteIssue {
                id: item.id.to_string(),
                title: field("System.Title"),
                body: html_to_text(&field("System.Description")),
                state: self.state_of(&field("System.State")),
                labels: field("System.Tags")
                    .split(';')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect(),
                url: format!("{}/_workitems/edit/{}", self.web, item.id),
            });
        }
        Ok(Page {
            items: out,
            next: more.then(|| (batch + 1).to_string()),
            cursor: newest.and_then(|n| n.format(&Rfc3339).ok()),
        })
    }

    /// The ids of the project's work items changed since `since`, oldest change first.
    async fn query(&self, since: Option<&str>) -> Result<Vec<i64>, CallError> {
        // The cursor is re-formatted from a parsed time: nothing from outside reaches WIQL.
        let since = since
            .and_then(|s| time::OffsetDateTime::parse(s, &Rfc3339).ok())
            .and_then(|t| t.format(&Rfc3339).ok());
        let wiql = match since {
            Some(s) => format!(
                "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project \
                 AND [System.ChangedDate] >= '{s}' ORDER BY [System.ChangedDate] ASC"
            ),
            None => "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project \
                     ORDER BY [System.ChangedDate] ASC"
                .to_owned(),
        };
        let url = self.url(
            &["wit", "wiql"],
            &[
                ("timePrecision", "true"),
                ("$top", QUERY_TOP),
                ("api-version", "7.1"),
            ],
        );
        let body = json!({ "query": wiql }).to_string().into_bytes();
        let (_, bytes) = self
            .http
            .send(
                reqwest::Method::POST,
                &url,
                Some(("application/json", body)),
            )
            .await?;
        let found: WiqlResult = self.http.parse(&bytes)?;
        Ok(found.work_items.into_iter().map(|w| w.id).collect())
    }

    /// The comments of the work items this run saw change, one item per page.
    pub async fn comments(
        &self,
        page: Option<&str>,
        changed: &[String],
    ) -> Result<Page<RemoteComment>, CallError> {
        let at: usize = page.and_then(|p| p.parse().ok()).unwrap_or(0);
        let Some(id) = changed.get(at) else {
            return Ok(Page {
                items: Vec::new(),
                next: None,
                cursor: None,
            });
        };
        let id = work_item(id)?;
        let url = self.url(
            &["wit", "workItems", &id.to_string(), "comments"],
            &[("$top", "200"), ("api-version", "7.1-preview.4")],
        );
        let (_, bytes) = self.http.send(reqwest::Method::GET, &url, None).await?;
        let list: Comments = self.http.parse(&bytes)?;
        let items = list
            .comments
            .into_iter()
            .map(|c| RemoteComment {
                id: c.comment_id.to_string(),
                issue: id.to_string(),
                // The marker of a comment sent from Warden survives as long as the HTML does.
                body: match super::super::comments::marked_id(&c.text) {
                    Some(m) => format!(
                        "{}\n\n{}",
                        html_to_text(&c.text),
                        super::super::comments::marker(m)
                    ),
                    None => html_to_text(&c.text),
                },
                author: c
                    .created_by
                    .map(|i| i.display_name)
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "someone on Azure DevOps".to_owned()),
                created_at: c.created_date,
            })
            .collect();
        Ok(Page {
            items,
            next: (at + 1 < changed.len()).then(|| (at + 1).to_string()),
            cursor: None,
        })
    }

    /// Sets a work item's state to the project's name for `state`.
    pub async fn set_state(&self, id: &str, state: &str) -> Result<(), CallError> {
        let name = match state {
            super::CLOSED_COMPLETED => &self.states.done,
            super::CLOSED_NOT_PLANNED => &self.states.rejected,
            _ => &self.states.open,
        };
        let url = self.url(
            &["wit", "workitems", &work_item(id)?.to_string()],
            &[("api-version", "7.1")],
        );
        let patch = json!([{ "op": "add", "path": "/fields/System.State", "value": name }]);
        self.http
            .send(
                reqwest::Method::PATCH,
                &url,
                Some((
                    "application/json-patch+json",
                    patch.to_string().into_bytes(),
                )),
            )
            .await
            .map(drop)
    }

    /// Adds a comment, rendered from Markdown, with `marker`; its id.
    pub async fn add_comment(
        &self,
        id: &str,
        markdown: &str,
        marker: &str,
    ) -> Result<String, CallError> {
        let url = self.url(
            &["wit", "workItems", &work_item(id)?.to_string(), "comments"],
            &[("api-version", "7.1-preview.4")],
        );
        let html = format!("{}{marker}", super::super::markdown::render(markdown));
        let body = json!({ "text": html }).to_string().into_bytes();
        let (_, bytes) = self
            .http
            .send(
                reqwest::Method::POST,
                &url,
                Some(("application/json", body)),
            )
            .await?;
        let made: ItemComment = self.http.parse(&bytes)?;
        Ok(made.comment_id.to_string())
    }
}

fn work_item(id: &str) -> Result<i64, CallError> {
    id.parse()
        .map_err(|_| CallError::Refused("an Azure DevOps work item is named by its id".into()))
}

fn poisoned() -> CallError {
    CallError::Unreachable("the work item list is unusable".into())
}

/// An HTML description or comment as text: block ends become line breaks, every tag goes
/// (ammonia with nothing allowed), entities stay escaped (Markdown shows them as written).
fn html_to_text(html: &str) -> String {
    let mut spaced = html.to_owned();
    for end in [
        "</div>", "</p>", "<br>", "<br/>", "<br />", "</li>", "</h1>", "</h2>", "</h3>",
    ] {
        spaced = spaced.replace(end, &format!("{end}\n"));
        spaced = spaced.replace(&end.to_uppercase(), &format!("{end}\n"));
    }
    let text = ammonia::Builder::empty().clean(&spaced).to_string();
    text.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_reduced_to_its_text() {
        assert_eq!(
            html_to_text(
                "<div>Steps:</div><div><b>sign in</b> &amp; wait<br>then <script>x()</script>look</div>"
            ),
            "Steps:\nsign in &amp; wait\nthen look"
        );
    }
}
