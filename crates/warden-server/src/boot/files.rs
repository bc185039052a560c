//! The files start-up keeps beside the data: the data directory, the SQLite file and the
//! generated master key, created private (0700/0600) and removed again if start-up fails;
//! and reading the master key from wherever configuration says it lives.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use secrecy::ExposeSecret;
use warden_crypto::MasterKey;

use super::BootError;
use crate::config::KeySource;

/// Paths created by this start, removed again if it fails.
#[derive(Debug, Default)]
pub(super) struct Created(Vec<PathBuf>);

impl Created {
    pub(super) fn undo(&mut self) {
        for path in self.0.drain(..).rev() {
            let _ = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
        }
    }
}

pub(super) fn prepare_data_dir(dir: &Path, created: &mut Created) -> Result<(), BootError> {
    let fail = |what: String| {
        BootError(format!(
            "data_dir {}: {what}; choose a writable directory with WARDEN_DATA_DIR or data_dir",
            dir.display()
        ))
    };
    if dir.exists() {
        if !dir.is_dir() {
            return Err(fail("exists and is not a directory".to_owned()));
        }
    } else {
        let first_missing = dir
            .ancestors()
            .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
            .last()
            .map(Path::to_path_buf);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| fail(format!("cannot create it ({e})")))?;
        if let Some(p) = first_missing {
            created.0.push(p);
        }
    }
    let probe = dir.join(format!(".write-test-{}", uuid::Uuid::now_v7()));
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| fail(format!("is not writable ({e})")))?;
    let _ = fs::remove_file(&probe);
    Ok(())
}

/// Creates an empty file readable only by the owner, unless it exists.
pub(super) fn precreate_private_file(path: &Path, created: &mut Created) -> Result<(), BootError> {
    if path.exists() {
        return Ok(());
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            BootError(format!(
                "database.url: cannot create the database file {} ({e})",
                path.display()
            ))
        })?;
    created.0.push(path.to_path_buf());
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        created.0.push(PathBuf::from(side));
    }
    Ok(())
}

pub(super) fn key_setting(source: &KeySource) -> String {
    match source {
        KeySource::Env(_) => "WARDEN_ENCRYPTION_KEY".to_owned(),
        KeySource::File(p) => format!("encryption_key_file {}", p.display()),
        KeySource::DataDir(p) => format!("key file {}", p.display()),
    }
}

pub(super) fn load_master_key(
    source: &KeySource,
    created: &mut Created,
) -> Result<(MasterKey, Option<PathBuf>), BootError> {
    match source {
        KeySource::Env(value) => MasterKey::from_hex(value.expose_secret())
            .map(|k| (k, None))
            .map_err(|e| {
                BootError(format!(
                    "WARDEN_ENCRYPTION_KEY {e}; generate one with `openssl rand -hex 32`"
                ))
            }),
        KeySource::File(path) => read_key_file(path).map(|k| (k, None)),
        KeySource::DataDir(path) if path.exists() => read_key_file(path).map(|k| (k, None)),
        KeySource::DataDir(path) => {
            let key = MasterKey::generate()
                .map_err(|e| BootError(format!("cannot generate an encryption key: {e}")))?;
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| {
                    BootError(format!("cannot create key file {}: {e}", path.display()))
                })?;
            created.0.push(path.clone());
            file.write_all(key.to_hex().as_bytes())
                .and_then(|()| file.write_all(b"\n"))
                .and_then(|()| file.sync_all())
                .map_err(|e| BootError(format!("cannot write key file {}: {e}", path.display())))?;
            tracing::warn!(
                path = %path.display(),
                "generated a new master encryption key in the data directory; in production \
                 supply WARDEN_ENCRYPTION_KEY from a secret store, and back this key up: \
                 without it stored secrets cannot be recovered"
            );
            Ok((key, Some(path.clone())))
        }
    }
}

pub(super) fn read_key_file(path: &Path) -> Result<MasterKey, BootError> {
    let text = fs::read_to_string(path).map_err(|e| {
        BootError(format!(
            "cannot read encryption key file {}: {e}",
            path.display()
        ))
    })?;
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            "the encryption key file is readable by other users; chmod 600 it"
        );
    }
    MasterKey::from_hex(&text).map_err(|e| {
        BootError(format!(
            "encryption key file {}: the key {e}; generate one with `openssl rand -hex 32`",
            path.display()
        ))
    })
}
