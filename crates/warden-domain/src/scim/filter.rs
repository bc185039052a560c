//! SCIM filters (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2), parsed with `winnow` into a
//! tree that the use cases translate for the store. Nothing here evaluates a filter.
//!
//! ```text
//! FILTER    = attrExp / logExp / valuePath / *1"not" "(" FILTER ")"
//! valuePath = attrPath "[" valFilter "]"
//! attrExp   = (attrPath SP "pr") / (attrPath SP compareOp SP compValue)
//! attrPath  = [URI ":"] ATTRNAME *1subAttr
//! PATH      = attrPath / valuePath [subAttr]
//! ```
//!
//! `and` binds tighter than `or`; operators and the words `and`, `or`, `not`, `true`,
//! `false`, `null` are case-insensitive; strings and numbers are JSON. A filter is at most
//! [`MAX_LEN`] bytes and nests at most [`MAX_DEPTH`] levels, so hostile input costs little.

use winnow::Parser;
use winnow::ascii::Caseless;
use winnow::combinator::{alt, delimited, opt, preceded};
use winnow::error::{ContextError, ErrMode};
use winnow::token::{literal, take_while};

/// The longest filter or path accepted (bytes).
pub const MAX_LEN: usize = 4096;
/// The deepest nesting of parentheses and brackets accepted.
pub const MAX_DEPTH: usize = 16;

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Both hold.
    And(Box<Filter>, Box<Filter>),
    /// Either holds.
    Or(Box<Filter>, Box<Filter>),
    /// It does not hold.
    Not(Box<Filter>),
    /// The attribute has a value (`pr`).
    Present(AttrPath),
    /// The attribute compares to a value.
    Compare(AttrPath, CompareOp, CompValue),
    /// Some value of a multi-valued attribute matches the inner filter (`emails[type eq "work"]`).
    ValuePath(AttrPath, Box<Filter>),
}

/// An attribute, with its schema URI when the client wrote one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URI prefix (`urn:ietf:params:scim:schemas:core:2.0:User`), if written.
    pub uri: Option<String>,
    /// The attribute's name, as written.
    pub name: String,
    /// The sub-attribute's name, as written.
    pub sub: Option<String>,
}

impl AttrPath {
    /// `name` or `name.sub`, lower-cased: attribute names are case-insensitive.
    pub fn key(&self) -> String {
        match &self.sub {
            Some(s) => format!("{}.{}", self.name, s).to_ascii_lowercase(),
            None => self.name.to_ascii_lowercase(),
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `eq`
    Eq,
    /// `ne`
    Ne,
    /// `co`: contains.
    Co,
    /// `sw`: starts with.
    Sw,
    /// `ew`: ends with.
    Ew,
    /// `gt`
    Gt,
    /// `ge`
    Ge,
    /// `lt`
    Lt,
    /// `le`
    Le,
}

/// A comparison's value.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A JSON number.
    Number(serde_json::Number),
    /// A JSON string, unescaped.
    String(String),
}

/// A PATCH operation's target: an attribute, or the values of a multi-valued attribute that
/// match a filter, optionally one sub-attribute of them (`emails[type eq "work"].value`).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute.
    pub attr: AttrPath,
    /// Which of its values.
    pub filter: Option<Filter>,
    /// The sub-attribute after the brackets.
    pub sub: Option<String>,
}

/// Why a filter or path was refused (the detail a client is told).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub &'static str);

/// Parses a filter.
pub fn parse_filter(text: &str) -> Result<Filter, FilterError> {
    check_bounds(text)?;
    filter
        .parse(text.trim())
        .map_err(|_| FilterError("the filter is not valid SCIM filter syntax"))
}

/// Parses a PATCH path.
pub fn parse_path(text: &str) -> Result<PatchPath, FilterError> {
    check_bounds(text)?;
    patch_path
        .parse(text.trim())
        .map_err(|_| FilterError("the path is not a valid SCIM attribute path"))
}

fn check_bounds(text: &str) -> Result<(), FilterError> {
    if text.len() > MAX_LEN {
        return Err(FilterError("the filter is too long"));
    }
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'(' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b')' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if max > MAX_DEPTH {
        return Err(FilterError("the filter nests too deeply"));
    }
    Ok(())
}

type PResult<T> = winnow::Result<T, ErrMode<ContextError>>;

fn sp(i: &mut &str) -> PResult<()> {
    take_while(1.., [' ', '\t', '\n', '\r'])
        .void()
        .parse_next(i)
}

fn osp(i: &mut &str) -> PResult<()> {
    take_while(0.., [' ', '\t', '\n', '\r'])
        .void()
        .parse_next(i)
}

/// `or` terms.
fn filter(i: &mut &str) -> PResult<Filter> {
    let mut left = and_term(i)?;
    while let Some(right) =
        opt(preceded((sp, literal(Caseless("or")), sp), and_term)).parse_next(i)?
    {
        left = Filter::Or(Box::new(left), Box::new(right));
    }
    Ok(left)
}

/// `and` factors.
fn and_term(i: &mut &str) -> PResult<Filter> {
    let mut left = factor(i)?;
    while let Some(right) =
        opt(preceded((sp, literal(Caseless("and")), sp), factor)).parse_next(i)?
    {
        left = Filter::And(Box::new(left), Box::new(right));
    }
    Ok(left)
}

fn factor(i: &mut &str) -> PResult<Filter> {
    alt((
        preceded((literal(Caseless("not")), osp), group).map(|f| Filter::Not(Box::new(f))),
        group,
        value_path,
        attr_exp,
    ))
    .parse_next(i)
}

fn group(i: &mut &str) -> PResult<Filter> {
    delimited(('(', osp), filter, (osp, ')')).parse_next(i)
}

fn value_path(i: &mut &str) -> PResult<Filter> {
    let attr = attr_path(i)?;
    let inner = delimited(('[', osp), filter, (osp, ']')).parse_next(i)?;
    Ok(Filter::ValuePath(attr, Box::new(inner)))
}

fn attr_exp(i: &mut &str) -> PResult<Filter> {
    let attr = attr_path(i)?;
    sp(i)?;
    let op = take_while(2, |c: char| c.is_ascii_alphabetic()).parse_next(i)?;
    let op = match op.to_ascii_lowercase().as_str() {
        "pr" => return Ok(Filter::Present(attr)),
        "eq" => CompareOp::Eq,
        "ne" => CompareOp::Ne,
        "co" => CompareOp::Co,
        "sw" => CompareOp::Sw,
        "ew" => CompareOp::Ew,
        "gt" => CompareOp::Gt,
        "ge" => CompareOp::Ge,
        "lt" => CompareOp::Lt,
        "le" => CompareOp::Le,
        _ => return Err(ErrMode::Backtrack(ContextError::new())),
    };
    sp(i)?;
    let value = comp_value(i)?;
    Ok(Filter::Compare(attr, op, value))
}

fn comp_value(i: &mut &str) -> PResult<CompValue> {
    alt((
        literal(Caseless("true")).value(CompValue::Bool(true)),
        literal(Caseless("false")).value(CompValue::Bool(false)),
        literal(Caseless("null")).value(CompValue::Null),
        json_string.map(CompValue::String),
        json_number.map(CompValue::Number),
    ))
    .parse_next(i)
}

/// A JSON string: the quoted slice up to the first unescaped quote, decoded by `serde_json`.
fn json_string(i: &mut &str) -> PResult<String> {
    let start = *i;
    '"'.parse_next(i)?;
    let mut escaped = false;
    let end = i
        .char_indices()
        .find(|&(_, c)| {
            let close = !escaped && c == '"';
            escaped = !escaped && c == '\\';
            close
        })
        .map(|(n, _)| n)
        .ok_or_else(|| ErrMode::Backtrack(ContextError::new()))?;
    let raw = &start[..end + 2];
    let value =
        serde_json::from_str::<String>(raw).map_err(|_| ErrMode::Cut(ContextError::new()))?;
    *i = &i[end + 1..];
    Ok(value)
}

fn json_number(i: &mut &str) -> PResult<serde_json::Number> {
    let raw = take_while(1.., |c: char| {
        c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E')
    })
    .parse_next(i)?;
    serde_json::from_str(raw).map_err(|_| ErrMode::Cut(ContextError::new()))
}

/// `[URI ":"] ATTRNAME ["." ATTRNAME]`: the longest run of URI and name characters, split at
/// its last `:` (a URI ends with the schema's name) and then at `.`.
fn attr_path(i: &mut &str) -> PResult<AttrPath> {
    let raw = take_while(1.., |c: char| {
        c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '_' | '-' | '$')
    })
    .parse_next(i)?;
    split_attr_path(raw).ok_or_else(|| ErrMode::Backtrack(ContextError::new()))
}

fn split_attr_path(raw: &str) -> Option<AttrPath> {
    let (uri, rest) = match raw.rfind(':') {
        Some(n) if raw[..n].contains(':') => (Some(raw[..n].to_owned()), &raw[n + 1..]),
        Some(_) => return None,
        None => (None, raw),
    };
    // A URI may hold dots (`core:2.0:User`), so the name is whatever follows its last colon.
    let (name, sub) = match rest.split_once('.') {
        Some((n, s)) => (n, Some(s)),
        None => (rest, None),
    };
    if !attr_name(name) || sub.is_some_and(|s| !attr_name(s)) {
        return None;
    }
    Some(AttrPath {
        uri,
        name: name.to_owned(),
        sub: sub.map(str::to_owned),
    })
}

/// `ALPHA *(nameChar)`, or `$ref`.
fn attr_name(s: &str) -> bool {
    s == "$ref"
        || (s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
}

fn patch_path(i: &mut &str) -> PResult<PatchPath> {
    let attr = attr_path(i)?;
    let filter = opt(delimited(('[', osp), filter, (osp, ']'))).parse_next(i)?;
    let sub = if filter.is_some() {
        opt(preceded(
            '.',
            take_while(1.., |c: char| {
                c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$')
            }),
        ))
        .parse_next(i)?
        .map(|s: &str| s.to_owned())
    } else {
        None
    };
    if filter.is_some() && attr.sub.is_some() {
        return Err(ErrMode::Backtrack(ContextError::new()));
    }
    if sub.as_deref().is_some_and(|s| !attr_name(s)) {
        return Err(ErrMode::Backtrack(ContextError::new()));
    }
    Ok(PatchPath { attr, filter, sub })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(name: &str, v: &str) -> Filter {
        Filter::Compare(
            AttrPath {
                uri: None,
                name: name.into(),
                sub: None,
            },
            CompareOp::Eq,
            CompValue::String(v.into()),
        )
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let f = parse_filter(r#"a eq "1" or b eq "2" and c eq "3""#).unwrap();
        assert_eq!(
            f,
            Filter::Or(
                Box::new(eq("a", "1")),
                Box::new(Filter::And(Box::new(eq("b", "2")), Box::new(eq("c", "3"))))
            )
        );
    }

    #[test]
    fn words_and_operators_are_case_insensitive() {
        let f = parse_filter(r#"userName EQ "x" AND NOT (active Eq TRUE)"#).unwrap();
        let Filter::And(_, right) = f else { panic!() };
        assert!(matches!(*right, Filter::Not(_)));
    }

    #[test]
    fn an_injection_stays_a_value() {
        // The quotes are a string's: the whole `x" or "1" eq "1` is not a second clause.
        let f = parse_filter(r#"userName eq "x\" or \"1\" eq \"1""#).unwrap();
        assert_eq!(f, eq("userName", r#"x" or "1" eq "1"#));
        // Unquoted, `"1" eq "1"` is not a filter at all: a value is not an attribute.
        assert!(parse_filter(r#"userName eq "x" or "1" eq "1""#).is_err());
    }

    #[test]
    fn uris_value_paths_and_sub_attributes() {
        let f = parse_filter(r#"urn:ietf:params:scim:schemas:core:2.0:User:name.givenName sw "A""#)
            .unwrap();
        let Filter::Compare(path, CompareOp::Sw, _) = f else {
            panic!()
        };
        assert_eq!(
            path.uri.as_deref(),
            Some("urn:ietf:params:scim:schemas:core:2.0:User")
        );
        assert_eq!(path.key(), "name.givenname");
        let f = parse_filter(r#"emails[type eq "work" and value co "@x.com"]"#).unwrap();
        assert!(matches!(f, Filter::ValuePath(..)));
        assert!(parse_filter("meta.lastModified gt 5").is_ok());
        assert!(parse_filter("title pr").is_ok());
    }

    #[test]
    fn malformed_filters_are_refused() {
        for bad in [
            "",
            "userName",
            "userName eq",
            "userName xx \"a\"",
            "userName eq \"unterminated",
            "(userName eq \"a\"",
            "userName eq \"a\" and",
            "1abc eq \"a\"",
            "userName eq \"a\" trailing",
            "a:b eq \"x\"",
        ] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
        let deep = format!("{}a pr{}", "(".repeat(40), ")".repeat(40));
        assert_eq!(
            parse_filter(&deep),
            Err(FilterError("the filter nests too deeply"))
        );
        assert!(parse_filter(&"a".repeat(MAX_LEN + 1)).is_err());
    }

    #[test]
    fn patch_paths() {
        let p = parse_path(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(p.attr.name, "emails");
        assert_eq!(p.sub.as_deref(), Some("value"));
        let p = parse_path(r#"members[value eq "2819c223"]"#).unwrap();
        assert!(p.filter.is_some() && p.sub.is_none());
        let p = parse_path("name.familyName").unwrap();
        assert_eq!(p.attr.key(), "name.familyname");
        assert!(parse_path("name.familyName[value eq \"x\"]").is_err());
        assert!(parse_path("emails[").is_err());
    }
}
