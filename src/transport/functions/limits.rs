//! What one invocation request may cost the server: its body size and how long the body may
//! take to arrive. The Functions host sends from the same machine and at once, so a body that
//! is larger than any invocation the host forwards, or that trickles in, is refused before any
//! work: it cannot hold memory or a connection for long.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;

use crate::app::state::AppState;
use crate::transport::functions::server::failure;

pub use crate::app::state::{BODY_READ_TIMEOUT, Limits, MAX_BODY};

/// Middleware: reads the body within the limits, then hands it on in full.
pub(crate) async fn bounded_body(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limits = state.limits();
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body as u64) {
        return too_large(limits);
    }
    match tokio::time::timeout(limits.body_read_timeout, collect(body, limits.max_body)).await {
        Err(_) => failure(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {:?}; the connection is closed",
                limits.body_read_timeout
            ),
        ),
        Ok(Err(Collect::TooLarge)) => too_large(limits),
        Ok(Err(Collect::Broken(e))) => failure(
            StatusCode::BAD_REQUEST,
            format!("the request body could not be read: {e}"),
        ),
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
    }
}

fn too_large(limits: Limits) -> Response {
    failure(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the request body is larger than {} bytes (an Event Grid delivery is at most 1 MB)",
            limits.max_body
        ),
    )
}

enum Collect {
    TooLarge,
    Broken(axum::Error),
}

async fn collect(body: Body, max: usize) -> Result<Bytes, Collect> {
    let mut stream = body.into_data_stream();
    let mut collected = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(Collect::Broken)?;
        if collected.len() + chunk.len() > max {
            return Err(Collect::TooLarge);
        }
        collected.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(collected))
}
