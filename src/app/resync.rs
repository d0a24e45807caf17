//! The resync function's work, whatever transport asked for it: one resource goes through the
//! apply path, a dry run is answered at once, and a full reconcile of a subscription or the
//! estate either runs here or is queued, as the transport's time limit allows.

use crate::app::ports::Scope;
use crate::app::runner::{ApplyOutcome, RunOutcome, Runner, Summary};
use crate::domain::change::{Change, ChangeKind};

/// Where a full (not dry-run) reconcile of a subscription or the estate runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LongResync {
    /// Queued to the `retry` function and answered with 202: it may outlast the Functions
    /// host's 230-second HTTP limit.
    Queue,
    /// Run in this invocation (a Lambda invocation may run for up to 15 minutes).
    #[cfg_attr(
        not(feature = "lambda"),
        allow(dead_code, reason = "only the Lambda transport runs here")
    )]
    RunHere,
}

/// What a resync did.
#[derive(Debug, Clone)]
pub(crate) struct ResyncAnswer {
    pub scope: Scope,
    pub dry_run: bool,
    pub result: ResyncResult,
}

#[derive(Debug, Clone)]
pub(crate) enum ResyncResult {
    /// Done: what was applied or reconciled.
    Done(Summary),
    /// One resource's apply failed for now; its retry is queued.
    ApplyQueued(ApplyOutcome),
    /// The reconcile failed for now; its retry is queued.
    RetryScheduled { message_id: String, cause: String },
    /// The reconcile is queued to run now in the `retry` function.
    Accepted { message_id: String },
    /// Not done. `passing` when trying again later may help.
    Failed { cause: String, passing: bool },
}

impl ResyncResult {
    /// The HTTP status the answer carries: 200 done, 202 queued, 503 a passing failure, 500 a
    /// permanent one.
    pub(crate) fn status(&self) -> u16 {
        match self {
            ResyncResult::Done(_) => 200,
            ResyncResult::ApplyQueued(_) | ResyncResult::RetryScheduled { .. } | ResyncResult::Accepted { .. } => 202,
            ResyncResult::Failed { passing: true, .. } => 503,
            ResyncResult::Failed { passing: false, .. } => 500,
        }
    }
}

/// Runs one resync.
pub(crate) async fn resync(runner: &Runner, scope: &Scope, dry_run: bool, long: LongResync) -> ResyncAnswer {
    tracing::info!(
        scope = scope.name(),
        id = scope.id().unwrap_or(""),
        dry_run,
        "resync requested"
    );
    let result = match (scope, dry_run) {
        (Scope::Resource(id), false) => {
            let change = Change {
                id: id.clone(),
                kind: ChangeKind::Changed,
                body: None,
                time: None,
            };
            match runner.apply(change).await {
                ApplyOutcome::Applied { summary } => ResyncResult::Done(Summary::Applied(summary)),
                queued @ ApplyOutcome::Queued { .. } => ResyncResult::ApplyQueued(queued),
                ApplyOutcome::Dropped { cause } => ResyncResult::Failed { cause, passing: false },
                ApplyOutcome::Failed { cause } => ResyncResult::Failed { cause, passing: true },
            }
        }
        (_, true) => match runner.reconcile(scope, true).await {
            Ok(summary) => ResyncResult::Done(Summary::Reconciled(summary)),
            Err(e) => ResyncResult::Failed {
                passing: e.is_transient(),
                cause: e.message().to_string(),
            },
        },
        (_, false) => match long {
            LongResync::Queue => match runner.queue_resync(scope).await {
                Ok(sent) => ResyncResult::Accepted {
                    message_id: sent.message_id,
                },
                Err(e) => ResyncResult::Failed {
                    cause: e.to_string(),
                    passing: true,
                },
            },
            LongResync::RunHere => match runner.reconcile_or_retry(scope, 0).await {
                RunOutcome::Done { summary } => ResyncResult::Done(summary),
                RunOutcome::Queued { message_id, cause } => ResyncResult::RetryScheduled { message_id, cause },
                RunOutcome::Dropped { cause } => ResyncResult::Failed { cause, passing: false },
                RunOutcome::Failed { cause } => ResyncResult::Failed { cause, passing: true },
            },
        },
    };
    ResyncAnswer {
        scope: scope.clone(),
        dry_run,
        result,
    }
}
