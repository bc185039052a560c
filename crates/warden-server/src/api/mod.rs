//! The HTTP API, one module per area. Each area exposes `routes()`, registering every handler
//! with its access rule; [`routes`] gathers them all.

pub mod audit;
pub mod health;
pub mod openapi;

use crate::http::routes::Routes;
use crate::state::AppState;

/// Every route Warden serves.
pub fn routes() -> Routes<AppState> {
    Routes::new()
        .merge(audit::routes())
        .merge(health::routes())
        .merge(openapi::routes())
}
