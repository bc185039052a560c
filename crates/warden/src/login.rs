//! `warden login`: signs in with email and password and keeps the refresh token in a file
//! only the user can read. (The SSO release adds the device flow.)

use std::io::{BufRead, IsTerminal, Write};
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
    let base = args.url.trim_end_matches('/');
    let client = warden_client::Client::new(base)?;
    let email = match (&args.email, args.device) {
        (Some(email), false) => email.clone(),
        _ => return device_login(&client, base, &path).await,
    };
    let mut password = Zeroizing::new(String::new());
    let read = std::io::stdin()
        .lock()
        .read_line(&mut password)
        .context("cannot read the password from standard input")?;
    if read == 0 && !std::io::stdin().is_terminal() {
        // Nothing to read a password from: approve in a browser instead.
        return device_login(&client, base, &path).await;
    }
    let password = Zeroizing::new(password.trim_end_matches(['\r', '\n']).to_owned());
    let tokens = match client.sign_in(&email, &password).await {
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
    save(&path, base, &email, &tokens)
}

fn save(
    path: &std::path::Path,
    base: &str,
    email: &str,
    tokens: &warden_client::Tokens,
) -> Result<()> {
    let session_id = tokens.session_id.clone().unwrap_or_default();
    let text = Zeroizing::new(serde_json::to_string_pretty(&Credentials {
        url: base,
        email,
        session_id: &session_id,
        refresh_token: &tokens.refresh_token,
    })?);
    write_private(path, text.as_bytes())?;
    crate::output::print(&format!(
        "signed in as {email}; credentials saved to {}",
        path.display()
    ));
    Ok(())
}

/// The device flow (RFC 8628): prints where to approve the code, polls until someone does,
/// then saves the session as a password sign-in would.
async fn device_login(
    client: &warden_client::Client,
    base: &str,
    path: &std::path::Path,
) -> Result<()> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let client_name = match host.trim() {
        "" => "warden CLI".to_owned(),
        h => format!("warden CLI on {h}"),
    };
    let start = client.device_start("user", &client_name, None).await?;
    crate::output::print(&format!(
        "To sign in, open {}\nand check that it shows the code {} (it expires in {} minutes).",
        start.verification_uri_complete,
        start.user_code,
        start.expires_in / 60
    ));
    let body = client
        .device_wait(&start.device_code, start.interval)
        .await
        .map_err(|e| anyhow::anyhow!("device sign-in did not complete: {e}"))?;
    let tokens = warden_client::tokens_from(body)?;
    let me = client.me(&tokens.access_token).await?;
    let email = me["email"].as_str().unwrap_or_default().to_owned();
    save(path, base, &email, &tokens)
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
