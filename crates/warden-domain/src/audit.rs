//! Audit events as the domain sees them: who did what to which resource, with what outcome,
//! and a summary of the input in which every field was declared recorded, masked or ignored.
//!
//! Nothing here writes anything; storage appends events in the same transaction as the
//! change they describe.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A person signed in.
    User,
    /// A connected host.
    Host,
    /// An API key.
    ApiKey,
    /// Warden itself (jobs, start-up).
    System,
}

impl ActorKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Host => "host",
            Self::ApiKey => "api_key",
            Self::System => "system",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "user" => Self::User,
            "host" => Self::Host,
            "api_key" => Self::ApiKey,
            "system" => Self::System,
            _ => return None,
        })
    }
}

/// The actor of an event: a kind and, except for the system, an id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// What kind of principal.
    pub kind: ActorKind,
    /// Its id (`None` only for the system).
    pub id: Option<String>,
}

impl Actor {
    /// Warden itself.
    pub fn system() -> Self {
        Self {
            kind: ActorKind::System,
            id: None,
        }
    }
}

/// How the action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It happened.
    Success,
    /// It was refused by a permission or policy check; nothing changed.
    Denied,
    /// It was attempted and failed; nothing changed.
    Failed,
}

impl Outcome {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Denied => "denied",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "success" => Self::Success,
            "denied" => Self::Denied,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// A dotted action name such as `user.sign_in`: two or more segments of `[a-z0-9_]`, each
/// starting with a letter, at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Action(String);

impl Action {
    /// Accepts a well-formed action name.
    pub fn parse(s: &str) -> Option<Self> {
        let segments: Vec<&str> = s.split('.').collect();
        let ok = s.len() <= 64
            && segments.len() >= 2
            && segments.iter().all(|seg| {
                seg.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            });
        ok.then(|| Self(s.to_owned()))
    }

    /// An action named in code. A malformed name (a bug, caught by tests) is recorded as
    /// `audit.invalid_action` rather than lost.
    pub fn from_static(s: &'static str) -> Self {
        Self::parse(s).unwrap_or_else(|| Self("audit.invalid_action".to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the audit log keeps of one input field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// The value itself.
    Value,
    /// Only that it was given or changed (secrets: passwords, keys, tokens).
    Changed,
    /// Nothing.
    Ignore,
}

/// An input type whose audit summary is declared field by field.
///
/// Every field the type serializes must appear in [`Audited::AUDIT_FIELDS`]; an undeclared
/// field makes [`summarize`] fail, so a field added later cannot reach the log by default.
/// Declare with [`audited!`](crate::audited).
pub trait Audited: Serialize {
    /// Each field's name and what to keep of it.
    const AUDIT_FIELDS: &'static [(&'static str, Record)];
}

/// Declares how an input type is audited, field by field:
/// `audited!(CreateUser { email: Value, password: Changed, note: Ignore });`
#[macro_export]
macro_rules! audited {
    ($ty:ty { $($field:ident : $rule:ident),* $(,)? }) => {
        impl $crate::audit::Audited for $ty {
            const AUDIT_FIELDS: &'static [(&'static str, $crate::audit::Record)] =
                &[$((stringify!($field), $crate::audit::Record::$rule)),*];
        }
    };
}

/// Why an input could not be summarized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SummaryError {
    /// The input has a field its type did not declare.
    #[error("field `{0}` has no audit declaration")]
    Undeclared(String),
    /// The input does not serialize to a JSON object.
    #[error("audited input must serialize to an object")]
    NotAnObject,
}

/// The text that stands in for a secret.
pub const MASK: &str = "[changed]";

fn fields<T: Audited>(input: &T) -> Result<Map<String, Value>, SummaryError> {
    match serde_json::to_value(input) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(SummaryError::NotAnObject),
    }
}

fn rule<T: Audited>(field: &str) -> Result<Record, SummaryError> {
    T::AUDIT_FIELDS
        .iter()
        .find(|(name, _)| *name == field)
        .map(|(_, r)| *r)
        .ok_or_else(|| SummaryError::Undeclared(field.to_owned()))
}

/// The redacted summary of a creation-style input: values kept, secrets masked (present and
/// non-null secrets appear as `"[changed]"`), ignored fields left out.
pub fn summarize<T: Audited>(input: &T) -> Result<Value, SummaryError> {
    let mut out = Map::new();
    for (name, value) in fields(input)? {
        match rule::<T>(&name)? {
            Record::Value => {
                out.insert(name, value);
            }
            Record::Changed if !value.is_null() => {
                out.insert(name, Value::String(MASK.to_owned()));
            }
            Record::Changed | Record::Ignore => {}
        }
    }
    Ok(Value::Object(out))
}

/// What an update changed: `{field: {"old": …, "new": …}}` for recorded fields that differ,
/// `{secret: "[changed]"}` for masked fields that differ, nothing for the rest.
pub fn diff<T: Audited>(old: &T, new: &T) -> Result<Value, SummaryError> {
    let old = fields(old)?;
    let new = fields(new)?;
    let mut out = Map::new();
    for (name, after) in new {
        let before = old.get(&name).cloned().unwrap_or(Value::Null);
        let rule = rule::<T>(&name)?;
        if before == after {
            continue;
        }
        match rule {
            Record::Value => {
                let mut change = Map::new();
                change.insert("old".to_owned(), before);
                change.insert("new".to_owned(), after);
                out.insert(name, Value::Object(change));
            }
            Record::Changed => {
                out.insert(name, Value::String(MASK.to_owned()));
            }
            Record::Ignore => {}
        }
    }
    Ok(Value::Object(out))
}

/// Checks that `sample` declares every field it serializes. Call it from each audited
/// type's unit test with a sample whose optional fields are all set.
pub fn check_declarations<T: Audited>(sample: &T) -> Result<(), SummaryError> {
    for name in fields(sample)?.keys() {
        rule::<T>(name)?;
    }
    Ok(())
}

/// An event about to be appended. Storage assigns its sequence number and chain hash.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// When it happened (stored with microsecond precision).
    pub at: OffsetDateTime,
    /// Who acted.
    pub actor: Actor,
    /// The workspace it concerns, when scoped.
    pub workspace_id: Option<String>,
    /// What was done.
    pub action: Action,
    /// The kind of resource acted on (`user`, `host`, …).
    pub resource_type: String,
    /// Its id, when there is one.
    pub resource_id: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The client's address.
    pub client_ip: Option<IpAddr>,
    /// The client's user agent (truncated to 256 characters when stored).
    pub user_agent: Option<String>,
    /// The request it came from.
    pub request_id: Option<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: i64,
    /// The redacted input summary ([`summarize`] or [`diff`]).
    pub summary: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct CreateUser {
        email: String,
        password: String,
        display_name: Option<String>,
        internal_note: String,
    }
    audited!(CreateUser {
        email: Value,
        password: Changed,
        display_name: Value,
        internal_note: Ignore
    });

    #[derive(Serialize)]
    struct Leaky {
        name: String,
        token: String,
    }
    audited!(Leaky { name: Value });

    fn sample() -> CreateUser {
        CreateUser {
            email: "a@example.com".into(),
            password: "correct horse battery staple".into(),
            display_name: Some("A".into()),
            internal_note: "n".into(),
        }
    }

    #[test]
    fn create_user_declares_every_field() {
        check_declarations(&sample()).unwrap();
    }

    #[test]
    fn a_field_without_a_declaration_is_refused_not_recorded() {
        let leaky = Leaky {
            name: "x".into(),
            token: "tok_secret".into(),
        };
        assert_eq!(
            check_declarations(&leaky),
            Err(SummaryError::Undeclared("token".into()))
        );
        assert_eq!(
            summarize(&leaky),
            Err(SummaryError::Undeclared("token".into()))
        );
    }

    #[test]
    fn summaries_keep_values_mask_secrets_and_drop_ignored_fields() {
        let s = summarize(&sample()).unwrap();
        assert_eq!(s["email"], "a@example.com");
        assert_eq!(s["password"], MASK);
        assert!(s.get("internal_note").is_none());
        assert!(!s.to_string().contains("horse"));
    }

    #[test]
    fn diffs_show_old_and_new_values_and_only_that_a_secret_changed() {
        let old = sample();
        let mut new = sample();
        new.email = "b@example.com".into();
        new.password = "another long passphrase".into();
        new.internal_note = "changed".into();
        let d = diff(&old, &new).unwrap();
        assert_eq!(d["email"]["old"], "a@example.com");
        assert_eq!(d["email"]["new"], "b@example.com");
        assert_eq!(d["password"], MASK);
        assert!(d.get("internal_note").is_none());
        assert!(d.get("display_name").is_none());
        let text = d.to_string();
        assert!(!text.contains("horse") && !text.contains("passphrase"));
    }

    #[test]
    fn action_names_are_dotted_lowercase() {
        for ok in ["user.sign_in", "host.key_created", "audit.export", "a.b.c2"] {
            assert!(Action::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "user",
            "User.sign_in",
            "user..x",
            ".x",
            "x.",
            "user.sign-in",
            "a.1b",
            "",
        ] {
            assert!(Action::parse(bad).is_none(), "{bad}");
        }
    }
}
