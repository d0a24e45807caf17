//! Record updates shared by the apply engine and the rebuild: committing an owner read and
//! setting one owner's membership on a seed.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::check::ServiceCheck;
use crate::domain::resource::ResourceId;
use crate::domain::seed::Seed;
use crate::ledger::{
    Expect, Ledger, LedgerError, OwnedSeed, OwnerRecord, PendingSeed, SeedRecord, Versioned, seeds_hash,
};

/// The owner record a commit writes: the next generation, the new seeds, and every seed the
/// owner may still be listed on but no longer contributes.
pub(crate) fn next_record(
    owner: &ResourceId,
    previous: Option<&OwnerRecord>,
    seeds: Vec<OwnedSeed>,
    gone: bool,
    now_ms: i64,
) -> OwnerRecord {
    let now: BTreeSet<Seed> = seeds.iter().map(|s| s.seed.clone()).collect();
    let mut pending: BTreeSet<Seed> = BTreeSet::new();
    if let Some(prev) = previous {
        pending.extend(prev.seeds.iter().map(|s| s.seed.clone()));
        pending.extend(prev.pending_removal.iter().map(|p| p.seed.clone()));
    }
    pending.retain(|s| !now.contains(s));
    OwnerRecord {
        id: previous.map(|p| p.id.clone()).unwrap_or_else(|| owner.clone()),
        generation: previous.map(|p| p.generation + 1).unwrap_or(1),
        seeds_hash: seeds_hash(&seeds),
        seeds,
        pending_removal: pending.into_iter().map(|seed| PendingSeed { seed }).collect(),
        seen_at_ms: now_ms,
        deleted: gone,
        settled: false,
    }
}

/// The membership writes a committed record asks for: its seeds present (with their checks),
/// its pending removals absent.
pub(crate) fn membership_changes(record: &OwnerRecord) -> Vec<(Seed, Option<Vec<ServiceCheck>>)> {
    let mut present: BTreeMap<Seed, Vec<ServiceCheck>> = BTreeMap::new();
    for owned in &record.seeds {
        present.entry(owned.seed.clone()).or_default().push(owned.check);
    }
    let absent: Vec<Seed> = record
        .pending_removal
        .iter()
        .map(|p| p.seed.clone())
        .filter(|s| !present.contains_key(s))
        .collect();
    present
        .into_iter()
        .map(|(seed, checks)| (seed, Some(checks)))
        .chain(absent.into_iter().map(|seed| (seed, None)))
        .collect()
}

/// Sets `owner`'s membership on `seed` as of `generation` (`checks: None` withdraws it), with
/// compare-and-swap retries. Returns the record as written (or read, when nothing changed);
/// `None` when the record was removed (nothing left in it). `Err(Conflict)` after `max_conflicts` lost races.
#[allow(clippy::too_many_arguments)]
pub async fn set_membership(
    ledger: &dyn Ledger,
    seed: &Seed,
    owner: &ResourceId,
    generation: u64,
    checks: Option<Vec<ServiceCheck>>,
    now_ms: &(dyn Fn() -> i64 + Send + Sync),
    tombstone_ttl_ms: i64,
    max_conflicts: u32,
) -> Result<Option<Versioned<SeedRecord>>, LedgerError> {
    for _ in 0..max_conflicts {
        let current = ledger.seed(seed).await?;
        // Stamped with the time of this attempt: a membership is never older than the record
        // state it was written over.
        let now_ms = now_ms();
        // A withdrawal from a seed with no record still writes its tombstone: an applier
        // holding an older generation of this owner may be about to create the record with a
        // present membership, and only the tombstone's newer generation makes it step aside.
        let (mut record, expect) = match &current {
            Some(c) => (c.value.clone(), Expect::Version(c.version.clone())),
            None => (SeedRecord::new(seed.clone()), Expect::Absent),
        };
        let changed = record.set_membership(owner, generation, checks.clone(), now_ms);
        let pruned = record.prune_tombstones(now_ms - tombstone_ttl_ms);
        if !changed && !pruned {
            return Ok(current);
        }
        if record.is_empty() {
            if let Some(c) = &current {
                match ledger.delete_seed(seed, Some(&c.version)).await {
                    Ok(()) => return Ok(None),
                    Err(LedgerError::Conflict { .. }) => continue,
                    Err(e) => return Err(e),
                }
            }
            return Ok(None);
        }
        match ledger.put_seed(&record, &expect).await {
            Ok(version) => return Ok(Some(Versioned { value: record, version })),
            Err(LedgerError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(LedgerError::Conflict {
        key: format!("seed {seed}"),
    })
}
