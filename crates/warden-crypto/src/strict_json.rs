//! JSON read strictly: a document that names one member twice in any object is refused.
//! `serde_json` keeps the last of repeated members, so a signed document could carry one
//! value for a reader that keeps the first and another for us. Signed inputs (licences) are
//! read only through here.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A JSON value with no repeated member in any object.
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value without repeated members")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if members.insert(key, value).is_some() {
                return Err(de::Error::custom("a member is repeated"));
            }
        }
        Ok(Value::Object(members))
    }
}

/// Parses a JSON object, refusing repeated members at any depth.
pub fn object(bytes: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Strict>(bytes) {
        Ok(Strict(Value::Object(map))) => Some(map),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_members_are_refused_at_any_depth() {
        assert!(object(br#"{"a": 1, "b": [1, {"c": null}], "d": {"e": "x"}}"#).is_some());
        assert!(object(br#"{"exp": 1, "exp": 2}"#).is_none());
        assert!(object(br#"{"a": {"f": 1, "f": 1}}"#).is_none());
        assert!(object(br#"{"a": [{"f": 1, "f": 2}]}"#).is_none());
        // Escapes that spell the same name are the same member.
        assert!(object(br#"{"exp": 1, "\u0065xp": 2}"#).is_none());
        assert!(object(b"[1]").is_none());
        assert!(object(b"{").is_none());
        let parsed = object(br#"{"n": 1.5, "m": -3, "t": true}"#).unwrap();
        assert_eq!(
            Value::Object(parsed),
            serde_json::json!({"n": 1.5, "m": -3, "t": true})
        );
    }
}
