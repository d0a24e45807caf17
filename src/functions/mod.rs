//! The Azure Functions custom handler (`seedwatch serve`): the host's invocation protocol,
//! Event Grid events, coalescing, and the four functions — `reconcile` (timer),
//! `resource-events` (Event Grid), `resync` (HTTP) and `retry` (Service Bus).
//!
//! - [`envelope`]: decoding the host's `{"Data","Metadata"}` and encoding responses;
//! - [`events`]: Event Grid / CloudEvents parsing into resource changes (pure);
//! - [`resync`]: the resync request body (pure);
//! - [`coalesce`]: one apply per resource per burst;
//! - [`runner`]: applying with scheduled retries, running queued jobs, reconciling;
//! - [`ports`]: the engines as small traits; [`engines`]: the real ones behind them;
//! - [`server`]: the axum routes; [`limits`]: body size and read time per request;
//!   [`logging`]: JSON log lines.

pub mod coalesce;
pub mod engines;
pub mod envelope;
pub mod events;
pub mod fanout;
pub mod limits;
pub mod logging;
pub mod ports;
pub mod resync;
pub mod runner;
pub mod server;
pub mod status;
