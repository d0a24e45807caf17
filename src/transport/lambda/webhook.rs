//! The webhook's own protocol, which the Functions host handles for the Functions handler:
//! the shared secret every request must carry, Event Grid's subscription validation handshake
//! (<https://learn.microsoft.com/azure/event-grid/webhook-event-delivery>) and the CloudEvents
//! abuse-protection `OPTIONS` handshake. Pure.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::url::UrlRequest;
use crate::config::EnvSource;
use crate::domain::secret::Secret;
use crate::transport::json::{decode_object, describe};

/// The query string parameter carrying the shared secret (as in a Functions key URL).
pub(crate) const SECRET_QUERY: &str = "code";
/// The header carrying the shared secret, for callers that can set headers.
pub(crate) const SECRET_HEADER: &str = "x-seedwatch-secret";
/// Shorter secrets are refused: the secret is all that stands between the URL and the apply path.
pub(crate) const MIN_SECRET_LEN: usize = 16;

/// Event Grid's delivery header (`Notification`, `SubscriptionValidation`, `SubscriptionDeletion`).
pub(crate) const EVENT_TYPE_HEADER: &str = "aeg-event-type";
pub(crate) const VALIDATION_EVENT: &str = "Microsoft.EventGrid.SubscriptionValidationEvent";
/// CloudEvents abuse protection: the request and answer headers.
pub(crate) const REQUEST_ORIGIN_HEADER: &str = "webhook-request-origin";

/// The shared secret the function URL requires.
#[derive(Debug, Clone)]
pub struct WebhookSecret(Secret);

impl WebhookSecret {
    pub fn new(text: &str) -> Result<WebhookSecret, String> {
        let text = text.trim();
        if text.chars().count() < MIN_SECRET_LEN {
            return Err(format!(
                "{} is shorter than {MIN_SECRET_LEN} characters: use a long random value \
                 (for example `openssl rand -hex 32`)",
                super::env::WEBHOOK_SECRET
            ));
        }
        Ok(WebhookSecret(Secret::new(text)))
    }

    /// From `WEBHOOK_SECRET`; the error says what to set (never the value).
    pub fn from_env(env: &dyn EnvSource) -> Result<WebhookSecret, String> {
        match env.var(super::env::WEBHOOK_SECRET) {
            Some(text) if !text.trim().is_empty() => WebhookSecret::new(&text),
            _ => Err(format!(
                "{} is not set: the function URL refuses every request until it is",
                super::env::WEBHOOK_SECRET
            )),
        }
    }

    /// Whether the request carries the secret, in `?code=` or the `x-seedwatch-secret` header.
    /// Every candidate is compared in constant time.
    pub(crate) fn admits(&self, request: &UrlRequest) -> bool {
        let expected = self.0.expose().as_bytes();
        let from_query = request
            .query(SECRET_QUERY)
            .is_some_and(|c| same(c.as_bytes(), expected));
        let from_header = request
            .header(SECRET_HEADER)
            .is_some_and(|c| same(c.as_bytes(), expected));
        from_query | from_header
    }
}

/// Constant-time equality: both sides are hashed first, so neither the length nor the first
/// differing byte of the secret shows in the timing.
fn same(given: &[u8], expected: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What an Event Grid delivery asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Delivery {
    /// Answer 200 with `{"validationResponse": code}`.
    Validation { code: String },
    /// The subscription is being deleted: acknowledge.
    Deletion,
    /// Event objects to apply (Event Grid schema or CloudEvents), in delivery order.
    Events(Vec<Value>),
}

/// Reads a delivery's body and `aeg-event-type` header. An error means the body as a whole is
/// unusable (not JSON, not an event or an array of events, a validation without a code): the
/// one case worth a 400, which Event Grid does not retry.
pub(crate) fn read_delivery(event_type_header: Option<&str>, body: &[u8]) -> Result<Delivery, String> {
    if event_type_header.is_some_and(|h| h.eq_ignore_ascii_case("SubscriptionDeletion")) {
        return Ok(Delivery::Deletion);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("empty body: expected Event Grid events (a JSON array or a CloudEvent object)".into());
    }
    let parsed: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let events = match parsed {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        other => {
            return Err(format!(
                "body is {}: expected Event Grid events (a JSON array or a CloudEvent object)",
                describe(&other)
            ));
        }
    };
    if let Some(code) = events.iter().find_map(validation_code) {
        return code.map(|code| Delivery::Validation { code });
    }
    if event_type_header.is_some_and(|h| h.eq_ignore_ascii_case("SubscriptionValidation")) {
        return Err(format!(
            "{EVENT_TYPE_HEADER} is SubscriptionValidation but the body holds no {VALIDATION_EVENT}"
        ));
    }
    Ok(Delivery::Events(events))
}

/// `Some` when `event` is a validation event: its code, or why it has none.
fn validation_code(event: &Value) -> Option<Result<String, String>> {
    let object = event.as_object()?;
    let event_type = object
        .get("eventType")
        .or_else(|| object.get("type"))
        .and_then(Value::as_str)?;
    if !event_type.eq_ignore_ascii_case(VALIDATION_EVENT) {
        return None;
    }
    // CloudEvents deliveries may carry `data` JSON-encoded.
    let code = object
        .get("data")
        .and_then(decode_object)
        .and_then(|data| data.get("validationCode").and_then(Value::as_str).map(str::to_string))
        .filter(|code| !code.trim().is_empty());
    Some(code.ok_or_else(|| format!("{VALIDATION_EVENT} without data.validationCode")))
}

/// The CloudEvents abuse-protection answer: the origin to allow, when the request names one
/// that can be echoed in a header.
pub(crate) fn allowed_origin(request: &UrlRequest) -> Option<String> {
    request
        .header(REQUEST_ORIGIN_HEADER)
        .filter(|o| !o.is_empty() && o.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(query: Option<&str>, header: Option<&str>) -> UrlRequest {
        let mut headers = serde_json::Map::new();
        if let Some(h) = header {
            headers.insert(SECRET_HEADER.into(), json!(h));
        }
        let mut params = serde_json::Map::new();
        if let Some(q) = query {
            params.insert(SECRET_QUERY.into(), json!(q));
        }
        UrlRequest::from_payload(&json!({
            "rawPath": "/", "headers": headers, "queryStringParameters": params,
            "requestContext": {"http": {"method": "POST", "path": "/"}, "timeEpoch": 0},
            "isBase64Encoded": false
        }))
        .unwrap()
    }

    const SECRET: &str = "0123456789abcdef-secret";

    #[test]
    fn the_secret_is_accepted_from_the_query_or_the_header_only_when_exact() {
        let secret = WebhookSecret::new(SECRET).unwrap();
        assert!(secret.admits(&request(Some(SECRET), None)));
        assert!(secret.admits(&request(None, Some(SECRET))));
        assert!(secret.admits(&request(Some("wrong"), Some(SECRET))));
        assert!(!secret.admits(&request(None, None)));
        assert!(!secret.admits(&request(Some("0123456789abcdef-secreT"), None)));
        assert!(!secret.admits(&request(Some(&SECRET[..SECRET.len() - 1]), None)));
        assert!(!secret.admits(&request(Some(""), Some(""))));
    }

    #[test]
    fn short_or_missing_secrets_are_refused_without_echoing_them() {
        let err = WebhookSecret::new("short-secret").unwrap_err();
        assert!(err.contains("shorter") && !err.contains("short-secret"), "{err}");
        let env = std::collections::HashMap::<String, String>::new();
        assert!(
            WebhookSecret::from_env(&env)
                .unwrap_err()
                .contains("WEBHOOK_SECRET is not set")
        );
        assert!(!format!("{:?}", WebhookSecret::new(SECRET).unwrap()).contains(SECRET));
    }

    #[test]
    fn validation_is_recognised_by_event_or_header() {
        let body = json!([{"id": "2d17", "topic": "/subscriptions/1", "subject": "",
            "data": {"validationCode": "512d38b6", "validationUrl": "https://x"},
            "eventType": VALIDATION_EVENT, "eventTime": "2025-03-01T10:00:00Z", "metadataVersion": "1", "dataVersion": "1"}])
        .to_string();
        for header in [Some("SubscriptionValidation"), Some("Notification"), None] {
            assert_eq!(
                read_delivery(header, body.as_bytes()).unwrap(),
                Delivery::Validation {
                    code: "512d38b6".into()
                }
            );
        }
        let cloud = json!({"id": "1", "specversion": "1.0", "source": "/x", "type": VALIDATION_EVENT,
            "data": "{\"validationCode\":\"c-1\"}"})
        .to_string();
        assert_eq!(
            read_delivery(None, cloud.as_bytes()).unwrap(),
            Delivery::Validation { code: "c-1".into() }
        );
        let no_code = json!([{"id": "1", "eventType": VALIDATION_EVENT, "data": {}}]).to_string();
        assert!(
            read_delivery(None, no_code.as_bytes())
                .unwrap_err()
                .contains("validationCode")
        );
        let err = read_delivery(Some("SubscriptionValidation"), b"[]").unwrap_err();
        assert!(err.contains("holds no"), "{err}");
    }

    #[test]
    fn deliveries_and_malformed_bodies() {
        assert_eq!(
            read_delivery(Some("SubscriptionDeletion"), b"").unwrap(),
            Delivery::Deletion
        );
        assert_eq!(read_delivery(None, b"[]").unwrap(), Delivery::Events(vec![]));
        assert_eq!(
            read_delivery(None, b"{\"id\":\"1\"}").unwrap(),
            Delivery::Events(vec![json!({"id": "1"})])
        );
        for (body, needle) in [(&b""[..], "empty"), (b"{oops", "not JSON"), (b"42", "number")] {
            let err = read_delivery(Some("Notification"), body).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
    }
}
