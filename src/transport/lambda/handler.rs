//! The Lambda handler: one function over `LambdaEvent<serde_json::Value>`, dispatching on the
//! payload's shape. The work goes through the Functions handler's runner (the same apply path
//! with scheduled Service Bus retries, the same reconcile with its guard rails); only the
//! transport differs.
//!
//! Status codes towards Event Grid (which retries 5xx and timeouts, and drops or dead-letters
//! 400/401/403/413 at once): 200 when every change was applied, acknowledged (an event that
//! cannot be read is acknowledged and logged with its id, as the Functions path does), or had
//! its retry queued; 500 only when a change could not be applied nor queued (or the engines
//! cannot be built), so Event Grid delivers again; 400 only for a body that is unusable as a
//! whole (not JSON, not events).

use std::sync::Arc;

use lambda_runtime::LambdaEvent;
use serde_json::{Map, Value, json};
use tracing::Instrument;

use super::url::{UrlRequest, UrlResponse, is_function_url};
use super::webhook::{self, Delivery, WebhookSecret};
use crate::app::ports::Scope;
use crate::app::resync::{self, LongResync};
use crate::app::runner::RunOutcome;
use crate::app::state::AppState;
use crate::transport::events::{EventNote, sort_events};
use crate::transport::resync::parse_body;

/// The EventBridge Scheduler input that asks for a reconcile: `{"seedwatch": "reconcile"}`.
pub(crate) const SCHEDULER_KEY: &str = "seedwatch";
pub(crate) const SCHEDULER_RECONCILE: &str = "reconcile";

/// The paths the function URL serves.
pub(crate) const EVENTS_PATHS: [&str; 2] = ["/", "/events"];
pub(crate) const RESYNC_PATH: &str = "/resync";

/// What a Lambda payload is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Trigger {
    /// A scheduled-rule event or the Scheduler's reconcile input.
    Schedule { source: String },
    /// A function URL request.
    FunctionUrl,
    /// Anything else: acknowledged and logged, not acted on.
    Unknown { reason: String },
}

/// Tells the triggers apart by shape.
pub(crate) fn classify(payload: &Value) -> Trigger {
    if is_function_url(payload) {
        return Trigger::FunctionUrl;
    }
    let text = |name: &str| payload.get(name).and_then(Value::as_str).unwrap_or("");
    if text("detail-type") == "Scheduled Event" {
        return Trigger::Schedule {
            source: text("source").to_string(),
        };
    }
    if payload
        .get(SCHEDULER_KEY)
        .and_then(Value::as_str)
        .is_some_and(|v| v.eq_ignore_ascii_case(SCHEDULER_RECONCILE))
    {
        return Trigger::Schedule {
            source: "scheduler input".to_string(),
        };
    }
    let reason = if payload.get("detail-type").is_some() {
        format!(
            "EventBridge event {:?} from {:?} is not a schedule",
            text("detail-type"),
            text("source")
        )
    } else {
        format!(
            "not a scheduled event, a {{\"{SCHEDULER_KEY}\": \"{SCHEDULER_RECONCILE}\"}} input nor a function URL request"
        )
    };
    Trigger::Unknown { reason }
}

/// The function: the engines (built lazily, once per execution environment) and the secret.
#[derive(Clone)]
pub struct LambdaApp {
    state: AppState,
    secret: Arc<Result<WebhookSecret, String>>,
}

impl LambdaApp {
    /// `secret` is `Err` with the reason when none is configured: every HTTP request is then
    /// refused, while scheduled reconciles still run.
    pub fn new(state: AppState, secret: Result<WebhookSecret, String>) -> LambdaApp {
        LambdaApp {
            state,
            secret: Arc::new(secret),
        }
    }

    /// The `service_fn` handler. A function URL request always gets an HTTP answer (`Ok`); a
    /// scheduled reconcile that fails returns `Err`, so it shows in the function's error metrics.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
        let (payload, context) = event.into_parts();
        let trigger = classify(&payload);
        let function = match &trigger {
            Trigger::Schedule { .. } => "reconcile",
            Trigger::FunctionUrl => "webhook",
            Trigger::Unknown { .. } => "unknown",
        };
        let span = tracing::info_span!("invocation", invocation_id = %context.request_id, function);
        async move {
            match trigger {
                Trigger::Schedule { source } => self.reconcile(&source).await,
                Trigger::FunctionUrl => Ok(self.http(&payload).await.into_payload()),
                Trigger::Unknown { reason } => {
                    tracing::warn!(reason, "payload acknowledged, not acted on");
                    Ok(json!({"ignored": reason}))
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn reconcile(&self, source: &str) -> Result<Value, lambda_runtime::Error> {
        tracing::info!(source, "scheduled reconcile");
        let runner = self.state.runner().await?;
        match runner.reconcile_or_retry(&Scope::All, 0).await {
            RunOutcome::Done { summary } => {
                let summary = serde_json::to_value(&summary).unwrap_or_default();
                tracing::info!(summary = %summary, "reconcile done");
                Ok(json!({"outcome": "done", "summary": summary}))
            }
            RunOutcome::Queued { message_id, cause } => {
                Ok(json!({"outcome": "retry_scheduled", "messageId": message_id, "cause": cause}))
            }
            RunOutcome::Dropped { cause } | RunOutcome::Failed { cause } => {
                Err(format!("reconcile failed: {cause}").into())
            }
        }
    }

    async fn http(&self, payload: &Value) -> UrlResponse {
        let request = match UrlRequest::from_payload(payload) {
            Ok(r) => r,
            Err(e) => return rejected(400, e),
        };
        let secret = match self.secret.as_ref() {
            Ok(secret) => secret,
            Err(why) => {
                tracing::error!(error = %why, "function URL request refused: no shared secret configured");
                return UrlResponse::json(503, json!({"error": why}));
            }
        };
        if !secret.admits(&request) {
            tracing::warn!(method = %request.method, path = %request.path, "function URL request without the shared secret");
            return UrlResponse::json(
                401,
                json!({"error": format!("missing or wrong shared secret (?{}= or {})", webhook::SECRET_QUERY, webhook::SECRET_HEADER)}),
            );
        }
        let path = request.path.trim_end_matches('/');
        let path = if path.is_empty() { "/" } else { path };
        match (request.method.as_str(), path) {
            ("OPTIONS", _) => abuse_protection(&request),
            ("POST", RESYNC_PATH) => self.resync(&request).await,
            ("POST", p) if EVENTS_PATHS.contains(&p) => self.events(&request).await,
            (_, p) if p == RESYNC_PATH || EVENTS_PATHS.contains(&p) => UrlResponse::json(
                405,
                json!({"error": format!("{} {}: use POST (or OPTIONS for the CloudEvents handshake)", request.method, request.path)}),
            )
            .with_header("allow", "POST, OPTIONS"),
            _ => UrlResponse::json(
                404,
                json!({"error": format!("nothing at {}: Event Grid posts to /, resyncs to {RESYNC_PATH}", request.path)}),
            ),
        }
    }

    /// An Event Grid delivery: the validation handshake, or events through the apply path.
    async fn events(&self, request: &UrlRequest) -> UrlResponse {
        let events = match webhook::read_delivery(request.header(webhook::EVENT_TYPE_HEADER), &request.body) {
            Err(e) => return rejected(400, e),
            Ok(Delivery::Validation { code }) => {
                tracing::info!("Event Grid subscription validation answered");
                return UrlResponse::json(200, json!({"validationResponse": code}));
            }
            Ok(Delivery::Deletion) => {
                tracing::info!("Event Grid subscription deletion acknowledged");
                return UrlResponse::json(200, json!({"acknowledged": "SubscriptionDeletion"}));
            }
            Ok(Delivery::Events(events)) => events,
        };
        // Read every event first. An unreadable event is acknowledged and logged with its id,
        // as the Functions path does: redelivery cannot make it readable, and a failure would
        // have Event Grid drop or redeliver the good events of the batch with it. So a delivery
        // of only unreadable events is a 200 too.
        let sorted = sort_events(&events);
        let (total, changes) = (sorted.total, sorted.changes);
        let mut ignored = Vec::new();
        let mut rejected_events = Vec::new();
        for note in sorted.notes {
            match note {
                EventNote::Unreadable { id, error } => rejected_events.push(json!({"id": id, "error": error})),
                EventNote::Ignored { id, reason } => ignored.push(json!({"id": id, "reason": reason})),
            }
        }
        let mut body = json!({"events": total, "ignored": ignored, "rejected": rejected_events, "results": []});
        if changes.is_empty() {
            return UrlResponse::json(200, body);
        }
        let runner = match self.state.runner().await {
            Ok(r) => r,
            Err(e) => return rejected(500, e.to_string()),
        };
        let outcomes = runner.apply_events(changes).await;
        let mut failed = false;
        let mut results = Vec::new();
        for (event_id, resource, outcome) in outcomes {
            failed |= !outcome.acknowledged();
            let mut line = serde_json::to_value(&outcome).unwrap_or_default();
            line["id"] = event_id.into();
            line["resource"] = resource.into();
            results.push(line);
        }
        body["results"] = Value::Array(results);
        if failed {
            tracing::error!("a change could not be applied nor queued: answering 500 so Event Grid delivers again");
            return UrlResponse::json(500, body);
        }
        UrlResponse::json(200, body)
    }

    /// `POST /resync` with `{"scope", "id", "dry_run"}`. A Lambda invocation may run for up to
    /// 15 minutes, so a full resync runs here and answers with its summary.
    async fn resync(&self, request: &UrlRequest) -> UrlResponse {
        let body = match serde_json::from_slice::<Value>(&request.body) {
            Ok(Value::Object(map)) => map,
            Ok(other) => {
                return rejected(
                    400,
                    format!(
                        "body is {}: expected an object such as {{\"scope\": \"all\"}}",
                        crate::transport::json::describe(&other)
                    ),
                );
            }
            Err(_) if request.body.iter().all(u8::is_ascii_whitespace) => {
                return rejected(400, "empty body: send JSON such as {\"scope\": \"all\"}".into());
            }
            Err(e) => return rejected(400, format!("body is not JSON: {e}")),
        };
        let resync = match parse_body(&body) {
            Ok(r) => r,
            Err(e) => return rejected(400, e),
        };
        let runner = match self.state.runner().await {
            Ok(r) => r,
            Err(e) => return rejected(503, e.to_string()),
        };
        let done = resync::resync(&runner, &resync.scope, resync.dry_run, LongResync::RunHere).await;
        let (status, body) = crate::transport::resync::answer(&done);
        UrlResponse::json(status, body)
    }
}

/// The CloudEvents abuse-protection handshake: allow the origin that asks.
fn abuse_protection(request: &UrlRequest) -> UrlResponse {
    match webhook::allowed_origin(request) {
        Some(origin) => {
            tracing::info!(origin, "CloudEvents webhook handshake answered");
            UrlResponse::empty(200)
                .with_header("webhook-allowed-origin", origin)
                .with_header("webhook-allowed-rate", "*")
                .with_header("allow", "POST, OPTIONS")
        }
        None => rejected(
            400,
            format!("OPTIONS without a usable {} header", webhook::REQUEST_ORIGIN_HEADER),
        ),
    }
}

/// An error answer, logged at the level its status deserves.
fn rejected(status: u16, message: String) -> UrlResponse {
    if status >= 500 {
        tracing::error!(status, error = %message, "function URL request failed");
    } else {
        tracing::warn!(status, error = %message, "function URL request rejected");
    }
    UrlResponse::json(
        status,
        Value::Object(Map::from_iter([("error".to_string(), message.into())])),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_shapes_are_told_apart() {
        let rule = json!({"version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "1", "time": "2025-03-01T10:00:00Z", "region": "eu-west-1", "resources": [], "detail": {}});
        assert_eq!(
            classify(&rule),
            Trigger::Schedule {
                source: "aws.events".into()
            }
        );
        assert!(matches!(
            classify(&json!({"seedwatch": "reconcile"})),
            Trigger::Schedule { .. }
        ));
        assert_eq!(
            classify(&json!({"requestContext": {"http": {"method": "POST"}}})),
            Trigger::FunctionUrl
        );
        let other = json!({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2"});
        assert!(matches!(classify(&other), Trigger::Unknown { reason } if reason.contains("not a schedule")));
        assert!(matches!(classify(&json!({})), Trigger::Unknown { .. }));
        assert!(matches!(
            classify(&json!({"seedwatch": "wipe"})),
            Trigger::Unknown { .. }
        ));
    }
}
