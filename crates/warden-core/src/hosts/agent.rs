//! What a connecting agent does through the core: announce itself (over HTTP or its
//! WebSocket), recorded and audited as the host.

use serde_json::json;

use super::HostCaller;
use crate::{CoreResult, Ctx, Op};

/// What an agent reports when it connects, each 1–200 characters without control
/// characters.
#[derive(Debug, Clone)]
pub struct Report {
    hostname: String,
    os: String,
    agent_version: String,
}

impl Report {
    /// Checks what the agent reported.
    pub fn parse(hostname: &str, os: &str, agent_version: &str) -> CoreResult<Self> {
        fn reported(field: &'static str, value: &str) -> CoreResult<String> {
            let value = value.trim();
            if value.is_empty()
                || value.chars().count() > 200
                || value.chars().any(char::is_control)
            {
                return Err(crate::CoreError::invalid(
                    field,
                    "must be 1 to 200 characters without control characters",
                ));
            }
            Ok(value.to_owned())
        }
        Ok(Self {
            hostname: reported("hostname", hostname)?,
            os: reported("os", os)?,
            agent_version: reported("agent_version", agent_version)?,
        })
    }
}

/// Records what a connecting agent reported and when it was last seen, with a
/// `host.connected` event; `via` names the channel when it is not the HTTP hello. `false`
/// when the host was deleted between its key check and now.
pub async fn hello(
    ctx: &Ctx,
    op: &Op,
    host: &HostCaller,
    report: &Report,
    via: Option<&'static str>,
) -> CoreResult<bool> {
    let ip = host.ip.to_string();
    let mut tx = ctx.store.as_host(&host.grant).await?;
    let known = tx
        .record_hello(
            &host.grant,
            &warden_store::hosts::Hello {
                hostname: &report.hostname,
                os: &report.os,
                agent_version: &report.agent_version,
                ip: &ip,
                now: op.now_us(),
            },
        )
        .await?;
    if !known {
        return Ok(false);
    }
    let mut summary = json!({ "key_id": host.key_id, "status": host.status.as_str(),
                              "hostname": report.hostname,
                              "agent_version": report.agent_version });
    if let (Some(via), Some(map)) = (via, summary.as_object_mut()) {
        map.insert("via".to_owned(), json!(via));
    }
    let mut event = op.event_by(
        host.actor(),
        "host.connected",
        "host",
        Some(host.host_id.to_string()),
        warden_domain::audit::Outcome::Success,
        summary,
    );
    event.client_ip = Some(host.ip);
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    Ok(true)
}
