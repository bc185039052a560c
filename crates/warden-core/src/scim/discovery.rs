//! What the directory reads to learn what Warden serves: `ServiceProviderConfig`,
//! `ResourceTypes` and `Schemas` (RFC 7643 §5–7). The schemas declare exactly the attributes
//! Warden keeps; `emails` is required because a Warden account is reached by email.

use serde_json::{Value, json};

use super::model::{GROUP_SCHEMA, USER_SCHEMA};
use super::{MAX_RESULTS, base};
use crate::Ctx;

fn attr(name: &str, kind: &str, required: bool, mutability: &str, description: &str) -> Value {
    json!({
        "name": name,
        "type": kind,
        "multiValued": false,
        "description": description,
        "required": required,
        "caseExact": false,
        "mutability": mutability,
        "returned": "default",
        "uniqueness": "none",
    })
}

fn text(name: &str, required: bool, description: &str) -> Value {
    attr(name, "string", required, "readWrite", description)
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

/// The `ServiceProviderConfig` resource.
pub fn service_provider_config(ctx: &Ctx) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": "https://github.com/warden/warden#scim",
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": MAX_RESULTS },
        "changePassword": { "supported": false },
        "sort": { "supported": false },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A SCIM token (wdn_scim_…) created by a Warden administrator.",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{}/ServiceProviderConfig", base(ctx)),
        },
    })
}

/// The `ResourceType` resources.
pub fn resource_types(ctx: &Ctx) -> Vec<Value> {
    let b = base(ctx);
    [("User", "/Users", USER_SCHEMA), ("Group", "/Groups", GROUP_SCHEMA)]
        .into_iter()
        .map(|(name, endpoint, schema)| {
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
                "id": name,
                "name": name,
                "endpoint": endpoint,
                "description": format!("{name}s provisioned by the directory"),
                "schema": schema,
                "meta": { "resourceType": "ResourceType", "location": format!("{b}/ResourceTypes/{name}") },
            })
        })
        .collect()
}

/// The `Schema` resources.
pub fn schemas(ctx: &Ctx) -> Vec<Value> {
    let b = base(ctx);
    let name_parts = [
        ("formatted", "The full name"),
        ("familyName", "The family name"),
        ("givenName", "The given name"),
        ("middleName", "The middle name"),
        ("honorificPrefix", "A title before the name"),
        ("honorificSuffix", "A suffix after the name"),
    ]
    .iter()
    .map(|(n, d)| text(n, false, d))
    .collect::<Vec<_>>();
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": USER_SCHEMA,
        "name": "User",
        "description": "A Warden account",
        "attributes": [
            with(text("userName", true, "Unique identifier for the user (compared without case)"), "uniqueness", json!("server")),
            with(with(attr("name", "complex", false, "readWrite", "The person's name"), "subAttributes", json!(name_parts)), "caseExact", json!(false)),
            text("displayName", false, "The name shown for the person"),
            with(with(attr("emails", "complex", true, "readWrite", "Email addresses; the primary one (or the first) is the account's"), "multiValued", json!(true)), "subAttributes", json!([
                text("value", true, "An email address"),
                text("type", false, "What kind of address (work, home, …)"),
                attr("primary", "boolean", false, "readWrite", "Whether this is the account's address"),
            ])),
            attr("active", "boolean", true, "readWrite", "Whether the account may sign in (true when a request leaves it out); false ends its sessions and tokens"),
        ],
        "meta": { "resourceType": "Schema", "location": format!("{b}/Schemas/{USER_SCHEMA}") },
    });
    let group = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": GROUP_SCHEMA,
        "name": "Group",
        "description": "A group of Warden accounts",
        "attributes": [
            with(text("displayName", true, "The group's name (compared without case)"), "uniqueness", json!("server")),
            with(with(attr("members", "complex", false, "readWrite", "The group's members"), "multiValued", json!(true)), "subAttributes", json!([
                with(attr("value", "string", false, "immutable", "The id of a User"), "caseExact", json!(true)),
                with(attr("$ref", "reference", false, "immutable", "The URI of the User"), "referenceTypes", json!(["User"])),
            ])),
        ],
        "meta": { "resourceType": "Schema", "location": format!("{b}/Schemas/{GROUP_SCHEMA}") },
    });
    vec![user, group]
}
