//! The transport-neutral service: the runner (apply with scheduled retries, queued jobs,
//! reconciles), coalescing, fan-out, the engines behind small ports, and connector health.

pub mod build;
pub mod coalesce;
pub mod engines;
pub mod fanout;
pub mod health;
pub mod ports;
pub mod resync;
pub mod runner;
pub mod state;
