//! Warden's use cases: one public function per thing a user or a job can do, grouped by area.
//!
//! Every use case takes the node's [`Ctx`], the [`Op`] (who, from where, when) and, where it
//! touches tenant data, the grant the access guard minted. It opens the transaction, applies
//! the rules, records the audit event and commits; it returns domain rows or a [`CoreError`]
//! with a registered code. This crate knows no HTTP: the server, the console and jobs are its
//! front ends.

pub mod access;
pub mod activity;
pub mod admin;
pub mod alerts;
pub mod audit;
pub mod automations;
pub mod bots;
pub mod cluster;
pub mod costly;
pub mod ctx;
pub mod encryption;
pub mod error;
pub mod hosts;
pub mod identity;
pub mod invitations;
pub mod jobs;
pub mod license;
pub mod llm;
pub mod mail;
pub mod mcp;
pub mod metrics;
pub mod op;
pub mod organizations;
pub mod paging;
pub mod scim;
pub mod secrets;
pub mod service_keys;
pub mod sessions;
pub mod settings;
pub mod sso;
pub mod tickets;
pub mod webhooks;
pub mod workflows;
pub mod workspaces;

pub use ctx::Ctx;
pub use error::{Code, CoreError, CoreResult};
pub use op::{Op, Origin};
