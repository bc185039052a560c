//! Warden's server: configuration, start-up, the HTTP stack and its routes.
//!
//! Handlers stay thin: they extract inputs, call one function of the core, and return
//! [`http::problem::ApiError`] on failure. Every route declares its access rule where it is
//! registered ([`http::routes::Routes::add`]).

pub mod agent;
pub mod api;
pub mod audit;
pub mod boot;
pub mod config;
pub mod console;
pub mod http;
pub mod identity;
pub mod llm;
pub mod logging;
pub mod mcp;
pub mod metrics;
pub mod scim;
pub mod state;
pub mod tls;
