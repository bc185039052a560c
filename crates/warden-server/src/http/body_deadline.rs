//! A request body that must arrive by a deadline, counted from the moment its headers were
//! read: a client that sends its headers and then trickles the body (a slowloris on the body)
//! is cut off after `http.body_read_timeout_secs`, whatever the route's own timeout (the LLM
//! gateway's and MCP's run to minutes). The body then fails to read and the edge answers 408
//! and closes the connection ([`Expired`] tells it so).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{HeaderMap, header};
use http_body::{Frame, SizeHint};

/// Whether a request's body deadline passed before the body was read.
#[derive(Debug, Clone, Default)]
pub struct Expired(Arc<AtomicBool>);

impl Expired {
    /// Whether the deadline passed while the body was still being read.
    pub fn expired(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Whether a request with these headers carries a body at all (the deadline is only set on
/// those, so a plain GET pays nothing).
pub fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

/// `body`, failing once `within` has passed without it being read to its end.
pub fn limit(body: Body, within: Duration) -> (Body, Expired) {
    let expired = Expired::default();
    let body = Body::new(Deadline {
        inner: body,
        sleep: tokio::time::sleep(within),
        expired: expired.clone(),
    });
    (body, expired)
}

/// The error a body whose deadline passed gives its reader.
#[derive(Debug)]
struct TooSlow;

impl std::fmt::Display for TooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for TooSlow {}

pin_project_lite::pin_project! {
    struct Deadline {
        #[pin]
        inner: Body,
        #[pin]
        sleep: tokio::time::Sleep,
        expired: Expired,
    }
}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.sleep.poll(cx).is_ready() {
            this.expired.0.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(Box::new(TooSlow))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn a_body_that_stalls_past_the_deadline_fails_and_says_so() {
        // Half a JSON object, then nothing more.
        let first = Ok::<_, std::io::Error>(Bytes::from_static(b"{\"a\":"));
        let stalled = futures_util::stream::iter([first]).chain(futures_util::stream::pending());
        let (body, expired) = limit(Body::from_stream(stalled), Duration::from_millis(200));
        let mut stream = body.into_data_stream();
        assert_eq!(stream.next().await.unwrap().unwrap(), "{\"a\":");
        assert!(!expired.expired());
        let err = stream.next().await.unwrap().unwrap_err();
        assert!(err.to_string().contains("did not arrive in time"), "{err}");
        assert!(expired.expired());
    }

    #[tokio::test]
    async fn a_body_read_in_time_is_untouched() {
        let (body, expired) = limit(Body::from("hello"), Duration::from_millis(200));
        let bytes = axum::body::to_bytes(body, 100).await.unwrap();
        assert_eq!(bytes, "hello");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!expired.expired());
    }

    #[test]
    fn only_requests_with_a_body_get_a_deadline() {
        let mut h = HeaderMap::new();
        assert!(!has_body(&h));
        h.insert(header::CONTENT_LENGTH, "0".parse().unwrap());
        assert!(!has_body(&h));
        h.insert(header::CONTENT_LENGTH, "12".parse().unwrap());
        assert!(has_body(&h));
        let mut h = HeaderMap::new();
        h.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        assert!(has_body(&h));
    }
}
