//! `warden backup` and `warden restore` for the embedded SQLite database.
//!
//! A backup is an online, consistent copy (the server may keep serving), checked before it is
//! kept: SQLite's integrity check, the configured master key opens its keyring, and its audit
//! chain verifies. A restore checks the same on a private copy of the backup before it takes
//! the database's place, so a wrong key or a damaged file never replaces working data; the
//! database it replaces is kept beside it. PostgreSQL is backed up with `pg_dump`
//! (docs/operations/backup.md); both commands say so instead of guessing.

use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::ExposeSecret;
use warden_crypto::KeyringError;
use warden_domain::clock::SystemClock;
use warden_store::{Backend, ConnectOptions, Store, StoreError};

use super::BootError;
use super::files::{Created, load_master_key};
use crate::config::{Config, KeySource};

/// What a checked database holds, as the commands report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Audit events whose chain verified.
    pub audit_events: u64,
    /// The schema version the copy is at.
    pub schema_version: i64,
}

/// Copies the running installation's database to `output` (which must not exist) and checks
/// the copy. The file is private to its owner (mode 0600): it holds the sealed secrets.
pub async fn backup(config: &Config, output: &Path) -> Result<Checked, BootError> {
    let db = sqlite_only(config, "backup")?;
    if output.exists() {
        return Err(BootError(format!(
            "{} exists; choose a new file (a backup never overwrites one)",
            output.display()
        )));
    }
    if !db.exists() {
        return Err(BootError(format!(
            "no database at {}: has Warden been started with this data directory?",
            db.display()
        )));
    }
    let (store, _, _) = super::open_existing(config).await?;
    let partial = sibling(output, "partial");
    // Created empty and private first: the copy is never readable by others, not even
    // while it is written (VACUUM INTO fills an empty file).
    let copied = match create_private(&partial) {
        Ok(()) => store.copy_sqlite_to(&partial).await,
        Err(e) => {
            store.close().await;
            return Err(BootError(format!(
                "cannot create {}: {e}",
                output.display()
            )));
        }
    };
    store.close().await;
    let checked = match copied {
        Ok(()) => check_copy(config, &partial, "the backup").await,
        Err(e) => Err(BootError(format!("cannot write {}: {e}", output.display()))),
    };
    let checked = checked.and_then(|c| {
        // A hard link never replaces a file that appeared meanwhile.
        fs::hard_link(&partial, output)
            .map_err(|e| BootError(format!("cannot create {}: {e}", output.display())))?;
        Ok(c)
    });
    remove_with_journal(&partial);
    checked
}

/// Replaces the installation's database with the backup at `input`, once a private copy of
/// it has passed every check. With an existing database `replace` must be set; the old one
/// is then kept as `<database>.before-restore-<time>`.
pub async fn restore(config: &Config, input: &Path, replace: bool) -> Result<Restored, BootError> {
    let db = sqlite_only(config, "restore")?;
    if !input.is_file() {
        return Err(BootError(format!("no backup file at {}", input.display())));
    }
    if db.exists() && !replace {
        return Err(BootError(format!(
            "a database exists at {}; stop Warden and run again with --replace (the current \
             database is kept beside it)",
            db.display()
        )));
    }
    let mut created = Created::default();
    super::files::prepare_data_dir(&config.data_dir, &mut created)?;
    let staged = sibling(&db, "restoring");
    let copied = create_private(&staged).and_then(|()| {
        let mut from = fs::File::open(input)?;
        let mut to = fs::OpenOptions::new().write(true).open(&staged)?;
        std::io::copy(&mut from, &mut to)?;
        to.sync_all()
    });
    let checked = match copied {
        Ok(()) => check_copy(config, &staged, "this backup").await,
        Err(e) => Err(BootError(format!("cannot copy {}: {e}", input.display()))),
    };
    let checked = match checked {
        Ok(c) => c,
        Err(e) => {
            remove_with_journal(&staged);
            created.undo();
            return Err(e);
        }
    };
    let kept = if db.exists() {
        let stamp = warden_domain::clock::Clock::now(&SystemClock)
            .unix_timestamp()
            .to_string();
        let kept = sibling_named(&db, &format!("before-restore-{stamp}"));
        for suffix in ["", "-wal", "-shm"] {
            let from = with_suffix(&db, suffix);
            if from.exists() {
                fs::rename(&from, with_suffix(&kept, suffix))
                    .map_err(|e| BootError(format!("cannot move {} aside: {e}", from.display())))?;
            }
        }
        Some(kept)
    } else {
        None
    };
    fs::rename(&staged, &db)
        .map_err(|e| BootError(format!("cannot put the backup at {}: {e}", db.display())))?;
    remove_with_journal(&staged);
    Ok(Restored {
        checked,
        database: db,
        kept,
    })
}

/// What `restore` did.
#[derive(Debug)]
pub struct Restored {
    /// What the restored database holds.
    pub checked: Checked,
    /// Where it now is.
    pub database: PathBuf,
    /// Where the database it replaced was kept, if there was one.
    pub kept: Option<PathBuf>,
}

/// The SQLite database file, or why this command does not apply.
fn sqlite_only(config: &Config, command: &str) -> Result<PathBuf, BootError> {
    if config.database.backend == Backend::Postgres {
        return Err(BootError(format!(
            "`warden {command}` works on the embedded SQLite database; this installation uses \
             PostgreSQL: use pg_dump and pg_restore as docs/operations/backup.md shows"
        )));
    }
    warden_store::sqlite_file(config.database.url.expose_secret()).ok_or_else(|| {
        BootError(format!(
            "`warden {command}` needs a database file; database.url names none"
        ))
    })
}

/// Opens the copy at `path` and checks it: integrity, schema, the master key, the audit chain.
/// A copy that passes forgets the live connections it recorded (it describes no running node).
async fn check_copy(config: &Config, path: &Path, what: &str) -> Result<Checked, BootError> {
    let master = match &config.encryption_key {
        KeySource::DataDir(key) if !key.exists() => {
            return Err(BootError(format!(
                "no encryption key at {}: put the key that was in use when {what} was taken \
                 there (or set WARDEN_ENCRYPTION_KEY); without it no secret can be read",
                key.display()
            )));
        }
        source => load_master_key(source, &mut Created::default())?.0,
    };
    let url = format!("sqlite://{}", path.display());
    let store = Store::connect(&ConnectOptions {
        url,
        max_connections: 1,
        connect_timeout: config.database.connect_timeout,
        busy_timeout: Duration::from_secs(5),
    })
    .await
    .map_err(|_| {
        BootError(format!(
            "{what} is not a Warden database (SQLite cannot open it)"
        ))
    })?;
    let mut result = check_store(&store, &master, what).await;
    if result.is_ok()
        && let Err(e) = store.forget_live_connections().await
    {
        result = Err(BootError(format!("cannot prepare {what}: {e}")));
    }
    store.close().await;
    result
}

async fn check_store(
    store: &Store,
    master: &warden_crypto::MasterKey,
    what: &str,
) -> Result<Checked, BootError> {
    let problems = store
        .integrity_problems()
        .await
        .map_err(|e| BootError(format!("{what} is not a Warden database: {e}")))?;
    if !problems.is_empty() {
        return Err(BootError(format!(
            "{what} is damaged: {}",
            problems.join("; ")
        )));
    }
    let version = store
        .schema_version()
        .await
        .map_err(|e| BootError(format!("{what} is not a Warden database: {e}")))?;
    if version > warden_store::latest_schema_version() {
        return Err(BootError(format!(
            "{what} was taken by a newer Warden (schema {version}, this one knows {}); restore \
             it with that version",
            warden_store::latest_schema_version()
        )));
    }
    if version < warden_store::latest_schema_version() {
        store.migrate(&SystemClock).await?;
    }
    let clock = SystemClock;
    let keyring = match warden_store::keyring::load_or_create(store, master, &clock).await {
        Err(StoreError::Keyring(KeyringError::WrongMasterKey { .. })) => {
            return Err(BootError(format!(
                "the configured master key does not open {what}: use the encryption key that was \
                 in use when it was taken (WARDEN_ENCRYPTION_KEY, encryption_key_file or the \
                 data directory's encryption.key)"
            )));
        }
        other => other?,
    };
    let (key, signer) = super::audit_keys(store, &keyring, &clock).await?;
    let audit_events = super::verify_chain(store, &key, &signer).await?;
    Ok(Checked {
        audit_events,
        schema_version: warden_store::latest_schema_version(),
    })
}

/// An empty file only its owner can read (mode 0600); fails if it exists.
fn create_private(path: &Path) -> std::io::Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

/// `<path>.<what>-<random>` in the same directory (so a rename stays on one filesystem).
fn sibling(path: &Path, what: &str) -> PathBuf {
    sibling_named(path, &format!("{what}-{}", uuid::Uuid::now_v7().simple()))
}

fn sibling_named(path: &Path, what: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{what}"));
    path.with_file_name(name)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

fn remove_with_journal(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(with_suffix(path, suffix));
    }
}
