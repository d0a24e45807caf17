//! The one full reconcile with the ledger: what the timer, a resync, a fanned-out batch,
//! `seedwatch sync` and the Lambda schedule all run.
//!
//! Steps: the ledger's provenance (for the guard rails) and the failed changes the handler
//! gave up on, read before the sweep; the ASM key and scan checks; the sweep, extracted page by
//! page; owners the ledger read after the sweep's snapshot replace the sweep's view of them
//! ([`crate::ledger::lag`]); the diff and the writes ([`crate::engine::sync`]); then, after a
//! real run, the ledger rebuild ([`crate::engine::rebuild`]) and, when every write was applied,
//! the failed changes the sweep covered are cleared. Ledger trouble never stops the reconcile:
//! it comes back as a warning, and the next reconcile repairs the ledger.

mod report;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub(crate) use report::{BatchPosition, ReconcileReport};

use crate::adapters::asm::AsmApi;
use crate::adapters::azure::{AzureReader, IncompleteScope};
use crate::config::Config;
use crate::engine::apply::{ApplyOptions, Clock, SystemClock};
use crate::engine::rebuild::{RebuildOptions, RebuildReport, provenance};
use crate::engine::sync::{SyncError, SyncOptions, SyncProgress, SyncReport};
use crate::ledger::Ledger;
use crate::ledger::failures::FailedChanges;

/// One reconcile: what it reads and writes through, and over which scope.
pub(crate) struct Reconcile<'a> {
    /// The configuration, narrowed to the scope being reconciled.
    pub config: &'a Config,
    /// A reader over that scope.
    pub azure: &'a dyn AzureReader,
    pub asm: &'a dyn AsmApi,
    /// `None` reconciles with unknown provenance and rebuilds nothing.
    pub ledger: Option<&'a dyn Ledger>,
    pub options: SyncOptions,
    /// What the scope leaves out on purpose (every other subscription of a narrowed resync):
    /// counted as not read, so no seed it may contribute is deleted.
    pub left_out: Option<IncompleteScope>,
    pub progress: &'a dyn SyncProgress,
}

/// Runs one reconcile (see the module's documentation). The errors are those that stop it
/// before any write ([`SyncError`]: configuration or an outage); anything later is in the
/// report.
pub(crate) async fn reconcile(run: Reconcile<'_>) -> Result<ReconcileReport, SyncError> {
    let Reconcile {
        config,
        azure,
        asm,
        ledger,
        mut options,
        left_out,
        progress,
    } = run;
    let mut warnings = Vec::new();
    let started = SystemClock.now_ms();
    if let Some(ledger) = ledger
        && options.provenance.is_none()
    {
        match provenance(ledger).await {
            Ok(p) => options.provenance = Some(Arc::new(p)),
            Err(e) => warnings.push(format!("ledger provenance unavailable: {e}")),
        }
    }
    let mut failed_changes = read_failed_changes(ledger, &mut warnings).await;
    let dry_run = options.dry_run;
    // Seeds ASM refused within the last day are not sent again (`refused.rs`).
    let remembering = ledger.map(|ledger| crate::engine::refused::RememberRefusals {
        inner: asm,
        ledger,
        clock: &SystemClock,
    });
    let asm: &dyn AsmApi = match &remembering {
        Some(remembering) => remembering,
        None => asm,
    };
    let mut swept = crate::engine::sync::check_and_sweep(config, azure, asm, progress).await?;
    // A narrowed run (some subscriptions left out on purpose) reads and rebuilds only the owners
    // of the subscriptions it swept; a whole run reads every owner, those of subscriptions that
    // left the scope included.
    let narrowed = left_out.is_some();
    swept.completeness.incomplete.extend(left_out);
    if let Some(ledger) = ledger {
        let since = started - config.sync.graph_lag.as_millis() as i64;
        let owners_in = narrowed.then_some(swept.completeness.subscriptions.as_slice());
        if let Err(e) =
            crate::ledger::lag::apply_graph_lag(ledger, &mut swept.extraction, &swept.completeness, since, owners_in)
                .await
        {
            warnings.push(format!(
                "ledger unavailable for owners read after the sweep's snapshot (Resource Graph lag): {e}"
            ));
        }
    }
    let mut report =
        crate::engine::sync::reconcile_and_apply(config, asm, swept.completeness, swept.extraction, options, progress)
            .await?;
    report.resources_read = swept.resources_read;
    let owners_in = narrowed.then_some(report.completeness.subscriptions.as_slice());
    let rebuild = match ledger {
        Some(ledger) if !dry_run => {
            let rebuilt = rebuild_and_clear(
                ledger,
                config,
                &report,
                started,
                owners_in,
                &mut failed_changes,
                &mut warnings,
            );
            rebuilt.await
        }
        _ => None,
    };
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    Ok(ReconcileReport {
        report,
        rebuild,
        ledger_warnings: warnings,
        failed_changes: ledger.map(|_| failed_changes),
        batch: None,
    })
}

/// After a real run: the ledger rebuilt from it and, if that worked, the covered failed
/// changes cleared. `None` when the rebuild failed (a warning says why).
async fn rebuild_and_clear(
    ledger: &dyn Ledger,
    config: &Config,
    report: &SyncReport,
    sweep_started_ms: i64,
    owners_in: Option<&[String]>,
    failed_changes: &mut FailedChanges,
    warnings: &mut Vec<String>,
) -> Option<RebuildReport> {
    let defaults = ApplyOptions::default();
    let options = RebuildOptions {
        completeness: &report.completeness,
        seed_tag: &config.seed_tag,
        sweep_started_ms,
        graph_lag: config.sync.graph_lag,
        now_ms: SystemClock.now_ms(),
        lease: defaults.lease,
        tombstone_ttl: defaults.tombstone_ttl,
    };
    match crate::engine::rebuild::rebuild_scoped(ledger, report, &options, owners_in).await {
        Ok(rebuilt) => {
            clear_failed_changes(ledger, failed_changes, report, warnings).await;
            Some(rebuilt)
        }
        Err(e) => {
            warnings.push(format!("ledger rebuild failed (the next reconcile retries): {e}"));
            None
        }
    }
}

/// The failed changes recorded so far (none without a ledger; a read error is a warning).
/// Read before the sweep begins, so the sweep is newer than each of them.
async fn read_failed_changes(ledger: Option<&dyn Ledger>, warnings: &mut Vec<String>) -> FailedChanges {
    let Some(ledger) = ledger else {
        return FailedChanges::default();
    };
    match FailedChanges::read(ledger).await {
        Ok(found) => found,
        Err(e) => {
            warnings.push(format!("failed changes unavailable: {e}"));
            FailedChanges::default()
        }
    }
}

/// Clears the failed changes the sweep covered, if every write was applied (otherwise they
/// stay for the next reconcile).
async fn clear_failed_changes(
    ledger: &dyn Ledger,
    failed_changes: &mut FailedChanges,
    report: &SyncReport,
    warnings: &mut Vec<String>,
) {
    if failed_changes.found.is_empty() || report.dry_run || !report.all_applied() {
        return;
    }
    if let Err(e) = failed_changes.clear_covered(ledger, &report.completeness).await {
        warnings.push(format!(
            "clearing failed changes failed (the next reconcile retries): {e}"
        ));
    }
}
