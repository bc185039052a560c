//! SAML 2.0 for a service provider, and nothing of Warden's rules: reading an identity
//! provider's metadata, the `AuthnRequest` sent by the HTTP-Redirect binding, the SP's own
//! metadata, and the verification of a `Response` that comes back by HTTP-POST.
//!
//! Verification order: [`screen`] first (no DOCTYPE, comments, CDATA or processing
//! instructions; exactly one Response holding exactly one Assertion), then every XML
//! signature in the document is checked against the IdP's certificates with SHA-256 or
//! better (samael on xmlsec1) and whatever no signature covers is cut away before anything is
//! read; then the element the provider is configured to sign must carry a signature over its
//! own id; then issuer, status, destination, recipient, audience, `InResponseTo`, and the
//! times (two minutes of clock skew at most). The caller keeps assertion ids until they expire
//! (replays) and request ids until they are used (single use).
//!
//! Signature checks need libxml2 and xmlsec1; they are built with the `xmlsec` feature.
//! Without it, [`read_metadata`], [`authn_request_url`] and [`verify`] answer
//! [`SamlError::NotBuilt`].

mod screen;
#[cfg(feature = "xmlsec")]
mod sp;

pub use screen::{MAX_RESPONSE_BYTES, screen};

/// Clock skew allowed on every time in a response.
pub const CLOCK_SKEW_SECS: i64 = 120;

/// Why a response, metadata or request was refused. [`SamlError::reason`] is a short,
/// stable word for the audit log; nothing here carries a secret or the response's content.
#[derive(Debug, thiserror::Error)]
pub enum SamlError {
    /// Built without the `xmlsec` feature.
    #[error("this build of Warden has no SAML support (build with the `saml` feature)")]
    NotBuilt,
    /// Not base64, not UTF-8, not well-formed XML, too large or too deep.
    #[error("the SAML message is malformed")]
    Malformed,
    /// A DOCTYPE, comment, CDATA section or processing instruction.
    #[error("the SAML message contains a DOCTYPE, comment, CDATA or processing instruction")]
    Forbidden,
    /// Not exactly one Response holding exactly one Assertion (signature wrapping).
    #[error("the SAML response does not have the expected structure")]
    Structure,
    /// An encrypted assertion (not supported).
    #[error("encrypted assertions are not supported")]
    Encrypted,
    /// A signature is missing, invalid, made with another key, or uses SHA-1 or weaker.
    #[error("the SAML response's signature is missing or invalid")]
    Signature,
    /// The element the provider must sign is not signed.
    #[error("the {0} is not signed")]
    Unsigned(&'static str),
    /// Issued by another entity than the configured IdP.
    #[error("the SAML response comes from another issuer")]
    Issuer,
    /// The IdP reported a failure status.
    #[error("the identity provider reported a failure")]
    Status,
    /// For another service provider (audience) or another endpoint (recipient, destination).
    #[error("the SAML response is meant for another service provider or endpoint")]
    Audience,
    /// Outside its validity window (or issued too long ago).
    #[error("the SAML response has expired or is not valid yet")]
    Time,
    /// Not an answer to the request this sign-in sent.
    #[error("the SAML response answers another request")]
    InResponseTo,
    /// No usable NameID.
    #[error("the SAML assertion names no subject")]
    NoSubject,
    /// IdP metadata that cannot be used.
    #[error("the identity provider's metadata is unusable: {0}")]
    Metadata(&'static str),
}

impl SamlError {
    /// A short word for the audit log.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotBuilt => "saml_not_built",
            Self::Malformed => "malformed",
            Self::Forbidden => "forbidden_construct",
            Self::Structure => "unexpected_structure",
            Self::Encrypted => "encrypted_assertion",
            Self::Signature => "signature_invalid",
            Self::Unsigned(_) => "not_signed",
            Self::Issuer => "issuer_mismatch",
            Self::Status => "idp_refused",
            Self::Audience => "audience_mismatch",
            Self::Time => "expired",
            Self::InResponseTo => "in_response_to_mismatch",
            Self::NoSubject => "no_subject",
            Self::Metadata(_) => "metadata_unusable",
        }
    }
}

/// What Warden uses of an identity provider's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpMetadata {
    /// Its entity id (the issuer of its responses).
    pub entity_id: String,
    /// Its single sign-on endpoint for the HTTP-Redirect binding.
    pub sso_url: String,
    /// How many signing certificates it lists.
    pub certificates: usize,
}

/// This service provider, as one IdP knows it.
#[derive(Debug, Clone, Copy)]
pub struct Sp<'a> {
    /// Its entity id (the audience of responses).
    pub entity_id: &'a str,
    /// Its assertion consumer service URL (the recipient and destination of responses).
    pub acs_url: &'a str,
}

/// Which element the identity provider must sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signed {
    /// The assertion (Okta's and Entra's default).
    Assertion,
    /// The whole response.
    Response,
    /// Either (each signature present must still be valid).
    Either,
}

impl Signed {
    /// From its name: `assertion`, `response` or `either`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "assertion" => Some(Self::Assertion),
            "response" => Some(Self::Response),
            "either" => Some(Self::Either),
            _ => None,
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Assertion => "assertion",
            Self::Response => "response",
            Self::Either => "either",
        }
    }
}

/// What the response must answer.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The id of the request this sign-in sent; `None` for an IdP-initiated sign-in, which
    /// then must not claim to answer any request.
    pub request_id: Option<&'a str>,
    /// The element that must be signed.
    pub signed: Signed,
}

/// A verified assertion.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The IdP's entity id.
    pub issuer: String,
    /// The subject's NameID.
    pub name_id: String,
    /// The assertion's id (kept until `valid_until` to refuse replays).
    pub assertion_id: String,
    /// The latest instant (Unix seconds) at which it could still be accepted, skew included.
    pub valid_until: i64,
    /// Its attributes: name (and friendly name) with their values.
    pub attributes: Vec<Attribute>,
}

/// One attribute of an assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// `Name`.
    pub name: String,
    /// `FriendlyName`, if any.
    pub friendly_name: Option<String>,
    /// Its values.
    pub values: Vec<String>,
}

impl Verified {
    /// The values of the attribute called `name` (by `Name` or `FriendlyName`, exactly).
    pub fn values(&self, name: &str) -> impl Iterator<Item = &str> {
        self.attributes
            .iter()
            .filter(move |a| a.name == name || a.friendly_name.as_deref() == Some(name))
            .flat_map(|a| a.values.iter().map(String::as_str))
    }
}

/// Reads an identity provider's metadata (an `EntityDescriptor` with an `IDPSSODescriptor`
/// that has an HTTP-Redirect single sign-on endpoint and at least one signing certificate).
pub fn read_metadata(xml: &str) -> Result<IdpMetadata, SamlError> {
    #[cfg(feature = "xmlsec")]
    {
        sp::read_metadata(xml)
    }
    #[cfg(not(feature = "xmlsec"))]
    {
        let _ = xml;
        Err(SamlError::NotBuilt)
    }
}

/// The URL that sends the browser to the IdP with an `AuthnRequest` (HTTP-Redirect binding,
/// unsigned; the response is bound to it by `request_id`, stored by the caller).
/// `request_id` must be an XML name (start with a letter or `_`).
pub fn authn_request_url(
    sp: &Sp<'_>,
    idp_metadata: &str,
    request_id: &str,
    relay_state: &str,
) -> Result<String, SamlError> {
    #[cfg(feature = "xmlsec")]
    {
        sp::authn_request_url(sp, idp_metadata, request_id, relay_state)
    }
    #[cfg(not(feature = "xmlsec"))]
    {
        let _ = (sp, idp_metadata, request_id, relay_state);
        Err(SamlError::NotBuilt)
    }
}

/// Verifies a `SAMLResponse` form value (base64 of the XML) from the IdP described by
/// `idp_metadata`, as described in the crate's documentation.
pub fn verify(
    sp: &Sp<'_>,
    idp_metadata: &str,
    saml_response: &str,
    expect: &Expect<'_>,
) -> Result<Verified, SamlError> {
    use base64::Engine as _;
    let compact: String = saml_response
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if compact.len() > MAX_RESPONSE_BYTES * 4 / 3 + 4 {
        return Err(SamlError::Malformed);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| SamlError::Malformed)?;
    let xml = String::from_utf8(bytes).map_err(|_| SamlError::Malformed)?;
    screen(&xml)?;
    #[cfg(feature = "xmlsec")]
    {
        sp::verify(sp, idp_metadata, &xml, expect)
    }
    #[cfg(not(feature = "xmlsec"))]
    {
        let _ = (sp, idp_metadata, expect);
        Err(SamlError::NotBuilt)
    }
}

/// The service provider's metadata: its entity id, the assertion consumer service (HTTP-POST)
/// and that it wants assertions signed. Values are escaped.
pub fn sp_metadata(sp: &Sp<'_>) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            "\n",
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}">"#,
            "\n  ",
            r#"<md:SPSSODescriptor AuthnRequestsSigned="false" WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">"#,
            "\n    ",
            r#"<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>"#,
            "\n    ",
            r#"<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>"#,
            "\n    ",
            r#"<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{acs}" index="0" isDefault="true"/>"#,
            "\n  </md:SPSSODescriptor>\n</md:EntityDescriptor>\n"
        ),
        entity = esc(sp.entity_id),
        acs = esc(sp.acs_url),
    )
}
