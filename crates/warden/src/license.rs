//! `warden license`: the operator's tooling for offline licences. It needs no server, no
//! database and no configuration: keys and licences are files.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use warden_crypto::license::{PublicKey, SigningKey};
use warden_domain::clock::{Clock, SystemClock};
use warden_domain::license::{Claims, DAY, Tier};

use crate::cli::{LicenseCommand, SignArgs};
use crate::output::print;

pub fn run(command: LicenseCommand) -> Result<()> {
    match command {
        LicenseCommand::Keygen { out } => keygen(&out),
        LicenseCommand::Sign(args) => sign(&args),
        LicenseCommand::Inspect { file, public_key } => inspect(&file, public_key.as_deref()),
    }
}

fn keygen(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (key, private_pem) = SigningKey::generate().context("cannot generate a P-256 key")?;
    let private = dir.join("operator.key");
    let public = dir.join("operator.pub");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&private)
        .with_context(|| {
            format!(
                "cannot create {} (an existing key is never overwritten)",
                private.display()
            )
        })?;
    file.write_all(private_pem.as_bytes())?;
    file.sync_all()?;
    std::fs::write(&public, key.public_key().to_pem())
        .with_context(|| format!("cannot write {}", public.display()))?;
    print(&format!(
        "private key: {} (mode 0600; keep it offline)\npublic key:  {} (customers set \
         license.public_key_file to it)\nkey id:      {}",
        private.display(),
        public.display(),
        key.public_key().kid()
    ));
    Ok(())
}

/// A date (`YYYY-MM-DD`, at the start or end of that day, UTC) or an RFC 3339 time.
fn parse_time(s: &str, end_of_day: bool) -> Result<i64> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(s, &format)
        .with_context(|| format!("'{s}' is neither a date (YYYY-MM-DD) nor an RFC 3339 time"))?;
    let start = date.midnight().assume_utc().unix_timestamp();
    Ok(if end_of_day { start + DAY - 1 } else { start })
}

fn sign(a: &SignArgs) -> Result<()> {
    let now = SystemClock.now().unix_timestamp();
    let pem = std::fs::read_to_string(&a.key)
        .with_context(|| format!("cannot read {}", a.key.display()))?;
    let key = SigningKey::from_pem(&pem).with_context(|| format!("{}", a.key.display()))?;
    let tier = Tier::parse(&a.tier).context("--tier must be standard or enterprise")?;
    let fingerprint = match (tier, &a.machine_info) {
        (Tier::Enterprise, Some(_)) => bail!(
            "an enterprise licence is machine-agnostic and carries no fingerprint: sign it \
             without --machine-info"
        ),
        (Tier::Standard, None) => {
            bail!("a standard licence is bound to a machine: pass the customer's --machine-info")
        }
        (Tier::Enterprise, None) => None,
        (Tier::Standard, Some(path)) => Some(machine_fingerprint(path, now, a.freshness_days)?),
    };
    let iat = now;
    let nbf = a
        .starts
        .as_deref()
        .map(|s| parse_time(s, false))
        .transpose()?;
    let claims = Claims {
        jti: a.license_id.clone(),
        customer: a.customer.clone(),
        tier,
        iat,
        nbf,
        exp: parse_time(&a.expires, true)?,
        grace_days: a.grace_days,
        user_limit: a.user_limit,
        session_hosts: a.session_hosts,
        deploy_hosts: a.deploy_hosts,
        features: a.features.clone(),
        fingerprint,
        allowed_domain: a.allowed_domain.clone(),
    };
    claims.check().map_err(|e| anyhow::anyhow!("{e}"))?;
    if claims.exp <= now {
        bail!("--expires is in the past");
    }
    let token = key.sign(&serde_json::to_value(&claims)?)?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| format!("{}.lic", a.license_id).into());
    std::fs::write(&out, format!("{token}\n"))
        .with_context(|| format!("cannot write {}", out.display()))?;
    print(&format!(
        "signed {} licence {} for {} (expires {}): {}",
        tier.as_str(),
        claims.jti,
        claims.customer,
        OffsetDateTime::from_unix_timestamp(claims.exp)?.format(&Rfc3339)?,
        out.display()
    ));
    Ok(())
}

fn machine_fingerprint(path: &Path, now: i64, freshness_days: u32) -> Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let info: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not machine-info.json", path.display()))?;
    let fingerprint = info["fingerprint"]
        .as_str()
        .filter(|f| f.len() == 64 && f.bytes().all(|b| b.is_ascii_hexdigit()))
        .context("machine-info.json holds no fingerprint")?;
    let generated = info["generatedAt"]
        .as_str()
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .context("machine-info.json holds no generatedAt time")?
        .unix_timestamp();
    let age = now - generated;
    if age > i64::from(freshness_days) * DAY {
        bail!(
            "machine-info.json was generated {} days ago, beyond the {freshness_days}-day \
             freshness window: ask the customer for a fresh one",
            age / DAY
        );
    }
    if age < -300 {
        bail!("machine-info.json claims to be generated in the future");
    }
    Ok(fingerprint.to_owned())
}

fn inspect(file: &Path, public_key: Option<&Path>) -> Result<()> {
    let token =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let token = token.trim();
    let payload = Value::Object(
        warden_crypto::license::unverified_payload(token)
            .context("not a licence file (expected a compact JWS)")?,
    );
    print(&serde_json::to_string_pretty(&payload)?);
    let Some(path) = public_key else {
        print("signature: not checked (pass --public-key)");
        return Ok(());
    };
    let pem =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let key = PublicKey::from_pem(&pem).with_context(|| format!("{}", path.display()))?;
    match key.verify(token) {
        Ok(_) => {
            print(&format!("signature: valid (key {})", key.kid()));
            Ok(())
        }
        Err(e) => bail!("signature: INVALID: {e}"),
    }
}
