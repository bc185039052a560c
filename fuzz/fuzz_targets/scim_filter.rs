//! SCIM filters and PATCH paths (the grammar of RFC 7644 §3.4.2.2, and its translation for
//! the store). Invariants: any text parses or is refused (no panic, no stack overflow);
//! what parses nests no deeper than the bound; the translation for Users and for Groups either
//! succeeds or refuses with `invalidFilter`; a PATCH path's names are attribute names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_core::Code;
use warden_core::scim::search::{Resource, translate};
use warden_domain::scim::filter::{Filter, MAX_DEPTH, parse_filter, parse_path};

fn depth(f: &Filter) -> usize {
    match f {
        Filter::And(a, b) | Filter::Or(a, b) => depth(a).max(depth(b)),
        Filter::Not(a) | Filter::ValuePath(_, a) => 1 + depth(a),
        Filter::Present(_) | Filter::Compare(..) => 0,
    }
}

fn name_ok(s: &str) -> bool {
    s == "$ref"
        || (s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
}

fuzz_target!(|text: &str| {
    if let Ok(f) = parse_filter(text) {
        assert!(depth(&f) <= MAX_DEPTH, "{text:?}");
    }
    for over in [Resource::Users, Resource::Groups] {
        if let Err(e) = translate(text, over) {
            assert_eq!(e.code, Code::ScimInvalidFilter, "{text:?}");
        }
    }
    if let Ok(p) = parse_path(text) {
        assert!(name_ok(&p.attr.name), "{text:?}");
        assert!(p.attr.sub.as_deref().is_none_or(name_ok), "{text:?}");
        assert!(p.sub.as_deref().is_none_or(name_ok), "{text:?}");
    }
});
