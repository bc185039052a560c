//! Opening an existing installation for an operator command (`warden audit`, `user create`,
//! `keys …`): connect, check the schema is current, load the keys. Never creates anything.

use std::path::Path;
use std::time::Duration;

use secrecy::ExposeSecret;
use warden_crypto::{Keyring, MasterKey};
use warden_store::audit::ChainKey;
use warden_store::{ConnectOptions, Store};

use super::files::{Created, load_master_key, read_key_file};
use super::{BootError, audit_keys};
use crate::config::{Config, KeySource};

/// Opens an existing installation for an operator command: connects, checks the schema is
/// current, and loads the keyring and the audit chain key. Never creates a key.
pub async fn open_existing(
    config: &Config,
) -> Result<
    (
        Store,
        warden_store::audit::ChainKey,
        warden_store::audit::CheckpointSigner,
    ),
    BootError,
> {
    let master = match &config.encryption_key {
        KeySource::DataDir(path) if !path.exists() => {
            return Err(BootError(format!(
                "no encryption key at {}: has Warden been started with this data directory?",
                path.display()
            )));
        }
        source => load_master_key(source, &mut Created::default())?.0,
    };
    let url = config.database.url.expose_secret().to_owned();
    if let Some(file) = warden_store::sqlite_file(&url)
        && !file.exists()
    {
        return Err(BootError(format!(
            "database.url: no database at {}: has Warden been started?",
            file.display()
        )));
    }
    let store = Store::connect(&ConnectOptions {
        url,
        max_connections: 2,
        connect_timeout: config.database.connect_timeout,
        busy_timeout: Duration::from_secs(5),
    })
    .await?;
    let version = store.schema_version().await?;
    if version != warden_store::latest_schema_version() {
        store.close().await;
        return Err(BootError(format!(
            "the database schema is at version {version}, not {}; run `warden migrate` first",
            warden_store::latest_schema_version()
        )));
    }
    let clock = warden_domain::clock::SystemClock;
    let keyring = warden_store::keyring::load_or_create(&store, &master, &clock).await?;
    let (key, signer) = audit_keys(&store, &keyring, &clock).await?;
    Ok((store, key, signer))
}

/// Opens an existing installation for an operator command that changes identity data:
/// the store, the keyring and the audit chain key.
pub async fn open_for_admin(
    config: &Config,
) -> Result<(Store, warden_crypto::Keyring, warden_store::audit::ChainKey), BootError> {
    let (store, key, _signer) = open_existing(config).await?;
    let master = load_master_key(&config.encryption_key, &mut Created::default())?.0;
    let keyring =
        warden_store::keyring::load_or_create(&store, &master, &warden_domain::clock::SystemClock)
            .await?;
    Ok((store, keyring, key))
}

/// Opens an existing installation for a master-key rotation: the store, the keyring, the
/// audit chain key and the configured master key.
pub async fn open_for_rotation(
    config: &Config,
) -> Result<(Store, Keyring, ChainKey, MasterKey), BootError> {
    let (store, keyring, key) = open_for_admin(config).await?;
    let master = load_master_key(&config.encryption_key, &mut Created::default())?.0;
    Ok((store, keyring, key, master))
}

/// Reads a master key file (64 hexadecimal characters), e.g. the new key of a rotation.
pub fn read_master_key_file(path: &Path) -> Result<MasterKey, BootError> {
    read_key_file(path)
}
