//! Warden's storage: one query layer over SQLite (embedded default) and PostgreSQL.
//!
//! Query text is written once and runs on both backends (`$1` placeholders work on both); each
//! backend has its own migrations under `migrations/{sqlite,postgres}`. Backend differences
//! (connection settings, locking, transaction start) stay inside this crate and never leak to
//! callers. Nothing here formats a connection URL or secret into an error.

pub mod alerts;
pub mod audit;
pub mod automations;
mod backup;
pub mod bots;
mod checkpoint;
pub mod cluster;
mod db;
pub mod device;
mod error;
pub mod event_sources;
pub mod gauges;
pub mod hosts;
pub mod identity;
pub mod invitations;
pub mod jobs;
pub mod keyring;
pub mod license;
pub mod links;
pub mod llm;
pub mod mail;
pub mod mcp;
mod migrate;
pub mod passkeys;
pub mod personal_tokens;
pub mod roles;
pub mod saml;
pub mod scim;
pub mod sealed;
pub mod service_keys;
pub mod sessions;
pub mod sign_in;
pub mod sso;
pub mod sso_groups;
pub mod tenancy;
pub mod throttle;
pub mod ticket_sync;
pub mod tickets;
pub mod webhook_inbox;
pub mod workflows;

pub use db::{Backend, ConnectOptions, Store, Tx, background, sqlite_file};
pub use error::StoreError;
pub use migrate::{MigrationReport, latest_schema_version};
