//! The first look at a response, before any signature is checked: it must be well-formed XML
//! with nothing that could make the signed view and the read view differ or make a parser do
//! work it was not asked to — no DOCTYPE (so no entities), no comments (a comment inside a
//! NameID splits its text: `admin@x.com<!---->.evil.com`), no CDATA, no processing
//! instructions — and it must have exactly the shape Warden reads: one `samlp:Response` as the
//! root and exactly one `saml:Assertion` in it. Every signature-wrapping attack (XSW 1–8)
//! adds a second Response or Assertion, so none gets as far as the signature check.

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use crate::SamlError;

/// The SAML protocol namespace.
pub(crate) const PROTOCOL_NS: &[u8] = b"urn:oasis:names:tc:SAML:2.0:protocol";
/// The SAML assertion namespace.
pub(crate) const ASSERTION_NS: &[u8] = b"urn:oasis:names:tc:SAML:2.0:assertion";
/// The largest response read (bytes of XML).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// The deepest nesting read.
const MAX_DEPTH: usize = 48;

/// Checks `xml` as described in the module's documentation.
pub fn screen(xml: &str) -> Result<(), SamlError> {
    if xml.len() > MAX_RESPONSE_BYTES {
        return Err(SamlError::Malformed);
    }
    let mut reader = NsReader::from_str(xml);
    let mut depth = 0usize;
    let mut seen_root = false;
    let mut responses = 0usize;
    let mut assertions = 0usize;
    let mut first = true;
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|_| SamlError::Malformed)?;
        let in_ns = |want: &[u8]| matches!(&ns, ResolveResult::Bound(n) if n.as_ref() == want);
        match &event {
            Event::Start(e) | Event::Empty(e) => {
                let local = e.local_name();
                let local = local.as_ref();
                if depth == 0 {
                    if seen_root || !(in_ns(PROTOCOL_NS) && local == b"Response") {
                        return Err(SamlError::Structure);
                    }
                    seen_root = true;
                }
                if in_ns(PROTOCOL_NS) && local == b"Response" {
                    responses += 1;
                }
                if in_ns(ASSERTION_NS) && local == b"Assertion" {
                    assertions += 1;
                }
                if in_ns(ASSERTION_NS) && local == b"EncryptedAssertion" {
                    return Err(SamlError::Encrypted);
                }
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(SamlError::Malformed);
                    }
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Decl(_) if first => {}
            Event::Text(_) | Event::GeneralRef(_) => {}
            Event::Eof => break,
            Event::Comment(_)
            | Event::CData(_)
            | Event::DocType(_)
            | Event::PI(_)
            | Event::Decl(_) => return Err(SamlError::Forbidden),
        }
        first = false;
    }
    if !seen_root || depth != 0 {
        return Err(SamlError::Malformed);
    }
    if responses != 1 || assertions != 1 {
        return Err(SamlError::Structure);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"<?xml version="1.0"?><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r"><saml:Issuer>i</saml:Issuer><saml:Assertion ID="_a"><saml:Subject><saml:NameID>a&amp;b</saml:NameID></saml:Subject></saml:Assertion></samlp:Response>"#;

    #[test]
    fn a_plain_response_passes() {
        screen(OK).unwrap();
    }

    #[test]
    fn constructs_that_split_or_expand_text_are_refused() {
        for (from, to) in [
            ("a&amp;b", "admin@x.com<!---->.evil.com"),
            ("a&amp;b", "<![CDATA[admin]]>"),
            (
                "<?xml version=\"1.0\"?>",
                "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>",
            ),
            ("a&amp;b", "<?pi x?>"),
        ] {
            let bad = OK.replace(from, to);
            assert!(matches!(screen(&bad), Err(SamlError::Forbidden)), "{bad}");
        }
    }

    #[test]
    fn a_second_assertion_or_response_or_another_root_is_refused() {
        let two = OK.replace(
            "</samlp:Response>",
            "<saml:Assertion ID=\"_b\"/></samlp:Response>",
        );
        let nested = OK.replace("<saml:Issuer>", "<samlp:Response ID=\"_x\"/><saml:Issuer>");
        let root = OK
            .replace("<samlp:Response ", "<saml:Foo ")
            .replace("</samlp:Response>", "</saml:Foo>");
        // The same names in another namespace are not the SAML elements.
        let wrong_ns = OK.replace(
            "urn:oasis:names:tc:SAML:2.0:protocol",
            "urn:example:protocol",
        );
        for bad in [two, nested, root, wrong_ns] {
            assert!(matches!(screen(&bad), Err(SamlError::Structure)), "{bad}");
        }
        let enc = OK.replace(
            "<saml:Assertion ID=\"_a\">",
            "<saml:EncryptedAssertion/><saml:Assertion ID=\"_a\">",
        );
        assert!(matches!(screen(&enc), Err(SamlError::Encrypted)));
        for bad in [
            "",
            "<a",
            &OK[..OK.len() - 3],
            &"x".repeat(MAX_RESPONSE_BYTES + 1),
        ] {
            assert!(screen(bad).is_err(), "{bad}");
        }
    }
}
