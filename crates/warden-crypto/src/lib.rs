//! Warden's cryptography. Every primitive comes from aws-lc-rs; nothing here is hand-rolled.
//!
//! This crate owns key material and must never log, format or return it: every type holding
//! a key has a redacting `Debug` and zeroizes on drop.

pub mod keyring;

pub use keyring::{
    Context, DataKey, Keyring, KeyringError, MasterKey, MasterKeyError, WrappedDataKey,
};
