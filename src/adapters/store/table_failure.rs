//! A Table Storage refusal as a [`LedgerError`], its texts scrubbed of the account key.

use serde_json::Value;

use crate::adapters::http::Answer;
use crate::adapters::store::table::header;
use crate::domain::secret::Secret;
use crate::ledger::LedgerError;

/// Turns an error response into a [`LedgerError`]; 409 and 412 are conflicts.
pub(super) fn failure(answer: &Answer, backend: &str, key: Option<&Secret>) -> LedgerError {
    let header_code = header(answer, "x-ms-error-code");
    let text = String::from_utf8_lossy(&answer.body);
    failure_from(answer.status, header_code, &text, backend, key)
}

/// The error for a refusal's status, code header and body. The message is scrubbed of the
/// account key before it is cut short, so no piece of the key straddles the cut.
fn failure_from(
    status: u16,
    header_code: Option<String>,
    text: &str,
    backend: &str,
    key: Option<&Secret>,
) -> LedgerError {
    let scrub = |text: &str| key.map_or_else(|| text.to_string(), |key| key.scrub(text));
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let error = &body["odata.error"];
    let code = header_code
        .or_else(|| error["code"].as_str().map(str::to_string))
        .map(|code| scrub(&code))
        .unwrap_or_default();
    let message = scrub(error["message"]["value"].as_str().unwrap_or(""));
    let message = message.lines().next().unwrap_or("").chars().take(300).collect();
    LedgerError::Http {
        backend: backend.to_string(),
        status,
        code,
        message,
        transient: crate::adapters::http::is_retryable_status(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_that_echoes_the_account_key_does_not_carry_it() {
        let key = "QUNDT1VOVC1LRVkvd2l0aCtzbGFzaGVz+/0123456789==";
        let secret = Secret::new(key);
        // Raw at the start, and JSON-escaped straddling the 300-character cut.
        for pad in [0, 290] {
            let echoed = format!("{}{key} is not a valid key", "x".repeat(pad));
            let body =
                serde_json::json!({"odata.error": {"code": "AuthenticationFailed", "message": {"value": echoed}}})
                    .to_string()
                    .replace('/', "\\/");
            let error = failure_from(403, Some(format!("Bad{key}")), &body, "table", Some(&secret)).to_string();
            for piece in key.as_bytes().windows(8) {
                let piece = std::str::from_utf8(piece).unwrap();
                assert!(!error.contains(piece), "at {pad}: {piece:?} in {error}");
            }
            assert!(error.contains("***"), "{error}");
        }
    }
}
