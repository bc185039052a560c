//! The filters a client may put on audit queries and exports, parsed strictly: an unknown
//! parameter or a malformed value is a 400, never silently ignored.

use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::IntoParams;
use warden_domain::audit::{ActorKind, Outcome};
use warden_store::audit::Filter;

/// Default page size.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest page size; larger requests are capped to it.
pub const MAX_LIMIT: i64 = 500;

/// Query parameters of `/api/v1/audit/events` and `/api/v1/audit/export.csv`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// `user`, `host`, `api_key` or `system`.
    #[param(inline, value_type = Option<ActorKindName>)]
    pub actor_kind: Option<String>,
    /// The actor's id.
    pub actor_id: Option<String>,
    /// Actions starting with this, e.g. `user.` or `host.key`.
    pub action: Option<String>,
    /// Kind of resource.
    pub resource_type: Option<String>,
    /// Resource id.
    pub resource_id: Option<String>,
    /// Workspace id.
    pub workspace_id: Option<String>,
    /// `success`, `denied` or `failed`.
    #[param(inline, value_type = Option<OutcomeName>)]
    pub outcome: Option<String>,
    /// Events at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Events before this time (RFC 3339).
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size (default 50); larger than 500 is answered with 500.
    #[param(minimum = 1)]
    pub limit: Option<i64>,
}

/// The kinds of audit actor (for the OpenAPI document).
#[derive(Debug, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum ActorKindName {
    User,
    Host,
    ApiKey,
    System,
}

/// Audit outcomes (for the OpenAPI document).
#[derive(Debug, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum OutcomeName {
    Success,
    Denied,
    Failed,
}

/// Why a query was refused; each names the parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// Bad `actor_kind`.
    #[error("actor_kind must be one of user, host, api_key, system")]
    ActorKind,
    /// Bad `outcome`.
    #[error("outcome must be one of success, denied, failed")]
    Outcome,
    /// Bad `action`.
    #[error("action must be a prefix of a dotted action name (a-z, 0-9, _ and .)")]
    Action,
    /// Bad `since` or `until`.
    #[error("since and until must be RFC 3339 times, e.g. 2026-11-23T10:00:00Z")]
    Time,
    /// Bad `cursor`.
    #[error("cursor must be the next_cursor of a previous page")]
    Cursor,
    /// Bad `limit`.
    #[error("limit must be a positive number")]
    Limit,
    /// A text parameter is too long.
    #[error("filter values are at most 200 characters")]
    TooLong,
}

/// A parsed query: the filter, where the page starts and how long it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// What must match.
    pub filter: Filter,
    /// Events older than this sequence number.
    pub before: Option<i64>,
    /// Page size, capped.
    pub limit: i64,
}

fn time_us(text: &Option<String>) -> Result<Option<i64>, FilterError> {
    text.as_deref()
        .map(|t| {
            let at = OffsetDateTime::parse(t, &Rfc3339).map_err(|_| FilterError::Time)?;
            i64::try_from(at.unix_timestamp_nanos() / 1_000).map_err(|_| FilterError::Time)
        })
        .transpose()
}

fn bounded(value: &Option<String>) -> Result<Option<String>, FilterError> {
    match value {
        Some(v) if v.chars().count() > 200 => Err(FilterError::TooLong),
        other => Ok(other.clone()),
    }
}

impl AuditQuery {
    /// Checks every parameter.
    pub fn parse(&self) -> Result<Parsed, FilterError> {
        if let Some(kind) = &self.actor_kind {
            ActorKind::parse(kind).ok_or(FilterError::ActorKind)?;
        }
        if let Some(outcome) = &self.outcome {
            Outcome::parse(outcome).ok_or(FilterError::Outcome)?;
        }
        if let Some(prefix) = &self.action {
            let ok = !prefix.is_empty()
                && prefix.len() <= 64
                && prefix.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.'
                });
            if !ok {
                return Err(FilterError::Action);
            }
        }
        let before = self
            .cursor
            .as_deref()
            .map(|c| {
                c.parse::<i64>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or(FilterError::Cursor)
            })
            .transpose()?;
        let limit = match self.limit {
            None => DEFAULT_LIMIT,
            Some(n) if n <= 0 => return Err(FilterError::Limit),
            Some(n) => n.min(MAX_LIMIT),
        };
        Ok(Parsed {
            filter: Filter {
                actor_kind: self.actor_kind.clone(),
                actor_id: bounded(&self.actor_id)?,
                action_prefix: self.action.clone(),
                resource_type: bounded(&self.resource_type)?,
                resource_id: bounded(&self.resource_id)?,
                workspace_id: bounded(&self.workspace_id)?,
                outcome: self.outcome.clone(),
                since_us: time_us(&self.since)?,
                until_us: time_us(&self.until)?,
            },
            before,
            limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_filters_are_refused_by_name() {
        let cases = [
            (
                AuditQuery {
                    since: Some("yesterday".into()),
                    ..Default::default()
                },
                FilterError::Time,
            ),
            (
                AuditQuery {
                    until: Some("2026-13-01T00:00:00Z".into()),
                    ..Default::default()
                },
                FilterError::Time,
            ),
            (
                AuditQuery {
                    actor_kind: Some("robot".into()),
                    ..Default::default()
                },
                FilterError::ActorKind,
            ),
            (
                AuditQuery {
                    outcome: Some("ok".into()),
                    ..Default::default()
                },
                FilterError::Outcome,
            ),
            (
                AuditQuery {
                    action: Some("user%".into()),
                    ..Default::default()
                },
                FilterError::Action,
            ),
            (
                AuditQuery {
                    cursor: Some("abc".into()),
                    ..Default::default()
                },
                FilterError::Cursor,
            ),
            (
                AuditQuery {
                    limit: Some(0),
                    ..Default::default()
                },
                FilterError::Limit,
            ),
            (
                AuditQuery {
                    actor_id: Some("x".repeat(201)),
                    ..Default::default()
                },
                FilterError::TooLong,
            ),
        ];
        for (query, expected) in cases {
            assert_eq!(query.parse().unwrap_err(), expected, "{query:?}");
        }
    }

    #[test]
    fn huge_page_sizes_are_capped_and_times_become_microseconds() {
        let parsed = AuditQuery {
            limit: Some(1_000_000),
            since: Some("2026-11-23T10:00:00Z".into()),
            cursor: Some("42".into()),
            ..Default::default()
        }
        .parse()
        .unwrap();
        assert_eq!(parsed.limit, MAX_LIMIT);
        assert_eq!(parsed.before, Some(42));
        assert_eq!(parsed.filter.since_us, Some(1_795_428_000_000_000));
        assert_eq!(AuditQuery::default().parse().unwrap().limit, DEFAULT_LIMIT);
    }

    #[test]
    fn unknown_parameters_are_refused() {
        let parsed: Result<AuditQuery, _> =
            serde_json::from_value(serde_json::json!({"actor": "x"}));
        assert!(parsed.is_err());
    }
}
