//! Prometheus metrics, off unless an operator sets `metrics.token_file`.
//!
//! While on, the edge records every request by its route template (never its raw path, which
//! may carry ids and tokens): a counter by method, route and status, and a histogram of the
//! time to the response's head by method and route. Failed sign-ins (any 4xx from a sign-in
//! route: wrong credentials, refused, throttled) are counted by method. What only a query can
//! tell (hosts, sessions, the work queue, the audit chain's backlog, the database pool, the
//! licence) is read from `warden_core::metrics` at scrape time.
//!
//! `GET /metrics` answers only a caller presenting the token as a bearer token (compared in
//! constant time); with metrics off it is 404, as if it did not exist. The recorder belongs to
//! this server (nothing is installed globally), so two servers in one process never mix.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::RwLock;
use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode, header};
use metrics::{Key, Label, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use subtle::ConstantTimeEq;
use warden_core::metrics::Snapshot;

/// The fewest characters a metrics token may have.
pub const MIN_TOKEN_LEN: usize = 32;

const REQUESTS: &str = "warden_http_requests_total";
const DURATION: &str = "warden_http_request_duration_seconds";
const SIGN_IN_FAILURES: &str = "warden_sign_in_failures_total";

/// Upper bounds of the request-duration buckets, in seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The routes a person signs in through, and the method each counts as.
const SIGN_IN_ROUTES: &[(&str, &str)] = &[
    ("/api/v1/auth/sign-in", "password"),
    ("/api/v1/auth/passkey", "passkey"),
    ("/api/v1/auth/sso/{slug}/callback", "sso"),
    ("/api/v1/auth/magic-link/sign-in", "magic_link"),
    ("/sign-in/link", "magic_link"),
];

/// One gauge reading: its name, its labels, its value.
type Reading = (&'static str, &'static [(&'static str, &'static str)], f64);

/// What each gauge read at scrape time means.
const GAUGES: &[(&str, &str)] = &[
    (
        "warden_hosts_connected",
        "Hosts connected: to any node (scope=cluster) or to this one (scope=node).",
    ),
    ("warden_sessions", "Agent sessions by state."),
    (
        "warden_jobs",
        "Jobs in the work queue by state (queued is the queue's depth).",
    ),
    (
        "warden_audit_unchained_events",
        "Audit events committed but not yet linked into the chain.",
    ),
    (
        "warden_audit_unverified_events",
        "Chained audit events this node has not verified yet (the chain's lag).",
    ),
    (
        "warden_audit_verified_seq",
        "The last audit sequence number this node verified.",
    ),
    (
        "warden_audit_chain_intact",
        "1 while the audit chain verifies, 0 once a break is found.",
    ),
    (
        "warden_db_pool_connections",
        "This node's database connections: open, idle, and the most it opens.",
    ),
    (
        "warden_alert_incidents",
        "Alert incidents ever raised (each mailed to the administrators once), by kind.",
    ),
    (
        "warden_alerts_active",
        "Alert incidents seen in the last day, by kind.",
    ),
    (
        "warden_keyring_data_key_version",
        "The data key version this node seals new secrets with.",
    ),
    (
        "warden_keyring_reencryption_remaining",
        "Values a master-key rotation has still to re-encrypt (0 when none is under way).",
    ),
    (
        "warden_license_valid",
        "1 while the licence is valid (grace included), 0 otherwise.",
    ),
    (
        "warden_license_days_left",
        "Days until the licence expires (negative once past).",
    ),
];

static META: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// This server's metrics: the recorder, and the token that opens them.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    token: [u8; 32],
    /// The request counter and duration histogram of each (method, status) and route
    /// template, registered once: a request after the first of its kind only counts (no label
    /// is built, no registry looked up). Bounded by the routes, methods and statuses served.
    requests: RwLock<RequestTable>,
}

type RequestHandles = (metrics::Counter, metrics::Histogram);
/// (method, status) → route template → handles.
type RequestTable = HashMap<(&'static str, u16), HashMap<String, RequestHandles>>;

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("token", &"[redacted]")
            .finish()
    }
}

/// Why the token file cannot be used. Never carries the file's contents.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TokenError(String);

/// Reads the token from `path`: the file's contents, surrounding white space removed.
pub fn read_token(path: &Path) -> Result<secrecy::SecretString, TokenError> {
    let raw = std::fs::read_to_string(path).map_err(|e| {
        TokenError(format!(
            "cannot read the metrics token file {}: {}",
            path.display(),
            e.kind()
        ))
    })?;
    let token = raw.trim();
    if token.chars().count() < MIN_TOKEN_LEN || token.chars().any(char::is_whitespace) {
        return Err(TokenError(format!(
            "the metrics token in {} must be one word of at least {MIN_TOKEN_LEN} characters \
             (for example the output of `head -c 32 /dev/urandom | base64`)",
            path.display()
        )));
    }
    Ok(secrecy::SecretString::from(token.to_owned()))
}

impl Metrics {
    /// Metrics opened by `token`.
    pub fn new(token: &secrecy::SecretString) -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(DURATION.to_owned()), BUCKETS)
            // Refused only for an empty list, which BUCKETS is not.
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let handle = recorder.handle();
        let describe: &[(&str, Option<Unit>, &str)] = &[
            (
                REQUESTS,
                None,
                "HTTP requests answered, by method, route template and status.",
            ),
            (
                DURATION,
                Some(Unit::Seconds),
                "Time from a request's arrival to its response's head, by method and route template.",
            ),
            (
                SIGN_IN_FAILURES,
                None,
                "Sign-ins refused (wrong credentials, refused account, throttled), by method.",
            ),
        ];
        for (name, unit, help) in describe {
            let help = SharedString::from(*help);
            if *name == DURATION {
                recorder.describe_histogram((*name).into(), *unit, help);
            } else {
                recorder.describe_counter((*name).into(), *unit, help);
            }
        }
        for (name, help) in GAUGES {
            recorder.describe_gauge((*name).into(), None, SharedString::from(*help));
        }
        Self {
            recorder,
            handle,
            token: digest(secrecy::ExposeSecret::expose_secret(token).as_bytes()),
            requests: RwLock::default(),
        }
    }

    /// Whether the request presents the token (`Authorization: Bearer …`).
    pub fn authorizes(&self, headers: &HeaderMap) -> bool {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        presented.is_some_and(|p| bool::from(digest(p.as_bytes()).ct_eq(&self.token)))
    }

    /// Records one answered request. `route` is the matched route template; `None` for a
    /// path no route matches (labelled `unmatched`, so stray paths add no series).
    pub fn record_request(
        &self,
        method: &Method,
        route: Option<&str>,
        status: StatusCode,
        elapsed: Duration,
    ) {
        let method = method_label(method);
        let key = (method, status.as_u16());
        let template = route.unwrap_or("unmatched");
        let known = self
            .requests
            .read()
            .ok()
            .and_then(|m| m.get(&key).and_then(|routes| routes.get(template)).cloned());
        let (counter, histogram) = match known {
            Some(handles) => handles,
            None => {
                let handles = self.register_request(method, template, status);
                if let Ok(mut m) = self.requests.write() {
                    m.entry(key)
                        .or_default()
                        .insert(template.to_owned(), handles.clone());
                }
                handles
            }
        };
        counter.increment(1);
        histogram.record(elapsed.as_secs_f64());
        if status.is_client_error()
            && let Some(route) = route
            && let Some((_, how)) = SIGN_IN_ROUTES.iter().find(|(r, _)| *r == route)
        {
            self.recorder
                .register_counter(
                    &Key::from_parts(
                        SIGN_IN_FAILURES,
                        vec![Label::from_static_parts("method", how)],
                    ),
                    &META,
                )
                .increment(1);
        }
    }

    fn register_request(
        &self,
        method: &'static str,
        template: &str,
        status: StatusCode,
    ) -> RequestHandles {
        let route_label: SharedString = Cow::<'static, str>::Owned(template.to_owned()).into();
        let status_label = SharedString::from(status.as_str().to_owned());
        let counter = self.recorder.register_counter(
            &Key::from_parts(
                REQUESTS,
                vec![
                    Label::from_static_parts("method", method),
                    Label::new("route", route_label.clone()),
                    Label::new("status", status_label),
                ],
            ),
            &META,
        );
        let histogram = self.recorder.register_histogram(
            &Key::from_parts(
                DURATION,
                vec![
                    Label::from_static_parts("method", method),
                    Label::new("route", route_label),
                ],
            ),
            &META,
        );
        (counter, histogram)
    }

    /// Drains what the recorder holds between scrapes (histogram samples), so an installation
    /// nobody scrapes does not grow. Call every few seconds.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// The exposition: the snapshot's readings set as gauges, then everything rendered.
    pub fn render(&self, snap: &Snapshot) -> String {
        let i = &snap.installation;
        let mut gauges: Vec<Reading> = vec![
            (
                "warden_hosts_connected",
                &[("scope", "cluster")],
                i.hosts_connected as f64,
            ),
            (
                "warden_hosts_connected",
                &[("scope", "node")],
                snap.hosts_on_node as f64,
            ),
            (
                "warden_sessions",
                &[("state", "running")],
                i.sessions_running as f64,
            ),
            (
                "warden_sessions",
                &[("state", "waiting")],
                i.sessions_waiting as f64,
            ),
            ("warden_jobs", &[("state", "queued")], i.jobs_queued as f64),
            (
                "warden_jobs",
                &[("state", "running")],
                i.jobs_running as f64,
            ),
            ("warden_jobs", &[("state", "dead")], i.jobs_dead as f64),
            (
                "warden_audit_unchained_events",
                &[],
                i.audit_unchained as f64,
            ),
            (
                "warden_audit_unverified_events",
                &[],
                snap.audit.unverified as f64,
            ),
            (
                "warden_audit_verified_seq",
                &[],
                snap.audit.verified_through as f64,
            ),
            (
                "warden_audit_chain_intact",
                &[],
                f64::from(u8::from(snap.audit.intact)),
            ),
            (
                "warden_db_pool_connections",
                &[("state", "open")],
                f64::from(snap.pool.open),
            ),
            (
                "warden_db_pool_connections",
                &[("state", "idle")],
                f64::from(snap.pool.idle),
            ),
            (
                "warden_db_pool_connections",
                &[("state", "max")],
                f64::from(snap.pool.max),
            ),
        ];
        gauges.push((
            "warden_keyring_data_key_version",
            &[],
            f64::from(snap.keyring_version),
        ));
        gauges.push((
            "warden_keyring_reencryption_remaining",
            &[],
            snap.reencryption_remaining as f64,
        ));
        if let Some(l) = snap.license {
            gauges.push(("warden_license_valid", &[], f64::from(u8::from(l.valid))));
            if let Some(days) = l.days_left {
                gauges.push(("warden_license_days_left", &[], days));
            }
        }
        for &(kind, raised, active) in &snap.alerts {
            let label = || vec![Label::from_static_parts("kind", kind)];
            self.recorder
                .register_gauge(&Key::from_parts("warden_alert_incidents", label()), &META)
                .set(raised as f64);
            self.recorder
                .register_gauge(&Key::from_parts("warden_alerts_active", label()), &META)
                .set(active as f64);
        }
        for (name, labels, value) in gauges {
            let labels = labels
                .iter()
                .map(|(k, v)| Label::from_static_parts(k, v))
                .collect::<Vec<_>>();
            self.recorder
                .register_gauge(&Key::from_parts(name, labels), &META)
                .set(value);
        }
        self.handle.render()
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
