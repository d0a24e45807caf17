//! The transport-neutral service: the runner (apply with scheduled retries, queued jobs,
//! reconciles), coalescing, fan-out, the engines behind small ports, and connector health.

pub mod build;
pub(crate) mod coalesce;
pub mod engines;
pub(crate) mod fanout;
pub(crate) mod health;
pub mod ports;
pub(crate) mod resync;
pub mod runner;
pub mod state;
