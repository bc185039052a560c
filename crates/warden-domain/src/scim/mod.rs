//! SCIM 2.0 (RFC 7643/7644): the parts that are pure rules — filters and PATCH paths.

pub mod filter;
