//! The `resync` HTTP function's request: `{"scope": "all" | "subscription" | "resource",
//! "id": "...", "dry_run": false}` in the `req` binding's `Body`. Pure.

use serde_json::{Map, Value, json};

use crate::app::ports::Scope;
use crate::app::resync::{ResyncAnswer, ResyncResult};
use crate::app::runner::Summary;
use crate::domain::resource::ResourceId;
use crate::transport::json::{decode_value, describe};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResyncRequest {
    pub scope: Scope,
    pub dry_run: bool,
}

/// Reads the request from the `req` binding object the host sends (`Body` is the raw body as a
/// string; it is absent when the caller sent no `Content-Length`, e.g. a chunked body).
pub(crate) fn parse_request(req: &Map<String, Value>) -> Result<ResyncRequest, String> {
    let body = req
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Body"))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null() && v.as_str().is_none_or(|s| !s.trim().is_empty()));
    let Some(body) = body else {
        return Err(
            "empty body: send JSON such as {\"scope\": \"all\"} with a Content-Length \
                    (the Functions host drops chunked request bodies)"
                .into(),
        );
    };
    let body = match decode_value(body) {
        Value::Object(map) => map,
        Value::String(_) => return Err("body is not JSON: expected an object such as {\"scope\": \"all\"}".into()),
        other => {
            return Err(format!(
                "body is {}: expected an object such as {{\"scope\": \"all\"}}",
                describe(&other)
            ));
        }
    };
    parse_body(&body)
}

/// Checks the body's fields; errors name the field and what was expected.
pub(crate) fn parse_body(body: &Map<String, Value>) -> Result<ResyncRequest, String> {
    for key in body.keys() {
        if !matches!(key.as_str(), "scope" | "id" | "dry_run") {
            return Err(format!("unknown field {key:?}: expected scope, id and dry_run"));
        }
    }
    let dry_run = match body.get("dry_run") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(format!("dry_run is {}: expected true or false", describe(other))),
    };
    let id = match body.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(other) => return Err(format!("id is {}: expected a non-empty string", describe(other))),
    };
    let scope = match body.get("scope") {
        None => return Err("scope is missing: expected \"all\", \"subscription\" or \"resource\"".into()),
        Some(Value::String(s)) => s.trim().to_ascii_lowercase(),
        Some(other) => {
            return Err(format!(
                "scope is {}: expected \"all\", \"subscription\" or \"resource\"",
                describe(other)
            ));
        }
    };
    let scope = match (scope.as_str(), id) {
        ("all", None) => Scope::All,
        ("all", Some(_)) => return Err("id must not be set when scope is \"all\"".into()),
        ("subscription", Some(id)) => Scope::Subscription(subscription_id(&id)?),
        ("resource", Some(id)) => Scope::Resource(ResourceId::parse(&id).map_err(|e| format!("id: {e}"))?),
        ("subscription" | "resource", None) => return Err(format!("id is required when scope is \"{scope}\"")),
        (other, _) => {
            return Err(format!(
                "scope {other:?}: expected \"all\", \"subscription\" or \"resource\""
            ));
        }
    };
    Ok(ResyncRequest { scope, dry_run })
}

/// A subscription id, bare (`1111…`) or as `/subscriptions/1111…`.
fn subscription_id(raw: &str) -> Result<String, String> {
    let bare = raw.trim().trim_start_matches("/subscriptions/").trim_end_matches('/');
    if bare.is_empty() || !bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(format!("id {raw:?}: expected a subscription id"));
    }
    Ok(bare.to_string())
}

/// The resync's answer as both transports send it: `{"scope", "id", "dry_run"}` and the
/// `result`, `summary`, `accepted` or `error`, with its HTTP status.
pub(crate) fn answer(answer: &ResyncAnswer) -> (u16, Value) {
    let scope = &answer.scope;
    let mut body = json!({"scope": scope.name(), "id": scope.id(), "dry_run": answer.dry_run});
    match &answer.result {
        ResyncResult::Done(summary @ Summary::Applied(_)) => body["result"] = to_value(summary),
        ResyncResult::Done(summary) => body["summary"] = to_value(summary),
        ResyncResult::ApplyQueued(outcome) => body["result"] = to_value(outcome),
        ResyncResult::RetryScheduled { message_id, cause } => {
            body["result"] = json!({"outcome": "retry_scheduled", "messageId": message_id, "cause": cause})
        }
        ResyncResult::Accepted { message_id } => {
            body["accepted"] = true.into();
            body["messageId"] = message_id.as_str().into();
        }
        ResyncResult::Failed { cause, .. } => body["error"] = cause.as_str().into(),
    }
    (answer.result.status(), body)
}

fn to_value(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(body: Value) -> Map<String, Value> {
        json!({"Method": "POST", "Url": "https://x/api/resync", "Body": body})
            .as_object()
            .cloned()
            .unwrap()
    }

    #[test]
    fn good_bodies() {
        let r = parse_request(&req(json!("{\"scope\":\"all\"}"))).unwrap();
        assert_eq!((r.scope, r.dry_run), (Scope::All, false));
        let r = parse_request(&req(json!(
            "{\"scope\":\"subscription\",\"id\":\"/subscriptions/abc-1\",\"dry_run\":true}"
        )))
        .unwrap();
        assert_eq!((r.scope, r.dry_run), (Scope::Subscription("abc-1".into()), true));
        let r = parse_request(&req(
            json!({"scope": "resource", "id": "/subscriptions/1/resourceGroups/rg"}),
        ))
        .unwrap();
        assert!(matches!(r.scope, Scope::Resource(_)));
    }

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        let cases = [
            (json!(null), "empty body"),
            (json!(""), "empty body"),
            (json!("scope=all"), "not JSON"),
            (json!("[1]"), "array"),
            (json!("{}"), "scope is missing"),
            (json!("{\"scope\":\"planet\"}"), "\"planet\""),
            (json!("{\"scope\":\"resource\"}"), "id is required"),
            (json!("{\"scope\":\"resource\",\"id\":\"nope\"}"), "id:"),
            (json!("{\"scope\":\"all\",\"dry_run\":\"yes\"}"), "dry_run"),
            (json!("{\"scope\":\"all\",\"id\":\"x\"}"), "must not be set"),
            (json!("{\"scope\":\"all\",\"dryrun\":true}"), "unknown field"),
            (json!("{\"scope\":\"subscription\",\"id\":\"a/b\"}"), "subscription id"),
            // Ids that would change an ARM URL's meaning are refused, naming the id.
            (
                json!({"scope": "resource", "id": "/subscriptions/1/resourceGroups/rg/providers/A.B/c/d?x=1"}),
                "\"/subscriptions/1/resourceGroups/rg/providers/A.B/c/d?x=1\"",
            ),
            (
                json!({"scope": "resource", "id": "/subscriptions/1/resourceGroups/rg/providers/A.B/c/../../x/y"}),
                "\"..\"",
            ),
        ];
        for (body, needle) in cases {
            let err = parse_request(&req(body.clone())).unwrap_err();
            assert!(err.contains(needle), "{body}: {err}");
        }
        let mut no_body = req(json!(null));
        no_body.remove("Body");
        assert!(parse_request(&no_body).unwrap_err().contains("Content-Length"));
    }
}
