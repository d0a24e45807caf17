//! The diff and the writes of a full reconcile, without the ledger (which
//! [`crate::engine::reconcile`] puts around it).
//!
//! Steps: check the ASM key and the scan, sweep Azure, extract, list ASM's seeds, reconcile
//! ([`crate::domain::reconcile`]), then apply: adds first, then deletes. Writes go out a few at a time
//! (each one makes ASM re-run the scan), and stop early when ASM keeps failing.
//!
//! The ledger plugs in at two points: before, its knowledge of stale seeds' sources comes in as
//! [`SyncOptions::provenance`]; after, it is rebuilt from the returned [`SyncReport`]:
//! `extraction.contributions` (owner → seeds, the whole estate) and [`SyncReport::asm_held`]
//! (the seeds ASM now holds, from the listing plus each write's outcome in `writes`). A dry
//! run or a failed run still carries both; the rebuild only marks seeds held that `asm_held`
//! holds.

mod report;
mod writes;

use std::collections::BTreeSet;
use std::sync::Arc;

pub use report::{SyncReport, WriteKind, WriteOutcome, WriteResult};

use crate::adapters::asm::{AsmApi, AsmError, AsmSeed};
use crate::adapters::azure::{AzureError, AzureReader, CompletenessReport, IncompleteScope, SweepProgress};
use crate::config::Config;
use crate::domain::extract::Extraction;
use crate::domain::reconcile::{self, Plan, Provenance, Rules, SkipReason, SkippedDelete};
use crate::domain::seed::Seed;

/// How many ASM writes are in flight at once. Small on purpose: every write re-runs the scan.
pub(crate) const WRITE_CONCURRENCY: usize = 4;

/// After this many writes in a row fail with a transport error or a 5xx (after the client's own
/// retries), ASM is considered down and the remaining writes are not attempted.
pub(crate) const CONSECUTIVE_FAILURES_TO_STOP: usize = 3;

#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Plan only; write nothing.
    pub dry_run: bool,
    /// `--force-deletes`: override the deletion breaker (not the near-empty guard).
    pub force_deletes: bool,
    /// Stale seeds' sources, from the ledger; `None` without one. See [`Provenance`].
    pub provenance: Option<Arc<Provenance>>,
}

/// Progress callbacks: the sweep's, plus the phases and writes of the sync.
pub trait SyncProgress: SweepProgress {
    fn phase(&self, _phase: Phase) {}
    fn writes_planned(&self, _count: usize) {}
    fn write_done(&self) {}
}

/// No progress output.
pub struct NoSyncProgress;
impl SweepProgress for NoSyncProgress {}
impl SyncProgress for NoSyncProgress {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    CheckingAsm,
    Sweeping,
    Reconciling,
    Writing,
}

impl Phase {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Phase::CheckingAsm => "checking the ASM key and scan",
            Phase::Sweeping => "reading the Azure estate",
            Phase::Reconciling => "reconciling",
            Phase::Writing => "writing to ASM",
        }
    }
}

/// Errors that stop a sync before any write.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("the ASM API key was rejected (HTTP {status}): check that API_KEY holds a valid Hexiosec ASM API key")]
    Unauthorized { status: u16 },
    #[error("scan {scan_id} was not found in ASM: check scan_id (or SCAN_ID)")]
    ScanNotFound { scan_id: String },
    #[error("ASM: {0}")]
    Asm(AsmError),
    #[error("reading the Azure estate failed: {0}")]
    Azure(#[from] AzureError),
}

impl SyncError {
    /// Whether trying again later may help: an outage, not configuration.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            SyncError::Azure(a) => a.is_transient(),
            SyncError::Asm(AsmError::Transport { .. }) => true,
            SyncError::Asm(AsmError::Http { status, .. }) => crate::adapters::http::is_retryable_status(*status),
            SyncError::Asm(_) | SyncError::Unauthorized { .. } | SyncError::ScanNotFound { .. } => false,
        }
    }

    /// Whether the cause is configuration (key, scan id, credential) rather than an outage.
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            SyncError::Unauthorized { .. }
                | SyncError::ScanNotFound { .. }
                | SyncError::Azure(AzureError::Credential(_))
        )
    }
}

impl From<AsmError> for SyncError {
    fn from(e: AsmError) -> SyncError {
        match e {
            AsmError::Unauthorized { status } => SyncError::Unauthorized { status },
            AsmError::ScanNotFound { scan_id } => SyncError::ScanNotFound { scan_id },
            other => SyncError::Asm(other),
        }
    }
}

/// Runs one full reconcile: checks, sweep, extraction, reconcile, writes.
pub async fn run_sync(
    config: &Config,
    azure: &dyn AzureReader,
    asm: &dyn AsmApi,
    options: SyncOptions,
    progress: &dyn SyncProgress,
) -> Result<SyncReport, SyncError> {
    let swept = check_and_sweep(config, azure, asm, progress).await?;
    let mut report = reconcile_and_apply(config, asm, swept.completeness, swept.extraction, options, progress).await?;
    report.resources_read = swept.resources_read;
    Ok(report)
}

/// What a sweep gave, extracted.
pub(crate) struct Swept {
    pub completeness: CompletenessReport,
    pub extraction: Extraction,
    pub resources_read: usize,
}

/// The first half of [`run_sync`]: the ASM key and scan checks, the sweep and the extraction.
pub(crate) async fn check_and_sweep(
    config: &Config,
    azure: &dyn AzureReader,
    asm: &dyn AsmApi,
    progress: &dyn SyncProgress,
) -> Result<Swept, SyncError> {
    progress.phase(Phase::CheckingAsm);
    asm.check_auth().await?;
    asm.check_scan().await?;

    progress.phase(Phase::Sweeping);
    // Extracted as it is read: no resource body outlives its page.
    let sweep = azure.sweep_extracted(&config.azure.checks, progress).await?;
    Ok(Swept {
        completeness: sweep.report,
        extraction: sweep.extraction,
        resources_read: sweep.resources_read,
    })
}

/// The part of [`run_sync`] after extraction: list, reconcile, write. Callers that already
/// hold an extraction (tests, a resync of one subscription) start here; the key and scan
/// checks are the caller's.
pub async fn reconcile_and_apply(
    config: &Config,
    asm: &dyn AsmApi,
    completeness: CompletenessReport,
    extraction: Extraction,
    options: SyncOptions,
    progress: &dyn SyncProgress,
) -> Result<SyncReport, SyncError> {
    progress.phase(Phase::Reconciling);
    let listed_at_ms = crate::domain::clock::now_ms();
    let listed = asm.list_seeds().await?;
    let mut report = plan(config, completeness, extraction, listed, listed_at_ms, &options);
    if options.dry_run || report.plan.is_empty() {
        return Ok(report);
    }
    progress.phase(Phase::Writing);
    progress.writes_planned(report.plan.add_seeds.len() + report.plan.delete.len());
    write_plan(config, asm, &mut report, progress).await;
    Ok(report)
}

/// The diff of the extraction against ASM's listing under the guard rails, as a report with
/// nothing written yet.
fn plan(
    config: &Config,
    completeness: CompletenessReport,
    mut extraction: Extraction,
    listed: Vec<AsmSeed>,
    listed_at_ms: i64,
    options: &SyncOptions,
) -> SyncReport {
    // `asm.seed_types`: a type turned off is not wanted, as a disabled check's seeds are not.
    let before = extraction.contributions.len();
    extraction
        .contributions
        .retain(|c| config.asm.seed_types.contains(&c.seed.kind()));
    let types_off = before - extraction.contributions.len();
    let desired: BTreeSet<Seed> = extraction.contributions.iter().map(|c| c.seed.clone()).collect();
    let rules = Rules {
        seed_tag: config.seed_tag.clone(),
        delete_stale: config.delete_stale_seeds,
        max_delete_fraction: config.sync.max_delete_fraction,
        force_deletes: options.force_deletes,
        shared_tag: config.sync.shared_tag,
    };
    let plan = reconcile::reconcile(reconcile::Inputs {
        desired: &desired,
        asm: &listed,
        completeness: &completeness,
        provenance: options.provenance.as_deref(),
        rules: &rules,
    });
    let warnings = plan_warnings(config, types_off, &completeness, &extraction, &plan);
    SyncReport {
        scan_id: config.scan_id.clone().unwrap_or_default(),
        seed_tag: config.seed_tag.clone(),
        dry_run: options.dry_run,
        resources_read: 0,
        subscriptions: completeness.subscriptions.len(),
        desired: desired.len(),
        kept: plan.kept,
        skipped: plan.skipped.clone(),
        added: Vec::new(),
        deleted: Vec::new(),
        failed: Vec::new(),
        warnings,
        incomplete_scopes: completeness.incomplete.clone(),
        tenants: completeness.tenants.clone(),
        writes: Vec::new(),
        planned_add: plan.add.clone(),
        planned_delete: plan.delete.clone(),
        plan,
        extraction,
        listed,
        listed_at_ms,
        completeness,
    }
}

/// The run's warnings before any write: configuration, seed types left out, scopes not read
/// completely, extraction warnings and ASM seeds that are not valid names.
fn plan_warnings(
    config: &Config,
    types_off: usize,
    completeness: &CompletenessReport,
    extraction: &Extraction,
    plan: &Plan,
) -> Vec<String> {
    let mut warnings: Vec<String> = config.warnings.clone();
    if types_off > 0 {
        warnings.push(format!(
            "{types_off} seed sources left out: their seed type is not in asm.seed_types"
        ));
    }
    warnings.extend(
        completeness
            .incomplete
            .iter()
            .map(|scope| describe_incomplete(scope, completeness.tenant_of(&scope.subscription))),
    );
    warnings.extend(completeness.notes.iter().cloned());
    if completeness.scope_unknown {
        warnings.push("the list of subscriptions could not be read: no scope counts as complete".into());
    }
    warnings.extend(extraction.warnings.iter().map(|w| w.to_string()));
    warnings.extend(
        plan.unrecognised
            .iter()
            .map(|name| format!("ASM seed {name:?} is not a valid seed name; left alone")),
    );
    warnings
}

/// The planned writes: adds, then (only if every add went through) deletes; each outcome
/// tallied into the report.
async fn write_plan(config: &Config, asm: &dyn AsmApi, report: &mut SyncReport, progress: &dyn SyncProgress) {
    let tags = vec![config.seed_tag.clone()];
    let health = writes::Health::default();
    let adds = writes::apply_adds(asm, &report.plan.add_seeds, &tags, &health, progress).await;
    let add_failures = adds.iter().filter(|w| w.is_failure()).count();
    report.writes.extend(adds);

    let deletes = report.plan.delete.clone();
    if add_failures > 0 {
        // ASM misbehaved during the adds; deleting now could leave the scan short of seeds
        // for a whole cycle. The next healthy run does the deletes.
        report.skipped.extend(deletes.into_iter().map(|seed| SkippedDelete {
            seed,
            reason: SkipReason::AddsFailed { failed: add_failures },
        }));
    } else {
        let outcomes = writes::apply_deletes(asm, &deletes, &health, progress).await;
        report.writes.extend(outcomes);
    }
    report.tally_writes();
}

fn describe_incomplete(scope: &IncompleteScope, tenant: Option<&str>) -> String {
    let tenant = tenant.map_or(String::new(), |t| format!(" (tenant {t})"));
    let what = match &scope.check {
        Some(check) => format!("{check} in subscription {}{tenant}", scope.subscription),
        None => format!("subscription {}{tenant}", scope.subscription),
    };
    let why = match &scope.why {
        crate::adapters::azure::Incomplete::Unauthorized { message }
        | crate::adapters::azure::Incomplete::Forbidden { message }
        | crate::adapters::azure::Incomplete::Throttled { message }
        | crate::adapters::azure::Incomplete::Timeout { message }
        | crate::adapters::azure::Incomplete::Failed { message } => message,
    };
    format!("{what} was not read completely: {why}; its seeds are not deleted")
}
