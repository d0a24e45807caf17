//! Finding a secret in text that may carry it encoded (see [`super::Secret::scrub`]).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

const MASK: &str = "***";

pub(super) fn scrub(text: &str, secret: &[u8]) -> String {
    if secret.is_empty() {
        return text.to_string();
    }
    let decoded_forms = scrub_encoded(text, secret);
    base64_forms(secret)
        .iter()
        .filter(|form| !form.is_empty())
        .fold(decoded_forms, |text, form| text.replace(form.as_str(), MASK))
}

/// Replaces every span of `text` that decodes (raw, JSON escapes, URL encoding, in any mix) to
/// the secret.
fn scrub_encoded(text: &str, secret: &[u8]) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut plain_from = 0;
    let mut at = 0;
    while at < bytes.len() {
        match match_at(bytes, at, secret) {
            // A match starts and ends on character boundaries: its first and last pieces are
            // ASCII escapes or whole raw UTF-8 sequences of the secret.
            Some(len) if text.is_char_boundary(at) && text.is_char_boundary(at + len) => {
                out.push_str(&text[plain_from..at]);
                out.push_str(MASK);
                at += len;
                plain_from = at;
            }
            _ => at += 1,
        }
    }
    out.push_str(&text[plain_from..]);
    out
}

/// The length of the span at `at` that decodes to `secret`, if there is one.
fn match_at(text: &[u8], at: usize, secret: &[u8]) -> Option<usize> {
    let Some((&wanted, rest)) = secret.split_first() else {
        return Some(0);
    };
    // Each way one byte of the secret can be written; a later mismatch tries the next way.
    for len in encodings_of(text, at, wanted) {
        if let Some(tail) = match_at(text, at + len, rest) {
            return Some(len + tail);
        }
    }
    None
}

/// Lengths of the spellings of byte `wanted` found at `text[at..]`.
fn encodings_of(text: &[u8], at: usize, wanted: u8) -> impl Iterator<Item = usize> {
    let rest = text.get(at..).unwrap_or_default();
    let raw = rest.first() == Some(&wanted);
    let plus = wanted == b' ' && rest.first() == Some(&b'+');
    let percent = rest.first() == Some(&b'%') && hex_byte(rest.get(1..3)) == Some(wanted);
    let json_short = wanted.is_ascii()
        && rest.first() == Some(&b'\\')
        && rest.get(1).is_some_and(|&c| json_short_escape(c) == Some(wanted));
    let json_unicode = wanted.is_ascii()
        && rest.starts_with(b"\\u")
        && rest.get(2..4).is_some_and(|h| h == b"00")
        && hex_byte(rest.get(4..6)) == Some(wanted);
    [(raw, 1), (plus, 1), (percent, 3), (json_short, 2), (json_unicode, 6)]
        .into_iter()
        .filter_map(|(found, len)| found.then_some(len))
}

fn json_short_escape(c: u8) -> Option<u8> {
    Some(match c {
        b'"' => b'"',
        b'\\' => b'\\',
        b'/' => b'/',
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        _ => return None,
    })
}

fn hex_byte(digits: Option<&[u8]>) -> Option<u8> {
    let digits = std::str::from_utf8(digits?).ok()?;
    u8::from_str_radix(digits, 16).ok()
}

/// The base64 texts that appear wherever the secret is base64-encoded, at each of the three
/// alignments inside a longer encoded text: the characters that mix in neighbouring bytes are
/// left out.
fn base64_forms(secret: &[u8]) -> Vec<String> {
    let mut forms = Vec::new();
    for offset in 0..3usize {
        let mut padded = vec![0u8; offset];
        padded.extend_from_slice(secret);
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let encoded = engine.encode(&padded);
            let skip = (offset * 8).div_ceil(6);
            let keep = (padded.len() * 8) / 6;
            if let Some(form) = encoded.get(skip..keep) {
                forms.push(form.to_string());
            }
        }
    }
    forms
}

#[cfg(test)]
mod tests {
    use super::scrub;
    use base64::Engine;

    const KEY: &str = "k3y+w/ith \"odd\" chars&=%";

    fn leaks(text: &str) -> bool {
        KEY.as_bytes()
            .windows(8)
            .any(|w| text.as_bytes().windows(8).any(|t| t == w))
    }

    #[test]
    fn every_form_is_scrubbed() {
        let json = serde_json::to_string(KEY).unwrap();
        let json = &json[1..json.len() - 1];
        let upper: String = KEY.bytes().map(|b| format!("%{b:02X}")).collect();
        let lower: String = KEY.bytes().map(|b| format!("%{b:02x}")).collect();
        let form = url_form(KEY);
        let json_unicode: String = KEY.bytes().map(|b| format!("\\u{b:04x}")).collect();
        let base64 = base64::engine::general_purpose::STANDARD.encode(format!("user:{KEY}"));
        let url_safe = base64::engine::general_purpose::URL_SAFE.encode(KEY);
        for form in [KEY, json, &upper, &lower, &form, &json_unicode, &base64, &url_safe] {
            let text = format!("bad key {form} sent");
            let clean = scrub(&text, KEY.as_bytes());
            assert!(clean.contains("***"), "{form}: {clean}");
            assert!(!leaks(&clean), "{form}: {clean}");
            assert!(clean.starts_with("bad key ") && clean.ends_with(" sent"), "{clean}");
        }
    }

    #[test]
    fn other_text_is_left_alone() {
        let text = "k3y+w/ith nothing else, % \\u0041 ünïcode";
        assert_eq!(scrub(text, KEY.as_bytes()), text);
        assert_eq!(scrub("abc", b""), "abc");
        assert_eq!(scrub("a ünï b", "ünï".as_bytes()), "a *** b");
    }

    fn url_form(value: &str) -> String {
        value
            .bytes()
            .map(|b| match b {
                b' ' => "+".to_string(),
                b if b.is_ascii_alphanumeric() => (b as char).to_string(),
                b => format!("%{b:02X}"),
            })
            .collect()
    }
}
