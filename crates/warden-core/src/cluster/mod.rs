//! Any node serves any host: a use case that must reach a host (start, stop or close a
//! session, ask its worktree something) sends to it directly when the host is connected to
//! this node, and otherwise relays through the node that holds the connection — a call to that
//! node's `/internal/v1/relay` carrying an [`envelope`] sealed with the keyring all nodes
//! share. The authorization happened here, in the use case; the other node only delivers.
//!
//! Each node records where the others reach it (`node_url`, or its listen address) at start.

pub mod envelope;

use std::time::Duration;

use uuid::Uuid;
use warden_protocol::{AgentMessage, ServerMessage};

use crate::Ctx;
use crate::error::{Code, CoreError, CoreResult};
use crate::identity::now_us;

use envelope::{Delivered, Refused, Relay};

/// How long a host has to answer a question (a file request).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);

/// This node's side of the cluster.
#[derive(Debug)]
pub struct Cluster {
    address: Option<String>,
    client: reqwest::Client,
    /// Envelopes accepted while they could still be fresh (replays are refused).
    pub seen: envelope::Seen,
}

impl Cluster {
    /// A node reached by the others at `address` (`None`: it relays to others, and nobody
    /// relays to it), trusting the certificates in `ca_pem` (PEM) for their TLS besides the
    /// system's roots.
    pub fn new(address: Option<String>, ca_pem: Option<&[u8]>) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder();
        if let Some(pem) = ca_pem {
            builder = builder.tls_certs_merge(
                reqwest::Certificate::from_pem_bundle(pem)
                    .map_err(|e| format!("node_ca_file: {e}"))?,
            );
        }
        let client = builder
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("node-to-node client: {e}"))?;
        Ok(Self {
            address,
            client,
            seen: envelope::Seen::default(),
        })
    }

    /// Where the other nodes reach this one.
    pub fn address(&self) -> Option<&str> {
        self.address.as_deref()
    }
}

/// Records where the other nodes reach this one.
pub async fn announce(ctx: &Ctx) -> CoreResult<()> {
    if let Some(address) = ctx.cluster.address() {
        ctx.store
            .set_node_address(
                &ctx.identity.node_id.simple().to_string(),
                address,
                now_us(ctx.clock.as_ref()),
            )
            .await?;
    }
    Ok(())
}

/// Sends `message` to `host`'s agent, wherever it is connected. `false` when it is connected
/// nowhere (or its node could not be reached).
pub async fn send(ctx: &Ctx, host: Uuid, message: ServerMessage) -> bool {
    if ctx.connections.send(host, message.clone()) {
        return true;
    }
    // A failed relay was logged where it failed.
    relay(ctx, host, message, false).await.is_ok_and(|d| d.sent)
}

/// Asks `host`'s agent the request `message` makes (its `request_id` is set where it is
/// sent) and waits for the answer, wherever the host is connected.
pub async fn ask(ctx: &Ctx, host: Uuid, message: ServerMessage) -> CoreResult<AgentMessage> {
    if let Some(rx) = ctx
        .connections
        .request(host, |id| message.clone().with_request_id(id))
    {
        return tokio::time::timeout(ANSWER_TIMEOUT, rx)
            .await
            .map_err(|_| Code::HostTimeout)?
            .map_err(|_| CoreError::internal(&"the host's answer was lost"));
    }
    let delivered = relay(ctx, host, message, true).await?;
    match delivered {
        Delivered {
            answer: Some(answer),
            ..
        } => Ok(answer),
        Delivered { sent: false, .. } => Err(Code::HostNotConnected.into()),
        Delivered { error, .. } if error.as_deref() == Some("timeout") => {
            Err(Code::HostTimeout.into())
        }
        Delivered { .. } => Err(CoreError::internal(&"the host's answer was lost")),
    }
}

/// The node at `node` did not take a relay (its connection failed, it timed out, or it
/// answered with an error): 503, to retry once the host has reconnected elsewhere or the node
/// is back. The cause is logged, not answered.
fn unreachable_node(host: Uuid, node: &str, cause: &dyn std::fmt::Display) -> CoreError {
    tracing::warn!(%host, %node, error = %cause, "cannot relay to the host's node");
    CoreError {
        retry_after: Some(Duration::from_secs(1)),
        ..CoreError::new(Code::HostNodeUnreachable)
    }
}

/// Hands `message` to the node holding `host`'s connection.
async fn relay(ctx: &Ctx, host: Uuid, message: ServerMessage, ask: bool) -> CoreResult<Delivered> {
    let not_sent = Delivered {
        sent: false,
        answer: None,
        error: None,
    };
    let Some((node, address)) = ctx.store.host_node(host).await? else {
        return Ok(not_sent);
    };
    let Ok(to) = Uuid::parse_str(&node) else {
        return Ok(not_sent);
    };
    let Some(address) = address else {
        return Err(CoreError::internal(&format_args!(
            "the host's node {node} has no node_url: it cannot be reached from here"
        )));
    };
    if to == ctx.identity.node_id {
        // The database says here, but the connection is gone.
        return Ok(not_sent);
    }
    let relay = Relay {
        to,
        sent_at: now_us(ctx.clock.as_ref()),
        nonce: envelope::nonce(),
        host,
        message,
        ask,
    };
    let body = envelope::seal(&ctx.keyring, &relay).map_err(|e| CoreError::internal(&e))?;
    let res = ctx
        .cluster
        .client
        .post(format!(
            "{}/internal/v1/relay",
            address.trim_end_matches('/')
        ))
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .body(body)
        .timeout(ANSWER_TIMEOUT + Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| unreachable_node(host, &node, &e))?;
    let status = res.status();
    if status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS {
        // The nodes disagree (keys, versions): retrying will not help.
        return Err(CoreError::internal(&format_args!(
            "node {node} refused the relay: {status}"
        )));
    }
    if !status.is_success() {
        return Err(unreachable_node(
            host,
            &node,
            &format_args!("it could not take the relay: {status}"),
        ));
    }
    let sealed = res
        .bytes()
        .await
        .map_err(|e| unreachable_node(host, &node, &e))?;
    envelope::open_answer(&ctx.keyring, &relay.nonce, &sealed)
        .map_err(|e| CoreError::internal(&format_args!("node {node}'s answer: {e}")))
}

/// Delivers what another node relayed (the body of `/internal/v1/relay`) and returns the
/// sealed answer. Refused unless sealed for this node by this installation, fresh, and new.
pub async fn receive(ctx: &Ctx, sealed: &[u8]) -> Result<Vec<u8>, Refused> {
    let relay = ctx.cluster.seen.open(
        &ctx.keyring,
        ctx.identity.node_id,
        now_us(ctx.clock.as_ref()),
        sealed,
    )?;
    let delivered = if relay.ask {
        let message = relay.message.clone();
        match ctx
            .connections
            .request(relay.host, |id| message.with_request_id(id))
        {
            None => Delivered {
                sent: false,
                answer: None,
                error: None,
            },
            Some(rx) => match tokio::time::timeout(ANSWER_TIMEOUT, rx).await {
                Ok(Ok(answer)) => Delivered {
                    sent: true,
                    answer: Some(answer),
                    error: None,
                },
                Ok(Err(_)) => Delivered {
                    sent: true,
                    answer: None,
                    error: Some("lost".to_owned()),
                },
                Err(_) => Delivered {
                    sent: true,
                    answer: None,
                    error: Some("timeout".to_owned()),
                },
            },
        }
    } else {
        Delivered {
            sent: ctx.connections.send(relay.host, relay.message),
            answer: None,
            error: None,
        }
    };
    envelope::seal_answer(&ctx.keyring, &relay.nonce, &delivered).map_err(|_| Refused::Sealed)
}
