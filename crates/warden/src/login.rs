//! `warden login`: signs in with email and password and keeps the refresh token in a file
//! only the user can read. (The SSO release adds the device flow.)

use std::io::{BufRead, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::cli::LoginArgs;

#[derive(Deserialize)]
struct Tokens {
    refresh_token: String,
    session_id: String,
}

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
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let res = client
        .post(format!("{base}/api/v1/auth/sign-in"))
        .json(&serde_json::json!({"email": args.email, "password": password.as_str()}))
        .send()
        .await
        .with_context(|| format!("cannot reach {base}"))?;
    match res.status().as_u16() {
        200 => {}
        401 => bail!("sign-in refused: wrong email or password"),
        429 => bail!(
            "too many failed attempts; try again in {} seconds",
            res.headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("a few")
        ),
        other => bail!("sign-in failed: the server answered {other}"),
    }
    let tokens: Tokens = res
        .json()
        .await
        .context("the server's answer is not a token response")?;
    let refresh = Zeroizing::new(tokens.refresh_token);
    let text = Zeroizing::new(serde_json::to_string_pretty(&Credentials {
        url: base,
        email: &args.email,
        session_id: &tokens.session_id,
        refresh_token: &refresh,
    })?);
    write_private(&path, text.as_bytes())?;
    crate::commands::print(&format!(
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
