//! `warden login`: signs in with email and password and keeps the refresh token in a file
//! only the user can read. (The SSO release adds the device flow.)

use std::io::{BufRead, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::cli::LoginArgs;

/// What the credentials file holds.
#[derive(Serialize)]
struct Credentials<'a> {
    url: &'a str,
    email: &'a str,
    session_id: &'a str,
    refresh_token: &'a str,
}

pub(crate) fn default_path() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("warden/credentials.json"));
    }
    let home = std::env::var_os("HOME")
        .context("neither XDG_CONFIG_HOME nor HOME is set; pass --credentials")?;
    Ok(PathBuf::from(home).join(".config/warden/credentials.json"))
}

pub async fn login(args: LoginArgs) -> Result<()> {
    let path = match args.credentials {
        Some(p) => p,
        None => default_path()?,
    };
    let mut password = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .context("cannot read the password from standard input")?;
    let password = Zeroizing::new(password.trim_end_matches(['\r', '\n']).to_owned());
    let base = args.url.trim_end_matches('/');
    let client = warden_client::Client::new(base)?;
    let tokens = match client.sign_in(&args.email, &password).await {
        Ok(tokens) => tokens,
        Err(warden_client::ClientError::Refused(p)) => match p.status {
            401 => bail!("sign-in refused: wrong email or password"),
            429 => bail!(
                "too many failed attempts; try again in {} seconds",
                p.retry_after
                    .map_or_else(|| "a few".to_owned(), |s| s.to_string())
            ),
            other => bail!("sign-in failed: the server answered {other}"),
        },
        Err(e) => return Err(e.into()),
    };
    let session_id = tokens.session_id.clone().unwrap_or_default();
    let text = Zeroizing::new(serde_json::to_string_pretty(&Credentials {
        url: base,
        email: &args.email,
        session_id: &session_id,
        refresh_token: &tokens.refresh_token,
    })?);
    write_private(&path, text.as_bytes())?;
    crate::output::print(&format!(
        "signed in; credentials saved to {}",
        path.display()
    ));
    Ok(())
}

/// Writes `bytes` to `path` with mode 0600 (directory 0700), replacing it atomically.
pub(crate) fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
