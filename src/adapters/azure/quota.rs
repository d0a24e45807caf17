//! Resource Graph's quota is per user, not per instance: 15 queries per 5 s window
//! (<https://learn.microsoft.com/azure/governance/resource-graph/concepts/guidance-for-throttled-requests>),
//! shared by every instance a fanned-out reconcile runs on. A [`GraphQuotaGate`] is consulted
//! before each query so that instances take turns instead of meeting 429s; the quota headers of
//! each answer (`x-ms-user-quota-remaining`, `x-ms-user-quota-resets-after`) are told to it, so
//! a quota used by another client of the same identity is honoured too.

use std::time::Duration;

use async_trait::async_trait;

/// Resource Graph's default per-user quota.
pub(crate) const GRAPH_QUERIES_PER_WINDOW: u32 = 15;
pub(crate) const GRAPH_WINDOW: Duration = Duration::from_secs(5);

/// A quota shared by every instance (the ledger's, in production).
#[async_trait]
pub(crate) trait GraphQuotaGate: Send + Sync {
    /// Waits until one more query fits in the shared window, and counts it.
    async fn acquire(&self);
    /// What Resource Graph said remains of the user's quota, and when it resets.
    async fn observe(&self, remaining: u64, resets_after: Duration);
}
