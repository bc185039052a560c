//! A real SAML identity provider for the tests: pysaml2 with Debian's xmlsec1
//! (`crates/warden/tests/python/saml_idp.py`, installed by `scripts/test`), which signs real
//! responses and, asked to, forges them with the same library.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// One IdP process on a loopback port.
#[derive(Debug)]
pub struct SamlIdp {
    child: Child,
    /// Its base URL.
    pub base: String,
    /// Its entity id.
    pub entity_id: String,
}

/// A response the IdP made, as its auto-posting form would send it.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Where it is posted (the SP's assertion consumer service).
    pub acs: String,
    /// `SAMLResponse`.
    pub saml_response: String,
    /// `RelayState`.
    pub relay_state: String,
    /// The response's XML.
    pub xml: String,
}

impl SamlIdp {
    /// Starts one.
    pub fn start() -> Self {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../warden/tests/python/saml_idp.py");
        let port = crate::smtp::free_port();
        let mut child = Command::new(crate::smtp::python())
            .arg(script)
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the SAML IdP starts (pysaml2, installed by scripts/test)");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).expect("the IdP starts");
        assert_eq!(
            line.trim(),
            "READY",
            "the SAML IdP did not start (is pysaml2 installed? run scripts/test)"
        );
        let base = format!("http://127.0.0.1:{port}");
        Self {
            child,
            entity_id: format!("{base}/idp"),
            base,
        }
    }

    /// Its metadata.
    pub async fn metadata(&self) -> String {
        reqwest::get(format!("{}/metadata", self.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Tells it about a service provider (its metadata XML).
    pub async fn register_sp(&self, metadata: &str) {
        let res = reqwest::Client::new()
            .post(format!("{}/sp", self.base))
            .body(metadata.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 204);
    }

    /// Answers the AuthnRequest in `redirect` (the URL Warden sent the browser to) as `user`,
    /// forged as `forge` says (`{}`: a genuine, assertion-signed response).
    pub async fn answer(&self, redirect: &str, user: &str, forge: &Value) -> Answer {
        assert!(redirect.starts_with(&self.base), "{redirect}");
        let url = reqwest::Url::parse_with_params(
            redirect,
            &[("user", user), ("forge", &forge.to_string())],
        )
        .unwrap();
        Self::read(reqwest::get(url).await.unwrap()).await
    }

    /// A response nobody asked for (IdP-initiated) to the SP `sp` at `acs`.
    pub async fn unsolicited(&self, sp: &str, acs: &str, user: &str, forge: &Value) -> Answer {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/unsolicited", self.base),
            &[
                ("sp", sp),
                ("acs", acs),
                ("user", user),
                ("forge", &forge.to_string()),
            ],
        )
        .unwrap();
        Self::read(reqwest::get(url).await.unwrap()).await
    }

    async fn read(res: reqwest::Response) -> Answer {
        let status = res.status();
        let v: Value = res.json().await.unwrap();
        assert!(status.is_success(), "the IdP failed: {}", v["error"]);
        let s = |k: &str| v[k].as_str().unwrap().to_owned();
        Answer {
            acs: s("acs"),
            saml_response: s("SAMLResponse"),
            relay_state: s("RelayState"),
            xml: s("xml"),
        }
    }
}

impl Drop for SamlIdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
