//! Request ids: kept from the client when well formed, made fresh otherwise.

use std::fmt;
use std::sync::Arc;

/// A request correlation id: 1 to 64 characters from `[A-Za-z0-9._:-]`.
///
/// The restriction keeps ids safe to echo in headers, log lines and problem documents
/// (no spaces, quotes, control characters or header injection).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(Arc<str>);

/// The longest request id accepted from a client.
pub const MAX_REQUEST_ID_LEN: usize = 64;

impl RequestId {
    /// Accepts a client-supplied id if it is well formed.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= MAX_REQUEST_ID_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        ok.then(|| Self(Arc::from(raw)))
    }

    /// A fresh id (UUIDv7, so ids sort by time). Within one millisecond ids are ordered only
    /// by their random part, which is fine for correlation.
    pub fn generate() -> Self {
        let id = uuid::Uuid::new_v7(uuid::Timestamp::now(uuid::NoContext));
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        Self(Arc::from(&*id.hyphenated().encode_lower(&mut buf)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_ids_are_kept() {
        for ok in ["abc", "0192f0c4-7b2e-7cc0-8000-000000000000", "trace:1.2_3"] {
            assert_eq!(RequestId::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn malformed_ids_are_refused() {
        let long = "a".repeat(MAX_REQUEST_ID_LEN + 1);
        for bad in [
            "",
            " ",
            "a b",
            "a\r\nSet-Cookie: x",
            "<script>",
            "é",
            long.as_str(),
        ] {
            assert!(RequestId::parse(bad).is_none(), "{bad:?} accepted");
        }
    }

    #[test]
    fn generated_ids_are_well_formed_and_distinct() {
        let a = RequestId::generate();
        let b = RequestId::generate();
        assert_ne!(a, b);
        assert!(RequestId::parse(a.as_str()).is_some());
    }
}
