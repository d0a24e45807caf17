//! The engines over the adapters' traits: [`sync`] (the full reconcile), [`rebuild`] (the
//! reconcile with the ledger) and [`apply`] (one resource, incrementally).

pub mod apply;
pub mod rebuild;
pub mod refused;
pub mod sync;
