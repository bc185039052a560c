//! Warden's integration suite: one binary, each test with its own app and database.
//! Storage-touching tests run on the backend named by `TESTKIT_BACKEND`; `scripts/test` runs
//! the suite on both.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agent;
mod alerts;
mod api_schema;
mod audit;
mod automations;
mod backup;
mod bots;
mod browser;
mod cli;
mod cluster;
mod connections;
mod console;
mod console_admin;
mod crash;
mod database_outage;
mod device;
mod directory_groups;
mod disk_full;
mod exhaustion;
mod hosts;
mod http;
mod identity;
mod invitations;
mod license;
mod links;
mod llm;
mod llm_governance;
mod llm_place;
mod local;
mod lost_sessions;
mod mail;
mod master_key;
mod mcp;
mod metrics;
mod organizations;
mod organizations_admin;
mod organizations_directories;
mod passkeys;
mod passwordless;
mod postgres_tls;
mod routes;
#[cfg(feature = "saml")]
mod saml;
#[cfg(feature = "saml")]
mod saml_groups;
mod scim;
mod service_keys;
mod sso;
mod sso_discovery;
mod sso_tokens;
mod storage;
mod tenancy;
mod ticket_sync;
mod tickets;
mod tls;
mod tokens;
mod traces;
mod webhooks;
mod workflows;
