//! A streamed answer, passed through chunk by chunk as the upstream sends it: nothing is
//! buffered on the way. The chunks are metered as they pass (usage events), and the call is
//! settled and recorded when the stream ends — or when the client goes away first, in which
//! case dropping the stream drops the upstream connection (the upstream call is cancelled)
//! and the call is settled with what had passed, recorded with status 499.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::Stream;
use futures_util::stream::BoxStream;
use warden_core::Ctx;
use warden_core::llm::Admitted;
use warden_llm::wire::StreamMeter;

use crate::http::middleware::Verbatim;

/// Captured content kept per streamed answer, at most.
const CAPTURE_MAX: usize = 1024 * 1024;

struct Metered {
    inner: BoxStream<'static, reqwest::Result<Bytes>>,
    meter: StreamMeter,
    capture: Option<Vec<u8>>,
    pending: Option<(Arc<Ctx>, Admitted, u16)>,
}

impl Metered {
    fn settle(&mut self, status: u16) {
        if let Some((ctx, admitted, upstream_status)) = self.pending.take() {
            let status = if status == 0 { upstream_status } else { status };
            let usage = self.meter.usage();
            ctx.llm
                .finish_detached(&ctx, admitted, status, usage, self.capture.as_deref());
        }
    }
}

impl Stream for Metered {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.meter.feed(&chunk);
                if let Some(c) = self.capture.as_mut()
                    && c.len() < CAPTURE_MAX
                {
                    let room = CAPTURE_MAX - c.len();
                    c.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(_))) => {
                // The upstream broke off: the client's stream ends with the error.
                self.settle(502);
                Poll::Ready(Some(Err(std::io::Error::other("the upstream broke off"))))
            }
            Poll::Ready(None) => {
                self.settle(0);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        // The client went away before the end.
        self.settle(499);
    }
}

/// Answers with the upstream's stream.
pub(super) fn response(
    ctx: Arc<Ctx>,
    admitted: Admitted,
    status: StatusCode,
    content_type: Option<HeaderValue>,
    upstream: reqwest::Response,
) -> Response {
    let capture = admitted.captures().then(Vec::new);
    let metered = Metered {
        inner: Box::pin(upstream.bytes_stream()),
        meter: StreamMeter::default(),
        capture,
        pending: Some((ctx, admitted, status.as_u16())),
    };
    let mut res = Response::new(Body::from_stream(metered));
    *res.status_mut() = status;
    let h = res.headers_mut();
    if let Some(ct) = content_type {
        h.insert(header::CONTENT_TYPE, ct);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    res.extensions_mut().insert(Verbatim);
    res
}
