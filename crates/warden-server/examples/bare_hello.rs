//! The baseline for the `/healthz` benchmark (BENCHMARKS.md): a bare axum hello-world with no
//! middleware, on the same runtime and build profile as `warden serve`.

use axum::{Json, Router, routing::get};
use serde_json::json;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    let app = Router::new().route("/healthz", get(|| async { Json(json!({"status": "ok"})) }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await
}
