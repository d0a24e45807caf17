//! What the handler needs from the engines, as small traits: applying one resource change (the
//! ledger's incremental path) and reconciling a scope (the sync engine). `app::engines` holds
//! the real engines; tests wire fakes.

use async_trait::async_trait;
use serde::Serialize;

use crate::domain::change::Change;
use crate::domain::resource::ResourceId;
use crate::engine::apply::{ApplyReport, ReportedSeed};
use crate::engine::reconcile::ReconcileReport;

/// Why a piece of work failed, and whether trying again later may help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkError {
    /// Throttled, timed out, a 5xx, a connection failure: worth a scheduled retry.
    #[error("{0}")]
    Transient(String),
    /// Configuration, a refusal, a request outside the scope: trying again does not help.
    #[error("{0}")]
    Permanent(String),
}

impl WorkError {
    pub fn transient(message: impl Into<String>) -> WorkError {
        WorkError::Transient(message.into())
    }

    pub(crate) fn permanent(message: impl Into<String>) -> WorkError {
        WorkError::Permanent(message.into())
    }

    /// From an error that knows whether it is transient.
    pub(crate) fn from_error(error: &dyn std::fmt::Display, transient: bool) -> WorkError {
        match transient {
            true => WorkError::Transient(error.to_string()),
            false => WorkError::Permanent(error.to_string()),
        }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, WorkError::Transient(_))
    }

    /// What went wrong, for logs, answers and the ledger.
    pub fn message(&self) -> &str {
        match self {
            WorkError::Transient(message) | WorkError::Permanent(message) => message,
        }
    }
}

/// What one apply did: the engine's report, or why the change was acknowledged unread.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Applied {
    Report(ApplyReport),
    Ignored { resource: String, ignored: &'static str },
}

/// The incremental path: one resource change into the ledger and ASM.
#[async_trait]
pub trait ApplyPort: Send + Sync {
    /// Applies one change; the report says what changed (for logs and HTTP answers).
    async fn apply(&self, change: &Change) -> Result<Applied, WorkError>;

    /// The change failed on its last retry (or permanently) after `attempts` attempts, the first
    /// included: keep it where the next reconcile and the operator see it (the ledger records
    /// it as a failed change). The handler has already logged it. Must not fail or panic: a
    /// problem recording it is logged.
    async fn give_up(&self, change: &Change, cause: &str, attempts: u32) {
        let _ = (change, cause, attempts);
    }
}

/// What a reconcile (or the dry run of one resource) found.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Reconciled {
    Report(Box<ReconcileReport>),
    Resource(ResourcePreview),
}

/// What one resource contributes, read now (the dry run of its apply).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourcePreview {
    pub resource: String,
    pub found: bool,
    pub seeds: Vec<ReportedSeed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<String>>,
}

/// What a resync or reconcile covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Subscription(String),
    Resource(ResourceId),
    /// One batch of a fanned-out timer reconcile.
    Batch(Batch),
}

/// A batch of subscriptions of a fanned-out run: reconciled with every other subscription
/// marked as not read, and reported to the run's shared history record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The run's history row.
    pub run: String,
    pub index: u32,
    pub count: u32,
    pub subscriptions: Vec<String>,
}

impl Scope {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Scope::All => "all",
            Scope::Subscription(_) => "subscription",
            Scope::Resource(_) => "resource",
            Scope::Batch(_) => "batch",
        }
    }

    /// The subscription or resource id, if the scope has one.
    pub fn id(&self) -> Option<&str> {
        match self {
            Scope::All | Scope::Batch(_) => None,
            Scope::Subscription(id) => Some(id),
            Scope::Resource(id) => Some(id.as_str()),
        }
    }
}

/// The full reconcile (the sync engine with its guard rails), over a scope.
#[async_trait]
pub trait Reconciler: Send + Sync {
    /// Reconciles `scope`; with `dry_run` only plans. The JSON summary says what was (or would
    /// be) added, deleted, kept and skipped.
    async fn reconcile(&self, scope: &Scope, dry_run: bool) -> Result<Reconciled, WorkError>;

    /// What the status function reads (configuration, ledger, ASM, token); `None` for engines
    /// without them (tests).
    fn status_source(&self) -> Option<crate::app::health::status::StatusSource> {
        None
    }

    /// The batches of subscriptions a timer reconcile fans out to, or `None` to run it in
    /// this invocation (the estate is small, or the engine cannot tell).
    async fn fanout(&self) -> Result<Option<Vec<Vec<String>>>, WorkError> {
        Ok(None)
    }

    /// Records the start of a run fanned out to `batches` jobs; returns the run's id for the
    /// jobs (`None` without a run history).
    async fn fanout_started(&self, batches: u32) -> Option<String> {
        let _ = batches;
        None
    }

    /// A batch's final outcome: its summary, or the error it gave up on. Must not fail.
    async fn batch_reported(&self, batch: &Batch, outcome: Result<&Reconciled, &str>) {
        let _ = (batch, outcome);
    }
}
