//! seedwatch keeps Hexiosec ASM seeds in step with an Azure estate.
//!
//! Layout (see `docs/ARCHITECTURE.md`):
//! - the pure core: [`seed`], [`resource`], [`check`], [`extract`], [`plan`], [`reconcile`]
//!   — no I/O;
//! - adapters behind small traits: [`azure`] (ARM, Resource Graph, credentials), [`asm`]
//!   (Hexiosec), [`ledger`] (Table Storage, redb), [`queue`] (Service Bus);
//! - engines over those traits: [`sync`] (the full reconcile) and [`apply`] (one resource);
//! - thin entry points: [`cli`], [`functions`] (the custom handler) and, with the `lambda`
//!   feature, `lambda`.

pub mod apply;
pub mod asm;
pub mod azure;
pub mod check;
pub mod cli;
pub mod config;
pub mod estate;
pub mod extract;
pub mod functions;
#[doc(hidden)]
pub mod fuzzing;
pub mod health;
pub mod http;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod ledger;
pub mod plan;
pub mod queue;
pub mod reconcile;
pub mod resource;
pub mod secret;
pub mod seed;
pub mod sync;
#[cfg(test)]
mod test_util;
