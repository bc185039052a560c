//! One connection to Warden, and the loop that keeps one alive.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{Connector, connect_async_tls_with_config};
use warden_protocol::{
    AgentMessage, AgentState, PROTOCOL_VERSION, RECORDED_SINCE, Refusal, ServerMessage,
};
use zeroize::Zeroizing;

/// Where to connect, and how to trust it: one Warden address, or several nodes of one
/// installation. A lost connection moves on to the next address, so the hosts of a node that
/// died reconnect to another one (any node serves any host).
pub struct Target {
    urls: Vec<String>,
    next: std::sync::atomic::AtomicUsize,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("urls", &self.urls)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// The agent endpoint of the Warden at `base` (`https://…` or `http://…`), or of each
    /// node in a comma-separated list of such addresses (tried in turn).
    pub fn new(base: &str, ca_file: Option<&Path>) -> Result<Self> {
        let mut urls = Vec::new();
        let mut secure = false;
        for one in base.split(',').map(str::trim).filter(|b| !b.is_empty()) {
            let one = one.trim_end_matches('/');
            let (scheme, rest) = if let Some(rest) = one.strip_prefix("https://") {
                secure = true;
                ("wss://", rest)
            } else if let Some(rest) = one.strip_prefix("http://") {
                ("ws://", rest)
            } else {
                bail!("--url must start with https:// or http:// (each of a comma-separated list)");
            };
            urls.push(format!("{scheme}{rest}/api/v1/agent/connect"));
        }
        if urls.is_empty() {
            bail!("--url names no address");
        }
        let tls = if secure {
            Some(Arc::new(tls_config(ca_file)?))
        } else {
            None
        };
        Ok(Self {
            urls,
            next: std::sync::atomic::AtomicUsize::new(0),
            tls,
        })
    }

    /// How many addresses there are to try.
    pub fn len(&self) -> usize {
        self.urls.len()
    }

    /// Whether there is no address (never, once built).
    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    /// The address to dial now.
    fn current(&self) -> &str {
        let i = self.next.load(std::sync::atomic::Ordering::Relaxed) % self.urls.len();
        &self.urls[i]
    }

    /// Moves on to the next address (after a lost connection or a failed dial).
    fn advance(&self) {
        self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

pub(crate) fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;
        for cert in CertificateDer::pem_file_iter(path)
            .with_context(|| format!("cannot read {}", path.display()))?
        {
            roots
                .add(cert.with_context(|| format!("{}: not a PEM certificate", path.display()))?)
                .context("unusable CA certificate")?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS set-up")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// How a connection ended.
enum Ended {
    /// Lost (network, server restart): reconnect.
    Lost(String),
    /// The credential was refused (401): with a ticket, retry with the key; with the key, stop.
    Unauthorized,
    /// The server said never to come back like this (`upgrade-required`, `revoked`).
    Final(String),
    /// `--once`: welcomed, done.
    Done,
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn os() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| std::env::consts::OS.to_owned())
}

/// What lives across connections: the session runner and the queue of its reports (kept
/// while the connection is down, sent once it is back).
#[derive(Debug)]
pub struct Work {
    /// Runs sessions.
    pub runner: Arc<crate::work::Runner>,
    /// Reports to send.
    pub out: mpsc::Sender<AgentMessage>,
    /// Their receiving end.
    pub reports: mpsc::Receiver<AgentMessage>,
    /// Whether the last connection was welcomed (the backoff starts again after one).
    pub welcomed: bool,
    /// Reports sent and not yet confirmed: sent again on the next connection.
    pub unconfirmed: crate::replay::Unconfirmed,
    /// Whether this connection's server confirms reports (protocol 3 on).
    pub confirming: bool,
}

async fn once(
    target: &Target,
    credential: &str,
    ticket: &mut Option<Zeroizing<String>>,
    stop_after_welcome: bool,
    work: &mut Work,
) -> Ended {
    let mut ws = match dial(target, credential).await {
        Ok(ws) => ws,
        Err(ended) => return ended,
    };
    let hello = AgentMessage::Hello {
        protocol: PROTOCOL_VERSION,
        hostname: hostname(),
        os: os(),
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    if let Err(e) = ws.send(Message::text(hello.encode())).await {
        return Ended::Lost(e.to_string());
    }
    // A heartbeat every interval whatever else goes either way: the server counts a host as
    // online by them (a server that sends often — confirmations of a busy session's output —
    // must not keep them back).
    let every = |secs: u64| {
        let d = Duration::from_secs(secs.clamp(1, 300));
        tokio::time::interval_at(tokio::time::Instant::now() + d, d)
    };
    let mut beats = every(20);
    // Reports wait for the welcome: it says whether this server confirms them.
    let mut welcomed = false;
    loop {
        let frame = tokio::select! {
            frame = ws.next() => Ok(frame),
            _ = beats.tick() => Err(()),
            Some(report) = work.reports.recv(), if welcomed => {
                if work.confirming {
                    work.unconfirmed.keep(&report);
                }
                if let Err(e) = ws.send(Message::text(report.encode())).await {
                    return Ended::Lost(e.to_string());
                }
                continue;
            }
        };
        match frame {
            // Say we are alive.
            Err(()) => {
                let beat = AgentMessage::Heartbeat {
                    state: AgentState::Idle,
                };
                if let Err(e) = ws.send(Message::text(beat.encode())).await {
                    return Ended::Lost(e.to_string());
                }
            }
            Ok(None) => return Ended::Lost("the server closed the connection".into()),
            Ok(Some(Err(e))) => return Ended::Lost(e.to_string()),
            Ok(Some(Ok(Message::Text(text)))) => match ServerMessage::decode(text.as_str()) {
                Ok(ServerMessage::Welcome {
                    protocol,
                    host_id,
                    status,
                    may_work,
                    heartbeat_secs,
                    ticket: fresh,
                }) => {
                    tracing::info!(
                        "connected as host {host_id} ({status}{})",
                        if may_work {
                            ""
                        } else {
                            ", waiting for approval"
                        }
                    );
                    beats = every(heartbeat_secs);
                    work.confirming = protocol >= RECORDED_SINCE;
                    if !work.confirming {
                        work.unconfirmed.clear();
                    }
                    // Sessions whose end is not confirmed are still this host's to report.
                    let mut session_ids = work.runner.running();
                    for id in work.unconfirmed.ending() {
                        if !session_ids.contains(&id) {
                            session_ids.push(id);
                        }
                    }
                    let running = AgentMessage::Running { session_ids };
                    if let Err(e) = ws.send(Message::text(running.encode())).await {
                        return Ended::Lost(e.to_string());
                    }
                    // What the last connection's server never confirmed, again (what it did
                    // store is skipped there).
                    if !work.unconfirmed.is_empty() {
                        tracing::info!(
                            reports = work.unconfirmed.len(),
                            "reporting again what the server had not confirmed"
                        );
                    }
                    let again: Vec<String> = work
                        .unconfirmed
                        .pending()
                        .map(AgentMessage::encode)
                        .collect();
                    for report in again {
                        if let Err(e) = ws.send(Message::text(report)).await {
                            return Ended::Lost(e.to_string());
                        }
                    }
                    welcomed = true;
                    *ticket = Some(Zeroizing::new(fresh));
                    work.welcomed = true;
                    if stop_after_welcome {
                        let _ = ws.close(None).await;
                        return Ended::Done;
                    }
                }
                Ok(other) => {
                    if let Some(ended) = act(work, other) {
                        return ended;
                    }
                }
                Err(_) => return Ended::Lost("the server sent something unreadable".into()),
            },
            Ok(Some(Ok(Message::Close(_)))) => {
                return Ended::Lost("the server closed the connection".into());
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Opens the WebSocket with the host's credential; a refusal says how the attempt ended.
async fn dial(
    target: &Target,
    credential: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Ended,
> {
    let mut req = match target.current().into_client_request() {
        Ok(r) => r,
        Err(e) => return Err(Ended::Final(format!("bad URL: {e}"))),
    };
    match format!("Bearer {credential}").parse() {
        Ok(v) => {
            req.headers_mut().insert("authorization", v);
        }
        Err(_) => {
            return Err(Ended::Final(
                "the credential is not a valid header value".into(),
            ));
        }
    }
    let connector = target.tls.clone().map(Connector::Rustls);
    match connect_async_tls_with_config(req, None, false, connector).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(res)) if res.status() == 401 => Err(Ended::Unauthorized),
        Err(WsError::Http(res)) if res.status() == 429 => Err(Ended::Lost(
            "too many failed attempts from this address".into(),
        )),
        // No valid licence on the server: keep retrying (a renewal takes effect at once).
        Err(WsError::Http(res)) if res.status() == 503 => {
            let problem: Option<serde_json::Value> = res
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok());
            let said = |k: &str| {
                problem
                    .as_ref()
                    .and_then(|p| p[k].as_str().map(str::to_owned))
                    .unwrap_or_default()
            };
            Err(Ended::Lost(format!(
                "the server refuses hosts: {} ({})",
                said("detail"),
                said("code")
            )))
        }
        Err(e) => Err(Ended::Lost(e.to_string())),
    }
}

/// Acts on a message from the server other than the welcome; `Some` when it ends the
/// connection.
fn act(work: &mut Work, msg: ServerMessage) -> Option<Ended> {
    match msg {
        ServerMessage::StartSession {
            session_id,
            workspace_id,
            repository,
            mode,
            argv,
            env,
            pat,
            hooks_pre,
            hooks_post,
            base_session,
            keep_worktree,
        } => {
            work.runner.start(
                crate::work::Job {
                    session_id,
                    workspace_id,
                    repository,
                    mode,
                    argv,
                    env,
                    pat,
                    hooks_pre,
                    hooks_post,
                    base_session,
                    keep_worktree,
                },
                work.out.clone(),
            );
        }
        ServerMessage::StopSession { session_id } => work.runner.stop(&session_id),
        ServerMessage::ArchiveSession {
            session_id,
            workspace_id,
        } => {
            let runner = work.runner.clone();
            tokio::spawn(async move { runner.archive(&workspace_id, &session_id).await });
        }
        ServerMessage::FileRequest {
            request_id,
            session_id,
            workspace_id,
            op,
            path,
            content,
        } => {
            let runner = work.runner.clone();
            let out = work.out.clone();
            tokio::spawn(async move {
                let answer = runner
                    .file(crate::work::FileJob {
                        request_id,
                        session_id,
                        workspace_id,
                        op,
                        path,
                        content,
                    })
                    .await;
                let _ = out.send(answer).await;
            });
        }
        ServerMessage::Refused { code, reason } => {
            let said = format!("{}: {reason}", code.as_str());
            return Some(match code {
                Refusal::UpgradeRequired | Refusal::Revoked => Ended::Final(said),
                _ => Ended::Lost(said),
            });
        }
        ServerMessage::Recorded {
            session_id,
            through,
            ended,
        } => work.unconfirmed.confirm(&session_id, through, ended),
        ServerMessage::Welcome { .. } => {}
    }
    None
}

/// Keeps this host connected until the server refuses it for good.
pub async fn run(
    target: &Target,
    key: &str,
    stop_after_welcome: bool,
    runner: Arc<crate::work::Runner>,
) -> Result<()> {
    let (out, reports) = mpsc::channel(256);
    let mut work = Work {
        runner,
        out,
        reports,
        welcomed: false,
        unconfirmed: crate::replay::Unconfirmed::default(),
        confirming: false,
    };
    let mut ticket: Option<Zeroizing<String>> = None;
    let mut attempt = 0u32;
    loop {
        let credential: Zeroizing<String> = ticket
            .clone()
            .unwrap_or_else(|| Zeroizing::new(key.to_owned()));
        let with_ticket = ticket.is_some();
        match once(
            target,
            &credential,
            &mut ticket,
            stop_after_welcome,
            &mut work,
        )
        .await
        {
            Ended::Done => return Ok(()),
            Ended::Final(why) => bail!("{why}"),
            Ended::Unauthorized if with_ticket => {
                // The ticket expired or was retired: the key decides.
                ticket = None;
                continue;
            }
            Ended::Unauthorized => {
                bail!(
                    "the server refused the host key (unknown, rotated out, deleted, or not allowed from this address)"
                )
            }
            Ended::Lost(why) => {
                if std::mem::take(&mut work.welcomed) {
                    attempt = 0;
                }
                // With several nodes, the next one is tried at the same step of the backoff:
                // each address once per step, so a dead node costs one short wait.
                let lost = target.current().to_owned();
                target.advance();
                let nodes = u32::try_from(target.len()).unwrap_or(u32::MAX).max(1);
                let wait = crate::backoff::delay(attempt / nodes, crate::backoff::draw());
                tracing::warn!(
                    "{why} ({lost}); reconnecting to {} in {:.1} s",
                    target.current(),
                    wait.as_secs_f64()
                );
                attempt = attempt.saturating_add(1);
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_nodes_are_dialed_in_turn_and_a_bad_address_is_refused() {
        let t = Target::new("http://127.0.0.1:8080/, http://127.0.0.2:8080", None).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.current(), "ws://127.0.0.1:8080/api/v1/agent/connect");
        t.advance();
        assert_eq!(t.current(), "ws://127.0.0.2:8080/api/v1/agent/connect");
        t.advance();
        assert_eq!(t.current(), "ws://127.0.0.1:8080/api/v1/agent/connect");
        assert!(Target::new("http://127.0.0.1:8080,ftp://127.0.0.1", None).is_err());
        assert!(Target::new(" , ", None).is_err());
        let one = Target::new("https://127.0.0.1:8443", None).unwrap();
        assert_eq!(one.current(), "wss://127.0.0.1:8443/api/v1/agent/connect");
        assert!(one.tls.is_some());
    }
}
