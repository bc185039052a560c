//! Warden's cryptography. Every primitive comes from aws-lc-rs (argon2 from RustCrypto for
//! passwords); nothing here is hand-rolled.
//!
//! This crate owns key material and must never log, format or return it: every type holding
//! a key has a redacting `Debug` and zeroizes on drop.

pub mod host_key;
pub mod host_ticket;
pub mod jwt;
pub mod keyring;
pub mod license;
pub mod password;
pub mod strict_json;
pub mod token;

pub use keyring::{
    Context, DataKey, Keyring, KeyringError, MasterKey, MasterKeyError, WrappedDataKey,
};
