//! The full reconcile engine behind `seedwatch sync` (and later the timer and the HTTP resync).
//!
//! Steps: check the ASM key and the scan, sweep Azure, extract, list ASM's seeds, reconcile
//! ([`crate::domain::reconcile`]), then apply: adds first, then deletes. Writes go out a few at a time
//! (each one makes ASM re-run the scan), and stop early when ASM keeps failing.
//!
//! **Ledger hook.** The ledger (issue 5) plugs in at two points, both outside this module:
//! - before: it passes what it knows of stale seeds' sources as [`SyncOptions::provenance`];
//! - after: it rebuilds itself from the returned [`SyncReport`]: `extraction.contributions`
//!   (owner → seeds, the whole estate) and [`SyncReport::asm_holds`] (whether ASM now holds a
//!   seed, from the listing plus each write's outcome in `writes`). A dry run or a failed run
//!   still carries both; the rebuild should only mark seeds held that `asm_holds` says are.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use serde::Serialize;

use crate::adapters::asm::{AddOutcome, AsmApi, AsmError, AsmSeed, DeleteOutcome};
use crate::adapters::azure::{AzureError, AzureReader, CompletenessReport, IncompleteScope, SweepProgress};
use crate::config::Config;
use crate::domain::extract::Extraction;
use crate::domain::reconcile::{self, Plan, Provenance, Rules, SeedRef, SkipReason, SkippedDelete, StaleSeed};
use crate::domain::seed::Seed;

/// How many ASM writes are in flight at once. Small on purpose: every write re-runs the scan.
pub const WRITE_CONCURRENCY: usize = 4;

/// After this many writes in a row fail with a transport error or a 5xx (after the client's own
/// retries), ASM is considered down and the remaining writes are not attempted.
pub const CONSECUTIVE_FAILURES_TO_STOP: usize = 3;

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
    pub fn label(self) -> &'static str {
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
    pub fn is_transient(&self) -> bool {
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

/// What happened to one planned write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum WriteResult {
    Added,
    AlreadyExists,
    /// ASM refused the seed (a 400 with a `code`): a warning.
    Rejected {
        code: String,
        message: String,
    },
    Deleted,
    AlreadyGone,
    Failed {
        error: String,
    },
    /// Not tried: ASM was failing, or the run is a dry run.
    NotAttempted {
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteKind {
    Add,
    Delete,
}

/// One write and its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WriteOutcome {
    pub action: WriteKind,
    #[serde(flatten)]
    pub seed: SeedRef,
    /// The ASM id, for deletes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(flatten)]
    pub result: WriteResult,
    #[serde(skip)]
    pub normalised: Option<Seed>,
}

impl WriteOutcome {
    pub fn is_failure(&self) -> bool {
        matches!(
            self.result,
            WriteResult::Failed { .. } | WriteResult::NotAttempted { .. }
        )
    }
}

/// The summary of one sync.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    pub scan_id: String,
    pub seed_tag: String,
    pub dry_run: bool,
    pub resources_read: usize,
    pub subscriptions: usize,
    /// Distinct seeds the estate asks for.
    pub desired: usize,
    /// What was (or, in a dry run, would be) written.
    pub planned_add: Vec<SeedRef>,
    pub planned_delete: Vec<StaleSeed>,
    #[serde(skip)]
    pub plan: Plan,
    pub added: Vec<SeedRef>,
    pub deleted: Vec<SeedRef>,
    /// Desired seeds ASM already held.
    pub kept: usize,
    /// Stale seeds kept by the guard rails, with reasons.
    pub skipped: Vec<SkippedDelete>,
    /// Writes that failed or were not attempted, with reasons.
    pub failed: Vec<WriteOutcome>,
    /// Seeds ASM refused (400 with a code), extraction warnings, unreadable scopes.
    pub warnings: Vec<String>,
    pub incomplete_scopes: Vec<IncompleteScope>,
    /// With `azure.tenants`: each tenant, its subscriptions and whether it was read completely.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<crate::adapters::azure::TenantScopes>,
    /// Every write attempted, in order of completion.
    pub writes: Vec<WriteOutcome>,
    /// For the ledger rebuild: the estate's contributions and warnings.
    #[serde(skip)]
    pub extraction: Extraction,
    /// For the ledger rebuild: the seeds ASM listed before the writes.
    #[serde(skip)]
    pub listed: Vec<AsmSeed>,
    /// When the listing was requested (Unix milliseconds): ledger state recorded later is
    /// newer than the listing and the rebuild leaves it alone.
    #[serde(skip)]
    pub listed_at_ms: i64,
    /// For the ledger rebuild: which scopes the sweep read completely.
    #[serde(skip)]
    pub completeness: CompletenessReport,
}

impl SyncReport {
    /// Whether every planned write was applied (rejections are warnings, not failures).
    pub fn all_applied(&self) -> bool {
        self.failed.is_empty()
    }

    /// Whether ASM holds `seed` after this run, as far as the run knows.
    pub fn asm_holds(&self, seed: &Seed) -> bool {
        let mut held = self.listed.iter().any(|s| s.normalised().as_ref() == Some(seed));
        for write in &self.writes {
            if write.normalised.as_ref() != Some(seed) {
                continue;
            }
            match (&write.action, &write.result) {
                (WriteKind::Add, WriteResult::Added | WriteResult::AlreadyExists) => held = true,
                (WriteKind::Delete, WriteResult::Deleted | WriteResult::AlreadyGone) => held = false,
                _ => {}
            }
        }
        held
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
pub struct Swept {
    pub completeness: CompletenessReport,
    pub extraction: Extraction,
    pub resources_read: usize,
}

/// The first half of [`run_sync`]: the ASM key and scan checks, the sweep and the extraction.
pub async fn check_and_sweep(
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
    mut extraction: Extraction,
    options: SyncOptions,
    progress: &dyn SyncProgress,
) -> Result<SyncReport, SyncError> {
    progress.phase(Phase::Reconciling);
    // `asm.seed_types`: a type turned off is not wanted, as a disabled check's seeds are not.
    let before = extraction.contributions.len();
    extraction
        .contributions
        .retain(|c| config.asm.seed_types.contains(&c.seed.kind()));
    let types_off = before - extraction.contributions.len();

    let listed_at_ms = crate::engine::apply::Clock::now_ms(&crate::engine::apply::SystemClock);
    let listed = asm.list_seeds().await?;
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

    let mut report = SyncReport {
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
    };
    if options.dry_run || report.plan.is_empty() {
        return Ok(report);
    }

    progress.phase(Phase::Writing);
    progress.writes_planned(report.plan.add_seeds.len() + report.plan.delete.len());
    let tags = vec![config.seed_tag.clone()];
    let health = Health::default();
    let adds = apply_adds(asm, &report.plan.add_seeds, &tags, &health, progress).await;
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
        let outcomes = apply_deletes(asm, &deletes, &health, progress).await;
        report.writes.extend(outcomes);
    }

    for write in &report.writes {
        match &write.result {
            WriteResult::Added => report.added.push(write.seed.clone()),
            WriteResult::AlreadyExists => {
                report.added.push(write.seed.clone());
                report.warnings.push(format!(
                    "{} was already in ASM (added by an earlier attempt?)",
                    write.seed.name
                ));
            }
            WriteResult::Deleted | WriteResult::AlreadyGone => report.deleted.push(write.seed.clone()),
            WriteResult::Rejected { code, message } => report
                .warnings
                .push(format!("ASM refused {} ({code}): {message}", write.seed.name)),
            WriteResult::Failed { .. } | WriteResult::NotAttempted { .. } => report.failed.push(write.clone()),
        }
    }
    report.added.sort();
    report.deleted.sort();
    Ok(report)
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

/// Tracks consecutive hard failures across concurrent writes.
#[derive(Default)]
struct Health {
    consecutive_failures: AtomicUsize,
    stopped_by: std::sync::Mutex<Option<String>>,
}

impl Health {
    fn stopped(&self) -> Option<String> {
        self.stopped_by.lock().ok().and_then(|g| g.clone())
    }

    fn record(&self, result: &Result<(), &AsmError>) {
        match result {
            Ok(()) => self.consecutive_failures.store(0, Ordering::SeqCst),
            // A 4xx about one seed says nothing about ASM's health.
            Err(AsmError::Http { status, .. }) if *status < 500 && *status != 429 => {}
            Err(e) => {
                let fatal = matches!(e, AsmError::Unauthorized { .. } | AsmError::ScanNotFound { .. });
                let count = self.consecutive_failures.fetch_add(1, Ordering::SeqCst) + 1;
                if (fatal || count >= CONSECUTIVE_FAILURES_TO_STOP)
                    && let Ok(mut stopped) = self.stopped_by.lock()
                    && stopped.is_none()
                {
                    *stopped = Some(format!("writes stopped after repeated ASM failures (last: {e})"));
                }
            }
        }
    }
}

async fn apply_adds(
    asm: &dyn AsmApi,
    seeds: &[Seed],
    tags: &[String],
    health: &Health,
    progress: &dyn SyncProgress,
) -> Vec<WriteOutcome> {
    futures::stream::iter(seeds.iter())
        .map(|seed| async move {
            let result = match health.stopped() {
                Some(reason) => WriteResult::NotAttempted { reason },
                None => {
                    let outcome = asm.add_seed(seed, tags).await;
                    health.record(&outcome.as_ref().map(|_| ()));
                    match outcome {
                        Ok(AddOutcome::Added) => WriteResult::Added,
                        Ok(AddOutcome::AlreadyExists) => WriteResult::AlreadyExists,
                        Ok(AddOutcome::Rejected { code, message }) => WriteResult::Rejected { code, message },
                        Err(e) => {
                            tracing::error!(seed = %seed, error = %e, "adding a seed failed");
                            WriteResult::Failed { error: e.to_string() }
                        }
                    }
                }
            };
            progress.write_done();
            WriteOutcome {
                action: WriteKind::Add,
                seed: SeedRef::from(seed),
                id: None,
                result,
                normalised: Some(seed.clone()),
            }
        })
        .buffer_unordered(WRITE_CONCURRENCY)
        .collect()
        .await
}

async fn apply_deletes(
    asm: &dyn AsmApi,
    stale: &[StaleSeed],
    health: &Health,
    progress: &dyn SyncProgress,
) -> Vec<WriteOutcome> {
    futures::stream::iter(stale.iter())
        .map(|stale| async move {
            let result = match health.stopped() {
                Some(reason) => WriteResult::NotAttempted { reason },
                None => {
                    let outcome = asm.delete_seed(&stale.id).await;
                    health.record(&outcome.as_ref().map(|_| ()));
                    match outcome {
                        Ok(DeleteOutcome::Deleted) => WriteResult::Deleted,
                        Ok(DeleteOutcome::AlreadyGone) => WriteResult::AlreadyGone,
                        Err(e) => {
                            tracing::error!(seed = %stale.name, error = %e, "deleting a seed failed");
                            WriteResult::Failed { error: e.to_string() }
                        }
                    }
                }
            };
            progress.write_done();
            WriteOutcome {
                action: WriteKind::Delete,
                seed: SeedRef::from(&stale.seed),
                id: Some(stale.id.clone()),
                result,
                normalised: Some(stale.seed.clone()),
            }
        })
        .buffer_unordered(WRITE_CONCURRENCY)
        .collect()
        .await
}

/// Seeds per owner resource in a report's extraction, for callers that index by owner.
pub fn seeds_by_owner(extraction: &Extraction) -> BTreeMap<crate::domain::resource::ResourceId, BTreeSet<Seed>> {
    let mut out: BTreeMap<_, BTreeSet<Seed>> = BTreeMap::new();
    for c in &extraction.contributions {
        out.entry(c.owner.clone()).or_default().insert(c.seed.clone());
    }
    out
}
