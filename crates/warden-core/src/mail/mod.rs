//! Outgoing mail through the outbox. A use case queues a message in its own transaction
//! ([`queue`]), so mail goes out exactly when the change commits and nothing is lost if the
//! process stops; each node's sender ([`spawn_sender`]) claims due messages under a lease,
//! sends them over SMTP (or, with no SMTP configured, writes them to the log so the embedded
//! default works), retries failures with backoff and gives up after [`MAX_ATTEMPTS`]. Bodies
//! are sealed by the keyring while they wait and wiped once a message is done; the admins'
//! mail log ([`log`]) shows everything else.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use uuid::Uuid;
use warden_crypto::Context;
use warden_store::Tx;
use warden_store::mail::{ClaimedMail, MailLogRow, NewMail};

use crate::paging::{Page, page_limit, time_cursor};
use crate::settings::SmtpConfig;
use crate::{CoreError, CoreResult, Ctx};
use warden_store::tenancy::PlatformGrant;

/// Attempts before a message is given up on.
pub const MAX_ATTEMPTS: i32 = 6;
/// Wait after the n-th failed attempt (1-based).
const BACKOFF_SECS: [i64; 5] = [30, 120, 600, 3600, 6 * 3600];
/// How long a node may take to send a claimed message before another node may try.
const LEASE_SECS: i64 = 120;
/// How often each node looks for due messages when nothing woke it.
const POLL: Duration = Duration::from_secs(1);

/// The node's mail settings and the sender's wake-up call.
#[derive(Debug)]
pub struct Mail {
    /// SMTP settings.
    pub config: SmtpConfig,
    wake: tokio::sync::Notify,
}

impl Mail {
    /// Mail with these settings.
    pub fn new(config: SmtpConfig) -> Self {
        Self {
            config,
            wake: tokio::sync::Notify::new(),
        }
    }

    /// Tells this node's sender that messages were committed.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

pub(crate) fn body_context(id: Uuid) -> Context {
    Context::new("warden.mail_body").with(id.as_bytes())
}

/// A message to send.
#[derive(Debug)]
pub struct Outgoing<'a> {
    /// What sends it, for the mail log (`magic_link`, `license_expiry`, …).
    pub kind: &'a str,
    /// One address.
    pub to: &'a str,
    /// Subject line (kept in the mail log: no secrets in it).
    pub subject: &'a str,
    /// Plain-text body (sealed while it waits; may hold a sign-in link).
    pub body: &'a str,
}

/// Queues a message in `tx`: it is sent once `tx` commits. Call [`Mail::wake`] after the
/// commit for it to leave at once.
pub async fn queue(ctx: &Ctx, tx: &mut Tx, m: &Outgoing<'_>, now_us: i64) -> CoreResult<()> {
    let id = Uuid::now_v7();
    let sealed = ctx
        .keyring
        .seal(&body_context(id), m.body.as_bytes())
        .map_err(|e| CoreError::internal(&e))?;
    tx.queue_mail(&NewMail {
        id,
        kind: m.kind,
        recipient: m.to,
        subject: m.subject,
        sealed_body: &sealed,
        now: now_us,
    })
    .await?;
    Ok(())
}

/// The mail log, newest first: what was sent, logged, is waiting or was given up, and why
/// the last attempt failed. Never a body.
pub async fn log(
    ctx: &Ctx,
    _admin: &PlatformGrant,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> CoreResult<Page<MailLogRow>> {
    let limit = page_limit(limit)?;
    let before = time_cursor(cursor)?;
    let mut tx = ctx.store.begin_read().await?;
    let rows = tx.mail_log(before, limit).await?;
    tx.commit().await?;
    Ok(Page::by_time(rows, limit, |r| r.created_at))
}

/// Starts this node's sender: it sends what is due whenever woken, and at least every second.
pub fn spawn_sender(ctx: Arc<Ctx>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let transport = transport(&ctx.mail.config);
        loop {
            send_due(&ctx, transport.as_ref()).await;
            tokio::select! {
                () = ctx.mail.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    })
}

type Transport = AsyncSmtpTransport<Tokio1Executor>;

fn transport(config: &SmtpConfig) -> Option<Transport> {
    let url = config.url.as_ref()?;
    match build_transport(url.expose_secret(), config.ca_pem.as_deref()) {
        Ok(t) => Some(t),
        Err(e) => {
            // Checked at start-up; if it still fails here, every message fails visibly.
            tracing::error!(error = %e, "smtp.url is not usable: mail stays queued and is retried");
            None
        }
    }
}

/// The SMTP transport for `url` (TLS as the URL says: `smtps://` implicit, `?tls=required`
/// STARTTLS), trusting `ca_pem` besides the system's roots when given.
pub fn build_transport(url: &str, ca_pem: Option<&[u8]>) -> Result<Transport, String> {
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    let builder = Transport::from_url(url).map_err(|_| "smtp.url is not usable".to_owned())?;
    let builder = match ca_pem {
        Some(pem) => {
            let host = url
                .split("://")
                .nth(1)
                .and_then(|rest| rest.rsplit('@').next())
                .and_then(|rest| rest.split(['/', '?']).next())
                .map(|hp| match hp.rsplit_once(':') {
                    Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
                    _ => hp,
                })
                .unwrap_or_default()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let cert = Certificate::from_pem(pem).map_err(|e| e.to_string())?;
            let params = TlsParameters::builder(host)
                .add_root_certificate(cert)
                .build_rustls()
                .map_err(|e| e.to_string())?;
            if url.starts_with("smtps://") {
                builder.tls(Tls::Wrapper(params))
            } else if url.contains("tls=required") {
                builder.tls(Tls::Required(params))
            } else if url.contains("tls=opportunistic") {
                builder.tls(Tls::Opportunistic(params))
            } else {
                builder
            }
        }
        None => builder,
    };
    Ok(builder.timeout(Some(Duration::from_secs(20))).build())
}

/// Sends every message due now (one batch per call, until none is left).
pub async fn send_due(ctx: &Ctx, transport: Option<&Transport>) {
    loop {
        let now = crate::identity::now_us(ctx.clock.as_ref());
        let claimed = match ctx
            .store
            .claim_due_mail(now, now + LEASE_SECS * 1_000_000, 20)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the mail outbox");
                return;
            }
        };
        if claimed.is_empty() {
            return;
        }
        for m in claimed {
            let (status, next, error) = attempt(ctx, transport, &m, now).await;
            if let Err(e) = ctx
                .store
                .finish_mail_attempt(m.id, status, next, error.as_deref(), now)
                .await
            {
                tracing::error!(error = %e, mail = %m.id, "cannot record a mail attempt");
            }
        }
    }
}

/// One attempt: the status to record, when to retry (if it failed and tries are left), and
/// why it failed.
async fn attempt(
    ctx: &Ctx,
    transport: Option<&Transport>,
    m: &ClaimedMail,
    now: i64,
) -> (&'static str, Option<i64>, Option<String>) {
    let body = m
        .sealed_body
        .as_deref()
        .and_then(|sealed| ctx.keyring.open(&body_context(m.id), sealed).ok())
        .and_then(|b| String::from_utf8(b.to_vec()).ok());
    let Some(body) = body else {
        return (
            "failed",
            None,
            Some("the stored body cannot be opened".into()),
        );
    };
    if ctx.mail.config.url.is_none() {
        // No SMTP: the embedded default writes mail to the log so a person on this machine
        // can still follow a link. Configure smtp.url for anything else.
        tracing::info!(
            to = %m.recipient,
            subject = %m.subject,
            kind = %m.kind,
            "mail (no SMTP configured; set smtp.url to send it):\n{body}"
        );
        return ("logged", None, None);
    }
    let result = match (transport, message(&ctx.mail.config, m, body)) {
        (_, Err(e)) => Err(e),
        (None, _) => Err("smtp.url is not usable".to_owned()),
        (Some(t), Ok(msg)) => t.send(msg).await.map(drop).map_err(|e| describe(&e)),
    };
    match result {
        Ok(()) => ("sent", None, None),
        Err(why) => {
            let attempts = m.attempts + 1;
            tracing::warn!(mail = %m.id, attempts, error = %why, "mail not delivered");
            if attempts >= MAX_ATTEMPTS {
                ("failed", None, Some(why))
            } else {
                let wait = BACKOFF_SECS[usize::try_from(attempts - 1).unwrap_or(0).min(4)];
                ("queued", Some(now + wait * 1_000_000), Some(why))
            }
        }
    }
}

fn message(config: &SmtpConfig, m: &ClaimedMail, body: String) -> Result<Message, String> {
    let from = config
        .from
        .parse::<Mailbox>()
        .map_err(|_| "smtp.from is not an address".to_owned())?;
    let to = m
        .recipient
        .parse::<Mailbox>()
        .map_err(|_| "the recipient is not a deliverable address".to_owned())?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(m.subject.clone())
        .body(body)
        .map_err(|e| format!("cannot build the message: {e}"))
}

/// An SMTP error for the mail log: the server's answer or the connection problem, short.
fn describe(e: &lettre::transport::smtp::Error) -> String {
    let text = e.to_string();
    text.chars().take(300).collect()
}
