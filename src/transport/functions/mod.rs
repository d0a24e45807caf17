//! The Azure Functions custom handler (`seedwatch serve`): the host's invocation protocol and
//! the five functions — `reconcile` (timer), `resource-events` (Event Grid), `resync` (HTTP),
//! `retry` (Service Bus) and `status` (HTTP).
//!
//! - [`envelope`]: decoding the host's `{"Data","Metadata"}` and encoding responses;
//! - [`server`]: the axum routes; [`status`]: the status function; [`limits`]: body size and
//!   read time per request. Log lines: [`crate::transport::logging`].

pub(crate) mod envelope;
pub mod limits;
pub mod server;
pub(crate) mod status;
