//! Masks a session's secret values in its output, as CI systems do: every environment value
//! the session was given (workspace variables, the provider key) and its base64 and
//! URL-encoded forms become `***` before the output leaves the host, so neither the stored
//! nor the streamed output shows them to anyone who may read it (viewers included).
//!
//! A value split across two reads is still caught: the end of a chunk that could be the start
//! of a secret is held back until the next chunk (or the end of the stream). Values shorter
//! than [`MIN_SECRET_LEN`] are not masked: masking `1` or `true` would garble the output and
//! protect nothing.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// What a masked value is replaced with.
pub const MASK: &str = "***";
/// Shorter values are left alone.
pub const MIN_SECRET_LEN: usize = 4;

/// The strings to mask, longest first.
#[derive(Default)]
pub struct Masker {
    needles: Vec<zeroize::Zeroizing<String>>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Masker({} forms)", self.needles.len())
    }
}

impl Masker {
    /// A masker for `secrets` and their encoded forms.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut needles: Vec<zeroize::Zeroizing<String>> = Vec::new();
        for secret in secrets {
            if secret.chars().count() < MIN_SECRET_LEN {
                continue;
            }
            let encoded =
                percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
                    .to_string();
            for form in [
                secret.to_owned(),
                STANDARD.encode(secret),
                STANDARD_NO_PAD.encode(secret),
                URL_SAFE.encode(secret),
                URL_SAFE_NO_PAD.encode(secret),
                encoded,
            ] {
                if !needles.iter().any(|n| **n == form) {
                    needles.push(zeroize::Zeroizing::new(form));
                }
            }
        }
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        Self { needles }
    }

    /// Whether there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    fn mask_all(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), MASK);
            }
        }
        out
    }

    /// Where the end of `text` could begin a secret: the byte index of the longest suffix that
    /// is a proper prefix of some form (`text.len()` when none is).
    fn hold_from(&self, text: &str) -> usize {
        let longest = self.needles.first().map_or(0, |n| n.len());
        let earliest = text.len().saturating_sub(longest.saturating_sub(1));
        text.char_indices()
            .map(|(i, _)| i)
            .filter(|i| *i >= earliest)
            .find(|i| {
                let tail = &text[*i..];
                self.needles
                    .iter()
                    .any(|n| n.len() > tail.len() && n.starts_with(tail))
            })
            .unwrap_or(text.len())
    }
}

/// One output stream's masking: call [`MaskStream::push`] with each chunk and
/// [`MaskStream::finish`] at its end.
#[derive(Debug)]
pub struct MaskStream {
    masker: Arc<Masker>,
    held: String,
}

impl MaskStream {
    /// A stream masked by `masker`.
    pub fn new(masker: Arc<Masker>) -> Self {
        Self {
            masker,
            held: String::new(),
        }
    }

    /// The masked text that may be sent now.
    pub fn push(&mut self, text: &str) -> String {
        if self.masker.is_empty() {
            return text.to_owned();
        }
        let joined = std::mem::take(&mut self.held) + text;
        let mut masked = self.masker.mask_all(&joined);
        let cut = self.masker.hold_from(&masked);
        self.held = masked.split_off(cut);
        masked
    }

    /// What was held back, at the end of the stream.
    pub fn finish(&mut self) -> String {
        let held = std::mem::take(&mut self.held);
        self.masker.mask_all(&held)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn run(masker: Masker, chunks: &[&str]) -> String {
        let mut s = MaskStream::new(Arc::new(masker));
        let mut out: String = chunks.iter().map(|c| s.push(c)).collect();
        out.push_str(&s.finish());
        out
    }

    #[test]
    fn values_and_their_encodings_are_masked() {
        let secret = "sk-live-1234/abcd+xyz";
        let m = || Masker::new([secret, "no"]);
        let b64 = STANDARD.encode(secret);
        let url = URL_SAFE_NO_PAD.encode(secret);
        let pct = percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
        let text = format!("key={secret}\nb64={b64}\nurl={url}\npct={pct}\nno=no\n");
        let out = run(m(), &[&text]);
        assert_eq!(out, "key=***\nb64=***\nurl=***\npct=***\nno=no\n");
    }

    #[test]
    fn a_secret_split_across_chunks_is_masked_and_nothing_is_lost() {
        let secret = "hunter2-hunter2";
        let text = format!("before {secret} middle {secret}{secret} after s");
        // Every way of cutting the text in two, and one byte at a time.
        for cut in 0..=text.len() {
            let out = run(Masker::new([secret]), &[&text[..cut], &text[cut..]]);
            assert_eq!(out, "before *** middle ****** after s", "cut at {cut}");
        }
        let bytes: Vec<String> = text.chars().map(String::from).collect();
        let refs: Vec<&str> = bytes.iter().map(String::as_str).collect();
        assert_eq!(
            run(Masker::new([secret]), &refs),
            "before *** middle ****** after s"
        );
    }

    #[test]
    fn overlapping_secrets_never_leak_across_a_chunk_boundary() {
        let out = run(Masker::new(["ABCD", "CDXY"]), &["xxABCDX", "Zyy"]);
        assert_eq!(out, "xx***XZyy");
        let out = run(Masker::new(["ABCD", "CDXY"]), &["xxAB", "CDXY"]);
        assert!(!out.contains("ABCD") && !out.contains("CDXY"), "{out}");
    }

    #[test]
    fn short_values_and_no_secrets_leave_output_alone() {
        assert_eq!(run(Masker::new(["abc", ""]), &["abc abc"]), "abc abc");
        assert_eq!(run(Masker::default(), &["plain ", "text"]), "plain text");
        // Multibyte text around a secret.
        assert_eq!(
            run(Masker::new(["pässwörd"]), &["é pä", "sswörd ü"]),
            "é *** ü"
        );
    }
}
