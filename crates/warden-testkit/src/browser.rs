//! A person's browser on the server-rendered pages, without a browser: the console's session
//! cookie, the page's HTML, its forms posted same-origin with the CSRF field they carry. A request that cannot be sent fails the test.

#![allow(clippy::panic)]

use reqwest::StatusCode;

use crate::TestApp;

/// A browser signed in to the console with `access_token` (its access cookie).
#[derive(Debug, Clone)]
pub struct Browser {
    base: String,
    /// The `cookie` header it sends.
    pub cookie: Option<String>,
    /// What the browser sends as `Origin` on a post (its own origin by default).
    pub origin: String,
}

impl Browser {
    /// Signed in with the access token of a console session.
    pub fn signed_in(app: &TestApp, access_token: &str) -> Self {
        Self {
            base: app.url(""),
            cookie: Some(format!("__Host-warden_access={access_token}")),
            origin: app.url(""),
        }
    }

    /// Not signed in.
    pub fn anonymous(app: &TestApp) -> Self {
        Self {
            base: app.url(""),
            cookie: None,
            origin: app.url(""),
        }
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    }

    /// Opens `path`: status and HTML.
    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let mut req = Self::client().get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        match req.send().await {
            Ok(res) => (res.status(), res.text().await.unwrap_or_default()),
            Err(e) => panic!("GET {path}: {e}"),
        }
    }

    /// Posts a form to `path` (fields in order, repeated names allowed).
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut req = Self::client()
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", &self.origin)
            .body(body);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        match req.send().await {
            Ok(res) => (res.status(), res.text().await.unwrap_or_default()),
            Err(e) => panic!("POST {path}: {e}"),
        }
    }
}

impl Browser {
    /// Posts a form that must answer with a redirect (303): where it sends the browser.
    pub async fn submit(&self, path: &str, fields: &[(&str, &str)]) -> String {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut req = Self::client()
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", &self.origin)
            .body(body);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let res = match req.send().await {
            Ok(res) => res,
            Err(e) => panic!("POST {path}: {e}"),
        };
        let status = res.status();
        let location = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match location {
            Some(l) if status == StatusCode::SEE_OTHER => l,
            _ => panic!(
                "POST {path}: {status}, not a redirect: {}",
                res.text().await.unwrap_or_default()
            ),
        }
    }
}

/// The value of the hidden input `name` in a page's HTML.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// Approves (`approve`) or denies (`deny`) the device grant of `user_code` through the
/// verification page as `browser`, ticking `workspaces` for a host. The decision page.
pub async fn decide_device(
    browser: &Browser,
    user_code: &str,
    action: &str,
    workspaces: &[&str],
) -> (StatusCode, String) {
    let (status, page) = browser.get(&format!("/device?user_code={user_code}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let csrf = hidden(&page, "csrf").unwrap_or_default();
    let mut fields = vec![
        ("csrf", csrf.as_str()),
        ("user_code", user_code),
        ("action", action),
    ];
    for w in workspaces {
        fields.push(("workspace_ids", w));
    }
    browser.post("/device", &fields).await
}
