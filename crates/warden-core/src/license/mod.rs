//! Offline licence enforcement on this node.
//!
//! The licence in force is the newest install in the database; every node reads it, verifies
//! its signature with the operator public key from its own configuration, and keeps the result
//! in memory ([`License`]). The per-request gate ([`License::gate`]) then costs a lock-free
//! read of that snapshot and a few comparisons: no I/O. A background task notices installs
//! made through other nodes, records the clock's high-water mark, and sends expiry alerts.
//!
//! With no public key configured, Warden runs unlicensed: every feature on, no limits, and the
//! status endpoint says so.

pub mod alerts;
pub mod install;
pub mod machine;

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use warden_crypto::license::{OperatorKeys, PublicKey};
use warden_domain::clock::Clock;
use warden_domain::hosts::HostKind;
use warden_domain::license::{
    Claims, ClockWatch, DAY, DomainPattern, Feature, FeatureSet, Here, LicenseRule, Problem,
    Standing, standing,
};
use warden_store::Store;
use warden_store::license::InstallRow;

use crate::Code;
use crate::settings::LicenseConfig;

/// A licence as this node verified it.
#[derive(Debug, Clone)]
pub struct Installed {
    /// Its claims (present even when the signature no longer verifies, for the status).
    pub claims: Claims,
    /// The features it grants.
    pub features: FeatureSet,
    /// Its domain binding.
    pub domain: Option<DomainPattern>,
    /// When it was installed (Unix seconds).
    pub installed_at: i64,
    /// Install sequence number.
    pub seq: i64,
    /// Whether its signature verified with this node's key.
    pub signature_ok: bool,
}

/// What this node enforces.
#[derive(Debug, Clone)]
enum Mode {
    /// No operator key configured.
    Unlicensed,
    /// Licensed; the licence in force, if any.
    Licensed(Option<Arc<Installed>>),
}

/// Why a request is refused by the licence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No valid licence: 503.
    Invalid(Problem),
    /// The request's `Host` is outside `allowedDomain`: 503.
    DomainMismatch,
    /// The licence lacks the route's feature: 403.
    Feature(Feature),
}

impl From<Refusal> for crate::CoreError {
    /// 503 with the licence problem's code, or 403 for a feature the licence lacks.
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Invalid(p) => problem_code(p).into(),
            Refusal::DomainMismatch => crate::Code::LicenseDomainMismatch.into(),
            Refusal::Feature(_) => crate::Code::FeatureNotLicensed.into(),
        }
    }
}

/// The licence state of this node.
#[derive(Debug)]
pub struct License {
    key: Option<OperatorKeys>,
    enforcement: Enforcement,
    config: LicenseConfig,
    fingerprint: String,
    mode: RwLock<Mode>,
    high_water: AtomicI64,
    tampered_until: AtomicI64,
    /// The day (days since the epoch) of this node's last alert run.
    pub(crate) last_alert_day: AtomicI64,
}

/// Seconds since the epoch on `clock`.
pub fn unix_now(clock: &dyn Clock) -> i64 {
    clock.now().unix_timestamp()
}

pub use crate::settings::EMBEDDED_OPERATOR_KEYS;

/// Where the keys that enforce licences come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforcement {
    /// Embedded in this build: configuration cannot turn enforcement off.
    Embedded,
    /// Only from `license.public_key_file`.
    Configured,
    /// No key anywhere: this build runs unlicensed, every feature on.
    None,
}

impl Enforcement {
    /// As shown in the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Embedded => "embedded",
            Self::Configured => "configured",
            Self::None => "none",
        }
    }
}

impl License {
    /// Reads the embedded and configured keys and this machine's identity.
    pub fn new(config: &LicenseConfig) -> Result<Self, String> {
        let embedded = PublicKey::all_from_pem(&config.embedded_keys)
            .map_err(|e| format!("the operator keys embedded in this build are not usable: {e}"))?;
        let enforcement = match (&embedded[..], &config.public_key_file) {
            ([_, ..], _) => Enforcement::Embedded,
            ([], Some(_)) => Enforcement::Configured,
            ([], None) => Enforcement::None,
        };
        let mut all = embedded;
        if let Some(path) = &config.public_key_file {
            all.push(read_key(path)?);
        }
        let keys = OperatorKeys::new(all);
        let key = (!keys.is_empty()).then_some(keys);
        let fingerprint = if key.is_some() {
            machine::fingerprint(config.machine_id_file.as_deref())?
        } else {
            // Best effort: the status shows it, but nothing depends on it.
            machine::fingerprint(config.machine_id_file.as_deref()).unwrap_or_default()
        };
        Ok(Self {
            mode: RwLock::new(if key.is_some() {
                Mode::Licensed(None)
            } else {
                Mode::Unlicensed
            }),
            key,
            enforcement,
            config: config.clone(),
            fingerprint,
            high_water: AtomicI64::new(i64::MIN),
            tampered_until: AtomicI64::new(i64::MIN),
            last_alert_day: AtomicI64::new(i64::MIN),
        })
    }

    /// Whether an operator key is configured.
    pub fn enforced(&self) -> bool {
        self.key.is_some()
    }

    /// This machine's fingerprint.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The configuration.
    pub fn config(&self) -> &LicenseConfig {
        &self.config
    }

    /// The operator public keys (embedded and configured).
    pub fn key(&self) -> Option<&OperatorKeys> {
        self.key.as_ref()
    }

    /// Where enforcement comes from.
    pub fn enforcement(&self) -> Enforcement {
        self.enforcement
    }

    fn mode(&self) -> Mode {
        self.mode
            .read()
            .map(|m| m.clone())
            .unwrap_or(Mode::Licensed(None))
    }

    /// The licence in force, as verified here.
    pub fn installed(&self) -> Option<Arc<Installed>> {
        match self.mode() {
            Mode::Licensed(i) => i,
            Mode::Unlicensed => None,
        }
    }

    /// Freshness window, seconds.
    pub fn freshness(&self) -> i64 {
        i64::from(self.config.freshness_days) * DAY
    }

    /// The clock as watched.
    pub fn clock_watch(&self) -> ClockWatch {
        let until = self.tampered_until.load(Ordering::Relaxed);
        ClockWatch {
            high_water: self.high_water.load(Ordering::Relaxed),
            tampered_until: (until != i64::MIN).then_some(until),
        }
    }

    fn set_clock_watch(&self, w: ClockWatch) {
        self.high_water.store(w.high_water, Ordering::Relaxed);
        self.tampered_until
            .store(w.tampered_until.unwrap_or(i64::MIN), Ordering::Relaxed);
    }

    /// Where the licence stands at `now`: `None` when unlicensed.
    pub fn standing(&self, now: i64) -> Option<Standing> {
        match self.mode() {
            Mode::Unlicensed => None,
            Mode::Licensed(None) => Some(Standing::Invalid(Problem::NotInstalled)),
            Mode::Licensed(Some(i)) => Some(self.standing_of(&i, now)),
        }
    }

    fn standing_of(&self, i: &Installed, now: i64) -> Standing {
        if !i.signature_ok {
            return Standing::Invalid(Problem::InvalidSignature);
        }
        standing(
            &i.claims,
            &Here {
                now,
                fingerprint: &self.fingerprint,
                installed_at: i.installed_at,
                freshness: self.freshness(),
                clock_tampered: self.clock_watch().tampered_at(now),
            },
        )
    }

    /// The per-request check for a route declared `rule`, on `path`. Only API routes and the
    /// console's pages are gated; the recovery routes never are. A domain binding is checked against the configured
    /// `public_url`, never against what the client sends.
    /// Whether [`License::gate`] has anything to check for this route (a licensed node, an
    /// API or console route that is not a recovery route). Costs a few comparisons.
    pub fn applies(&self, path: &str, rule: LicenseRule) -> bool {
        self.key.is_some()
            && rule != LicenseRule::Recovery
            && (path.starts_with("/api/") || path.starts_with("/console"))
    }

    /// Reads the clock only when it has to (a licensed node, a gated route).
    pub fn gate(&self, clock: &dyn Clock, path: &str, rule: LicenseRule) -> Result<(), Refusal> {
        if !self.applies(path, rule) {
            return Ok(());
        }
        let now = clock.now().unix_timestamp();
        let guard = self
            .mode
            .read()
            .map_err(|_| Refusal::Invalid(Problem::NotInstalled))?;
        let installed = match &*guard {
            Mode::Unlicensed => return Ok(()),
            Mode::Licensed(None) => return Err(Refusal::Invalid(Problem::NotInstalled)),
            Mode::Licensed(Some(i)) => i,
        };
        if let Standing::Invalid(p) = self.standing_of(installed, now) {
            return Err(Refusal::Invalid(p));
        }
        if let Some(domain) = &installed.domain
            && !self
                .config
                .public_host
                .as_deref()
                .is_some_and(|h| domain.matches(h))
        {
            return Err(Refusal::DomainMismatch);
        }
        if let LicenseRule::Feature(f) = rule
            && !installed.features.contains(f)
        {
            return Err(Refusal::Feature(f));
        }
        Ok(())
    }

    /// Whether a feature is on (always, when unlicensed).
    pub fn feature(&self, f: Feature) -> bool {
        match self.mode() {
            Mode::Unlicensed => true,
            Mode::Licensed(i) => i.is_some_and(|i| i.features.contains(f)),
        }
    }

    /// Whether background services may run (always when unlicensed; with a valid licence
    /// otherwise). They pause while it is invalid and resume by themselves after renewal.
    pub fn allows_background(&self, now: i64) -> bool {
        !matches!(self.standing(now), Some(Standing::Invalid(_)))
    }

    /// The most active users, if limited.
    pub fn user_limit(&self) -> Option<u32> {
        self.installed().and_then(|i| i.claims.user_limit)
    }

    /// The concurrent-host cap for `kind`: the licence's when licensed, else `configured`.
    pub fn host_cap(&self, kind: HostKind, configured: Option<u32>) -> Option<u32> {
        match self.mode() {
            Mode::Unlicensed => configured,
            Mode::Licensed(i) => i.and_then(|i| match kind {
                HostKind::Session => i.claims.session_hosts,
                HostKind::Deploy => i.claims.deploy_hosts,
            }),
        }
    }

    /// Verifies a stored install with this node's key.
    fn verify_row(&self, row: &InstallRow) -> Option<Installed> {
        let key = self.key.as_ref()?;
        let (claims, signature_ok) = match key.verify(&row.token) {
            Ok(payload) => (
                serde_json::from_value::<Claims>(serde_json::Value::Object(payload)).ok()?,
                true,
            ),
            Err(_) => (unverified_claims(&row.token)?, false),
        };
        Some(Installed {
            features: claims.feature_set(),
            domain: claims
                .allowed_domain
                .as_deref()
                .and_then(DomainPattern::parse),
            claims,
            installed_at: row.installed_at,
            seq: row.seq,
            signature_ok,
        })
    }

    /// Loads the licence in force from the store (at boot, after an install, and when another
    /// node installed one).
    pub async fn reload(&self, store: &Store) -> Result<(), warden_store::StoreError> {
        if self.key.is_none() {
            return Ok(());
        }
        let row = store.current_license().await?;
        let installed = row.as_ref().and_then(|r| self.verify_row(r)).map(Arc::new);
        if let Ok(mut m) = self.mode.write() {
            *m = Mode::Licensed(installed);
        }
        Ok(())
    }

    /// Records `now` in the shared high-water mark and adopts the result.
    pub async fn observe_clock(
        &self,
        store: &Store,
        now: i64,
    ) -> Result<(), warden_store::StoreError> {
        let watch = store.observe_clock(now).await?;
        self.set_clock_watch(watch);
        Ok(())
    }

    /// The sequence number of the licence loaded here (0: none).
    pub fn seq(&self) -> i64 {
        self.installed().map_or(0, |i| i.seq)
    }
}

/// The claims of a licence whose signature did not verify, for display only.
fn unverified_claims(token: &str) -> Option<Claims> {
    let payload = warden_crypto::license::unverified_payload(token)?;
    serde_json::from_value(serde_json::Value::Object(payload)).ok()
}

fn read_key(path: &Path) -> Result<PublicKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "license.public_key_file: cannot read {}: {e}",
            path.display()
        )
    })?;
    PublicKey::from_pem(&text).map_err(|e| {
        format!(
            "license.public_key_file: {} holds no usable operator key: {e}",
            path.display()
        )
    })
}

/// Keeps this node's licence state current: installs made on other nodes (checked every
/// 5 seconds), the clock's high-water mark (every minute), and the daily expiry alerts.
pub fn spawn_watch(state: Arc<crate::Ctx>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks: u64 = 0;
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            ticks += 1;
            let license = &state.license;
            if !license.enforced() {
                return;
            }
            match state.store.license_seq().await {
                Ok(seq) if seq != license.seq() => {
                    if let Err(e) = license.reload(&state.store).await {
                        tracing::warn!(error = %e, "cannot reload the licence");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read the licence"),
            }
            if ticks.is_multiple_of(12) {
                let now = unix_now(state.clock.as_ref());
                if let Err(e) = license.observe_clock(&state.store, now).await {
                    tracing::warn!(error = %e, "cannot record the clock's high-water mark");
                }
                alerts::run_if_due(&state, now).await;
            }
        }
    })
}

/// The registered code for a licence problem (its sentence is the code's).
pub fn problem_code(p: Problem) -> Code {
    match p {
        Problem::NotInstalled => Code::LicenseMissing,
        Problem::Expired => Code::LicenseExpired,
        Problem::NotYetValid => Code::LicenseNotYetValid,
        Problem::Stale => Code::LicenseStale,
        Problem::MachineIdentityChanged => Code::MachineIdentityChanged,
        Problem::ClockTampered => Code::LicenseClockTampered,
        Problem::InvalidSignature => Code::LicenseInvalidSignature,
    }
}
