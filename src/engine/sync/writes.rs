//! The ASM writes of a reconcile: a few at a time (each one makes ASM re-run the scan), adds
//! before deletes, stopping early when ASM keeps failing.

use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;

use super::report::{WriteKind, WriteOutcome, WriteResult};
use super::{CONSECUTIVE_FAILURES_TO_STOP, SyncProgress, WRITE_CONCURRENCY};
use crate::adapters::asm::{AddOutcome, AsmApi, AsmError, DeleteOutcome};
use crate::domain::reconcile::{SeedRef, StaleSeed};
use crate::domain::seed::Seed;

/// Tracks consecutive hard failures across concurrent writes.
#[derive(Default)]
pub(super) struct Health {
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

pub(super) async fn apply_adds(
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

pub(super) async fn apply_deletes(
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
