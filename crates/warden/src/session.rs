//! `warden session …`: open, follow, stop and close agent sessions from a terminal, through
//! the API with the credentials `warden login` saved.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::SessionCommand;
use crate::client::{Api, connect, text};
use crate::output::print;

/// How long `--follow` waits before asking again when nothing new came.
const POLL: Duration = Duration::from_millis(300);

/// Runs a `warden session` command.
pub async fn run(
    credentials: Option<PathBuf>,
    workspace: Option<String>,
    command: SessionCommand,
) -> Result<()> {
    let workspace = workspace
        .filter(|w| !w.is_empty())
        .context("name the workspace: --workspace ID (or WARDEN_WORKSPACE)")?;
    if workspace.contains(['/', '?', '#', '%']) {
        bail!("--workspace must be a workspace id");
    }
    let api = connect(credentials).await?;
    let base = format!("/api/v1/workspaces/{workspace}/sessions");
    let one = |id: &str| -> Result<String> {
        if id.is_empty() || id.contains(['/', '?', '#', '%']) {
            bail!("not a session id: {id:?}");
        }
        Ok(format!("{base}/{id}"))
    };
    match command {
        SessionCommand::Create {
            provider,
            prompt,
            mode,
            host,
            follow,
            command,
        } => {
            let mut body = json!({ "provider": provider, "prompt": prompt });
            if let Some(m) = mode {
                body["mode"] = json!(m);
            }
            if let Some(h) = host {
                body["host_id"] = json!(h);
            }
            if !command.is_empty() {
                body["command"] = json!(command);
            }
            let s = api.call(Method::POST, &base, Some(body)).await?;
            let id = text(&s["id"]);
            if follow {
                eprintln!(
                    "session {id} on host {}, branch {}",
                    text(&s["host_id"]),
                    text(&s["branch"])
                );
                return logs(&api, &one(&id)?, -1, true).await;
            }
            print(&id);
        }
        SessionCommand::List => {
            let list = api.call(Method::GET, &base, None).await?;
            print(
                "ID                                    STATUS    PROVIDER     MODE     HOST                                  CREATED",
            );
            for s in list.as_array().into_iter().flatten() {
                print(&format!(
                    "{}  {:<8}  {:<11}  {:<7}  {}  {}",
                    text(&s["id"]),
                    text(&s["status"]),
                    text(&s["provider"]),
                    text(&s["mode"]),
                    text(&s["host_id"]),
                    text(&s["created_at"]),
                ));
            }
        }
        SessionCommand::Show { id } => {
            let s = api.call(Method::GET, &one(&id)?, None).await?;
            print(&serde_json::to_string_pretty(&s)?);
        }
        SessionCommand::Logs { id, after, follow } => {
            return logs(&api, &one(&id)?, after, follow).await;
        }
        SessionCommand::Stop { id } => {
            let s = api
                .call(Method::POST, &format!("{}/stop", one(&id)?), None)
                .await?;
            print(&format!(
                "session {} is stopping ({})",
                id,
                text(&s["status"])
            ));
        }
        SessionCommand::Close { id } => {
            api.call(Method::POST, &format!("{}/close", one(&id)?), None)
                .await?;
            print(&format!(
                "session {id} closed; its worktree and branch are being removed"
            ));
        }
        SessionCommand::Diff { id } => {
            let d = api
                .call(Method::GET, &format!("{}/diff", one(&id)?), None)
                .await?;
            let mut out = std::io::stdout().lock();
            out.write_all(d["content"].as_str().unwrap_or_default().as_bytes())?;
            out.flush()?;
        }
    }
    Ok(())
}

/// Prints output after `after`, stdout chunks to standard output and stderr chunks to
/// standard error. Following, it keeps asking until the session has ended and everything it
/// wrote is printed, then fails unless the session is done with exit status 0.
async fn logs(api: &Api, session: &str, mut after: i64, follow: bool) -> Result<()> {
    loop {
        let page = api
            .call(
                Method::GET,
                &format!("{session}/output?after={after}&limit=1000"),
                None,
            )
            .await?;
        let chunks = page["chunks"].as_array().cloned().unwrap_or_default();
        for c in &chunks {
            let data = c["data"].as_str().unwrap_or_default().as_bytes();
            if c["stream"] == "stderr" {
                let mut e = std::io::stderr().lock();
                e.write_all(data)?;
                e.flush()?;
            } else {
                let mut o = std::io::stdout().lock();
                o.write_all(data)?;
                o.flush()?;
            }
        }
        after = page["next_after"].as_i64().unwrap_or(after);
        let status = page["status"].as_str().unwrap_or_default();
        let ended = !matches!(status, "waiting" | "running");
        if !chunks.is_empty() {
            continue;
        }
        if !follow {
            return Ok(());
        }
        if ended {
            return finish(api, session).await;
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn finish(api: &Api, session: &str) -> Result<()> {
    let s: Value = api.call(Method::GET, session, None).await?;
    let status = text(&s["status"]);
    match (status.as_str(), s["exit_code"].as_i64()) {
        ("done", Some(0) | None) => Ok(()),
        (_, Some(code)) => bail!("the session ended {status} (exit status {code})"),
        (_, None) => match s["error"].as_str() {
            Some(why) => bail!("the session ended {status}: {why}"),
            None => bail!("the session ended {status}"),
        },
    }
}
