//! The HTTP server the Functions host talks to: `GET /` for readiness, one `POST /{function}`
//! per function. Every answer is `{"Outputs", "Logs", "ReturnValue"}` JSON with
//! `Content-Type: application/json` (an empty 2xx would hang the invocation in the host).
//!
//! Status codes towards the host: 200 when the invocation succeeded (including events that
//! are acknowledged without processing, and events that cannot be read, which are logged);
//! 400 for an invocation envelope that cannot be read (nothing was done); 500 when work could
//! not be done nor queued, so the trigger delivers again.

use std::future::Future;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tracing::Instrument;

use crate::adapters::servicebus::RetryJob;
use crate::app::resync::{self, LongResync};
use crate::app::runner::{ApplyOutcome, RunOutcome};
use crate::domain::change::{Change, EventRef};
use crate::transport::events::{EventNote, event_values, sort_events};
use crate::transport::functions::envelope::{Invocation, InvocationResponse, http_output};
use crate::transport::functions::limits::bounded_body;
use crate::transport::resync::parse_request;

/// Input and output binding names, as in `function/*/function.json`.
pub(crate) mod bindings {
    pub(crate) const TIMER: &str = "timer";
    pub(crate) const EVENT: &str = "event";
    pub(crate) const REQUEST: &str = "req";
    pub(crate) const RESPONSE: &str = "res";
    pub(crate) const MESSAGE: &str = "msg";
}

/// The function names (folder names under `function/`), which are also the routes.
pub(crate) const FUNCTIONS: [&str; 5] = ["reconcile", "resource-events", "resync", "retry", "status"];

/// The invocation id header the host sends with every invocation.
pub(crate) const INVOCATION_ID_HEADER: &str = "x-azure-functions-invocationid";

pub use crate::app::state::{AppState, ServicesFactory};

/// The routes, without a listener (tests drive it in-process too).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(ready))
        .route("/reconcile", post(reconcile))
        .route("/resource-events", post(resource_events))
        .route("/resync", post(resync))
        .route("/retry", post(retry))
        .route("/status", post(status))
        .fallback(unknown)
        .layer(middleware::from_fn_with_state(state.clone(), bounded_body))
        .layer(middleware::from_fn(invocation_span))
        // The body is bounded (and timed) by `bounded_body`, which answers in the host's JSON.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Serves on `listener` until `shutdown` completes, then finishes the invocations in flight.
///
/// HTTP/1.1 only (what the host speaks), on hyper's own connection loop so that a request's
/// headers must arrive within the body read timeout too: a sender dribbling header bytes
/// cannot hold a connection (`axum::serve` sets no header timeout).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    state.warm_up();
    let header_timeout = state.limits().body_read_timeout;
    let app = router(state);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

async fn invocation_span(request: Request, next: Next) -> Response {
    let invocation_id = request
        .headers()
        .get(INVOCATION_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let function = request.uri().path().trim_start_matches('/').to_string();
    if function.is_empty() {
        return next.run(request).await;
    }
    let span = tracing::info_span!("invocation", invocation_id = %invocation_id, function = %function);
    next.run(request).instrument(span).await
}

fn reply(status: StatusCode, response: InvocationResponse) -> Response {
    // Json sets `Content-Type: application/json` and always writes at least `{...}`.
    (status, axum::Json(response)).into_response()
}

/// A failed invocation: logged, and answered with the error in `Logs`.
pub(super) fn failure(status: StatusCode, message: String) -> Response {
    if status.is_server_error() {
        tracing::error!(error = %message, "invocation failed");
    } else {
        tracing::warn!(error = %message, "invocation rejected");
    }
    let mut response = InvocationResponse::new();
    response.log(format!("error: {message}"));
    reply(status, response)
}

async fn ready() -> Response {
    (StatusCode::OK, axum::Json(json!({"status": "ready"}))).into_response()
}

async fn unknown(request: Request) -> Response {
    failure(
        StatusCode::NOT_FOUND,
        format!(
            "no function at {} {} (functions: {})",
            request.method(),
            request.uri().path(),
            FUNCTIONS.join(", ")
        ),
    )
}

async fn resource_events(State(state): State<AppState>, body: Bytes) -> Response {
    let invocation = match Invocation::parse(&body) {
        Ok(i) => i,
        Err(e) => return failure(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let Some(raw) = invocation.raw_input(bindings::EVENT) else {
        return failure(
            StatusCode::BAD_REQUEST,
            format!("invocation Data has no input named {:?}", bindings::EVENT),
        );
    };
    let (changes, mut response) = read_events(raw);
    if changes.is_empty() {
        return reply(StatusCode::OK, response);
    }
    let runner = match state.runner().await {
        Ok(r) => r,
        Err(e) => return failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let outcomes = runner.apply_events(changes).await;
    let mut failed = Vec::new();
    for (event_id, resource, outcome) in outcomes {
        if let ApplyOutcome::Failed { cause } = &outcome {
            failed.push(format!("event {event_id} for {resource}: {cause}"));
        }
        let outcome_json = serde_json::to_value(&outcome).unwrap_or_default();
        response.log(format!("event {event_id} for {resource}: {outcome_json}"));
    }
    if !failed.is_empty() {
        // The host drops a failed invocation's Logs: this line is what the operator sees.
        tracing::error!(
            causes = %failed.join("; "),
            "invocation failed: a change could not be applied nor queued; the event will be delivered again"
        );
        return reply(StatusCode::INTERNAL_SERVER_ERROR, response);
    }
    reply(StatusCode::OK, response)
}

/// Reads a delivery's events; each one not processed gets a line in the answer's `Logs`.
fn read_events(raw: &Value) -> (Vec<(EventRef, Change)>, InvocationResponse) {
    let mut response = InvocationResponse::new();
    let sorted = sort_events(&event_values(raw));
    for note in &sorted.notes {
        response.log(match note {
            EventNote::Unreadable { id, error } => {
                format!("event {id} acknowledged, not processed: it cannot be read: {error}")
            }
            EventNote::Ignored { id, reason } => format!("event {id} acknowledged, not processed: {reason}"),
        });
    }
    (sorted.changes, response)
}

/// The invocation and its `binding` input as an object, or what was wrong with either.
fn invocation_input(
    body: &[u8],
    binding: &str,
) -> Result<(Invocation, serde_json::Map<String, Value>), crate::transport::functions::envelope::EnvelopeError> {
    let invocation = Invocation::parse(body)?;
    let input = invocation.input_object(binding)?;
    Ok((invocation, input))
}

async fn retry(State(state): State<AppState>, body: Bytes) -> Response {
    let (invocation, object) = match invocation_input(&body, bindings::MESSAGE) {
        Ok(decoded) => decoded,
        Err(e) => return failure(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if crate::adapters::servicebus::probe::is_probe(&object) {
        tracing::info!("queue probe from `seedwatch check` received and dropped");
        let mut response = InvocationResponse::new();
        response.log("queue probe dropped");
        return reply(StatusCode::OK, response);
    }
    let job: RetryJob = match serde_json::from_value(Value::Object(object)) {
        Ok(job) => job,
        Err(e) => {
            return failure(
                StatusCode::BAD_REQUEST,
                format!("input \"msg\" is not a seedwatch job: {e}"),
            );
        }
    };
    let message_id = invocation.metadata_text("MessageId").unwrap_or_default();
    let delivery_count = invocation.metadata_text("DeliveryCount").unwrap_or_default();
    tracing::info!(message_id, delivery_count, job = job.label(), "queued job received");
    let runner = match state.runner().await {
        Ok(r) => r,
        Err(e) => return failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let outcome = match runner.run_job(job).await {
        Ok(outcome) => outcome,
        Err(e) => return failure(StatusCode::BAD_REQUEST, format!("input \"msg\": {e}")),
    };
    let mut response = InvocationResponse::new();
    match outcome {
        RunOutcome::Done { summary } => response.log(format!("job {message_id} done: {}", json_text(&summary))),
        RunOutcome::Queued {
            message_id: next,
            cause,
        } => response.log(format!("job {message_id} failed ({cause}); retry {next} scheduled")),
        RunOutcome::Dropped { cause } => response.log(format!("job {message_id} not done: {cause}")),
        RunOutcome::Failed { cause } => return failure(StatusCode::INTERNAL_SERVER_ERROR, cause),
    }
    reply(StatusCode::OK, response)
}

async fn reconcile(State(state): State<AppState>, body: Bytes) -> Response {
    let invocation = match Invocation::parse(&body) {
        Ok(i) => i,
        Err(e) => return failure(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let timer = invocation.input(bindings::TIMER).unwrap_or(Value::Null);
    let past_due = timer
        .get("IsPastDue")
        .map(crate::transport::functions::envelope::decode_value)
        .is_some_and(|v| v == Value::Bool(true));
    if past_due {
        tracing::warn!(
            is_past_due = true,
            "reconcile timer is past due (the host was down or busy at the scheduled time)"
        );
    } else {
        tracing::info!(is_past_due = false, "reconcile timer fired");
    }
    let runner = match state.runner().await {
        Ok(r) => r,
        Err(e) => return failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let mut response = InvocationResponse::new();
    let run = runner.timer_reconcile();
    match crate::app::health::record::TRIGGER.scope("timer", run).await {
        RunOutcome::Done { summary } => {
            let summary = json_text(&summary);
            tracing::info!(summary = %summary, "reconcile done");
            response.log(format!("reconcile done: {summary}"));
        }
        RunOutcome::Queued { message_id, cause } => {
            response.log(format!("reconcile failed ({cause}); retry {message_id} scheduled"))
        }
        RunOutcome::Dropped { cause } | RunOutcome::Failed { cause } => {
            return failure(StatusCode::INTERNAL_SERVER_ERROR, format!("reconcile failed: {cause}"));
        }
    }
    reply(StatusCode::OK, response)
}

async fn resync(State(state): State<AppState>, body: Bytes) -> Response {
    let (_, request) = match invocation_input(&body, bindings::REQUEST) {
        Ok(decoded) => decoded,
        Err(e) => return failure(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let mut response = InvocationResponse::new();
    let (status, body) = match parse_request(&request) {
        Err(message) => {
            tracing::warn!(error = %message, "resync request rejected");
            (400, json!({"error": message}))
        }
        Ok(resync) => match state.runner().await {
            Err(e) => (503, json!({"error": e.to_string()})),
            // Small or dry-run work is answered at once; a full reconcile of a subscription or
            // the estate may outlast the 230-second HTTP limit, so it is queued (202).
            Ok(runner) => {
                let done = resync::resync(&runner, &resync.scope, resync.dry_run, LongResync::Queue).await;
                crate::transport::resync::answer(&done)
            }
        },
    };
    response.log(format!("resync answered {status}"));
    response.output(bindings::RESPONSE, http_output(status, body));
    reply(StatusCode::OK, response)
}

/// A summary as the one-line JSON the logs carry.
fn json_text(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or_default()
}

/// The `status` function: the connector state as JSON, or the page for `Accept: text/html`.
async fn status(State(state): State<AppState>, body: Bytes) -> Response {
    let (_, request) = match invocation_input(&body, bindings::REQUEST) {
        Ok(decoded) => decoded,
        Err(e) => return failure(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let (inputs, decision) = crate::transport::functions::status::current(&state).await;
    let html = crate::transport::functions::status::wants_html(&request);
    reply(
        StatusCode::OK,
        crate::transport::functions::status::response(&inputs, &decision, html),
    )
}
