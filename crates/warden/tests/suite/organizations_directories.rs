//! Directories belong to one organization. A SCIM token a platform administrator makes while
//! acting in an organization provisions that organization only. Attacked: organization A's
//! token reading, changing, deactivating and deleting organization B's users and groups,
//! adopting B's people by POSTing their email, putting B's users into its groups, and mapping
//! its groups onto B's workspaces; group names are each organization's own. Likewise an
//! organization's SAML provider's groups map only onto that organization's workspaces.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::identity::audit_rows;
use crate::organizations::{assert_acme_member, switch, world};
use crate::saml::{Saml, add_provider};
use crate::scim::{scim, scim_token, user};
use crate::tenancy::ok_json;

fn group(name: &str, members: &[&str]) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": name,
        "members": members.iter().map(|m| json!({"value": m})).collect::<Vec<_>>(),
    })
}

fn ids(list: &Value) -> Vec<String> {
    list["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_directory_token_of_one_organization_cannot_reach_another_organizations_users() {
    let w = world().await;
    let app = &w.app;
    // The default organization's directory, and acme's (made while acting in acme).
    let home_dir = scim_token(app, &w.admin).await;
    let admin_in_acme = switch(app, &w.admin, "acme").await;
    let acme_dir = scim_token(app, &admin_in_acme).await;

    let (s, _, dana) = scim(
        app,
        &home_dir,
        Method::POST,
        "/Users",
        Some(user("dana", "dana@home.example")),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{dana}");
    let dana = dana["id"].as_str().unwrap().to_owned();
    let (s, _, erin) = scim(
        app,
        &acme_dir,
        Method::POST,
        "/Users",
        Some(user("erin", "erin@acme.example")),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{erin}");
    let erin = erin["id"].as_str().unwrap().to_owned();

    // Erin joined acme, on record with the directory as the actor.
    assert_acme_member(app, &w.bob.token, "erin@acme.example").await;
    let joined = audit_rows(app, "organization.member_added").await;
    assert!(
        joined.iter().any(|r| r.summary.contains(&erin)
            && r.summary.contains("scim")
            && r.actor_id
                .as_deref()
                .is_some_and(|a| a.starts_with("scim:"))),
        "{joined:?}"
    );

    // Each directory sees its own users only: by id, in lists and in filters.
    let (_, _, listed) = scim(app, &acme_dir, Method::GET, "/Users", None).await;
    assert_eq!(ids(&listed), [erin.as_str()]);
    assert_eq!(listed["totalResults"], 1);
    let (_, _, listed) = scim(app, &home_dir, Method::GET, "/Users", None).await;
    assert_eq!(ids(&listed), [dana.as_str()]);
    let (_, _, found) = scim(
        app,
        &acme_dir,
        Method::GET,
        "/Users?filter=userName%20eq%20%22dana%22",
        None,
    )
    .await;
    assert_eq!(found["totalResults"], 0, "{found}");
    let (_, _, found) = scim(
        app,
        &acme_dir,
        Method::GET,
        "/Users?filter=userName%20eq%20%22x%22%20or%20%221%22%20eq%20%221%22",
        None,
    )
    .await;
    assert!(
        found.get("totalResults").is_none_or(|t| t == 0 || t == 1),
        "{found}"
    );
    assert!(!found.to_string().contains(&dana), "{found}");

    // Acme's token reading, replacing, patching (deactivating) or deleting dana: 404 each.
    let path = format!("/Users/{dana}");
    let deactivate = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}],
    });
    for (method, body) in [
        (Method::GET, None),
        (Method::PUT, Some(user("dana", "dana@evil.example"))),
        (Method::PATCH, Some(deactivate.clone())),
        (Method::DELETE, None),
    ] {
        let (s, _, v) = scim(app, &acme_dir, method.clone(), &path, body).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {v}");
    }
    // Nor the other way round.
    let (s, _, _) = scim(app, &home_dir, Method::GET, &format!("/Users/{erin}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Dana is untouched: active, same email, still the home directory's.
    let (s, _, v) = scim(app, &home_dir, Method::GET, &path, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["active"], true);
    assert_eq!(v["emails"][0]["value"], "dana@home.example");

    // Adopting another organization's person by POSTing their email is a conflict: dana (a
    // directory's), and the administrator-made account of someone only in the default
    // organization.
    for (name, email) in [
        ("dana2", "dana@home.example"),
        ("admin2", crate::identity::ADMIN_EMAIL),
    ] {
        let (s, _, v) = scim(
            app,
            &acme_dir,
            Method::POST,
            "/Users",
            Some(user(name, email)),
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT, "{email}: {v}");
    }
    let outsider = crate::tenancy::user(app, &w.admin, "frank@home.example", "member").await;
    let (s, _, v) = scim(
        app,
        &acme_dir,
        Method::POST,
        "/Users",
        Some(user("frank", "frank@home.example")),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    // Frank still signs in and is nobody's directory's: the home directory may adopt him.
    ok_json(app, &outsider.token, Method::GET, "/api/v1/me", None).await;
    let (s, _, v) = scim(
        app,
        &home_dir,
        Method::POST,
        "/Users",
        Some(user("frank", "frank@home.example")),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // Groups: the same name in both organizations; another organization's group is unknown;
    // another organization's user cannot be put in a group.
    let (s, _, home_eng) = scim(
        app,
        &home_dir,
        Method::POST,
        "/Groups",
        Some(group("Engineering", &[&dana])),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{home_eng}");
    let home_eng = home_eng["id"].as_str().unwrap().to_owned();
    let (s, _, acme_eng) = scim(
        app,
        &acme_dir,
        Method::POST,
        "/Groups",
        Some(group("Engineering", &[&erin])),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{acme_eng}");
    let acme_eng = acme_eng["id"].as_str().unwrap().to_owned();
    let (s, _, v) = scim(
        app,
        &acme_dir,
        Method::POST,
        "/Groups",
        Some(group("engineering", &[])),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, _, v) = scim(
        app,
        &acme_dir,
        Method::POST,
        "/Groups",
        Some(group("Spies", &[&dana])),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let add_dana = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": dana}]}],
    });
    let (s, _, v) = scim(
        app,
        &acme_dir,
        Method::PATCH,
        &format!("/Groups/{acme_eng}"),
        Some(add_dana),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    for method in [Method::GET, Method::DELETE] {
        let (s, _, _) = scim(
            app,
            &acme_dir,
            method.clone(),
            &format!("/Groups/{home_eng}"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method}");
    }
    let (_, _, listed) = scim(
        app,
        &acme_dir,
        Method::GET,
        "/Groups?filter=displayName%20eq%20%22engineering%22",
        None,
    )
    .await;
    assert_eq!(ids(&listed), [acme_eng.as_str()]);

    // Acme's group cannot be mapped onto the default organization's workspace, even by the
    // platform administrator acting there; the picker lists each organization's own groups.
    let (s, v) = app
        .call(
            &w.admin,
            Method::PUT,
            &format!("/api/v1/workspaces/{}/directory-groups/{acme_eng}", w.home),
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let picker = ok_json(app, &w.admin, Method::GET, "/api/v1/scim/groups", None).await;
    assert!(!picker.to_string().contains(&acme_eng), "{picker}");
    assert!(picker.to_string().contains(&home_eng), "{picker}");
    let (s, v) = app
        .call(
            &admin_in_acme,
            Method::PUT,
            &format!(
                "/api/v1/workspaces/{}/directory-groups/{acme_eng}",
                w.rocket
            ),
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Tokens are listed and revoked per organization.
    let listed = ok_json(app, &w.admin, Method::GET, "/api/v1/scim/tokens", None).await;
    let acme_tokens = ok_json(
        app,
        &admin_in_acme,
        Method::GET,
        "/api/v1/scim/tokens",
        None,
    )
    .await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(acme_tokens.as_array().unwrap().len(), 1, "{acme_tokens}");
    let acme_token_id = acme_tokens[0]["id"].as_str().unwrap();
    let (s, _) = app
        .call(
            &w.admin,
            Method::DELETE,
            &format!("/api/v1/scim/tokens/{acme_token_id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = scim(app, &acme_dir, Method::GET, "/Users", None).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn an_organizations_saml_groups_map_only_onto_its_workspaces() {
    let w = world().await;
    let s = Saml {
        app: w.app,
        admin: w.admin,
        idp: warden_testkit::saml::SamlIdp::start(),
    };
    let (code, body) = add_provider(&s, "acme-entra", json!({})).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let admin_in_acme = switch(&s.app, &s.admin, "acme").await;
    ok_json(
        &s.app,
        &admin_in_acme,
        Method::PUT,
        &format!("/api/v1/organizations/{}/sso-providers/acme-entra", w.acme),
        None,
    )
    .await;
    let map = |token: String, ws: String, provider: &'static str| {
        let app = &s.app;
        async move {
            app.call(
                &token,
                Method::POST,
                &format!("/api/v1/workspaces/{ws}/directory-groups"),
                Some(json!({"provider": provider, "group": "eng", "role": "member"})),
            )
            .await
        }
    };
    // Acme's provider is unknown to the default organization's workspace (the same answer as
    // a slug that names no provider), even for the platform administrator.
    let (code, v) = map(s.admin.clone(), w.home.clone(), "acme-entra").await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v.to_string()
            .contains("must be a single sign-on provider's slug"),
        "{v}"
    );
    // In acme's own workspace it maps (a platform-wide provider maps anywhere: saml_groups).
    let (code, v) = map(w.bob.token.clone(), w.rocket.clone(), "acme-entra").await;
    assert_eq!(code, StatusCode::OK, "{v}");
}
