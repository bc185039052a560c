//! What requests and responses of the two wire formats carry, read without re-serialising
//! the body: the gateway forwards the bytes it received.

use serde::Deserialize;

/// The endpoints the gateway serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// OpenAI `POST /v1/chat/completions`.
    ChatCompletions,
    /// OpenAI `POST /v1/completions`.
    Completions,
    /// OpenAI `POST /v1/embeddings`.
    Embeddings,
    /// Anthropic `POST /v1/messages`.
    Messages,
}

impl Endpoint {
    /// Its name in call records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ChatCompletions => "chat.completions",
            Self::Completions => "completions",
            Self::Embeddings => "embeddings",
            Self::Messages => "messages",
        }
    }

    /// The path after an upstream's base URL (`…/v1` for OpenAI kinds, the host for
    /// Anthropic).
    pub fn upstream_path(self) -> &'static str {
        match self {
            Self::ChatCompletions => "/chat/completions",
            Self::Completions => "/completions",
            Self::Embeddings => "/embeddings",
            Self::Messages => "/v1/messages",
        }
    }

    /// Whether it speaks Anthropic's format (else OpenAI's).
    pub fn is_anthropic(self) -> bool {
        self == Self::Messages
    }
}

/// What a request says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    /// The model asked for.
    pub model: String,
    /// The most output tokens it allows (`max_tokens`, `max_completion_tokens`).
    pub max_tokens: Option<u64>,
    /// Whether the answer streams as server-sent events.
    pub stream: bool,
}

#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(borrow)]
    model: Option<std::borrow::Cow<'a, str>>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    stream: Option<bool>,
}

/// Why a request body cannot be forwarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadRequest {
    /// Not a JSON object.
    #[error("the body must be a JSON object")]
    NotJson,
    /// No `model`.
    #[error("the request names no model")]
    NoModel,
}

/// Reads what a request says about itself (the rest of the body is not looked at).
pub fn peek(body: &[u8]) -> Result<RequestInfo, BadRequest> {
    let p: Peek<'_> = serde_json::from_slice(body).map_err(|_| BadRequest::NotJson)?;
    let model = p.model.ok_or(BadRequest::NoModel)?;
    if model.is_empty() || model.len() > 256 {
        return Err(BadRequest::NoModel);
    }
    Ok(RequestInfo {
        model: model.into_owned(),
        max_tokens: p.max_completion_tokens.or(p.max_tokens),
        stream: p.stream.unwrap_or(false),
    })
}

/// The body with its `model` replaced (an alias resolved). The other members keep their
/// bytes; only the top level is written again.
pub fn with_model(body: &[u8], model: &str) -> Result<Vec<u8>, BadRequest> {
    let mut map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(|_| BadRequest::NotJson)?;
    map.insert("model".into(), serde_json::Value::String(model.to_owned()));
    serde_json::to_vec(&map).map_err(|_| BadRequest::NotJson)
}

/// Tokens a call used, as the upstream reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Input (prompt) tokens.
    pub input: u64,
    /// Output (completion) tokens.
    pub output: u64,
    /// Whether the upstream reported them (else they are the gateway's estimate).
    pub reported: bool,
}

#[derive(Deserialize, Default)]
struct UsageFields {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct WithUsage {
    usage: Option<UsageFields>,
    message: Option<Box<WithUsage>>,
}

fn fields_into(u: &UsageFields, into: &mut Usage) {
    let input = u.prompt_tokens.or(u.input_tokens.map(|i| {
        i + u.cache_creation_input_tokens.unwrap_or(0) + u.cache_read_input_tokens.unwrap_or(0)
    }));
    if let Some(i) = input {
        into.input = into.input.max(i);
        into.reported = true;
    }
    if let Some(o) = u.completion_tokens.or(u.output_tokens) {
        into.output = into.output.max(o);
        into.reported = true;
    }
}

/// The usage a complete (non-streaming) response reports.
pub fn response_usage(body: &[u8]) -> Usage {
    let mut usage = Usage::default();
    if let Ok(w) = serde_json::from_slice::<WithUsage>(body)
        && let Some(u) = &w.usage
    {
        fields_into(u, &mut usage);
    }
    usage
}

/// Reads the usage out of a stream of server-sent events as it passes, chunk by chunk,
/// holding only the line in progress. OpenAI reports usage in a last chunk (when the
/// client asked for it); Anthropic in `message_start` (input) and `message_delta` (output).
/// Without a report, each event carrying content counts as one output token.
#[derive(Debug, Default)]
pub struct StreamMeter {
    line: Vec<u8>,
    usage: Usage,
    events: u64,
}

/// The longest event line kept for reading usage; longer lines are passed on unread.
const LINE_MAX: usize = 64 * 1024;

impl StreamMeter {
    /// Reads one chunk.
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            if self.line.len() + i <= LINE_MAX {
                self.line.extend_from_slice(&rest[..i]);
                let line = std::mem::take(&mut self.line);
                self.line_done(&line);
                self.line = line;
            }
            self.line.clear();
            rest = &rest[i + 1..];
        }
        if self.line.len() + rest.len() <= LINE_MAX {
            self.line.extend_from_slice(rest);
        } else {
            self.line.clear();
        }
    }

    fn line_done(&mut self, line: &[u8]) {
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        let data = data.trim_ascii();
        if data.is_empty() || data == b"[DONE]" {
            return;
        }
        self.events += 1;
        if memchr_usage(data)
            && let Ok(w) = serde_json::from_slice::<WithUsage>(data)
        {
            if let Some(u) = &w.usage {
                fields_into(u, &mut self.usage);
            }
            if let Some(m) = &w.message
                && let Some(u) = &m.usage
            {
                fields_into(u, &mut self.usage);
            }
        }
    }

    /// What the stream reported so far (or, when it reported nothing, one output token per
    /// event).
    pub fn usage(&self) -> Usage {
        if self.usage.reported {
            self.usage
        } else {
            Usage {
                input: 0,
                output: self.events,
                reported: false,
            }
        }
    }
}

fn memchr_usage(data: &[u8]) -> bool {
    data.windows(7).any(|w| w == b"\"usage\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_read_without_its_other_members() {
        let info = peek(br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"max_tokens":50,"stream":true}"#).unwrap();
        assert_eq!(info.model, "gpt-4o");
        assert_eq!(info.max_tokens, Some(50));
        assert!(info.stream);
        assert_eq!(peek(b"[1,2]"), Err(BadRequest::NotJson));
        assert_eq!(peek(b"{\"messages\":[]}"), Err(BadRequest::NoModel));
        let renamed = with_model(br#"{"model":"fast","x":{"y":[1,2.50]}}"#, "gpt-4o").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&renamed).unwrap();
        assert_eq!(v["model"], "gpt-4o");
        assert_eq!(v["x"]["y"][1], 2.5);
    }

    #[test]
    fn usage_is_read_from_both_formats() {
        let u = response_usage(
            br#"{"id":"x","usage":{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42}}"#,
        );
        assert_eq!((u.input, u.output, u.reported), (12, 30, true));
        let u = response_usage(br#"{"id":"x","usage":{"input_tokens":7,"output_tokens":9}}"#);
        assert_eq!((u.input, u.output), (7, 9));
        assert!(!response_usage(b"{}").reported);
    }

    #[test]
    fn a_stream_is_metered_across_chunk_boundaries() {
        let stream = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n\
            event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hi\"}}\n\n\
            event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n";
        for split in [1, 7, 50, stream.len()] {
            let mut m = StreamMeter::default();
            for c in stream.as_bytes().chunks(split) {
                m.feed(c);
            }
            let u = m.usage();
            assert_eq!(
                (u.input, u.output, u.reported),
                (25, 15, true),
                "split {split}"
            );
        }
        let mut m = StreamMeter::default();
        m.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\ndata: [DONE]\n\n");
        assert_eq!(m.usage().output, 2);
        assert!(!m.usage().reported);
    }
}
