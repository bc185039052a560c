//! The listener: accepts connections (plain or TLS) and serves each with hyper, with the limits
//! that keep a slow or greedy client from holding the server:
//!
//! - a header-read timeout from the connection's start and between requests on a keep-alive
//!   connection (so idle and half-sent requests end), the same bound on the TLS handshake and
//!   on an HTTP/2 client's preface;
//! - at most `max_connections` open at once, and `max_connections_per_ip` from one address
//!   (an upgraded connection, e.g. a host's WebSocket, counts until it closes); beyond them
//!   the connection waits in the kernel's accept queue (global) or is closed at once (per
//!   address);
//! - an accept queue long enough for a burst of connections ([`ACCEPT_BACKLOG`]);
//! - the soft open-files limit raised to the hard one at start, the connection cap derived
//!   from it unless set ([`connection_budget`]), and an accept error (out of descriptors)
//!   answered by a short pause instead of a busy loop.
//!
//! Shutdown: stop accepting, ask every connection to finish its requests and close, wait for
//! them (the caller bounds the wait by the grace period).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use super::Service;
use super::middleware::WithPeer;

/// The limits of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time for a request's headers (and the TLS handshake, and an HTTP/2 preface).
    pub header_read_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections open at once from one client address.
    pub max_connections_per_ip: usize,
}

/// Raises the soft open-files limit to the hard limit; returns the limit now in force.
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if let Some(hard) = limit.maximum
        && limit.current != Some(hard)
    {
        limit.current = Some(hard);
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(error = %e, "cannot raise the open-files limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

/// The accept queue's length (the kernel caps it at `net.core.somaxconn`): a burst of new
/// connections — hosts reconnecting after a restart, a flood — waits there to be accepted.
/// With the standard library's 128, the rest of a burst had its handshakes dropped and
/// retried by the clients' kernels a second or more later.
pub const ACCEPT_BACKLOG: i32 = 4096;

/// Lengthens `listener`'s accept queue to [`ACCEPT_BACKLOG`] (listening again on a listening
/// socket changes only its backlog).
pub fn lengthen_accept_queue(listener: &std::net::TcpListener) {
    if let Err(e) = rustix::net::listen(listener, ACCEPT_BACKLOG) {
        tracing::warn!(error = %e, "cannot lengthen the accept queue");
    }
}

/// Descriptors kept for everything but client connections (the database, data files, git,
/// agent processes, outgoing calls) when the connection cap is derived from the limit.
pub const RESERVED_FILES: u64 = 1024;
/// The derived connection cap never exceeds this (an idle connection costs a few KiB; this
/// bounds what idle clients can make the server hold).
pub const MAX_DERIVED_CONNECTIONS: u64 = 65_536;

/// The connection cap when `http.max_connections` is not set: what the open-files limit
/// (`open_files`, after [`raise_open_files_limit`]) leaves once [`RESERVED_FILES`] are kept
/// back, at most [`MAX_DERIVED_CONNECTIONS`] and at least 64. So the server accepts only
/// connections it can hold, and an accept never fails for want of descriptors.
pub fn connection_budget(open_files: Option<u64>) -> usize {
    let budget = open_files.map_or(MAX_DERIVED_CONNECTIONS, |files| {
        files
            .saturating_sub(RESERVED_FILES)
            .clamp(64, MAX_DERIVED_CONNECTIONS)
    });
    usize::try_from(budget).unwrap_or(usize::MAX)
}

/// Counts connections per client address.
#[derive(Debug, Default)]
struct PerIp(Mutex<HashMap<IpAddr, usize>>);

impl PerIp {
    fn admit(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            table: self.clone(),
            ip,
        })
    }
}

/// One connection's place in the per-address count; freed when the connection's I/O is
/// dropped (after an upgrade too).
#[derive(Debug)]
struct IpSlot {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut map = self.table.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// A connection's stream with its places in the counts, and an optional deadline by which
/// the first `need` bytes must have arrived (the HTTP/2 preface).
struct Guarded<S> {
    inner: S,
    _global: tokio::sync::OwnedSemaphorePermit,
    _ip: IpSlot,
    preface: Option<(usize, Pin<Box<tokio::time::Sleep>>)>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let got = buf.filled().len() - before;
        if let Some((need, deadline)) = &mut self.preface {
            *need = need.saturating_sub(got);
            if *need == 0 {
                self.preface = None;
            } else if polled.is_pending() && deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The length of the HTTP/2 connection preface.
const H2_PREFACE_LEN: usize = 24;

/// Serves `service` on `listener` until `stop` fires, then lets open connections finish.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    service: Service,
    limits: Limits,
    mut stop: oneshot::Receiver<()>,
) -> io::Result<()> {
    let global = Arc::new(Semaphore::new(limits.max_connections));
    let per_ip = Arc::new(PerIp::default());
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let (closing_tx, closing) = watch::channel(false);
    // Each connection task holds a sender: when all are gone, every connection has ended.
    let (alive, mut all_done) = mpsc::channel::<()>(1);
    loop {
        let permit = tokio::select! {
            permit = global.clone().acquire_owned() => permit.map_err(io::Error::other)?,
            _ = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or the like: pause rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let Some(ip_slot) = per_ip.admit(peer.ip().to_canonical(), limits.max_connections_per_ip)
        else {
            // Debug, not info: one address's flood must not become a flood of log lines.
            tracing::debug!(peer = %peer.ip(), "connection refused: too many from this address");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            stream,
            peer,
            permit,
            ip_slot,
            service: service.clone(),
            limits,
            acceptor: acceptor.clone(),
            closing: closing.clone(),
            alive: alive.clone(),
        };
        tokio::spawn(connection.run());
    }
    drop(listener);
    let _ = closing_tx.send(true);
    drop(alive);
    let _ = all_done.recv().await;
    Ok(())
}

struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    permit: tokio::sync::OwnedSemaphorePermit,
    ip_slot: IpSlot,
    service: Service,
    limits: Limits,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    closing: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
}

impl Connection {
    async fn run(self) {
        let Self {
            stream,
            peer,
            permit,
            ip_slot,
            service,
            limits,
            acceptor,
            closing,
            alive,
        } = self;
        let service = hyper_util::service::TowerToHyperService::new(WithPeer::new(service, peer));
        let timeout = limits.header_read_timeout;
        match acceptor {
            None => {
                let io = Guarded {
                    inner: stream,
                    _global: permit,
                    _ip: ip_slot,
                    preface: None,
                };
                serve_h1(io, service, timeout, closing).await;
            }
            // Boxed: the TLS handshake's state (rustls) is large, and a task is as large as
            // its largest state; plain connections should not pay for it. (Measured: with
            // 10,000 idle plain connections the unboxed layout cost ~1-2 KiB each.)
            Some(acceptor) => {
                Box::pin(serve_tls(
                    acceptor, stream, peer, permit, ip_slot, service, timeout, closing,
                ))
                .await;
            }
        }
        drop(alive);
    }
}

#[allow(clippy::too_many_arguments)]
async fn serve_tls(
    acceptor: tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    permit: tokio::sync::OwnedSemaphorePermit,
    ip_slot: IpSlot,
    service: HyperService,
    timeout: Duration,
    closing: watch::Receiver<bool>,
) {
    let Ok(Ok(tls)) = tokio::time::timeout(timeout, acceptor.accept(stream)).await else {
        tracing::debug!(peer = %peer.ip(), "TLS handshake failed or timed out");
        return;
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = Guarded {
        inner: tls,
        _global: permit,
        _ip: ip_slot,
        preface: h2.then(|| (H2_PREFACE_LEN, Box::pin(tokio::time::sleep(timeout)))),
    };
    if h2 {
        serve_h2(io, service, closing).await;
    } else {
        serve_h1(io, service, timeout, closing).await;
    }
}

type HyperService = hyper_util::service::TowerToHyperService<WithPeer<Service>>;

async fn serve_h1<S>(
    io: S,
    service: HyperService,
    header_read_timeout: Duration,
    mut closing: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = closing.wait_for(|c| *c) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

async fn serve_h2<S>(io: S, service: HyperService, mut closing: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(20));
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = closing.wait_for(|c| *c) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_derived_connection_cap_keeps_descriptors_back_and_stays_bounded() {
        assert_eq!(connection_budget(Some(20_000)), 18_976);
        assert_eq!(connection_budget(Some(1_048_576)), 65_536);
        assert_eq!(connection_budget(Some(1024)), 64);
        assert_eq!(connection_budget(Some(0)), 64);
        assert_eq!(connection_budget(None), 65_536);
    }
}
