//! A session end to end: a member opens it over the API, the real `warden-agent` prepares a
//! worktree from the workspace's repository and runs the command confined, the output comes
//! back in numbered chunks, the worktree of a develop session goes when it ends, a stop ends a
//! running one, and another workspace's member cannot see any of it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_testkit::TestApp;

const EMAIL: &str = "ops@example.com";
const PASSWORD: &str = "violet tractor 93 lagoon";

async fn sign_in(app: &TestApp, email: &str) -> String {
    app.sign_in(email, PASSWORD).await.unwrap()
}

async fn admin(app: &TestApp) -> String {
    app.first_admin(EMAIL, PASSWORD).await.unwrap()
}

async fn ok(app: &TestApp, token: &str, method: Method, path: &str, body: Option<Value>) -> Value {
    app.ok(token, method, path, body).await
}

fn repo(dir: &Path) {
    warden_testkit::git_repo(dir);
}

fn sh_in(dir: &Path, script: &str) {
    let ok = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "{script}");
}

/// Waits until the session's status is final; returns its output and the session.
async fn finish(app: &TestApp, token: &str, ws: &str, id: &str) -> (String, Value) {
    let mut text = String::new();
    let mut after = -1i64;
    for _ in 0..300 {
        let page = ok(
            app,
            token,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/sessions/{id}/output?after={after}"),
            None,
        )
        .await;
        for c in page["chunks"].as_array().unwrap() {
            let seq = c["seq"].as_i64().unwrap();
            assert!(seq > after, "chunks arrive in order, once");
            after = seq;
            text.push_str(c["data"].as_str().unwrap());
        }
        let status = page["status"].as_str().unwrap().to_owned();
        if !matches!(status.as_str(), "waiting" | "running")
            && page["chunks"].as_array().unwrap().is_empty()
        {
            let session = ok(
                app,
                token,
                Method::GET,
                &format!("/api/v1/workspaces/{ws}/sessions/{id}"),
                None,
            )
            .await;
            return (text, session);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the session did not finish: {text}");
}

#[tokio::test]
async fn a_session_runs_confined_in_its_own_worktree_and_streams_its_output() {
    warden_testkit::install_crypto_provider();
    let app = TestApp::spawn().await.unwrap();
    let admin = admin(&app).await;
    let root = tempfile::tempdir().unwrap();
    repo(&root.path().join("repo"));
    let data_dir = root.path().join("agent-data");

    let ws = ok(
        &app,
        &admin,
        Method::POST,
        "/api/v1/workspaces",
        Some(json!({"name": "Alpha"})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(
        &app,
        &admin,
        Method::PUT,
        &format!("/api/v1/workspaces/{ws}/settings"),
        Some(json!({
            "repository": root.path().join("repo").display().to_string(),
            "hooks": {"pre_session": ["echo pre-hook-ran > pre.txt"],
                      "post_session": ["echo post-hook-ran"]},
        })),
    )
    .await;
    ok(
        &app,
        &admin,
        Method::PUT,
        &format!("/api/v1/workspaces/{ws}/variables/GREETING"),
        Some(json!({"value": "hello-from-the-workspace"})),
    )
    .await;
    let sessions = format!("/api/v1/workspaces/{ws}/sessions");
    // The session prints its secret plainly, base64-encoded and cut in two writes: none of it
    // may reach the output (stored or streamed); the value itself is in its environment.
    let run = json!({"provider": "command", "command": ["sh", "-c",
        "echo \"g=$GREETING\"; printf %s \"$GREETING\" | base64; \
         printf 'split=%s' \"$(printf %s \"$GREETING\" | cut -c1-10)\"; sleep 0.2; \
         printf '%s\\n' \"$(printf %s \"$GREETING\" | cut -c11-)\"; \
         test ${#GREETING} -eq 24 && echo length-ok; ls"]});
    // No host connected yet.
    let (status, body) = app
        .call(&admin, Method::POST, &sessions, Some(run.clone()))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "no-host-available");

    let created = ok(
        &app,
        &admin,
        Method::POST,
        "/api/v1/hosts",
        Some(json!({"name": "runner", "kind": "session"})),
    )
    .await;
    let host = created["host"]["id"].as_str().unwrap().to_owned();
    ok(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/hosts/{host}/approve"),
        None,
    )
    .await;
    let mut agent = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden-agent"))
        .arg("--url")
        .arg(&app.base)
        .arg("--data-dir")
        .arg(&data_dir)
        .env("WARDEN_HOST_KEY", created["api_key"].as_str().unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut online = false;
    for _ in 0..100 {
        let h = ok(
            &app,
            &admin,
            Method::GET,
            &format!("/api/v1/hosts/{host}"),
            None,
        )
        .await;
        if h["online"] == true {
            online = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(online, "the agent did not connect");

    let session = ok(&app, &admin, Method::POST, &sessions, Some(run)).await;
    let id = session["id"].as_str().unwrap().to_owned();
    assert_eq!(session["branch"], format!("warden/{id}"));
    let (output, done) = finish(&app, &admin, &ws, &id).await;
    assert_eq!(done["status"], "done", "{output} {done}");
    assert_eq!(done["exit_code"], 0);
    assert_eq!(done["isolation"], "landlock");
    // Masked, as CI systems do: the value, its base64 form, and the value written in two
    // pieces.
    assert!(output.contains("g=***"), "{output}");
    assert!(output.contains("split=***"), "{output}");
    assert!(!output.contains("hello-from-the-workspace"), "{output}");
    assert!(
        !output.contains("aGVsbG8tZnJvbS10aGUtd29ya3NwYWNl"),
        "{output}"
    );
    assert!(!output.contains("hello-from"), "{output}");
    assert!(output.contains("length-ok"), "{output}");
    assert!(output.contains("README.md"), "{output}");
    // The hooks ran in the worktree, their output in the session's stream.
    assert!(output.contains("pre.txt"), "{output}");
    assert!(output.contains("post-hook-ran"), "{output}");
    // A develop session's worktree goes with it.
    assert!(
        !data_dir.join("worktrees").join(&ws).join(&id).exists(),
        "the worktree of a develop session was kept"
    );
    // The variable's value never reached the host's disk.
    let grep = std::process::Command::new("grep")
        .args(["-r", "-l", "hello-from-the-workspace"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(grep.stdout.is_empty());

    // Following a session live: server-sent events as the host reports, then the end.
    let streamed = ok(
        &app,
        &admin,
        Method::POST,
        &sessions,
        Some(json!({"provider": "command",
                    "command": ["sh", "-c", "for i in 1 2 3; do echo line-$i; sleep 0.2; done"]})),
    )
    .await;
    let streamed_id = streamed["id"].as_str().unwrap().to_owned();
    let res = app
        .client
        .get(app.url(&format!("{sessions}/{streamed_id}/stream")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let body = tokio::time::timeout(Duration::from_secs(30), res.text())
        .await
        .expect("the stream ends with the session")
        .unwrap();
    for line in [
        "line-1",
        "line-2",
        "line-3",
        "event: end",
        "\"status\":\"done\"",
    ] {
        assert!(body.contains(line), "{line} not in {body}");
    }
    let ids: Vec<i64> = body
        .lines()
        .filter_map(|l| l.strip_prefix("id: ").and_then(|v| v.parse().ok()))
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]) && !ids.is_empty(),
        "{ids:?}"
    );
    // Resuming after the last id sent only the end.
    let again = app
        .client
        .get(app.url(&format!("{sessions}/{streamed_id}/stream")))
        .bearer_auth(&admin)
        .header("last-event-id", ids.last().unwrap().to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !again.contains("line-") && again.contains("event: end"),
        "{again}"
    );

    // A commit made upstream between two sessions is in the second one's worktree; the
    // session after that, with nothing new upstream, starts from the same commit.
    sh_in(
        &root.path().join("repo"),
        "echo fresh > FRESH.md && git add -A && \
         git -c user.name=t -c user.email=t@example.com commit -q -m fresh",
    );
    for _ in 0..2 {
        let fresh = ok(
            &app,
            &admin,
            Method::POST,
            &sessions,
            Some(json!({"provider": "command", "command": ["cat", "FRESH.md"]})),
        )
        .await;
        let (text, done) = finish(&app, &admin, &ws, fresh["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "done", "{done} {text}");
        assert!(text.contains("fresh"), "{text}");
    }

    // Output a provider may well print: 100,000 control characters and NUL bytes (six times
    // their size once escaped for the wire), then 40,000 four-byte characters cut at every
    // read; then a line. All of it arrives, intact and in order, and the host stays connected.
    let wild = ok(
        &app,
        &admin,
        Method::POST,
        &sessions,
        Some(json!({"provider": "command", "command": ["sh", "-c",
            "head -c 50000 /dev/zero; head -c 50000 /dev/zero | tr '\\0' '\\1'; \
             i=0; while [ $i -lt 100 ]; do printf '\\360\\237\\246\\200%.0s' $(seq 400); i=$((i+1)); done; \
             echo; echo after-the-noise"]})),
    )
    .await;
    let (text, done) = finish(&app, &admin, &ws, wild["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    let tail: String = {
        let mut t: Vec<char> = text.chars().rev().take(80).collect();
        t.reverse();
        t.into_iter().collect()
    };
    assert!(
        text.contains("🦀\nafter-the-noise\n"),
        "{} chars, ending {tail:?}",
        text.chars().count()
    );
    assert_eq!(
        text.chars().filter(|c| *c == '\u{FFFD}').count(),
        50_000,
        "NUL is replaced"
    );
    assert_eq!(text.chars().filter(|c| *c == '\u{1}').count(), 50_000);
    assert_eq!(
        text.chars().filter(|c| *c == '\u{1F980}').count(),
        40_000,
        "no character is cut"
    );

    // A chat session that runs until stopped.
    let long = ok(
        &app,
        &admin,
        Method::POST,
        &sessions,
        Some(json!({"provider": "command", "command": ["sh", "-c", "echo ready; sleep 120"], "mode": "chat"})),
    )
    .await;
    let long_id = long["id"].as_str().unwrap().to_owned();
    let mut running = false;
    for _ in 0..100 {
        let s = ok(
            &app,
            &admin,
            Method::GET,
            &format!("{sessions}/{long_id}"),
            None,
        )
        .await;
        if s["status"] == "running" {
            running = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(running);
    let (status, _) = app
        .call(
            &admin,
            Method::POST,
            &format!("{sessions}/{long_id}/stop"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, stopped) = finish(&app, &admin, &ws, &long_id).await;
    assert_eq!(stopped["status"], "canceled");
    // A chat session keeps its worktree.
    let long_wt = data_dir.join("worktrees").join(&ws).join(&long_id);
    assert!(long_wt.exists());

    // The file API, through the server and the host.
    let file = format!("{sessions}/{long_id}/file");
    let file_at = |path: &str| {
        app.client
            .request(Method::GET, app.url(&file))
            .bearer_auth(&admin)
            .query(&[("path", path)])
    };
    let res = app
        .client
        .put(app.url(&file))
        .bearer_auth(&admin)
        .query(&[("path", "notes/plan.md")])
        .json(&json!({"content": "step one\n"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let read: Value = file_at("notes/plan.md")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["content"], "step one\n");
    let listed = ok(
        &app,
        &admin,
        Method::GET,
        &format!("{sessions}/{long_id}/files"),
        None,
    )
    .await;
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"notes") && names.contains(&"README.md") && !names.contains(&".git"));
    let res = app
        .client
        .put(app.url(&file))
        .bearer_auth(&admin)
        .query(&[("path", "README.md")])
        .json(&json!({"content": "# demo\nchanged\n"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let diff = ok(
        &app,
        &admin,
        Method::GET,
        &format!("{sessions}/{long_id}/diff"),
        None,
    )
    .await;
    assert!(
        diff["content"].as_str().unwrap().contains("+changed"),
        "{diff}"
    );

    // Paths that try to leave the worktree: refused before the host, or by the host when a
    // planted symlink would lead out; never any content; every refusal audited.
    let secret = root.path().join("outside-secret.txt");
    std::fs::write(&secret, "outside-secret-contents").unwrap();
    std::os::unix::fs::symlink(&secret, long_wt.join("planted")).unwrap();
    std::os::unix::fs::symlink(root.path(), long_wt.join("up")).unwrap();
    let long_component = "a".repeat(300);
    let mut attacks: Vec<String> = [
        "../../../../etc/passwd",
        "..",
        "../",
        "../outside-secret.txt",
        "notes/../../x",
        "notes/./plan.md",
        "./README.md",
        ".",
        "/etc/passwd",
        "/",
        "//etc/passwd",
        "~/.ssh/id_rsa",
        "C:/Windows/win.ini",
        "..\\..\\etc\\passwd",
        "notes\\plan.md",
        "notes//plan.md",
        "notes/",
        "%2e%2e/%2e%2e/etc/passwd",
        "%2E%2E%2F%2E%2E%2Fetc",
        "..%2f..%2fetc%2fpasswd",
        "%252e%252e%252fetc",
        "..%5c..%5cetc",
        "notes%2fplan.md",
        "file%00.txt",
        "line\nbreak",
        "tab\tname",
        "esc\u{1b}[0m",
        "rtl\u{202e}gpj.exe",
        "zero\u{200b}/../x",
        "\u{ff0e}\u{ff0e}/etc/passwd",
        "\u{2024}\u{2024}/x",
        "...",
        ".git/config",
        ".git",
        ".GIT/HEAD",
        "sub/.git/hooks/x",
        "",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    attacks.push(long_component);
    attacks.push(format!("{}/x", "abcdefgh/".repeat(130)));
    assert!(attacks.len() >= 38, "{} payloads", attacks.len());
    for raw in &attacks {
        let res = file_at(raw).send().await.unwrap();
        let status = res.status();
        let body = res.text().await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{raw:?}: {body}");
        assert!(
            body.contains("path-refused") && !body.contains("root:"),
            "{raw:?}"
        );
        let res = app
            .client
            .put(app.url(&file))
            .bearer_auth(&admin)
            .query(&[("path", raw.as_str())])
            .json(&json!({"content": "pwned"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "write {raw:?}");
    }
    for raw in ["planted", "up/outside-secret.txt"] {
        let res = file_at(raw).send().await.unwrap();
        let status = res.status();
        let body = res.text().await.unwrap();
        assert_eq!(status, StatusCode::FORBIDDEN, "{raw}: {body}");
        assert!(body.contains("path-escape") && !body.contains("outside-secret-contents"));
    }
    let res = app
        .client
        .put(app.url(&file))
        .bearer_auth(&admin)
        .query(&[("path", "up/planted-by-api.txt")])
        .json(&json!({"content": "pwned"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(!root.path().join("planted-by-api.txt").exists());
    // A path that is not UTF-8 once decoded, or holds a NUL, is refused as a malformed query
    // (like every query of the API), not turned into another name or cut at the NUL.
    for query in ["notes%2Fa%FFb.md", "a%00b", "README.md%00.png"] {
        for method in [Method::GET, Method::PUT] {
            let res = app
                .client
                .request(method.clone(), format!("{}?path={query}", app.url(&file)))
                .bearer_auth(&admin)
                .json(&json!({"content": "x"}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{method} {query}");
            assert!(res.text().await.unwrap().contains("invalid-encoding"));
        }
    }
    assert!(!long_wt.join("a").exists() && !long_wt.join("README.md.png").exists());
    assert!(!std::fs::read_dir(long_wt.join("notes")).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .contains('\u{fffd}')
    }));
    // A socket or named pipe the session made: 409, never a 500 (and no error log line).
    // (Bound at a short path and moved in: a socket's path must fit in 108 bytes.)
    let short = tempfile::tempdir().unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(short.path().join("s")).unwrap();
    std::fs::rename(short.path().join("s"), long_wt.join("sock")).unwrap();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(long_wt.join("fifo"))
            .status()
            .unwrap()
            .success()
    );
    for raw in ["sock", "fifo"] {
        let res = file_at(raw).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::CONFLICT, "read {raw}");
        let res = app
            .client
            .put(app.url(&file))
            .bearer_auth(&admin)
            .query(&[("path", raw)])
            .json(&json!({"content": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CONFLICT, "write {raw}");
    }
    // The worktree's .git pointer (it names the host's work repository) under another name.
    std::os::unix::fs::symlink(".git", long_wt.join("gitalias")).unwrap();
    let res = file_at("gitalias").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(!res.text().await.unwrap().contains("gitdir"));
    let refused = ok(
        &app,
        &admin,
        Method::GET,
        "/api/v1/audit/events?action=session.path_refused&limit=500",
        None,
    )
    .await;
    let refused = refused["events"].as_array().unwrap();
    assert_eq!(
        refused.len(),
        attacks.len() * 2 + 4,
        "every refusal audited"
    );
    assert!(refused.iter().all(|e| e["outcome"] == "denied"));
    let written = ok(
        &app,
        &admin,
        Method::GET,
        "/api/v1/audit/events?action=session.file_written&limit=50",
        None,
    )
    .await;
    let written = written["events"].as_array().unwrap();
    assert_eq!(written.len(), 2, "{written:?}");
    assert!(written.iter().all(|e| e["workspace_id"] == ws.as_str()));
    assert!(
        refused
            .iter()
            .any(|e| e["summary"]["path"] == "../../../../etc/passwd")
    );

    // Another workspace's member sees none of it.
    let (s, _) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/admin/users",
            Some(json!({"email": "bob@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let bob = sign_in(&app, "bob@example.com").await;
    let other = ok(
        &app,
        &bob,
        Method::POST,
        "/api/v1/workspaces",
        Some(json!({"name": "Bravo"})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for path in [
        format!("{sessions}/{id}"),
        format!("{sessions}/{id}/output"),
        format!("{sessions}/{id}/stream"),
        format!("/api/v1/workspaces/{other}/sessions/{id}"),
        format!("/api/v1/workspaces/{other}/sessions/{id}/output"),
    ] {
        let (s, _) = app.call(&bob, Method::GET, &path, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
    }

    // Closing the chat session removes its worktree and branch on the host; once only.
    let closed = ok(
        &app,
        &admin,
        Method::POST,
        &format!("{sessions}/{long_id}/close"),
        None,
    )
    .await;
    assert!(closed["archived_at"].is_string(), "{closed}");
    let mut gone = false;
    for _ in 0..100 {
        if !long_wt.exists() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the closed session's worktree is still there");
    let (s, _) = app
        .call(
            &admin,
            Method::POST,
            &format!("{sessions}/{long_id}/close"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);

    // A platform host restricted to another workspace takes no sessions from this one.
    let charlie = ok(
        &app,
        &admin,
        Method::POST,
        "/api/v1/workspaces",
        Some(json!({"name": "Charlie"})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let restrict = format!("/api/v1/hosts/{host}/workspaces");
    let (s, _) = app
        .call(
            &admin,
            Method::PUT,
            &restrict,
            Some(json!({"workspace_ids": [uuid_like()]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "unknown workspace");
    ok(
        &app,
        &admin,
        Method::PUT,
        &restrict,
        Some(json!({"workspace_ids": [charlie]})),
    )
    .await;
    let quick = json!({"provider": "command", "command": ["true"]});
    let (s, body) = app
        .call(&admin, Method::POST, &sessions, Some(quick.clone()))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "no-host-available");
    ok(
        &app,
        &admin,
        Method::PUT,
        &restrict,
        Some(json!({"workspace_ids": []})),
    )
    .await;
    let (s, _) = app
        .call(&admin, Method::POST, &sessions, Some(quick.clone()))
        .await;
    assert_eq!(s, StatusCode::CREATED);

    // A failing pre-session hook fails the session before the provider runs.
    ok(
        &app,
        &admin,
        Method::PUT,
        &format!("/api/v1/workspaces/{ws}/settings"),
        Some(json!({
            "repository": root.path().join("repo").display().to_string(),
            "hooks": {"pre_session": ["echo checking; exit 3"]},
        })),
    )
    .await;
    let failing = ok(
        &app,
        &admin,
        Method::POST,
        &sessions,
        Some(json!({"provider": "command", "command": ["sh", "-c", "echo provider-ran"]})),
    )
    .await;
    let (text, failed) = finish(&app, &admin, &ws, failing["id"].as_str().unwrap()).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"], "a pre-session hook failed");
    assert!(
        text.contains("checking") && !text.contains("provider-ran"),
        "{text}"
    );

    // An agent killed mid-session: the next one says it runs nothing, so the session is lost
    // at once; it ends the process the old one left and removes its develop worktree.
    ok(
        &app,
        &admin,
        Method::PUT,
        &format!("/api/v1/workspaces/{ws}/settings"),
        Some(json!({"repository": root.path().join("repo").display().to_string()})),
    )
    .await;
    let orphan = ok(
        &app,
        &admin,
        Method::POST,
        &sessions,
        Some(json!({"provider": "command", "command": ["sleep", "37"], "mode": "develop"})),
    )
    .await;
    let orphan_id = orphan["id"].as_str().unwrap().to_owned();
    let orphan_wt = data_dir.join("worktrees").join(&ws).join(&orphan_id);
    let mut was_running = false;
    for _ in 0..100 {
        let s = ok(
            &app,
            &admin,
            Method::GET,
            &format!("{sessions}/{orphan_id}"),
            None,
        )
        .await;
        if s["status"] == "running" {
            was_running = true;
            break;
        }
        if s["status"] != "waiting" {
            panic!("{s}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(was_running);
    assert!(orphan_wt.exists());
    let sleeping = || {
        !std::process::Command::new("pgrep")
            .args(["-f", "^sleep 37$"])
            .output()
            .unwrap()
            .stdout
            .is_empty()
    };
    assert!(sleeping(), "the session's process is not running");
    let _ = agent.kill().await;
    let _ = agent.wait().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sleeping(), "the session's process died with its agent");
    let mut agent = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden-agent"))
        .arg("--url")
        .arg(&app.base)
        .arg("--data-dir")
        .arg(&data_dir)
        .env("WARDEN_HOST_KEY", created["api_key"].as_str().unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lost = Value::Null;
    for _ in 0..100 {
        lost = ok(
            &app,
            &admin,
            Method::GET,
            &format!("{sessions}/{orphan_id}"),
            None,
        )
        .await;
        if lost["status"] == "lost" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(lost["status"], "lost", "{lost}");
    let mut cleaned = false;
    for _ in 0..100 {
        if !sleeping() && !orphan_wt.exists() {
            cleaned = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(cleaned, "the previous agent's session was not cleaned up");
    let _ = agent.kill().await;
}

fn uuid_like() -> String {
    "0190b3b0-0000-7000-8000-00000000dead".to_owned()
}
