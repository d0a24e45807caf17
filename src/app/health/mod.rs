//! Connector health: `seedwatch check` (a doctor that runs every dependency once and says what
//! to do about each failure), the connector state the `status` function and `seedwatch status`
//! report, and the status page.
//!
//! - [`report`]: check lines, their states and the exit code (pure);
//! - [`probes`]: configuration, tokens, ASM, ledger probes; [`arm_checks`]: subscriptions,
//!   Reader and Event Grid through ARM; [`queue_probe`]: the retry queue;
//! - [`tenant_checks`]: the same per connection of `azure.tenants`;
//! - [`doctor`]: runs them in order (all for `check`, the read-only part at start-up);
//! - [`state`]: the connector state from the run history (pure); [`status`]: gathers it;
//! - [`page`]: the self-contained HTML page.

pub(crate) mod arm_checks;
pub(crate) mod doctor;
pub(crate) mod page;
pub(crate) mod probes;
pub(crate) mod queue_probe;
pub(crate) mod record;
pub(crate) mod report;
pub(crate) mod state;
pub(crate) mod status;
pub(crate) mod tenant_checks;
