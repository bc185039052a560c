//! SAML 2.0 sign-in against a real identity provider (pysaml2 signing with xmlsec1), and the
//! attacks on it, each forged by the same library: unsigned, SHA-1, changed after signing,
//! another audience or recipient, expired, answering another request, DOCTYPE, a comment in
//! the NameID, signature wrapping (XSW 1–8), replays, another browser, unsolicited responses,
//! the element that must be signed, and email domains the IdP is not trusted for.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_testkit::TestApp;
use warden_testkit::saml::{Answer, SamlIdp};

use crate::identity::{admin_token, audit_rows};

const COOKIE: &str = "__Host-warden_saml";

pub(crate) struct Saml {
    pub(crate) app: TestApp,
    pub(crate) admin: String,
    pub(crate) idp: SamlIdp,
}

pub(crate) async fn add_provider(s: &Saml, slug: &str, extra: Value) -> (StatusCode, Value) {
    let mut body = json!({
        "slug": slug, "display_name": format!("{slug} SAML"),
        "metadata_xml": s.idp.metadata().await,
        "allowed_domains": ["example.com"], "jit": true,
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let res = s
        .app
        .call(
            &s.admin,
            Method::POST,
            "/api/v1/admin/saml/providers",
            Some(body),
        )
        .await;
    if res.0 == StatusCode::CREATED {
        // The IdP's administrator registers Warden's metadata.
        let md = reqwest::get(s.app.url(&format!("/api/v1/auth/saml/{slug}/metadata")))
            .await
            .unwrap();
        assert_eq!(md.status(), StatusCode::OK);
        assert_eq!(md.headers()["content-type"], "application/samlmetadata+xml");
        s.idp.register_sp(&md.text().await.unwrap()).await;
    }
    res
}

pub(crate) async fn start_with(extra: Value) -> Saml {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let s = Saml {
        app,
        admin,
        idp: SamlIdp::start(),
    };
    let (code, body) = add_provider(&s, "corp", extra).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    s
}

async fn start() -> Saml {
    start_with(json!({})).await
}

/// Starts a sign-in at `slug` and has the IdP answer it as `user`, forged as `forge` says.
/// Returns the answer and the browser's binding cookie.
pub(crate) async fn begin(s: &Saml, slug: &str, user: &str, forge: Value) -> (Answer, String) {
    let res = warden_testkit::no_redirect_client()
        .get(s.app.url(&format!("/api/v1/auth/sso/{slug}/start")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let binding = cookie_header(&res, COOKIE).expect("a binding cookie");
    let set = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with(COOKIE))
        .unwrap()
        .to_owned();
    assert!(set.contains("SameSite=None") && set.contains("Secure") && set.contains("HttpOnly"));
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("SAMLRequest="), "{location}");
    let answer = s.idp.answer(&location, user, &forge).await;
    (answer, binding)
}

fn cookie_header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")) && !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap().to_owned())
}

/// Posts the answer to the assertion consumer service, as the IdP's auto-posting form would.
pub(crate) async fn post(answer: &Answer, binding: Option<&str>) -> reqwest::Response {
    let mut req = warden_testkit::no_redirect_client()
        .post(&answer.acs)
        .form(&[
            ("SAMLResponse", answer.saml_response.as_str()),
            ("RelayState", answer.relay_state.as_str()),
        ]);
    if let Some(b) = binding {
        req = req.header("cookie", b);
    }
    req.send().await.unwrap()
}

async fn refused_with(app: &TestApp, reason: &str) -> bool {
    audit_rows(app, "auth.sign_in").await.iter().any(|r| {
        r.outcome == "failed"
            && r.summary.contains("\"method\":\"saml\"")
            && r.summary.contains(&format!("\"reason\":\"{reason}\""))
    })
}

async fn users_named(s: &Saml, email: &str) -> usize {
    let (code, users) = s
        .app
        .call(&s.admin, Method::GET, "/api/v1/admin/users", None)
        .await;
    assert_eq!(code, StatusCode::OK);
    let list = users
        .get("items")
        .or(Some(&users))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    list.iter().filter(|u| u["email"] == email).count()
}

/// A refused response: 400, no session, audited with `reason`.
async fn assert_refused(s: &Saml, res: reqwest::Response, reason: &str, what: &str) {
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{what}");
    assert!(
        cookie_header(&res, "__Host-warden_access").is_none(),
        "{what}"
    );
    assert!(
        refused_with(&s.app, reason).await,
        "{what}: not audited as {reason}"
    );
}

#[tokio::test]
async fn signing_in_with_a_real_saml_idp_provisions_once_and_gives_a_normal_session() {
    let s = start().await;
    let (answer, binding) = begin(&s, "corp", "alice@example.com", json!({})).await;
    let res = post(&answer, Some(&binding)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", answer.xml);
    assert_eq!(res.headers()["location"], "/sso/signed-in");
    let access = cookie_header(&res, "__Host-warden_access").expect("an access cookie");
    let access = access.split_once('=').unwrap().1.to_owned();
    let (code, me) = s.app.call(&access, Method::GET, "/api/v1/me", None).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(me["email"], "alice@example.com");
    let provisioned = audit_rows(&s.app, "sso.user_provisioned").await;
    assert_eq!(provisioned.len(), 1);
    assert!(provisioned[0].summary.contains(&s.idp.entity_id));
    // The same response again: its sign-in is spent.
    let again = post(&answer, Some(&binding)).await;
    assert_refused(&s, again, "unknown_state", "a second post").await;
    // A second sign-in is the same account, not a new one.
    let (answer, binding) = begin(&s, "corp", "alice@example.com", json!({})).await;
    assert_eq!(
        post(&answer, Some(&binding)).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(audit_rows(&s.app, "sso.user_provisioned").await.len(), 1);
    assert_eq!(users_named(&s, "alice@example.com").await, 1);
    // The provider is listed with the others, as SAML.
    let (_, list) = s
        .app
        .call(&s.admin, Method::GET, "/api/v1/admin/sso/providers", None)
        .await;
    assert_eq!(list[0]["protocol"], "saml");
    assert_eq!(list[0]["issuer"], s.idp.entity_id.as_str());
}

#[tokio::test]
async fn forged_and_misdirected_responses_are_refused_and_audited() {
    let s = start().await;
    let cases: [(&str, Value, &str); 10] = [
        ("unsigned", json!({"sign": "none"}), "signature_invalid"),
        ("SHA-1", json!({"sha1": true}), "signature_invalid"),
        (
            "NameID changed after signing",
            json!({"after_sign": [["bob@example.com", "carol@example.com"]]}),
            "signature_invalid",
        ),
        (
            "another audience",
            json!({"audience": "https://other.example/sp"}),
            "audience_mismatch",
        ),
        (
            "another recipient",
            json!({"recipient": "https://other.example/acs"}),
            "audience_mismatch",
        ),
        ("expired", json!({"expired": true}), "expired"),
        (
            "another request",
            json!({"in_response_to": "_0123456789abcdef0123456789abcdef"}),
            "in_response_to_mismatch",
        ),
        (
            "a DOCTYPE with an entity",
            json!({"after_sign": [["<ns0:Response ", "<!DOCTYPE r [<!ENTITY e \"x\">]><ns0:Response "]]}),
            "forbidden_construct",
        ),
        (
            "a comment inside the NameID",
            json!({"name_id": "bob@example.com.evil.com", "mail": "bob@example.com.evil.com",
                   "after_sign": [["bob@example.com.evil.com", "bob@example.com<!---->.evil.com"]]}),
            "forbidden_construct",
        ),
        (
            "the response signed where the assertion must be",
            json!({"sign": "response"}),
            "not_signed",
        ),
    ];
    for (what, forge, reason) in cases {
        let (answer, binding) = begin(&s, "corp", "bob@example.com", forge).await;
        let res = post(&answer, Some(&binding)).await;
        assert_refused(&s, res, reason, what).await;
    }
    assert_eq!(users_named(&s, "bob@example.com").await, 0);
    assert_eq!(users_named(&s, "carol@example.com").await, 0);
    // A genuine one still works.
    let (answer, binding) = begin(&s, "corp", "bob@example.com", json!({})).await;
    assert_eq!(
        post(&answer, Some(&binding)).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn signature_wrapping_variants_1_to_8_are_refused() {
    let s = start_with(json!({"signed": "either"})).await;
    for variant in 1..=8 {
        let sign = if variant <= 2 {
            "response"
        } else {
            "assertion"
        };
        let forge = json!({"xsw": variant, "sign": sign, "evil": "mallory@example.com"});
        let (answer, binding) = begin(&s, "corp", "dave@example.com", forge).await;
        assert!(answer.xml.contains("mallory@example.com"), "XSW{variant}");
        let res = post(&answer, Some(&binding)).await;
        assert_refused(&s, res, "unexpected_structure", &format!("XSW{variant}")).await;
    }
    assert_eq!(users_named(&s, "mallory@example.com").await, 0);
    assert_eq!(users_named(&s, "dave@example.com").await, 0);
}

#[tokio::test]
async fn a_response_needs_its_own_browser_and_a_provider_that_takes_unsolicited_ones() {
    let s = start().await;
    // Posted from a browser that did not start the sign-in.
    let (answer, _) = begin(&s, "corp", "erin@example.com", json!({})).await;
    assert_refused(
        &s,
        post(&answer, None).await,
        "browser_mismatch",
        "no cookie",
    )
    .await;
    let (answer, _) = begin(&s, "corp", "erin@example.com", json!({})).await;
    let (_, other) = begin(&s, "corp", "erin@example.com", json!({})).await;
    assert_refused(
        &s,
        post(&answer, Some(&other)).await,
        "browser_mismatch",
        "other cookie",
    )
    .await;
    // IdP-initiated, to a provider that does not take it.
    let sp = s.app.url("/api/v1/auth/saml/corp/metadata");
    let acs = s.app.url("/api/v1/auth/saml/corp/acs");
    let unsolicited = s
        .idp
        .unsolicited(&sp, &acs, "erin@example.com", &json!({}))
        .await;
    assert_refused(
        &s,
        post(&unsolicited, None).await,
        "unsolicited_response",
        "unsolicited",
    )
    .await;
    assert_eq!(users_named(&s, "erin@example.com").await, 0);
}

#[tokio::test]
async fn idp_initiated_sign_in_when_allowed_and_a_replayed_assertion_is_refused() {
    let s = start_with(json!({"idp_initiated": true})).await;
    let sp = s.app.url("/api/v1/auth/saml/corp/metadata");
    let acs = s.app.url("/api/v1/auth/saml/corp/acs");
    let answer = s
        .idp
        .unsolicited(&sp, &acs, "frank@example.com", &json!({}))
        .await;
    let res = post(&answer, None).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(cookie_header(&res, "__Host-warden_access").is_some());
    // The same assertion again, on any node: refused.
    assert_refused(
        &s,
        post(&answer, None).await,
        "assertion_replayed",
        "replay",
    )
    .await;
    // An unsolicited response may not claim to answer a request.
    let claims = s
        .idp
        .unsolicited(
            &sp,
            &acs,
            "frank@example.com",
            &json!({"in_response_to": "_abc"}),
        )
        .await;
    assert_refused(
        &s,
        post(&claims, None).await,
        "in_response_to_mismatch",
        "claims",
    )
    .await;
}

#[tokio::test]
async fn an_idp_is_trusted_only_for_its_own_domains_and_links_only_when_told() {
    let s = start().await;
    // An address outside the provider's domains neither creates nor reaches an account.
    let (answer, binding) = begin(&s, "corp", "gina@other.org", json!({})).await;
    assert_refused(
        &s,
        post(&answer, Some(&binding)).await,
        "email_unverified",
        "domain",
    )
    .await;
    assert_eq!(users_named(&s, "gina@other.org").await, 0);
    // The administrator's own address exists already: no linking unless the provider may.
    let admin_email = crate::identity::ADMIN_EMAIL;
    let (answer, binding) = begin(&s, "corp", admin_email, json!({})).await;
    let res = post(&answer, Some(&binding)).await;
    if admin_email.ends_with("@example.com") {
        assert_refused(&s, res, "account_not_linkable", "existing account").await;
    } else {
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    }
    // Linking and just-in-time accounts need the domains the IdP is trusted for.
    let (code, body) = add_provider(&s, "loose", json!({"allowed_domains": []})).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // A second provider claiming the same IdP (with keys of its own) could speak for the
    // first one's people: refused.
    let (code, body) = add_provider(&s, "twin", json!({})).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "issuer", "{body}");
    // Unusable metadata is refused with the reason.
    let (code, body) = add_provider(
        &s,
        "broken",
        json!({"metadata_xml": "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" entityID=\"x\"/>"}),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[tokio::test]
async fn a_provider_that_must_sign_the_response_refuses_a_signed_assertion_alone() {
    let s = start_with(json!({"signed": "response"})).await;
    let (answer, binding) = begin(&s, "corp", "hank@example.com", json!({})).await;
    assert_refused(
        &s,
        post(&answer, Some(&binding)).await,
        "not_signed",
        "assertion only",
    )
    .await;
    let (answer, binding) =
        begin(&s, "corp", "hank@example.com", json!({"sign": "response"})).await;
    assert_eq!(
        post(&answer, Some(&binding)).await.status(),
        StatusCode::SEE_OTHER
    );
    let (answer, binding) = begin(&s, "corp", "hank@example.com", json!({"sign": "both"})).await;
    assert_eq!(
        post(&answer, Some(&binding)).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn warden_sso_add_saml_takes_the_metadata_file_and_prints_what_to_register() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let idp = SamlIdp::start();
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials.json");
    let metadata = dir.path().join("idp.xml");
    std::fs::write(&metadata, idp.metadata().await).unwrap();
    let run = |args: &[&str], stdin: &'static str| {
        crate::cli::run_cli(
            dir.path(),
            &creds,
            args.iter().map(|s| (*s).to_owned()).collect(),
            stdin,
        )
    };
    let email = crate::identity::ADMIN_EMAIL;
    let (ok, out) = run(
        &["login", "--url", &app.base, "--email", email],
        "violet tractor 93 lagoon\n",
    )
    .await
    .unwrap();
    assert!(ok, "{out}");
    let file = metadata.to_str().unwrap();
    let args = [
        "sso",
        "add-saml",
        "okta",
        "--name",
        "Okta",
        "--metadata-file",
        file,
        "--domain",
        "example.com",
        "--jit",
    ];
    let (ok, out) = run(&args, "").await.unwrap();
    assert!(
        ok && out.contains("/api/v1/auth/saml/okta/metadata")
            && out.contains("/api/v1/auth/saml/okta/acs")
            && out.contains(&idp.entity_id),
        "{out}"
    );
    let (ok, out) = run(&["sso", "list"], "").await.unwrap();
    assert!(ok && out.contains("okta  saml  Okta"), "{out}");
    // Home-realm discovery finds it by a domain it serves, and nothing for another.
    let (ok, out) = run(&["sso", "discover", "Pat@Example.com"], "")
        .await
        .unwrap();
    assert!(
        ok && out.contains("okta  saml  Okta  /api/v1/auth/sso/okta/start"),
        "{out}"
    );
    let (ok, out) = run(&["sso", "discover", "pat@elsewhere.test"], "")
        .await
        .unwrap();
    assert!(ok && out.contains("no single sign-on provider"), "{out}");
    // Its groups map to a workspace, and unmap by name.
    let ws = crate::directory_groups::new_workspace(&app, &admin, "Payments").await;
    let map = [
        "sso",
        "map-group",
        "-w",
        &ws,
        "-p",
        "okta",
        "-g",
        "Payments Team",
        "-r",
        "viewer",
    ];
    let (ok, out) = run(&map, "").await.unwrap();
    assert!(
        ok && out.contains("okta group Payments Team mapped as viewer"),
        "{out}"
    );
    let (ok, out) = run(&["scim", "mappings", "-w", &ws], "").await.unwrap();
    assert!(
        ok && out.contains("okta  Payments Team  viewer  0"),
        "{out}"
    );
    let unmap = [
        "sso",
        "unmap-group",
        "-w",
        &ws,
        "-p",
        "okta",
        "-g",
        "Payments Team",
    ];
    let (ok, out) = run(&unmap, "").await.unwrap();
    assert!(ok && out.contains("group unmapped"), "{out}");
    let (ok, out) = run(&unmap, "").await.unwrap();
    assert!(!ok && out.contains("is not mapped there"), "{out}");
    // Metadata that is not an IdP's is refused with the reason.
    std::fs::write(&metadata, "<x/>").unwrap();
    let (ok, out) = run(
        &[
            "sso",
            "add-saml",
            "bad",
            "--name",
            "Bad",
            "--metadata-file",
            file,
        ],
        "",
    )
    .await
    .unwrap();
    assert!(!ok && out.contains("422"), "{out}");
}

#[tokio::test]
async fn in_chromium_an_administrator_adds_a_saml_provider_and_someone_signs_in_through_it() {
    if crate::browser::skipped() {
        return;
    }
    let (app, public) = crate::browser::console_app(&[]).await;
    let admin = admin_token(&app).await;
    let ws = crate::directory_groups::new_workspace(&app, &admin, "Engineering").await;
    let idp = SamlIdp::start();
    let dir = tempfile::tempdir().unwrap();
    let metadata = dir.path().join("idp.xml");
    std::fs::write(&metadata, idp.metadata().await).unwrap();
    let summary = crate::browser::walk(
        "saml.mjs",
        &public,
        &[
            ("IDP", idp.base.as_str()),
            ("IDP_METADATA", metadata.to_str().unwrap()),
            ("WORKSPACE", ws.as_str()),
        ],
        5,
    )
    .await;
    let listed = summary["listed"].as_str().unwrap();
    assert!(
        listed.contains("SAML")
            && listed.contains(&idp.entity_id)
            && listed.contains("/api/v1/auth/saml/corp/acs"),
        "{summary}"
    );
    assert_eq!(summary["registered"], 204, "{summary}");
    assert_eq!(summary["landed"], "/console", "{summary}");
    assert_eq!(summary["me"], "pat@example.com", "{summary}");
    let mapped = summary["mapped"].as_str().unwrap();
    assert!(
        mapped.contains("eng-team") && mapped.contains("maintainer") && mapped.contains("corp"),
        "{summary}"
    );
    let joined = summary["members"].as_str().unwrap();
    assert!(
        joined.contains("pat@example.com maintainer") && joined.contains("from a directory group"),
        "{summary}"
    );
    let provisioned = audit_rows(&app, "sso.user_provisioned").await;
    assert_eq!(provisioned.len(), 1);
    assert!(provisioned[0].summary.contains("pat@example.com"));
}
