//! The SCIM representations Warden reads and writes: a request body is read into a checked
//! write model ([`UserWrite`], [`GroupWrite`]); a stored row is written out as the JSON a
//! directory expects. Attribute names are matched without case, as RFC 7643 says;
//! attributes Warden does not declare in its schemas are ignored.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;
use warden_store::scim::{MemberRow, ScimGroupRow, ScimUserRow};

use crate::{Code, CoreError, CoreResult};

/// The core User schema.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The core Group schema.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// A list response.
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// A PATCH request.
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

const MAX_TEXT: usize = 256;
const MAX_EMAILS: usize = 10;
/// The most members a group may have.
pub const MAX_MEMBERS: usize = 10_000;
const NAME_PARTS: [&str; 6] = [
    "formatted",
    "familyName",
    "givenName",
    "middleName",
    "honorificPrefix",
    "honorificSuffix",
];

fn invalid(note: impl Into<String>) -> CoreError {
    CoreError::noted(Code::ScimInvalidValue, "body", note.into())
}

/// A JSON object with its keys lower-cased (recursively, through objects and arrays), so
/// attributes are found whatever case the client wrote them in.
pub fn fold_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), fold_keys(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(fold_keys).collect()),
        v => v,
    }
}

fn text(m: &Map<String, Value>, key: &str, what: &str) -> CoreResult<Option<String>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            if s.chars().count() > MAX_TEXT || s.chars().any(char::is_control) {
                return Err(invalid(format!(
                    "{what} must be at most {MAX_TEXT} characters, without control characters"
                )));
            }
            Ok(Some(s.clone()))
        }
        Some(_) => Err(invalid(format!("{what} must be a string"))),
    }
}

fn boolean(v: &Value, what: &str) -> CoreResult<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        // Some directories (Entra ID) send booleans as strings in PATCH operations.
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(invalid(format!("{what} must be a boolean"))),
    }
}

/// One email address of a user.
#[derive(Debug, Clone, PartialEq)]
pub struct Email {
    /// As written.
    pub value: String,
    /// `work`, `home`, … as written.
    pub kind: Option<String>,
    /// Whether it is the primary one.
    pub primary: bool,
}

/// A user as a directory writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct UserWrite {
    /// userName.
    pub user_name: String,
    /// externalId.
    pub external_id: Option<String>,
    /// displayName.
    pub display_name: Option<String>,
    /// name's parts, by their SCIM names.
    pub name: Map<String, Value>,
    /// emails.
    pub emails: Vec<Email>,
    /// active.
    pub active: bool,
}

impl UserWrite {
    /// Reads and checks a User (keys already folded by [`fold_keys`]).
    pub fn read(v: &Value) -> CoreResult<Self> {
        let m = v.as_object().ok_or_else(|| {
            CoreError::noted(
                Code::ScimInvalidSyntax,
                "body",
                "a User must be a JSON object".into(),
            )
        })?;
        let user_name = text(m, "username", "userName")?
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| invalid("userName is required"))?;
        let mut name = Map::new();
        match m.get("name") {
            None | Some(Value::Null) => {}
            Some(Value::Object(n)) => {
                for part in NAME_PARTS {
                    if let Some(s) = text(n, &part.to_ascii_lowercase(), &format!("name.{part}"))? {
                        name.insert(part.to_owned(), Value::String(s));
                    }
                }
            }
            Some(_) => return Err(invalid("name must be an object")),
        }
        let mut emails = Vec::new();
        match m.get("emails") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                for e in list {
                    let e = e
                        .as_object()
                        .ok_or_else(|| invalid("each of emails must be an object"))?;
                    let value = text(e, "value", "emails.value")?
                        .ok_or_else(|| invalid("each of emails needs a value"))?;
                    warden_domain::identity::normalize_email(&value)
                        .map_err(|_| invalid("emails.value must be an email address"))?;
                    let primary = match e.get("primary") {
                        None | Some(Value::Null) => false,
                        Some(p) => boolean(p, "emails.primary")?,
                    };
                    emails.push(Email {
                        value,
                        kind: text(e, "type", "emails.type")?,
                        primary,
                    });
                }
            }
            Some(_) => return Err(invalid("emails must be an array")),
        }
        if emails.is_empty() {
            return Err(invalid(
                "emails must hold at least one address: a Warden account is reached by email",
            ));
        }
        if emails.len() > MAX_EMAILS {
            return Err(invalid(format!("at most {MAX_EMAILS} emails")));
        }
        if emails.iter().filter(|e| e.primary).count() > 1 {
            return Err(invalid("at most one of emails may be primary"));
        }
        let active = match m.get("active") {
            None | Some(Value::Null) => true,
            Some(a) => boolean(a, "active")?,
        };
        Ok(Self {
            user_name,
            external_id: text(m, "externalid", "externalId")?,
            display_name: text(m, "displayname", "displayName")?,
            name,
            emails,
            active,
        })
    }

    /// The account's email: the primary address, or the first.
    pub fn account_email(&self) -> String {
        let e = self
            .emails
            .iter()
            .find(|e| e.primary)
            .unwrap_or(&self.emails[0]);
        e.value.trim().to_lowercase()
    }

    /// What is kept as the row's `attributes`.
    pub fn attributes(&self) -> String {
        json!({
            "name": self.name,
            "emails": self.emails.iter().map(email_json).collect::<Vec<_>>(),
        })
        .to_string()
    }

    /// The write model of a stored user (what PATCH starts from), keys folded.
    pub fn folded_of(row: &ScimUserRow) -> Value {
        fold_keys(user_json(row, ""))
    }
}

fn email_json(e: &Email) -> Value {
    let mut o = Map::new();
    o.insert("value".into(), Value::String(e.value.clone()));
    if let Some(k) = &e.kind {
        o.insert("type".into(), Value::String(k.clone()));
    }
    o.insert("primary".into(), Value::Bool(e.primary));
    Value::Object(o)
}

/// RFC 3339 of a µs timestamp.
pub fn instant(us: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// The weak ETag of a version.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

fn meta(kind: &str, location: String, created: i64, modified: i64, version: i64) -> Value {
    json!({
        "resourceType": kind,
        "created": instant(created),
        "lastModified": instant(modified),
        "location": location,
        "version": etag(version),
    })
}

/// A stored user as SCIM JSON; `base` is the SCIM root URL (`…/scim/v2`).
pub fn user_json(row: &ScimUserRow, base: &str) -> Value {
    let attrs: Value = serde_json::from_str(&row.attributes).unwrap_or_else(|_| json!({}));
    let mut o = Map::new();
    o.insert("schemas".into(), json!([USER_SCHEMA]));
    o.insert("id".into(), Value::String(row.user_id.to_string()));
    if let Some(x) = &row.external_id {
        o.insert("externalId".into(), Value::String(x.clone()));
    }
    o.insert("userName".into(), Value::String(row.user_name.clone()));
    if let Some(n) = attrs
        .get("name")
        .filter(|n| n.as_object().is_some_and(|m| !m.is_empty()))
    {
        o.insert("name".into(), n.clone());
    }
    if let Some(d) = &row.display_name {
        o.insert("displayName".into(), Value::String(d.clone()));
    }
    if let Some(e) = attrs
        .get("emails")
        .filter(|e| e.as_array().is_some_and(|a| !a.is_empty()))
    {
        o.insert("emails".into(), e.clone());
    }
    o.insert("active".into(), Value::Bool(row.active));
    o.insert(
        "meta".into(),
        meta(
            "User",
            format!("{base}/Users/{}", row.user_id),
            row.created_at,
            row.updated_at,
            row.version,
        ),
    );
    Value::Object(o)
}

/// A group as a directory writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupWrite {
    /// displayName.
    pub display_name: String,
    /// externalId.
    pub external_id: Option<String>,
    /// The members' account ids, without repeats.
    pub members: Vec<Uuid>,
}

impl GroupWrite {
    /// Reads and checks a Group (keys already folded).
    pub fn read(v: &Value) -> CoreResult<Self> {
        let m = v.as_object().ok_or_else(|| {
            CoreError::noted(
                Code::ScimInvalidSyntax,
                "body",
                "a Group must be a JSON object".into(),
            )
        })?;
        let display_name = text(m, "displayname", "displayName")?
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| invalid("displayName is required"))?;
        let mut members = Vec::new();
        match m.get("members") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                for e in list {
                    let id = e
                        .get("value")
                        .and_then(Value::as_str)
                        .ok_or_else(|| invalid("each of members needs a value (a User's id)"))?;
                    let id = id
                        .parse::<Uuid>()
                        .map_err(|_| invalid("members.value must be the id of a User"))?;
                    if !members.contains(&id) {
                        members.push(id);
                    }
                }
            }
            Some(_) => return Err(invalid("members must be an array")),
        }
        if members.len() > MAX_MEMBERS {
            return Err(invalid(format!(
                "a group has at most {MAX_MEMBERS} members"
            )));
        }
        Ok(Self {
            display_name,
            external_id: text(m, "externalid", "externalId")?,
            members,
        })
    }
}

/// A stored group as SCIM JSON, with its members (`None`: leave them out).
pub fn group_json(row: &ScimGroupRow, members: Option<&[MemberRow]>, base: &str) -> Value {
    let mut o = Map::new();
    o.insert("schemas".into(), json!([GROUP_SCHEMA]));
    o.insert("id".into(), Value::String(row.id.to_string()));
    if let Some(x) = &row.external_id {
        o.insert("externalId".into(), Value::String(x.clone()));
    }
    o.insert(
        "displayName".into(),
        Value::String(row.display_name.clone()),
    );
    if let Some(ms) = members.filter(|m| !m.is_empty()) {
        o.insert(
            "members".into(),
            Value::Array(
                ms.iter()
                    .map(|m| {
                        json!({
                            "value": m.user_id.to_string(),
                            "$ref": format!("{base}/Users/{}", m.user_id),
                        })
                    })
                    .collect(),
            ),
        );
    }
    o.insert(
        "meta".into(),
        meta(
            "Group",
            format!("{base}/Groups/{}", row.id),
            row.created_at,
            row.updated_at,
            row.version,
        ),
    );
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_names_are_matched_without_case() {
        let v = fold_keys(json!({
            "USERNAME": "Alice@Example.com",
            "Emails": [{"Value": "Alice@Example.com", "Primary": "True"}],
            "Active": "False",
            "NAME": {"GivenName": "Alice"},
            "unknownThing": 1,
        }));
        let u = UserWrite::read(&v).unwrap();
        assert_eq!(u.user_name, "Alice@Example.com");
        assert_eq!(u.account_email(), "alice@example.com");
        assert!(!u.active);
        assert_eq!(u.name.get("givenName"), Some(&json!("Alice")));
    }

    #[test]
    fn bad_users_are_refused() {
        for bad in [
            json!({"emails": [{"value": "a@x.com"}]}),
            json!({"username": "a", "emails": []}),
            json!({"username": "a", "emails": [{"value": "not an email"}]}),
            json!({"username": "a", "emails": [{"value": "a@x.com", "primary": true}, {"value": "b@x.com", "primary": true}]}),
            json!({"username": "a\u{0}b", "emails": [{"value": "a@x.com"}]}),
            json!({"username": "a", "emails": [{"value": "a@x.com"}], "active": 3}),
            json!({"username": 5, "emails": [{"value": "a@x.com"}]}),
        ] {
            assert!(UserWrite::read(&bad).is_err(), "{bad}");
        }
    }
}
