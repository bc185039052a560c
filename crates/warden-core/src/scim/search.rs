//! A SCIM filter translated for the store: each attribute a directory may search on maps to
//! one stored field; any other attribute is refused (`invalidFilter`), never ignored.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;
use warden_domain::scim::filter::{AttrPath, CompValue, CompareOp, Filter, parse_filter};
use warden_store::scim::{Field, Op, Pred, Val};

use crate::{Code, CoreError, CoreResult};

/// Which resource a filter searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// Users.
    Users,
    /// Groups.
    Groups,
}

fn bad(note: impl Into<String>) -> CoreError {
    CoreError::noted(Code::ScimInvalidFilter, "filter", note.into())
}

/// Parses `text` and translates it for searching `over`.
pub fn translate(text: &str, over: Resource) -> CoreResult<Pred> {
    let f = parse_filter(text).map_err(|e| bad(e.0))?;
    pred(&f, over)
}

fn field(a: &AttrPath, over: Resource) -> CoreResult<Field> {
    let uri_ok = a.uri.as_deref().is_none_or(|u| {
        u.eq_ignore_ascii_case(match over {
            Resource::Users => super::model::USER_SCHEMA,
            Resource::Groups => super::model::GROUP_SCHEMA,
        })
    });
    let f = match (over, a.key().as_str()) {
        _ if !uri_ok => None,
        (_, "id") => Some(Field::Id),
        (_, "externalid") => Some(Field::ExternalId),
        (_, "displayname") => Some(Field::DisplayName),
        (_, "meta.created") => Some(Field::Created),
        (_, "meta.lastmodified") => Some(Field::LastModified),
        (Resource::Users, "username") => Some(Field::UserName),
        (Resource::Users, "active") => Some(Field::Active),
        (Resource::Users, "emails" | "emails.value") => Some(Field::Email),
        (Resource::Groups, "members" | "members.value") => Some(Field::Member),
        _ => None,
    };
    f.ok_or_else(|| {
        bad(format!(
            "filtering on {} is not supported; {}",
            a.name,
            match over {
                Resource::Users =>
                    "search Users by id, userName, externalId, displayName, active, emails or meta.created/lastModified",
                Resource::Groups =>
                    "search Groups by id, displayName, externalId, members or meta.created/lastModified",
            }
        ))
    })
}

fn op(o: CompareOp) -> Op {
    match o {
        CompareOp::Eq => Op::Eq,
        CompareOp::Ne => Op::Ne,
        CompareOp::Co => Op::Co,
        CompareOp::Sw => Op::Sw,
        CompareOp::Ew => Op::Ew,
        CompareOp::Gt => Op::Gt,
        CompareOp::Ge => Op::Ge,
        CompareOp::Lt => Op::Lt,
        CompareOp::Le => Op::Le,
    }
}

fn pred(f: &Filter, over: Resource) -> CoreResult<Pred> {
    Ok(match f {
        Filter::And(a, b) => Pred::And(Box::new(pred(a, over)?), Box::new(pred(b, over)?)),
        Filter::Or(a, b) => Pred::Or(Box::new(pred(a, over)?), Box::new(pred(b, over)?)),
        Filter::Not(a) => Pred::Not(Box::new(pred(a, over)?)),
        Filter::Present(a) => Pred::Present(field(a, over)?),
        Filter::ValuePath(a, inner) => {
            // `emails[value eq "x"]` and `members[value eq "x"]`: one sub-attribute, `value`.
            let Filter::Compare(sub, o, v) = inner.as_ref() else {
                return Err(bad(
                    "inside brackets, only one comparison on value is supported",
                ));
            };
            if sub.uri.is_some() || sub.sub.is_some() || !sub.name.eq_ignore_ascii_case("value") {
                return Err(bad("inside brackets, only value can be compared"));
            }
            let path = AttrPath {
                uri: a.uri.clone(),
                name: a.name.clone(),
                sub: Some("value".to_owned()),
            };
            pred(&Filter::Compare(path, *o, v.clone()), over)?
        }
        Filter::Compare(a, o, v) => {
            let fld = field(a, over)?;
            let o = op(*o);
            match (fld, v) {
                (Field::Id | Field::Member, CompValue::String(s)) => match (o, s.parse::<Uuid>()) {
                    (Op::Eq, Ok(id)) => Pred::Cmp(fld, Op::Eq, Val::Id(id)),
                    (Op::Eq, Err(_)) => Pred::False,
                    (Op::Ne, Ok(id)) if fld == Field::Id => Pred::Cmp(fld, Op::Ne, Val::Id(id)),
                    (Op::Ne, Err(_)) if fld == Field::Id => Pred::Not(Box::new(Pred::False)),
                    _ => return Err(bad("ids can only be compared with eq or ne")),
                },
                (Field::Active, CompValue::Bool(b)) if matches!(o, Op::Eq | Op::Ne) => {
                    Pred::Cmp(fld, o, Val::Bool(*b))
                }
                (Field::Active, _) => {
                    return Err(bad("active compares with eq or ne to true or false"));
                }
                (Field::Created | Field::LastModified, CompValue::String(s)) => {
                    if matches!(o, Op::Co | Op::Sw | Op::Ew) {
                        return Err(bad("dates compare with eq, ne, gt, ge, lt or le"));
                    }
                    let t = OffsetDateTime::parse(s, &Rfc3339)
                        .map_err(|_| bad("dates must be RFC 3339 (2026-01-31T12:00:00Z)"))?;
                    let us = i64::try_from(t.unix_timestamp_nanos() / 1000)
                        .map_err(|_| bad("that date is out of range"))?;
                    Pred::Cmp(fld, o, Val::Int(us))
                }
                (_, CompValue::String(s)) => Pred::Cmp(fld, o, Val::Text(s.clone())),
                (_, CompValue::Null) if o == Op::Eq => Pred::Not(Box::new(Pred::Present(fld))),
                (_, CompValue::Null) if o == Op::Ne => Pred::Present(fld),
                _ => return Err(bad(format!("{} compares with a string", a.name))),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_attributes_and_injections_are_refused() {
        assert!(translate(r#"password eq "x""#, Resource::Users).is_err());
        assert!(translate(r#"userName eq "x" or "1" eq "1""#, Resource::Users).is_err());
        assert!(translate(r#"members eq "x""#, Resource::Users).is_err());
        assert!(translate(r#"active eq "yes""#, Resource::Users).is_err());
        assert_eq!(
            translate(r#"id eq "not-a-uuid""#, Resource::Users).unwrap(),
            Pred::False
        );
        assert!(translate(r#"members[value eq "x"]"#, Resource::Groups).is_ok());
        assert!(
            translate(
                r#"meta.lastModified gt "2026-01-01T00:00:00Z""#,
                Resource::Groups
            )
            .is_ok()
        );
    }
}
