//! Recording into the run history from where the work happens: a reconcile's start and end,
//! an applied event, a retry scheduled or settled. Best effort: a ledger error is logged at
//! warning level and never fails the work.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::Value;

use crate::domain::resource::ResourceId;
use crate::ledger::Ledger;
use crate::ledger::history::{self, RunRecord};

tokio::task_local! {
    /// What started the reconcile running in this task (`timer`, `resync`, `cli`).
    pub(crate) static TRIGGER: &'static str;
}

/// The trigger of the current task; a reconcile with none set was asked for by a resync.
pub(crate) fn current_trigger() -> &'static str {
    TRIGGER.try_with(|t| *t).unwrap_or("resync")
}

/// A reconcile being recorded.
pub(crate) struct RunHandle {
    ledger: Arc<dyn Ledger>,
    row: String,
    record: RunRecord,
}

fn logged(what: &str, result: Result<(), crate::ledger::LedgerError>) {
    if let Err(e) = result {
        tracing::warn!(error = %e, "run history: cannot record {what}");
    }
}

/// Records a reconcile's start (dry runs and runs without a ledger are not recorded).
pub(crate) async fn begin(
    ledger: Option<Arc<dyn Ledger>>,
    trigger: &str,
    scope: &str,
    dry_run: bool,
) -> Option<RunHandle> {
    let ledger = ledger.filter(|_| !dry_run)?;
    let record = RunRecord::started(trigger, scope, crate::domain::clock::now_ms());
    let row = history::run_row(record.started_ms);
    logged(
        "a reconcile's start",
        history::put_run(ledger.as_ref(), &row, &record).await,
    );
    Some(RunHandle { ledger, row, record })
}

/// Records a reconcile's end from its summary or its error, and keeps the history bounded.
pub(crate) async fn end(handle: Option<RunHandle>, outcome: Result<&Value, &str>) {
    let Some(RunHandle { ledger, row, record }) = handle else {
        return;
    };
    let now = crate::domain::clock::now_ms();
    let record = match outcome {
        Ok(summary) => record.finished_ok(summary, now),
        Err(error) => record.finished_failed(error, now),
    };
    logged(
        "a reconcile's end",
        history::put_run(ledger.as_ref(), &row, &record).await,
    );
    logged("the history bound", history::prune_runs(ledger.as_ref()).await);
}

/// The last time this process recorded an applied event: the record is written at most once
/// a minute per process, not once per event.
static LAST_EVENT_WRITE_MS: AtomicI64 = AtomicI64::new(i64::MIN);
const EVENT_WRITE_EVERY_MS: i64 = 60_000;

/// A change was applied: the last-event time, and no retry pending for it any more.
pub(crate) async fn applied(ledger: &dyn Ledger, id: &ResourceId) {
    let now = crate::domain::clock::now_ms();
    let last = LAST_EVENT_WRITE_MS.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= EVENT_WRITE_EVERY_MS
        && LAST_EVENT_WRITE_MS
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        logged("the last event", history::record_event_applied(ledger, now).await);
    }
    logged("a settled retry", history::clear_retry_pending(ledger, id).await);
}

/// A passing failure: a retry will be scheduled (the first mark's time is kept).
pub(crate) async fn retry_pending(ledger: &dyn Ledger, id: &ResourceId, cause: &str) {
    logged(
        "a pending retry",
        history::mark_retry_pending(ledger, id, cause, crate::domain::clock::now_ms()).await,
    );
}

/// The change was given up: it is a failed change now, not a pending retry.
pub(crate) async fn gave_up(ledger: &dyn Ledger, id: &ResourceId) {
    logged("a settled retry", history::clear_retry_pending(ledger, id).await);
}
