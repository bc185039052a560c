//! What handlers share: the use cases' context ([`Ctx`]) and the served OpenAPI document.
//!
//! axum clones the state for every request, so it is one `Arc`: a clone is a single
//! reference-count increment however much the state grows.

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use warden_core::Ctx;

/// Shared by every handler. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

/// The contents of [`AppState`]: the use cases' [`Ctx`], and what only HTTP needs.
#[derive(Debug)]
pub struct Shared {
    /// What the core's use cases need: store, keyring, audit key, clock, licence, mail.
    pub ctx: Arc<Ctx>,
    /// Signs audit checkpoints.
    pub checkpoint_signer: Arc<warden_store::audit::CheckpointSigner>,
    /// The MCP endpoint (the SDK's service over this node's use cases).
    pub mcp: crate::mcp::McpService,
    /// Prometheus metrics, when `metrics.token_file` turns them on.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// The OpenAPI document as JSON, filled once the routes are assembled.
    pub openapi_json: OnceLock<String>,
}

impl AppState {
    /// Wraps the shared parts.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
