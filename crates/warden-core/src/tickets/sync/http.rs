//! The HTTP side every tracker client shares: a client that refuses private addresses
//! (unless the operator allowed private trackers) and link-local ones always, follows no
//! redirects and no link to another origin (the token goes only where the workspace pointed
//! it), caps answers at 16 MiB, and honours rate limits: once `x-ratelimit-remaining` reaches
//! 0, or the tracker answers 403/429 with a rate-limit or `retry-after` header, no further
//! call is made until the reset. Error texts never carry the token or a response body.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;
use warden_oidc::http::Guard;

const TIMEOUT: Duration = Duration::from_secs(20);
const MAX_BODY: usize = 16 << 20;

/// Why a call failed, in words safe to store and show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The tracker's rate limit holds further calls until then (Unix seconds).
    RateLimited(&'static str, i64),
    /// The tracker answered, refusing; the text says why.
    Refused(String),
    /// The tracker could not be reached.
    Unreachable(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::RateLimited(name, until) => write!(
                f,
                "{name}'s rate limit is used up until {}; the sync goes on then",
                crate::op::rfc3339(until.saturating_mul(1_000_000))
            ),
            Self::Refused(why) | Self::Unreachable(why) => f.write_str(why),
        }
    }
}

/// Unix seconds, from the node's clock.
pub type Now = Arc<dyn Fn() -> i64 + Send + Sync>;

/// One tracker's HTTP client, with its credentials and rate-limit state.
pub struct Http {
    client: reqwest::Client,
    base: url::Url,
    auth: HeaderValue,
    /// The tracker's name as people know it.
    pub name: &'static str,
    /// What the token reaches there (`repository team/app`), for a 404's text.
    what: String,
    now: Now,
    held_until: Mutex<Option<i64>>,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("name", &self.name)
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl Http {
    /// A client for the tracker at `base`, sending `auth` (marked sensitive) and `headers`
    /// with every call.
    pub fn new(
        name: &'static str,
        base: &str,
        what: String,
        mut auth: HeaderValue,
        headers: HeaderMap,
        allow_private: bool,
        now: Now,
    ) -> Result<Self, CallError> {
        let base = warden_llm::upstream::check_base_url(base, allow_private)
            .map_err(|e| CallError::Refused(format!("the tracker's address is {e}")))?;
        auth.set_sensitive(true);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .no_proxy()
            .user_agent("warden-ticket-sync")
            .default_headers(headers)
            .dns_resolver(Arc::new(Guard {
                allow_private,
                never_link_local: true,
            }))
            .build()
            .map_err(|_| CallError::Unreachable("cannot build an HTTP client".into()))?;
        Ok(Self {
            client,
            base,
            auth,
            name,
            what,
            now,
            held_until: Mutex::new(None),
        })
    }

    /// The base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// Whether `url` is on the tracker's own origin.
    pub fn same_origin(&self, url: &str) -> bool {
        url::Url::parse(url).is_ok_and(|u| u.origin() == self.base.origin())
    }

    /// Parses an answer.
    pub fn parse<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CallError> {
        serde_json::from_slice(bytes).map_err(|_| {
            CallError::Refused(format!(
                "{}'s answer is not what its API documents",
                self.name
            ))
        })
    }

    /// One call: its headers and body, or why not.
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<(HeaderMap, Vec<u8>), CallError> {
        let now = (self.now)();
        if let Some(until) = *self.held_until.lock().map_err(|_| poisoned())?
            && until > now
        {
            return Err(CallError::RateLimited(self.name, until));
        }
        if !self.same_origin(url) {
            return Err(CallError::Refused(format!(
                "{} pointed somewhere else; not followed",
                self.name
            )));
        }
        let mut request = self
            .client
            .request(method, url)
            .header(reqwest::header::AUTHORIZATION, self.auth.clone());
        if let Some((content_type, bytes)) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(bytes);
        }
        let name = self.name;
        let mut response = request.send().await.map_err(|e| {
            CallError::Unreachable(if e.is_timeout() {
                format!("{name} did not answer in time")
            } else {
                format!("{name} could not be reached")
            })
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let remaining = header_i64(&headers, "x-ratelimit-remaining");
        let reset = header_i64(&headers, "x-ratelimit-reset");
        let retry_after = header_i64(&headers, "retry-after");
        let limited_until = match (remaining, reset, retry_after) {
            (_, _, Some(secs)) if !status.is_success() => Some(now + secs.max(1)),
            (Some(0), Some(reset), _) => Some(reset.max(now + 1)),
            _ => None,
        };
        if let Some(until) = limited_until {
            *self.held_until.lock().map_err(|_| poisoned())? = Some(until);
            if matches!(status.as_u16(), 403 | 429) {
                return Err(CallError::RateLimited(name, until));
            }
        }
        if !status.is_success() {
            return Err(CallError::Refused(match status.as_u16() {
                401 => format!("{name} refused the personal access token (401)"),
                403 => format!(
                    "{name} refused access (403): the token may lack the permission to read and \
                     write issues or work items"
                ),
                404 => format!("{name} has no {} that this token can see (404)", self.what),
                n => format!("{name} answered {n}"),
            }));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|_| CallError::Unreachable(format!("{name}'s answer was cut off")))?
        {
            if bytes.len() + chunk.len() > MAX_BODY {
                return Err(CallError::Refused(format!("{name}'s answer is too large")));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok((headers, bytes))
    }
}

fn poisoned() -> CallError {
    CallError::Unreachable("the rate-limit state is unusable".into())
}

fn header_i64(headers: &HeaderMap, name: &str) -> Option<i64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Whether `part` may be one segment of a tracker path (`owner`, `repo`, an organization or
/// project name): letters, digits, `-`, `_`, `.`, at most 100 characters, not `.` or `..`.
pub fn valid_segment(part: &str) -> bool {
    !part.is_empty()
        && part.len() <= 100
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && part != "."
        && part != ".."
}
