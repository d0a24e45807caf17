//! The `status` HTTP function (GET, `authLevel: function`): the connector state as JSON, or,
//! asked with `Accept: text/html`, the self-contained status page. Offline answers 503, every
//! other state 200; the state itself is in the body.

use serde_json::{Map, Value, json};

use crate::app::health::state::{ConnectorState, Decision, Reason, StatusInputs, decide};
use crate::app::state::AppState;
use crate::config::ProcessEnv;
use crate::transport::functions::envelope::InvocationResponse;

/// Whether the request's `Accept` header asks for HTML (`Headers` values are arrays of strings
/// in `Data.req`, strings in some hosts; names are case-insensitive).
pub(crate) fn wants_html(req: &Map<String, Value>) -> bool {
    let Some(headers) = req
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Headers"))
        .and_then(|(_, v)| v.as_object())
    else {
        return false;
    };
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("Accept"))
        .flat_map(|(_, v)| match v {
            Value::Array(items) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            Value::String(s) => vec![s.clone()],
            _ => Vec::new(),
        })
        .any(|accept| accept.to_ascii_lowercase().contains("text/html"))
}

/// The state now, from the handler's own clients; services that cannot be built are offline.
pub(crate) async fn current(state: &AppState) -> (StatusInputs, Decision) {
    let now = crate::domain::clock::now_ms();
    let source = match state.runner().await {
        Ok(runner) => runner.services().reconciler.status_source(),
        Err(e) => {
            let inputs = StatusInputs {
                now_ms: now,
                ..StatusInputs::default()
            };
            let decision = Decision {
                state: ConnectorState::Offline,
                reasons: vec![Reason {
                    reason: format!("seedwatch cannot start its services: {e}"),
                    advice: "fix the setting the error names (run `seedwatch check` with the app's settings)".into(),
                }],
                notes: Vec::new(),
            };
            return (inputs, decision);
        }
    };
    let inputs = match source {
        Some(source) => crate::app::health::status::gather(&source, &ProcessEnv, now).await,
        None => StatusInputs {
            now_ms: now,
            ..StatusInputs::default()
        },
    };
    let decision = decide(&inputs);
    (inputs, decision)
}

/// The `res` output: the page or the JSON.
pub(crate) fn response(inputs: &StatusInputs, decision: &Decision, html: bool) -> InvocationResponse {
    let status = if decision.state == ConnectorState::Offline {
        503
    } else {
        200
    };
    let mut response = InvocationResponse::new();
    response.log(format!("status answered {status}: {}", decision.state.as_str()));
    let output = if html {
        json!({
            "statusCode": status,
            "headers": {
                "Content-Type": "text/html; charset=utf-8",
                "Cache-Control": "no-store",
                // Nothing but the page itself: no outside asset can load, the script may only
                // call this app (the resync function).
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; img-src data:",
            },
            "body": crate::app::health::page::render(inputs, decision),
        })
    } else {
        json!({
            "statusCode": status,
            "headers": {"Content-Type": "application/json", "Cache-Control": "no-store"},
            // The envelope holds its outputs as `Value`s; the document becomes one here.
            "body": crate::app::health::state::StatusDocument::new(inputs, decision),
        })
    };
    response.output(crate::transport::functions::server::bindings::RESPONSE, output);
    response
}
