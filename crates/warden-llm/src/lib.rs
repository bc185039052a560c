//! The LLM gateway's protocol side, with no storage and no policy in it:
//!
//! - [`wire`]: what an OpenAI- or Anthropic-style request says about itself (model, token
//!   limit, streaming) read without re-serialising it, and the usage a response or a stream
//!   of server-sent events reports.
//! - [`filters`]: the content filters — secrets (provider and cloud keys, private keys,
//!   high-entropy tokens, the workspace's own stored values), personal data (emails, phone
//!   numbers, IBANs and card numbers that pass their checksums), deny-listed phrases and
//!   prompt-injection markers — each decision naming the rule that fired, never the text.
//! - [`upstream`]: the pooled outbound client (HTTP/1.1 and HTTP/2, timeouts, no redirects,
//!   no proxy) under the identity issue's SSRF rules.

pub mod filters;
pub mod upstream;
pub mod wire;
