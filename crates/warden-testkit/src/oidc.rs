//! A real OpenID provider for the single sign-on tests (npm `oidc-provider`, installed by
//! `scripts/test` into `crates/warden/tests/oidc`), and a browser that clicks through its
//! development login and consent forms.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The directory of the provider script and its `node_modules`.
pub fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../warden/tests/oidc")
}

/// One provider process on a loopback port.
#[derive(Debug)]
pub struct OidcProvider {
    child: Child,
    /// Its issuer URL.
    pub issuer: String,
}

impl OidcProvider {
    /// Starts one for a client with this id, secret and redirect URI.
    pub fn start(client_id: &str, client_secret: &str, redirect_uri: &str) -> Self {
        let dir = provider_dir();
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "oidc-provider is not installed: run the suite through scripts/test (npm ci in {})",
            dir.display()
        );
        let port = crate::smtp::free_port();
        let mut child = Command::new("node")
            .arg(dir.join("provider.mjs"))
            .arg(port.to_string())
            .args([client_id, client_secret, redirect_uri])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node starts");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).expect("the provider starts");
        assert_eq!(line.trim(), "READY", "the provider did not start");
        Self {
            child,
            issuer: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a browser got to: the callback URL the provider sent it to, and the binding cookie
/// Warden set at the start.
#[derive(Debug, Clone)]
pub struct Browsed {
    /// Warden's callback URL with `code` and `state`.
    pub callback: String,
    /// `__Host-warden_sso=…` as a `Cookie` header value.
    pub binding: String,
    /// The provider's authorization URL Warden redirected to.
    pub authorize: String,
}

fn location(res: &reqwest::Response, base: &str) -> String {
    let loc = res
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location ({})", res.status()))
        .to_str()
        .unwrap()
        .to_owned();
    if loc.starts_with("http") {
        loc
    } else {
        format!("{base}{loc}")
    }
}

/// The first form of an HTML page: its action and its inputs' names and values.
fn form(html: &str) -> (String, Vec<(String, String)>) {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let key = format!("{name}=\"");
        let start = tag.find(&key)? + key.len();
        Some(tag[start..].split('"').next()?.to_owned())
    };
    let start = html.find("<form").expect("a form");
    let tag = &html[start..html[start..].find('>').unwrap() + start];
    let action = attr(tag, "action").expect("a form action");
    let inputs = html[start..]
        .split("<input")
        .skip(1)
        .filter_map(|rest| {
            let tag = rest.split('>').next()?;
            Some((attr(tag, "name")?, attr(tag, "value").unwrap_or_default()))
        })
        .collect();
    (action, inputs)
}

/// Starts signing in at Warden (`start_url`, absolute), then logs in at the provider as
/// `login` and consents, stopping where the provider sends the browser back to Warden.
pub async fn browse(start_url: &str, warden_base: &str, login: &str) -> Browsed {
    let warden = crate::no_redirect_client();
    let res = warden.get(start_url).send().await.unwrap();
    assert_eq!(
        res.status(),
        303,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let binding = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("__Host-warden_sso="))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .expect("a binding cookie");
    let authorize = location(&res, warden_base);
    let provider_base = {
        let u = url::Url::parse(&authorize).unwrap();
        format!("{}://{}", u.scheme(), u.host_str().unwrap())
            + &u.port().map(|p| format!(":{p}")).unwrap_or_default()
    };
    let browser = reqwest::Client::builder()
        .no_proxy()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut next = authorize.clone();
    for _ in 0..12 {
        if next.starts_with(warden_base) {
            return Browsed {
                callback: next,
                binding,
                authorize,
            };
        }
        let res = browser.get(&next).send().await.unwrap();
        if res.status().is_redirection() {
            next = location(&res, &provider_base);
            continue;
        }
        let html = res.text().await.unwrap();
        let (action, inputs) = form(&html);
        let fields: Vec<(String, String)> = inputs
            .into_iter()
            .map(|(k, v)| match k.as_str() {
                "login" => (k, login.to_owned()),
                "password" => (k, "any password".to_owned()),
                _ => (k, v),
            })
            .collect();
        let res = browser.post(&action).form(&fields).send().await.unwrap();
        next = location(&res, &provider_base);
    }
    panic!("the provider never sent the browser back");
}
