//! Rebuilding the ledger from a full reconcile, and the provenance the reconcile's guard rails
//! ask for. A lost, new or damaged ledger is therefore never a problem: one `sync` restores it.
//!
//! The rebuild writes what the sweep saw, with the same compare-and-swap rules as the apply
//! path, and steps aside where an applier is more recent: an owner read by an apply after the
//! sweep began is left alone, and so is a seed with a live intent.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

use crate::adapters::azure::CompletenessReport;
use crate::domain::reconcile::{Provenance, Scope};
use crate::domain::resource::ResourceId;
use crate::domain::seed::Seed;
use crate::engine::sync::{SyncReport, WriteKind, WriteResult};
use crate::ledger::{AsmState, Expect, Ledger, LedgerError, OwnedSeed, OwnerRecord, SeedRecord, Versioned, ops};

/// Counts of what a rebuild changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RebuildReport {
    pub owners_written: usize,
    pub owners_removed: usize,
    /// Owners left alone because an apply read them after the sweep began.
    pub owners_newer: usize,
    pub seeds_written: usize,
    pub seeds_removed: usize,
    /// Seeds left alone because an apply was writing them to ASM.
    pub seeds_busy: usize,
    /// Seeds whose ASM state an apply recorded after the sync's listing: that state is kept.
    pub seeds_newer: usize,
    /// Records that no longer decode, removed (the sweep writes them afresh).
    pub records_repaired: usize,
}

/// What the rebuild needs besides the sync report.
pub struct RebuildOptions<'a> {
    pub completeness: &'a CompletenessReport,
    pub seed_tag: &'a str,
    /// When the sweep began (Unix milliseconds).
    pub sweep_started_ms: i64,
    /// `sync.graph_lag`: the sweep's snapshot may be this much older than its start. An owner
    /// the ledger read since then is left alone, and what the rebuild writes is dated then.
    pub graph_lag: Duration,
    pub now_ms: i64,
    pub lease: Duration,
    pub tombstone_ttl: Duration,
}

impl RebuildOptions<'_> {
    /// The oldest instant the sweep's snapshot may reflect: owners read since win over it.
    pub(crate) fn snapshot_ms(&self) -> i64 {
        self.sweep_started_ms - self.graph_lag.as_millis() as i64
    }
}

/// Brings the ledger in line with a finished sync: owners and their seeds from the sweep,
/// owners no longer in a completely read scope removed, and ASM's state from the listing and
/// the sync's writes. Idempotent.
pub async fn rebuild(
    ledger: &dyn Ledger,
    report: &SyncReport,
    options: &RebuildOptions<'_>,
) -> Result<RebuildReport, LedgerError> {
    rebuild_scoped(ledger, report, options, None).await
}

/// [`rebuild`], reading only the owners of `subscriptions` when given (a narrowed run: a
/// resync of some subscriptions, a fan-out batch). Nothing else is lost: the rebuild writes
/// only owners the sweep saw, which are all in the subscriptions it read, and removes only
/// owners of subscriptions read completely, which are among them too.
pub(crate) async fn rebuild_scoped(
    ledger: &dyn Ledger,
    report: &SyncReport,
    options: &RebuildOptions<'_>,
    subscriptions: Option<&[String]>,
) -> Result<RebuildReport, LedgerError> {
    // Each table is read once (twice for seeds when owners changed): a fanned-out run
    // rebuilds once per batch, and the ledger grows with the estate.
    let (owners, bad_owners) = crate::ledger::owners_readable(ledger, subscriptions).await?;
    let (seeds, bad_seeds) = ledger.all_seeds_readable().await?;
    let mut out = RebuildReport {
        records_repaired: remove_unreadable(ledger, bad_owners.iter().chain(&bad_seeds)).await?,
        ..RebuildReport::default()
    };
    rebuild_owners(ledger, report, options, owners, &mut out).await?;
    let asm = AsmView::after(report, options.seed_tag);
    // The apply path's deletion breaker counts against what ASM holds now.
    crate::ledger::breaker::record_tagged(ledger, asm.ours.len(), 20).await?;
    // An owner written or removed changed seed memberships: those seeds are read afresh.
    let seeds = if out.owners_written + out.owners_removed > 0 {
        ledger.all_seeds().await?
    } else {
        seeds
    };
    rebuild_seeds(ledger, report, options, &asm, seeds, &mut out).await?;
    Ok(out)
}

/// The owners: those the sweep saw written, those it did not see removed if their scopes were
/// read completely; an owner an apply read since the snapshot is left alone.
async fn rebuild_owners(
    ledger: &dyn Ledger,
    report: &SyncReport,
    options: &RebuildOptions<'_>,
    owners: Vec<Versioned<OwnerRecord>>,
    out: &mut RebuildReport,
) -> Result<(), LedgerError> {
    let mut estate: BTreeMap<ResourceId, Vec<OwnedSeed>> = BTreeMap::new();
    for c in &report.extraction.contributions {
        estate.entry(c.owner.clone()).or_default().push(OwnedSeed {
            seed: c.seed.clone(),
            check: c.check,
        });
    }
    for seeds in estate.values_mut() {
        seeds.sort();
        seeds.dedup();
    }
    let known: BTreeMap<ResourceId, Versioned<OwnerRecord>> =
        owners.into_iter().map(|o| (o.value.id.clone(), o)).collect();
    let ttl_ms = options.tombstone_ttl.as_millis() as i64;
    let times = (options.snapshot_ms(), options.now_ms);
    // Owners the sweep saw.
    for (owner, seeds) in &estate {
        let previous = known.get(owner);
        if previous.is_some_and(|p| p.value.seen_at_ms >= times.0) {
            out.owners_newer += 1;
            continue;
        }
        if previous.is_some_and(|p| p.value.settled && !p.value.deleted && &p.value.seeds == seeds) {
            continue;
        }
        if commit_owner(ledger, owner, previous, seeds.clone(), false, times, ttl_ms).await? {
            out.owners_written += 1;
        }
    }
    // Owners the sweep did not see: gone, if their scopes were read completely.
    for (owner, previous) in &known {
        if estate.contains_key(owner) || (previous.value.deleted && previous.value.settled) {
            continue;
        }
        if previous.value.seen_at_ms >= times.0 {
            out.owners_newer += 1;
            continue;
        }
        if read_completely(&previous.value, options.completeness)
            && commit_owner(ledger, owner, Some(previous), Vec::new(), true, times, ttl_ms).await?
        {
            out.owners_removed += 1;
        }
    }
    Ok(())
}

/// Whether every scope an owner's seeds came from (every check, for an owner with none) was
/// read completely in its subscription.
fn read_completely(owner: &OwnerRecord, completeness: &CompletenessReport) -> bool {
    let checks: BTreeSet<_> = owner.seeds.iter().map(|s| s.check).collect();
    let subscription = owner.subscription();
    if checks.is_empty() {
        crate::domain::check::ServiceCheck::ALL
            .iter()
            .all(|c| completeness.is_complete(subscription, *c))
    } else {
        checks.iter().all(|c| completeness.is_complete(subscription, *c))
    }
}

/// ASM's state as the sync left it: the listing, then each write's outcome.
struct AsmView {
    /// Seeds ASM holds with our tag.
    ours: BTreeSet<Seed>,
    /// ASM's id of each seed it held at the listing and still holds.
    ids: BTreeMap<Seed, String>,
    /// Seeds ASM refused, with its code.
    rejected: BTreeMap<Seed, String>,
    /// Seeds ASM holds after the run ([`SyncReport::asm_held`]).
    held: std::collections::HashSet<Seed>,
}

impl AsmView {
    fn after(report: &SyncReport, seed_tag: &str) -> AsmView {
        // Each listed seed normalised once: the listing is the whole scan, in every batch.
        let listed: Vec<(Seed, &crate::adapters::asm::AsmSeed)> = report
            .listed
            .iter()
            .filter_map(|s| s.normalised().map(|n| (n, s)))
            .collect();
        let mut view = AsmView {
            ours: listed
                .iter()
                .filter(|(_, s)| s.has_tag(seed_tag))
                .map(|(n, _)| n.clone())
                .collect(),
            ids: listed.iter().map(|(n, s)| (n.clone(), s.id.clone())).collect(),
            rejected: BTreeMap::new(),
            held: report.held_after_writes(listed.iter().map(|(n, _)| n.clone()).collect()),
        };
        for write in &report.writes {
            let Some(seed) = &write.normalised else { continue };
            match (&write.action, &write.result) {
                (WriteKind::Add, WriteResult::Added) => {
                    view.ours.insert(seed.clone());
                    view.ids.remove(seed);
                }
                (WriteKind::Add, WriteResult::Rejected { code, .. }) => {
                    view.rejected.insert(seed.clone(), code.clone());
                }
                (WriteKind::Delete, WriteResult::Deleted | WriteResult::AlreadyGone) => {
                    view.ours.remove(seed);
                    view.ids.remove(seed);
                }
                _ => {}
            }
        }
        view
    }
}

/// The seed records: ASM's state from the sync (where no apply recorded a newer one), expired
/// tombstones pruned, and seeds ASM holds with our tag that the ledger did not know recorded.
async fn rebuild_seeds(
    ledger: &dyn Ledger,
    report: &SyncReport,
    options: &RebuildOptions<'_>,
    asm: &AsmView,
    seeds: Vec<Versioned<SeedRecord>>,
    out: &mut RebuildReport,
) -> Result<(), LedgerError> {
    let mut records: BTreeMap<Seed, Versioned<SeedRecord>> =
        seeds.into_iter().map(|s| (s.value.seed.clone(), s)).collect();
    // Seeds ASM holds with our tag but the ledger does not know: record them, so a later
    // apply can delete them when an owner stops contributing.
    let tracked: BTreeSet<Seed> = records.keys().cloned().collect();
    for seed in asm
        .ours
        .iter()
        .filter(|s| !tracked.contains(*s) && asm.held.contains(*s))
    {
        let record = SeedRecord::new(seed.clone());
        if let Ok(version) = ledger.put_seed(&record, &Expect::Absent).await {
            records.insert(seed.clone(), Versioned { value: record, version });
        }
    }
    let lease_ms = options.lease.as_millis() as i64;
    for (seed, current) in records {
        if current
            .value
            .intent
            .as_ref()
            .is_some_and(|i| options.now_ms - i.at_ms < lease_ms)
        {
            out.seeds_busy += 1;
            continue;
        }
        let record = next_seed_record(&seed, &current.value, report, options, asm, out);
        if record == current.value {
            continue;
        }
        let result = if record.is_empty() {
            ledger
                .delete_seed(&seed, Some(&current.version))
                .await
                .map(|_| out.seeds_removed += 1)
        } else {
            ledger
                .put_seed(&record, &Expect::Version(current.version))
                .await
                .map(|_| out.seeds_written += 1)
        };
        match result {
            Ok(()) | Err(LedgerError::Conflict { .. }) => {} // an applier got there first
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A seed record as the sync leaves it: no intent, ASM's state from the listing unless an
/// apply recorded a newer one, expired tombstones pruned.
fn next_seed_record(
    seed: &Seed,
    current: &SeedRecord,
    report: &SyncReport,
    options: &RebuildOptions<'_>,
    asm: &AsmView,
    out: &mut RebuildReport,
) -> SeedRecord {
    let mut record = current.clone();
    record.intent = None;
    // An apply that wrote ASM after the listing knows better than the listing. One recorded
    // in the millisecond the listing was requested may have written after the listing
    // answered: the tie goes to the apply, as it does for owners (`seen_at_ms >= snapshot`).
    if current.asm.at_ms < report.listed_at_ms {
        let held = asm.held.contains(seed);
        let state = AsmState {
            held,
            ours: held && asm.ours.contains(seed),
            id: if held { asm.ids.get(seed).cloned() } else { None },
            rejected: asm.rejected.get(seed).cloned(),
            at_ms: current.asm.at_ms,
        };
        if state != current.asm {
            record.asm = AsmState {
                at_ms: report.listed_at_ms,
                ..state
            };
        }
    } else {
        out.seeds_newer += 1;
    }
    record.prune_tombstones(options.now_ms - options.tombstone_ttl.as_millis() as i64);
    record
}

/// Removes the owner and seed records that no longer decode (a seed name that stopped
/// normalising, a format change), each at the version read, with a warning: the sweep writes
/// what they stood for afresh. Returns how many went.
async fn remove_unreadable(
    ledger: &dyn Ledger,
    unreadable: impl Iterator<Item = &crate::ledger::Unreadable>,
) -> Result<usize, LedgerError> {
    let mut removed = 0;
    for bad in unreadable {
        tracing::warn!(partition = %bad.partition, row = %bad.row, "{}; removed, the rebuild writes it afresh", bad.message);
        match ledger.delete_raw(&bad.partition, &bad.row, Some(&bad.version)).await {
            Ok(()) => removed += 1,
            Err(LedgerError::Conflict { .. }) => {} // rewritten meanwhile: no longer ours to judge
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

/// Commits a read of `owner` and writes its memberships. `false` when an applier committed in
/// between (its read is newer: it wins).
async fn commit_owner(
    ledger: &dyn Ledger,
    owner: &ResourceId,
    previous: Option<&Versioned<OwnerRecord>>,
    seeds: Vec<OwnedSeed>,
    gone: bool,
    (seen_at_ms, now_ms): (i64, i64),
    ttl_ms: i64,
) -> Result<bool, LedgerError> {
    // Dated when the sweep's snapshot may have been taken, not now: an apply that reads the
    // owner after that is newer than this record.
    let record = ops::next_record(owner, previous.map(|p| &p.value), seeds, gone, seen_at_ms);
    let expect = match previous {
        Some(p) => Expect::Version(p.version.clone()),
        None => Expect::Absent,
    };
    let version = match ledger.put_owner(&record, &expect).await {
        Ok(v) => v,
        Err(LedgerError::Conflict { .. }) => return Ok(false),
        Err(e) => return Err(e),
    };
    for (seed, checks) in ops::membership_changes(&record) {
        ops::set_membership(
            ledger,
            &seed,
            &record.id,
            record.generation,
            checks,
            &|| now_ms,
            ttl_ms,
            20,
        )
        .await?;
    }
    let mut settled = record;
    settled.pending_removal.clear();
    settled.settled = true;
    match ledger.put_owner(&settled, &Expect::Version(version)).await {
        Ok(_) | Err(LedgerError::Conflict { .. }) => Ok(true),
        Err(e) => Err(e),
    }
}

/// Where each seed came from, from the ledger: every (subscription, check) of every owner that
/// contributes or contributed it (tombstones included, until they expire). For the reconcile's
/// guard rails ([`crate::engine::sync::SyncOptions::provenance`]).
pub async fn provenance(ledger: &dyn Ledger) -> Result<Provenance, LedgerError> {
    let mut out = Provenance::new();
    for record in ledger.all_seeds().await? {
        let mut scopes: BTreeSet<Scope> = BTreeSet::new();
        for membership in record.value.owners.values() {
            for check in &membership.checks {
                scopes.insert(Scope {
                    subscription: membership.owner.subscription_id().to_ascii_lowercase(),
                    check: *check,
                });
            }
        }
        if !scopes.is_empty() {
            out.insert(record.value.seed, scopes.into_iter().collect());
        }
    }
    Ok(out)
}

/// A full reconcile with the ledger around it (see [`crate::engine::reconcile`]).
pub type LedgerSync = crate::engine::reconcile::ReconcileReport;

/// [`crate::engine::reconcile::reconcile`] over the whole configured scope.
pub async fn sync_with_ledger(
    config: &crate::config::Config,
    azure: &dyn crate::adapters::azure::AzureReader,
    asm: &dyn crate::adapters::asm::AsmApi,
    ledger: Option<&dyn Ledger>,
    options: crate::engine::sync::SyncOptions,
    progress: &dyn crate::engine::sync::SyncProgress,
) -> Result<LedgerSync, crate::engine::sync::SyncError> {
    crate::engine::reconcile::reconcile(crate::engine::reconcile::Reconcile {
        config,
        azure,
        asm,
        ledger,
        options,
        left_out: None,
        progress,
    })
    .await
}
