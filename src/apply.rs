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

use crate::asm::{AddOutcome, AsmApi, AsmError, DeleteOutcome};
use crate::azure::{AzureError, AzureReader, OwnerRead};
use crate::check::{EnabledChecks, ServiceCheck};
use crate::extract::Extraction;
use crate::ledger::{
    Expect, Intent, IntentAction, Ledger, LedgerError, OwnedSeed, OwnerRecord, PendingSeed, SeedRecord, Version,
    Versioned, seeds_hash,
};
use crate::resource::{Resource, ResourceId};
use crate::seed::Seed;

/// One change to apply.
#[derive(Debug, Clone)]
pub struct ApplyRequest {
    /// The id the event (or the operator) named.
    pub resource: ResourceId,
    /// The event says the resource was deleted.
    pub deleted: bool,
    /// The resource body, when the event carried it (Azure Resource Notifications).
    pub body: Option<Value>,
}

impl ApplyRequest {
    pub fn changed(resource: ResourceId) -> ApplyRequest {
        ApplyRequest {
            resource,
            deleted: false,
            body: None,
        }
    }

    pub fn deleted(resource: ResourceId) -> ApplyRequest {
        ApplyRequest {
            resource,
            deleted: true,
            body: None,
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

/// What one apply changed.
#[derive(Debug, Clone, Default, Serialize)]
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
                AsmError::Http { status, .. } => crate::http::is_retryable_status(*status),
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

/// Wall-clock milliseconds; the simulation drives its own.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

pub struct SystemClock;
impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default()
    }
}

/// What a resource id maps to (see `azure::owner` for the full rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One owner resource: re-read it.
    Resource(ResourceId),
    /// Every owner under this id (a subscription, a resource group, a CDN profile).
    Prefix(ResourceId),
    /// No tracked resource's seeds depend on this id.
    Untracked,
}

/// Maps a changed id to its owner.
pub type Resolver = fn(&ResourceId) -> Target;
/// Turns an owner read into seeds.
pub type Extractor = fn(&[Resource], &EnabledChecks) -> Extraction;

/// The default owner resolution until the Azure owner catalogue is wired in: containers and
/// CDN profiles are prefixes, extension resources belong to the resource they extend.
pub fn default_resolver(id: &ResourceId) -> Target {
    let id = id.without_extension();
    match id.arm_type().as_str() {
        "microsoft.resources/subscriptions" | "microsoft.resources/resourcegroups" | "microsoft.cdn/profiles" => {
            Target::Prefix(id)
        }
        _ => Target::Resource(id),
    }
}

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// How long an intent keeps other appliers away from a seed's ASM state.
    pub lease: Duration,
    /// How long a membership tombstone is kept (longer than any apply can take).
    pub tombstone_ttl: Duration,
    /// Conflicts tolerated on one record before giving up (transiently).
    pub max_conflicts: u32,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            lease: Duration::from_secs(60),
            tombstone_ttl: Duration::from_secs(3600),
            max_conflicts: 20,
        }
    }
}

/// The apply engine. Cheap to share: every field is behind an `Arc` or small.
pub struct Applier {
    pub azure: Arc<dyn AzureReader>,
    pub asm: Arc<dyn AsmApi>,
    pub ledger: Arc<dyn Ledger>,
    pub checks: EnabledChecks,
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
    warnings: std::sync::Mutex<Vec<String>>,
}

impl Run {
    fn note(set: &std::sync::Mutex<BTreeSet<Seed>>, seed: &Seed) {
        set.lock().unwrap_or_else(|e| e.into_inner()).insert(seed.clone());
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
            seed_tag,
            clock: Arc::new(SystemClock),
            probe: Arc::new(NoProbe),
            resolve: default_resolver,
            extract: crate::extract::extract_resources,
            options: ApplyOptions::default(),
        }
    }

    fn step(&self, step: Step) -> Result<(), ApplyError> {
        if self.probe.pass(step) {
            Ok(())
        } else {
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
        let mut owners = Vec::new();
        match (self.resolve)(&request.resource) {
            Target::Untracked => {}
            Target::Prefix(prefix) => {
                if request.deleted {
                    owners = self.drop_within(&prefix, None, &run).await?;
                }
            }
            Target::Resource(owner) => {
                let body = request
                    .body
                    .clone()
                    .filter(|_| !request.deleted)
                    .and_then(|b| Resource::from_json(b).ok())
                    .filter(|r| r.id == owner);
                owners = self.update_owner(&owner, body, &run).await?;
            }
        }
        let deferred: Vec<Seed> = run.deferred.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect();
        if let Some(first) = deferred.first() {
            return Err(ApplyError::Busy {
                count: deferred.len(),
                first: first.to_string(),
            });
        }
        let list = |set: &std::sync::Mutex<BTreeSet<Seed>>| -> Vec<ReportedSeed> {
            set.lock().unwrap_or_else(|e| e.into_inner()).iter().map(ReportedSeed::from).collect()
        };
        Ok(ApplyReport {
            resource: request.resource.to_string(),
            owners: owners.iter().map(ToString::to_string).collect(),
            added: list(&run.added),
            deleted: list(&run.deleted),
            deferred: Vec::new(),
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
        mut body: Option<Resource>,
        run: &Run,
    ) -> Result<Vec<ResourceId>, ApplyError> {
        for _ in 0..self.options.max_conflicts {
            let previous = self.ledger.owner(owner).await?;
            let (now, gone) = match body.take() {
                // A body that only adds seeds needs no read; one that would remove seeds is
                // confirmed by a read (it may lack the companions the owner's seeds need).
                Some(resource) => {
                    let now = self.seeds_of(owner, std::slice::from_ref(&resource));
                    let before = previous.as_ref().map(|p| p.value.seed_set()).unwrap_or_default();
                    let after: BTreeSet<Seed> = now.iter().map(|s| s.seed.clone()).collect();
                    if before.is_subset(&after) {
                        (now, false)
                    } else {
                        self.read(owner, run).await?
                    }
                }
                None => self.read(owner, run).await?,
            };
            self.step(Step::Read)?;
            if let Some(prev) = &previous
                && prev.value.settled
                && prev.value.deleted == gone
                && prev.value.seeds == now
            {
                return Ok(vec![owner.clone()]); // a duplicate: everything already agrees
            }
            let record = next_record(owner, previous.as_ref().map(|p| &p.value), now, gone, self.clock.now_ms());
            let expect = match &previous {
                Some(p) => Expect::Version(p.version.clone()),
                None => Expect::Absent,
            };
            match self.ledger.put_owner(&record, &expect).await {
                Ok(version) => {
                    self.step(Step::OwnerCommitted)?;
                    self.propagate(record, version, run).await?;
                    let mut touched = vec![owner.clone()];
                    if gone {
                        // Its children went with it (a zone's record sets, a site's slots).
                        touched.extend(self.drop_within(owner, Some(owner), run).await?);
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
            .filter(|c| &c.owner == owner)
            .map(|c| OwnedSeed {
                seed: c.seed,
                check: c.check,
            })
            .collect();
        seeds.sort();
        seeds.dedup();
        seeds
    }

    /// Tombstones every live owner at or below `prefix` and withdraws its seeds.
    async fn drop_within(
        &self,
        prefix: &ResourceId,
        except: Option<&ResourceId>,
        run: &Run,
    ) -> Result<Vec<ResourceId>, ApplyError> {
        let mut dropped = Vec::new();
        for found in self.ledger.owners_within(prefix).await? {
            if (found.value.deleted && found.value.settled) || Some(&found.value.id) == except {
                continue;
            }
            let id = found.value.id.clone();
            let mut current = Some(found);
            let mut committed = false;
            for _ in 0..self.options.max_conflicts {
                let Some(prev) = current.take() else { break };
                if prev.value.deleted && prev.value.settled {
                    committed = true;
                    break;
                }
                let record = next_record(&id, Some(&prev.value), Vec::new(), true, self.clock.now_ms());
                match self.ledger.put_owner(&record, &Expect::Version(prev.version)).await {
                    Ok(version) => {
                        self.step(Step::OwnerCommitted)?;
                        self.propagate(record, version, run).await?;
                        committed = true;
                        break;
                    }
                    Err(LedgerError::Conflict { .. }) => current = self.ledger.owner(&id).await?,
                    Err(e) => return Err(e.into()),
                }
            }
            if !committed && current.is_some() {
                return Err(ApplyError::Contended {
                    what: format!("owner {id}"),
                });
            }
            dropped.push(id);
        }
        Ok(dropped)
    }

    /// Brings every seed the committed record touches in line, then marks the owner settled.
    async fn propagate(&self, record: OwnerRecord, version: Version, run: &Run) -> Result<(), ApplyError> {
        let mut present: BTreeMap<Seed, Vec<ServiceCheck>> = BTreeMap::new();
        for owned in &record.seeds {
            present.entry(owned.seed.clone()).or_default().push(owned.check);
        }
        let absent: BTreeSet<Seed> = record
            .pending_removal
            .iter()
            .map(|p| p.seed.clone())
            .filter(|s| !present.contains_key(s))
            .collect();
        let deferred_before = run.deferred.lock().unwrap_or_else(|e| e.into_inner()).len();
        let changes = present
            .into_iter()
            .map(|(seed, checks)| (seed, Some(checks)))
            .chain(absent.into_iter().map(|seed| (seed, None)));
        for (seed, checks) in changes {
            let current = self
                .set_membership(&seed, &record.id, record.generation, checks)
                .await?;
            self.step(Step::MembershipWritten)?;
            self.settle(&seed, current, run).await?;
        }
        let deferred_after = run.deferred.lock().unwrap_or_else(|e| e.into_inner()).len();
        if deferred_after > deferred_before {
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
        for _ in 0..self.options.max_conflicts {
            let current = self.ledger.seed(seed).await?;
            let now = self.clock.now_ms();
            let (mut record, expect) = match &current {
                Some(c) => (c.value.clone(), Expect::Version(c.version.clone())),
                None if checks.is_none() => return Ok(None), // nothing to withdraw from
                None => (SeedRecord::new(seed.clone()), Expect::Absent),
            };
            let changed = record.set_membership(owner, generation, checks.clone(), now);
            let pruned = record.prune_tombstones(now - self.options.tombstone_ttl.as_millis() as i64);
            if !changed && !pruned {
                return Ok(current);
            }
            if record.is_empty() {
                if let Some(c) = &current {
                    match self.ledger.delete_seed(seed, Some(&c.version)).await {
                        Ok(()) => return Ok(None),
                        Err(LedgerError::Conflict { .. }) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                return Ok(None);
            }
            match self.ledger.put_seed(&record, &expect).await {
                Ok(version) => return Ok(Some(Versioned { value: record, version })),
                Err(LedgerError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApplyError::Contended {
            what: format!("seed {seed}"),
        })
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
                // The holder re-evaluates the seed after its call. Defer (and retry later) only
                // when its action contradicts what the seed needs now, in case it crashed.
                let contradicts = match intent.action {
                    IntentAction::Add => !wanted,
                    IntentAction::Delete => wanted,
                };
                return if contradicts { Settle::Deferred } else { Settle::Nothing };
            }
            // An expired intent: its call may or may not have happened. Both ASM writes are
            // idempotent, so assume the worst case for what ASM holds.
            match intent.action {
                IntentAction::Add => {
                    held = !wanted; // unknown: re-add if wanted, delete if not
                    ours = true; // the add carried our tag
                }
                IntentAction::Delete => held = !wanted,
            }
        }
        if wanted && !held && record.asm.rejected.is_none() {
            Settle::Do(IntentAction::Add)
        } else if !wanted && held && ours {
            Settle::Do(IntentAction::Delete)
        } else {
            Settle::Nothing
        }
    }

    /// Brings ASM in line with the seed's record, holding an intent during each ASM call.
    async fn settle(
        &self,
        seed: &Seed,
        mut current: Option<Versioned<SeedRecord>>,
        run: &Run,
    ) -> Result<(), ApplyError> {
        let mut conflicts = 0;
        let mut calls = 0;
        loop {
            let Some(versioned) = current.take() else { return Ok(()) };
            let now = self.clock.now_ms();
            let action = match self.decide(&versioned.value, now, run) {
                Settle::Nothing => {
                    if versioned.value.intent.as_ref().is_some_and(|i| i.token == run.token) {
                        // Our own intent with nothing left to do: release it.
                        let mut record = versioned.value.clone();
                        record.intent = None;
                        match self.ledger.put_seed(&record, &Expect::Version(versioned.version)).await {
                            Ok(_) => return Ok(()),
                            Err(LedgerError::Conflict { .. }) => {}
                            Err(e) => return Err(e.into()),
                        }
                        current = self.ledger.seed(seed).await?;
                        continue;
                    }
                    return Ok(());
                }
                Settle::Deferred => {
                    Run::note(&run.deferred, seed);
                    return Ok(());
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
            self.step(Step::IntentRecorded)?;
            let outcome = match action {
                IntentAction::Add => self.asm_add(seed, run).await,
                IntentAction::Delete => self.asm_delete(seed, &record, run).await,
            };
            let outcome = match outcome {
                Ok(outcome) => outcome,
                Err(error) => {
                    // Release the lease so a retry is not held back; best effort.
                    let mut released = record.clone();
                    released.intent = None;
                    let _ = self.ledger.put_seed(&released, &Expect::Version(version)).await;
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
        match self.asm.add_seed(seed, &tags).await {
            Ok(AddOutcome::Added) => {
                Run::note(&run.added, seed);
                Ok(Outcome::Held { ours: Some(true), id: None })
            }
            Ok(AddOutcome::AlreadyExists) => Ok(Outcome::Held { ours: None, id: None }),
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
        let id = match &record.asm.id {
            Some(id) => id.clone(),
            None => {
                // The id is unknown (we added it ourselves): find it, and check the tag again.
                run.asm_reads.fetch_add(1, Ordering::Relaxed);
                let listed = self.asm.list_seeds().await.map_err(asm_err)?;
                match listed.iter().find(|s| s.normalised().as_ref() == Some(seed)) {
                    None => return Ok(Outcome::Gone),
                    Some(found) if !found.has_tag(&self.seed_tag) => {
                        run.warn(format!("seed {seed} in ASM does not carry tag {}: kept", self.seed_tag));
                        return Ok(Outcome::Held {
                            ours: Some(false),
                            id: Some(found.id.clone()),
                        });
                    }
                    Some(found) => found.id.clone(),
                }
            }
        };
        run.asm_writes.fetch_add(1, Ordering::Relaxed);
        match self.asm.delete_seed(&id).await.map_err(asm_err)? {
            DeleteOutcome::Deleted => Run::note(&run.deleted, seed),
            DeleteOutcome::AlreadyGone => {}
        }
        Ok(Outcome::Gone)
    }

    /// Records an ASM call's outcome and releases our intent (compare-and-swap, retried).
    async fn record_outcome(&self, seed: &Seed, token: &str, outcome: Outcome) -> Result<Versioned<SeedRecord>, ApplyError> {
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
                    if id.is_some() {
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
    Held { ours: Option<bool>, id: Option<String> },
    Gone,
    Rejected(String),
}

/// The owner record a commit writes: the next generation, the new seeds, and every seed the
/// owner may still be listed on but no longer contributes.
fn next_record(owner: &ResourceId, previous: Option<&OwnerRecord>, seeds: Vec<OwnedSeed>, gone: bool, now_ms: i64) -> OwnerRecord {
    let now: BTreeSet<Seed> = seeds.iter().map(|s| s.seed.clone()).collect();
    let mut pending: BTreeSet<Seed> = BTreeSet::new();
    if let Some(prev) = previous {
        pending.extend(prev.seeds.iter().map(|s| s.seed.clone()));
        pending.extend(prev.pending_removal.iter().map(|p| p.seed.clone()));
    }
    pending.retain(|s| !now.contains(s));
    OwnerRecord {
        id: previous.map(|p| p.id.clone()).unwrap_or_else(|| owner.clone()),
        generation: previous.map(|p| p.generation + 1).unwrap_or(1),
        seeds_hash: seeds_hash(&seeds),
        seeds,
        pending_removal: pending.into_iter().map(|seed| PendingSeed { seed }).collect(),
        seen_at_ms: now_ms,
        deleted: gone,
        settled: false,
    }
}
