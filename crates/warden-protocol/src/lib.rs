//! The wire protocol between the Warden server and `warden-agent`: JSON text frames over a
//! WebSocket, one message per frame, each a tagged object (`{"type": "hello", …}`).
//!
//! Versioning: the agent's first message is [`AgentMessage::Hello`] carrying the protocol
//! version it speaks. The server accepts versions in [`SUPPORTED`] and otherwise answers
//! [`ServerMessage::Refused`] with code `upgrade-required` and closes. Unknown message types
//! and unknown fields are refused (`deny_unknown_fields`), as are frames over
//! [`MAX_MESSAGE_BYTES`].

use serde::{Deserialize, Serialize};

/// The protocol version this build speaks. Version 2 added sessions; a version-1 agent still
/// connects and heartbeats but is given no sessions. Version 3 added
/// [`ServerMessage::Recorded`]: the agent keeps what it reported until the server says it is
/// stored, and reports it again after a reconnect (to whichever node), so a node that dies
/// loses nothing.
pub const PROTOCOL_VERSION: u32 = 3;
/// The versions this server accepts from agents.
pub const SUPPORTED: std::ops::RangeInclusive<u32> = 1..=3;
/// The first version that runs sessions.
pub const SESSIONS_SINCE: u32 = 2;
/// The first version told what the server recorded ([`ServerMessage::Recorded`]).
pub const RECORDED_SINCE: u32 = 3;

/// A value that must never be printed: `Debug` shows `[redacted]`; on the wire it is the plain
/// string (the connection is the authenticated channel it travels on).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where a workspace's repository lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Repository {
    /// A URL.
    Url(String),
    /// A directory on the host.
    Path(String),
}
/// The largest frame either side accepts.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// What an agent sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AgentMessage {
    /// The first message on every connection.
    Hello {
        /// Protocol version the agent speaks.
        protocol: u32,
        /// The machine's hostname.
        hostname: String,
        /// Operating system and version.
        os: String,
        /// `warden-agent` version.
        agent_version: String,
    },
    /// Sent every `heartbeat_secs`; the server counts a host gone after three missed.
    Heartbeat {
        /// What the agent is doing.
        state: AgentState,
    },
    /// The sessions this agent is running, sent after every welcome: the server marks the
    /// host's other unfinished sessions lost, and keeps these (after a server restart they
    /// carry on).
    Running {
        /// Session ids.
        session_ids: Vec<String>,
    },
    /// A session's process started in its worktree.
    SessionStarted {
        /// The session.
        session_id: String,
        /// The isolation it got (`landlock`, `landlock-partial`, `basic`).
        isolation: String,
    },
    /// A chunk of a session's output.
    SessionOutput {
        /// The session.
        session_id: String,
        /// Position in the session's stream.
        seq: u64,
        /// Which stream.
        stream: Stream,
        /// The bytes, as UTF-8 (invalid sequences replaced).
        data: String,
    },
    /// The answer to a [`ServerMessage::FileRequest`].
    FileResponse {
        /// The request's id.
        request_id: u64,
        /// `ok`, or why not: `refused`, `escape`, `not-found`, `too-large`, `not-a-file`,
        /// `no-worktree`, `io`.
        outcome: String,
        /// For `list`: `name`, `kind`, `size` of each entry.
        entries: Vec<FileEntry>,
        /// For `read` and `diff`: the text.
        content: Option<String>,
    },
    /// A session ended (or could not start).
    SessionEnded {
        /// The session.
        session_id: String,
        /// Position in the session's stream.
        seq: u64,
        /// How it ended.
        status: EndStatus,
        /// Exit code, when the process exited.
        exit_code: Option<i32>,
        /// Why it failed, in words safe to show (never a secret).
        error: Option<String>,
    },
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// File name.
    pub name: String,
    /// `file`, `dir` or `symlink`.
    pub kind: String,
    /// Size in bytes.
    pub size: u64,
}

/// The largest file content one message carries (the frame limit less room for the rest).
pub const MAX_FILE_BYTES: usize = 48 * 1024;

/// An agent's own state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// Ready for work.
    Idle,
    /// Running work.
    Busy,
    /// Finishing its work before stopping.
    Draining,
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServerMessage {
    /// The answer to a hello.
    Welcome {
        /// Protocol version the server will speak on this connection.
        protocol: u32,
        /// The host's id.
        host_id: String,
        /// `pending`, `approved` or `rejected`.
        status: String,
        /// Whether it may receive work.
        may_work: bool,
        /// How often to send a heartbeat.
        heartbeat_secs: u64,
        /// A session ticket to reconnect with instead of the key.
        ticket: String,
    },
    /// Run a session.
    StartSession {
        /// The session.
        session_id: String,
        /// Its workspace (the mirror is per workspace).
        workspace_id: String,
        /// The workspace's repository.
        repository: Repository,
        /// What kind of session.
        mode: Mode,
        /// Program and arguments; no shell.
        argv: Vec<String>,
        /// Environment for the process only (provider key, workspace variables).
        env: Vec<(String, Secret)>,
        /// The workspace's access token, for git only.
        pat: Option<Secret>,
        /// Shell commands run in the worktree before the provider, confined the same way;
        /// the first that fails fails the session.
        #[serde(default)]
        hooks_pre: Vec<String>,
        /// Shell commands run in the worktree after the provider.
        #[serde(default)]
        hooks_post: Vec<String>,
        /// An earlier session of the workspace on this host whose branch the worktree starts
        /// from (a workflow's previous step) instead of the repository's HEAD.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base_session: Option<String>,
        /// Keep the worktree and branch when the session ends, whatever its mode, until the
        /// server archives it (a later workflow step starts from them).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        keep_worktree: bool,
    },
    /// What the agent reported about a session is stored: its start, its output up to and
    /// including sequence number `through`, and (when `ended`) its end. The agent forgets
    /// those; whatever it reported and was not confirmed it reports again on its next
    /// connection (the server ignores what it already has). Version 3 on.
    Recorded {
        /// The session.
        session_id: String,
        /// The last output sequence number stored by this report, if it carried output.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        through: Option<u64>,
        /// The session's end is stored.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        ended: bool,
    },
    /// Stop a session's process (its whole process group).
    StopSession {
        /// The session.
        session_id: String,
    },
    /// A session was closed: remove its worktree and branch (if the host still has them).
    ArchiveSession {
        /// The session.
        session_id: String,
        /// Its workspace.
        workspace_id: String,
    },
    /// A file operation in a session's worktree; answered by [`AgentMessage::FileResponse`].
    FileRequest {
        /// Pairs the answer with the request.
        request_id: u64,
        /// The session.
        session_id: String,
        /// Its workspace.
        workspace_id: String,
        /// `list`, `read`, `write`, `delete` or `diff`.
        op: String,
        /// The path (already checked by the server; checked again on the host).
        path: Option<String>,
        /// For `write`: the new content.
        content: Option<String>,
    },
    /// The connection is refused or ends; the server closes it after this.
    Refused {
        /// Stable code.
        code: Refusal,
        /// A sentence for the operator.
        reason: String,
    },
}

/// Which of a session's output streams a chunk is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// How a session ended, as its host reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndStatus {
    /// The process exited successfully.
    Done,
    /// It failed, or could not start.
    Failed,
    /// It was stopped.
    Canceled,
}

impl EndStatus {
    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }
}

/// What kind of session a host is asked to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A conversation; no commits expected.
    Chat,
    /// Development on a branch of its own.
    Develop,
    /// Run by an automation.
    Bot,
}

impl Mode {
    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Develop => "develop",
            Self::Bot => "bot",
        }
    }
}

/// Why the server refuses or ends a connection. A code this agent does not know (from a
/// newer server) decodes as [`Refusal::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Refusal {
    /// The agent speaks no protocol version this server does.
    UpgradeRequired,
    /// A frame that is not a message of this protocol.
    InvalidMessage,
    /// A message over [`MAX_MESSAGE_BYTES`].
    MessageTooLarge,
    /// No hello in time.
    HelloTimeout,
    /// No heartbeat for three intervals.
    HeartbeatTimeout,
    /// A newer connection of this host replaced this one.
    Replaced,
    /// The host was deleted or rejected.
    Revoked,
    /// As many hosts of this kind are connected as the licence allows.
    HostLimit,
    /// A code this build does not know.
    #[serde(other)]
    Other,
}

impl Refusal {
    /// The code on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UpgradeRequired => "upgrade-required",
            Self::InvalidMessage => "invalid-message",
            Self::MessageTooLarge => "message-too-large",
            Self::HelloTimeout => "hello-timeout",
            Self::HeartbeatTimeout => "heartbeat-timeout",
            Self::Replaced => "replaced",
            Self::Revoked => "revoked",
            Self::HostLimit => "host-limit",
            Self::Other => "other",
        }
    }

    /// This refusal with its standard sentence, for the codes that have one.
    pub fn message(self) -> ServerMessage {
        let reason = match self {
            Self::InvalidMessage => "not a message of this protocol version",
            Self::MessageTooLarge => "messages are at most 64 KiB",
            Self::HelloTimeout => "say hello first",
            Self::HeartbeatTimeout => "no heartbeat for three intervals",
            _ => "",
        };
        ServerMessage::refused(self, reason)
    }
}

/// Why a frame is not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Over [`MAX_MESSAGE_BYTES`].
    #[error("message larger than {MAX_MESSAGE_BYTES} bytes")]
    TooLarge,
    /// Not a message of this protocol (bad JSON, unknown type or field, wrong shape).
    #[error("not a valid message")]
    Invalid,
}

impl AgentMessage {
    /// Decodes a text frame from an agent.
    pub fn decode(frame: &str) -> Result<Self, DecodeError> {
        decode(frame)
    }

    /// Encodes for the wire.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl ServerMessage {
    /// The same request with `request_id` set (the node that sends it picks the id); any
    /// other message unchanged.
    #[must_use]
    pub fn with_request_id(self, id: u64) -> Self {
        match self {
            Self::FileRequest {
                session_id,
                workspace_id,
                op,
                path,
                content,
                ..
            } => Self::FileRequest {
                request_id: id,
                session_id,
                workspace_id,
                op,
                path,
                content,
            },
            other => other,
        }
    }

    /// Decodes a text frame from the server.
    pub fn decode(frame: &str) -> Result<Self, DecodeError> {
        decode(frame)
    }

    /// Encodes for the wire.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A refusal.
    pub fn refused(code: Refusal, reason: &str) -> Self {
        Self::Refused {
            code,
            reason: reason.to_owned(),
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(frame: &str) -> Result<T, DecodeError> {
    if frame.len() > MAX_MESSAGE_BYTES {
        return Err(DecodeError::TooLarge);
    }
    serde_json::from_str(frame).map_err(|_| DecodeError::Invalid)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn messages_round_trip_and_strangers_are_refused() {
        let hello = AgentMessage::Hello {
            protocol: PROTOCOL_VERSION,
            hostname: "h".into(),
            os: "Debian 12".into(),
            agent_version: "0.1.0".into(),
        };
        assert_eq!(AgentMessage::decode(&hello.encode()).unwrap(), hello);
        let beat = AgentMessage::Heartbeat {
            state: AgentState::Busy,
        };
        assert_eq!(beat.encode(), r#"{"type":"heartbeat","state":"busy"}"#);
        for bad in [
            "",
            "{}",
            r#"{"type":"launch_missiles"}"#,
            r#"{"type":"heartbeat","state":"busy","extra":1}"#,
            r#"{"type":"heartbeat","state":"sleeping"}"#,
            "[1,2,3]",
        ] {
            assert_eq!(
                AgentMessage::decode(bad),
                Err(DecodeError::Invalid),
                "{bad}"
            );
        }
        let huge = format!(
            r#"{{"type":"heartbeat","state":"{}"}}"#,
            "x".repeat(MAX_MESSAGE_BYTES)
        );
        assert_eq!(AgentMessage::decode(&huge), Err(DecodeError::TooLarge));
        let refused = ServerMessage::refused(Refusal::UpgradeRequired, "speak version 1");
        assert_eq!(ServerMessage::decode(&refused.encode()).unwrap(), refused);
        assert!(refused.encode().contains(r#""code":"upgrade-required""#));
        let newer = r#"{"type":"refused","code":"quota-exceeded","reason":"r"}"#;
        assert!(matches!(
            ServerMessage::decode(newer).unwrap(),
            ServerMessage::Refused {
                code: Refusal::Other,
                ..
            }
        ));
        for bad in [
            r#"{"type":"session_ended","session_id":"s","seq":1,"status":"exploded","exit_code":null,"error":null}"#,
            r#"{"type":"session_output","session_id":"s","seq":1,"stream":"stdin","data":""}"#,
        ] {
            assert_eq!(
                AgentMessage::decode(bad),
                Err(DecodeError::Invalid),
                "{bad}"
            );
        }
    }

    #[test]
    fn secrets_travel_but_never_print() {
        let start = ServerMessage::StartSession {
            session_id: "s".into(),
            workspace_id: "w".into(),
            repository: Repository::Url("https://git.example/r.git".into()),
            mode: Mode::Develop,
            argv: vec!["claude".into(), "--print".into(), "hi".into()],
            env: vec![("ANTHROPIC_API_KEY".into(), Secret("sk-live-123".into()))],
            pat: Some(Secret("ghp_456".into())),
            hooks_pre: vec!["make deps".into()],
            hooks_post: Vec::new(),
            base_session: None,
            keep_worktree: false,
        };
        let wire = start.encode();
        assert!(wire.contains("sk-live-123") && wire.contains("ghp_456"));
        assert_eq!(ServerMessage::decode(&wire).unwrap(), start);
        let debug = format!("{start:?}");
        assert!(
            !debug.contains("sk-live-123") && !debug.contains("ghp_456"),
            "{debug}"
        );
    }
}
