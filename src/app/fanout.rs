//! The timer reconcile of a large estate, fanned out: above `sync.fanout_threshold`
//! subscriptions in scope, the timer enqueues one retry-queue job per `sync.fanout_batch`
//! subscriptions instead of sweeping everything in one invocation. Each job reconciles its own
//! batch with the guard rails of a narrowed scope (every other subscription counts as not read,
//! so a batch never deletes a seed another batch's subscriptions may contribute; provenance and
//! the deletion breaker as for any reconcile), and reports its final outcome to the run's shared
//! record in the ledger ([`crate::ledger::fanout`]).

use crate::adapters::servicebus::RetryJob;
use crate::app::engines::{SyncEngine, SyncReconciler, azure_error};
use crate::app::ports::{Batch, Reconciled, Scope, WorkError};
use crate::app::runner::{RunOutcome, Runner, Summary};
use crate::engine::reconcile::{BatchPosition, ReconcileReport};

impl SyncEngine {
    /// The batches the timer reconcile fans out to, or `None` for a sweep in one invocation.
    pub(crate) async fn fanout_batches(&self) -> Result<Option<Vec<Vec<String>>>, WorkError> {
        let Some(subscriptions) = self.azure.subscriptions_in_scope().await.map_err(azure_error)? else {
            return Ok(None);
        };
        Ok(batches(
            &subscriptions,
            self.config.sync.fanout_threshold,
            self.config.sync.fanout_batch,
        ))
    }

    /// One batch of a fanned-out run.
    pub(super) async fn batch(&self, batch: &Batch, dry_run: bool) -> Result<ReconcileReport, WorkError> {
        let what = format!("batch {} of {} of a fanned-out reconcile", batch.index + 1, batch.count);
        let mut report = self.narrowed(&batch.subscriptions, &what, dry_run).await?;
        report.batch = Some(BatchPosition {
            index: batch.index,
            count: batch.count,
        });
        Ok(report)
    }
}

/// Batches of `batch` subscriptions when there are more than `threshold`, else `None`.
pub(crate) fn batches(subscriptions: &[String], threshold: u32, batch: u32) -> Option<Vec<Vec<String>>> {
    if subscriptions.len() <= threshold as usize {
        return None;
    }
    Some(
        subscriptions
            .chunks(batch.max(1) as usize)
            .map(<[String]>::to_vec)
            .collect(),
    )
}

impl SyncReconciler {
    pub(super) async fn start_fanout(&self, batches: u32) -> Option<String> {
        let ledger = self.0.ledger.as_ref()?;
        let trigger = crate::app::health::record::current_trigger();
        match crate::ledger::fanout::start(ledger.as_ref(), trigger, batches, crate::domain::clock::now_ms()).await {
            Ok(row) => Some(row),
            Err(e) => {
                tracing::warn!(error = %e, "run history: cannot record a fanned-out run's start");
                None
            }
        }
    }

    pub(super) async fn report_batch(&self, batch: &Batch, outcome: Result<&Reconciled, &str>) {
        let Some(ledger) = &self.0.ledger else {
            return;
        };
        let now = crate::domain::clock::now_ms();
        // The run's record stores the summary as JSON.
        let summary = outcome.map(|summary| serde_json::to_value(summary).unwrap_or_default());
        let outcome = summary.as_ref().map_err(|e| *e);
        match crate::ledger::fanout::report(ledger.as_ref(), &batch.run, batch.index, outcome, now).await {
            Ok(Some(run)) => tracing::info!(
                complete = run.complete,
                batches = batch.count,
                "fanned-out reconcile finished"
            ),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, run = %batch.run, batch = batch.index, "run history: cannot record a batch")
            }
        }
    }
}

/// The job that runs `scope` again (attempt `attempt`).
pub(crate) fn retry_job(scope: &Scope, attempt: u32) -> RetryJob {
    match scope {
        Scope::Batch(batch) => RetryJob::Batch {
            run: batch.run.clone(),
            batch: batch.index,
            batches: batch.count,
            subscriptions: batch.subscriptions.clone(),
            attempt,
        },
        _ => RetryJob::Resync {
            scope: scope.name().into(),
            id: scope.id().map(str::to_string),
            attempt,
        },
    }
}

impl Runner {
    /// The timer's reconcile: the whole estate in this invocation, or, above
    /// `sync.fanout_threshold` subscriptions and with a retry queue, one job per batch.
    pub(crate) async fn timer_reconcile(&self) -> RunOutcome {
        let reconciler = &self.services.reconciler;
        let (Some(queue), Ok(Some(batches))) = (&self.services.queue, reconciler.fanout().await) else {
            return self.reconcile_or_retry(&Scope::All, 0).await;
        };
        let count = u32::try_from(batches.len()).unwrap_or(u32::MAX);
        let run = reconciler.fanout_started(count).await.unwrap_or_default();
        let mut sent = Vec::new();
        for (index, subscriptions) in batches.into_iter().enumerate() {
            let job = RetryJob::Batch {
                run: run.clone(),
                batch: u32::try_from(index).unwrap_or(u32::MAX),
                batches: count,
                subscriptions,
                attempt: 0,
            };
            match queue.send(&job, None, None).await {
                Ok(message) => sent.push(message.message_id),
                Err(e) => {
                    // Batches already sent run and report; the rest are not read this cycle, and
                    // the run stays incomplete in the history.
                    return RunOutcome::Failed {
                        cause: format!("fan-out: batch {} of {count} could not be queued: {e}", index + 1),
                    };
                }
            }
        }
        tracing::info!(batches = count, run = %run, "timer reconcile fanned out");
        RunOutcome::Done {
            summary: Summary::FannedOut {
                fanned_out: count,
                run,
                messages: sent,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Batch, RetryJob, Scope, batches, retry_job};

    #[test]
    fn a_batch_is_retried_as_the_same_batch() {
        let batch = Batch {
            run: "r-000000000001000-abcd1234".into(),
            index: 2,
            count: 10,
            subscriptions: vec!["s1".into(), "s2".into()],
        };
        let job = retry_job(&Scope::Batch(batch), 3);
        let text = serde_json::to_string(&job).unwrap();
        assert!(text.contains("\"kind\":\"batch\""), "{text}");
        let back: RetryJob = serde_json::from_str(&text).unwrap();
        assert_eq!(back, job);
        let RetryJob::Batch {
            batch,
            batches,
            subscriptions,
            attempt,
            ..
        } = back
        else {
            panic!("not a batch job: {text}");
        };
        assert_eq!((batch, batches, subscriptions.len(), attempt), (2, 10, 2, 3));
        // Other scopes keep their resync job.
        assert!(matches!(retry_job(&Scope::All, 1), RetryJob::Resync { .. }));
    }

    #[test]
    fn fans_out_only_above_the_threshold() {
        let subs: Vec<String> = (0..45).map(|n| format!("s{n}")).collect();
        assert_eq!(batches(&subs, 50, 20), None);
        assert_eq!(batches(&subs, 45, 20), None);
        let out = batches(&subs, 44, 20).unwrap();
        assert_eq!(out.iter().map(Vec::len).collect::<Vec<_>>(), vec![20, 20, 5]);
        assert_eq!(out.concat(), subs);
    }
}
