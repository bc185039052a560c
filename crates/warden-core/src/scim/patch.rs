//! PATCH (RFC 7644 §3.5.2) applied to a resource's folded JSON: the result is then read and
//! checked exactly like a PUT body, so a PATCH can produce nothing a PUT could not.

use serde_json::{Map, Value};
use warden_domain::scim::filter::{CompValue, CompareOp, Filter, PatchPath, parse_path};

use super::model::fold_keys;
use crate::{Code, CoreError, CoreResult};

/// The most operations one PATCH may carry.
pub const MAX_OPERATIONS: usize = 100;

/// What PATCH needs to know of a resource type.
#[derive(Debug)]
pub struct Shape {
    /// Its core schema URN.
    pub uri: &'static str,
    /// Attributes (folded) that hold several values.
    pub multi: &'static [&'static str],
    /// Attributes (folded) that are objects of sub-attributes.
    pub complex: &'static [&'static str],
    /// Attributes (folded) no client may change.
    pub read_only: &'static [&'static str],
    /// Every writable attribute Warden keeps (folded); others are ignored.
    pub known: &'static [&'static str],
}

/// Users.
pub const USER: Shape = Shape {
    uri: super::model::USER_SCHEMA,
    multi: &["emails"],
    complex: &["name"],
    read_only: &["id", "meta", "groups", "schemas"],
    known: &[
        "username",
        "externalid",
        "displayname",
        "name",
        "emails",
        "active",
    ],
};

/// Groups.
pub const GROUP: Shape = Shape {
    uri: super::model::GROUP_SCHEMA,
    multi: &["members"],
    complex: &[],
    read_only: &["id", "meta", "schemas"],
    known: &["displayname", "externalid", "members"],
};

fn err(code: Code, note: impl Into<String>) -> CoreError {
    CoreError::noted(code, "Operations", note.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Add,
    Replace,
    Remove,
}

/// Applies a PatchOp body to `doc` (a folded object).
pub fn apply(doc: &mut Map<String, Value>, shape: &Shape, body: Value) -> CoreResult<()> {
    let body = fold_keys(body);
    let schemas_ok = body
        .get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter().any(|u| {
                u.as_str()
                    .is_some_and(|u| u.eq_ignore_ascii_case(super::model::PATCH_SCHEMA))
            })
        });
    if !schemas_ok {
        return Err(err(
            Code::ScimInvalidSyntax,
            format!("schemas must name {}", super::model::PATCH_SCHEMA),
        ));
    }
    let ops = body
        .get("operations")
        .and_then(Value::as_array)
        .filter(|o| !o.is_empty())
        .ok_or_else(|| {
            err(
                Code::ScimInvalidSyntax,
                "Operations must be a non-empty array",
            )
        })?;
    if ops.len() > MAX_OPERATIONS {
        return Err(err(
            Code::ScimInvalidSyntax,
            format!("at most {MAX_OPERATIONS} operations per request"),
        ));
    }
    for op in ops {
        let kind = match op
            .get("op")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("add") => Kind::Add,
            Some("replace") => Kind::Replace,
            Some("remove") => Kind::Remove,
            _ => {
                return Err(err(
                    Code::ScimInvalidSyntax,
                    "each operation's op must be add, replace or remove",
                ));
            }
        };
        let value = op.get("value").cloned();
        match op.get("path") {
            None | Some(Value::Null) => {
                if kind == Kind::Remove {
                    return Err(err(Code::ScimNoTarget, "remove needs a path"));
                }
                let Some(Value::Object(values)) = value else {
                    return Err(err(
                        Code::ScimInvalidValue,
                        "without a path, value must be an object of attributes",
                    ));
                };
                for (key, v) in values {
                    let Some(path) = strip_uri(&key, shape)? else {
                        continue;
                    };
                    let path = parse_path(&path).map_err(|e| err(Code::ScimInvalidPath, e.0))?;
                    apply_one(doc, shape, kind, &path, Some(v))?;
                }
            }
            Some(Value::String(p)) => {
                let path = parse_path(p).map_err(|e| err(Code::ScimInvalidPath, e.0))?;
                if kind != Kind::Remove && value.is_none() {
                    return Err(err(Code::ScimInvalidValue, "add and replace need a value"));
                }
                apply_one(doc, shape, kind, &path, value)?;
            }
            Some(_) => return Err(err(Code::ScimInvalidPath, "path must be a string")),
        }
    }
    Ok(())
}

/// The attribute path of a key in a path-less value (`urn:…:User:userName` → `userName`);
/// `None` for another schema's attributes (extensions Warden does not keep).
fn strip_uri(key: &str, shape: &Shape) -> CoreResult<Option<String>> {
    let uri = shape.uri.to_ascii_lowercase();
    if let Some(rest) = key.strip_prefix(&uri).and_then(|r| r.strip_prefix(':')) {
        return Ok(Some(rest.to_owned()));
    }
    if key.starts_with("urn:") {
        return Ok(None);
    }
    Ok(Some(key.to_owned()))
}

fn apply_one(
    doc: &mut Map<String, Value>,
    shape: &Shape,
    kind: Kind,
    path: &PatchPath,
    value: Option<Value>,
) -> CoreResult<()> {
    if let Some(uri) = &path.attr.uri
        && !uri.eq_ignore_ascii_case(shape.uri)
    {
        // Another schema's attribute (an extension Warden does not keep).
        return Ok(());
    }
    let name = path.attr.name.to_ascii_lowercase();
    if shape.read_only.contains(&name.as_str()) {
        return Err(err(
            Code::ScimMutability,
            format!("{} is read-only", path.attr.name),
        ));
    }
    if !shape.known.contains(&name.as_str()) {
        return Ok(());
    }
    let value = value.map(fold_keys);
    let multi = shape.multi.contains(&name.as_str());
    let sub = path
        .attr
        .sub
        .as_deref()
        .or(path.sub.as_deref())
        .map(str::to_ascii_lowercase);
    if let Some(filter) = &path.filter {
        if !multi {
            return Err(err(
                Code::ScimInvalidPath,
                format!("{} does not hold several values", path.attr.name),
            ));
        }
        return apply_filtered(doc, &name, kind, filter, sub.as_deref(), value);
    }
    match (sub, multi) {
        (Some(_), true) => Err(err(
            Code::ScimInvalidPath,
            format!(
                "name one value of {} with a filter: {}[…]",
                path.attr.name, path.attr.name
            ),
        )),
        (Some(sub), false) => {
            if !shape.complex.contains(&name.as_str()) {
                return Err(err(
                    Code::ScimInvalidPath,
                    format!("{} has no sub-attributes", path.attr.name),
                ));
            }
            let target = doc.entry(name).or_insert_with(|| Value::Object(Map::new()));
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let Some(obj) = target.as_object_mut() else {
                return Ok(());
            };
            match (kind, value) {
                (Kind::Remove, _) => {
                    obj.remove(&sub);
                }
                (_, Some(v)) => {
                    obj.insert(sub, v);
                }
                (_, None) => {}
            }
            Ok(())
        }
        (None, _) => {
            match (kind, value) {
                (Kind::Remove, _) => {
                    doc.remove(&name);
                }
                (Kind::Add, Some(v)) if multi => {
                    let list = doc.entry(name).or_insert_with(|| Value::Array(Vec::new()));
                    if !list.is_array() {
                        *list = Value::Array(Vec::new());
                    }
                    if let Some(items) = list.as_array_mut() {
                        let new = match v {
                            Value::Array(a) => a,
                            v => vec![v],
                        };
                        for item in new {
                            if !items.contains(&item) {
                                items.push(item);
                            }
                        }
                    }
                }
                (_, Some(Value::Object(v))) if shape.complex.contains(&name.as_str()) => {
                    let target = doc.entry(name).or_insert_with(|| Value::Object(Map::new()));
                    match target.as_object_mut() {
                        Some(obj) if kind == Kind::Add || kind == Kind::Replace => {
                            obj.extend(v);
                        }
                        _ => *target = Value::Object(v),
                    }
                }
                (_, Some(v)) => {
                    doc.insert(name, v);
                }
                (_, None) => {}
            }
            Ok(())
        }
    }
}

fn apply_filtered(
    doc: &mut Map<String, Value>,
    name: &str,
    kind: Kind,
    filter: &Filter,
    sub: Option<&str>,
    value: Option<Value>,
) -> CoreResult<()> {
    let list = doc
        .entry(name.to_owned())
        .or_insert_with(|| Value::Array(Vec::new()));
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    let Some(items) = list.as_array_mut() else {
        return Ok(());
    };
    let hits: Vec<usize> = (0..items.len())
        .filter(|&i| matches(filter, &items[i]))
        .collect();
    if hits.is_empty() {
        // `emails[type eq "work"].value` on a user with no work email adds one (what
        // directories such as Entra ID expect); any other filter that matches nothing is an
        // error.
        if let (
            Kind::Add | Kind::Replace,
            Some(sub),
            Some(v),
            Filter::Compare(a, CompareOp::Eq, CompValue::String(s)),
        ) = (kind, sub, value, filter)
            && a.sub.is_none()
        {
            let mut o = Map::new();
            o.insert(a.name.to_ascii_lowercase(), Value::String(s.clone()));
            o.insert(sub.to_owned(), v);
            items.push(Value::Object(o));
            return Ok(());
        }
        return Err(err(
            Code::ScimNoTarget,
            "the path's filter matched no value",
        ));
    }
    match kind {
        Kind::Remove => {
            if let Some(sub) = sub {
                for &i in &hits {
                    if let Some(o) = items[i].as_object_mut() {
                        o.remove(sub);
                    }
                }
            } else {
                let mut i = 0;
                items.retain(|_| {
                    let keep = !hits.contains(&i);
                    i += 1;
                    keep
                });
            }
        }
        Kind::Add | Kind::Replace => {
            let Some(v) = value else { return Ok(()) };
            for &i in &hits {
                match (sub, &v, items[i].as_object_mut()) {
                    (Some(sub), v, Some(o)) => {
                        o.insert(sub.to_owned(), v.clone());
                    }
                    (None, Value::Object(new), Some(o)) => {
                        o.extend(new.clone());
                    }
                    (None, v, _) => items[i] = v.clone(),
                    (Some(_), _, None) => {}
                }
            }
        }
    }
    Ok(())
}

/// Whether one value of a multi-valued attribute matches a filter on its sub-attributes
/// (compared without case).
fn matches(f: &Filter, item: &Value) -> bool {
    match f {
        Filter::And(a, b) => matches(a, item) && matches(b, item),
        Filter::Or(a, b) => matches(a, item) || matches(b, item),
        Filter::Not(a) => !matches(a, item),
        Filter::ValuePath(..) => false,
        Filter::Present(a) => item
            .get(a.name.to_ascii_lowercase())
            .is_some_and(|v| !v.is_null()),
        Filter::Compare(a, op, want) => {
            let Some(have) = item.get(a.name.to_ascii_lowercase()) else {
                return false;
            };
            let (have, want) = match (have, want) {
                (Value::String(h), CompValue::String(w)) => (h.to_lowercase(), w.to_lowercase()),
                (Value::Bool(h), CompValue::Bool(w)) => {
                    return match op {
                        CompareOp::Eq => h == w,
                        CompareOp::Ne => h != w,
                        _ => false,
                    };
                }
                _ => return false,
            };
            match op {
                CompareOp::Eq => have == want,
                CompareOp::Ne => have != want,
                CompareOp::Co => have.contains(&want),
                CompareOp::Sw => have.starts_with(&want),
                CompareOp::Ew => have.ends_with(&want),
                CompareOp::Gt => have > want,
                CompareOp::Ge => have >= want,
                CompareOp::Lt => have < want,
                CompareOp::Le => have <= want,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Map<String, Value> {
        let Value::Object(m) = fold_keys(json!({
            "userName": "a",
            "emails": [{"value": "a@x.com", "type": "work", "primary": true}],
            "name": {"givenName": "A"},
        })) else {
            unreachable!()
        };
        m
    }

    fn patch(ops: Value) -> Value {
        json!({"schemas": [super::super::model::PATCH_SCHEMA], "Operations": ops})
    }

    #[test]
    fn read_only_attributes_cannot_be_patched() {
        for path in ["id", "meta", "meta.version", "ID"] {
            let e = apply(
                &mut doc(),
                &USER,
                patch(json!([{"op": "replace", "path": path, "value": "x"}])),
            )
            .unwrap_err();
            assert_eq!(e.code, Code::ScimMutability, "{path}");
        }
        let e = apply(
            &mut doc(),
            &USER,
            patch(json!([{"op": "replace", "value": {"id": "x"}}])),
        )
        .unwrap_err();
        assert_eq!(e.code, Code::ScimMutability);
    }

    #[test]
    fn entra_style_operations() {
        let mut d = doc();
        apply(
            &mut d,
            &USER,
            patch(json!([
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "b@x.com"},
                {"op": "Add", "path": "emails[type eq \"home\"].value", "value": "h@x.com"},
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "replace", "value": {"name.familyName": "B", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "x"}},
            ])),
        )
        .unwrap();
        let v = Value::Object(d);
        assert_eq!(v["emails"][0]["value"], "b@x.com");
        assert_eq!(v["emails"][1]["value"], "h@x.com");
        assert_eq!(v["name"]["familyname"], "B");
        assert_eq!(v["active"], "False");
    }

    #[test]
    fn a_filter_matching_nothing_is_no_target() {
        let e = apply(
            &mut doc(),
            &USER,
            patch(json!([{"op": "remove", "path": "emails[value eq \"zz@x.com\"]"}])),
        )
        .unwrap_err();
        assert_eq!(e.code, Code::ScimNoTarget);
        let e = apply(&mut doc(), &USER, json!({"Operations": []})).unwrap_err();
        assert_eq!(e.code, Code::ScimInvalidSyntax);
    }
}
