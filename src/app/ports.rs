//! What the handler needs from the engines, as small traits: applying one resource change (the
//! ledger's incremental path) and reconciling a scope (the sync engine). `cli/serve.rs` wires
//! the real engines in; tests wire fakes.

use async_trait::async_trait;
use serde_json::Value;

use crate::domain::change::Change;
use crate::domain::resource::ResourceId;

/// Why a piece of work failed, and whether trying again later may help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct WorkError {
    /// Throttled, timed out, a 5xx, a connection failure: worth a scheduled retry.
    pub transient: bool,
    pub message: String,
}

impl WorkError {
    pub fn transient(message: impl Into<String>) -> WorkError {
        WorkError {
            transient: true,
            message: message.into(),
        }
    }

    pub fn permanent(message: impl Into<String>) -> WorkError {
        WorkError {
            transient: false,
            message: message.into(),
        }
    }
}

/// The incremental path: one resource change into the ledger and ASM.
#[async_trait]
pub trait Applier: Send + Sync {
    /// Applies one change; the JSON summary says what changed (for logs and HTTP answers).
    async fn apply(&self, change: &Change) -> Result<Value, WorkError>;

    /// The change failed on its last retry (or permanently) after `attempts` attempts, the first
    /// included: keep it where the next reconcile and the operator see it (the ledger records
    /// it as a failed change). The handler has already logged it. Must not fail or panic: a
    /// problem recording it is logged.
    async fn give_up(&self, change: &Change, cause: &str, attempts: u32) {
        let _ = (change, cause, attempts);
    }
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
    pub fn name(&self) -> &'static str {
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
    async fn reconcile(&self, scope: &Scope, dry_run: bool) -> Result<Value, WorkError>;

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
    async fn batch_reported(&self, batch: &Batch, outcome: Result<&Value, &str>) {
        let _ = (batch, outcome);
    }
}
