//! `warden scim …`: the tokens a directory (Entra ID, Okta) provisions with over SCIM, through
//! the API with the credentials `warden login` saved. A new token's secret is printed once.

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
    }
    Ok(())
}
