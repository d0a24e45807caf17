//! The incremental path: apply one changed resource to the ledger and to ASM.
//!
//! 1. Resolve the owner of the changed id (a DNS record set, a site, every owner under a
//!    resource group…).
//! 2. Read the owner's ledger record (with its version), *then* read the owner from ARM (one
//!    GET; none when an event carried a body that only adds seeds), extract its seeds.
//! 3. Commit the read: the owner record gets `generation + 1`, the new seeds, and the seeds it
//!    must leave (`pending_removal`), written under the version read in step 2. A conflict means
//!    another applier committed meanwhile: start again from step 2, so commits of one owner are
//!    ordered and each rests on an ARM read made after the previous commit.
//! 4. Propagate: on every affected seed record set the owner's membership, stamped with the
//!    generation (an older generation never overwrites a newer one, so a slow applier cannot
//!    resurrect a seed). Then settle the seed with ASM: add when some owner wants it and ASM
//!    does not hold it, delete when nobody wants it and it is ours (tagged). An intent is
//!    recorded before the ASM call and cleared after; while fresh it is a lease other appliers
//!    respect. After each ASM call the seed is re-evaluated, so a membership that changed
//!    during the call is honoured before the lease is released.
//! 5. Mark the owner settled (pending removals cleared).
//!
//! A crash between any two steps leaves the owner unsettled or an intent behind: a retry of the
//! event (or any later apply touching the seed once the lease has expired, or the next
//! reconcile) redoes the remaining work. Nothing is deleted from ASM unless, when its intent
//! was recorded, no owner contributed the seed and the seed was known to carry our tag.

mod owners;
mod settle;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::adapters::asm::{AsmApi, AsmError};
use crate::adapters::azure::{AzureError, AzureReader, Owner};
use crate::domain::check::EnabledChecks;
use crate::domain::extract::Extraction;
use crate::domain::resource::{Resource, ResourceId};
use crate::domain::seed::Seed;
use crate::ledger::{IntentAction, Ledger, LedgerError};

/// One change to apply.
#[derive(Debug, Clone)]
pub struct ApplyRequest {
    /// The id the event (or the operator) named.
    pub resource: ResourceId,
    /// The event says the resource was deleted.
    pub deleted: bool,
    /// The resource body, when the event carried it (Azure Resource Notifications).
    pub body: Option<Value>,
    /// When the body was taken (the event time, Unix milliseconds). A body is a snapshot: it is
    /// used only when it is newer than the owner's last committed read, so a late event cannot
    /// roll an owner back. Without it the body is ignored and the owner is read.
    pub body_time_ms: Option<i64>,
}

impl ApplyRequest {
    pub fn changed(resource: ResourceId) -> ApplyRequest {
        ApplyRequest {
            resource,
            deleted: false,
            body: None,
            body_time_ms: None,
        }
    }

    pub fn deleted(resource: ResourceId) -> ApplyRequest {
        ApplyRequest {
            resource,
            deleted: true,
            body: None,
            body_time_ms: None,
        }
    }
}

/// A seed in a report.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ReportedSeed {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl From<&Seed> for ReportedSeed {
    fn from(seed: &Seed) -> ReportedSeed {
        ReportedSeed {
            name: seed.name().to_string(),
            kind: seed.kind().as_str().to_string(),
        }
    }
}

/// A seed nobody contributes any more that stays in ASM, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct KeptSeed {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub reason: String,
}

/// Why `delete_stale_seeds: false` kept a seed.
pub(crate) const KEPT_DELETE_STALE_OFF: &str =
    "delete_stale_seeds is false: the seed stays in ASM (the ledger records that no resource contributes it)";

/// What one apply changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ApplyReport {
    pub resource: String,
    /// The owners whose seeds were recomputed (or dropped).
    pub owners: Vec<String>,
    /// Seeds added to ASM.
    pub added: Vec<ReportedSeed>,
    /// Seeds deleted from ASM.
    pub deleted: Vec<ReportedSeed>,
    /// Seeds whose ASM state another applier's lease covers.
    pub deferred: Vec<ReportedSeed>,
    /// Seeds no resource contributes any more that were not deleted, with the reason
    /// (`delete_stale_seeds` is false, or the deletion breaker holds them for the reconcile).
    pub kept: Vec<KeptSeed>,
    /// ARM GETs made.
    pub arm_reads: u32,
    /// ASM writes made (adds and deletes).
    pub asm_writes: u32,
    /// ASM listings made (to find the id of a seed to delete).
    pub asm_reads: u32,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("reading {owner} from Azure: {source}")]
    Azure { owner: String, source: AzureError },
    #[error("writing seed {seed} to ASM: {source}")]
    Asm { seed: String, source: AsmError },
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
    #[error("{what} kept changing under concurrent appliers; try again")]
    Contended { what: String },
    #[error("{count} seed(s) are being written by another applier: {first} …; try again later")]
    Busy { count: usize, first: String },
    #[error("stopped at step {0:?} (simulated crash)")]
    Stopped(Step),
}

impl ApplyError {
    /// Whether a later attempt may succeed: the handler then schedules a retry.
    pub fn is_transient(&self) -> bool {
        match self {
            ApplyError::Azure { source, .. } => source.is_transient(),
            ApplyError::Asm { source, .. } => match source {
                AsmError::Transport { .. } => true,
                AsmError::Http { status, .. } => crate::adapters::http::is_retryable_status(*status),
                _ => false,
            },
            ApplyError::Ledger(e) => e.is_transient(),
            ApplyError::Contended { .. } | ApplyError::Busy { .. } | ApplyError::Stopped(_) => true,
        }
    }
}

/// The points between the steps of an apply, where the simulation stops it (a crash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Step {
    Read,
    OwnerCommitted,
    MembershipWritten,
    IntentRecorded,
    AsmCalled,
    AsmRecorded,
}

/// Observes each step; returning `false` stops the apply there. Production uses [`NoProbe`].
pub trait StepProbe: Send + Sync {
    fn pass(&self, step: Step) -> bool;
}

pub(crate) struct NoProbe;
impl StepProbe for NoProbe {
    fn pass(&self, _step: Step) -> bool {
        true
    }
}

pub use crate::domain::clock::{Clock, SystemClock};

/// Maps a changed id to its owner ([`crate::domain::owner::owner_of`] in production).
pub(crate) type Resolver = fn(&ResourceId) -> Owner;
/// Turns an owner read into seeds.
pub type Extractor = fn(&[Resource], &EnabledChecks) -> Extraction;

/// The production owner mapping ([`crate::domain::owner::owner_of`]).
pub fn default_resolver(id: &ResourceId) -> Owner {
    crate::domain::owner::owner_of(id)
}

/// Whether an event's body alone gives an owner's seeds: not for types whose seeds depend on
/// another resource (a storage account's `blobServices/default`, a record set's zone).
fn body_is_enough(owner: &ResourceId) -> bool {
    let arm_type = owner.arm_type();
    arm_type != "microsoft.storage/storageaccounts" && !arm_type.starts_with("microsoft.network/dnszones/")
}

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// How long an intent keeps other appliers away from a seed's ASM state.
    pub lease: Duration,
    /// How long a membership tombstone is kept (longer than any apply can take).
    pub tombstone_ttl: Duration,
    /// Conflicts tolerated on one record before giving up (transiently).
    pub max_conflicts: u32,
    /// `delete_stale_seeds`: without it, nothing is ever deleted from ASM.
    pub delete_stale_seeds: bool,
    /// `sync.max_delete_fraction`, applied to the deletes of all applies over a rolling hour
    /// ([`crate::ledger::breaker`]).
    pub max_delete_fraction: f64,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            lease: Duration::from_secs(60),
            tombstone_ttl: Duration::from_secs(3600),
            max_conflicts: 20,
            delete_stale_seeds: false,
            max_delete_fraction: 0.25,
        }
    }
}

/// The apply engine. Cheap to share: every field is behind an `Arc` or small.
pub struct Applier {
    pub azure: Arc<dyn AzureReader>,
    pub asm: Arc<dyn AsmApi>,
    pub ledger: Arc<dyn Ledger>,
    pub checks: EnabledChecks,
    /// `asm.seed_types`: seeds of other types are not this owner's seeds.
    pub seed_types: BTreeSet<crate::domain::seed::SeedKind>,
    pub seed_tag: String,
    pub clock: Arc<dyn Clock>,
    pub probe: Arc<dyn StepProbe>,
    pub resolve: Resolver,
    pub extract: Extractor,
    pub options: ApplyOptions,
}

/// Counters and results gathered while applying.
#[derive(Default)]
struct Run {
    token: String,
    arm_reads: AtomicU32,
    asm_writes: AtomicU32,
    asm_reads: AtomicU32,
    added: std::sync::Mutex<BTreeSet<Seed>>,
    deleted: std::sync::Mutex<BTreeSet<Seed>>,
    deferred: std::sync::Mutex<BTreeSet<Seed>>,
    kept: std::sync::Mutex<BTreeMap<Seed, String>>,
    warnings: std::sync::Mutex<Vec<String>>,
}

impl Run {
    fn note(set: &std::sync::Mutex<BTreeSet<Seed>>, seed: &Seed) {
        set.lock().unwrap_or_else(|e| e.into_inner()).insert(seed.clone());
    }
    fn keep(&self, seed: &Seed, reason: String) {
        tracing::debug!(seed = %seed, token = %self.token, reason, "kept in ASM");
        self.kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(seed.clone(), reason);
    }
    fn is_kept(&self, seed: &Seed) -> bool {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).contains_key(seed)
    }
    fn warn(&self, message: String) {
        self.warnings.lock().unwrap_or_else(|e| e.into_inner()).push(message);
    }

    /// The report of a finished run; `Busy` when another applier's intent held a seed.
    fn into_report(self, resource: &ResourceId, owners: &[ResourceId]) -> Result<ApplyReport, ApplyError> {
        let deferred: Vec<Seed> = self
            .deferred
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect();
        if let Some(first) = deferred.first() {
            return Err(ApplyError::Busy {
                count: deferred.len(),
                first: first.to_string(),
            });
        }
        let list = |set: &std::sync::Mutex<BTreeSet<Seed>>| -> Vec<ReportedSeed> {
            set.lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(ReportedSeed::from)
                .collect()
        };
        Ok(ApplyReport {
            resource: resource.to_string(),
            owners: owners.iter().map(ToString::to_string).collect(),
            added: list(&self.added),
            deleted: list(&self.deleted),
            deferred: Vec::new(),
            kept: self
                .kept
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(seed, reason)| KeptSeed {
                    name: seed.name().to_string(),
                    kind: seed.kind().as_str().to_string(),
                    reason: reason.clone(),
                })
                .collect(),
            arm_reads: self.arm_reads.load(Ordering::Relaxed),
            asm_writes: self.asm_writes.load(Ordering::Relaxed),
            asm_reads: self.asm_reads.load(Ordering::Relaxed),
            warnings: std::mem::take(&mut *self.warnings.lock().unwrap_or_else(|e| e.into_inner())),
        })
    }
}

/// What to do about a seed's ASM state.
enum Settle {
    Nothing,
    Do(IntentAction),
    Deferred,
}

impl Applier {
    pub fn new(
        azure: Arc<dyn AzureReader>,
        asm: Arc<dyn AsmApi>,
        ledger: Arc<dyn Ledger>,
        checks: EnabledChecks,
        seed_tag: String,
    ) -> Applier {
        Applier {
            azure,
            asm,
            ledger,
            checks,
            seed_types: crate::config::all_seed_types(),
            seed_tag,
            clock: Arc::new(SystemClock),
            probe: Arc::new(NoProbe),
            resolve: default_resolver,
            extract: crate::domain::extract::extract_resources,
            options: ApplyOptions::default(),
        }
    }

    /// Takes the rules from the configuration: `delete_stale_seeds`, the breaker's
    /// `sync.max_delete_fraction` and the seed types ASM is sent (`asm.seed_types`).
    pub(crate) fn configured(mut self, config: &crate::config::Config) -> Applier {
        self.options.delete_stale_seeds = config.delete_stale_seeds;
        self.options.max_delete_fraction = config.sync.max_delete_fraction;
        self.seed_types = config.asm.seed_types.clone();
        self
    }

    fn step(&self, step: Step) -> Result<(), ApplyError> {
        if self.probe.pass(step) {
            Ok(())
        } else {
            tracing::debug!(?step, "apply stopped by the probe");
            Err(ApplyError::Stopped(step))
        }
    }

    /// Applies one change. The result depends only on the state of Azure when it runs, never
    /// on the order or number of events.
    pub async fn apply(&self, request: &ApplyRequest) -> Result<ApplyReport, ApplyError> {
        let run = Run {
            token: uuid::Uuid::new_v4().simple().to_string(),
            ..Run::default()
        };
        tracing::debug!(resource = %request.resource, deleted = request.deleted, token = %run.token, "apply");
        let mut owners = Vec::new();
        match (self.resolve)(&request.resource) {
            Owner::Untracked => {}
            Owner::Prefix(prefix) => {
                if request.deleted {
                    // Remember when the container was seen deleted: a body taken before that
                    // describes a resource that went with it.
                    self.mark_deleted(&prefix).await?;
                    owners = self.verify_within(&prefix, Some(&prefix), &run).await?;
                }
            }
            Owner::Resource(owner) => {
                let body = match (&request.body, request.body_time_ms) {
                    (Some(body), Some(at)) if !request.deleted && body_is_enough(&owner) => {
                        Resource::from_json(body.clone())
                            .ok()
                            .filter(|r| r.id == owner)
                            .map(|r| (r, at))
                    }
                    _ => None,
                };
                owners = self.update_owner(&owner, body, &run).await?;
                // A delete event for an owner that exists again (re-created since): what was
                // below it went with the delete and sends no events of its own, so re-read it.
                if request.deleted
                    && owner == request.resource.without_extension()
                    && self.ledger.owner(&owner).await?.is_some_and(|o| !o.value.deleted)
                {
                    for id in self.verify_within(&owner, Some(&owner), &run).await? {
                        if !owners.contains(&id) {
                            owners.push(id);
                        }
                    }
                }
            }
        }
        run.into_report(&request.resource, &owners)
    }
}
