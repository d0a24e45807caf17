//! Running the work behind the functions, whatever triggered it: applying changes (coalesced,
//! with scheduled retries on passing failures), running queued jobs, reconciling. No HTTP here:
//! the routes in `server.rs` translate invocations to these calls and outcomes to responses.

use std::sync::Arc;

use futures::FutureExt;
use serde::Serialize;

use crate::adapters::servicebus::{QueueError, RetryJob, RetryQueue, Sent};
use crate::app::coalesce::Coalescer;
use crate::app::ports::{Applied, ApplyPort, Reconciled, Reconciler, Scope, WorkError};
use crate::config::EventSettings;
use crate::domain::change::{Change, EventRef};
use crate::domain::resource::{ResourceId, ResourceIdError};

/// The engines and the retry queue, built once per process (lazily: `GET /` must not wait).
pub struct Services {
    pub applier: Arc<dyn ApplyPort>,
    pub reconciler: Arc<dyn Reconciler>,
    /// `None` when no Service Bus is configured (local runs): a passing failure then fails the
    /// invocation, so the trigger's own redelivery takes over.
    pub queue: Option<Arc<RetryQueue>>,
    /// Retries after the first attempt (`retry.max_attempts`).
    pub max_attempts: u32,
    /// How events are coalesced and how long a delivery may take (`events.*`).
    pub events: EventSettings,
}

/// What became of one change. Shared by every invocation whose change it covered; answered
/// as `{"outcome": ...}` by every transport.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome")]
pub(crate) enum ApplyOutcome {
    #[serde(rename = "applied")]
    Applied { summary: Applied },
    /// A passing failure; a retry is scheduled.
    #[serde(rename = "retry_scheduled", rename_all = "camelCase")]
    Queued {
        message_id: String,
        visible_at: String,
        cause: String,
    },
    /// Not applied and not retried (a permanent failure, or the last retry failed); logged at
    /// error level and handed to [`ApplyPort::give_up`].
    #[serde(rename = "not_applied")]
    Dropped { cause: String },
    /// A passing failure whose retry could not be queued: the invocation must fail so the
    /// trigger delivers it again.
    #[serde(rename = "failed")]
    Failed { cause: String },
}

impl ApplyOutcome {
    /// Whether a change the same read covered may be answered with this outcome: a success
    /// or a scheduled retry (which will read again), never a failure.
    pub(crate) fn reusable(&self) -> bool {
        matches!(self, ApplyOutcome::Applied { .. } | ApplyOutcome::Queued { .. })
    }

    /// Whether the invocation succeeded from the host's point of view.
    #[cfg_attr(not(feature = "lambda"), allow(dead_code, reason = "only the Lambda transport asks"))]
    pub(crate) fn acknowledged(&self) -> bool {
        !matches!(self, ApplyOutcome::Failed { .. })
    }
}

/// What a finished piece of work reports.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum Summary {
    Applied(Applied),
    Reconciled(Reconciled),
    /// A timer reconcile handed to one queued job per batch.
    FannedOut {
        fanned_out: u32,
        run: String,
        messages: Vec<String>,
    },
}

/// What became of a queued resync or a reconcile.
#[derive(Debug, Clone)]
pub(crate) enum RunOutcome {
    Done { summary: Summary },
    Queued { message_id: String, cause: String },
    Dropped { cause: String },
    Failed { cause: String },
}

/// A queued job that cannot be run as written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JobError {
    #[error("{field}: {error}")]
    BadId {
        field: &'static str,
        error: ResourceIdError,
    },
    #[error("resync job with scope {0:?} and no usable id")]
    BadScope(String),
}

pub(crate) struct Runner {
    pub(super) services: Arc<Services>,
    coalescer: Arc<Coalescer<ApplyOutcome>>,
}

impl Runner {
    pub(crate) fn new(services: Services) -> Runner {
        let services = Arc::new(services);
        let for_work = Arc::clone(&services);
        let coalescer = Coalescer::new(
            Arc::new(move |change: Change| {
                let services = Arc::clone(&for_work);
                async move { apply_with_retry(&services, change, 0).await }.boxed()
            }),
            ApplyOutcome::reusable,
            &services.events,
        );
        Runner { services, coalescer }
    }

    pub(crate) fn services(&self) -> &Services {
        &self.services
    }

    /// Applies the changes of one delivery concurrently (each coalesced as [`Runner::apply`]),
    /// returning the event id, the resource and the outcome of each, in delivery order.
    ///
    /// Event Grid counts a delivery failed when no answer comes within 30 s and redelivers the
    /// whole batch, so the delivery is answered within `events.deadline`: an apply still
    /// running then goes on in the background, and its change is also queued to the retry
    /// queue (which reads the resource again), so nothing is lost if the instance stops.
    pub(crate) async fn apply_events(
        self: &Arc<Self>,
        changes: Vec<(EventRef, Change)>,
    ) -> Vec<(String, String, ApplyOutcome)> {
        let until = tokio::time::Instant::now() + self.services.events.deadline;
        let running: Vec<_> = changes
            .into_iter()
            .map(|(event, change)| {
                tracing::info!(event_id = %event.id, event_type = %event.event_type, resource = %change.id, "event received");
                let runner = Arc::clone(self);
                let queued_change = change.clone();
                let task = tokio::spawn(async move { runner.apply(change).await });
                (event.id, queued_change, task)
            })
            .collect();
        futures::future::join_all(running.into_iter().map(|(event_id, change, mut task)| async move {
            let resource = change.id.to_string();
            let outcome = match tokio::time::timeout_at(until, &mut task).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(lost)) => ApplyOutcome::Failed {
                    cause: format!("the apply stopped: {lost}"),
                },
                Err(_) => self.queue_unfinished(&event_id, change).await,
            };
            (event_id, resource, outcome)
        }))
        .await
    }

    /// Queues a change whose apply outlived `events.deadline` (the apply itself keeps going).
    async fn queue_unfinished(&self, event_id: &str, change: Change) -> ApplyOutcome {
        let deadline = self.services.events.deadline;
        let cause = format!("not finished within events.deadline ({deadline:?})");
        let Some(queue) = &self.services.queue else {
            tracing::error!(event_id, resource = %change.id, "{cause} and no retry queue is configured: the delivery fails so Event Grid delivers it again");
            return ApplyOutcome::Failed {
                cause: format!("{cause} (no retry queue configured)"),
            };
        };
        let job = RetryJob::Apply {
            resource_id: change.id.as_str().to_string(),
            change: change.kind,
            attempt: 1,
            cause: Some(cause.clone()),
        };
        match queue.schedule(&job, Some(event_id)).await {
            Ok(sent) => {
                let visible_at = sent.visible_at.map(httpdate::fmt_http_date).unwrap_or_default();
                tracing::warn!(event_id, resource = %change.id, message_id = %sent.message_id, visible_at, "{cause}: the change is queued and will be read again");
                ApplyOutcome::Queued {
                    message_id: sent.message_id,
                    visible_at,
                    cause,
                }
            }
            Err(qe) => {
                tracing::error!(event_id, resource = %change.id, queue_error = %qe, "{cause} and it could not be queued");
                ApplyOutcome::Failed {
                    cause: format!("{cause}; it could not be queued: {qe}"),
                }
            }
        }
    }

    /// Applies one change from an event, coalesced with other changes to the same resource.
    pub(crate) async fn apply(&self, change: Change) -> ApplyOutcome {
        let id = change.id.clone();
        match self.coalescer.submit(change).await {
            Ok(outcome) => outcome,
            Err(lost) => {
                tracing::error!(resource = %id, "{lost}");
                ApplyOutcome::Failed {
                    cause: lost.to_string(),
                }
            }
        }
    }

    /// Runs a job from the retry queue.
    pub(crate) async fn run_job(&self, job: RetryJob) -> Result<RunOutcome, JobError> {
        match job {
            RetryJob::Apply {
                resource_id,
                change,
                attempt,
                cause,
            } => {
                let id = ResourceId::parse(&resource_id).map_err(|error| JobError::BadId {
                    field: "resourceId",
                    error,
                })?;
                tracing::info!(resource = %id, attempt, previous_cause = cause.as_deref().unwrap_or(""), "retrying apply");
                let change = Change {
                    id,
                    kind: change,
                    body: None,
                    time: None,
                };
                Ok(match apply_with_retry(&self.services, change, attempt).await {
                    ApplyOutcome::Applied { summary } => RunOutcome::Done {
                        summary: Summary::Applied(summary),
                    },
                    ApplyOutcome::Queued { message_id, cause, .. } => RunOutcome::Queued { message_id, cause },
                    ApplyOutcome::Dropped { cause } => RunOutcome::Dropped { cause },
                    ApplyOutcome::Failed { cause } => RunOutcome::Failed { cause },
                })
            }
            RetryJob::Resync { scope, id, attempt } => {
                let scope = match (scope.as_str(), id) {
                    ("all", _) => Scope::All,
                    ("subscription", Some(id)) => Scope::Subscription(id),
                    ("resource", Some(id)) => {
                        Scope::Resource(ResourceId::parse(&id).map_err(|error| JobError::BadId { field: "id", error })?)
                    }
                    (other, _) => return Err(JobError::BadScope(other.to_string())),
                };
                Ok(self.reconcile_or_retry(&scope, attempt).await)
            }
            RetryJob::Batch {
                run,
                batch,
                batches,
                subscriptions,
                attempt,
            } => {
                let scope = Scope::Batch(crate::app::ports::Batch {
                    run,
                    index: batch,
                    count: batches,
                    subscriptions,
                });
                Ok(self.reconcile_or_retry(&scope, attempt).await)
            }
        }
    }

    /// A full (non-dry-run) reconcile of `scope`; a passing failure is retried through the
    /// queue as a resync job.
    pub(crate) async fn reconcile_or_retry(&self, scope: &Scope, attempt: u32) -> RunOutcome {
        let outcome = self.reconcile_once_or_retry(scope, attempt).await;
        if let Scope::Batch(batch) = scope {
            // A batch's final outcome (not a retry scheduled) goes to its run's record.
            let reconciler = &self.services.reconciler;
            match &outcome {
                RunOutcome::Done {
                    summary: Summary::Reconciled(summary),
                } => reconciler.batch_reported(batch, Ok(summary)).await,
                RunOutcome::Done { .. } => {}
                RunOutcome::Dropped { cause } | RunOutcome::Failed { cause } => {
                    reconciler.batch_reported(batch, Err(cause)).await
                }
                RunOutcome::Queued { .. } => {}
            }
        }
        outcome
    }

    async fn reconcile_once_or_retry(&self, scope: &Scope, attempt: u32) -> RunOutcome {
        match self.services.reconciler.reconcile(scope, false).await {
            Ok(summary) => RunOutcome::Done {
                summary: Summary::Reconciled(summary),
            },
            Err(e) if e.is_transient() && attempt < self.services.max_attempts => {
                let job = crate::app::fanout::retry_job(scope, attempt + 1);
                match &self.services.queue {
                    Some(queue) => match queue.schedule(&job, None).await {
                        Ok(sent) => {
                            tracing::warn!(scope = scope.name(), attempt = attempt + 1, cause = %e, message_id = %sent.message_id, "reconcile failed, retry scheduled");
                            RunOutcome::Queued {
                                message_id: sent.message_id,
                                cause: e.message().to_string(),
                            }
                        }
                        Err(qe) => RunOutcome::Failed {
                            cause: format!("{e}; the retry could not be queued: {qe}"),
                        },
                    },
                    None => RunOutcome::Failed {
                        cause: format!("{e} (no retry queue configured)"),
                    },
                }
            }
            Err(e) => {
                tracing::error!(scope = scope.name(), id = scope.id().unwrap_or(""), cause = %e, "reconcile failed");
                RunOutcome::Dropped {
                    cause: e.message().to_string(),
                }
            }
        }
    }

    /// A dry-run or small reconcile answered synchronously.
    pub(crate) async fn reconcile(&self, scope: &Scope, dry_run: bool) -> Result<Reconciled, WorkError> {
        self.services.reconciler.reconcile(scope, dry_run).await
    }

    /// Queues a resync to run now in the `retry` function.
    pub(crate) async fn queue_resync(&self, scope: &Scope) -> Result<Sent, QueueError> {
        let queue = self
            .services
            .queue
            .as_ref()
            .ok_or_else(|| QueueError::NotConfigured("long resyncs run through the retry queue".into()))?;
        let job = RetryJob::Resync {
            scope: scope.name().into(),
            id: scope.id().map(str::to_string),
            attempt: 0,
        };
        queue.send(&job, None, None).await
    }
}

/// One apply; on a passing failure, schedules retry `attempt + 1` or, past the last one, gives
/// up where the operator and the next reconcile see it.
async fn apply_with_retry(services: &Services, change: Change, attempt: u32) -> ApplyOutcome {
    let error = match services.applier.apply(&change).await {
        Ok(summary) => {
            tracing::info!(resource = %change.id, change = ?change.kind, attempt, "applied");
            return ApplyOutcome::Applied { summary };
        }
        Err(e) => e,
    };
    if !error.is_transient() || attempt >= services.max_attempts {
        let why = if error.is_transient() {
            format!("gave up after {} retries", services.max_attempts)
        } else {
            "permanent failure".to_string()
        };
        // A stable message for alerts: "seedwatch: change not applied".
        tracing::error!(resource = %change.id, change = ?change.kind, attempt, cause = %error, why, "seedwatch: change not applied");
        services.applier.give_up(&change, error.message(), attempt + 1).await;
        return ApplyOutcome::Dropped {
            cause: error.message().to_string(),
        };
    }
    let Some(queue) = &services.queue else {
        return ApplyOutcome::Failed {
            cause: format!("{error} (no retry queue configured)"),
        };
    };
    let job = RetryJob::Apply {
        resource_id: change.id.as_str().to_string(),
        change: change.kind,
        attempt: attempt + 1,
        cause: Some(error.message().to_string()),
    };
    match queue.schedule(&job, None).await {
        Ok(sent) => {
            let visible_at = sent.visible_at.map(httpdate::fmt_http_date).unwrap_or_default();
            tracing::warn!(resource = %change.id, attempt = attempt + 1, cause = %error, message_id = %sent.message_id, visible_at, "apply failed, retry scheduled");
            ApplyOutcome::Queued {
                message_id: sent.message_id,
                visible_at,
                cause: error.message().to_string(),
            }
        }
        Err(qe) => {
            tracing::error!(resource = %change.id, cause = %error, queue_error = %qe, "apply failed and the retry could not be queued");
            ApplyOutcome::Failed {
                cause: format!("{error}; the retry could not be queued: {qe}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::ports::Scope;
    use crate::domain::change::ChangeKind;
    use async_trait::async_trait;
    use std::time::Duration;

    /// An apply that finishes only for ids not containing "stall" (a stalled ARM read).
    struct Gated;

    #[async_trait]
    impl ApplyPort for Gated {
        async fn apply(&self, change: &Change) -> Result<Applied, WorkError> {
            if change.id.as_str().contains("stall") {
                std::future::pending::<()>().await;
            }
            Ok(Applied::Ignored {
                resource: change.id.as_str().to_string(),
                ignored: "read",
            })
        }
    }

    struct NoReconcile;

    #[async_trait]
    impl Reconciler for NoReconcile {
        async fn reconcile(&self, _: &Scope, _: bool) -> Result<Reconciled, WorkError> {
            Err(WorkError::permanent("not in this test"))
        }
    }

    fn event_for(name: &str) -> (EventRef, Change) {
        let id = ResourceId::parse(&format!("/subscriptions/1/resourceGroups/rg/providers/A.B/c/{name}")).unwrap();
        let event = EventRef {
            id: format!("evt-{name}"),
            event_type: "Microsoft.Resources.ResourceWriteSuccess".into(),
        };
        let change = Change {
            id,
            kind: ChangeKind::Changed,
            body: None,
            time: None,
        };
        (event, change)
    }

    #[tokio::test(start_paused = true)]
    async fn a_delivery_is_answered_at_the_deadline_with_what_finished() {
        let events = EventSettings {
            coalesce_window: Duration::ZERO,
            ..EventSettings::default()
        };
        let runner = Arc::new(Runner::new(Services {
            applier: Arc::new(Gated),
            reconciler: Arc::new(NoReconcile),
            queue: None,
            max_attempts: 3,
            events: events.clone(),
        }));
        let started = tokio::time::Instant::now();
        let outcomes = runner.apply_events(vec![event_for("quick"), event_for("stall")]).await;
        assert_eq!(
            started.elapsed(),
            events.deadline,
            "answered at the deadline, not later"
        );
        assert!(
            matches!(outcomes[0].2, ApplyOutcome::Applied { .. }),
            "{:?}",
            outcomes[0]
        );
        // No retry queue: the unfinished change fails the delivery, so Event Grid sends it again.
        match &outcomes[1].2 {
            ApplyOutcome::Failed { cause } => assert!(cause.contains("events.deadline"), "{cause}"),
            other => panic!("{other:?}"),
        }
    }
}
