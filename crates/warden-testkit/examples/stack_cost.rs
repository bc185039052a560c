//! What Warden's HTTP stack costs per request in-process (no sockets): the full service
//! against a bare axum router, both serving `/healthz`. Finds where the throughput gap in
//! BENCHMARKS.md comes from. `cargo run --release -p warden-testkit --example stack_cost`

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::Request;
use tower::{Service, ServiceExt};
use warden_crypto::MasterKey;
use warden_domain::clock::SystemClock;
use warden_server::config::Config;

async fn per_request<S>(mut svc: S, n: u32) -> anyhow::Result<f64>
where
    S: Service<Request<Body>, Response = axum::response::Response>,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    let started = Instant::now();
    for _ in 0..n {
        let mut req = Request::get("/healthz").body(Body::empty())?;
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                40000,
            ))));
        let res = svc.ready().await?.call(req).await?;
        drop(res);
    }
    Ok(started.elapsed().as_nanos() as f64 / f64::from(n))
}

#[tokio::main(flavor = "current_thread")]
#[allow(clippy::print_stdout)]
async fn main() -> anyhow::Result<()> {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(300_000);
    let defaults = Config::defaults()?;
    let db = warden_testkit::TestDb::new().await?;
    let store = db.store().await?;
    let (app_state, _background) = warden_server::boot::state(
        &defaults,
        store,
        &MasterKey::generate()?,
        Arc::new(SystemClock),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let http = defaults.http.clone();
    let app = warden_server::http::assemble(
        app_state.clone(),
        warden_server::api::routes(),
        &http,
        false,
        Some(warden_server::llm::DEFAULT_PREFIX),
    );
    let bare = axum::Router::new().route(
        "/healthz",
        axum::routing::get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
    );
    let (router, _, table) = warden_server::api::routes().into_parts();
    let routed = router.clone().with_state(app_state.clone());
    let guarded = router
        .route_layer(warden_server::http::guard::AccessGuardLayer::new(
            table.clone(),
            app_state.ctx.identity.clone(),
            app_state.ctx.clone(),
            Arc::new(warden_core::hosts::gate::HostGate::new(
                app_state.ctx.store.clone(),
                app_state.ctx.audit_key.clone(),
                app_state.ctx.clock.clone(),
                app_state.ctx.hosts.clone(),
                app_state.ctx.host_tickets.clone(),
            )),
            Arc::new(warden_core::audit::denials::Denials::new(
                app_state.ctx.store.clone(),
                app_state.ctx.audit_key.clone(),
                app_state.ctx.clock.clone(),
            )),
        ))
        .with_state(app_state.clone());
    let limited = tower::ServiceBuilder::new()
        .layer(axum::extract::DefaultBodyLimit::max(1 << 20))
        .service(guarded.clone());
    for _ in 0..2 {
        let b = per_request(bare.clone().into_service::<Body>(), n).await?;
        let r = per_request(routed.clone().into_service::<Body>(), n).await?;
        let g = per_request(guarded.clone().into_service::<Body>(), n).await?;
        let l = per_request(limited.clone(), n).await?;
        let w = per_request(app.service.clone(), n).await?;
        println!(
            "ns/request: bare {b:.0} | warden routes {r:.0} | + access guard {g:.0} | + body limit {l:.0} | + edge (everything) {w:.0}"
        );
    }
    Ok(())
}
