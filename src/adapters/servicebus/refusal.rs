//! Error texts for a failed send: a refusal's status and the start of its body, scrubbed of
//! every secret the request carried before it is cut short.

use crate::domain::secret::Secret;

/// Characters of a refusal's body kept in the error.
const DETAIL_CHARS: usize = 200;

pub(super) fn refusal_message(status: u16, body: &str, secrets: &[Secret]) -> String {
    let meaning = match status {
        400 => "bad request",
        401 => "authorization failed: check the identity's Azure Service Bus Data Sender role or the SAS key",
        403 => "quota exceeded, message too large, or the identity lacks Azure Service Bus Data Sender",
        404 | 410 => "the queue does not exist: check RETRY_QUEUE",
        413 => "message too large",
        429 | 503 => "the namespace is throttled or busy",
        _ => "unexpected status",
    };
    // Scrub before cutting, so no piece of a secret straddles the cut.
    let scrubbed = secrets
        .iter()
        .fold(body.to_string(), |text, secret| secret.scrub(&text));
    let detail: String = scrubbed
        .chars()
        .filter(|c| !c.is_control())
        .take(DETAIL_CHARS)
        .collect();
    if detail.trim().is_empty() {
        meaning.to_string()
    } else {
        format!("{meaning}: {}", detail.trim())
    }
}

/// A transport error without the URL's query (a SAS token never travels in the URL, but keep
/// the message short and free of anything but the cause).
pub(super) fn transport_message(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    match e.url() {
        Some(url) => format!("{kind} ({}://{})", url.scheme(), url.host_str().unwrap_or("?")),
        None => kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "Sb/Key+0123456789abcdefXYZ=";

    fn forms() -> Vec<String> {
        use base64::Engine;
        vec![
            KEY.to_string(),
            percent_encoding::utf8_percent_encode(KEY, percent_encoding::NON_ALPHANUMERIC).to_string(),
            serde_json::to_string(KEY).unwrap().replace('/', "\\/"),
            base64::engine::general_purpose::STANDARD.encode(KEY),
        ]
    }

    #[test]
    fn a_refusal_that_echoes_the_key_in_any_form_does_not_carry_it() {
        for form in forms() {
            // At the start, and straddling the cut: scrubbing after cutting would leave a piece.
            for pad in [0, DETAIL_CHARS - 10] {
                let body = format!("{}{form} was refused", "x".repeat(pad));
                let message = refusal_message(401, &body, &[Secret::new("token"), Secret::new(KEY)]);
                for piece in KEY.as_bytes().windows(8) {
                    let piece = std::str::from_utf8(piece).unwrap();
                    assert!(!message.contains(piece), "{form} at {pad}: {piece:?} in {message}");
                }
                assert!(
                    message.starts_with("authorization failed") && message.contains("***"),
                    "{message}"
                );
            }
        }
    }

    #[test]
    fn a_refusal_keeps_the_start_of_a_harmless_body() {
        let message = refusal_message(404, "no such entity\n", &[Secret::new(KEY)]);
        assert_eq!(message, "the queue does not exist: check RETRY_QUEUE: no such entity");
    }
}
