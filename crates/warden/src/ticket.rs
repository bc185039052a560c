//! `warden ticket …`: a workspace's tickets from a terminal — list and search, write, read,
//! move through the workflow (optionally opening the development session) and delete —
//! through the API with the credentials `warden login` saved.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use crate::client::{connect, text};
use crate::output::print;
use crate::workspace::{segment, workspace_id};

#[derive(Debug, Subcommand)]
pub enum TicketCommand {
    /// The workspace's tickets, newest first.
    List {
        /// Words in the title or body.
        #[arg(long, short)]
        query: Option<String>,
        /// Only this status: backlog, ready_for_development, in_development, ready_for_qa,
        /// done, rejected.
        #[arg(long)]
        status: Option<String>,
        /// Only tickets with this label.
        #[arg(long)]
        label: Option<String>,
    },
    /// Write a ticket into the backlog. Prints its number.
    Create {
        /// 1 to 200 characters.
        #[arg(long, short)]
        title: String,
        /// Markdown body.
        #[arg(long, default_value = "")]
        body: String,
        /// A label (repeat for more).
        #[arg(long = "label", short)]
        labels: Vec<String>,
    },
    /// One ticket: its text, status and sessions.
    Show {
        /// Number (or id).
        ticket: String,
    },
    /// Move a ticket: backlog → ready_for_development → in_development → ready_for_qa →
    /// done, or rejected (with --reason).
    Move {
        /// Number (or id).
        ticket: String,
        /// The status to move to.
        #[arg(long)]
        to: String,
        /// Why (needed to reject, to send work back from QA and to reopen).
        #[arg(long)]
        reason: Option<String>,
        /// When moving into development: open an agent session of this provider on the
        /// workspace's development prompt and the ticket.
        #[arg(long, value_name = "PROVIDER")]
        start: Option<String>,
        /// The host for that session (default: any the workspace may use).
        #[arg(long, value_name = "ID")]
        host: Option<String>,
    },
    /// Delete a ticket.
    Delete {
        /// Number (or id).
        ticket: String,
    },
    /// A ticket's comments, or (with --body) write one; on a synced ticket it goes to the
    /// tracker with the next sync.
    Comment {
        /// Number (or id).
        ticket: String,
        /// Markdown to write.
        #[arg(long)]
        body: Option<String>,
    },
    /// How the workspace's ticket sync stands (GitHub sources); --now runs it at once.
    Sync {
        /// Run it now (as soon as the tracker's rate limit allows).
        #[arg(long)]
        now: bool,
    },
}

/// Runs a `warden ticket` command.
pub async fn run(
    credentials: Option<PathBuf>,
    workspace: Option<String>,
    command: TicketCommand,
) -> Result<()> {
    let api = connect(credentials).await?;
    let ws = workspace.context("name the workspace: --workspace ID (or WARDEN_WORKSPACE)")?;
    let ws = workspace_id(&api, &ws).await?;
    let base = format!("/api/v1/workspaces/{ws}/tickets");
    match command {
        TicketCommand::List {
            query,
            status,
            label,
        } => {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in [("q", query), ("status", status), ("label", label)] {
                if let Some(v) = v {
                    q.append_pair(k, &v);
                }
            }
            let q = q.finish();
            let path = if q.is_empty() {
                base
            } else {
                format!("{base}?{q}")
            };
            let list = api.call(Method::GET, &path, None).await?;
            print("#     STATUS                 LABELS  TITLE");
            for t in list.as_array().into_iter().flatten() {
                let labels: Vec<String> = t["labels"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect();
                print(&format!(
                    "{:<5} {:<22} {}  {}",
                    text(&t["number"]),
                    text(&t["status"]),
                    if labels.is_empty() {
                        "-".to_owned()
                    } else {
                        labels.join(",")
                    },
                    text(&t["title"]),
                ));
            }
        }
        TicketCommand::Create {
            title,
            body,
            labels,
        } => {
            let t = api
                .call(
                    Method::POST,
                    &base,
                    Some(json!({"title": title, "body": body, "labels": labels})),
                )
                .await?;
            print(&text(&t["number"]));
        }
        TicketCommand::Show { ticket } => {
            let ticket = segment("ticket", &ticket)?;
            let t = api
                .call(Method::GET, &format!("{base}/{ticket}"), None)
                .await?;
            print(&format!("#{} {}", text(&t["number"]), text(&t["title"])));
            print(&format!("status: {}", text(&t["status"])));
            let sessions: Vec<String> = t["session_ids"]
                .as_array()
                .into_iter()
                .flatten()
                .map(text)
                .collect();
            if !sessions.is_empty() {
                print(&format!("sessions: {}", sessions.join(" ")));
            }
            print("");
            print(&text(&t["body"]));
        }
        TicketCommand::Move {
            ticket,
            to,
            reason,
            start,
            host,
        } => {
            let ticket = segment("ticket", &ticket)?;
            let mut body = json!({"to": to, "reason": reason});
            if let Some(provider) = start {
                body["session"] = json!({"provider": provider, "host_id": host});
            }
            let moved = api
                .call(Method::POST, &format!("{base}/{ticket}/move"), Some(body))
                .await?;
            print(&text(&moved["ticket"]["status"]));
            if !moved["session_id"].is_null() {
                print(&format!("session {}", text(&moved["session_id"])));
            }
        }
        TicketCommand::Delete { ticket } => {
            let ticket = segment("ticket", &ticket)?;
            api.call(Method::DELETE, &format!("{base}/{ticket}"), None)
                .await?;
        }
        TicketCommand::Comment { ticket, body } => {
            let path = format!("{base}/{}/comments", segment("ticket", &ticket)?);
            if let Some(body) = body {
                api.call(Method::POST, &path, Some(json!({ "body": body })))
                    .await?;
                return Ok(());
            }
            for c in api
                .call(Method::GET, &path, None)
                .await?
                .as_array()
                .into_iter()
                .flatten()
            {
                let origin = if c["from_tracker"] == true {
                    " (tracker)"
                } else {
                    ""
                };
                print(&format!(
                    "{} {}{origin}:",
                    text(&c["created_at"]),
                    text(&c["author_name"])
                ));
                print(&text(&c["body"]));
                print("");
            }
        }
        TicketCommand::Sync { now } => {
            let path = format!("/api/v1/workspaces/{ws}/ticket-sync");
            let s = if now {
                api.call(Method::POST, &path, None).await?
            } else {
                api.call(Method::GET, &path, None).await?
            };
            print(&format!("{} {}", text(&s["provider"]), text(&s["project"])));
            for (label, key) in [
                ("last run", "last_finished_at"),
                ("last success", "last_success_at"),
                ("next run", "next_at"),
                ("rate limited until", "rate_limited_until"),
                ("last error", "last_error"),
            ] {
                if !s[key].is_null() {
                    print(&format!("{label}: {}", text(&s[key])));
                }
            }
            print(&format!(
                "imported {}, sent {}",
                text(&s["imported"]),
                text(&s["pushed"])
            ));
        }
    }
    Ok(())
}
