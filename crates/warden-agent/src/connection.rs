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
use warden_protocol::{AgentMessage, AgentState, PROTOCOL_VERSION, Refusal, ServerMessage};
use zeroize::Zeroizing;

/// Where to connect, and how to trust it.
pub struct Target {
    url: String,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// The agent endpoint of the Warden at `base` (`https://…` or `http://…`).
    pub fn new(base: &str, ca_file: Option<&Path>) -> Result<Self> {
        let base = base.trim_end_matches('/');
        let (scheme, rest) = if let Some(rest) = base.strip_prefix("https://") {
            ("wss://", rest)
        } else if let Some(rest) = base.strip_prefix("http://") {
            ("ws://", rest)
        } else {
            bail!("--url must start with https:// or http://");
        };
        let tls = if scheme == "wss://" {
            Some(Arc::new(tls_config(ca_file)?))
        } else {
            None
        };
        Ok(Self {
            url: format!("{scheme}{rest}/api/v1/agent/connect"),
            tls,
        })
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
    let mut heartbeat = Duration::from_secs(20);
    loop {
        let frame = tokio::select! {
            frame = tokio::time::timeout(heartbeat, ws.next()) => frame,
            Some(report) = work.reports.recv() => {
                if let Err(e) = ws.send(Message::text(report.encode())).await {
                    return Ended::Lost(e.to_string());
                }
                continue;
            }
        };
        match frame {
            // Quiet for a heartbeat interval: say we are alive.
            Err(_) => {
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
                    host_id,
                    status,
                    may_work,
                    heartbeat_secs,
                    ticket: fresh,
                    ..
                }) => {
                    tracing::info!(
                        "connected as host {host_id} ({status}{})",
                        if may_work {
                            ""
                        } else {
                            ", waiting for approval"
                        }
                    );
                    heartbeat = Duration::from_secs(heartbeat_secs.clamp(1, 300));
                    let running = AgentMessage::Running {
                        session_ids: work.runner.running(),
                    };
                    if let Err(e) = ws.send(Message::text(running.encode())).await {
                        return Ended::Lost(e.to_string());
                    }
                    *ticket = Some(Zeroizing::new(fresh));
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
    let mut req = match target.url.as_str().into_client_request() {
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
                if ticket.is_some() {
                    attempt = 0;
                }
                let wait = crate::backoff::delay(attempt, crate::backoff::draw());
                tracing::warn!("{why}; reconnecting in {:.1} s", wait.as_secs_f64());
                attempt = attempt.saturating_add(1);
                tokio::time::sleep(wait).await;
            }
        }
    }
}
