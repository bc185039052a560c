//! `warden org …`: organizations (multi-tenant mode) through the API with the credentials
//! `warden login` saved. `switch` changes the organization the saved sign-in acts in; every
//! later command acts there (the server keeps it with the session).

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use crate::client::{connect, text};
use crate::output::print;

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// The organizations this sign-in may act in; `*` marks the current one.
    List,
    /// Act in another organization (its slug or id; `default` for the default one).
    Switch {
        /// Slug or id.
        org: String,
    },
    /// Create an organization (platform administrators; the `multi-tenant` licence flag).
    Create {
        /// Short name: lower-case letters, digits and hyphens.
        #[arg(long, short)]
        slug: String,
        /// Display name.
        #[arg(long, short)]
        name: String,
    },
    /// The current organization's members (its admins, or a platform administrator).
    Members {
        /// Slug or id (the current organization).
        org: String,
    },
    /// Add a person by email, or change a member's role.
    AddMember {
        /// Slug or id (the current organization).
        org: String,
        /// The account's email.
        email: String,
        /// admin or member.
        #[arg(long, short, default_value = "member")]
        role: String,
    },
    /// Give a single sign-on provider to the organization (its sign-ins act there; a person
    /// signing in through it for the first time joins it), or take it back with `--remove`.
    Provider {
        /// Slug or id (the current organization).
        org: String,
        /// The provider's slug.
        slug: String,
        /// Take it back: it signs people in for the installation again.
        #[arg(long)]
        remove: bool,
    },
    /// Remove a member.
    RemoveMember {
        /// Slug or id (the current organization).
        org: String,
        /// The member's account id.
        user_id: String,
    },
    /// Show the organization's settings, or change them with the options given.
    Settings {
        /// Slug or id (the current organization).
        org: String,
        /// A new display name.
        #[arg(long)]
        name: Option<String>,
        /// The email domains its members' addresses must be in, comma-separated (`""`: any).
        #[arg(long)]
        email_domains: Option<String>,
        /// How many active workspaces it may hold (`none`: no limit); platform administrators.
        #[arg(long)]
        max_workspaces: Option<String>,
    },
    /// The organization's usage per workspace over the last days.
    Usage {
        /// Slug or id (the current organization).
        org: String,
        /// Days back (1–366).
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
    /// The organization's audit events, newest first.
    Audit {
        /// Slug or id (the current organization).
        org: String,
        /// Actions starting with this (`workspace.`, `organization.member`).
        #[arg(long)]
        action: Option<String>,
        /// How many (at most 500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// The body of a settings change from the command's options (`None`: nothing to change).
fn settings_change(
    name: Option<String>,
    email_domains: Option<String>,
    max_workspaces: Option<String>,
) -> Result<Option<serde_json::Value>> {
    let mut body = serde_json::Map::new();
    if let Some(name) = name {
        body.insert("name".into(), json!(name));
    }
    if let Some(domains) = email_domains {
        let list: Vec<&str> = domains
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|d| !d.is_empty())
            .collect();
        body.insert("email_domains".into(), json!(list));
    }
    if let Some(limit) = max_workspaces {
        let value =
            if limit == "none" {
                serde_json::Value::Null
            } else {
                json!(limit.parse::<i64>().map_err(|_| anyhow::anyhow!(
                    "--max-workspaces takes a whole number or `none`"
                ))?)
            };
        body.insert("max_workspaces".into(), value);
    }
    Ok((!body.is_empty()).then_some(serde_json::Value::Object(body)))
}

/// Runs a `warden org` command.
pub async fn run(credentials: Option<PathBuf>, command: OrgCommand) -> Result<()> {
    let api = connect(credentials).await?;
    match command {
        OrgCommand::List => {
            let all = api.call(Method::GET, "/api/v1/organizations", None).await?;
            print("   SLUG  NAME  ROLE  ID");
            for o in all["items"].as_array().into_iter().flatten() {
                let mark = if o["current"].as_bool() == Some(true) {
                    "*"
                } else {
                    " "
                };
                print(&format!(
                    "{mark}  {}  {}  {}  {}",
                    text(&o["slug"]),
                    text(&o["name"]),
                    text(&o["role"]),
                    text(&o["id"]),
                ));
            }
        }
        OrgCommand::Switch { org } => {
            let v = api
                .call(
                    Method::POST,
                    "/api/v1/auth/organization",
                    Some(json!({ "organization": org })),
                )
                .await?;
            print(&format!(
                "now acting in {} ({})",
                text(&v["organization"]["slug"]),
                text(&v["organization"]["name"]),
            ));
        }
        OrgCommand::Create { slug, name } => {
            let o = api
                .call(
                    Method::POST,
                    "/api/v1/organizations",
                    Some(json!({"slug": slug, "name": name})),
                )
                .await?;
            print(&format!(
                "organization {} created: {}",
                text(&o["slug"]),
                text(&o["id"])
            ));
        }
        OrgCommand::Members { org } => {
            let v = api
                .call(
                    Method::GET,
                    &format!("/api/v1/organizations/{org}/members"),
                    None,
                )
                .await?;
            print("USER  EMAIL  ROLE  ADDED");
            for m in v["items"].as_array().into_iter().flatten() {
                print(&format!(
                    "{}  {}  {}  {}",
                    text(&m["user_id"]),
                    text(&m["email"]),
                    text(&m["role"]),
                    text(&m["added_at"]),
                ));
            }
        }
        OrgCommand::AddMember { org, email, role } => {
            let m = api
                .call(
                    Method::POST,
                    &format!("/api/v1/organizations/{org}/members"),
                    Some(json!({"email": email, "role": role})),
                )
                .await?;
            print(&format!(
                "{} is {} of {org}",
                text(&m["email"]),
                text(&m["role"])
            ));
        }
        OrgCommand::Provider { org, slug, remove } => {
            let method = if remove { Method::DELETE } else { Method::PUT };
            api.call(
                method,
                &format!("/api/v1/organizations/{org}/sso-providers/{slug}"),
                None,
            )
            .await?;
            if remove {
                print(&format!(
                    "provider {slug} signs people in for the installation again"
                ));
            } else {
                print(&format!("provider {slug} now signs people in to {org}"));
            }
        }
        OrgCommand::RemoveMember { org, user_id } => {
            api.call(
                Method::DELETE,
                &format!("/api/v1/organizations/{org}/members/{user_id}"),
                None,
            )
            .await?;
            print(&format!("{user_id} removed from {org}"));
        }
        OrgCommand::Settings {
            org,
            name,
            email_domains,
            max_workspaces,
        } => {
            let path = format!("/api/v1/organizations/{org}/settings");
            let v = match settings_change(name, email_domains, max_workspaces)? {
                Some(body) => api.call(Method::PATCH, &path, Some(body)).await?,
                None => api.call(Method::GET, &path, None).await?,
            };
            let domains: Vec<&str> = v["email_domains"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d.as_str())
                .collect();
            print(&format!("name            {}", text(&v["name"])));
            print(&format!(
                "email domains   {}",
                if domains.is_empty() {
                    "any".to_owned()
                } else {
                    domains.join(", ")
                }
            ));
            print(&format!(
                "max workspaces  {}",
                v["max_workspaces"]
                    .as_i64()
                    .map_or_else(|| "no limit".to_owned(), |n| n.to_string())
            ));
        }
        OrgCommand::Usage { org, days } => {
            let v = api
                .call(
                    Method::GET,
                    &format!("/api/v1/organizations/{org}/usage?days={days}"),
                    None,
                )
                .await?;
            print("WORKSPACE  MEMBERS  SESSIONS  RUNNING  RUNS  MODEL CALLS  TOKENS");
            let line = |name: &str, w: &serde_json::Value| {
                format!(
                    "{name}  {}  {}  {}  {}  {}  {}",
                    w["members"],
                    w["sessions"],
                    w["active_sessions"],
                    w["automation_runs"],
                    w["llm_requests"],
                    w["llm_tokens"]
                )
            };
            for w in v["workspaces"].as_array().into_iter().flatten() {
                print(&line(&text(&w["name"]), w));
            }
            print(&line("TOTAL", &v["totals"]));
        }
        OrgCommand::Audit { org, action, limit } => {
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.append_pair("limit", &limit.to_string());
            if let Some(action) = &action {
                query.append_pair("action", action);
            }
            let v = api
                .call(
                    Method::GET,
                    &format!(
                        "/api/v1/organizations/{org}/audit/events?{}",
                        query.finish()
                    ),
                    None,
                )
                .await?;
            print("SEQ  TIME  ACTION  OUTCOME  ACTOR  RESOURCE");
            for e in v["events"].as_array().into_iter().flatten() {
                print(&format!(
                    "{}  {}  {}  {}  {}  {} {}",
                    e["seq"],
                    text(&e["time"]),
                    text(&e["action"]),
                    text(&e["outcome"]),
                    text(&e["actor_id"]),
                    text(&e["resource_type"]),
                    text(&e["resource_id"]),
                ));
            }
        }
    }
    Ok(())
}
