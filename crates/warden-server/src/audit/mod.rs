//! The server's side of the audit trail: background chaining and verification, the filters
//! clients send, and the CSV export.

pub mod csv;
pub mod denials;
pub mod filter;
mod monitor;
pub mod request;

pub use monitor::{AuditMonitor, AuditStatus, GATHER, Schedule};
pub use warden_store::audit::Tamper;
