//! The integration tests, as one test binary: each module was once its own binary under
//! `tests/`, and linking the whole crate into each of them dominated the test build. A test's
//! name is its module path (`cargo test --test it sync::`; the Lambda tests need the feature:
//! `cargo test --features lambda --test it lambda::`).

mod support;

mod apply;
mod architecture_table;
mod arm_reads;
mod asm_plan;
mod azure;
mod azure_strict;
mod credentials;
mod deploy;
mod extract;
mod fanout;
mod fuzz;
mod handler;
mod handler_deletion;
mod handler_delivery;
mod health;
mod identity;
// The AWS Lambda entry point exists only with the `lambda` cargo feature.
#[cfg(feature = "lambda")]
mod lambda;
mod layers;
mod ledger;
mod plan_cli;
mod secrets;
mod status;
mod sweep_extracted;
mod sync;
mod tenants;
mod tenants_handler;
