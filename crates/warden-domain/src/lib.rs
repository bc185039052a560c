//! Warden's domain: the values and rules every other crate agrees on.
//!
//! This crate owns identifiers, access rules and the clock interface. It must never do I/O:
//! no sockets, no files, no database, no web framework.

pub mod access;
pub mod alerts;
pub mod audit;
pub mod clock;
pub mod device;
pub mod hosts;
pub mod identity;
pub mod license;
pub mod organizations;
pub mod request_id;
pub mod scim;
pub mod sessions;
pub mod tenancy;
pub mod tickets;
pub mod workflows;
