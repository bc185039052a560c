//! `warden automation …` and `warden event-source …`: a workspace's automations and event
//! sources from a terminal, through the API with the credentials `warden login` saved.

use std::path::PathBuf;

use anyhow::{Context, Result};
use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{AutomationCommand, AutomationSpec, EventSourceCommand};
use crate::client::{connect, text};
use crate::output::print;
use crate::workspace::{secret_from_stdin, segment, workspace_id};

fn spec_body(s: AutomationSpec) -> Value {
    let kind = if s.cron.is_some() {
        "cron"
    } else if s.at.is_some() {
        "once"
    } else if s.every.is_some() {
        "loop"
    } else if s.on_event {
        "trigger"
    } else {
        "manual"
    };
    json!({
        "name": s.name, "kind": kind, "cron": s.cron, "timezone": s.timezone,
        "run_at": s.at, "loop_interval_secs": s.every, "loop_max": s.times,
        "prompt": s.prompt, "prompt_name": s.prompt_name, "provider": s.provider,
        "command": s.command, "mode": s.mode, "host_id": s.host,
        "missed": s.run_missed.then_some("run_once"), "enabled": !s.disabled,
    })
}

/// Runs a `warden automation` command.
pub async fn run_automation(
    credentials: Option<PathBuf>,
    workspace: Option<String>,
    command: AutomationCommand,
) -> Result<()> {
    let api = connect(credentials).await?;
    let ws = workspace.context("name the workspace: --workspace ID (or WARDEN_WORKSPACE)")?;
    let ws = workspace_id(&api, &ws).await?;
    let base = format!("/api/v1/workspaces/{ws}/automations");
    match command {
        AutomationCommand::List => {
            let list = api.call(Method::GET, &base, None).await?;
            print(
                "ID                                    NAME  KIND  SCHEDULE  ENABLED  NEXT RUN  RUNS",
            );
            for a in list.as_array().into_iter().flatten() {
                let schedule = match a["kind"].as_str() {
                    Some("cron") => format!("{} {}", text(&a["cron"]), text(&a["timezone"])),
                    Some("once") => text(&a["run_at"]),
                    Some("loop") => format!(
                        "every {}s ×{}",
                        text(&a["loop_interval_secs"]),
                        text(&a["loop_max"])
                    ),
                    _ => "-".to_owned(),
                };
                print(&format!(
                    "{}  {}  {}  {}  {}  {}  {}",
                    text(&a["id"]),
                    text(&a["name"]),
                    text(&a["kind"]),
                    schedule,
                    text(&a["enabled"]),
                    text(&a["next_run_at"]),
                    text(&a["runs_started"]),
                ));
            }
        }
        AutomationCommand::Show { id } => {
            let id = segment("automation id", &id)?;
            let d = api.call(Method::GET, &format!("{base}/{id}"), None).await?;
            print(&serde_json::to_string_pretty(&d["automation"])?);
            print("RUN                                   TRIGGER  STATUS  SESSION  CREATED  ERROR");
            for r in d["runs"].as_array().into_iter().flatten() {
                print(&format!(
                    "{}  {}  {}  {}  {}  {}",
                    text(&r["id"]),
                    text(&r["trigger"]),
                    text(&r["status"]),
                    text(&r["session_id"]),
                    text(&r["created_at"]),
                    text(&r["error"]),
                ));
            }
        }
        AutomationCommand::Create(spec) => {
            let a = api.call(Method::POST, &base, Some(spec_body(spec))).await?;
            print(&format!(
                "automation {} ({}) created; next run: {}",
                text(&a["id"]),
                text(&a["kind"]),
                text(&a["next_run_at"])
            ));
        }
        AutomationCommand::Update { id, spec } => {
            let id = segment("automation id", &id)?;
            let a = api
                .call(Method::PUT, &format!("{base}/{id}"), Some(spec_body(spec)))
                .await?;
            print(&format!(
                "automation {} saved; next run: {}",
                text(&a["id"]),
                text(&a["next_run_at"])
            ));
        }
        AutomationCommand::Run { id } => {
            let id = segment("automation id", &id)?;
            let r = api
                .call(Method::POST, &format!("{base}/{id}/runs"), None)
                .await?;
            print(&format!("run {} queued", text(&r["id"])));
        }
        AutomationCommand::Delete { id } => {
            let id = segment("automation id", &id)?;
            api.call(Method::DELETE, &format!("{base}/{id}"), None)
                .await?;
            print(&format!("automation {id} deleted"));
        }
    }
    Ok(())
}

/// Runs a `warden event-source` command.
pub async fn run_event_source(
    credentials: Option<PathBuf>,
    workspace: Option<String>,
    command: EventSourceCommand,
) -> Result<()> {
    let api = connect(credentials).await?;
    let ws = workspace.context("name the workspace: --workspace ID (or WARDEN_WORKSPACE)")?;
    let ws = workspace_id(&api, &ws).await?;
    let base = format!("/api/v1/workspaces/{ws}/event-sources");
    let shown_once = |r: &Value| {
        print(&format!(
            "event source {} ({}); its URL, shown once — keep it secret:\n{}",
            text(&r["source"]["id"]),
            text(&r["source"]["kind"]),
            text(&r["url"])
        ));
    };
    match command {
        EventSourceCommand::List => {
            let list = api.call(Method::GET, &base, None).await?;
            print(
                "ID                                    NAME  KIND  ENABLED  SIGNED  TOKEN  ACCEPTED  DROPPED",
            );
            for s in list.as_array().into_iter().flatten() {
                let c = &s["counters"];
                let dropped: i64 = [
                    "dropped_rate",
                    "dropped_backlog",
                    "dropped_signature",
                    "dropped_paused",
                ]
                .iter()
                .filter_map(|k| c[*k].as_i64())
                .sum();
                print(&format!(
                    "{}  {}  {}  {}  {}  {}  {}  {}",
                    text(&s["id"]),
                    text(&s["name"]),
                    text(&s["kind"]),
                    text(&s["enabled"]),
                    text(&s["signed"]),
                    text(&s["token_hint"]),
                    text(&c["accepted"]),
                    dropped,
                ));
            }
        }
        EventSourceCommand::Show { id } => {
            let id = segment("event source id", &id)?;
            let s = api.call(Method::GET, &format!("{base}/{id}"), None).await?;
            print(&serde_json::to_string_pretty(&s)?);
        }
        EventSourceCommand::Create {
            name,
            kind,
            automation,
            events,
            secret_stdin,
            rate_per_minute,
            backlog,
            signature_header,
            delivery_header,
        } => {
            let secret = if secret_stdin {
                Some(secret_from_stdin("signing secret")?)
            } else {
                None
            };
            let body = json!({
                "name": name, "kind": kind, "automation_id": automation,
                "events": (!events.is_empty()).then_some(events),
                "secret": secret.as_deref().map(String::as_str),
                "rate_per_minute": rate_per_minute, "backlog": backlog,
                "signature_header": signature_header, "delivery_header": delivery_header,
            });
            let r = api.call(Method::POST, &base, Some(body)).await?;
            shown_once(&r);
        }
        EventSourceCommand::RotateToken { id } => {
            let id = segment("event source id", &id)?;
            let r = api
                .call(Method::POST, &format!("{base}/{id}/rotate-token"), None)
                .await?;
            shown_once(&r);
            print("the old URL no longer works");
        }
        EventSourceCommand::SetSecret { id } => {
            let id = segment("event source id", &id)?;
            let secret = secret_from_stdin("signing secret")?;
            api.call(
                Method::PUT,
                &format!("{base}/{id}/secret"),
                Some(json!({ "secret": secret.as_str() })),
            )
            .await?;
            print("signing secret set: only signed deliveries are accepted");
        }
        EventSourceCommand::RemoveSecret { id } => {
            let id = segment("event source id", &id)?;
            api.call(Method::DELETE, &format!("{base}/{id}/secret"), None)
                .await?;
            print("signing secret removed: unsigned deliveries are accepted");
        }
        EventSourceCommand::Delete { id } => {
            let id = segment("event source id", &id)?;
            api.call(Method::DELETE, &format!("{base}/{id}"), None)
                .await?;
            print(&format!("event source {id} deleted"));
        }
    }
    Ok(())
}
