//! Ticket sync against a stub of GitHub's REST API (testkit `github_stub`, shaped after
//! GitHub's documented examples): issues imported, state and comments kept in step both
//! ways with the conflict rule written in the README, pagination, the rate limit honoured,
//! errors shown without the token, private trackers refused unless the operator allows them,
//! the schedule, and comments on tickets.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_testkit::azure_stub::AzureStub;
use warden_testkit::github_stub::GitHubStub;
use warden_testkit::{AppOptions, TestApp};

use crate::identity::{admin_token, audit_rows};
use crate::llm::{member_with_role, workspace};

const REPO: &str = "team/app";
const TOKEN: &str = "ghp_stubTokenNeverShown0123456789";

fn env(every: &str) -> Vec<(String, String)> {
    vec![
        (
            "WARDEN_TICKETS_ALLOW_PRIVATE_TRACKERS".into(),
            "true".into(),
        ),
        ("WARDEN_TICKETS_SYNC_EVERY_SECS".into(), every.into()),
    ]
}

fn at(v: &Value) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(v.as_str()?, &time::format_description::well_known::Rfc3339).ok()
}

struct Synced {
    app: TestApp,
    gh: GitHubStub,
    admin: String,
    ws: String,
}

async fn synced_with(every: &str, token: &str) -> Synced {
    let app = TestApp::spawn_with(AppOptions {
        env: env(every),
        ..Default::default()
    })
    .await
    .unwrap();
    Synced::on(app, token).await
}

impl Synced {
    /// A workspace of `app` with `token` as its personal access token, and a GitHub stub.
    async fn on(app: TestApp, token: &str) -> Self {
        let gh = GitHubStub::start(REPO, TOKEN).await.unwrap();
        let admin = admin_token(&app).await;
        let ws = workspace(&app, &admin, "synced").await;
        let (s, _) = app
            .call(
                &admin,
                Method::PUT,
                &format!("/api/v1/workspaces/{ws}/pat"),
                Some(json!({"value": token})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        Self { app, gh, admin, ws }
    }

    async fn source(&self, config: Value) -> (StatusCode, Value) {
        self.app
            .call(
                &self.admin,
                Method::PUT,
                &format!("/api/v1/workspaces/{}/settings", self.ws),
                Some(json!({"repository": null, "hooks": {}, "ticket_config": config})),
            )
            .await
    }

    async fn point_at_stub(&self) {
        let (s, body) = self
            .source(json!({"provider": "github", "project": REPO,
                           "base_url": self.gh.base_url()}))
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }

    async fn state(&self) -> Value {
        let (s, body) = self
            .app
            .call(
                &self.admin,
                Method::GET,
                &format!("/api/v1/workspaces/{}/ticket-sync", self.ws),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        body
    }

    /// Asks for a run and waits for it to end; the state after it.
    /// Asks for a run and waits for one that started after the request to end (an earlier
    /// run, such as the one saving the source starts, does not count).
    async fn sync(&self) -> Value {
        let (s, body) = self
            .app
            .call(
                &self.admin,
                Method::POST,
                &format!("/api/v1/workspaces/{}/ticket-sync", self.ws),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let asked = at(&body["next_at"]).unwrap();
        for _ in 0..400 {
            let st = self.state().await;
            if let (Some(started), Some(finished)) =
                (at(&st["last_started_at"]), at(&st["last_finished_at"]))
                && started >= asked
                && finished >= started
            {
                return st;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the sync did not run: {}", self.state().await);
    }

    async fn ran_after(&self, before: &Value) -> Value {
        for _ in 0..200 {
            let st = self.state().await;
            if !st["last_finished_at"].is_null() && st["last_finished_at"] != *before {
                return st;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the sync did not run: {}", self.state().await);
    }

    async fn tickets(&self) -> Vec<Value> {
        let (_, list) = self
            .app
            .call(
                &self.admin,
                Method::GET,
                &format!("/api/v1/workspaces/{}/tickets", self.ws),
                None,
            )
            .await;
        list.as_array().cloned().unwrap_or_default()
    }

    async fn ticket(&self, number: i64) -> Value {
        let (s, t) = self
            .app
            .call(
                &self.admin,
                Method::GET,
                &format!("/api/v1/workspaces/{}/tickets/{number}", self.ws),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{t}");
        t
    }

    async fn comments(&self, number: i64) -> Vec<Value> {
        let (s, c) = self
            .app
            .call(
                &self.admin,
                Method::GET,
                &format!("/api/v1/workspaces/{}/tickets/{number}/comments", self.ws),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{c}");
        c.as_array().cloned().unwrap_or_default()
    }

    async fn move_to(&self, number: i64, to: &str, reason: Option<&str>) {
        let (s, body) = self
            .app
            .call(
                &self.admin,
                Method::POST,
                &format!("/api/v1/workspaces/{}/tickets/{number}/move", self.ws),
                Some(json!({"to": to, "reason": reason})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
}

#[tokio::test]
async fn a_github_repository_is_imported_and_kept_in_step_both_ways() {
    let t = synced_with("3600", TOKEN).await;
    let login = t.gh.add_issue(
        "Login loses the next link",
        "Steps: sign in.\n\n<script>alert(1)</script>",
        &["bug"],
    );
    t.gh.add_pull_request("Fix the login page");
    let old = t.gh.add_issue("Closed long ago", "", &[]);
    t.gh.set_state(old, Some("completed"));
    t.point_at_stub().await;

    let st = t.sync().await;
    assert!(st["last_error"].is_null(), "{st}");
    assert_eq!(st["provider"], "github");
    let tickets = t.tickets().await;
    assert_eq!(
        tickets.len(),
        1,
        "open issues only, no pull request: {tickets:?}"
    );
    let n = tickets[0]["number"].as_i64().unwrap();
    let detail = t.ticket(n).await;
    assert_eq!(detail["title"], "Login loses the next link");
    assert_eq!(detail["labels"], json!(["bug"]));
    assert_eq!(detail["status"], "backlog");
    assert!(
        !detail["body_html"].as_str().unwrap().contains("<script"),
        "{detail}"
    );
    let created = audit_rows(&t.app, "ticket.created").await;
    assert!(
        created[0].summary.contains("\"via\":\"ticket-sync\""),
        "{created:?}"
    );

    // GitHub's side moves: a comment, then the issue closed as completed.
    t.gh.comment(login, "alice", "Seen on staging too.");
    t.gh.set_state(login, Some("completed"));
    t.gh.edit_issue(login, "Login drops ?next=", "Steps: sign in.");
    let st = t.sync().await;
    assert!(st["last_error"].is_null(), "{st}");
    let detail = t.ticket(n).await;
    assert_eq!(detail["status"], "done", "{detail}");
    assert_eq!(
        detail["title"], "Login drops ?next=",
        "the tracker's text wins"
    );
    let comments = t.comments(n).await;
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert_eq!(comments[0]["author_name"], "alice");
    assert_eq!(comments[0]["from_tracker"], true);
    let moved = audit_rows(&t.app, "ticket.moved").await;
    assert!(
        moved[0].summary.contains("ticket-sync") && moved[0].summary.contains("\"to\":\"done\""),
        "{moved:?}"
    );

    // Our side moves: reopened here with a comment; both reach GitHub, once.
    t.move_to(n, "backlog", Some("not fixed on mobile")).await;
    let (s, c) = t
        .app
        .call(
            &t.admin,
            Method::POST,
            &format!("/api/v1/workspaces/{}/tickets/{n}/comments", t.ws),
            Some(json!({"body": "Still broken on **mobile**."})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(c["in_tracker"], false);
    let st = t.sync().await;
    assert!(st["last_error"].is_null(), "{st}");
    assert_eq!(t.gh.issue(login)["state"], "open");
    let there = t.gh.comments_on(login);
    assert_eq!(there.len(), 2, "{there:?}");
    assert!(
        there[1]["body"]
            .as_str()
            .unwrap()
            .contains("Still broken on **mobile**.")
    );
    // Reading our own comment back neither imports it nor sends it again.
    t.sync().await;
    t.sync().await;
    assert_eq!(t.gh.comments_on(login).len(), 2);
    let comments = t.comments(n).await;
    assert_eq!(comments.len(), 2, "{comments:?}");
    assert_eq!(comments[1]["in_tracker"], true, "{comments:?}");
    assert!(
        !comments[1]["body_html"]
            .as_str()
            .unwrap()
            .contains("warden-comment")
    );

    // Both sides changed: Warden's move wins and the issue is set to match.
    t.move_to(n, "rejected", Some("duplicate of #9")).await;
    t.gh.set_state(login, Some("completed"));
    let st = t.sync().await;
    assert!(st["last_error"].is_null(), "{st}");
    assert_eq!(t.ticket(n).await["status"], "rejected");
    let issue = t.gh.issue(login);
    assert_eq!(
        (issue["state"].as_str(), issue["state_reason"].as_str()),
        (Some("closed"), Some("not_planned"))
    );
    assert!(st["pushed"].as_i64().unwrap() >= 3, "{st}");

    // The token went only to GitHub, as a bearer token: never into state or audit.
    assert!(!st.to_string().contains(TOKEN));
    for action in [
        "ticket_sync.ran",
        "ticket.created",
        "ticket.moved",
        "ticket_sync.pushed",
    ] {
        for r in audit_rows(&t.app, action).await {
            assert!(!r.summary.contains(TOKEN), "{r:?}");
        }
    }
    assert!(t.gh.requests().iter().all(|r| !r.contains(TOKEN)));
}

#[tokio::test]
async fn a_tracker_change_the_acting_person_may_not_make_is_refused_and_audited() {
    let t = synced_with("3600", TOKEN).await;
    let issue = t.gh.add_issue("Ship it", "", &[]);
    // A maintainer saves the source: the sync acts for them from now on.
    let maintainer = member_with_role(&t.app, &t.admin, &t.ws, "maintainer").await;
    let (s, body) = t
        .app
        .call(
            &maintainer,
            Method::PUT,
            &format!("/api/v1/workspaces/{}/settings", t.ws),
            Some(json!({"repository": null, "hooks": {},
                        "ticket_config": {"provider": "github", "project": REPO,
                                          "base_url": t.gh.base_url()}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (_, me) = t
        .app
        .call(&maintainer, Method::GET, "/api/v1/me", None)
        .await;
    assert_eq!(t.state().await["acting_for"], me["id"]);
    t.sync().await;
    let n = t.tickets().await[0]["number"].as_i64().unwrap();
    t.move_to(n, "ready_for_development", None).await;
    t.move_to(n, "in_development", None).await;
    // They become a member: in development → done needs tickets.skip_to_merge.
    let (s, body) = t
        .app
        .call(
            &t.admin,
            Method::PATCH,
            &format!(
                "/api/v1/workspaces/{}/members/{}",
                t.ws,
                me["id"].as_str().unwrap()
            ),
            Some(json!({"role": "member"})),
        )
        .await;
    assert!(s.is_success(), "{s} {body}");
    t.gh.set_state(issue, Some("completed"));
    let st = t.sync().await;
    assert!(st["last_error"].is_null(), "{st}");
    assert_eq!(t.ticket(n).await["status"], "in_development");
    let denied: Vec<_> = audit_rows(&t.app, "ticket.moved")
        .await
        .into_iter()
        .filter(|r| r.outcome == "denied")
        .collect();
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert!(
        denied[0].summary.contains("tickets.skip_to_merge"),
        "{denied:?}"
    );
    // The issue keeps its state: the sync does not reopen it either.
    t.sync().await;
    assert_eq!(t.gh.issue(issue)["state"], "closed");
    // Out of the workspace, they can no longer be acted for: the run says so.
    let (s, _) = t
        .app
        .call(
            &t.admin,
            Method::DELETE,
            &format!(
                "/api/v1/workspaces/{}/members/{}",
                t.ws,
                me["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert!(s.is_success());
    let st = t.sync().await;
    assert!(
        st["last_error"].as_str().unwrap().contains("save it again"),
        "{st}"
    );
}

#[tokio::test]
async fn issues_are_read_page_by_page_and_labels_select_them() {
    let t = synced_with("3600", TOKEN).await;
    t.gh.set_page_size(2);
    for i in 0..5 {
        t.gh.add_issue(&format!("Agent task {i}"), "", &["agent"]);
    }
    t.gh.add_issue("Not for agents", "", &["design"]);
    let (s, body) = t
        .source(
            json!({"provider": "github", "project": REPO, "base_url": t.gh.base_url(),
                       "labels": ["agent"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let st = t.sync().await;
    assert!(st["last_error"].is_null(), "{st}");
    let titles: Vec<String> = t
        .tickets()
        .await
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(titles.len(), 5, "{titles:?}");
    assert!(!titles.iter().any(|t| t == "Not for agents"));
    // The first run read three pages from the start (saving the source started it).
    let pages: Vec<String> =
        t.gh.requests()
            .into_iter()
            .filter(|r| r.starts_with("GET /repos/team/app/issues?") && !r.contains("since="))
            .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(
        pages[1].contains("page=2") && pages[2].contains("page=3"),
        "{pages:?}"
    );
    // The next run starts from the newest change seen, not from the beginning.
    t.sync().await;
    let last =
        t.gh.requests()
            .into_iter()
            .rfind(|r| r.starts_with("GET /repos/team/app/issues?"))
            .unwrap();
    assert!(last.contains("since="), "{last}");
    assert_eq!(t.tickets().await.len(), 5);
}

#[tokio::test]
async fn the_rate_limit_stops_a_run_and_the_next_waits_for_its_reset() {
    let t = synced_with("3600", TOKEN).await;
    t.gh.add_issue("One", "", &[]);
    use warden_domain::clock::{Clock, SystemClock};
    let reset = SystemClock.now().unix_timestamp() + 3600;
    t.gh.set_rate_limit(1, reset);
    // Saving the source starts the first run: it spends the budget.
    t.point_at_stub().await;
    let st = t.ran_after(&Value::Null).await;
    let error = st["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("rate limit"), "{st}");
    assert!(!st["rate_limited_until"].is_null(), "{st}");
    // The issue of the one call allowed was imported; nothing more was asked of GitHub.
    assert_eq!(t.tickets().await.len(), 1);
    assert_eq!(t.gh.requests().len(), 1, "{:?}", t.gh.requests());
    // Asking again does not bring the next run before the reset.
    let (s, again) = t
        .app
        .call(
            &t.admin,
            Method::POST,
            &format!("/api/v1/workspaces/{}/ticket-sync", t.ws),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again["next_at"], st["rate_limited_until"], "{again}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(t.gh.requests().len(), 1);
}

#[tokio::test]
async fn sync_errors_are_shown_and_never_carry_the_token() {
    let wrong = "ghp_wrongTokenAlsoNeverShown987";
    let t = synced_with("3600", wrong).await;
    t.point_at_stub().await;
    let st = t.sync().await;
    let error = st["last_error"].as_str().unwrap();
    assert!(error.contains("401"), "{st}");
    assert!(!st.to_string().contains(wrong));
    let ran = audit_rows(&t.app, "ticket_sync.ran").await;
    assert_eq!(ran[0].outcome, "failed");
    assert!(!ran[0].summary.contains(wrong));

    // Another repository: 404, named.
    let (s, _) = t
        .source(json!({"provider": "github", "project": "team/other",
                       "base_url": t.gh.base_url()}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = t
        .app
        .call(
            &t.admin,
            Method::PUT,
            &format!("/api/v1/workspaces/{}/pat", t.ws),
            Some(json!({"value": TOKEN})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let st = t.sync().await;
    assert!(
        st["last_error"].as_str().unwrap().contains("team/other"),
        "{st}"
    );

    // No token at all.
    let (s, _) = t
        .app
        .call(
            &t.admin,
            Method::DELETE,
            &format!("/api/v1/workspaces/{}/pat", t.ws),
            None,
        )
        .await;
    assert!(s.is_success());
    let st = t.sync().await;
    assert!(
        st["last_error"]
            .as_str()
            .unwrap()
            .contains("personal access token"),
        "{st}"
    );
    // A source that is not synced has no sync.
    let (s, _) = t
        .source(json!({"provider": "jira", "project": "PAY"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = t
        .app
        .call(
            &t.admin,
            Method::GET,
            &format!("/api/v1/workspaces/{}/ticket-sync", t.ws),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_tracker_on_a_private_address_is_refused_unless_the_operator_allows_it() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let ws = workspace(&app, &admin, "strict").await;
    for base in [
        "http://127.0.0.1:9/",
        "https://127.0.0.1/",
        "https://10.0.0.8/api/v3",
        "https://169.254.169.254/",
        "https://localhost/",
    ] {
        let (s, body) = app
            .call(
                &admin,
                Method::PUT,
                &format!("/api/v1/workspaces/{ws}/settings"),
                Some(json!({"repository": null, "hooks": {},
                    "ticket_config": {"provider": "github", "project": REPO, "base_url": base}})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{base}: {body}");
        assert_eq!(body["field"], "ticket_config", "{body}");
    }
    // Even where private trackers are allowed, link-local (cloud metadata) is not.
    let t = synced_with("3600", TOKEN).await;
    let (s, _) = t
        .source(json!({"provider": "github", "project": REPO,
                       "base_url": "http://169.254.169.254/"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_sync_runs_on_its_schedule() {
    let t = synced_with("1", TOKEN).await;
    t.point_at_stub().await;
    let first = t.ran_after(&Value::Null).await;
    assert!(first["last_error"].is_null(), "{first}");
    t.gh.add_issue("Arrived later", "", &[]);
    for _ in 0..100 {
        if !t.tickets().await.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the scheduled sync did not import the new issue");
}

/// A run that read the clock, then waited for the lock while another run started and
/// ended, must not move the marks back: with them back, the sync would look idle while it
/// runs and a third run could start beside it (and a requested run would look never run).
#[tokio::test]
async fn a_run_that_waited_for_the_lock_never_moves_the_marks_back() {
    let t = synced_with("3600", TOKEN).await;
    t.point_at_stub().await;
    t.sync().await;
    // Saving the source queued a run of its own, which may run after the requested one
    // (each takes its turn on the lock): wait until the queue is empty and nothing runs, so
    // that every mark below is this test's.
    let store = t.app.server.store().clone();
    let mut quiet = false;
    for _ in 0..400 {
        let jobs = store.job_counts().await.unwrap();
        if jobs.queued == 0 && jobs.running == 0 {
            quiet = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(quiet, "the queue never emptied");
    let st = t.state().await;
    let finished = at(&st["last_finished_at"]).unwrap();
    assert!(finished >= at(&st["last_started_at"]).unwrap(), "{st}");
    let us = |t: time::OffsetDateTime| i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap();
    let ws: uuid::Uuid = t.ws.parse().unwrap();
    let stale_before = 0;

    // Read the clock before the last run ended: refused, nothing moves.
    let mut tx = store.begin_jobs().await.unwrap();
    let stale = us(finished) - 1_000;
    assert!(
        !tx.ticket_sync_started(ws, stale, stale_before)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    assert_eq!(t.state().await["last_started_at"], st["last_started_at"]);

    // A current start goes through; a second one beside it is refused.
    let later = us(finished) + 5_000_000;
    let mut tx = store.begin_jobs().await.unwrap();
    assert!(
        tx.ticket_sync_started(ws, later, stale_before)
            .await
            .unwrap()
    );
    assert!(
        !tx.ticket_sync_started(ws, later + 1, stale_before)
            .await
            .unwrap()
    );
    // The wall clock stepped back before the run ended: the end is its start, not earlier.
    tx.ticket_sync_finished(
        ws,
        &warden_store::ticket_sync::SyncOutcome::default(),
        later - 9,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let now = t.state().await;
    assert_eq!(now["last_started_at"], now["last_finished_at"], "{now}");
    assert!(at(&now["last_started_at"]).unwrap() > finished, "{now}");
}

#[tokio::test]
async fn comments_are_written_read_and_refused_when_empty_or_not_allowed() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let ws = workspace(&app, &admin, "talk").await;
    let t = crate::tickets::ticket(&app, &admin, &ws, json!({"title": "Talk about it"})).await;
    let n = t["number"].as_i64().unwrap();
    let url = format!("/api/v1/workspaces/{ws}/tickets/{n}/comments");
    let (s, c) = app
        .call(
            &admin,
            Method::POST,
            &url,
            Some(json!({"body": "[x](javascript:alert(1)) <img src=x onerror=alert(1)>"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let html = c["body_html"].as_str().unwrap();
    assert!(
        !html.contains("javascript:") && !html.contains("<img"),
        "{html}"
    );
    for bad in [json!({"body": "   "}), json!({"body": "x".repeat(70_000)})] {
        let (s, _) = app.call(&admin, Method::POST, &url, Some(bad)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let viewer = member_with_role(&app, &admin, &ws, "viewer").await;
    let (s, list) = app.call(&viewer, Method::GET, &url, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (s, _) = app
        .call(&viewer, Method::POST, &url, Some(json!({"body": "hi"})))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let commented = audit_rows(&app, "ticket.commented").await;
    assert_eq!(commented.len(), 1);
    // The ticket sync of a workspace with no synced source is 404.
    let (s, _) = app
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/ticket-sync"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn warden_ticket_sync_and_comment_work_from_a_terminal() {
    let t = synced_with("3600", TOKEN).await;
    t.gh.add_issue("From GitHub", "", &[]);
    t.point_at_stub().await;
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials.json");
    let run = |args: &[&str], stdin: &'static str| {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        crate::cli::run_cli(dir.path(), &creds, args, stdin)
    };
    let login = [
        "login",
        "--url",
        &t.app.base,
        "--email",
        crate::identity::ADMIN_EMAIL,
    ];
    let (ok, out) = run(&login, "violet tractor 93 lagoon\n").await.unwrap();
    assert!(ok, "{out}");
    let (ok, out) = run(&["ticket", "-w", &t.ws, "sync", "--now"], "")
        .await
        .unwrap();
    assert!(ok && out.contains("github team/app"), "{out}");
    t.ran_after(&Value::Null).await;
    let (ok, out) = run(&["ticket", "-w", &t.ws, "sync"], "").await.unwrap();
    assert!(ok && out.contains("imported 1"), "{out}");
    let (ok, out) = run(
        &["ticket", "-w", &t.ws, "comment", "1", "--body", "On it."],
        "",
    )
    .await
    .unwrap();
    assert!(ok, "{out}");
    let (ok, out) = run(&["ticket", "-w", &t.ws, "comment", "1"], "")
        .await
        .unwrap();
    assert!(ok && out.contains("On it."), "{out}");
}

#[tokio::test]
async fn a_maintainer_follows_the_sync_and_comments_in_chromium() {
    if crate::browser::skipped() {
        return;
    }
    let (app, public) = crate::browser::console_app(&[
        ("WARDEN_TICKETS_ALLOW_PRIVATE_TRACKERS", "true"),
        ("WARDEN_TICKETS_SYNC_EVERY_SECS", "3600"),
    ])
    .await;
    let t = Synced::on(app, TOKEN).await;
    let issue = t.gh.add_issue(
        "Dark mode for the dashboard",
        "People work **at night**.",
        &["ui"],
    );
    t.gh.comment(issue, "alice", "The contrast must stay *AA*.");
    t.point_at_stub().await;
    let ws = t.ws.clone();
    let summary = crate::browser::walk("ticket_sync.mjs", &public, &[("WORKSPACE", &ws)], 3).await;
    assert_eq!(summary["sync_heading"], "Synced with GitHub", "{summary}");
    assert!(
        summary["notice"].as_str().unwrap().contains("sync runs"),
        "{summary}"
    );
    assert!(
        summary["list"][0]
            .as_str()
            .unwrap()
            .contains("Dark mode for the dashboard"),
        "{summary}"
    );
    assert_eq!(
        summary["tracker_link"],
        format!("https://github.com/{REPO}/issues/{issue}")
    );
    let comments = summary["comments"].as_array().unwrap();
    assert_eq!(comments.len(), 1, "{summary}");
    assert!(comments[0].as_str().unwrap().contains("alice"), "{summary}");
    assert_eq!(summary["after"].as_array().unwrap().len(), 2, "{summary}");
    assert!(
        summary["bold"]
            .as_array()
            .unwrap()
            .contains(&json!("today")),
        "{summary}"
    );
}

#[tokio::test]
async fn azure_devops_work_items_are_imported_and_kept_in_step_both_ways() {
    let ado = AzureStub::start("acme/Fabrikam Fiber", TOKEN)
        .await
        .unwrap();
    let t = synced_with("3600", TOKEN).await;
    let item = ado.add_work_item(
        "Export to CSV",
        "<div>Users ask for <b>CSV</b>.</div><div>Soon &amp; simple</div>",
        &["agent", "export"],
    );
    ado.comment(item, "Dana Reyes", "<p>Needed by <i>Friday</i></p>");
    let source = json!({"provider": "azure_devops", "project": "acme/Fabrikam Fiber",
                        "base_url": ado.base_url()});
    let (s, body) = t.source(source.clone()).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let st = t.sync().await;
    assert!(st["last_error"].is_null(), "{st}");
    assert_eq!(st["provider"], "azure_devops");
    let n = t.tickets().await[0]["number"].as_i64().unwrap();
    let detail = t.ticket(n).await;
    assert_eq!(detail["title"], "Export to CSV");
    assert_eq!(detail["labels"], json!(["agent", "export"]));
    assert_eq!(
        detail["body"], "Users ask for CSV.\nSoon &amp; simple",
        "{detail}"
    );
    assert!(
        detail["body_html"]
            .as_str()
            .unwrap()
            .contains("Soon &amp; simple")
    );
    assert_eq!(
        detail["external_url"],
        format!(
            "{}/acme/Fabrikam%20Fiber/_workitems/edit/{item}",
            ado.base_url()
        )
    );
    let comments = t.comments(n).await;
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert_eq!(comments[0]["author_name"], "Dana Reyes");
    assert_eq!(comments[0]["body"], "Needed by Friday");
    assert!(
        ado.requests()
            .iter()
            .any(|r| r.starts_with("POST /acme/Fabrikam%20Fiber/_apis/wit/wiql")),
        "{:?}",
        ado.requests()
    );

    // Done there: done here. Reopened here with a comment: both go there, once.
    ado.set_state(item, "Done");
    t.sync().await;
    assert_eq!(t.ticket(n).await["status"], "done");
    t.move_to(n, "backlog", Some("the export drops accents"))
        .await;
    let (s, _) = t
        .app
        .call(
            &t.admin,
            Method::POST,
            &format!("/api/v1/workspaces/{}/tickets/{n}/comments", t.ws),
            Some(json!({"body": "Accents are lost in **names**."})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let st = t.sync().await;
    assert!(st["last_error"].is_null(), "{st}");
    assert_eq!(ado.work_item(item)["fields"]["System.State"], "New");
    let there = ado.comments_on(item);
    assert_eq!(there.len(), 2, "{there:?}");
    assert!(
        there[1]["text"]
            .as_str()
            .unwrap()
            .contains("<strong>names</strong>"),
        "{there:?}"
    );
    t.sync().await;
    t.sync().await;
    assert_eq!(ado.comments_on(item).len(), 2);
    assert_eq!(t.comments(n).await.len(), 2);

    // A state the project's process does not have: the run fails and says so.
    let mut agile = source.clone();
    agile["states"] = json!({"done": "Closed", "rejected": "Removed", "open": "New"});
    let (s, body) = t.source(agile).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    t.move_to(n, "done", None).await;
    let st = t.sync().await;
    assert!(
        st["last_error"]
            .as_str()
            .unwrap()
            .contains("Azure DevOps answered 400"),
        "{st}"
    );
    assert_eq!(ado.work_item(item)["fields"]["System.State"], "New");

    // Throttled: 429 with Retry-After holds the sync; the token is never in the error.
    ado.throttle(120);
    let st = t.sync().await;
    let error = st["last_error"].as_str().unwrap();
    assert!(error.contains("Azure DevOps's rate limit"), "{st}");
    assert!(!st["rate_limited_until"].is_null(), "{st}");
    assert!(!st.to_string().contains(TOKEN));
}
