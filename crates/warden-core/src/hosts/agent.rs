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
    Ok(hello_claiming(ctx, op, host, report, via, None).await? != Greeted::Gone)
}

/// A connection that claims its host as it says hello (see [`hello_claiming`]).
#[derive(Debug, Clone, Copy)]
pub struct Claiming<'a> {
    /// `node/number`: who will hold the host.
    pub connection: &'a str,
    /// Hosts last seen before this (µs) no longer count as connected.
    pub fresh_after: i64,
    /// How many hosts of this host's kind may be connected at once.
    pub cap: Option<u32>,
}

/// What a hello came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greeted {
    /// Recorded (and, when claiming, the host is held by the connection).
    Recorded,
    /// Recorded, but as many hosts of its kind are connected as the cap allows: not held.
    LimitReached,
    /// The host no longer exists.
    Gone,
}

/// [`hello`], and with `claim` the connection takes the host in the same transaction (one
/// write per connecting agent: ten thousand reconnecting at once is the case that counts).
pub async fn hello_claiming(
    ctx: &Ctx,
    op: &Op,
    host: &HostCaller,
    report: &Report,
    via: Option<&'static str>,
    claim: Option<Claiming<'_>>,
) -> CoreResult<Greeted> {
    let ip = host.ip.to_string();
    let mut tx = ctx.store.as_host(&host.grant).await?;
    let mut greeted = Greeted::Recorded;
    if let Some(Claiming {
        cap: Some(cap),
        fresh_after,
        ..
    }) = claim
        && tx
            .host_cap_reached(&host.grant, host.kind.as_str(), fresh_after, cap)
            .await?
    {
        greeted = Greeted::LimitReached;
    }
    let connection = match greeted {
        Greeted::Recorded => claim.map(|c| c.connection),
        _ => None,
    };
    let known = tx
        .record_hello(
            &host.grant,
            &warden_store::hosts::Hello {
                hostname: &report.hostname,
                os: &report.os,
                agent_version: &report.agent_version,
                ip: &ip,
                now: op.now_us(),
                connection,
            },
        )
        .await?;
    if !known {
        return Ok(Greeted::Gone);
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
    Ok(greeted)
}
