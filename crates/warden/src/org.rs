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
    }
    Ok(())
}
