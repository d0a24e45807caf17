//! The run history the status function reports: a bounded list of reconciles (trigger, scope,
//! start, end, result, counts, completeness, seeds per service check), the time of the last
//! applied event and the retries pending. Everything lives in partition [`HISTORY_PARTITION`]
//! as JSON entities, so every backend keeps it the same way. Recording is best effort: a ledger
//! error here is logged by the caller and never fails the work it describes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::resource::ResourceId;
use crate::ledger::keys::{key_for, prefix_end};
use crate::ledger::{Expect, Ledger, LedgerError, Partitions, Scan};

/// The history's partition: distinct from owners (`o-…`), seeds (`s`) and failures (`f`).
pub(crate) const HISTORY_PARTITION: &str = "h";
/// Reconciles kept; older ones are deleted when a new one is recorded.
pub(crate) const MAX_RUNS: usize = 50;
const RUN_PREFIX: &str = "r-";
const RETRY_PREFIX: &str = "q-";
const EVENT_ROW: &str = "event";

/// Where a reconcile stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunResult {
    Running,
    Ok,
    Failed,
}

/// One reconcile, as recorded when it started and again when it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// `timer`, `resync` or `cli`.
    pub trigger: String,
    /// `all` or a subscription id.
    pub scope: String,
    pub started_ms: i64,
    #[serde(default)]
    pub ended_ms: Option<i64>,
    pub result: RunResult,
    #[serde(default)]
    pub added: u64,
    #[serde(default)]
    pub deleted: u64,
    /// Stale seeds the guard rails kept.
    #[serde(default)]
    pub kept_by_guard_rails: u64,
    #[serde(default)]
    pub warnings: u64,
    #[serde(default)]
    pub failed_writes: u64,
    /// Whether every scope was read completely.
    #[serde(default)]
    pub complete: bool,
    #[serde(default)]
    pub incomplete_scopes: u64,
    #[serde(default)]
    pub error: Option<String>,
    /// Desired seeds per service check (for the chart over time).
    #[serde(default)]
    pub seeds_by_check: BTreeMap<String, u64>,
    /// With `azure.tenants`: each tenant's subscriptions and whether it was read completely.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<TenantRun>,
}

/// One tenant's part of a run (`azure.tenants`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRun {
    pub tenant: String,
    pub subscriptions: u64,
    pub complete: bool,
}

impl RunRecord {
    pub(crate) fn started(trigger: &str, scope: &str, now_ms: i64) -> RunRecord {
        RunRecord {
            trigger: trigger.to_string(),
            scope: scope.to_string(),
            started_ms: now_ms,
            ended_ms: None,
            result: RunResult::Running,
            added: 0,
            deleted: 0,
            kept_by_guard_rails: 0,
            warnings: 0,
            failed_writes: 0,
            complete: false,
            incomplete_scopes: 0,
            error: None,
            seeds_by_check: BTreeMap::new(),
            tenants: Vec::new(),
        }
    }

    /// The record of a finished run, from the reconcile's summary (as `summarize` writes it).
    pub(crate) fn finished_ok(mut self, summary: &Value, now_ms: i64) -> RunRecord {
        let count = |key: &str| summary.get(key).and_then(Value::as_u64).unwrap_or(0);
        self.ended_ms = Some(now_ms);
        self.added = count("added");
        self.deleted = count("deleted");
        self.kept_by_guard_rails = count("skipped");
        self.warnings = count("warnings");
        self.failed_writes = count("failed");
        self.incomplete_scopes = count("incomplete_scopes");
        self.complete = self.incomplete_scopes == 0;
        self.result = if self.failed_writes == 0 {
            RunResult::Ok
        } else {
            RunResult::Failed
        };
        self.tenants = summary
            .get("tenants")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| {
                Some(TenantRun {
                    tenant: t.get("tenant")?.as_str()?.to_string(),
                    subscriptions: t
                        .get("subscriptions")
                        .and_then(Value::as_array)
                        .map_or(0, |s| s.len() as u64),
                    complete: t.get("complete").and_then(Value::as_bool).unwrap_or(false),
                })
            })
            .collect();
        if let Some(map) = summary.get("seeds_by_check").and_then(Value::as_object) {
            self.seeds_by_check = map.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect();
        }
        self
    }

    pub(crate) fn finished_failed(mut self, error: &str, now_ms: i64) -> RunRecord {
        self.ended_ms = Some(now_ms);
        self.result = RunResult::Failed;
        self.error = Some(error.chars().take(500).collect());
        self
    }
}

/// A change whose retry is scheduled and not yet done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingRetry {
    pub resource: String,
    pub since_ms: i64,
    pub cause: String,
}

/// The row of a run: start time first, so rows sort oldest first.
pub(crate) fn run_row(started_ms: i64) -> String {
    format!(
        "{RUN_PREFIX}{:015}-{}",
        started_ms.max(0),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

fn prefix_scan(prefix: &str) -> Scan {
    let end = prefix_end(prefix).unwrap_or_else(|| format!("{prefix}~"));
    Scan {
        partitions: Partitions::Exact(HISTORY_PARTITION.into()),
        rows: Some((prefix.to_string(), end)),
    }
}

fn encode<T: Serialize>(value: &T) -> Result<String, LedgerError> {
    serde_json::to_string(value).map_err(|e| LedgerError::Corrupt {
        key: "(history record)".into(),
        message: e.to_string(),
    })
}

/// Writes a run under `row` (insert or replace: its start, then its end).
pub(crate) async fn put_run(ledger: &dyn Ledger, row: &str, record: &RunRecord) -> Result<(), LedgerError> {
    ledger
        .put_raw(HISTORY_PARTITION, row, &encode(record)?, &Expect::Any)
        .await
        .map(|_| ())
}

/// Every recorded run, newest first. Unreadable entries are skipped.
pub async fn runs(ledger: &dyn Ledger) -> Result<Vec<RunRecord>, LedgerError> {
    let mut rows = ledger.scan_raw(&prefix_scan(RUN_PREFIX)).await?;
    rows.sort_by(|a, b| b.row.cmp(&a.row));
    Ok(rows
        .iter()
        .filter_map(|e| serde_json::from_str::<RunRecord>(&e.data).ok())
        .collect())
}

/// Deletes the oldest runs beyond [`MAX_RUNS`].
pub(crate) async fn prune_runs(ledger: &dyn Ledger) -> Result<(), LedgerError> {
    let mut rows = ledger.scan_raw(&prefix_scan(RUN_PREFIX)).await?;
    if rows.len() <= MAX_RUNS {
        return Ok(());
    }
    rows.sort_by(|a, b| a.row.cmp(&b.row));
    let excess = rows.len() - MAX_RUNS;
    for entity in rows.into_iter().take(excess) {
        ledger.delete_raw(HISTORY_PARTITION, &entity.row, None).await?;
    }
    Ok(())
}

/// Records that an event was applied at `now_ms`.
pub(crate) async fn record_event_applied(ledger: &dyn Ledger, now_ms: i64) -> Result<(), LedgerError> {
    let data = serde_json::json!({ "at_ms": now_ms }).to_string();
    ledger
        .put_raw(HISTORY_PARTITION, EVENT_ROW, &data, &Expect::Any)
        .await
        .map(|_| ())
}

/// When an event was last applied.
pub(crate) async fn last_event_ms(ledger: &dyn Ledger) -> Result<Option<i64>, LedgerError> {
    Ok(ledger
        .get_raw(HISTORY_PARTITION, EVENT_ROW)
        .await?
        .and_then(|(data, _)| serde_json::from_str::<Value>(&data).ok())
        .and_then(|v| v.get("at_ms").and_then(Value::as_i64)))
}

fn retry_row(id: &ResourceId) -> String {
    format!("{RETRY_PREFIX}{}", key_for(&id.key()))
}

/// Marks a retry pending for `id`, keeping the time of the first one (an existing mark wins).
pub(crate) async fn mark_retry_pending(
    ledger: &dyn Ledger,
    id: &ResourceId,
    cause: &str,
    now_ms: i64,
) -> Result<(), LedgerError> {
    let record = PendingRetry {
        resource: id.as_str().to_string(),
        since_ms: now_ms,
        cause: cause.chars().take(300).collect(),
    };
    match ledger
        .put_raw(HISTORY_PARTITION, &retry_row(id), &encode(&record)?, &Expect::Absent)
        .await
    {
        Ok(_) | Err(LedgerError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The change of `id` was applied or given up: no retry is pending any more.
pub(crate) async fn clear_retry_pending(ledger: &dyn Ledger, id: &ResourceId) -> Result<(), LedgerError> {
    ledger.delete_raw(HISTORY_PARTITION, &retry_row(id), None).await
}

/// Every pending retry, oldest first.
pub(crate) async fn pending_retries(ledger: &dyn Ledger) -> Result<Vec<PendingRetry>, LedgerError> {
    let rows = ledger.scan_raw(&prefix_scan(RETRY_PREFIX)).await?;
    let mut out: Vec<PendingRetry> = rows
        .iter()
        .filter_map(|e| serde_json::from_str::<PendingRetry>(&e.data).ok())
        .collect();
    out.sort_by_key(|p| p.since_ms);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::memory::MemoryLedger;
    use serde_json::json;

    #[tokio::test]
    async fn runs_are_bounded_newest_first_and_retries_keep_their_first_time() {
        let ledger = MemoryLedger::new();
        for n in 0..(MAX_RUNS as i64 + 5) {
            let row = run_row(1_000 + n);
            let done = RunRecord::started("timer", "all", 1_000 + n).finished_ok(&json!({"added": n}), 2_000 + n);
            put_run(&ledger, &row, &done).await.unwrap();
            prune_runs(&ledger).await.unwrap();
        }
        let all = runs(&ledger).await.unwrap();
        assert_eq!(all.len(), MAX_RUNS);
        assert_eq!(all[0].added, MAX_RUNS as u64 + 4);
        assert_eq!(all.last().unwrap().added, 5);

        let id = ResourceId::parse("/subscriptions/s/resourceGroups/rg").unwrap();
        mark_retry_pending(&ledger, &id, "throttled", 10).await.unwrap();
        mark_retry_pending(&ledger, &id, "again", 20).await.unwrap();
        assert_eq!(pending_retries(&ledger).await.unwrap()[0].since_ms, 10);
        clear_retry_pending(&ledger, &id).await.unwrap();
        assert!(pending_retries(&ledger).await.unwrap().is_empty());
        record_event_applied(&ledger, 77).await.unwrap();
        assert_eq!(last_event_ms(&ledger).await.unwrap(), Some(77));
        // None of it is mistaken for owners, seeds or failures.
        assert!(ledger.failures().await.unwrap().is_empty());
        assert!(ledger.all_seeds().await.unwrap().is_empty());
    }
}
