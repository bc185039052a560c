//! `warden scim …`: the tokens a directory (Entra ID, Okta) provisions with over SCIM, and the
//! directory groups mapped to workspaces, through the API with the credentials `warden login`
//! saved. A new token's secret is printed once.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use crate::client::{connect, text};
use crate::output::print;

#[derive(Debug, Subcommand)]
pub enum ScimCommand {
    /// The SCIM tokens, newest first.
    Tokens,
    /// Create a token for a directory; prints the SCIM URL and the secret (shown once).
    CreateToken {
        /// Which directory will use it (`Entra ID`, `Okta`).
        #[arg(long, short)]
        name: String,
    },
    /// Revoke a token at once.
    RevokeToken {
        /// Token id.
        id: String,
    },
    /// The groups the directory provisioned.
    Groups,
    /// The directory groups mapped to a workspace.
    Mappings {
        /// Workspace id.
        #[arg(long, short)]
        workspace: String,
    },
    /// Map a directory group to a workspace: its members become members with ROLE, and the
    /// directory's changes to the group follow. Running it again resynchronises.
    MapGroup {
        /// Workspace id.
        #[arg(long, short)]
        workspace: String,
        /// The group's id or display name.
        #[arg(long, short)]
        group: String,
        /// owner, maintainer, member or viewer.
        #[arg(long, short, default_value = "member")]
        role: String,
    },
    /// Remove a group's mapping: the memberships it alone granted end.
    UnmapGroup {
        /// Workspace id.
        #[arg(long, short)]
        workspace: String,
        /// The group's id or display name.
        #[arg(long, short)]
        group: String,
    },
}

/// Every directory group (a page of 200 at a time).
async fn all_groups(api: &crate::client::Api) -> Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    loop {
        let path = format!("/api/v1/scim/groups?offset={}&limit=200", out.len());
        let page = api.call(Method::GET, &path, None).await?;
        let groups = page["groups"].as_array().cloned().unwrap_or_default();
        let total = page["total"].as_u64().unwrap_or(0);
        let done = groups.is_empty();
        out.extend(groups);
        if done || out.len() as u64 >= total {
            return Ok(out);
        }
    }
}

/// A group named by id, or by display name (without case).
async fn group_id(api: &crate::client::Api, group: &str) -> Result<String> {
    if uuid::Uuid::parse_str(group).is_ok() {
        return Ok(group.to_owned());
    }
    all_groups(api)
        .await?
        .iter()
        .find(|g| text(&g["display_name"]).eq_ignore_ascii_case(group))
        .map(|g| text(&g["id"]))
        .ok_or_else(|| anyhow::anyhow!("no directory group is called {group:?}"))
}

/// Runs a `warden scim` command.
pub async fn run(credentials: Option<PathBuf>, command: ScimCommand) -> Result<()> {
    let api = connect(credentials).await?;
    match command {
        ScimCommand::Tokens => {
            let all = api.call(Method::GET, "/api/v1/scim/tokens", None).await?;
            print("ID  NAME  CREATED  LAST USED  REVOKED");
            for t in all.as_array().into_iter().flatten() {
                print(&format!(
                    "{}  {}  {}  {}  {}",
                    text(&t["id"]),
                    text(&t["name"]),
                    text(&t["created_at"]),
                    text(&t["last_used_at"]),
                    text(&t["revoked_at"]),
                ));
            }
        }
        ScimCommand::CreateToken { name } => {
            let t = api
                .call(
                    Method::POST,
                    "/api/v1/scim/tokens",
                    Some(json!({"name": name})),
                )
                .await?;
            print(&format!(
                "token {} ({})",
                text(&t["token"]["id"]),
                text(&t["token"]["name"])
            ));
            print(&format!("SCIM URL: {}", text(&t["scim_url"])));
            print(&format!("secret (shown once): {}", text(&t["secret"])));
        }
        ScimCommand::RevokeToken { id } => {
            api.call(Method::DELETE, &format!("/api/v1/scim/tokens/{id}"), None)
                .await?;
            print(&format!("token {id} revoked"));
        }
        ScimCommand::Groups => {
            print("ID  NAME  EXTERNAL ID");
            for g in all_groups(&api).await? {
                print(&format!(
                    "{}  {}  {}",
                    text(&g["id"]),
                    text(&g["display_name"]),
                    text(&g["external_id"]),
                ));
            }
        }
        ScimCommand::Mappings { workspace } => {
            let path = format!("/api/v1/workspaces/{workspace}/directory-groups");
            let all = api.call(Method::GET, &path, None).await?;
            print("GROUP  SOURCE  NAME  ROLE  MEMBERS  CONFIGURED BY");
            for m in all.as_array().into_iter().flatten() {
                let source = if m["provider"].is_string() {
                    text(&m["provider"])
                } else {
                    "scim".to_owned()
                };
                print(&format!(
                    "{}  {}  {}  {}  {}  {}",
                    text(&m["group_id"]),
                    source,
                    text(&m["display_name"]),
                    text(&m["role"]),
                    text(&m["members"]),
                    text(&m["configured_by"]),
                ));
            }
        }
        ScimCommand::MapGroup {
            workspace,
            group,
            role,
        } => {
            let id = group_id(&api, &group).await?;
            let path = format!("/api/v1/workspaces/{workspace}/directory-groups/{id}");
            let v = api
                .call(Method::PUT, &path, Some(json!({ "role": role })))
                .await?;
            print(&format!(
                "group {} mapped as {}: {} added, {} changed, {} removed, {} skipped",
                text(&v["mapping"]["display_name"]),
                text(&v["mapping"]["role"]),
                text(&v["synced"]["added"]),
                text(&v["synced"]["changed"]),
                text(&v["synced"]["removed"]),
                text(&v["synced"]["skipped"]),
            ));
        }
        ScimCommand::UnmapGroup { workspace, group } => {
            let id = group_id(&api, &group).await?;
            let path = format!("/api/v1/workspaces/{workspace}/directory-groups/{id}");
            let v = api.call(Method::DELETE, &path, None).await?;
            print(&format!(
                "group unmapped: {} removed, {} changed, {} skipped",
                text(&v["removed"]),
                text(&v["changed"]),
                text(&v["skipped"]),
            ));
        }
    }
    Ok(())
}
