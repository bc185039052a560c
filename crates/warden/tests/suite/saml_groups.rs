//! Groups a SAML IdP asserts drive workspace membership: a workspace maps a provider's group
//! with a role before anyone signed in, and each sign-in through the provider adds, re-roles
//! and removes the person to match what the assertion said — alongside SCIM groups, never
//! touching a membership a person granted. Attacks: mapping an OpenID provider's or an unknown
//! provider's group, a blank or control-character group name, mapping as owners by a
//! maintainer, a viewer mapping at all, another workspace.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::directory_groups::{group, has, members, new_workspace, ok, person};
use crate::identity::audit_rows;
use crate::saml::{Saml, begin, post, start_with};
use crate::scim::{scim, scim_token, user};

/// `email` signs in through `corp`, the IdP asserting `groups`.
async fn sign_in_with_groups(s: &Saml, email: &str, groups: &[&str]) {
    let forge = if groups.is_empty() {
        json!({})
    } else {
        json!({ "groups": groups })
    };
    let (answer, binding) = begin(s, "corp", email, forge).await;
    let res = post(&answer, Some(&binding)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{email} {groups:?}");
}

async fn map(s: &Saml, token: &str, ws: &str, body: Value) -> (StatusCode, Value) {
    s.app
        .call(
            token,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/directory-groups"),
            Some(body),
        )
        .await
}

#[tokio::test]
async fn asserted_groups_add_re_role_and_remove_members_at_each_sign_in() {
    let s = start_with(json!({"link_by_email": true})).await;
    let (app, admin) = (&s.app, s.admin.as_str());
    let eng = new_workspace(app, admin, "Engineering").await;
    let ops = new_workspace(app, admin, "Operations").await;

    // Mapped before anyone signed in: the groups exist, empty.
    let (code, out) = map(
        &s,
        admin,
        &eng,
        json!({"provider": "corp", "group": "eng-team", "role": "maintainer"}),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{out}");
    assert_eq!(out["mapping"]["provider"], "corp");
    assert_eq!(out["mapping"]["display_name"], "eng-team");
    assert_eq!(out["mapping"]["members"], 0);
    let eng_group = out["mapping"]["group_id"].as_str().unwrap().to_owned();
    let (code, _) = map(
        &s,
        admin,
        &ops,
        json!({"provider": "corp", "group": "Ops On-Call", "role": "viewer"}),
    )
    .await;
    assert_eq!(code, StatusCode::OK);

    // First sign-in: an account just in time, with the IdP's display name, in Engineering.
    sign_in_with_groups(&s, "pat@example.com", &["eng-team", "not-mapped"]).await;
    assert_eq!(
        has(&members(app, admin, &eng).await, "pat@example.com"),
        Some(("maintainer".into(), true))
    );
    assert_eq!(
        has(&members(app, admin, &ops).await, "pat@example.com"),
        None
    );
    let (_, users) = app
        .call(admin, Method::GET, "/api/v1/admin/users", None)
        .await;
    let pat = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "pat@example.com")
        .cloned()
        .unwrap();
    let pat_uuid: uuid::Uuid = pat["id"].as_str().unwrap().parse().unwrap();
    let mut tx = app.server.store().begin_read().await.unwrap();
    let name = tx.display_name(pat_uuid).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(name.as_deref(), Some("Test Person"));
    let added = audit_rows(app, "workspace.member_added").await;
    let by_sign_in = added
        .iter()
        .find(|r| r.summary.contains("eng-team"))
        .expect("audited with the group");
    assert_eq!(by_sign_in.actor_id.as_deref(), pat["id"].as_str());
    let (_, listed) = app
        .call(
            admin,
            Method::GET,
            &format!("/api/v1/workspaces/{eng}/directory-groups"),
            None,
        )
        .await;
    assert_eq!(listed[0]["members"], 1, "{listed}");

    // The IdP moves them: out of Engineering, into Operations — at the next sign-in.
    sign_in_with_groups(&s, "pat@example.com", &["Ops On-Call"]).await;
    assert_eq!(
        has(&members(app, admin, &eng).await, "pat@example.com"),
        None
    );
    assert_eq!(
        has(&members(app, admin, &ops).await, "pat@example.com"),
        Some(("viewer".into(), true))
    );
    // A person's own grant is theirs: the admin makes Pat a member of Engineering by hand;
    // a sign-in without the group leaves it.
    let pat_id = pat["id"].as_str().unwrap();
    ok(
        app,
        admin,
        Method::POST,
        &format!("/api/v1/workspaces/{eng}/members"),
        Some(json!({"user_id": pat_id, "role": "member"})),
    )
    .await;
    // No groups at all: the directory's memberships end, the person's stays.
    sign_in_with_groups(&s, "pat@example.com", &[]).await;
    assert_eq!(
        has(&members(app, admin, &eng).await, "pat@example.com"),
        Some(("member".into(), false))
    );
    assert_eq!(
        has(&members(app, admin, &ops).await, "pat@example.com"),
        None
    );

    // Alongside SCIM: a directory account in a SCIM group mapped as member, and in the IdP's
    // group mapped as maintainer, gets the higher; losing the IdP's group leaves SCIM's.
    let token = scim_token(app, admin).await;
    let (code, _, u) = scim(
        app,
        &token,
        Method::POST,
        "/Users",
        Some(user("sam", "sam@example.com")),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{u}");
    let sam = u["id"].as_str().unwrap().to_owned();
    let scim_group = group(app, &token, "All staff", &[&sam]).await;
    ok(
        app,
        admin,
        Method::PUT,
        &format!("/api/v1/workspaces/{ops}/directory-groups/{scim_group}"),
        Some(json!({"role": "viewer"})),
    )
    .await;
    map(
        &s,
        admin,
        &ops,
        json!({"provider": "corp", "group": "Ops On-Call", "role": "maintainer"}),
    )
    .await;
    sign_in_with_groups(&s, "sam@example.com", &["Ops On-Call"]).await;
    assert_eq!(
        has(&members(app, admin, &ops).await, "sam@example.com"),
        Some(("maintainer".into(), true))
    );
    sign_in_with_groups(&s, "sam@example.com", &[]).await;
    assert_eq!(
        has(&members(app, admin, &ops).await, "sam@example.com"),
        Some(("viewer".into(), true)),
        "SCIM's group still grants"
    );

    // Removing the mapping ends what it granted.
    sign_in_with_groups(&s, "pat@example.com", &["eng-team"]).await;
    let (code, out) = app
        .call(
            admin,
            Method::DELETE,
            &format!("/api/v1/workspaces/{eng}/directory-groups/{eng_group}"),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{out}");
    assert_eq!(
        has(&members(app, admin, &eng).await, "pat@example.com"),
        Some(("member".into(), false)),
        "the person's own membership was not the directory's to end"
    );
    assert!(
        audit_rows(app, "workspace.directory_group_unmapped")
            .await
            .iter()
            .any(|r| r.summary.contains("\"provider\":\"corp\""))
    );
}

#[tokio::test]
async fn mapping_an_sso_group_is_refused_where_it_must_be() {
    let s = start_with(json!({})).await;
    let (app, admin) = (&s.app, s.admin.as_str());
    let ws = new_workspace(app, admin, "Payments").await;
    let other = new_workspace(app, admin, "Elsewhere").await;
    let bad = [
        (
            json!({"provider": "nope", "group": "g", "role": "member"}),
            "provider",
        ),
        (
            json!({"provider": "corp", "group": "  ", "role": "member"}),
            "group",
        ),
        (
            json!({"provider": "corp", "group": "a\u{7}b", "role": "member"}),
            "group",
        ),
        (
            json!({"provider": "corp", "group": "x".repeat(257), "role": "member"}),
            "group",
        ),
        (
            json!({"provider": "corp", "group": "g", "role": "emperor"}),
            "role",
        ),
    ];
    for (body, field) in bad {
        let (code, out) = map(&s, admin, &ws, body.clone()).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {out}");
        assert_eq!(out["field"], field, "{out}");
    }
    let (code, _) = map(
        &s,
        admin,
        &ws,
        json!({"provider": "corp", "group": "g", "role": "member", "id": "x"}),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);

    // A maintainer maps as members but not as owners; a viewer not at all; nobody into a
    // workspace they are not in.
    let (mo, mo_token) = person(app, admin, "mo@corp.example").await;
    let (val, val_token) = person(app, admin, "val@corp.example").await;
    for (id, role) in [(&mo, "maintainer"), (&val, "viewer")] {
        ok(
            app,
            admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/members"),
            Some(json!({"user_id": id, "role": role})),
        )
        .await;
    }
    let as_owner = json!({"provider": "corp", "group": "g", "role": "owner"});
    assert_eq!(
        map(&s, &mo_token, &ws, as_owner).await.0,
        StatusCode::FORBIDDEN
    );
    let member = json!({"provider": "corp", "group": "g", "role": "member"});
    assert_eq!(
        map(&s, &mo_token, &ws, member.clone()).await.0,
        StatusCode::OK
    );
    assert_eq!(
        map(&s, &val_token, &ws, member.clone()).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        map(&s, &mo_token, &other, member).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn deleting_the_provider_ends_what_its_groups_granted() {
    let s = start_with(json!({})).await;
    let (app, admin) = (&s.app, s.admin.as_str());
    let ws = new_workspace(app, admin, "Payments").await;
    let body = json!({"provider": "corp", "group": "payments", "role": "member"});
    assert_eq!(map(&s, admin, &ws, body).await.0, StatusCode::OK);
    sign_in_with_groups(&s, "pat@example.com", &["payments"]).await;
    assert_eq!(
        has(&members(app, admin, &ws).await, "pat@example.com"),
        Some(("member".into(), true))
    );
    let (code, out) = app
        .call(
            admin,
            Method::DELETE,
            "/api/v1/admin/sso/providers/corp",
            None,
        )
        .await;
    assert!(code.is_success(), "{code} {out}");
    assert_eq!(
        has(&members(app, admin, &ws).await, "pat@example.com"),
        None,
        "a deleted provider's group grants nothing"
    );
    let (_, listed) = app
        .call(
            admin,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/directory-groups"),
            None,
        )
        .await;
    assert_eq!(listed, json!([]));
    assert!(
        audit_rows(app, "workspace.member_removed")
            .await
            .iter()
            .any(|r| r.summary.contains("\"via\":\"directory\""))
    );
}
