//! `warden-agent enroll`: the device authorization grant (RFC 8628) of kind "host". The agent
//! asks Warden for a code, prints where an administrator approves it, polls, and saves the
//! host key it receives once — with mode 0600, in a file that must not exist yet, so an
//! existing key is never overwritten.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use zeroize::Zeroizing;

/// Enrols this host as `name` (default: the machine's host name) with the Warden at
/// `server`, and saves its key to `key_file`.
pub async fn enroll(
    server: &str,
    name: Option<&str>,
    key_file: &Path,
    ca_file: Option<&Path>,
) -> Result<()> {
    if key_file.exists() {
        bail!(
            "{} exists already: this host seems enrolled (remove the file to enrol again)",
            key_file.display()
        );
    }
    let base = server.trim_end_matches('/');
    if !base.starts_with("https://") && !base.starts_with("http://") {
        bail!("--server must start with https:// or http://");
    }
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name = name.map_or_else(|| machine.trim().to_owned(), str::to_owned);
    if name.is_empty() {
        bail!("this machine has no host name: pass --name");
    }
    let mut http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30));
    if base.starts_with("https://") {
        http = http.tls_backend_preconfigured(crate::connection::tls_config(ca_file)?);
    }
    let client = warden_client::Client::with(http.build()?, base);
    let client_name = format!("warden-agent {}", env!("CARGO_PKG_VERSION"));
    let start = client
        .device_start("host", &client_name, Some(&name))
        .await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "To enrol this host as \"{name}\", an administrator opens\n{}\nand approves the code {} (it expires in {} minutes).",
            start.verification_uri_complete,
            start.user_code,
            start.expires_in / 60
        )?;
        out.flush()?;
    }
    let body = client
        .device_wait(&start.device_code, start.interval)
        .await
        .map_err(|e| anyhow::anyhow!("enrolment did not complete: {e}"))?;
    let key = Zeroizing::new(
        body["host_key"]
            .as_str()
            .filter(|k| k.starts_with("whk_"))
            .context("the server's answer carries no host key")?
            .to_owned(),
    );
    save(key_file, &key)?;
    writeln!(
        std::io::stdout().lock(),
        "enrolled as host {} ({}); key saved to {} — run: warden-agent --url {base} --key-file {}",
        body["name"].as_str().unwrap_or(&name),
        body["host_id"].as_str().unwrap_or("?"),
        key_file.display(),
        key_file.display()
    )?;
    Ok(())
}

fn save(path: &Path, key: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(key.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    Ok(())
}
