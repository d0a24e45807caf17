//! The entry points: decode, call the app, encode. [`cli`], the Azure Functions custom handler
//! ([`functions`]) and, with the `lambda` feature, AWS Lambda. [`events`] and [`resync`] decode
//! what both handlers receive (and [`resync`] encodes the answer); [`json`] reads the values the
//! hosts send; [`logging`] writes the JSON log lines both handlers emit.

pub mod cli;
pub(crate) mod events;
pub mod functions;
pub(crate) mod json;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod logging;
pub(crate) mod resync;
