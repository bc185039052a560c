//! Directory groups that grant workspace membership: a workspace maps a SCIM group with a role
//! and the directory's changes follow — and attacks: a maintainer mapping a group as owners,
//! a viewer mapping at all, a mapping into another workspace, a mapping whose author lost the
//! right to manage members, a person's own membership the directory must not touch.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_testkit::TestApp;

use crate::identity::{admin_token, audit_rows, sign_in};
use crate::scim::{scim, scim_token, user};

const PASSWORD: &str = "quiet harbor 4417 finch";

pub(crate) async fn ok(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let (s, v) = app.call(token, method.clone(), path, body).await;
    assert!(s.is_success(), "{method} {path}: {s} {v}");
    v
}

/// A workspace the caller creates (and owns): its id.
pub(crate) async fn new_workspace(app: &TestApp, token: &str, name: &str) -> String {
    let v = ok(
        app,
        token,
        Method::POST,
        "/api/v1/workspaces",
        Some(json!({ "name": name })),
    )
    .await;
    v["id"].as_str().unwrap().to_owned()
}

/// A person with a password: (id, access token).
pub(crate) async fn person(app: &TestApp, admin: &str, email: &str) -> (String, String) {
    let created = ok(
        app,
        admin,
        Method::POST,
        "/api/v1/admin/users",
        Some(json!({"email": email, "password": PASSWORD})),
    )
    .await;
    let token = sign_in(app, email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    (created["id"].as_str().unwrap().to_owned(), token)
}

/// The workspace's members as email → (role, from_directory).
pub(crate) async fn members(app: &TestApp, token: &str, ws: &str) -> Vec<(String, String, bool)> {
    let v = ok(
        app,
        token,
        Method::GET,
        &format!("/api/v1/workspaces/{ws}/members"),
        None,
    )
    .await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["email"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
                m["from_directory"].as_bool().unwrap(),
            )
        })
        .collect()
}

pub(crate) fn has(list: &[(String, String, bool)], email: &str) -> Option<(String, bool)> {
    list.iter()
        .find(|m| m.0 == email)
        .map(|m| (m.1.clone(), m.2))
}

fn patch(ops: Value) -> Option<Value> {
    Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}))
}

/// A person the directory creates (`userName` `name`, email `name@corp.example`): their id.
async fn directory_user(app: &TestApp, token: &str, name: &str) -> String {
    let (s, _, u) = scim(
        app,
        token,
        Method::POST,
        "/Users",
        Some(user(name, &format!("{name}@corp.example"))),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    u["id"].as_str().unwrap().to_owned()
}

pub(crate) async fn group(app: &TestApp, token: &str, name: &str, members: &[&String]) -> String {
    let value: Vec<Value> = members.iter().map(|id| json!({ "value": id })).collect();
    let (s, _, g) = scim(
        app,
        token,
        Method::POST,
        "/Groups",
        Some(
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": name, "members": value}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    g["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn mapped_groups_drive_workspace_membership_and_only_the_directorys_own() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let token = scim_token(&app, &admin).await;
    let ws = new_workspace(&app, &admin, "Payments").await;
    let other = new_workspace(&app, &admin, "Elsewhere").await;
    // Mo maintains Payments (a person's membership); Val only views it.
    let (mo, mo_token) = person(&app, &admin, "mo@corp.example").await;
    let (val, val_token) = person(&app, &admin, "val@corp.example").await;
    for (id, role) in [(&mo, "maintainer"), (&val, "viewer")] {
        ok(
            &app,
            &admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/members"),
            Some(json!({"user_id": id, "role": role})),
        )
        .await;
    }
    let mut ids = Vec::new();
    for n in ["fay", "gus", "hal", "ivy"] {
        ids.push(directory_user(&app, &token, n).await);
    }
    let eng = group(&app, &token, "Engineering", &[&ids[0], &ids[1]]).await;

    // Administrators see the directory's groups, to choose one.
    let listed = ok(&app, &admin, Method::GET, "/api/v1/scim/groups", None).await;
    assert_eq!(listed["total"], 1, "{listed}");
    assert_eq!(listed["groups"][0]["id"], eng.as_str());
    let (s, _) = app
        .call(&mo_token, Method::GET, "/api/v1/scim/groups", None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let map = |ws: &str, g: &str| format!("/api/v1/workspaces/{ws}/directory-groups/{g}");
    // Attacks: a maintainer may not hand out the owner role through a group; a viewer may not
    // map at all; nobody maps into a workspace they cannot see; an unknown group is 404.
    let (s, v) = app
        .call(
            &mo_token,
            Method::PUT,
            &map(&ws, &eng),
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, _) = app
        .call(
            &val_token,
            Method::PUT,
            &map(&ws, &eng),
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .call(
            &mo_token,
            Method::PUT,
            &map(&other, &eng),
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .call(
            &mo_token,
            Method::PUT,
            &map(&ws, &uuid::Uuid::now_v7().to_string()),
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(
        members(&app, &admin, &ws).await.len() == 3,
        "nothing changed yet"
    );

    // Mo maps Engineering as members: both join, marked as the directory's.
    let v = ok(
        &app,
        &mo_token,
        Method::PUT,
        &map(&ws, &eng),
        Some(json!({"role": "member"})),
    )
    .await;
    assert_eq!(v["synced"]["added"], 2, "{v}");
    assert_eq!(v["mapping"]["configured_by"], mo.as_str());
    let m = members(&app, &admin, &ws).await;
    assert_eq!(has(&m, "fay@corp.example"), Some(("member".into(), true)));
    assert_eq!(has(&m, "gus@corp.example"), Some(("member".into(), true)));
    assert_eq!(
        has(&m, "mo@corp.example"),
        Some(("maintainer".into(), false))
    );
    let listed = ok(
        &app,
        &val_token,
        Method::GET,
        &format!("/api/v1/workspaces/{ws}/directory-groups"),
        None,
    )
    .await;
    assert_eq!(listed[0]["display_name"], "Engineering");
    assert_eq!(listed[0]["members"], 2);
    // The other workspace sees no mapping (row-level security on PostgreSQL).
    let elsewhere = ok(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/workspaces/{other}/directory-groups"),
        None,
    )
    .await;
    assert_eq!(elsewhere, json!([]));

    // Ivy is a member by a person's hand before the directory adds her to the group.
    ok(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/workspaces/{ws}/members"),
        Some(json!({"user_id": ids[3], "role": "viewer"})),
    )
    .await;
    // The directory adds Hal and Ivy and removes Gus.
    let (s, _, v) = scim(
        &app,
        &token,
        Method::PATCH,
        &format!("/Groups/{eng}"),
        patch(json!([
            {"op": "add", "path": "members", "value": [{"value": ids[2]}, {"value": ids[3]}]},
            {"op": "remove", "path": format!("members[value eq \"{}\"]", ids[1])},
        ])),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let m = members(&app, &admin, &ws).await;
    assert_eq!(has(&m, "hal@corp.example"), Some(("member".into(), true)));
    assert_eq!(
        has(&m, "gus@corp.example"),
        None,
        "removed from the group, out"
    );
    assert_eq!(
        has(&m, "ivy@corp.example"),
        Some(("viewer".into(), false)),
        "a person's membership stays as they made it"
    );
    let added = audit_rows(&app, "workspace.member_added").await;
    let hal = added
        .iter()
        .find(|r| r.resource_id.as_deref() == Some(ids[2].as_str()))
        .expect("hal's addition audited");
    assert!(
        hal.actor_id
            .as_deref()
            .is_some_and(|a| a.starts_with("scim:")),
        "{:?}",
        hal.actor_id
    );
    assert!(
        hal.summary.contains("\"via\":\"directory\""),
        "{}",
        hal.summary
    );

    // A second group with a higher role: the highest wins; unmapping it takes it back.
    let leads = group(&app, &token, "Leads", &[&ids[0]]).await;
    ok(
        &app,
        &mo_token,
        Method::PUT,
        &map(&ws, &leads),
        Some(json!({"role": "maintainer"})),
    )
    .await;
    assert_eq!(
        has(&members(&app, &admin, &ws).await, "fay@corp.example"),
        Some(("maintainer".into(), true))
    );
    let v = ok(&app, &mo_token, Method::DELETE, &map(&ws, &leads), None).await;
    assert_eq!(v["changed"], 1, "{v}");
    assert_eq!(
        has(&members(&app, &admin, &ws).await, "fay@corp.example"),
        Some(("member".into(), true))
    );

    // Mo loses the right to manage members: his mapping grants nothing more.
    ok(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/v1/workspaces/{ws}/members/{mo}"),
        Some(json!({"role": "viewer"})),
    )
    .await;
    let (s, _, _) = scim(
        &app,
        &token,
        Method::PATCH,
        &format!("/Groups/{eng}"),
        patch(json!([{"op": "add", "path": "members", "value": [{"value": ids[1]}]}])),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        has(&members(&app, &admin, &ws).await, "gus@corp.example"),
        None
    );
    // An owner saves it again: it acts for them now, and catches up.
    let v = ok(
        &app,
        &admin,
        Method::PUT,
        &map(&ws, &eng),
        Some(json!({"role": "member"})),
    )
    .await;
    assert_eq!(v["synced"]["added"], 1, "{v}");
    assert_eq!(
        has(&members(&app, &admin, &ws).await, "gus@corp.example"),
        Some(("member".into(), true))
    );

    // The directory deletes Fay: her directory membership ends.
    let (s, _, _) = scim(
        &app,
        &token,
        Method::DELETE,
        &format!("/Users/{}", ids[0]),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        has(&members(&app, &admin, &ws).await, "fay@corp.example"),
        None
    );
    // It deletes the group: the memberships it granted end, the person-made ones stay.
    let (s, _, _) = scim(
        &app,
        &token,
        Method::DELETE,
        &format!("/Groups/{eng}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let m = members(&app, &admin, &ws).await;
    assert_eq!(has(&m, "hal@corp.example"), None);
    assert_eq!(has(&m, "gus@corp.example"), None);
    assert_eq!(has(&m, "ivy@corp.example"), Some(("viewer".into(), false)));
    assert_eq!(has(&m, "mo@corp.example"), Some(("viewer".into(), false)));
    let listed = ok(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/workspaces/{ws}/directory-groups"),
        None,
    )
    .await;
    assert_eq!(listed, json!([]));
    assert_eq!(
        audit_rows(&app, "workspace.directory_group_mapped")
            .await
            .len(),
        3
    );
}

#[tokio::test]
async fn warden_scim_maps_a_group_by_name_and_unmaps_it() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let token = scim_token(&app, &admin).await;
    let ws = new_workspace(&app, &admin, "Payments").await;
    let jo = directory_user(&app, &token, "jo").await;
    group(&app, &token, "Platform Team", &[&jo]).await;

    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials.json");
    let run = |args: &[&str], stdin: &'static str| {
        crate::cli::run_cli(
            dir.path(),
            &creds,
            args.iter().map(|s| (*s).to_owned()).collect(),
            stdin,
        )
    };
    let login = [
        "login",
        "--url",
        &app.base,
        "--email",
        crate::identity::ADMIN_EMAIL,
    ];
    let (done, out) = run(&login, "violet tractor 93 lagoon\n").await.unwrap();
    assert!(done, "{out}");
    let (done, out) = run(&["scim", "groups"], "").await.unwrap();
    assert!(done && out.contains("Platform Team"), "{out}");
    let map = [
        "scim",
        "map-group",
        "-w",
        &ws,
        "--group",
        "platform team",
        "--role",
        "viewer",
    ];
    let (done, out) = run(&map, "").await.unwrap();
    assert!(done && out.contains("1 added"), "{out}");
    assert_eq!(
        has(&members(&app, &admin, &ws).await, "jo@corp.example"),
        Some(("viewer".into(), true))
    );
    let (done, out) = run(&["scim", "mappings", "-w", &ws], "").await.unwrap();
    assert!(
        done && out.contains("scim  Platform Team  viewer  1"),
        "{out}"
    );
    let (done, out) = run(&["scim", "map-group", "-w", &ws, "-g", "Nobody"], "")
        .await
        .unwrap();
    assert!(!done && out.contains("no directory group"), "{out}");
    let unmap = ["scim", "unmap-group", "-w", &ws, "-g", "Platform Team"];
    let (done, out) = run(&unmap, "").await.unwrap();
    assert!(done && out.contains("1 removed"), "{out}");
    assert_eq!(
        has(&members(&app, &admin, &ws).await, "jo@corp.example"),
        None
    );
}

#[tokio::test]
async fn a_reactivated_account_gets_the_memberships_its_groups_grant() {
    let (app, admin, token, ws, kit) = inactive_in_a_mapped_group().await;
    let set_active =
        |active: bool| patch(json!([{"op": "replace", "path": "active", "value": active}]));

    // Reactivated: the group's membership arrives with it, audited as the directory's.
    let (s, _, v) = scim(
        &app,
        &token,
        Method::PATCH,
        &format!("/Users/{kit}"),
        set_active(true),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        has(&members(&app, &admin, &ws).await, "kit@corp.example"),
        Some(("member".into(), true))
    );
    let added = audit_rows(&app, "workspace.member_added").await;
    let row = added
        .iter()
        .find(|r| r.resource_id.as_deref() == Some(kit.as_str()))
        .expect("kit's addition audited");
    assert!(
        row.summary.contains("\"via\":\"directory\""),
        "{}",
        row.summary
    );

    // Deactivating again removes nothing (the account is refused everywhere instead), and a
    // second reactivation adds nothing twice.
    for active in [false, true] {
        let (s, _, v) = scim(
            &app,
            &token,
            Method::PATCH,
            &format!("/Users/{kit}"),
            set_active(active),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    assert_eq!(
        has(&members(&app, &admin, &ws).await, "kit@corp.example"),
        Some(("member".into(), true))
    );
    assert_eq!(
        audit_rows(&app, "workspace.member_added")
            .await
            .iter()
            .filter(|r| r.resource_id.as_deref() == Some(kit.as_str()))
            .count(),
        1
    );
}

/// A directory account deactivated and then put in a group mapped to a workspace (so not a
/// member of it): the app, an admin's token, the SCIM token, the workspace and the account.
async fn inactive_in_a_mapped_group() -> (TestApp, String, String, String, String) {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let token = scim_token(&app, &admin).await;
    let ws = new_workspace(&app, &admin, "Payments").await;
    let kit = directory_user(&app, &token, "kit").await;
    let ops = group(&app, &token, "Operations", &[]).await;
    ok(
        &app,
        &admin,
        Method::PUT,
        &format!("/api/v1/workspaces/{ws}/directory-groups/{ops}"),
        Some(json!({"role": "member"})),
    )
    .await;
    let (s, _, v) = scim(
        &app,
        &token,
        Method::PATCH,
        &format!("/Users/{kit}"),
        patch(json!([{"op": "replace", "path": "active", "value": false}])),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _, v) = scim(
        &app,
        &token,
        Method::PATCH,
        &format!("/Groups/{ops}"),
        patch(json!([{"op": "add", "path": "members", "value": [{"value": kit}]}])),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // An inactive account is not added.
    assert_eq!(
        has(&members(&app, &admin, &ws).await, "kit@corp.example"),
        None
    );
    (app, admin, token, ws, kit)
}

/// The same rule through the administrator's door: reactivating the account in Warden
/// brings the memberships its directory groups grant.
#[tokio::test]
async fn an_administrator_reactivating_an_account_brings_its_directory_memberships() {
    let (app, admin, _token, ws, kit) = inactive_in_a_mapped_group().await;
    ok(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/admin/users/{kit}/reactivate"),
        None,
    )
    .await;
    assert_eq!(
        has(&members(&app, &admin, &ws).await, "kit@corp.example"),
        Some(("member".into(), true))
    );
    let via_directory = audit_rows(&app, "workspace.member_added")
        .await
        .into_iter()
        .filter(|r| r.resource_id.as_deref() == Some(kit.as_str()))
        .filter(|r| r.summary.contains("\"via\":\"directory\""))
        .count();
    assert_eq!(via_directory, 1);
    // Reactivating an active account changes nothing and adds nothing twice.
    ok(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/admin/users/{kit}/reactivate"),
        None,
    )
    .await;
    assert_eq!(
        audit_rows(&app, "workspace.member_added")
            .await
            .iter()
            .filter(|r| r.resource_id.as_deref() == Some(kit.as_str()))
            .count(),
        1
    );
}
