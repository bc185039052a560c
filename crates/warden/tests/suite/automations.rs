//! Automations and the work queue: runs by schedule and by hand through a real agent, acting
//! for their owner (and refused once the owner may no longer start sessions), a node that
//! dies holding a job's lease, dead letters, a due instant fired once by two nodes, and the
//! licence pausing and resuming background work.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_testkit::{AppOptions, TestApp};

use crate::identity::{admin_token, audit_rows, sign_in};

/// A real agent in this process (the code `warden-agent` runs), confining sessions through
/// the `warden` binary as the local host does. Registered, approved and online on return.
pub(crate) struct Agent {
    /// The host it connects as.
    pub(crate) host_id: String,
    task: tokio::task::JoinHandle<()>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) async fn agent(app: &TestApp, admin: &str) -> Agent {
    agent_at(app, admin, &app.base).await
}

/// [`agent`] dialing `bases` (one address, or several nodes comma-separated, in turn).
pub(crate) async fn agent_at(app: &TestApp, admin: &str, bases: &str) -> Agent {
    let (s, created) = app
        .call(
            admin,
            Method::POST,
            "/api/v1/hosts",
            Some(json!({"name": format!("runner-{}", uuid::Uuid::now_v7()), "kind": "session"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let host_id = created["host"]["id"].as_str().unwrap().to_owned();
    let key = created["api_key"].as_str().unwrap().to_owned();
    let (s, _) = app
        .call(
            admin,
            Method::POST,
            &format!("/api/v1/hosts/{host_id}/approve"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // As root, sessions run as `nobody` from a directory it can reach (as `warden serve` does).
    let root = warden_agent::sandbox::is_root();
    let (dir, guard) = if root {
        let d = PathBuf::from("/var/lib/warden-local-host").join(format!("test-{host_id}"));
        std::fs::create_dir_all(&d).unwrap();
        (d, None)
    } else {
        let t = tempfile::tempdir().unwrap();
        (t.path().to_path_buf(), Some(t))
    };
    let run_as = root.then(|| warden_agent::sandbox::lookup_user("nobody").unwrap());
    let runner = Arc::new(warden_agent::work::Runner::new(
        dir,
        PathBuf::from(env!("CARGO_BIN_EXE_warden")),
        run_as,
    ));
    let target = warden_agent::connection::Target::new(bases, None).unwrap();
    let task = tokio::spawn(async move {
        let _ = warden_agent::connection::run(&target, &key, false, runner).await;
    });
    warden_testkit::agent::wait_online(app, admin, &host_id).await;
    Agent {
        host_id,
        task,
        _dir: guard,
    }
}

/// A git repository with one commit.
pub(crate) fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README.md"), "# automated\n").unwrap();
    let ok = std::process::Command::new("sh")
        .arg("-c")
        .arg(
            "git init -q -b main && git add -A && \
             git -c user.name=t -c user.email=t@example.com commit -q -m init",
        )
        .current_dir(dir.path())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    dir
}

/// A workspace whose repository is `repo`.
pub(crate) async fn workspace(app: &TestApp, token: &str, repo: &std::path::Path) -> String {
    let (s, ws) = app
        .call(
            token,
            Method::POST,
            "/api/v1/workspaces",
            Some(json!({"name": "Automated"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{ws}");
    let id = ws["id"].as_str().unwrap().to_owned();
    let (s, body) = app
        .call(
            token,
            Method::PUT,
            &format!("/api/v1/workspaces/{id}/settings"),
            Some(json!({"repository": repo.display().to_string()})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    id
}

/// Polls an automation until `done(detail)` holds (up to 30 s).
pub(crate) async fn wait_for(
    app: &TestApp,
    token: &str,
    ws: &str,
    automation: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("/api/v1/workspaces/{ws}/automations/{automation}");
    let mut last = Value::Null;
    for _ in 0..300 {
        let (s, detail) = app.call(token, Method::GET, &path, None).await;
        assert_eq!(s, StatusCode::OK, "{detail}");
        if done(&detail) {
            return detail;
        }
        last = detail;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the automation never got there: {last}");
}

fn in_secs(s: i64) -> String {
    #[allow(clippy::disallowed_methods)]
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(s);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn all_ended(d: &Value, n: usize) -> bool {
    let runs = d["runs"].as_array().unwrap();
    runs.len() == n
        && runs
            .iter()
            .all(|r| matches!(r["status"].as_str(), Some("done" | "failed" | "skipped")))
}

#[tokio::test]
async fn a_scheduled_and_a_manual_run_start_sessions_that_act_for_the_automations_owner() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let _agent = agent(&app, &admin).await;
    let repo = repository();
    let ws = workspace(&app, &admin, repo.path()).await;
    let (s, me) = app.call(&admin, Method::GET, "/api/v1/me", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        me["capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("automations")),
        "{me}"
    );
    let (s, created) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/automations"),
            Some(json!({
                "name": "nightly", "kind": "once", "run_at": in_secs(2),
                "prompt": "Run {{ automation }} by {{ trigger }}",
                "provider": "command", "command": ["sh", "-c", "echo automation-ran"],
            })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["run_as"], me["id"]);
    assert!(created["next_run_at"].is_string());

    let detail = wait_for(&app, &admin, &ws, &id, |d| all_ended(d, 1)).await;
    let run = &detail["runs"][0];
    assert_eq!(run["status"], "done", "{detail}");
    assert_eq!(run["trigger"], "schedule");
    assert!(
        detail["automation"]["next_run_at"].is_null(),
        "a one-time automation is spent"
    );
    let session_id = run["session_id"].as_str().unwrap();
    let (s, session) = app
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/sessions/{session_id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{session}");
    assert_eq!(session["prompt"], r#"Run "nightly" by "schedule""#);
    assert_eq!(session["created_by"], me["id"]);
    let (_, output) = app
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/sessions/{session_id}/output"),
            None,
        )
        .await;
    assert!(output.to_string().contains("automation-ran"), "{output}");

    // By hand, even though its instant has passed.
    let (s, queued) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/automations/{id}/runs"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{queued}");
    assert_eq!(queued["status"], "queued");
    let detail = wait_for(&app, &admin, &ws, &id, |d| all_ended(d, 2)).await;
    assert_eq!(detail["runs"][0]["trigger"], "manual");
    assert_eq!(detail["runs"][0]["status"], "done", "{detail}");
    assert_ne!(
        detail["runs"][0]["session_id"],
        detail["runs"][1]["session_id"]
    );

    let started = audit_rows(&app, "automation.run_started").await;
    assert_eq!(started.len(), 2);
    assert!(started.iter().all(|r| r.actor_kind == "system"
        && r.workspace_id.as_deref() == Some(ws.as_str())
        && r.summary.contains(me["id"].as_str().unwrap())));
    assert_eq!(audit_rows(&app, "automation.run_ended").await.len(), 2);
    assert_eq!(audit_rows(&app, "automation.created").await.len(), 1);
}

#[tokio::test]
async fn a_run_is_refused_once_its_owner_may_no_longer_start_sessions_and_viewers_cannot_make_one()
{
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let repo = repository();
    let ws = workspace(&app, &admin, repo.path()).await;
    let mut people = Vec::new();
    for (email, role) in [
        ("mara@example.com", "maintainer"),
        ("vic@example.com", "viewer"),
    ] {
        let (s, u) = app
            .call(
                &admin,
                Method::POST,
                "/api/v1/admin/users",
                Some(json!({"email": email, "password": "quiet harbor 4417 finch"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{u}");
        let (s, m) = app
            .call(
                &admin,
                Method::POST,
                &format!("/api/v1/workspaces/{ws}/members"),
                Some(json!({"user_id": u["id"], "role": role})),
            )
            .await;
        assert!(s.is_success(), "{m}");
        let token = sign_in(&app, email, "quiet harbor 4417 finch").await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        people.push((u["id"].as_str().unwrap().to_owned(), token));
    }
    let body = json!({"name": "by hand", "kind": "manual", "prompt": "Tidy up.",
                      "provider": "command", "command": ["true"]});
    let path = format!("/api/v1/workspaces/{ws}/automations");
    let (s, _) = app
        .call(&people[1].1, Method::POST, &path, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a viewer made an automation");
    let (s, created) = app
        .call(&people[0].1, Method::POST, &path, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (s, dup) = app
        .call(&people[0].1, Method::POST, &path, Some(body))
        .await;
    assert_eq!(
        (s, dup["code"].as_str()),
        (StatusCode::CONFLICT, Some("automation-exists"))
    );
    // Another workspace's member learns nothing of it.
    let other = workspace(&app, &people[1].1, repo.path()).await;
    let (s, _) = app
        .call(
            &people[1].1,
            Method::GET,
            &format!("/api/v1/workspaces/{other}/automations/{id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The maintainer leaves the workspace; the administrator asks for a run: it acts for the
    // maintainer, who may no longer start sessions here.
    let (s, _) = app
        .call(
            &admin,
            Method::DELETE,
            &format!("/api/v1/workspaces/{ws}/members/{}", people[0].0),
            None,
        )
        .await;
    assert!(s.is_success());
    let (s, _) = app
        .call(&admin, Method::POST, &format!("{path}/{id}/runs"), None)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let detail = wait_for(&app, &admin, &ws, &id, |d| all_ended(d, 1)).await;
    let run = &detail["runs"][0];
    assert_eq!(run["status"], "failed", "{detail}");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("may no longer start sessions")
    );
    assert!(run["session_id"].is_null());
    let (_, sessions) = app
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/sessions"),
            None,
        )
        .await;
    assert_eq!(sessions.as_array().map(Vec::len), Some(0), "{sessions}");
    let ended = audit_rows(&app, "automation.run_ended").await;
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].outcome, "failed");
}

#[tokio::test]
async fn bad_schedules_and_templates_are_refused_naming_the_field() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let repo = repository();
    let ws = workspace(&app, &admin, repo.path()).await;
    let path = format!("/api/v1/workspaces/{ws}/automations");
    let base = json!({"name": "x", "kind": "cron", "cron": "*/5 * * * *", "timezone": "UTC",
                      "prompt": "hello", "provider": "claude-code"});
    for (patch, field) in [
        (json!({"cron": "* * * * * *"}), "cron"),
        (json!({"cron": "0 0 30 2 *"}), "cron"),
        (json!({"timezone": "Mars/Olympus"}), "timezone"),
        (json!({"kind": "sometimes"}), "kind"),
        (
            json!({"kind": "once", "run_at": "2001-01-01T00:00:00Z"}),
            "run_at",
        ),
        (json!({"kind": "loop"}), "loop_interval_secs"),
        (
            json!({"kind": "loop", "loop_interval_secs": 60}),
            "loop_max",
        ),
        (json!({"prompt": "{% for"}), "prompt"),
        (json!({"prompt_name": "development"}), "prompt"),
        (
            json!({"prompt": null, "prompt_name": "nope"}),
            "prompt_name",
        ),
        (json!({"provider": "rm -rf"}), "provider"),
        (json!({"missed": "sometimes"}), "missed"),
        (json!({"name": "a\u{7}b"}), "name"),
    ] {
        let mut body = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (s, problem) = app.call(&admin, Method::POST, &path, Some(body)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{patch}: {problem}");
        assert_eq!(problem["field"], field, "{patch}: {problem}");
    }
    let (_, list) = app.call(&admin, Method::GET, &path, None).await;
    assert_eq!(list, json!([]));
    let (s, ok) = app.call(&admin, Method::POST, &path, Some(base)).await;
    assert_eq!(s, StatusCode::CREATED, "{ok}");
}

/// A node claims a run and dies before finishing it: once the lease runs out another node
/// claims it, and the run happens once.
#[tokio::test]
async fn a_job_whose_node_died_is_finished_once_by_another_node() {
    let app = TestApp::spawn_with(AppOptions {
        env: vec![(
            "WARDEN_AUTOMATIONS_JOB_LEASE_SECS".to_owned(),
            "2".to_owned(),
        )],
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let admin = admin_token(&app).await;
    let _agent = agent(&app, &admin).await;
    let repo = repository();
    let ws = workspace(&app, &admin, repo.path()).await;
    let (_, created) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/automations"),
            Some(json!({"name": "once", "kind": "manual", "prompt": "go",
                        "provider": "command", "command": ["true"]})),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    // The dead node: it claimed the run's job (due in an hour, so no live node takes it
    // first) under a 2-second lease, and then stopped.
    let store = app.server.store().clone();
    #[allow(clippy::disallowed_methods)]
    let now = warden_core::op::unix_us(time::OffsetDateTime::now_utc());
    let hour = 3_600_000_000;
    let payload = json!({"automation_id": id, "trigger": "manual"}).to_string();
    let mut tx = store.begin().await.unwrap();
    let job = tx
        .enqueue_job(&warden_store::jobs::NewJob {
            kind: "automation.run",
            workspace_id: Some(ws.parse().unwrap()),
            dedupe_key: None,
            payload: &payload,
            max_attempts: 5,
            run_at: now + hour,
            now,
        })
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();
    let stolen = store
        .claim_jobs("dead-node", now + hour, now + 2_000_000, 10)
        .await
        .unwrap();
    assert!(
        stolen.iter().any(|j| j.id == job),
        "the dead node holds the run's job"
    );
    let detail = wait_for(&app, &admin, &ws, &id, |d| all_ended(d, 1)).await;
    assert_eq!(detail["runs"][0]["status"], "done", "{detail}");
    let (_, sessions) = app
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/sessions"),
            None,
        )
        .await;
    assert_eq!(
        sessions.as_array().unwrap().len(),
        1,
        "one run, one session"
    );
    // The dead node's late answer changes nothing.
    assert!(
        !app.server
            .store()
            .complete_job(job, "dead-node", 0)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_job_out_of_attempts_is_dead_audited_listed_for_admins_and_can_be_retried() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let store = app.server.store().clone();
    let mut tx = store.begin().await.unwrap();
    #[allow(clippy::disallowed_methods)]
    let now = warden_core::op::unix_us(time::OffsetDateTime::now_utc());
    let job = tx
        .enqueue_job(&warden_store::jobs::NewJob {
            kind: "no.such.kind",
            workspace_id: None,
            dedupe_key: None,
            payload: "{}",
            max_attempts: 3,
            run_at: now,
            now,
        })
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();
    let mut page = Value::Null;
    for _ in 0..100 {
        let (s, p) = app
            .call(&admin, Method::GET, "/api/v1/admin/jobs?status=dead", None)
            .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        page = p;
        if page["dead"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(page["dead"], 1, "{page}");
    assert_eq!(page["items"][0]["id"], job.to_string());
    assert_eq!(page["items"][0]["kind"], "no.such.kind");
    assert!(page["items"][0].get("payload").is_none());
    assert_eq!(audit_rows(&app, "job.dead").await.len(), 1);

    // Only administrators see or retry it.
    let (s, u) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/admin/users",
            Some(json!({"email": "m@example.com", "password": "quiet harbor 4417 finch"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    let member = sign_in(&app, "m@example.com", "quiet harbor 4417 finch").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _) = app
        .call(&member, Method::GET, "/api/v1/admin/jobs", None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let retry = format!("/api/v1/admin/jobs/{job}/retry");
    let (s, _) = app.call(&member, Method::POST, &retry, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, again) = app.call(&admin, Method::POST, &retry, None).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["status"], "queued");
    assert_eq!(audit_rows(&app, "job.retried").await.len(), 1);
    // Retrying a job that is not dead names nothing.
    let (s, _) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/admin/jobs/{}/retry", uuid::Uuid::now_v7()),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// Two nodes share a database and both schedule: each due instant becomes one run.
#[tokio::test]
async fn two_nodes_fire_each_due_instant_once() {
    let a = TestApp::spawn().await.unwrap();
    let b = TestApp::spawn_with(AppOptions {
        env: vec![
            ("WARDEN_DATABASE_URL".to_owned(), a.db.url.clone()),
            ("WARDEN_ENCRYPTION_KEY".to_owned(), a.master_key_hex.clone()),
        ],
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let admin = admin_token(&a).await;
    let repo = repository();
    let ws = workspace(&a, &admin, repo.path()).await;
    let mut ids = Vec::new();
    for n in 0..20 {
        let (s, created) = a
            .call(
                &admin,
                Method::POST,
                &format!("/api/v1/workspaces/{ws}/automations"),
                Some(
                    json!({"name": format!("at-{n}"), "kind": "once", "run_at": in_secs(2),
                            "prompt": "go", "provider": "command", "command": ["true"]}),
                ),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    for id in &ids {
        // No host is connected: each run waits and retries; what matters is there is one.
        let detail = wait_for(&b, &admin, &ws, id, |d| {
            !d["runs"].as_array().unwrap().is_empty()
        })
        .await;
        assert_eq!(detail["runs"].as_array().unwrap().len(), 1, "{detail}");
        assert_eq!(detail["automation"]["runs_started"], 1);
    }
    let counts = a.server.store().job_counts().await.unwrap();
    assert_eq!(counts.dead, 0);
    drop(b);
}

#[tokio::test]
async fn in_chromium_an_administrator_creates_runs_and_wires_an_automation_to_a_webhook() {
    if crate::browser::skipped() {
        return;
    }
    let (app, public) = crate::browser::console_app(&[]).await;
    let admin = admin_token(&app).await;
    let repo = repository();
    let ws = workspace(&app, &admin, repo.path()).await;
    let summary = crate::browser::walk("automations.mjs", &public, &[("WORKSPACE", &ws)], 5).await;
    assert!(
        summary["tabs"]
            .as_array()
            .unwrap()
            .contains(&json!("Automations")),
        "{summary}"
    );
    assert_eq!(
        summary["schedule"], "30 2 * * 1-5 (Europe/Berlin)",
        "{summary}"
    );
    // The template is shown as text, markup and all.
    assert_eq!(
        summary["prompt"], "Review {{ event.ref }} <b>carefully</b>",
        "{summary}"
    );
    assert_eq!(summary["runs"], 1, "{summary}");
    let url = summary["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{public}/webhooks/wwh_")),
        "{summary}"
    );
    let listed = summary["sources"].to_string();
    assert!(
        listed.contains("github pushes") && listed.contains("signed"),
        "{summary}"
    );
    assert!(
        !listed.contains(&url[url.len() - 20..]),
        "the URL is shown once: {summary}"
    );
    // What the browser made is what the API sees.
    let (_, sources) = app
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/event-sources"),
            None,
        )
        .await;
    assert_eq!(sources[0]["signed"], true);
    assert_eq!(sources[0]["events"], json!(["push"]));
}

#[tokio::test]
async fn automations_and_event_sources_are_managed_from_the_cli() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let repo = repository();
    let ws = workspace(&app, &admin, repo.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials.json");
    let run = |args: &[&str], stdin: &'static str| {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        crate::cli::run_cli(dir.path(), &creds, args, stdin)
    };
    let (ok, out) = run(
        &[
            "login",
            "--url",
            &app.base,
            "--email",
            crate::identity::ADMIN_EMAIL,
        ],
        "violet tractor 93 lagoon\n",
    )
    .await
    .unwrap();
    assert!(ok, "{out}");
    let (ok, out) = run(
        &[
            "automation",
            "-w",
            &ws,
            "create",
            "--name",
            "nightly",
            "--cron",
            "30 2 * * *",
            "--timezone",
            "Europe/Berlin",
            "--provider",
            "claude-code",
            "--prompt",
            "Review.",
        ],
        "",
    )
    .await
    .unwrap();
    assert!(ok && out.contains("(cron) created"), "{out}");
    let id = out.split_whitespace().nth(1).unwrap().to_owned();
    let (ok, out) = run(&["automation", "-w", &ws, "list"], "").await.unwrap();
    assert!(
        ok && out.contains("nightly") && out.contains("Europe/Berlin"),
        "{out}"
    );
    let (ok, out) = run(&["automation", "-w", &ws, "run", &id], "")
        .await
        .unwrap();
    assert!(ok && out.contains("queued"), "{out}");
    let (ok, out) = run(
        &[
            "automation",
            "-w",
            &ws,
            "create",
            "--name",
            "bad",
            "--cron",
            "61 * * * *",
            "--provider",
            "claude-code",
            "--prompt",
            "x",
        ],
        "",
    )
    .await
    .unwrap();
    assert!(!ok && out.contains("cron"), "{out}");

    let (ok, out) = run(
        &[
            "event-source",
            "-w",
            &ws,
            "create",
            "--name",
            "gh",
            "--kind",
            "github",
            "--automation",
            &id,
            "--events",
            "push,pull_request",
            "--secret-stdin",
        ],
        "It's a Secret to Everybody\n",
    )
    .await
    .unwrap();
    assert!(ok && out.contains("/webhooks/wwh_"), "{out}");
    let source = out.split_whitespace().nth(2).unwrap().to_owned();
    let (ok, out) = run(&["event-source", "-w", &ws, "list"], "").await.unwrap();
    assert!(
        ok && out.contains("gh") && out.contains("true") && !out.contains("Secret"),
        "{out}"
    );
    let (ok, out) = run(&["event-source", "-w", &ws, "rotate-token", &source], "")
        .await
        .unwrap();
    assert!(ok && out.contains("no longer works"), "{out}");
    let (_, sources) = app
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/event-sources"),
            None,
        )
        .await;
    assert_eq!(sources[0]["signed"], true);
    assert_eq!(sources[0]["events"], json!(["push", "pull_request"]));
    let (ok, _) = run(&["event-source", "-w", &ws, "delete", &source], "")
        .await
        .unwrap();
    assert!(ok);
    let (ok, _) = run(&["automation", "-w", &ws, "delete", &id], "")
        .await
        .unwrap();
    assert!(ok);
    assert_eq!(audit_rows(&app, "event_source.deleted").await.len(), 1);
}
