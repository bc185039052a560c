//! The server's side of the audit trail: the filters clients send, and what an audit event
//! records about the request that caused it. Chaining, verification, denials and the export
//! are `warden_core::audit`.

pub mod filter;
pub mod request;
