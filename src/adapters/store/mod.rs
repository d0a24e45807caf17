//! The ledger's stores: each implements [`crate::ledger::Ledger`]'s raw entity methods.
//! [`table`] (Azure Table Storage REST), [`local`] (a redb file), [`crate::ledger::memory`]
//! (tests and benchmarks, no I/O); [`open()`] picks one from `ledger.kind`.

pub mod local;
mod open;
pub mod table;
mod table_failure;
mod table_request;

pub use open::{LedgerTarget, StorageTarget, default_local_path, open, parse_connection_string, target};
