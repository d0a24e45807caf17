//! A fanned-out reconcile in the run history. The timer reconcile of a large estate enqueues one
//! job per batch of subscriptions; the jobs run on whatever instances the Functions host scales
//! to, so the run is one shared record (partition [`HISTORY_PARTITION`], row `x-…`) that every
//! batch updates under its ETag when it has its final outcome. The run's history entry stays
//! `running` until every batch reported; it is then complete only if every batch succeeded and
//! read its own scope completely.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ledger::history::{self, HISTORY_PARTITION, RunRecord, RunResult};
use crate::ledger::{Expect, Ledger, LedgerError};

const FANOUT_PREFIX: &str = "x-";
/// Attempts at a conditional update before giving up (batches reporting at the same moment).
const UPDATE_ATTEMPTS: usize = 32;

/// The shared record of one fanned-out run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FanoutRecord {
    /// The run's history row.
    pub run_row: String,
    pub batches: u32,
    /// The start of the run, as its history entry has it.
    pub started: RunRecord,
    /// Each batch's final outcome, by batch index.
    #[serde(default)]
    pub reported: BTreeMap<u32, RunRecord>,
}

fn fanout_row(run_row: &str) -> String {
    format!("{FANOUT_PREFIX}{run_row}")
}

fn encode<T: Serialize>(value: &T) -> Result<String, LedgerError> {
    serde_json::to_string(value).map_err(|e| LedgerError::Corrupt {
        key: "(fan-out record)".into(),
        message: e.to_string(),
    })
}

/// Records the start of a run fanned out to `batches` jobs; returns its history row.
pub(crate) async fn start(
    ledger: &dyn Ledger,
    trigger: &str,
    batches: u32,
    now_ms: i64,
) -> Result<String, LedgerError> {
    let started = RunRecord::started(trigger, &format!("all ({batches} batches)"), now_ms);
    let run_row = history::run_row(now_ms);
    let record = FanoutRecord {
        run_row: run_row.clone(),
        batches,
        started: started.clone(),
        reported: BTreeMap::new(),
    };
    ledger
        .put_raw(
            HISTORY_PARTITION,
            &fanout_row(&run_row),
            &encode(&record)?,
            &Expect::Absent,
        )
        .await?;
    history::put_run(ledger, &run_row, &started).await?;
    Ok(run_row)
}

/// A batch's final outcome (its summary, or the error it gave up on). A batch that already
/// reported (a redelivered job) is not counted twice. When the last batch reports, the run's
/// history entry is finished from every batch's.
pub(crate) async fn report(
    ledger: &dyn Ledger,
    run_row: &str,
    batch: u32,
    outcome: Result<&Value, &str>,
    now_ms: i64,
) -> Result<Option<RunRecord>, LedgerError> {
    let row = fanout_row(run_row);
    for _ in 0..UPDATE_ATTEMPTS {
        let Some((data, version)) = ledger.get_raw(HISTORY_PARTITION, &row).await? else {
            return Err(LedgerError::Corrupt {
                key: row,
                message: "no fan-out record for this run (pruned, or never started)".into(),
            });
        };
        let mut record: FanoutRecord = serde_json::from_str(&data).map_err(|e| LedgerError::Corrupt {
            key: row.clone(),
            message: e.to_string(),
        })?;
        if batch >= record.batches || record.reported.contains_key(&batch) {
            return Ok(None);
        }
        let one = RunRecord::started("batch", "batch", record.started.started_ms);
        let one = match outcome {
            Ok(summary) => one.finished_ok(summary, now_ms),
            Err(error) => one.finished_failed(error, now_ms),
        };
        record.reported.insert(batch, one);
        match ledger
            .put_raw(HISTORY_PARTITION, &row, &encode(&record)?, &Expect::Version(version))
            .await
        {
            Ok(_) => {}
            Err(LedgerError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
        if record.reported.len() < record.batches as usize {
            return Ok(None);
        }
        let finished = combine(&record, now_ms);
        history::put_run(ledger, &record.run_row, &finished).await?;
        ledger.delete_raw(HISTORY_PARTITION, &row, None).await?;
        history::prune_runs(ledger).await?;
        return Ok(Some(finished));
    }
    Err(LedgerError::Conflict {
        key: format!("{row}: too many batches reporting at once"),
    })
}

/// The run's entry from its batches': counts summed, complete only if every batch was.
pub(crate) fn combine(record: &FanoutRecord, now_ms: i64) -> RunRecord {
    let mut run = record.started.clone();
    run.ended_ms = Some(now_ms);
    let mut failed = Vec::new();
    let mut complete = record.reported.len() == record.batches as usize;
    for (index, batch) in &record.reported {
        run.added += batch.added;
        run.deleted += batch.deleted;
        run.kept_by_guard_rails += batch.kept_by_guard_rails;
        run.warnings += batch.warnings;
        run.failed_writes += batch.failed_writes;
        run.incomplete_scopes += batch.incomplete_scopes;
        complete &= batch.complete && batch.result == RunResult::Ok;
        for (check, seeds) in &batch.seeds_by_check {
            *run.seeds_by_check.entry(check.clone()).or_default() += seeds;
        }
        if let Some(error) = &batch.error {
            failed.push(format!("batch {} of {}: {error}", index + 1, record.batches));
        }
    }
    run.complete = complete;
    run.result = if failed.is_empty() && run.failed_writes == 0 {
        RunResult::Ok
    } else {
        RunResult::Failed
    };
    if !failed.is_empty() {
        run.error = Some(failed.join("; ").chars().take(500).collect());
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::memory::MemoryLedger;
    use serde_json::json;

    #[tokio::test]
    async fn the_run_is_complete_only_when_every_batch_reported() {
        let ledger = MemoryLedger::new();
        let row = start(&ledger, "timer", 3, 1_000).await.unwrap();
        let ok = json!({"added": 2, "deleted": 1, "incomplete_scopes": 0});
        assert_eq!(report(&ledger, &row, 0, Ok(&ok), 2_000).await.unwrap(), None);
        // A redelivered batch does not count twice.
        assert_eq!(report(&ledger, &row, 0, Ok(&ok), 2_100).await.unwrap(), None);
        assert_eq!(report(&ledger, &row, 2, Ok(&ok), 2_200).await.unwrap(), None);
        let runs = history::runs(&ledger).await.unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].result, RunResult::Running);
        let done = report(&ledger, &row, 1, Ok(&ok), 3_000).await.unwrap().unwrap();
        assert_eq!((done.added, done.deleted, done.complete), (6, 3, true));
        assert_eq!(done.result, RunResult::Ok);
        assert_eq!(history::runs(&ledger).await.unwrap()[0], done);
    }

    #[tokio::test]
    async fn a_failed_batch_leaves_the_run_failed_and_incomplete() {
        let ledger = MemoryLedger::new();
        let row = start(&ledger, "timer", 2, 1_000).await.unwrap();
        let ok = json!({"added": 1, "incomplete_scopes": 0});
        report(&ledger, &row, 0, Ok(&ok), 2_000).await.unwrap();
        let done = report(&ledger, &row, 1, Err("throttled"), 2_500)
            .await
            .unwrap()
            .unwrap();
        assert!(!done.complete);
        assert_eq!(done.result, RunResult::Failed);
        assert!(done.error.unwrap().contains("batch 2 of 2: throttled"));
    }
}
