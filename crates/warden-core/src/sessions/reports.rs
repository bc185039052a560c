//! Agent sessions on the server: what hosts report about the sessions they run (applied only
//! to sessions given to that host, audited in the same transaction), and the secrets a session
//! needs, opened here and sent only over the host's authenticated connection.

use serde_json::json;
use uuid::Uuid;
use warden_domain::audit::Outcome;
use warden_domain::sessions::SessionStatus;
use warden_domain::tenancy::{Provider, WorkspaceId};
use warden_protocol::Secret;
use warden_store::sessions::{HostReport, OutputChunk};
use warden_store::tenancy::{SecretKind, WorkspaceTx};

use crate::hosts::HostCaller;
use crate::{Ctx, Op};

/// Wakes the readers of a session's output on this node when its host reports, here or
/// through another node ([`spawn_output_watch`]); readers then read the database, the one
/// ordered record (and look every second anyway).
#[derive(Debug, Default)]
pub struct Feeds {
    map: std::sync::Mutex<std::collections::HashMap<Uuid, tokio::sync::watch::Sender<u64>>>,
}

impl Feeds {
    /// A receiver that changes whenever session `id` gets output or ends.
    pub fn subscribe(&self, id: Uuid) -> tokio::sync::watch::Receiver<u64> {
        match self.map.lock() {
            Ok(mut m) => m
                .entry(id)
                .or_insert_with(|| tokio::sync::watch::channel(0).0)
                .subscribe(),
            Err(_) => tokio::sync::watch::channel(0).1,
        }
    }

    /// Wakes the readers of session `id` (and forgets it when it `ended`).
    pub fn notify(&self, id: Uuid, ended: bool) {
        if let Ok(mut m) = self.map.lock() {
            if let Some(tx) = m.get(&id) {
                tx.send_modify(|n| *n += 1);
            }
            if ended {
                m.remove(&id);
            }
        }
    }
}

/// Wakes this node's readers of sessions whose host reported through another node, as those
/// nodes announce it (PostgreSQL `NOTIFY`); on SQLite there is one node and nothing to hear.
pub fn spawn_output_watch(ctx: std::sync::Arc<Ctx>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let mut changes = match ctx.store.output_changes().await {
                Ok(Some(c)) => c,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for session output; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
            };
            loop {
                match changes.next().await {
                    Ok(id) => ctx.session_feeds.notify(id, false),
                    Err(e) => {
                        tracing::warn!(error = %e, "session output listener failed; reconnecting");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        break;
                    }
                }
            }
        }
    })
}

/// Applies a host's report about session `session_id`.
pub async fn report(
    ctx: &Ctx,
    op: &Op,
    host: &HostCaller,
    session_id: &str,
    report: HostReport<'_>,
) -> bool {
    let Ok(id) = session_id.parse::<Uuid>() else {
        tracing::warn!(host = %host.host_id, "a host reported on a malformed session id");
        return true;
    };
    let event = match report {
        HostReport::Started { isolation } => op.event_by(
            host.actor(),
            "session.started",
            "session",
            Some(id.to_string()),
            Outcome::Success,
            json!({ "isolation": isolation }),
        ),
        HostReport::Ended {
            status, exit_code, ..
        } => op.event_by(
            host.actor(),
            "session.ended",
            "session",
            Some(id.to_string()),
            if status == SessionStatus::Failed {
                Outcome::Failed
            } else {
                Outcome::Success
            },
            json!({ "status": status.as_str(), "exit_code": exit_code }),
        ),
    };
    let end_status = match report {
        HostReport::Ended { status, .. } => Some(status),
        HostReport::Started { .. } => None,
    };
    let ended = end_status.is_some();
    let applied = ctx
        .store
        .host_report(
            &host.grant,
            id,
            report,
            op.now_us(),
            (ctx.audit_key.as_ref(), event),
        )
        .await;
    match applied {
        Ok(Some(_)) => {
            ctx.session_feeds.notify(id, ended);
            if let Some(status) = end_status {
                crate::llm::admin::session_ended(ctx, id, op.now_us()).await;
                crate::automations::runner::session_ended(ctx, id, status != SessionStatus::Done)
                    .await;
                crate::workflows::runner::session_ended(ctx, id, status != SessionStatus::Done)
                    .await;
                crate::bots::runner::session_ended(ctx, id, status != SessionStatus::Done).await;
            }
            true
        }
        Ok(None) => {
            // Also a report sent again after a reconnect, already recorded (rare: only what a
            // node that died had not confirmed).
            tracing::warn!(
                host = %host.host_id,
                session = %id,
                "a host reported on a session it was not given, or already ended; ignored"
            );
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot record a host's session report");
            false
        }
    }
}

/// Records a burst of output a host reported (session id, seq, stream, text), in one
/// transaction (a chunk already stored is skipped: hosts report again what was not
/// confirmed), and wakes the readers of the sessions it belongs to. `false` when nothing
/// could be stored.
pub async fn report_output(
    ctx: &Ctx,
    host: &HostCaller,
    burst: &[(String, u64, String, String)],
) -> bool {
    // PostgreSQL text cannot hold NUL; the agent replaces it, and so does this side for any
    // other sender (a rejected insert would lose the whole burst).
    let cleaned: Vec<std::borrow::Cow<'_, str>> = burst
        .iter()
        .map(|(_, _, _, data)| {
            if data.contains('\0') {
                std::borrow::Cow::Owned(data.replace('\0', "\u{FFFD}"))
            } else {
                std::borrow::Cow::Borrowed(data.as_str())
            }
        })
        .collect();
    let chunks: Vec<OutputChunk<'_>> = burst
        .iter()
        .zip(&cleaned)
        .filter_map(|((session, seq, stream, _), data)| {
            Some(OutputChunk {
                session: session.parse().ok()?,
                seq: i64::try_from(*seq).unwrap_or(i64::MAX),
                stream: if stream == "stderr" {
                    "stderr"
                } else {
                    "stdout"
                },
                data,
            })
        })
        .collect();
    if chunks.len() < burst.len() {
        tracing::warn!(host = %host.host_id, "a host reported output of a malformed session id");
    }
    match ctx.store.host_output(&host.grant, &chunks).await {
        Ok(applied) => {
            for id in &applied {
                ctx.session_feeds.notify(*id, false);
            }
            if chunks.iter().any(|c| !applied.contains(&c.session)) {
                tracing::warn!(
                    host = %host.host_id,
                    "a host reported output of a session it was not given; ignored"
                );
            }
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot record a host's session output");
            false
        }
    }
}

/// What a session's process gets: its provider key and the workspace's variables (as
/// environment variables), and the workspace's access token (for git only).
pub struct SessionSecrets {
    /// Environment variables.
    pub env: Vec<(String, Secret)>,
    /// The access token.
    pub pat: Option<Secret>,
}

impl std::fmt::Debug for SessionSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSecrets")
            .field(
                "env",
                &self.env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn open(
    ctx: &Ctx,
    ws: WorkspaceId,
    kind: SecretKind,
    name: &str,
    sealed: &[u8],
) -> Result<Secret, String> {
    crate::secrets::open_value(ctx, ws, kind, name, sealed)
        .map(|v| Secret(v.to_string()))
        .map_err(str::to_owned)
}

/// Replaces the provider key in a session's environment with the LLM gateway: its base URL
/// (both protocols' variables, under `gateway_url`, [`crate::llm::LlmConfig::url`]) and the
/// session's own token, under the provider's key name.
pub fn use_gateway(
    secrets: &mut SessionSecrets,
    provider: Option<Provider>,
    gateway_url: &str,
    token: &str,
) {
    let key_names = [
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "ANTHROPIC_BASE_URL",
        "OPENAI_BASE_URL",
    ];
    let own = provider.map(warden_domain::sessions::key_variable);
    secrets
        .env
        .retain(|(k, _)| !key_names.contains(&k.as_str()) && Some(k.as_str()) != own);
    let base = gateway_url.trim_end_matches('/');
    secrets.env.push((
        "ANTHROPIC_BASE_URL".into(),
        Secret(format!("{base}/anthropic")),
    ));
    secrets
        .env
        .push(("OPENAI_BASE_URL".into(), Secret(format!("{base}/v1"))));
    for name in ["ANTHROPIC_API_KEY", "OPENAI_API_KEY"]
        .into_iter()
        .chain(own.filter(|k| !["ANTHROPIC_API_KEY", "OPENAI_API_KEY"].contains(k)))
    {
        secrets.env.push((name.into(), Secret(token.to_owned())));
    }
}

/// Gives a session the MCP endpoint: `WARDEN_MCP_URL`, `WARDEN_MCP_TOKEN`, and the provider's
/// own wiring (arguments before the prompt, configuration variables).
pub fn use_mcp(
    secrets: &mut SessionSecrets,
    argv: &mut Vec<String>,
    provider: Option<Provider>,
    public_url: &str,
    token: &str,
) {
    let url = format!("{}{}", public_url.trim_end_matches('/'), crate::mcp::PATH);
    if let Some(p) = provider {
        let wiring = warden_domain::sessions::mcp_wiring(p, &url);
        let at = argv.len().saturating_sub(1);
        argv.splice(at..at, wiring.args);
        for (k, v) in wiring.env {
            secrets.env.push((k, Secret(v)));
        }
    }
    secrets.env.push(("WARDEN_MCP_URL".into(), Secret(url)));
    secrets
        .env
        .push(("WARDEN_MCP_TOKEN".into(), Secret(token.to_owned())));
}

/// Opens the secrets a session of `provider` needs, inside the workspace's transaction.
pub async fn secrets_for(
    ctx: &Ctx,
    tx: &mut WorkspaceTx,
    provider: Option<Provider>,
) -> Result<SessionSecrets, String> {
    let ws = tx.workspace();
    let mut env = Vec::new();
    for meta in tx
        .secrets(SecretKind::Variable)
        .await
        .map_err(|e| e.to_string())?
    {
        if let Some(sealed) = tx
            .sealed_secret(SecretKind::Variable, &meta.name)
            .await
            .map_err(|e| e.to_string())?
        {
            env.push((
                meta.name.clone(),
                open(ctx, ws, SecretKind::Variable, &meta.name, &sealed)?,
            ));
        }
    }
    if let Some(p) = provider
        && let Some(sealed) = tx
            .sealed_secret(SecretKind::Provider, p.as_str())
            .await
            .map_err(|e| e.to_string())?
    {
        env.push((
            warden_domain::sessions::key_variable(p).to_owned(),
            open(ctx, ws, SecretKind::Provider, p.as_str(), &sealed)?,
        ));
    }
    let pat = match tx
        .sealed_secret(SecretKind::Pat, "pat")
        .await
        .map_err(|e| e.to_string())?
    {
        Some(sealed) => Some(open(ctx, ws, SecretKind::Pat, "pat", &sealed)?),
        None => None,
    };
    Ok(SessionSecrets { env, pat })
}
