//! The pure core: no I/O, no clocks read behind the caller's back, no JSON beyond the resource
//! bodies Azure hands over.

pub mod change;
pub mod check;
pub(crate) mod clock;
pub(crate) mod completeness;
pub(crate) mod estate;
pub mod extract;
pub(crate) mod owner;
pub mod plan;
pub mod reconcile;
pub mod resource;
pub mod secret;
pub mod seed;
