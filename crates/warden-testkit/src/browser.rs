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

impl Browser {
    /// Creates a workspace called `name` with the console's form: its id, and the session's
    /// CSRF token for the next forms.
    pub async fn new_workspace(&self, name: &str) -> (String, String) {
        let (_, page) = self.get("/console/workspaces").await;
        let csrf = hidden(&page, "csrf").unwrap_or_default();
        let to = self
            .submit("/console/workspaces", &[("csrf", &csrf), ("name", name)])
            .await;
        let id = to.split('/').nth(3).unwrap_or_default().to_owned();
        (id, csrf)
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

/// Runs the browser walk-through `script` (in `dir`, where its npm packages are) with `env`
/// and returns the JSON summary it prints last; fails the test if node fails or prints none.
pub async fn walk_through(
    dir: &std::path::Path,
    script: &str,
    env: &[(&str, &std::ffi::OsStr)],
) -> serde_json::Value {
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(dir.join(script))
        .current_dir(dir)
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = match cmd.output().await {
        Ok(out) => out,
        Err(e) => {
            panic!("node runs (scripts/test installs Node.js, Chromium and playwright-core): {e}")
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    match serde_json::from_str(stdout.lines().last().unwrap_or_default()) {
        Ok(summary) => summary,
        Err(e) => panic!("{e}: {stderr}"),
    }
}

/// Checks that every page a walk-through photographed has its desktop and phone screenshot
/// in `shots`, and returns how many pages there were.
pub fn screenshots(summary: &serde_json::Value, shots: &std::path::Path) -> usize {
    let pages = summary["pages"].as_array().cloned().unwrap_or_default();
    for page in &pages {
        for width in ["desktop", "phone"] {
            let shot = shots.join(format!("{}-{width}.png", page.as_str().unwrap_or_default()));
            assert!(shot.exists(), "{}", shot.display());
        }
    }
    pages.len()
}
