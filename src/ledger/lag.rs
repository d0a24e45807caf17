//! Resource Graph lags behind ARM by seconds to minutes
//! (<https://learn.microsoft.com/azure/governance/resource-graph/overview#how-resource-graph-is-kept-current>).
//! A sweep that starts just after an event was applied may not show what the event read from
//! ARM: a resource just created is missing (its seeds would be deleted), a resource just
//! deleted is still there (its seeds would come back and its owner record revive).
//!
//! So the ledger wins over a sweep for an owner it read after the sweep's snapshot could
//! reflect: every owner whose record was written at or after `sweep started - sync.graph_lag`
//! contributes what the ledger says, not what the sweep says. The rebuild stamps what it
//! writes with that same instant, so a later sweep takes a sweep-written record from its own
//! data again.

use std::collections::BTreeSet;

use crate::domain::completeness::CompletenessReport;
use crate::domain::extract::{Contribution, Extraction};
use crate::domain::resource::ResourceId;
use crate::ledger::{Ledger, LedgerError, OwnerRecord};

/// Where a contribution taken from the ledger says it came from.
pub(crate) const LEDGER_PATH: &str = "(ledger: read after the sweep's snapshot)";

/// Replaces, in a sweep's extraction, the contributions of every owner `recent` holds with
/// the seeds of its record (none for a deleted owner). Returns how many owners it replaced.
pub(crate) fn prefer_ledger(extraction: &mut Extraction, recent: &[OwnerRecord]) -> usize {
    let owners: BTreeSet<&ResourceId> = recent.iter().map(|o| &o.id).collect();
    extraction.contributions.retain(|c| !owners.contains(&c.owner));
    for record in recent.iter().filter(|o| !o.deleted) {
        extraction
            .contributions
            .extend(record.seeds.iter().map(|owned| Contribution {
                seed: owned.seed.clone(),
                owner: record.id.clone(),
                check: owned.check,
                path: LEDGER_PATH.into(),
            }));
    }
    owners.len()
}

/// The owner records written at or after `since_ms` in the subscriptions the sweep covered.
/// A narrowed run (some subscriptions left out on purpose: a resync, a fan-out batch) reads
/// only the owners of `owners_in`, its subscriptions; a whole run (`None`) reads the table in
/// one scan.
pub(crate) async fn recent_owners(
    ledger: &dyn Ledger,
    completeness: &CompletenessReport,
    since_ms: i64,
    owners_in: Option<&[String]>,
) -> Result<Vec<OwnerRecord>, LedgerError> {
    let swept: BTreeSet<String> = completeness
        .subscriptions
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let owners = super::warn_unreadable(super::owners_readable(ledger, owners_in).await?);
    Ok(owners
        .into_iter()
        .map(|o| o.value)
        .filter(|o| o.seen_at_ms >= since_ms && swept.contains(&o.subscription().to_ascii_lowercase()))
        .collect())
}

/// [`recent_owners`] then [`prefer_ledger`]: the step between a sweep and its reconcile.
pub(crate) async fn apply_graph_lag(
    ledger: &dyn Ledger,
    extraction: &mut Extraction,
    completeness: &CompletenessReport,
    since_ms: i64,
    owners_in: Option<&[String]>,
) -> Result<usize, LedgerError> {
    let recent = recent_owners(ledger, completeness, since_ms, owners_in).await?;
    let replaced = prefer_ledger(extraction, &recent);
    if replaced > 0 {
        tracing::info!(
            owners = replaced,
            "owners read from ARM after the sweep's snapshot could reflect: the ledger's read wins"
        );
    }
    Ok(replaced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::completeness::CompletenessReport;
    use crate::ledger::memory::MemoryLedger;
    use crate::ledger::{Expect, ops};

    fn owner(subscription: &str, name: &str, seen_at_ms: i64) -> OwnerRecord {
        let id = ResourceId::parse(&format!(
            "/subscriptions/{subscription}/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/{name}"
        ))
        .unwrap();
        ops::next_record(&id, None, Vec::new(), false, seen_at_ms)
    }

    /// Only owners read since the snapshot, in the subscriptions swept, whether the run reads
    /// the whole table or (narrowed) its subscriptions' partitions.
    #[tokio::test]
    async fn recent_owners_are_those_of_the_swept_subscriptions_read_since_the_snapshot() {
        let ledger = MemoryLedger::new();
        for record in [
            owner("aaa", "recent", 200),
            owner("aaa", "old", 50),
            owner("bbb", "elsewhere", 300),
        ] {
            ledger.put_owner(&record, &Expect::Absent).await.unwrap();
        }
        let completeness = CompletenessReport {
            subscriptions: vec!["AAA".into()],
            ..CompletenessReport::default()
        };
        for owners_in in [None, Some(completeness.subscriptions.as_slice())] {
            let recent = recent_owners(&ledger, &completeness, 100, owners_in).await.unwrap();
            let names: Vec<&str> = recent.iter().map(|o| o.id.name()).collect();
            assert_eq!(names, ["recent"], "owners in: {owners_in:?}");
        }
    }
}
