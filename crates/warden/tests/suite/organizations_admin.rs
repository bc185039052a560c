//! An organization's own administration: settings (its admins keep the name and email domains,
//! only a platform administrator sets its workspace limit), its usage report and its audit
//! view. Attacked: a member or another organization's admin reading them, an organization
//! admin raising its own limit, a person outside the email domains added by a platform
//! administrator or by the organization's directory, creations racing the last place, and the
//! audit view showing anything of another organization.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::identity::audit_rows;
use crate::organizations::{switch, world};
use crate::scim::{scim, scim_token, user as scim_user};
use crate::tenancy::{User, ok_json, user, workspace};

async fn problem(
    app: &warden_testkit::TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, String) {
    let (s, v) = app.call(token, method, path, body).await;
    (s, v["code"].as_str().unwrap_or_default().to_owned())
}

/// Asserts that each `(token, path, status, code)` GET is refused so.
async fn refused_gets(app: &warden_testkit::TestApp, cases: &[(&str, &str, StatusCode, &str)]) {
    for (token, path, status, code) in cases {
        let (s, c) = problem(app, token, Method::GET, path, None).await;
        assert_eq!((s, c.as_str()), (*status, *code), "{path}");
    }
}

#[tokio::test]
async fn an_organizations_admins_keep_its_settings_and_only_a_platform_administrator_its_limit() {
    let w = world().await;
    let app = &w.app;
    let path = "/api/v1/organizations/acme/settings";
    let s = ok_json(app, &w.bob.token, Method::GET, path, None).await;
    assert_eq!(s["name"], "Acme Corp");
    assert_eq!(s["email_domains"], json!([]));
    assert_eq!(s["max_workspaces"], Value::Null);

    // Its admin renames it and sets its domains (checked, lower-cased, `@` dropped, once each).
    let s = ok_json(
        app,
        &w.bob.token,
        Method::PATCH,
        path,
        Some(json!({"name": "Acme Rockets", "email_domains": ["acme.example", "@ACME.test", "acme.example"]})),
    )
    .await;
    assert_eq!(s["name"], "Acme Rockets");
    assert_eq!(s["email_domains"], json!(["acme.example", "acme.test"]));
    let changed = audit_rows(app, "organization.settings_changed").await;
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0].resource_id.as_deref(), Some(w.acme.as_str()));
    let summary: Value = serde_json::from_str(&changed[0].summary).unwrap();
    assert_eq!(
        summary["name"],
        json!({"old": "Acme Corp", "new": "Acme Rockets"})
    );
    assert_eq!(
        summary["email_domains"],
        json!({"old": "", "new": "acme.example acme.test"})
    );

    // Attacks: the admin raising its own limit, a member reading or changing, another
    // organization named in the path, nonsense values.
    for (token, method, path, body, status, code) in [
        (
            &w.bob.token,
            Method::PATCH,
            path,
            json!({"max_workspaces": 100}),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            &w.bob.token,
            Method::PATCH,
            path,
            json!({"max_workspaces": null}),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            &w.carol.token,
            Method::GET,
            path,
            Value::Null,
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            &w.carol.token,
            Method::PATCH,
            path,
            json!({"name": "Mine"}),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            &w.bob.token,
            Method::GET,
            "/api/v1/organizations/default/settings",
            Value::Null,
            StatusCode::FORBIDDEN,
            "org-mismatch",
        ),
        (
            &w.bob.token,
            Method::PATCH,
            path,
            json!({"email_domains": ["not a domain"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-input",
        ),
        (
            &w.bob.token,
            Method::PATCH,
            path,
            json!({"name": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-input",
        ),
        (
            &w.bob.token,
            Method::PATCH,
            path,
            json!({"slug": "mine"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable-content",
        ),
        (
            &w.admin,
            Method::PATCH,
            "/api/v1/organizations/default/settings",
            json!({"email_domains": ["x.example"]}),
            StatusCode::CONFLICT,
            "default-org",
        ),
    ] {
        let body = (!body.is_null()).then_some(body);
        let (s, c) = problem(app, token, method.clone(), path, body.clone()).await;
        assert_eq!((s, c.as_str()), (status, code), "{method} {path} {body:?}");
    }
    assert_eq!(
        ok_json(app, &w.bob.token, Method::GET, path, None).await["max_workspaces"],
        Value::Null
    );

    // A platform administrator acting in acme sets the limit: acme holds rocket, so one more.
    let admin_in_acme = switch(app, &w.admin, "acme").await;
    let s = ok_json(
        app,
        &admin_in_acme,
        Method::PATCH,
        path,
        Some(json!({"max_workspaces": 2})),
    )
    .await;
    assert_eq!(s["max_workspaces"], 2);
    let second = workspace(app, &w.bob, "Second").await;
    let (s, c) = problem(
        app,
        &w.bob.token,
        Method::POST,
        "/api/v1/workspaces",
        Some(json!({"name": "Third"})),
    )
    .await;
    assert_eq!(
        (s, c.as_str()),
        (StatusCode::CONFLICT, "org-workspace-limit")
    );
    // Archived workspaces do not count; the default organization has no limit.
    let (s, _) = app
        .call(
            &w.bob.token,
            Method::POST,
            &format!("/api/v1/workspaces/{second}/archive"),
            None,
        )
        .await;
    assert!(s.is_success(), "{s}");
    workspace(app, &w.bob, "Third").await;
    for name in ["H2", "H3", "H4"] {
        workspace(
            app,
            &User {
                id: String::new(),
                token: w.admin.clone(),
            },
            name,
        )
        .await;
    }

    // Creations racing the last place: with the limit raised by one, of eight parallel
    // attempts exactly one gets it.
    ok_json(
        app,
        &admin_in_acme,
        Method::PATCH,
        path,
        Some(json!({"max_workspaces": 3})),
    )
    .await;
    let attempts = (0..8).map(|i| {
        let token = w.bob.token.clone();
        async move {
            app.call(
                &token,
                Method::POST,
                "/api/v1/workspaces",
                Some(json!({"name": format!("Race {i}")})),
            )
            .await
            .0
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn people_outside_an_organizations_email_domains_are_not_added() {
    let w = world().await;
    let app = &w.app;
    let admin_in_acme = switch(app, &w.admin, "acme").await;
    ok_json(
        app,
        &w.bob.token,
        Method::PATCH,
        "/api/v1/organizations/acme/settings",
        Some(json!({"email_domains": ["acme.example"]})),
    )
    .await;
    user(app, &w.admin, "dave@other.example", "member").await;
    user(app, &w.admin, "erin@acme.example", "member").await;
    let members = format!("/api/v1/organizations/{}/members", w.acme);
    let (s, c) = problem(
        app,
        &admin_in_acme,
        Method::POST,
        &members,
        Some(json!({"email": "dave@other.example", "role": "member"})),
    )
    .await;
    assert_eq!(
        (s, c.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "org-email-domain")
    );
    ok_json(
        app,
        &admin_in_acme,
        Method::POST,
        &members,
        Some(json!({"email": "erin@acme.example", "role": "member"})),
    )
    .await;
    // A member already in (carol) keeps her role changes: the rule is about joining.
    ok_json(
        app,
        &w.bob.token,
        Method::POST,
        &members,
        Some(json!({"email": "carol@acme.example", "role": "admin"})),
    )
    .await;

    // acme's directory cannot create an account outside its domains either.
    let dir = scim_token(app, &admin_in_acme).await;
    let (s, _, body) = scim(
        app,
        &dir,
        Method::POST,
        "/Users",
        Some(scim_user("mallory", "mallory@evil.example")),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["scimType"], "invalidValue", "{body}");
    let (s, _, body) = scim(
        app,
        &dir,
        Method::POST,
        "/Users",
        Some(scim_user("frank", "frank@acme.example")),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let listed = ok_json(app, &w.bob.token, Method::GET, &members, None).await;
    let emails: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert!(!emails.contains(&"dave@other.example"), "{emails:?}");
    assert!(!emails.contains(&"mallory@evil.example"), "{emails:?}");
    assert!(emails.contains(&"frank@acme.example"), "{emails:?}");
}

#[tokio::test]
async fn an_organizations_usage_counts_its_own_workspaces_only() {
    let w = world().await;
    let app = &w.app;
    ok_json(
        app,
        &w.bob.token,
        Method::POST,
        &format!("/api/v1/workspaces/{}/members", w.rocket),
        Some(json!({"user_id": w.carol.id, "role": "member"})),
    )
    .await;
    let u = ok_json(
        app,
        &w.bob.token,
        Method::GET,
        "/api/v1/organizations/acme/usage?days=7",
        None,
    )
    .await;
    assert_eq!(u["organization_id"], w.acme.as_str());
    assert_eq!(u["members"], 2, "{u}");
    let ws = u["workspaces"].as_array().unwrap();
    assert_eq!(ws.len(), 1, "{u}");
    assert_eq!(ws[0]["workspace_id"], w.rocket.as_str());
    assert_eq!(ws[0]["name"], "Rocket");
    assert_eq!(ws[0]["members"], 2);
    assert_eq!(ws[0]["sessions"], 0);
    assert_eq!(u["totals"]["members"], 2);
    assert!(u["totals"]["workspace_id"].is_null());
    // The default organization's report (its platform administrator) lists home, not rocket.
    let d = ok_json(
        app,
        &w.admin,
        Method::GET,
        "/api/v1/organizations/default/usage",
        None,
    )
    .await;
    let names: Vec<&str> = d["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Home"], "{d}");

    refused_gets(
        app,
        &[
            (
                w.carol.token.as_str(),
                "/api/v1/organizations/acme/usage",
                StatusCode::FORBIDDEN,
                "forbidden",
            ),
            (
                w.bob.token.as_str(),
                "/api/v1/organizations/default/usage",
                StatusCode::FORBIDDEN,
                "org-mismatch",
            ),
            (
                w.bob.token.as_str(),
                "/api/v1/organizations/acme/usage?days=0",
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-input",
            ),
            (
                w.bob.token.as_str(),
                "/api/v1/organizations/acme/usage?days=367",
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-input",
            ),
            (
                w.bob.token.as_str(),
                "/api/v1/organizations/nope/usage",
                StatusCode::NOT_FOUND,
                "not-found",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn an_organizations_audit_view_shows_its_events_and_nothing_of_another() {
    let w = world().await;
    let app = &w.app;
    // Activity in both organizations, and acme's directory at work.
    ok_json(
        app,
        &w.admin,
        Method::PATCH,
        &format!("/api/v1/workspaces/{}", w.home),
        Some(json!({"name": "Home renamed"})),
    )
    .await;
    ok_json(
        app,
        &w.bob.token,
        Method::PATCH,
        &format!("/api/v1/workspaces/{}", w.rocket),
        Some(json!({"name": "Rocket renamed"})),
    )
    .await;
    let admin_in_acme = switch(app, &w.admin, "acme").await;
    let dir = scim_token(app, &admin_in_acme).await;
    let (s, _, body) = scim(
        app,
        &dir,
        Method::POST,
        "/Users",
        Some(scim_user("gina", "gina@acme.example")),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let home_dir = scim_token(app, &w.admin).await;
    let (s, _, body) = scim(
        app,
        &home_dir,
        Method::POST,
        "/Users",
        Some(scim_user("hank", "hank@home.example")),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");

    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/api/v1/organizations/acme/audit/events?limit=5".to_owned(),
            Some(c) => format!("/api/v1/organizations/acme/audit/events?limit=5&cursor={c}"),
        };
        let page = ok_json(app, &w.bob.token, Method::GET, &path, None).await;
        events.extend(page["events"].as_array().unwrap().clone());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "workspace.created",
        "workspace.renamed",
        "organization.member_added",
        "user.created",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    for e in &events {
        let ours = e["workspace_id"] == w.rocket.as_str()
            || (e["resource_type"] == "organization" && e["resource_id"] == w.acme.as_str())
            || e["actor_id"]
                .as_str()
                .is_some_and(|a| a.starts_with("scim:"));
        assert!(ours, "not acme's: {e}");
        assert_ne!(e["workspace_id"], w.home.as_str(), "{e}");
        assert!(!e.to_string().contains("hank@home.example"), "{e}");
        assert!(!e.to_string().contains("Home renamed"), "{e}");
    }
    // Newest first, no event twice across pages.
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|p| p[0] > p[1]), "{seqs:?}");
    // The platform trail has the other organization's events, so the view really filtered.
    assert!(
        audit_rows(app, "workspace.renamed")
            .await
            .iter()
            .any(|r| r.workspace_id.as_deref() == Some(w.home.as_str()))
    );

    // The usual filters apply inside the view.
    let page = ok_json(
        app,
        &w.bob.token,
        Method::GET,
        "/api/v1/organizations/acme/audit/events?action=workspace.",
        None,
    )
    .await;
    assert!(
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["workspace_id"] == w.rocket.as_str()),
        "{page}"
    );

    refused_gets(
        app,
        &[
            (
                w.carol.token.as_str(),
                "/api/v1/organizations/acme/audit/events",
                StatusCode::FORBIDDEN,
                "forbidden",
            ),
            (
                w.bob.token.as_str(),
                "/api/v1/organizations/default/audit/events",
                StatusCode::FORBIDDEN,
                "org-mismatch",
            ),
            (
                w.bob.token.as_str(),
                "/api/v1/organizations/acme/audit/events?outcome=maybe",
                StatusCode::BAD_REQUEST,
                "invalid-filter",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn in_chromium_an_organizations_admin_reads_and_sets_its_settings() {
    if crate::browser::skipped() {
        return;
    }
    let (app, public) = crate::browser::console_app(&[]).await;
    // Bob administers acme and owns Rocket there; carol is a member.
    let _w = crate::organizations::world_in(app).await;
    let summary = crate::browser::walk(
        "organization_admin.mjs",
        &public,
        &[
            ("EMAIL", "bob@acme.example"),
            ("PASSWORD", crate::tenancy::PASSWORD),
        ],
        2,
    )
    .await;
    assert_eq!(summary["nav_before"], 0, "{summary}");
    assert!(
        summary["heading"]
            .as_str()
            .unwrap()
            .starts_with("Acme Corp"),
        "{summary}"
    );
    assert_eq!(
        summary["members"],
        json!(["bob@acme.example", "carol@acme.example"])
    );
    assert_eq!(summary["usage"], json!(["Rocket"]), "{summary}");
    let events = summary["events"].as_array().unwrap();
    assert!(events.contains(&json!("workspace.created")), "{summary}");
    assert!(
        summary["notice"]
            .as_str()
            .unwrap()
            .contains("The settings are saved"),
        "{summary}"
    );
    assert_eq!(summary["domains"], "acme.example, acme.test");
    // An organization admin is shown the limit, not given a field for it.
    assert_eq!(summary["limit_field"], 0);
    assert_eq!(
        summary["events_after"][0], "organization.settings_changed",
        "{summary}"
    );
}
