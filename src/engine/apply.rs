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

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::adapters::asm::{AddOutcome, AsmApi, AsmError, DeleteOutcome};
use crate::adapters::azure::{AzureError, AzureReader, Owner, OwnerRead};
use crate::domain::check::{EnabledChecks, ServiceCheck};
use crate::domain::extract::Extraction;
use crate::domain::resource::{Resource, ResourceId};
use crate::domain::seed::Seed;
use crate::ledger::{
    Expect, Intent, IntentAction, Ledger, LedgerError, OwnedSeed, OwnerRecord, SeedRecord, Version, Versioned, ops,
};

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
pub const KEPT_DELETE_STALE_OFF: &str =
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

impl ApplyReport {
    /// Nothing changed anywhere.
    pub fn is_noop(&self) -> bool {
        self.added.is_empty() && self.deleted.is_empty() && self.asm_writes == 0
    }
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

pub struct NoProbe;
impl StepProbe for NoProbe {
    fn pass(&self, _step: Step) -> bool {
        true
    }
}

pub use crate::domain::clock::{Clock, SystemClock};

/// Maps a changed id to its owner ([`crate::domain::owner::owner_of`] in production).
pub type Resolver = fn(&ResourceId) -> Owner;
/// Turns an owner read into seeds.
pub type Extractor = fn(&[Resource], &EnabledChecks) -> Extraction;

/// The production owner mapping (azure-resources.md 6.2, 6.3).
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

    /// The live engine for this configuration: the Azure reader and token source, the ASM
    /// client, and the ledger `ledger.kind` selects.
    pub async fn from_config(
        config: &crate::config::Config,
        env: &dyn crate::config::EnvSource,
    ) -> Result<Applier, String> {
        let asm = crate::adapters::asm::AsmClient::from_config(config).map_err(|e| e.to_string())?;
        let (azure, tokens) =
            crate::adapters::azure::azure_from_config(config, env).map_err(|e| format!("Azure credential: {e}"))?;
        let ledger = crate::adapters::store::open(config, env, Some(tokens))
            .await
            .map_err(|e| e.to_string())?;
        Ok(Applier::new(
            azure,
            Arc::new(asm),
            ledger,
            config.azure.checks.clone(),
            config.seed_tag.clone(),
        )
        .configured(config))
    }

    /// Takes the rules from the configuration: `delete_stale_seeds`, the breaker's
    /// `sync.max_delete_fraction` and the seed types ASM is sent (`asm.seed_types`).
    pub fn configured(mut self, config: &crate::config::Config) -> Applier {
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
        let deferred: Vec<Seed> = run
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
            resource: request.resource.to_string(),
            owners: owners.iter().map(ToString::to_string).collect(),
            added: list(&run.added),
            deleted: list(&run.deleted),
            deferred: Vec::new(),
            kept: run
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
            arm_reads: run.arm_reads.load(Ordering::Relaxed),
            asm_writes: run.asm_writes.load(Ordering::Relaxed),
            asm_reads: run.asm_reads.load(Ordering::Relaxed),
            warnings: std::mem::take(&mut *run.warnings.lock().unwrap_or_else(|e| e.into_inner())),
        })
    }

    /// Re-reads one owner and commits what it contributes now; if it is gone, drops it and
    /// every owner below it.
    async fn update_owner(
        &self,
        owner: &ResourceId,
        mut body: Option<(Resource, i64)>,
        run: &Run,
    ) -> Result<Vec<ResourceId>, ApplyError> {
        for _ in 0..self.options.max_conflicts {
            let previous = self.ledger.owner(owner).await?;
            let mut read_at = self.clock.now_ms();
            let mut body_taken_at = None;
            let (now, gone) = match body.take() {
                // A body newer than the last commit that only adds seeds needs no read. One that
                // would remove seeds is confirmed by a read (it may lack what the owner's seeds
                // depend on), and an older one is stale.
                Some((resource, taken_at))
                    if previous.as_ref().is_none_or(|p| taken_at > p.value.seen_at_ms)
                        && !self.deleted_since(owner, taken_at).await? =>
                {
                    let now = self.seeds_of(owner, std::slice::from_ref(&resource));
                    let before = previous.as_ref().map(|p| p.value.seed_set()).unwrap_or_default();
                    let after: BTreeSet<Seed> = now.iter().map(|s| s.seed.clone()).collect();
                    if before.is_subset(&after) {
                        read_at = taken_at;
                        body_taken_at = Some(taken_at);
                        (now, false)
                    } else {
                        self.read(owner, run).await?
                    }
                }
                _ => self.read(owner, run).await?,
            };
            self.step(Step::Read)?;
            if let Some(prev) = &previous
                && prev.value.settled
                && prev.value.deleted == gone
                && prev.value.seeds == now
            {
                // A duplicate: everything already agrees. Still record when the owner was read:
                // an event body taken before this read is stale, and only `seen_at_ms` tells
                // a later apply so (without it, a late body could roll the owner back).
                if read_at > prev.value.seen_at_ms {
                    let mut seen = prev.value.clone();
                    seen.seen_at_ms = read_at;
                    match self
                        .ledger
                        .put_owner(&seen, &Expect::Version(prev.version.clone()))
                        .await
                    {
                        Ok(_) => {}
                        // Committed by someone else since: start again from their commit.
                        Err(LedgerError::Conflict { .. }) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                // A gone owner's children are checked again all the same, in case an earlier
                // attempt stopped before dropping them.
                let mut touched = vec![owner.clone()];
                if gone {
                    touched.extend(self.drop_below(owner, read_at, run).await?);
                }
                return Ok(touched);
            }
            let record = ops::next_record(owner, previous.as_ref().map(|p| &p.value), now, gone, read_at);
            let expect = match &previous {
                Some(p) => Expect::Version(p.version.clone()),
                None => Expect::Absent,
            };
            match self.ledger.put_owner(&record, &expect).await {
                Ok(version) => {
                    self.step(Step::OwnerCommitted)?;
                    // A container delete may have been marked between the check above and this
                    // commit, and listed its owners before the commit landed: look again, and
                    // if so read the owner instead (the next round commits over this record).
                    if let Some(taken_at) = body_taken_at
                        && self.deleted_since(owner, taken_at).await?
                    {
                        continue;
                    }
                    self.propagate(record, version, run).await?;
                    let mut touched = vec![owner.clone()];
                    if gone {
                        // Its children went with it (a zone's record sets, a site's slots).
                        touched.extend(self.drop_below(owner, read_at, run).await?);
                    }
                    return Ok(touched);
                }
                Err(LedgerError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApplyError::Contended {
            what: format!("owner {owner}"),
        })
    }

    async fn read(&self, owner: &ResourceId, run: &Run) -> Result<(Vec<OwnedSeed>, bool), ApplyError> {
        run.arm_reads.fetch_add(1, Ordering::Relaxed);
        match self.azure.read_owner(owner).await {
            Ok(OwnerRead::Found(resources)) => Ok((self.seeds_of(owner, &resources), false)),
            Ok(OwnerRead::Gone) => Ok((Vec::new(), true)),
            Err(source) => Err(ApplyError::Azure {
                owner: owner.to_string(),
                source,
            }),
        }
    }

    /// The owner's own seeds from an extraction of it and its companions.
    fn seeds_of(&self, owner: &ResourceId, resources: &[Resource]) -> Vec<OwnedSeed> {
        let extraction = (self.extract)(resources, &self.checks);
        let mut seeds: Vec<OwnedSeed> = extraction
            .contributions
            .into_iter()
            .filter(|c| &c.owner == owner && self.seed_types.contains(&c.seed.kind()))
            .map(|c| OwnedSeed {
                seed: c.seed,
                check: c.check,
            })
            .collect();
        seeds.sort();
        seeds.dedup();
        seeds
    }

    /// Records that `prefix` (a container) was seen deleted now, as a tombstone owner record.
    async fn mark_deleted(&self, prefix: &ResourceId) -> Result<(), ApplyError> {
        for _ in 0..self.options.max_conflicts {
            let previous = self.ledger.owner(prefix).await?;
            let mut record = ops::next_record(
                prefix,
                previous.as_ref().map(|p| &p.value),
                Vec::new(),
                true,
                self.clock.now_ms(),
            );
            // A container contributes no seeds; carry over anything still pending, if it ever did.
            record.settled = record.pending_removal.is_empty();
            let expect = match &previous {
                Some(p) => Expect::Version(p.version.clone()),
                None => Expect::Absent,
            };
            match self.ledger.put_owner(&record, &expect).await {
                Ok(_) => return Ok(()),
                Err(LedgerError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApplyError::Contended {
            what: format!("container {prefix}"),
        })
    }

    /// Whether an ancestor of `owner` was seen deleted at or after `taken_at` (so a body taken
    /// then may describe a resource that no longer exists).
    async fn deleted_since(&self, owner: &ResourceId, taken_at: i64) -> Result<bool, ApplyError> {
        let mut current = owner.parent();
        while let Some(ancestor) = current {
            if let Some(record) = self.ledger.owner(&ancestor).await?
                && record.value.deleted
                && record.value.seen_at_ms >= taken_at
            {
                return Ok(true);
            }
            current = ancestor.parent();
        }
        Ok(false)
    }

    /// Re-reads every owner the ledger knows at or below `prefix` (a deleted resource group,
    /// subscription or CDN profile): each one that is gone is dropped, each one that exists
    /// again is updated, so a late delete event cannot remove a re-created resource.
    async fn verify_within(
        &self,
        prefix: &ResourceId,
        except: Option<&ResourceId>,
        run: &Run,
    ) -> Result<Vec<ResourceId>, ApplyError> {
        let mut touched = Vec::new();
        for found in self.ledger.owners_within(prefix).await? {
            if (found.value.deleted && found.value.settled) || Some(&found.value.id) == except {
                continue;
            }
            for id in Box::pin(self.update_owner(&found.value.id, None, run)).await? {
                if !touched.contains(&id) {
                    touched.push(id);
                }
            }
        }
        Ok(touched)
    }

    /// Tombstones every live owner strictly below `parent`, which an ARM read made at
    /// `read_at_ms` found gone (its children went with it). An owner committed since that read
    /// is re-read instead: it may have been re-created.
    async fn drop_below(&self, parent: &ResourceId, read_at_ms: i64, run: &Run) -> Result<Vec<ResourceId>, ApplyError> {
        let mut dropped = Vec::new();
        for found in self.ledger.owners_within(parent).await? {
            let id = found.value.id.clone();
            if (found.value.deleted && found.value.settled) || &id == parent {
                continue;
            }
            if found.value.seen_at_ms >= read_at_ms {
                dropped.extend(Box::pin(self.update_owner(&id, None, run)).await?);
                continue;
            }
            let record = ops::next_record(&id, Some(&found.value), Vec::new(), true, self.clock.now_ms());
            match self.ledger.put_owner(&record, &Expect::Version(found.version)).await {
                Ok(version) => {
                    self.step(Step::OwnerCommitted)?;
                    self.propagate(record, version, run).await?;
                    dropped.push(id);
                }
                // Committed by someone else since we listed it: read it ourselves.
                Err(LedgerError::Conflict { .. }) => dropped.extend(Box::pin(self.update_owner(&id, None, run)).await?),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(dropped)
    }

    /// Brings every seed the committed record touches in line, then marks the owner settled.
    async fn propagate(&self, record: OwnerRecord, version: Version, run: &Run) -> Result<(), ApplyError> {
        let mut deferred = false;
        let changes = ops::membership_changes(&record);
        for (seed, checks) in changes {
            let current = self
                .set_membership(&seed, &record.id, record.generation, checks)
                .await?;
            self.step(Step::MembershipWritten)?;
            deferred |= self.settle(&seed, current, run).await?;
        }
        if deferred {
            return Ok(()); // not settled: the retry after the lease finishes the job
        }
        let mut settled = record;
        settled.pending_removal.clear();
        settled.settled = true;
        match self.ledger.put_owner(&settled, &Expect::Version(version)).await {
            // A newer commit took over: it carries our pending removals forward.
            Ok(_) | Err(LedgerError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Sets one owner's membership on a seed record (compare-and-swap, retried).
    async fn set_membership(
        &self,
        seed: &Seed,
        owner: &ResourceId,
        generation: u64,
        checks: Option<Vec<ServiceCheck>>,
    ) -> Result<Option<Versioned<SeedRecord>>, ApplyError> {
        let ttl = self.options.tombstone_ttl.as_millis() as i64;
        match ops::set_membership(
            self.ledger.as_ref(),
            seed,
            owner,
            generation,
            checks,
            &|| self.clock.now_ms(),
            ttl,
            self.options.max_conflicts,
        )
        .await
        {
            Err(LedgerError::Conflict { .. }) => Err(ApplyError::Contended {
                what: format!("seed {seed}"),
            }),
            other => Ok(other?),
        }
    }

    /// What the seed needs from ASM, given its record.
    fn decide(&self, record: &SeedRecord, now: i64, run: &Run) -> Settle {
        let wanted = record.is_wanted();
        let mut held = record.asm.held;
        let mut ours = record.asm.ours;
        if let Some(intent) = &record.intent
            && intent.token != run.token
        {
            let fresh = now - intent.at_ms < self.options.lease.as_millis() as i64;
            if fresh {
                // Its holder is calling ASM (or crashed doing so): what ASM holds is unknown
                // until the lease ends. A live holder re-evaluates the seed before releasing
                // it; retry afterwards in case it crashed.
                return Settle::Deferred;
            }
            // An expired intent: its call may or may not have happened. Both ASM writes are
            // idempotent, so assume the worst case for what ASM holds. A delete on such an
            // assumption checks the tag in a fresh listing first (see `asm_delete`).
            // An intent is only recorded for a seed believed ours (an add carries our tag).
            held = !wanted;
            ours = true;
        }
        if wanted && !held && record.asm.rejected.is_none() {
            Settle::Do(IntentAction::Add)
        } else if !wanted && held && ours {
            if !self.options.delete_stale_seeds {
                run.keep(&record.seed, KEPT_DELETE_STALE_OFF.to_string());
                Settle::Nothing
            } else if run.is_kept(&record.seed) {
                Settle::Nothing // the breaker held it back in this run
            } else {
                Settle::Do(IntentAction::Delete)
            }
        } else {
            Settle::Nothing
        }
    }

    /// Brings ASM in line with the seed's record, holding an intent during each ASM call.
    /// `true` when another applier's intent holds the seed (a retry must finish the job).
    async fn settle(
        &self,
        seed: &Seed,
        mut current: Option<Versioned<SeedRecord>>,
        run: &Run,
    ) -> Result<bool, ApplyError> {
        let mut conflicts = 0;
        let mut calls = 0;
        loop {
            let Some(versioned) = current.take() else {
                return Ok(false);
            };
            let now = self.clock.now_ms();
            let action = match self.decide(&versioned.value, now, run) {
                Settle::Nothing => {
                    if versioned.value.intent.as_ref().is_some_and(|i| i.token == run.token) {
                        // Our own intent with nothing left to do: release it.
                        let mut record = versioned.value.clone();
                        record.intent = None;
                        match self.ledger.put_seed(&record, &Expect::Version(versioned.version)).await {
                            Ok(_) => return Ok(false),
                            Err(LedgerError::Conflict { .. }) => {}
                            Err(e) => return Err(e.into()),
                        }
                        current = self.ledger.seed(seed).await?;
                        continue;
                    }
                    return Ok(false);
                }
                Settle::Deferred => {
                    tracing::debug!(seed = %seed, token = %run.token, "deferred to another applier's intent");
                    Run::note(&run.deferred, seed);
                    return Ok(true);
                }
                Settle::Do(action) => action,
            };
            calls += 1;
            if calls > 4 {
                return Err(ApplyError::Contended {
                    what: format!("seed {seed} in ASM"),
                });
            }
            let mut record = versioned.value.clone();
            record.intent = Some(Intent {
                action,
                token: run.token.clone(),
                at_ms: now,
            });
            let version = match self.ledger.put_seed(&record, &Expect::Version(versioned.version)).await {
                Ok(v) => v,
                Err(LedgerError::Conflict { .. }) => {
                    conflicts += 1;
                    if conflicts > self.options.max_conflicts {
                        return Err(ApplyError::Contended {
                            what: format!("seed {seed}"),
                        });
                    }
                    calls -= 1;
                    current = self.ledger.seed(seed).await?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            tracing::debug!(seed = %seed, ?action, token = %run.token, "intent recorded");
            self.step(Step::IntentRecorded)?;
            let outcome = match action {
                IntentAction::Add => self.asm_add(seed, run).await,
                IntentAction::Delete => self.asm_delete(seed, &record, run).await,
            };
            let outcome = match outcome {
                Ok(outcome) => outcome,
                Err(error) => {
                    // The call may have been applied with its answer lost: keep the intent as a
                    // record of that doubt, but expired, so whoever settles the seed next (a
                    // retry or another owner's apply) takes over at once and assumes the worst.
                    let mut in_doubt = record.clone();
                    if let Some(intent) = in_doubt.intent.as_mut() {
                        intent.at_ms = 0;
                    }
                    let _ = self.ledger.put_seed(&in_doubt, &Expect::Version(version)).await;
                    return Err(error);
                }
            };
            self.step(Step::AsmCalled)?;
            current = Some(self.record_outcome(seed, &run.token, outcome).await?);
            self.step(Step::AsmRecorded)?;
        }
    }

    async fn asm_add(&self, seed: &Seed, run: &Run) -> Result<Outcome, ApplyError> {
        run.asm_writes.fetch_add(1, Ordering::Relaxed);
        let tags = [self.seed_tag.clone()];
        // A seed ASM refused within the last day is answered from the ledger, not sent again.
        let now = self.clock.now_ms();
        match crate::engine::refused::add_remembering(&*self.asm, &*self.ledger, now, seed, &tags).await {
            Ok(AddOutcome::Added) => {
                Run::note(&run.added, seed);
                Ok(Outcome::Held {
                    ours: Some(true),
                    id: Some(None),
                })
            }
            // Perhaps someone else's seed, perhaps ours from an attempt whose answer was lost:
            // ours as far as a later delete goes, which checks the tag in a listing first.
            Ok(AddOutcome::AlreadyExists) => Ok(Outcome::Held {
                ours: Some(true),
                id: Some(None),
            }),
            Ok(AddOutcome::Rejected { code, message }) => {
                run.warn(format!("ASM refused seed {seed}: {code}: {message}"));
                Ok(Outcome::Rejected(code))
            }
            Err(source) => Err(ApplyError::Asm {
                seed: seed.to_string(),
                source,
            }),
        }
    }

    async fn asm_delete(&self, seed: &Seed, record: &SeedRecord, run: &Run) -> Result<Outcome, ApplyError> {
        let asm_err = |source| ApplyError::Asm {
            seed: seed.to_string(),
            source,
        };
        // A known id comes from a listing that showed our tag; otherwise (we added the seed,
        // or an expired intent left its state unknown) find it and check the tag again.
        let known = record.asm.id.clone().filter(|_| record.asm.ours && record.asm.held);
        let id = match known {
            Some(id) => id,
            None => {
                run.asm_reads.fetch_add(1, Ordering::Relaxed);
                let listed = self.asm.list_seeds().await.map_err(asm_err)?;
                // Most names are listed as written: match those cheaply, normalise (IDNA) the
                // whole listing only when none does.
                let cheap = listed.iter().find(|s| {
                    s.name.trim().trim_end_matches('.').eq_ignore_ascii_case(seed.name())
                        && s.normalised().as_ref() == Some(seed)
                });
                let found = cheap.or_else(|| listed.iter().find(|s| s.normalised().as_ref() == Some(seed)));
                match found {
                    None => return Ok(Outcome::Gone),
                    Some(found) if !found.has_tag(&self.seed_tag) => {
                        run.warn(format!("seed {seed} in ASM does not carry tag {}: kept", self.seed_tag));
                        return Ok(Outcome::Held {
                            ours: Some(false),
                            id: Some(Some(found.id.clone())),
                        });
                    }
                    Some(found) => found.id.clone(),
                }
            }
        };
        // The deletion breaker, checked as the delete is about to be sent.
        let admission = crate::ledger::breaker::reserve_delete(
            self.ledger.as_ref(),
            self.clock.now_ms(),
            self.options.max_delete_fraction,
            self.options.max_conflicts,
        )
        .await?;
        if let Some(reason) = admission.reason() {
            run.keep(seed, reason);
            return Ok(Outcome::Held {
                ours: Some(true),
                id: Some(Some(id)),
            });
        }
        run.asm_writes.fetch_add(1, Ordering::Relaxed);
        match self.asm.delete_seed(&id).await.map_err(asm_err)? {
            DeleteOutcome::Deleted => Run::note(&run.deleted, seed),
            DeleteOutcome::AlreadyGone => {}
        }
        Ok(Outcome::Gone)
    }

    /// Records an ASM call's outcome and releases our intent (compare-and-swap, retried).
    async fn record_outcome(
        &self,
        seed: &Seed,
        token: &str,
        outcome: Outcome,
    ) -> Result<Versioned<SeedRecord>, ApplyError> {
        for _ in 0..self.options.max_conflicts {
            let current = self.ledger.seed(seed).await?;
            let (mut record, expect) = match current {
                Some(c) => (c.value, Expect::Version(c.version)),
                None => (SeedRecord::new(seed.clone()), Expect::Absent),
            };
            match &outcome {
                Outcome::Held { ours, id } => {
                    record.asm.held = true;
                    record.asm.rejected = None;
                    if let Some(ours) = ours {
                        record.asm.ours = *ours;
                    }
                    if let Some(id) = id {
                        record.asm.id = id.clone();
                    }
                }
                Outcome::Gone => {
                    record.asm.held = false;
                    record.asm.ours = false;
                    record.asm.id = None;
                }
                Outcome::Rejected(code) => {
                    record.asm.held = false;
                    record.asm.rejected = Some(code.clone());
                }
            }
            record.asm.at_ms = self.clock.now_ms();
            if record.intent.as_ref().is_some_and(|i| i.token == token) {
                record.intent = None;
            }
            match self.ledger.put_seed(&record, &expect).await {
                Ok(version) => return Ok(Versioned { value: record, version }),
                Err(LedgerError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApplyError::Contended {
            what: format!("seed {seed}"),
        })
    }
}

/// The result of one ASM call, as it is recorded.
enum Outcome {
    /// ASM holds it; `Some` fields replace what the record says.
    Held {
        ours: Option<bool>,
        id: Option<Option<String>>,
    },
    Gone,
    Rejected(String),
}
