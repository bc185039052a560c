//! `warden host …`: host administration from a terminal, through the API with the
//! credentials `warden login` saved (so deleting or rejecting a host drops its live connection
//! at once, exactly as in the console).

use std::path::PathBuf;

use anyhow::Result;

use crate::cli::HostCommand;
use crate::client::{connect, text};
use crate::output::print;

/// Runs a `warden host` command.
pub async fn run(credentials: Option<PathBuf>, command: HostCommand) -> Result<()> {
    let api = connect(credentials).await?;
    match command {
        HostCommand::List => {
            let hosts = api
                .call(reqwest::Method::GET, "/api/v1/hosts", None)
                .await?;
            print(
                "ID                                    NAME  KIND  STATUS  ONLINE  LAST SEEN  VERSION  OS  IP",
            );
            for h in hosts.as_array().into_iter().flatten() {
                let online = if h["online"] == true {
                    "online"
                } else {
                    "offline"
                };
                print(&format!(
                    "{}  {}  {}  {}  {}  {}  {}  {}  {}",
                    text(&h["id"]),
                    text(&h["name"]),
                    text(&h["kind"]),
                    text(&h["status"]),
                    online,
                    text(&h["last_seen_at"]),
                    text(&h["agent_version"]),
                    text(&h["os"]),
                    text(&h["last_ip"]),
                ));
            }
        }
        HostCommand::Approve { id } => {
            let h = api
                .call(
                    reqwest::Method::POST,
                    &format!("/api/v1/hosts/{id}/approve"),
                    None,
                )
                .await?;
            print(&format!(
                "host {} is {}",
                text(&h["id"]),
                text(&h["status"])
            ));
        }
        HostCommand::Reject { id } => {
            let h = api
                .call(
                    reqwest::Method::POST,
                    &format!("/api/v1/hosts/{id}/reject"),
                    None,
                )
                .await?;
            print(&format!(
                "host {} is {}",
                text(&h["id"]),
                text(&h["status"])
            ));
        }
        HostCommand::RotateKey { id, grace_minutes } => {
            let r = api
                .call(
                    reqwest::Method::POST,
                    &format!("/api/v1/hosts/{id}/rotate-key"),
                    Some(serde_json::json!({ "grace_minutes": grace_minutes })),
                )
                .await?;
            print(&format!(
                "new key for host {} (shown once; the old one works for {grace_minutes} more minutes):\n{}",
                text(&r["host"]["id"]),
                text(&r["api_key"])
            ));
        }
        HostCommand::Delete { id } => {
            api.call(
                reqwest::Method::DELETE,
                &format!("/api/v1/hosts/{id}"),
                None,
            )
            .await?;
            print(&format!(
                "host {id} deleted; its keys and tickets no longer work"
            ));
        }
    }
    Ok(())
}
