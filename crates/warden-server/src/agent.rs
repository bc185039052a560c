//! The server side of agent connections: a host dials out over a WebSocket, authenticates
//! with its key or ticket (the access guard's host gate), says hello in the versioned
//! protocol (`warden-protocol`), then heartbeats. This node keeps one live connection per host:
//! a reconnect replaces the old connection, never counts twice; deleting or rejecting a host
//! drops its connection at once, on whichever node holds it: each node hears every host
//! change through PostgreSQL (LISTEN/NOTIFY, see `warden_core::hosts::link::spawn_watch`) and
//! checks its connection of that host against the database, as it also does at every
//! heartbeat. The use cases of each message are `warden_core::hosts::link`; this module is the
//! WebSocket: framing, timeouts, close codes.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::FutureExt;
use warden_core::hosts::HEARTBEAT;
use warden_core::hosts::agent::Report;
use warden_core::hosts::link::{self, Link};
use warden_core::hosts::links::Signal;
use warden_protocol::{AgentMessage, DecodeError, Refusal, ServerMessage};

use crate::audit::request::RequestMeta;
use crate::state::AppState;
use warden_core::hosts::HostCaller;

/// How long a new connection may take to say hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// At most this many output chunks (and about this many bytes) are recorded together.
const OUTPUT_BURST: usize = 64;
const OUTPUT_BURST_BYTES: usize = 1 << 20;

/// Whether the connection goes on after a step.
enum Flow {
    Continue,
    Stop,
}

/// One frame read from the socket: `None` when it closed, `Err` for a frame over the limit.
type Frame = Option<Result<Message, axum::Error>>;

/// Runs one agent connection to its end: hello, then one method per message.
pub async fn session(state: AppState, meta: RequestMeta, host: HostCaller, socket: WebSocket) {
    let mut conn = AgentSocket {
        socket,
        stash: None,
        confirms: false,
    };
    let Some((protocol, report)) = conn.hello().await else {
        return;
    };
    conn.confirms = protocol >= warden_protocol::RECORDED_SINCE;
    let op = meta.host_op(&host, state.ctx.clock.as_ref());
    let (link, welcome) = match link::connect(&state.ctx, &op, host, protocol, &report).await {
        Ok(linked) => linked,
        Err(refusal) => {
            conn.refuse(1008, *refusal).await;
            return;
        }
    };
    if conn.send(&welcome).await {
        conn.run(&state, &meta, &link).await;
    }
    link.close(&state.ctx).await;
}

/// The WebSocket side of one agent connection.
struct AgentSocket {
    socket: WebSocket,
    /// A frame read ahead while gathering a burst of output, handled next.
    stash: Option<Frame>,
    /// The agent is told what was recorded (protocol 3 on), so it can report the rest again.
    confirms: bool,
}

impl AgentSocket {
    /// Sends a message; `false` when the socket is gone.
    async fn send(&mut self, msg: &ServerMessage) -> bool {
        self.socket
            .send(Message::Text(Utf8Bytes::from(msg.encode())))
            .await
            .is_ok()
    }

    /// Sends a refusal and closes. Close codes (RFC 6455): 1008 policy, 1002 protocol error,
    /// 1009 too big.
    async fn refuse(&mut self, close_code: u16, message: ServerMessage) {
        let reason = match &message {
            ServerMessage::Refused { code, .. } => code.as_str(),
            _ => "",
        };
        let close = Message::Close(Some(CloseFrame {
            code: close_code,
            reason: Utf8Bytes::from(reason),
        }));
        let _ = self.send(&message).await;
        let _ = self.socket.send(close).await;
    }

    /// Refuses a frame that is not a message of this protocol.
    async fn refuse_invalid(&mut self, e: &DecodeError) {
        match e {
            DecodeError::TooLarge => self.refuse(1009, Refusal::MessageTooLarge.message()).await,
            DecodeError::Invalid => self.refuse(1002, Refusal::InvalidMessage.message()).await,
        }
    }

    /// The hello, within the timeout, in a version this server speaks, reporting sensible
    /// values; the connection is refused otherwise.
    async fn hello(&mut self) -> Option<(u32, Report)> {
        let first = tokio::time::timeout(HELLO_TIMEOUT, self.socket.recv()).await;
        let hello = match first {
            Ok(Some(Ok(Message::Text(text)))) => AgentMessage::decode(text.as_str()),
            Ok(Some(Ok(_))) => Err(DecodeError::Invalid),
            Ok(Some(Err(_))) => Err(DecodeError::TooLarge),
            Ok(None) => return None,
            Err(_) => {
                self.refuse(1008, Refusal::HelloTimeout.message()).await;
                return None;
            }
        };
        match hello {
            Ok(AgentMessage::Hello {
                protocol,
                hostname,
                os,
                agent_version,
            }) => match link::check_hello(protocol, &hostname, &os, &agent_version) {
                Ok(report) => Some((protocol, report)),
                Err(refusal) => {
                    let code = match *refusal {
                        ServerMessage::Refused {
                            code: Refusal::InvalidMessage,
                            ..
                        } => 1002,
                        _ => 1008,
                    };
                    self.refuse(code, *refusal).await;
                    None
                }
            },
            Ok(_) => {
                self.refuse_invalid(&DecodeError::Invalid).await;
                None
            }
            Err(e) => {
                self.refuse_invalid(&e).await;
                None
            }
        }
    }

    /// Until the agent leaves, misbehaves, goes silent, or is told to stop.
    async fn run(&mut self, state: &AppState, meta: &RequestMeta, link: &Link) {
        loop {
            let flow = if let Some(frame) = self.stash.take() {
                self.on_frame(state, meta, link, frame).await
            } else {
                tokio::select! {
                    signal = link.mailbox.recv() => self.on_signal(state, link, signal).await,
                    frame = tokio::time::timeout(HEARTBEAT * 3, self.socket.recv()) => match frame {
                        Ok(frame) => self.on_frame(state, meta, link, frame).await,
                        Err(_) => {
                            self.refuse(1008, Refusal::HeartbeatTimeout.message()).await;
                            Flow::Stop
                        }
                    },
                }
            };
            if matches!(flow, Flow::Stop) {
                return;
            }
        }
    }

    /// A signal this node's use cases left for the connection.
    async fn on_signal(&mut self, state: &AppState, link: &Link, signal: Signal) -> Flow {
        let refusal = match signal {
            Signal::End(msg) => msg,
            Signal::Check => match link.verdict(&state.ctx).await {
                Some(msg) => msg,
                None => return Flow::Continue,
            },
            Signal::Send(msg) => {
                return if self.send(&msg).await {
                    Flow::Continue
                } else {
                    Flow::Stop
                };
            }
        };
        self.refuse(1008, refusal).await;
        Flow::Stop
    }

    /// A frame from the agent.
    async fn on_frame(
        &mut self,
        state: &AppState,
        meta: &RequestMeta,
        link: &Link,
        frame: Frame,
    ) -> Flow {
        match frame {
            None | Some(Ok(Message::Close(_))) => Flow::Stop,
            Some(Err(_)) => {
                self.refuse_invalid(&DecodeError::TooLarge).await;
                Flow::Stop
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Flow::Continue,
            Some(Ok(Message::Binary(_))) => {
                self.refuse_invalid(&DecodeError::Invalid).await;
                Flow::Stop
            }
            Some(Ok(Message::Text(text))) => match AgentMessage::decode(text.as_str()) {
                Ok(msg) => self.on_message(state, meta, link, msg).await,
                Err(e) => {
                    self.refuse_invalid(&e).await;
                    Flow::Stop
                }
            },
        }
    }

    /// One message from the agent: one core call each.
    async fn on_message(
        &mut self,
        state: &AppState,
        meta: &RequestMeta,
        link: &Link,
        msg: AgentMessage,
    ) -> Flow {
        let ctx = &state.ctx;
        let op = || meta.host_op(link.host(), state.ctx.clock.as_ref());
        match msg {
            AgentMessage::Heartbeat { .. } => {
                if let Some(refusal) = link.verdict(ctx).await {
                    self.refuse(1008, refusal).await;
                    return Flow::Stop;
                }
            }
            AgentMessage::Running { session_ids } => link.running(ctx, &session_ids).await,
            AgentMessage::SessionStarted {
                session_id,
                isolation,
            } => {
                if link
                    .session_started(ctx, &op(), &session_id, &isolation)
                    .await
                {
                    return self.recorded(session_id, None, false).await;
                }
            }
            AgentMessage::SessionOutput {
                session_id,
                seq,
                stream,
                data,
            } => {
                let burst = self.gather_output((session_id, seq, stream.as_str().to_owned(), data));
                if link.session_output(ctx, &burst).await {
                    // The highest sequence number of each session in the burst.
                    let mut through: Vec<(String, u64)> = Vec::new();
                    for (session, seq, _, _) in burst {
                        match through.iter_mut().find(|(s, _)| *s == session) {
                            Some((_, high)) => *high = (*high).max(seq),
                            None => through.push((session, seq)),
                        }
                    }
                    for (session, seq) in through {
                        if matches!(self.recorded(session, Some(seq), false).await, Flow::Stop) {
                            return Flow::Stop;
                        }
                    }
                }
            }
            AgentMessage::SessionEnded {
                session_id,
                status,
                exit_code,
                error,
                ..
            } => {
                let error = error.as_deref();
                if link
                    .session_ended(ctx, &op(), &session_id, status, exit_code, error)
                    .await
                {
                    return self.recorded(session_id, None, true).await;
                }
            }
            answer @ AgentMessage::FileResponse { .. } => link.answer(ctx, answer),
            AgentMessage::Hello { .. } => {
                self.refuse_invalid(&DecodeError::Invalid).await;
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    /// Tells the agent what is stored (when it speaks a version that is told).
    async fn recorded(&mut self, session_id: String, through: Option<u64>, ended: bool) -> Flow {
        if !self.confirms {
            return Flow::Continue;
        }
        let msg = ServerMessage::Recorded {
            session_id,
            through,
            ended,
        };
        if self.send(&msg).await {
            Flow::Continue
        } else {
            Flow::Stop
        }
    }

    /// Output comes in bursts: takes what has already arrived after `first` (output only;
    /// anything else is kept for the next step) so it is recorded in one transaction.
    fn gather_output(
        &mut self,
        first: (String, u64, String, String),
    ) -> Vec<(String, u64, String, String)> {
        let mut burst = vec![first];
        let mut bytes = 0;
        while burst.len() < OUTPUT_BURST && bytes < OUTPUT_BURST_BYTES {
            match self.socket.recv().now_or_never() {
                None => break,
                Some(Some(Ok(Message::Text(t)))) => match AgentMessage::decode(t.as_str()) {
                    Ok(AgentMessage::SessionOutput {
                        session_id,
                        seq,
                        stream,
                        data,
                    }) => {
                        bytes += data.len();
                        burst.push((session_id, seq, stream.as_str().to_owned(), data));
                    }
                    _ => {
                        self.stash = Some(Some(Ok(Message::Text(t))));
                        break;
                    }
                },
                Some(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
                Some(other) => {
                    self.stash = Some(other);
                    break;
                }
            }
        }
        burst
    }
}
