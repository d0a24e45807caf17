//! seedwatch keeps Hexiosec ASM seeds in step with an Azure estate.
//!
//! Layers, bottom to top (see `docs/ARCHITECTURE.md`); a module imports only from its own layer
//! or the layers below it, and `tests/it/layers.rs` keeps it so:
//! - [`domain`]: the pure core (seeds, resources, checks, extraction, plans, reconcile): no I/O;
//! - [`config`]: the typed configuration;
//! - [`ledger`]: the provenance ledger's records and rules over a store;
//! - [`adapters`]: I/O behind small traits: HTTP, Azure, ASM, Service Bus, the ledger stores;
//! - [`engine`]: the reconcile and the per-resource apply over those traits;
//! - [`app`]: the composition root and the transport-neutral service (runner, coalescing,
//!   health);
//! - [`transport`]: the entry points: CLI, the Functions custom handler and, with the `lambda`
//!   feature, AWS Lambda.

// The modules that tests/it, the benches, the binaries and the fuzz targets use stay `pub`;
// the rest are `pub(crate)`. The lint flags a `pub` item that nothing outside can reach.
#![warn(unreachable_pub)]

pub mod adapters;
pub mod app;
pub mod config;
pub mod domain;
pub mod engine;
#[doc(hidden)]
pub mod fuzzing;
pub mod ledger;
#[cfg(test)]
mod test_util;
pub mod transport;
