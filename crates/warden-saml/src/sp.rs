//! The parts that need XML signatures: samael on libxml2 and xmlsec1.

use chrono::Duration;
use samael::crypto::AllowedSignatureAlgorithm as Alg;
use samael::metadata::{EntityDescriptor, HTTP_POST_BINDING};
use samael::schema::{Assertion, AuthnRequest, Issuer, NameIdPolicy, Response};
use samael::service_provider::{Error as SpError, ServiceProvider};
use samael::signature::Signature;

use crate::{Attribute, CLOCK_SKEW_SECS, Expect, IdpMetadata, SamlError, Signed, Sp, Verified};

const REDIRECT_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
/// The largest metadata read.
const MAX_METADATA_BYTES: usize = 512 * 1024;
/// How long after its IssueInstant a response or assertion is still taken.
const MAX_ISSUE_DELAY_SECS: i64 = 240;

/// Signatures with SHA-1 (or MD5) are refused: only these verify.
const ALLOWED: [Alg; 6] = [
    Alg::RsaSha256,
    Alg::RsaSha384,
    Alg::RsaSha512,
    Alg::EcdsaSha256,
    Alg::EcdsaSha384,
    Alg::EcdsaSha512,
];

fn parse_metadata(xml: &str) -> Result<EntityDescriptor, SamlError> {
    if xml.len() > MAX_METADATA_BYTES {
        return Err(SamlError::Metadata("larger than 512 KiB"));
    }
    if xml.contains("<!DOCTYPE") || xml.contains("<!ENTITY") {
        return Err(SamlError::Metadata("it has a DOCTYPE"));
    }
    xml.parse::<EntityDescriptor>()
        .map_err(|_| SamlError::Metadata("not an EntityDescriptor"))
}

fn sso_url(idp: &EntityDescriptor) -> Option<String> {
    idp.idp_sso_descriptors
        .iter()
        .flatten()
        .flat_map(|d| &d.single_sign_on_services)
        .find(|s| s.binding == REDIRECT_BINDING)
        .map(|s| s.location.clone())
}

fn service_provider(sp: &Sp<'_>, idp: EntityDescriptor, idp_initiated: bool) -> ServiceProvider {
    ServiceProvider {
        entity_id: Some(sp.entity_id.to_owned()),
        metadata_url: None,
        acs_url: Some(sp.acs_url.to_owned()),
        slo_url: None,
        idp_metadata: idp,
        allow_idp_initiated: idp_initiated,
        max_issue_delay: Duration::seconds(MAX_ISSUE_DELAY_SECS),
        max_clock_skew: Duration::seconds(CLOCK_SKEW_SECS),
        allowed_signature_algorithms: Some(ALLOWED.to_vec()),
        ..ServiceProvider::default()
    }
}

pub(crate) fn read_metadata(xml: &str) -> Result<IdpMetadata, SamlError> {
    let idp = parse_metadata(xml)?;
    let entity_id = idp
        .entity_id
        .clone()
        .filter(|e| !e.trim().is_empty())
        .ok_or(SamlError::Metadata("no entityID"))?;
    if idp.idp_sso_descriptors.as_ref().is_none_or(Vec::is_empty) {
        return Err(SamlError::Metadata("no IDPSSODescriptor"));
    }
    let sso_url =
        sso_url(&idp).ok_or(SamlError::Metadata("no HTTP-Redirect SingleSignOnService"))?;
    let certificates = service_provider(
        &Sp {
            entity_id: "",
            acs_url: "",
        },
        idp,
        false,
    )
    .idp_signing_certs()
    .map_err(|_| SamlError::Metadata("a signing certificate cannot be read"))?
    .map_or(0, |c| c.len());
    if certificates == 0 {
        return Err(SamlError::Metadata("no signing certificate"));
    }
    Ok(IdpMetadata {
        entity_id,
        sso_url,
        certificates,
    })
}

pub(crate) fn authn_request_url(
    sp: &Sp<'_>,
    idp_metadata: &str,
    request_id: &str,
    relay_state: &str,
) -> Result<String, SamlError> {
    let idp = parse_metadata(idp_metadata)?;
    let destination =
        sso_url(&idp).ok_or(SamlError::Metadata("no HTTP-Redirect SingleSignOnService"))?;
    let request = AuthnRequest {
        id: request_id.to_owned(),
        version: "2.0".to_owned(),
        issue_instant: chrono::Utc::now(),
        destination: Some(destination),
        issuer: Some(Issuer {
            value: Some(sp.entity_id.to_owned()),
            ..Issuer::default()
        }),
        name_id_policy: Some(NameIdPolicy {
            allow_create: Some(true),
            ..NameIdPolicy::default()
        }),
        assertion_consumer_service_url: Some(sp.acs_url.to_owned()),
        protocol_binding: Some(HTTP_POST_BINDING.to_owned()),
        ..AuthnRequest::default()
    };
    request
        .redirect(relay_state)
        .ok()
        .flatten()
        .map(|u| u.to_string())
        .ok_or(SamlError::Metadata("the SingleSignOnService is not a URL"))
}

fn signs_itself(signature: Option<&Signature>, id: &str) -> bool {
    let own = format!("#{id}");
    signature.is_some_and(|s| {
        s.signed_info
            .reference
            .iter()
            .any(|r| r.uri.as_deref() == Some(own.as_str()))
    })
}

fn refusal(e: &SpError) -> SamlError {
    use SpError as E;
    match e {
        E::FailedToValidateSignature
        | E::CryptoXmlError(_)
        | E::CryptoProviderError(_)
        | E::FailedToParseCert { .. }
        | E::UnsupportedKey => SamlError::Signature,
        E::DestinationValidationError { .. }
        | E::AssertionRecipientMismatch { .. }
        | E::AssertionConditionAudienceRestrictionFailed { .. } => SamlError::Audience,
        E::AssertionExpired { .. }
        | E::ResponseExpired { .. }
        | E::AssertionConditionExpired { .. }
        | E::AssertionConditionExpiredBefore { .. }
        | E::AssertionSubjectConfirmationExpired { .. }
        | E::AssertionSubjectConfirmationExpiredBefore { .. } => SamlError::Time,
        E::AssertionInResponseToInvalid { .. } | E::ResponseInResponseToInvalid { .. } => {
            SamlError::InResponseTo
        }
        E::AssertionIssuerMismatch { .. } | E::ResponseIssuerMismatch { .. } => SamlError::Issuer,
        E::ResponseBadStatusCode { .. } => SamlError::Status,
        E::AssertionBearerSubjectConfirmationMissing | E::AssertionSubjectConfirmationMissing => {
            SamlError::NoSubject
        }
        E::EncryptedAssertionsNotYetSupported
        | E::EncryptedAssertionInvalid
        | E::FailedToDecryptAssertion
        | E::MissingPrivateKeySP => SamlError::Encrypted,
        _ => SamlError::Malformed,
    }
}

pub(crate) fn verify(
    sp: &Sp<'_>,
    idp_metadata: &str,
    xml: &str,
    expect: &Expect<'_>,
) -> Result<Verified, SamlError> {
    let idp = parse_metadata(idp_metadata)?;
    let issuer = idp
        .entity_id
        .clone()
        .ok_or(SamlError::Metadata("no entityID"))?;
    let provider = service_provider(sp, idp, expect.request_id.is_none());
    // Without a certificate samael would read the response unverified: never.
    if provider
        .idp_signing_certs()
        .map_err(|_| SamlError::Metadata("a signing certificate cannot be read"))?
        .is_none_or(|c| c.is_empty())
    {
        return Err(SamlError::Metadata("no signing certificate"));
    }
    let ids = expect.request_id.map(|id| [id]);
    let assertion = provider
        .parse_xml_response(xml, ids.as_ref().map(|a| a.as_slice()))
        .map_err(|e| refusal(&e))?;
    // The raw response: every signature in it has been verified and ids are unique (the
    // screen let one Response and one Assertion through), so a signature child whose
    // reference is its parent's own id means that element — all of it — was signed. (The
    // verified copy samael reads has its Signature elements cut away.)
    let response = xml.parse::<Response>().map_err(|_| SamlError::Malformed)?;
    let raw_assertion = response.assertion.as_ref().ok_or(SamlError::Structure)?;
    if raw_assertion.id != assertion.id {
        return Err(SamlError::Structure);
    }
    let assertion_signed = signs_itself(raw_assertion.signature.as_ref(), &assertion.id);
    let response_signed = signs_itself(response.signature.as_ref(), &response.id);
    match expect.signed {
        Signed::Assertion if !assertion_signed => return Err(SamlError::Unsigned("assertion")),
        Signed::Response if !response_signed => return Err(SamlError::Unsigned("response")),
        Signed::Either if !assertion_signed && !response_signed => {
            return Err(SamlError::Unsigned("response"));
        }
        _ => {}
    }
    if response
        .issuer
        .as_ref()
        .and_then(|i| i.value.as_deref())
        .is_some_and(|i| i != issuer)
    {
        return Err(SamlError::Issuer);
    }
    if expect.request_id.is_none() && answers_a_request(&response, &assertion) {
        // An IdP-initiated sign-in carries no InResponseTo; one that does answers a request
        // another browser started.
        return Err(SamlError::InResponseTo);
    }
    checked(assertion, issuer, sp)
}

fn answers_a_request(response: &Response, assertion: &Assertion) -> bool {
    response.in_response_to.is_some()
        || confirmations(assertion).any(|c| c.in_response_to.is_some())
}

fn confirmations(
    assertion: &Assertion,
) -> impl Iterator<Item = &samael::schema::SubjectConfirmationData> {
    assertion
        .subject
        .iter()
        .flat_map(|s| s.subject_confirmations.iter().flatten())
        .filter_map(|c| c.subject_confirmation_data.as_ref())
}

fn checked(assertion: Assertion, issuer: String, sp: &Sp<'_>) -> Result<Verified, SamlError> {
    // samael checks the audience only when the assertion restricts it: require it.
    let for_us = assertion
        .conditions
        .as_ref()
        .and_then(|c| c.audience_restrictions.as_ref())
        .is_some_and(|rs| {
            !rs.is_empty()
                && rs
                    .iter()
                    .all(|r| r.audience.iter().any(|a| a == sp.entity_id))
        });
    if !for_us {
        return Err(SamlError::Audience);
    }
    let name_id = assertion
        .subject
        .as_ref()
        .and_then(|s| s.name_id.as_ref())
        .map(|n| n.value.trim().to_owned())
        .filter(|n| !n.is_empty() && n.len() <= 500 && !n.chars().any(char::is_control))
        .ok_or(SamlError::NoSubject)?;
    let until = confirmations(&assertion)
        .filter_map(|d| d.not_on_or_after)
        .chain(
            assertion
                .conditions
                .iter()
                .filter_map(|c| c.not_on_or_after),
        )
        .max()
        .map_or(0, |t| t.timestamp());
    let attributes = assertion
        .attribute_statements
        .iter()
        .flatten()
        .flat_map(|s| &s.attributes)
        .map(|a| Attribute {
            name: a.name.clone().unwrap_or_default(),
            friendly_name: a.friendly_name.clone(),
            values: a.values.iter().filter_map(|v| v.value.clone()).collect(),
        })
        .collect();
    Ok(Verified {
        issuer,
        name_id,
        assertion_id: assertion.id,
        valid_until: until + CLOCK_SKEW_SECS,
        attributes,
    })
}
