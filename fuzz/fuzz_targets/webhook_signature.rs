//! The webhook signature parsers (GitHub, Stripe, Standard Webhooks, generic HMAC).
//! Invariants: any headers and body are verified or refused (no panic); a delivery accepted
//! under a secret really carries the HMAC of what the scheme signs (checked here against
//! aws-lc-rs directly); a delivery signed correctly within the time window is accepted, and
//! with one body byte changed is refused as a mismatch.
#![no_main]

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use warden_core::webhooks::verify::{Headers, Refused, Scheme, TOLERANCE_SECS, verify};

const NOW: i64 = 1_800_000_000;

#[derive(Arbitrary, Debug)]
struct Input {
    scheme: u8,
    key: Option<Vec<u8>>,
    body: Vec<u8>,
    case: Case,
}

#[derive(Arbitrary, Debug)]
enum Case {
    /// Whatever headers the sender chose.
    Raw(Vec<(String, String)>),
    /// A correct signature made `skew` seconds before now, then maybe one body byte changed.
    Signed {
        skew: i16,
        id: String,
        flip: Option<u16>,
    },
}

fn scheme(n: u8) -> Scheme {
    match n % 4 {
        0 => Scheme::GitHub,
        1 => Scheme::Stripe,
        2 => Scheme::Standard,
        _ => Scheme::of("generic", None, Some("x-delivery")),
    }
}

fn tag(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut ctx = hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA256, key));
    for p in parts {
        ctx.update(p);
    }
    ctx.sign().as_ref().to_vec()
}

fn get<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// What the scheme signs, given the headers as the sender sent them.
fn expected(scheme: &Scheme, key: &[u8], headers: &Headers, body: &[u8]) -> Option<Vec<u8>> {
    Some(match scheme {
        Scheme::GitHub | Scheme::Generic { .. } => tag(key, &[body]),
        Scheme::Stripe => {
            let sig = get(headers, "stripe-signature")?;
            // The last `t`, as a number (Stripe signs the decimal it sends).
            let t: i64 = sig
                .split(',')
                .filter_map(|p| p.trim().strip_prefix("t="))
                .last()?
                .parse()
                .ok()?;
            tag(key, &[t.to_string().as_bytes(), b".", body])
        }
        Scheme::Standard => {
            let id = get(headers, "webhook-id")?;
            let ts = get(headers, "webhook-timestamp")?;
            tag(key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body])
        }
    })
}

fn sign(scheme: &Scheme, key: &[u8], body: &[u8], t: i64, id: &str) -> Vec<(String, String)> {
    let h = |n: &str, v: String| (n.to_owned(), v);
    match scheme {
        Scheme::GitHub => vec![
            h(
                "x-hub-signature-256",
                format!("sha256={}", hex::encode(tag(key, &[body]))),
            ),
            h("x-github-delivery", id.to_owned()),
        ],
        Scheme::Generic { .. } => vec![
            h("x-signature", hex::encode(tag(key, &[body]))),
            h("x-delivery", id.to_owned()),
        ],
        Scheme::Stripe => {
            let t = t.to_string();
            let v1 = hex::encode(tag(key, &[t.as_bytes(), b".", body]));
            vec![h("stripe-signature", format!("t={t},v1={v1}"))]
        }
        Scheme::Standard => {
            let ts = t.to_string();
            let v1 = B64.encode(tag(key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]));
            vec![
                h("webhook-id", id.to_owned()),
                h("webhook-timestamp", ts),
                h("webhook-signature", format!("v1,{v1}")),
            ]
        }
    }
}

fuzz_target!(|input: Input| {
    let scheme = scheme(input.scheme);
    let key = input.key.as_deref();
    match input.case {
        Case::Raw(headers) => {
            let result = verify(&scheme, key, &headers, &input.body, NOW);
            if let (Ok(_), Some(key)) = (result, key) {
                let want = expected(&scheme, key, &headers, &input.body).expect("signed fields");
                let carried = headers.iter().any(|(_, v)| {
                    v.to_ascii_lowercase().contains(&hex::encode(&want))
                        || v.contains(&B64.encode(&want))
                });
                assert!(carried, "accepted without the HMAC: {headers:?}");
            }
        }
        Case::Signed { skew, id, flip } => {
            let Some(key) = key else { return };
            // Header values cannot carry line breaks; senders' ids never do.
            if id.is_empty() || id.chars().any(|c| c.is_control() || c == ' ' || c == ',') {
                return;
            }
            let t = NOW - i64::from(skew);
            let headers = sign(&scheme, key, &input.body, t, &id);
            let fresh = (NOW - t).abs() <= TOLERANCE_SECS;
            let uses_time = matches!(scheme, Scheme::Stripe | Scheme::Standard);
            let result = verify(&scheme, Some(key), &headers, &input.body, NOW);
            if uses_time && !fresh {
                assert_eq!(result, Err(Refused::Stale));
                return;
            }
            let verified = result.expect("a correctly signed delivery is accepted");
            if !matches!(scheme, Scheme::Stripe) {
                assert_eq!(verified.delivery_id.as_deref(), Some(id.as_str()));
            }
            if let Some(at) = flip
                && !input.body.is_empty()
            {
                let mut body = input.body.clone();
                let at = usize::from(at) % body.len();
                body[at] ^= 0x01;
                assert_eq!(
                    verify(&scheme, Some(key), &headers, &body, NOW),
                    Err(Refused::Mismatch),
                    "a changed body was accepted"
                );
            }
        }
    }
});
