//! ARM and Resource Graph answers: the [`Reply`] a caller interprets, and error texts that
//! carry Azure's `error.code` and `error.message`, never a token or a `$skiptoken`.

use bytes::Bytes;
use reqwest::header::HeaderMap;
use serde_json::Value;

use super::super::AzureError;

/// A response whose status the caller interprets (2xx, 404, 403, ...).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub(crate) fn json(&self, what: &str) -> Result<Value, AzureError> {
        serde_json::from_slice(&self.body).map_err(|e| AzureError::BadResponse {
            what: what.to_string(),
            message: format!("not JSON: {e}"),
        })
    }

    /// Whether this is a 404 that says the resource does not exist ([`GONE_CODES`]).
    pub(crate) fn is_gone(&self) -> bool {
        self.status == 404
            && error_code(&self.body).is_some_and(|c| GONE_CODES.iter().any(|g| g.eq_ignore_ascii_case(&c)))
    }

    /// The error for a 404 that is not [`Reply::is_gone`].
    pub(crate) fn unclear_not_found(&self, what: &str) -> AzureError {
        AzureError::NotFoundUnclear {
            what: what.to_string(),
            message: error_message(&self.body),
        }
    }

    /// The error for a non-success reply, with Azure's code and message.
    pub(crate) fn error(&self, what: &str) -> AzureError {
        AzureError::Http {
            status: self.status,
            what: what.to_string(),
            message: error_message(&self.body),
        }
    }
}

/// The ARM error codes of a 404 that mean the resource itself does not exist: it, its resource
/// group, or its parent resource was not found
/// (https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-not-found).
/// Any other 404 (`SubscriptionNotFound`: a subscription the identity lost or that moved
/// tenant; `InvalidResourceType`, `NoRegisteredProviderFound`: a routing or api-version
/// problem; no or garbled body) says nothing about the resource, so it is never a delete.
/// See docs/decisions.md.
pub const GONE_CODES: &[&str] = &["ResourceNotFound", "ResourceGroupNotFound", "ParentResourceNotFound"];

/// `error.code` of an ARM error envelope.
pub fn error_code(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value
        .get("error")
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// `Code: message` from an ARM/ARG error envelope, or the start of the body.
pub fn error_message(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        let error = value.get("error").unwrap_or(&value);
        let code = error.get("code").and_then(Value::as_str);
        let message = error.get("message").and_then(Value::as_str);
        let detail = error
            .get("details")
            .and_then(Value::as_array)
            .and_then(|d| d.first())
            .and_then(|d| d.get("message"))
            .and_then(Value::as_str);
        let mut text = match (code, message) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.to_string(),
            (None, Some(m)) => m.to_string(),
            (None, None) => String::new(),
        };
        if let Some(d) = detail.filter(|d| !text.contains(*d)) {
            text.push_str(&format!(" ({d})"));
        }
        if !text.is_empty() {
            return truncate(&text, 600);
        }
    }
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        "no error body".into()
    } else {
        truncate(text.trim(), 300)
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut t: String = text.chars().take(max).collect();
        t.push('…');
        t
    }
}

/// A transport error without the URL's query (which may carry a `$skiptoken`) or any header.
pub(super) fn transport_message(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    truncate(&text, 300)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages() {
        let body =
            br#"{"error":{"code":"AuthorizationFailed","message":"The client 'x' does not have authorization"}}"#;
        assert_eq!(
            error_message(body),
            "AuthorizationFailed: The client 'x' does not have authorization"
        );
        let body = br#"{"error":{"code":"RateLimiting","message":"Please provide","details":[{"code":"RateLimiting","message":"Client application has been throttled"}]}}"#;
        assert!(error_message(body).ends_with("(Client application has been throttled)"));
        assert_eq!(error_message(b""), "no error body");
        assert_eq!(error_message(b"<html>bad gateway</html>"), "<html>bad gateway</html>");
    }
}
