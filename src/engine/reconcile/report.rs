//! What one reconcile did, and the summary it is reported as: the handler's answers, the run
//! history and `seedwatch sync`'s log all show this summary, serialised once at the edge.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Serialize, Serializer};

use crate::adapters::azure::TenantScopes;
use crate::domain::extract::Extraction;
use crate::domain::reconcile::{SeedRef, SkippedDelete, StaleSeed};
use crate::engine::rebuild::RebuildReport;
use crate::engine::sync::{SyncReport, WriteOutcome};
use crate::ledger::failures::{FailedChanges, SUMMARY_ENTRIES, format_ms};

/// How many failed writes a summary lists.
const FAILURES_SHOWN: usize = 20;

/// A full reconcile with the ledger around it.
#[derive(Debug, Clone)]
pub struct ReconcileReport {
    /// The diff and the writes.
    pub report: SyncReport,
    /// What the rebuild changed (`None` in a dry run, without a ledger, or when it failed).
    pub rebuild: Option<RebuildReport>,
    /// Ledger trouble: the reconcile still ran, the ledger is repaired by the next one.
    pub ledger_warnings: Vec<String>,
    /// Changes the handler gave up on, read before the sweep, and those this run cleared
    /// (`None` without a ledger).
    pub failed_changes: Option<FailedChanges>,
    /// Set for one batch of a fanned-out run.
    pub batch: Option<BatchPosition>,
}

/// Which batch of a fanned-out run a reconcile was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BatchPosition {
    pub index: u32,
    #[serde(rename = "of")]
    pub count: u32,
}

/// The report without its per-write detail: counts, plus the planned writes and skips of a
/// dry run (what an operator asks a dry run for).
#[derive(Serialize)]
struct Summary<'a> {
    dry_run: bool,
    resources_read: usize,
    subscriptions: usize,
    desired: usize,
    added: usize,
    deleted: usize,
    kept: usize,
    skipped: usize,
    failed: usize,
    warnings: usize,
    incomplete_scopes: usize,
    seeds_by_check: BTreeMap<&'static str, usize>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tenants: &'a [TenantScopes],
    #[serde(skip_serializing_if = "Option::is_none")]
    planned_add: Option<&'a [SeedRef]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    planned_delete: Option<&'a [StaleSeed]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped_deletes: Option<&'a [SkippedDelete]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failures: Option<&'a [WriteOutcome]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ledger: Option<&'a RebuildReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_changes: Option<FailedChangesSummary<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    ledger_warnings: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    batch: Option<BatchPosition>,
}

impl Serialize for ReconcileReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let report = &self.report;
        let incomplete = report.incomplete_scopes.len();
        Summary {
            dry_run: report.dry_run,
            resources_read: report.resources_read,
            subscriptions: report.subscriptions,
            desired: report.desired,
            added: report.added.len(),
            deleted: report.deleted.len(),
            kept: report.kept,
            skipped: report.skipped.len(),
            failed: report.failed.len(),
            warnings: report.warnings.len(),
            // A batch's "every other subscription" entry is its own narrowing, not a scope it
            // failed to read: the run counts as complete when every batch read its own.
            incomplete_scopes: match self.batch {
                Some(_) => incomplete.saturating_sub(1),
                None => incomplete,
            },
            seeds_by_check: seeds_by_check(&report.extraction),
            tenants: &report.tenants,
            planned_add: report.dry_run.then_some(report.planned_add.as_slice()),
            planned_delete: report.dry_run.then_some(report.planned_delete.as_slice()),
            skipped_deletes: report.dry_run.then_some(report.skipped.as_slice()),
            failures: (!report.failed.is_empty()).then(|| &report.failed[..report.failed.len().min(FAILURES_SHOWN)]),
            ledger: self.rebuild.as_ref(),
            failed_changes: self
                .failed_changes
                .as_ref()
                .map(|f| FailedChangesSummary::new(f, SUMMARY_ENTRIES)),
            ledger_warnings: &self.ledger_warnings,
            batch: self.batch,
        }
        .serialize(serializer)
    }
}

/// Distinct desired seeds per service check (its `check_*` toggle name).
pub(super) fn seeds_by_check(extraction: &Extraction) -> BTreeMap<&'static str, usize> {
    let mut seen: BTreeMap<&'static str, BTreeSet<&crate::domain::seed::Seed>> = BTreeMap::new();
    for c in &extraction.contributions {
        seen.entry(c.check.toggle()).or_default().insert(&c.seed);
    }
    seen.into_iter().map(|(check, seeds)| (check, seeds.len())).collect()
}

/// The failed changes as a summary shows them: counts and the first `limit` entries.
#[derive(Serialize)]
pub(super) struct FailedChangesSummary<'a> {
    count: usize,
    cleared: usize,
    entries: Vec<FailedChangeEntry<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    more: Option<usize>,
}

#[derive(Serialize)]
struct FailedChangeEntry<'a> {
    resource: &'a str,
    change: &'static str,
    cause: &'a str,
    attempts: u32,
    failed_at: String,
    cleared: bool,
}

impl<'a> FailedChangesSummary<'a> {
    pub(super) fn new(failed: &'a FailedChanges, limit: usize) -> FailedChangesSummary<'a> {
        let entries = failed
            .found
            .iter()
            .take(limit)
            .map(|f| FailedChangeEntry {
                resource: f.value.id.as_str(),
                change: f.value.change.as_str(),
                cause: &f.value.cause,
                attempts: f.value.attempts,
                failed_at: format_ms(f.value.failed_at_ms),
                cleared: failed.is_cleared(&f.value.id),
            })
            .collect();
        FailedChangesSummary {
            count: failed.found.len(),
            cleared: failed.cleared.len(),
            entries,
            more: (failed.found.len() > limit).then(|| failed.found.len() - limit),
        }
    }
}
