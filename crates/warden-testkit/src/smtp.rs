//! A real SMTP server for tests: aiosmtpd (installed by `scripts/test`), writing what it
//! receives to a maildir the test reads.

#![allow(clippy::expect_used)]

/// The Python that has aiosmtpd (`WARDEN_TEST_PYTHON`, set by `scripts/test`).
pub fn python() -> String {
    std::env::var("WARDEN_TEST_PYTHON").expect(
        "WARDEN_TEST_PYTHON is not set: run the suite through scripts/test, which installs \
         aiosmtpd and joserfc",
    )
}

/// A real SMTP server (aiosmtpd) writing what it receives to a maildir.
#[derive(Debug)]
pub struct Smtp {
    child: std::process::Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    maildir: tempfile::TempDir,
}

impl Smtp {
    /// Starts one on a free loopback port.
    pub async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    /// Starts one on this loopback port.
    pub async fn start_on(port: u16) -> Self {
        Self::start_with(port, &[]).await
    }

    /// Starts one on this loopback port with more aiosmtpd options (`--tlscert`/`--tlskey`
    /// for STARTTLS, `--smtpscert`/`--smtpskey` for implicit TLS).
    pub async fn start_with(port: u16, options: &[&str]) -> Self {
        let maildir = tempfile::tempdir().expect("aiosmtpd starts");
        let child = std::process::Command::new(python())
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(options)
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path().join("box"))
            .spawn()
            .expect("aiosmtpd starts");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Self {
            child,
            port,
            maildir,
        }
    }

    /// Every message received so far (raw RFC 5322 text), sorted.
    pub fn messages(&self) -> Vec<String> {
        let new = self.maildir.path().join("box").join("new");
        let mut all: Vec<String> = std::fs::read_dir(new)
            .map(|d| {
                d.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        all.sort();
        all
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Smtp {
    /// Waits (up to 10 s) until `n` messages have arrived, and returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        for _ in 0..200 {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.messages()
    }
}

/// A loopback port nothing listens on (right now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The text of a received message with its transfer encoding undone (lettre picks
/// quoted-printable for long lines such as links), headers included.
pub fn decoded(raw: &str) -> String {
    let raw = raw.replace("\r\n", "\n");
    let Some((head, body)) = raw.split_once("\n\n") else {
        return raw;
    };
    if !head
        .to_ascii_lowercase()
        .contains("content-transfer-encoding: quoted-printable")
    {
        return raw;
    }
    let body = quoted_printable::decode(body.as_bytes(), quoted_printable::ParseMode::Robust)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|_| body.to_owned());
    format!("{head}\n\n{body}")
}

/// The first URL in `text` that contains `marker` (up to the next whitespace).
pub fn link_in(text: &str, marker: &str) -> Option<String> {
    text.split_whitespace()
        .find(|w| w.contains(marker) && w.starts_with("http"))
        .map(str::to_owned)
}
