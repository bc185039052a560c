//! `warden workflow …`: a workspace's workflows and their runs from a terminal — definitions
//! from a JSON file, runs started, followed step by step, approved, rejected, canceled —
//! through the API with the credentials `warden login` saved.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{connect, text};
use crate::output::print;
use crate::workspace::{segment, workspace_id};

#[derive(Debug, Subcommand)]
pub enum WorkflowCommand {
    /// The workspace's workflows.
    List,
    /// Save a workflow from a definition file, JSON or YAML (`{"steps": [...]}`); with --id,
    /// a new version of that workflow.
    Save {
        /// Its name.
        #[arg(long, short)]
        name: String,
        /// The definition, as JSON or YAML.
        #[arg(long, short, value_name = "FILE")]
        file: PathBuf,
        /// The workflow to give a new version.
        #[arg(long, value_name = "ID")]
        id: Option<String>,
    },
    /// One workflow's definition.
    Show {
        /// Workflow id.
        id: String,
    },
    /// Start a run (its sessions act for you). Prints the run's id.
    Run {
        /// Workflow id.
        id: String,
        /// A ticket (number) the run works on.
        #[arg(long)]
        ticket: Option<String>,
    },
    /// The workspace's runs, newest first.
    Runs,
    /// One run, step by step.
    Status {
        /// Run id.
        run: String,
    },
    /// Approve the step a run waits on.
    Approve {
        /// Run id.
        run: String,
    },
    /// Reject the step a run waits on.
    Reject {
        /// Run id.
        run: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Cancel a run (its running session is stopped).
    Cancel {
        /// Run id.
        run: String,
    },
    /// Delete a workflow (its runs stay).
    Delete {
        /// Workflow id.
        id: String,
    },
}

fn print_run(r: &Value) {
    print(&format!(
        "run {}  {} v{}  {}",
        text(&r["id"]),
        text(&r["name"]),
        text(&r["version"]),
        text(&r["status"])
    ));
    for s in r["steps"].as_array().into_iter().flatten() {
        let mut line = format!(
            "  {}. {} ({})  {}",
            text(&s["seq"]),
            text(&s["step_id"]),
            text(&s["kind"]),
            text(&s["status"])
        );
        if !s["session_id"].is_null() {
            line.push_str(&format!("  session {}", text(&s["session_id"])));
        }
        if !s["reason"].is_null() {
            line.push_str(&format!("  — {}", text(&s["reason"])));
        }
        print(&line);
    }
}

/// Runs a `warden workflow` command.
pub async fn run(
    credentials: Option<PathBuf>,
    workspace: Option<String>,
    command: WorkflowCommand,
) -> Result<()> {
    let api = connect(credentials).await?;
    let ws = workspace.context("name the workspace: --workspace ID (or WARDEN_WORKSPACE)")?;
    let ws = workspace_id(&api, &ws).await?;
    let base = format!("/api/v1/workspaces/{ws}/workflows");
    let runs = format!("/api/v1/workspaces/{ws}/workflow-runs");
    match command {
        WorkflowCommand::List => {
            print("ID                                    VERSION  ON TICKET  NAME");
            for w in api
                .call(Method::GET, &base, None)
                .await?
                .as_array()
                .into_iter()
                .flatten()
            {
                print(&format!(
                    "{}  {:<7}  {:<9}  {}",
                    text(&w["id"]),
                    text(&w["version"]),
                    w["on_ticket"].as_str().unwrap_or("-"),
                    text(&w["name"])
                ));
            }
        }
        WorkflowCommand::Save { name, file, id } => {
            let raw = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            // JSON goes as a document; anything else as text, which the server reads as YAML.
            let definition: Value = serde_json::from_str(&raw).unwrap_or(Value::String(raw));
            let body = json!({"name": name, "definition": definition});
            let w = match id {
                Some(id) => {
                    let id = segment("workflow id", &id)?;
                    api.call(Method::PUT, &format!("{base}/{id}"), Some(body))
                        .await?
                }
                None => api.call(Method::POST, &base, Some(body)).await?,
            };
            print(&format!(
                "{} version {}",
                text(&w["id"]),
                text(&w["version"])
            ));
        }
        WorkflowCommand::Show { id } => {
            let id = segment("workflow id", &id)?;
            let w = api.call(Method::GET, &format!("{base}/{id}"), None).await?;
            print(&format!(
                "{} (version {})",
                text(&w["name"]),
                text(&w["version"])
            ));
            print(&serde_json::to_string_pretty(&w["definition"])?);
        }
        WorkflowCommand::Run { id, ticket } => {
            let id = segment("workflow id", &id)?;
            let r = api
                .call(
                    Method::POST,
                    &format!("{base}/{id}/runs"),
                    Some(json!({"ticket": ticket})),
                )
                .await?;
            print(&text(&r["id"]));
        }
        WorkflowCommand::Runs => {
            print("RUN                                   STATUS     STARTED               NAME");
            for r in api
                .call(Method::GET, &runs, None)
                .await?
                .as_array()
                .into_iter()
                .flatten()
            {
                print(&format!(
                    "{}  {:<9}  {}  {} v{}",
                    text(&r["id"]),
                    text(&r["status"]),
                    text(&r["created_at"]).chars().take(19).collect::<String>(),
                    text(&r["name"]),
                    text(&r["version"])
                ));
            }
        }
        WorkflowCommand::Status { run } => {
            let run = segment("run id", &run)?;
            print_run(
                &api.call(Method::GET, &format!("{runs}/{run}"), None)
                    .await?,
            );
        }
        WorkflowCommand::Approve { run } => {
            let run = segment("run id", &run)?;
            let r = api
                .call(
                    Method::POST,
                    &format!("{runs}/{run}/decide"),
                    Some(json!({"approve": true})),
                )
                .await?;
            print_run(&r);
        }
        WorkflowCommand::Reject { run, reason } => {
            let run = segment("run id", &run)?;
            let r = api
                .call(
                    Method::POST,
                    &format!("{runs}/{run}/decide"),
                    Some(json!({"approve": false, "reason": reason})),
                )
                .await?;
            print_run(&r);
        }
        WorkflowCommand::Cancel { run } => {
            let run = segment("run id", &run)?;
            let r = api
                .call(Method::POST, &format!("{runs}/{run}/cancel"), None)
                .await?;
            print(&text(&r["status"]));
        }
        WorkflowCommand::Delete { id } => {
            let id = segment("workflow id", &id)?;
            api.call(Method::DELETE, &format!("{base}/{id}"), None)
                .await?;
        }
    }
    Ok(())
}
