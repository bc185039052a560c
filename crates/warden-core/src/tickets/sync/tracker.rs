//! A tracker as the sync sees it, whichever it is: issues and comments changed since a
//! cursor, a state set, a comment added. GitHub issues (`github.rs`) and Azure DevOps work
//! items (`azure.rs`) answer in these terms.

use warden_domain::tenancy::{TicketConfig, TicketProvider};
use zeroize::Zeroizing;

use super::azure::AzureDevOps;
use super::github::GitHub;
use super::http::{CallError, Now};

/// An issue or work item.
#[derive(Debug, Clone)]
pub struct RemoteIssue {
    /// The tracker's id for it (an issue number, a work item id).
    pub id: String,
    /// Title.
    pub title: String,
    /// Body, as Markdown (an HTML description is reduced to its text).
    pub body: String,
    /// `open`, `closed:completed` or `closed:not_planned`.
    pub state: &'static str,
    /// Labels or tags.
    pub labels: Vec<String>,
    /// Its page, for people.
    pub url: String,
}

/// A comment on one.
#[derive(Debug, Clone)]
pub struct RemoteComment {
    /// The tracker's id for it.
    pub id: String,
    /// The issue it is on.
    pub issue: String,
    /// Body.
    pub body: String,
    /// Who wrote it.
    pub author: String,
    /// Written (RFC 3339).
    pub created_at: String,
}

/// One page of changes.
#[derive(Debug)]
pub struct Page<T> {
    /// Its items (pull requests left out).
    pub items: Vec<T>,
    /// Where the next page is, if any.
    pub next: Option<String>,
    /// The newest change on this page: reading resumes there.
    pub cursor: Option<String>,
}

/// A tracker the sync talks to.
#[derive(Debug)]
pub enum Tracker {
    /// GitHub issues.
    GitHub(GitHub),
    /// Azure DevOps work items.
    AzureDevOps(AzureDevOps),
}

impl Tracker {
    /// Whether Warden syncs tickets with this tracker.
    pub fn syncs(provider: TicketProvider) -> bool {
        matches!(
            provider,
            TicketProvider::Github | TicketProvider::AzureDevops
        )
    }

    /// The client for a ticket source.
    pub fn for_source(
        config: &TicketConfig,
        token: Zeroizing<String>,
        allow_private: bool,
        now: Now,
    ) -> Result<Self, CallError> {
        match config.provider {
            TicketProvider::Github => GitHub::new(
                config
                    .base_url
                    .as_deref()
                    .unwrap_or(super::github::DEFAULT_BASE),
                &config.project,
                &token,
                allow_private,
                now,
            )
            .map(Self::GitHub),
            TicketProvider::AzureDevops => {
                AzureDevOps::new(config, &token, allow_private, now).map(Self::AzureDevOps)
            }
            _ => Err(CallError::Refused(
                "tickets from this tracker are not synced".into(),
            )),
        }
    }

    /// The tracker's name as people know it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::GitHub(_) => "GitHub",
            Self::AzureDevOps(_) => "Azure DevOps",
        }
    }

    /// Issues changed since `since`, oldest change first; `page` continues a listing.
    pub async fn issues(
        &self,
        since: Option<&str>,
        page: Option<&str>,
    ) -> Result<Page<RemoteIssue>, CallError> {
        match self {
            Self::GitHub(g) => g.issues(since, page).await,
            Self::AzureDevOps(a) => a.issues(since, page).await,
        }
    }

    /// Comments changed since `since`; `changed` names the issues this run saw change (a
    /// tracker that lists comments per issue reads theirs).
    pub async fn comments(
        &self,
        since: Option<&str>,
        page: Option<&str>,
        changed: &[String],
    ) -> Result<Page<RemoteComment>, CallError> {
        match self {
            Self::GitHub(g) => g.comments(since, page).await,
            Self::AzureDevOps(a) => a.comments(page, changed).await,
        }
    }

    /// Sets an issue's state.
    pub async fn set_state(&self, id: &str, state: &str) -> Result<(), CallError> {
        match self {
            Self::GitHub(g) => g.set_state(id, state).await,
            Self::AzureDevOps(a) => a.set_state(id, state).await,
        }
    }

    /// Adds a comment (Markdown) carrying `marker`; the tracker's id for it.
    pub async fn add_comment(
        &self,
        id: &str,
        markdown: &str,
        marker: &str,
    ) -> Result<String, CallError> {
        match self {
            Self::GitHub(g) => g.add_comment(id, &format!("{markdown}\n\n{marker}")).await,
            Self::AzureDevOps(a) => a.add_comment(id, markdown, marker).await,
        }
    }
}
