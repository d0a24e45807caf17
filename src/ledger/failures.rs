//! Changes the handler gave up on, as a reconcile sees them. The reconcile reads them before its
//! sweep, so the sweep is newer than every failure it may clear; reports them; and, after a real
//! run that applied everything and rebuilt the ledger, clears those whose subscription it read
//! completely. Each clear is conditional on the version read: a failure recorded again meanwhile
//! stays for the next reconcile.

use futures::StreamExt;
use serde_json::{Value, json};

use crate::domain::check::ServiceCheck;
use crate::domain::completeness::CompletenessReport;
use crate::domain::resource::ResourceId;
use crate::ledger::{FailedChange, Ledger, LedgerError, Versioned};

/// Entries a summary lists (and a reconcile logs one by one); the count covers them all.
pub(crate) const SUMMARY_ENTRIES: usize = 20;
/// Deletes in flight while clearing.
const CLEAR_CONCURRENCY: usize = 8;

/// The failed changes one reconcile found, and which it cleared.
#[derive(Debug, Clone, Default)]
pub struct FailedChanges {
    /// Every failure recorded when the reconcile began, newest first.
    pub found: Vec<Versioned<FailedChange>>,
    /// The resources whose failure this reconcile cleared.
    pub cleared: Vec<ResourceId>,
}

impl FailedChanges {
    /// Reads the recorded failures and logs each at warn level.
    pub(crate) async fn read(ledger: &dyn Ledger) -> Result<FailedChanges, LedgerError> {
        let mut found = ledger.failures().await?;
        found.sort_by(|a, b| {
            b.value
                .failed_at_ms
                .cmp(&a.value.failed_at_ms)
                .then_with(|| a.value.id.cmp(&b.value.id))
        });
        // One line per failure for the newest ones; a long outage can leave thousands.
        for failure in found.iter().take(SUMMARY_ENTRIES) {
            let f = &failure.value;
            tracing::warn!(
                resource = %f.id,
                change = f.change.as_str(),
                cause = %f.cause,
                attempts = f.attempts,
                failed_at = %format_ms(f.failed_at_ms),
                "a change that gave up earlier is pending: this reconcile covers it if it reads its subscription completely"
            );
        }
        if found.len() > SUMMARY_ENTRIES {
            tracing::warn!(
                count = found.len(),
                "{} more changes that gave up earlier are pending (the summary counts them all)",
                found.len() - SUMMARY_ENTRIES
            );
        }
        Ok(FailedChanges {
            found,
            cleared: Vec::new(),
        })
    }

    /// Whether a reconcile with this completeness covered `failure`: every service check of its
    /// subscription was read completely (a resync of another subscription covers nothing here).
    pub(crate) fn covers(completeness: &CompletenessReport, failure: &FailedChange) -> bool {
        let subscription = failure.subscription();
        ServiceCheck::ALL
            .iter()
            .all(|check| completeness.is_complete(subscription, *check))
    }

    /// Clears every failure the reconcile covered, at the version it was read. Call only after
    /// a real (not dry) run that applied every write and rebuilt the ledger. A failure recorded
    /// again since it was read is left for the next reconcile.
    pub(crate) async fn clear_covered(
        &mut self,
        ledger: &dyn Ledger,
        completeness: &CompletenessReport,
    ) -> Result<(), LedgerError> {
        let covered = self.found.iter().filter(|f| Self::covers(completeness, &f.value));
        let mut deletes = futures::stream::iter(covered.map(|failure| async move {
            let result = ledger.delete_failure(&failure.value.id, Some(&failure.version)).await;
            (&failure.value.id, result)
        }))
        .buffer_unordered(CLEAR_CONCURRENCY);
        let mut first_error = None;
        while let Some((id, result)) = deletes.next().await {
            match result {
                Ok(()) => {
                    tracing::info!(resource = %id, "a change that gave up earlier is covered by this reconcile: cleared");
                    self.cleared.push(id.clone());
                }
                Err(LedgerError::Conflict { .. }) => {
                    tracing::warn!(resource = %id, "a change that gave up earlier failed again during this reconcile: kept");
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    pub(crate) fn is_cleared(&self, id: &ResourceId) -> bool {
        self.cleared.contains(id)
    }

    /// Failures still recorded after this reconcile.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> impl Iterator<Item = &FailedChange> {
        self.found.iter().map(|f| &f.value).filter(|f| !self.is_cleared(&f.id))
    }

    /// `{"count", "cleared", "entries": [{resource, change, cause, attempts, failed_at, cleared}]}`
    /// with at most `limit` entries (newest first); `"more"` says how many were left out.
    pub(crate) fn to_json(&self, limit: usize) -> Value {
        let entries: Vec<Value> = self
            .found
            .iter()
            .take(limit)
            .map(|f| {
                let f = &f.value;
                json!({
                    "resource": f.id.as_str(),
                    "change": f.change.as_str(),
                    "cause": f.cause,
                    "attempts": f.attempts,
                    "failed_at": format_ms(f.failed_at_ms),
                    "cleared": self.is_cleared(&f.id),
                })
            })
            .collect();
        let mut out = json!({
            "count": self.found.len(),
            "cleared": self.cleared.len(),
            "entries": entries,
        });
        if self.found.len() > limit {
            out["more"] = json!(self.found.len() - limit);
        }
        out
    }
}

/// Unix milliseconds as RFC 3339 (UTC); the raw number when out of range.
pub(crate) fn format_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::completeness::{Incomplete, IncompleteScope};
    use crate::ledger::FailedChangeKind;
    use crate::ledger::memory::MemoryLedger;

    const A: &str = "/subscriptions/aaaa/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/p1";
    const B: &str = "/subscriptions/bbbb/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/p2";

    fn id(s: &str) -> ResourceId {
        ResourceId::parse(s).unwrap()
    }

    fn failure(resource: &str, cause: &str, at: i64) -> FailedChange {
        FailedChange::new(id(resource), FailedChangeKind::Changed, cause, 4, at)
    }

    fn read_everything(subscriptions: &[&str]) -> CompletenessReport {
        CompletenessReport {
            subscriptions: subscriptions.iter().map(|s| s.to_string()).collect(),
            incomplete: Vec::new(),
            scope_unknown: false,
            notes: Vec::new(),
            tenants: Vec::new(),
        }
    }

    #[tokio::test]
    async fn put_list_and_delete_on_the_memory_ledger() {
        let ledger = MemoryLedger::new();
        assert!(ledger.failures().await.unwrap().is_empty());
        let v1 = ledger.put_failure(&failure(A, "ASM answered 503", 10)).await.unwrap();
        // The latest failure of a resource replaces the earlier one (ids are case-insensitive).
        let v2 = ledger
            .put_failure(&failure(
                &A.to_ascii_uppercase().replace("/SUBSCRIPTIONS/", "/subscriptions/"),
                "throttled",
                20,
            ))
            .await
            .unwrap();
        assert_ne!(v1, v2);
        ledger.put_failure(&failure(B, "ASM answered 500", 15)).await.unwrap();
        let all = ledger.failures().await.unwrap();
        assert_eq!(all.len(), 2);
        let a = all.iter().find(|f| f.value.id == id(A)).unwrap();
        assert_eq!((a.value.cause.as_str(), a.value.failed_at_ms), ("throttled", 20));
        assert_eq!(a.version, v2);
        // The other kinds are not failures, and failures are not owners or seeds.
        assert!(ledger.all_owners().await.unwrap().is_empty());
        assert!(ledger.all_seeds().await.unwrap().is_empty());

        // A delete at the version first read loses to the re-recorded failure.
        assert!(matches!(
            ledger.delete_failure(&id(A), Some(&v1)).await,
            Err(LedgerError::Conflict { .. })
        ));
        ledger.delete_failure(&id(A), Some(&v2)).await.unwrap();
        ledger.delete_failure(&id(A), Some(&v2)).await.unwrap();
        ledger.delete_failure(&id(B), None).await.unwrap();
        assert!(ledger.failures().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_reconcile_clears_only_what_it_read_completely_and_what_did_not_fail_again() {
        let ledger = MemoryLedger::new();
        ledger.put_failure(&failure(A, "ASM answered 503", 10)).await.unwrap();
        ledger.put_failure(&failure(B, "ASM answered 503", 30)).await.unwrap();
        let mut found = FailedChanges::read(&ledger).await.unwrap();
        assert_eq!(found.found.len(), 2);
        assert_eq!(found.found[0].value.id, id(B), "newest first");

        // Subscription bbbb was not read completely; aaaa was, but A failed again meanwhile.
        let mut completeness = read_everything(&["aaaa", "bbbb"]);
        completeness.incomplete.push(IncompleteScope {
            subscription: "BBBB".into(),
            check: Some(ServiceCheck::PublicIpAddresses),
            why: Incomplete::Failed {
                message: "throttled".into(),
            },
        });
        ledger.put_failure(&failure(A, "again", 40)).await.unwrap();
        found.clear_covered(&ledger, &completeness).await.unwrap();
        assert!(found.cleared.is_empty());
        assert_eq!(ledger.failures().await.unwrap().len(), 2);

        // The next reconcile reads both completely: both go.
        let mut next = FailedChanges::read(&ledger).await.unwrap();
        next.clear_covered(&ledger, &read_everything(&["aaaa", "bbbb"]))
            .await
            .unwrap();
        assert_eq!(next.cleared.len(), 2);
        assert!(ledger.failures().await.unwrap().is_empty());
        assert_eq!(next.pending().count(), 0);
        let summary = next.to_json(1);
        assert_eq!(summary["count"], json!(2));
        assert_eq!(summary["cleared"], json!(2));
        assert_eq!(summary["more"], json!(1));
        assert_eq!(summary["entries"][0]["resource"], json!(A));
        assert_eq!(summary["entries"][0]["cause"], json!("again"));
        assert_eq!(summary["entries"][0]["failed_at"], json!("1970-01-01T00:00:00.04Z"));
    }

    #[tokio::test]
    async fn a_resync_of_one_subscription_covers_only_that_subscription() {
        let ledger = MemoryLedger::new();
        ledger.put_failure(&failure(A, "x", 1)).await.unwrap();
        ledger.put_failure(&failure(B, "x", 2)).await.unwrap();
        let mut found = FailedChanges::read(&ledger).await.unwrap();
        let mut completeness = read_everything(&["aaaa"]);
        completeness.incomplete.push(IncompleteScope {
            subscription: "(every other subscription)".into(),
            check: None,
            why: Incomplete::Failed {
                message: "not part of this resync".into(),
            },
        });
        found.clear_covered(&ledger, &completeness).await.unwrap();
        assert_eq!(found.cleared, vec![id(A)]);
        let left: Vec<ResourceId> = found.pending().map(|f| f.id.clone()).collect();
        assert_eq!(left, vec![id(B)]);
        assert_eq!(ledger.failures().await.unwrap().len(), 1);
        // Nothing is complete when the subscriptions could not be listed.
        let unknown = CompletenessReport {
            scope_unknown: true,
            ..read_everything(&["bbbb"])
        };
        assert!(!FailedChanges::covers(&unknown, &failure(B, "x", 2)));
    }
}
