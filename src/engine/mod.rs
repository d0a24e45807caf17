//! The engines over the adapters' traits: [`reconcile`] (the one full reconcile with the
//! ledger), built from [`sync`] (the diff and the writes) and [`rebuild`] (the ledger from a
//! reconcile's result), and [`apply`] (one resource, incrementally).

pub mod apply;
pub mod rebuild;
pub(crate) mod reconcile;
pub(crate) mod refused;
pub mod sync;
