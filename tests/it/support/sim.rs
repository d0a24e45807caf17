//! A deterministic simulation of the incremental path: random creates, updates and deletes with
//! shared seeds; events duplicated, reordered and applied in parallel by several appliers that
//! share one ledger; ASM and ARM faults; crashes between steps. In-process fakes of our own
//! traits (the simulation is about the engine's logic); the ledger can be any backend.
//!
//! Reproduce a run with `SEEDWATCH_SIM_SEED=<seed>` (every run prints its seed).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use seedwatch::adapters::asm::{AddOutcome, AsmApi, AsmError, AsmSeed, DeleteOutcome};
use seedwatch::adapters::azure::{AzureError, AzureReader, CompletenessReport, OwnerRead, Sweep, SweepProgress};
use seedwatch::domain::check::{EnabledChecks, ServiceCheck};
use seedwatch::domain::extract::{Contribution, Extraction};
use seedwatch::domain::resource::{Resource, ResourceId};
use seedwatch::domain::seed::Seed;
use seedwatch::engine::apply::{Applier, ApplyRequest, Clock, StepProbe, default_resolver};
use seedwatch::ledger::{Expect, IntentAction, Ledger, LedgerError, RawEntity, Scan, Version};
use serde_json::json;

pub const TAG: &str = "seedwatch-sim";
const SUBS: [&str; 2] = [
    "5e1f0000-0000-0000-0000-000000000001",
    "5e1f0000-0000-0000-0000-000000000002",
];

/// A shared random source: one seeded generator for everything, so a run replays exactly on a
/// current-thread runtime.
#[derive(Clone)]
pub struct Dice(Arc<Mutex<StdRng>>);

impl Dice {
    pub fn new(seed: u64) -> Dice {
        Dice(Arc::new(Mutex::new(StdRng::seed_from_u64(seed))))
    }
    pub fn chance(&self, p: f64) -> bool {
        self.0.lock().unwrap().random_bool(p.clamp(0.0, 1.0))
    }
    pub fn below(&self, n: usize) -> usize {
        self.0.lock().unwrap().random_range(0..n.max(1))
    }
}

/// Milliseconds that move forward by one on every read, and jump when the harness says.
#[derive(Default)]
pub struct TickClock(AtomicI64);
impl TickClock {
    pub fn jump(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}
impl Clock for TickClock {
    fn now_ms(&self) -> i64 {
        self.0.fetch_add(1, Ordering::SeqCst) + 1_000_000
    }
}

/// The simulated estate: resources whose body lists the seeds they contribute.
#[derive(Default)]
pub struct Estate {
    pub resources: Mutex<BTreeMap<ResourceId, Resource>>,
}

/// The simulation's extractor: `properties.seeds` of every resource.
pub fn sim_extract(resources: &[Resource], _checks: &EnabledChecks) -> Extraction {
    let mut out = Extraction::default();
    for r in resources {
        let check = if r.arm_type.starts_with("microsoft.network/dnszones") {
            ServiceCheck::DnsRecords
        } else {
            ServiceCheck::PublicIpAddresses
        };
        for v in r.properties["seeds"].as_array().into_iter().flatten() {
            if let Some(seed) = v.as_str().and_then(|s| Seed::from_host_value(s).ok()) {
                out.contributions.push(Contribution {
                    seed,
                    owner: r.id.clone(),
                    check,
                    path: "properties.seeds".into(),
                });
            }
        }
    }
    out
}

/// ARM: reads the estate, sometimes throttled.
pub struct SimAzure {
    pub estate: Arc<Estate>,
    pub dice: Dice,
    pub fault_rate: Mutex<f64>,
    pub reads: AtomicUsize,
}

#[async_trait]
impl AzureReader for SimAzure {
    async fn sweep(&self, _checks: &EnabledChecks, _progress: &dyn SweepProgress) -> Result<Sweep, AzureError> {
        Ok(Sweep {
            resources: self.estate.resources.lock().unwrap().values().cloned().collect(),
            report: full_completeness(),
        })
    }
    async fn read_owner(&self, owner: &ResourceId) -> Result<OwnerRead, AzureError> {
        tokio::task::yield_now().await;
        self.reads.fetch_add(1, Ordering::Relaxed);
        if self.dice.chance(*self.fault_rate.lock().unwrap()) {
            return Err(AzureError::Throttled {
                what: owner.to_string(),
            });
        }
        Ok(match self.estate.resources.lock().unwrap().get(owner) {
            Some(r) => OwnerRead::Found(vec![r.clone()]),
            None => OwnerRead::Gone,
        })
    }
}

pub fn full_completeness() -> CompletenessReport {
    CompletenessReport {
        subscriptions: SUBS.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// ASM: seeds by id; faults before the write (nothing happened) and after it (applied, but the
/// answer is lost). Every delete is checked against the guards at the moment it is sent (see
/// [`SimAsm::check_delete`]): a wrong delete is a violation even if the seed is added back later.
pub struct SimAsm {
    pub seeds: Mutex<BTreeMap<String, AsmSeed>>,
    next_id: AtomicUsize,
    pub dice: Dice,
    pub fault_rate: Mutex<f64>,
    pub ledger: Arc<dyn Ledger>,
    pub violations: Mutex<Vec<String>>,
    pub writes: AtomicUsize,
    /// The world's `delete_stale_seeds`: when false, any delete is wrong.
    pub deletes_allowed: std::sync::atomic::AtomicBool,
    /// Set while a full reconcile runs: its deletes carry no intent and are checked against
    /// the estate itself (which does not change during the reconcile).
    pub reconciling: Mutex<Option<Arc<Estate>>>,
}

impl SimAsm {
    pub fn new(dice: Dice, ledger: Arc<dyn Ledger>) -> SimAsm {
        SimAsm {
            seeds: Mutex::new(BTreeMap::new()),
            next_id: AtomicUsize::new(1),
            dice,
            fault_rate: Mutex::new(0.0),
            ledger,
            violations: Mutex::new(Vec::new()),
            writes: AtomicUsize::new(0),
            deletes_allowed: std::sync::atomic::AtomicBool::new(true),
            reconciling: Mutex::new(None),
        }
    }

    /// The guards every delete must pass when it is sent: our tag; `delete_stale_seeds`; for
    /// an apply, a delete intent on the seed's record with no owner contributing the seed when
    /// the intent was recorded; for a reconcile, no resource of the estate contributing it.
    async fn check_delete(&self, found: &AsmSeed) -> Vec<String> {
        let mut wrong = Vec::new();
        if !found.has_tag(TAG) {
            wrong.push(format!("deleted untagged seed {}", found.name));
        }
        if !self.deletes_allowed.load(Ordering::SeqCst) {
            wrong.push(format!("deleted {} although delete_stale_seeds is false", found.name));
        }
        let Some(seed) = found.normalised() else {
            wrong.push(format!("deleted {}, a name that does not normalise", found.name));
            return wrong;
        };
        let reconciling = self.reconciling.lock().unwrap().clone();
        if let Some(estate) = reconciling {
            let resources: Vec<Resource> = estate.resources.lock().unwrap().values().cloned().collect();
            if let Some(c) = sim_extract(&resources, &EnabledChecks::all())
                .contributions
                .iter()
                .find(|c| c.seed == seed)
            {
                wrong.push(format!(
                    "a reconcile deleted {} while {} contributes it",
                    found.name, c.owner
                ));
            }
            return wrong;
        }
        let record = match self.ledger.seed(&seed).await {
            Ok(Some(record)) => record.value,
            Ok(None) => {
                wrong.push(format!("deleted {} with no ledger record (no intent)", found.name));
                return wrong;
            }
            Err(e) => {
                wrong.push(format!("deleted {} with an unreadable ledger record: {e}", found.name));
                return wrong;
            }
        };
        match record.intent.as_ref().filter(|i| i.action == IntentAction::Delete) {
            None => wrong.push(format!("deleted {} without a delete intent", found.name)),
            Some(intent) => {
                if let Some(m) = record.contributors().find(|m| m.at_ms < intent.at_ms) {
                    wrong.push(format!(
                        "deleted {} while {} contributed it (since {}, intent at {})",
                        found.name, m.owner, m.at_ms, intent.at_ms
                    ));
                }
            }
        }
        wrong
    }

    pub fn insert(&self, name: &str, tags: &[&str]) {
        let id = format!("seed-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        self.seeds.lock().unwrap().insert(
            id.clone(),
            AsmSeed {
                id,
                name: name.into(),
                kind: Some(Seed::from_host_value(name).unwrap().kind()),
                tags: tags.iter().map(|t| t.to_string()).collect(),
            },
        );
    }

    pub fn names(&self, tagged: bool) -> BTreeSet<String> {
        self.seeds
            .lock()
            .unwrap()
            .values()
            .filter(|s| !tagged || s.has_tag(TAG))
            .map(|s| s.name.clone())
            .collect()
    }

    fn fault(&self, what: &str) -> Result<(), AsmError> {
        if self.dice.chance(*self.fault_rate.lock().unwrap()) {
            return Err(AsmError::Transport {
                what: what.into(),
                message: "connection reset".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl AsmApi for SimAsm {
    async fn check_auth(&self) -> Result<(), AsmError> {
        Ok(())
    }
    async fn check_scan(&self) -> Result<(), AsmError> {
        Ok(())
    }
    async fn list_seeds(&self) -> Result<Vec<AsmSeed>, AsmError> {
        tokio::task::yield_now().await;
        self.fault("list")?;
        Ok(self.seeds.lock().unwrap().values().cloned().collect())
    }
    async fn add_seed(&self, seed: &Seed, tags: &[String]) -> Result<AddOutcome, AsmError> {
        tokio::task::yield_now().await;
        self.fault("add")?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        let outcome = {
            let mut seeds = self.seeds.lock().unwrap();
            if seeds.values().any(|s| s.name == seed.name()) {
                AddOutcome::AlreadyExists
            } else {
                let id = format!("seed-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
                seeds.insert(
                    id.clone(),
                    AsmSeed {
                        id,
                        name: seed.name().into(),
                        kind: Some(seed.kind()),
                        tags: tags.to_vec(),
                    },
                );
                AddOutcome::Added
            }
        };
        self.fault("add (answer lost)")?;
        Ok(outcome)
    }
    async fn delete_seed(&self, seed_id: &str) -> Result<DeleteOutcome, AsmError> {
        tokio::task::yield_now().await;
        self.fault("delete")?;
        let Some(found) = self.seeds.lock().unwrap().get(seed_id).cloned() else {
            return Ok(DeleteOutcome::AlreadyGone);
        };
        let wrong = self.check_delete(&found).await;
        self.violations.lock().unwrap().extend(wrong);
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.seeds.lock().unwrap().remove(seed_id);
        self.fault("delete (answer lost)")?;
        Ok(DeleteOutcome::Deleted)
    }
}

/// Stops applies at random steps while enabled.
pub struct Crashes {
    pub dice: Dice,
    pub rate: Mutex<f64>,
    pub count: AtomicUsize,
}
impl StepProbe for Crashes {
    fn pass(&self, _step: seedwatch::engine::apply::Step) -> bool {
        if self.dice.chance(*self.rate.lock().unwrap()) {
            self.count.fetch_add(1, Ordering::Relaxed);
            false
        } else {
            true
        }
    }
}

/// A ledger that yields to the scheduler before every operation, so parallel appliers
/// interleave at every step.
pub struct Interleaved(pub Arc<dyn Ledger>, pub Dice);

#[async_trait]
impl Ledger for Interleaved {
    fn describe(&self) -> String {
        self.0.describe()
    }
    async fn get_raw(&self, partition: &str, row: &str) -> Result<Option<(String, Version)>, LedgerError> {
        for _ in 0..self.1.below(3) {
            tokio::task::yield_now().await;
        }
        self.0.get_raw(partition, row).await
    }
    async fn put_raw(&self, partition: &str, row: &str, data: &str, expect: &Expect) -> Result<Version, LedgerError> {
        for _ in 0..self.1.below(3) {
            tokio::task::yield_now().await;
        }
        self.0.put_raw(partition, row, data, expect).await
    }
    async fn delete_raw(&self, partition: &str, row: &str, version: Option<&Version>) -> Result<(), LedgerError> {
        tokio::task::yield_now().await;
        self.0.delete_raw(partition, row, version).await
    }
    async fn scan_raw(&self, scan: &Scan) -> Result<Vec<RawEntity>, LedgerError> {
        tokio::task::yield_now().await;
        self.0.scan_raw(scan).await
    }
}

/// The knobs of one simulation run.
#[derive(Debug, Clone)]
pub struct SimParams {
    pub seed: u64,
    pub operations: usize,
    pub appliers: usize,
    pub seed_pool: usize,
    pub asm_fault_rate: f64,
    pub arm_fault_rate: f64,
    pub crash_rate: f64,
    pub duplicate_rate: f64,
}

/// What a run ended with, for the assertions.
pub struct SimOutcome {
    pub desired: BTreeSet<String>,
    pub ledger_union: BTreeSet<String>,
    pub asm_tagged: BTreeSet<String>,
    pub asm_all: BTreeSet<String>,
    pub hand_added: BTreeSet<String>,
    pub violations: Vec<String>,
    pub crashes: usize,
    pub applies: usize,
    pub reconcile_added: usize,
    pub reconcile_deleted: usize,
    pub after_reconcile_tagged: BTreeSet<String>,
    pub after_reconcile_union: BTreeSet<String>,
    pub after_reconcile_wanted: BTreeSet<String>,
    pub after_reconcile_held: BTreeSet<String>,
    /// The owner and seed records before the reconcile, for failure messages.
    pub owners_before: Vec<String>,
    pub seeds_before: Vec<String>,
}

fn rid(s: &str) -> ResourceId {
    ResourceId::parse(s).unwrap()
}

fn resource(id: &ResourceId, seeds: &[String]) -> Resource {
    Resource::from_json(json!({"id": id.as_str(), "properties": {"seeds": seeds}})).unwrap()
}

/// One run: random operations and events, then a drain without faults, then one reconcile.
pub async fn run(params: &SimParams, backend: Arc<dyn Ledger>) -> SimOutcome {
    let dice = Dice::new(params.seed);
    let clock = Arc::new(TickClock::default());
    let ledger: Arc<dyn Ledger> = Arc::new(Interleaved(backend, dice.clone()));
    let estate = Arc::new(Estate::default());
    let azure = Arc::new(SimAzure {
        estate: estate.clone(),
        dice: dice.clone(),
        fault_rate: Mutex::new(params.arm_fault_rate),
        reads: AtomicUsize::new(0),
    });
    let asm = Arc::new(SimAsm::new(dice.clone(), ledger.clone()));
    *asm.fault_rate.lock().unwrap() = params.asm_fault_rate;
    let pool: Vec<String> = (0..params.seed_pool)
        .map(|n| {
            if n % 4 == 3 {
                format!("20.0.{}.{}", n / 200, n % 200 + 1)
            } else {
                format!("h{n}.sim.example.com")
            }
        })
        .collect();
    // Seeds someone added by hand (no tag): never deleted, whatever Azure does.
    let hand_added: BTreeSet<String> = [pool[0].clone(), "manual.example.org".to_string()].into();
    for name in &hand_added {
        asm.insert(name, &["manual"]);
    }
    let crashes = Arc::new(Crashes {
        dice: dice.clone(),
        rate: Mutex::new(params.crash_rate),
        count: AtomicUsize::new(0),
    });
    let appliers: Vec<Arc<Applier>> = (0..params.appliers)
        .map(|_| {
            let mut a = Applier::new(
                azure.clone(),
                asm.clone(),
                ledger.clone(),
                EnabledChecks::all(),
                TAG.to_string(),
            );
            a.clock = clock.clone();
            a.probe = crashes.clone();
            a.extract = sim_extract;
            a.resolve = default_resolver;
            // The simulated user deletes stale seeds, with the breaker open (a fraction of 1).
            a.options.delete_stale_seeds = true;
            a.options.max_delete_fraction = 1.0;
            Arc::new(a)
        })
        .collect();

    let mut queue: VecDeque<ApplyRequest> = VecDeque::new();
    let mut applies = 0;
    let owner_ids = |sub: usize, rg: usize, n: usize| -> Vec<ResourceId> {
        let base = format!(
            "/subscriptions/{}/resourceGroups/rg{rg}/providers/Microsoft.Network",
            SUBS[sub]
        );
        vec![
            rid(&format!("{base}/publicIPAddresses/pip{n}")),
            rid(&format!("{base}/dnszones/z{}.sim.example.com", n % 2)),
            rid(&format!("{base}/dnszones/z{}.sim.example.com/A/r{n}", n % 2)),
        ]
    };
    let pick_seeds = |dice: &Dice| -> Vec<String> {
        (0..dice.below(4))
            .map(|_| pool[dice.below(pool.len())].clone())
            .collect()
    };

    for _ in 0..params.operations {
        let (sub, rg, n) = (dice.below(2), dice.below(2), dice.below(4));
        let candidates = owner_ids(sub, rg, n);
        let id = candidates[dice.below(candidates.len())].clone();
        let roll = dice.below(100);
        let mut events = Vec::new();
        if roll < 65 {
            // Create or update; a record set needs its zone.
            let mut estate_map = estate.resources.lock().unwrap();
            if id.arm_type() == "microsoft.network/dnszones/a" {
                let zone = id.parent().unwrap();
                if !estate_map.contains_key(&zone) {
                    estate_map.insert(zone.clone(), resource(&zone, &[]));
                    events.push(ApplyRequest::changed(zone));
                }
            }
            let body = resource(&id, &pick_seeds(&dice));
            estate_map.insert(id.clone(), body.clone());
            let mut request = ApplyRequest::changed(id.clone());
            if dice.chance(0.3) {
                // An Azure Resource Notifications event: the body and when it was taken.
                request.body = Some(body.to_json());
                request.body_time_ms = Some(clock.now_ms());
            }
            if dice.chance(0.2) {
                // A change to an extension resource belongs to the resource it extends.
                request.resource = rid(&format!(
                    "{}/providers/Microsoft.Insights/diagnosticSettings/d",
                    id.as_str()
                ));
                request.body = None;
            }
            events.push(request);
        } else if roll < 90 {
            estate.resources.lock().unwrap().retain(|k, _| !k.is_within(&id));
            events.push(ApplyRequest::deleted(id.clone()));
        } else {
            let group = id.parent().and_then(|p| {
                let mut g = p;
                while g.arm_type() != "microsoft.resources/resourcegroups" {
                    g = g.parent()?;
                }
                Some(g)
            });
            if let Some(group) = group {
                estate.resources.lock().unwrap().retain(|k, _| !k.is_within(&group));
                events.push(ApplyRequest::deleted(group));
            }
        }
        for event in events {
            if dice.chance(params.duplicate_rate) {
                queue.push_back(event.clone());
            }
            let at = dice.below(queue.len() + 1);
            queue.insert(at, event); // out of order
        }
        if dice.chance(0.5) {
            applies += round(&appliers, &mut queue, &dice, &clock).await;
        }
    }

    // Quiescence: faults and crashes stop after a while, every event is eventually applied.
    let mut rounds = 0;
    while !queue.is_empty() {
        rounds += 1;
        if rounds == 30 {
            *asm.fault_rate.lock().unwrap() = 0.0;
            *azure.fault_rate.lock().unwrap() = 0.0;
            *crashes.rate.lock().unwrap() = 0.0;
        }
        assert!(rounds < 5_000, "seed {}: no quiescence", params.seed);
        let before = queue.len();
        applies += round(&appliers, &mut queue, &dice, &clock).await;
        if queue.len() >= before {
            clock.jump(61_000); // everything left is waiting for a lease to expire
        }
    }

    *asm.fault_rate.lock().unwrap() = 0.0;
    *azure.fault_rate.lock().unwrap() = 0.0;
    let desired: BTreeSet<String> = sim_extract(
        &estate.resources.lock().unwrap().values().cloned().collect::<Vec<_>>(),
        &EnabledChecks::all(),
    )
    .contributions
    .iter()
    .map(|c| c.seed.name().to_string())
    .collect();
    let ledger_union = union_of_owners(ledger.as_ref()).await;
    let owners_before: Vec<String> = ledger
        .all_owners()
        .await
        .unwrap()
        .into_iter()
        .map(|o| {
            let v = o.value;
            let seeds: Vec<&str> = v.seeds.iter().map(|s| s.seed.name()).collect();
            format!(
                "{} gen={} deleted={} settled={} seen={} seeds={seeds:?} pending={} in_estate={}",
                v.id,
                v.generation,
                v.deleted,
                v.settled,
                v.seen_at_ms,
                v.pending_removal.len(),
                estate.resources.lock().unwrap().contains_key(&v.id)
            )
        })
        .collect();
    let asm_tagged = asm.names(true);
    let asm_all = asm.names(false);
    let seeds_before: Vec<String> = ledger
        .all_seeds()
        .await
        .unwrap()
        .into_iter()
        .map(|s| {
            let v = s.value;
            let owners: Vec<String> = v
                .owners
                .values()
                .map(|m| format!("{}@{}:{}@{}", m.owner, m.generation, m.present, m.at_ms))
                .collect();
            format!("{} {:?} intent={:?} owners={owners:?}", v.seed, v.asm, v.intent)
        })
        .collect();

    // One full reconcile, then the ledger rebuild.
    let config = seedwatch::config::Config::from_value(
        &json!({"scan_id": "sim", "seed_tag": TAG, "delete_stale_seeds": true, "sync": {"max_delete_fraction": 1.0}}),
        "sim",
        &std::collections::HashMap::new(),
    )
    .unwrap();
    let started = clock.now_ms();
    let sweep = azure
        .sweep(&EnabledChecks::all(), &seedwatch::adapters::azure::NoProgress)
        .await
        .unwrap();
    let provenance = seedwatch::engine::rebuild::provenance(ledger.as_ref()).await.unwrap();
    *asm.reconciling.lock().unwrap() = Some(estate.clone());
    let report = seedwatch::engine::sync::reconcile_and_apply(
        &config,
        asm.as_ref(),
        sweep.report.clone(),
        sim_extract(&sweep.resources, &EnabledChecks::all()),
        seedwatch::engine::sync::SyncOptions {
            dry_run: false,
            force_deletes: false,
            provenance: Some(Arc::new(provenance)),
        },
        &seedwatch::engine::sync::NoSyncProgress,
    )
    .await
    .unwrap();
    seedwatch::engine::rebuild::rebuild(
        ledger.as_ref(),
        &report,
        &seedwatch::engine::rebuild::RebuildOptions {
            completeness: &sweep.report,
            seed_tag: TAG,
            sweep_started_ms: started,
            graph_lag: std::time::Duration::ZERO, // the simulated Resource Graph never lags
            now_ms: clock.now_ms(),
            lease: std::time::Duration::from_secs(60),
            tombstone_ttl: std::time::Duration::from_secs(3600),
        },
    )
    .await
    .unwrap();
    let seeds = ledger.all_seeds().await.unwrap();
    let violations = asm.violations.lock().unwrap().clone();
    let after_reconcile_union = union_of_owners(ledger.as_ref()).await;
    SimOutcome {
        desired,
        ledger_union,
        asm_tagged,
        asm_all,
        hand_added,
        violations,
        crashes: crashes.count.load(Ordering::Relaxed),
        applies,
        reconcile_added: report.added.len(),
        reconcile_deleted: report.deleted.len(),
        after_reconcile_tagged: asm.names(true),
        after_reconcile_union,
        after_reconcile_wanted: seeds
            .iter()
            .filter(|s| s.value.is_wanted())
            .map(|s| s.value.seed.name().to_string())
            .collect(),
        owners_before,
        seeds_before,
        after_reconcile_held: seeds
            .iter()
            .filter(|s| s.value.asm.held)
            .map(|s| s.value.seed.name().to_string())
            .collect(),
    }
}

async fn union_of_owners(ledger: &dyn Ledger) -> BTreeSet<String> {
    ledger
        .all_owners()
        .await
        .unwrap()
        .into_iter()
        .filter(|o| !o.value.deleted)
        .flat_map(|o| o.value.seeds.into_iter().map(|s| s.seed.name().to_string()))
        .collect()
}

/// Takes up to one event per applier from the queue and applies them concurrently; failed
/// ones go back to the end of the queue (the Service Bus retry). Returns how many ran.
async fn round(
    appliers: &[Arc<Applier>],
    queue: &mut VecDeque<ApplyRequest>,
    dice: &Dice,
    _clock: &TickClock,
) -> usize {
    let mut batch = Vec::new();
    for applier in appliers {
        if queue.is_empty() {
            break;
        }
        let at = dice.below(queue.len().min(3));
        let event = queue.remove(at).unwrap();
        batch.push((applier.clone(), event));
    }
    let ran = batch.len();
    let results = futures::future::join_all(batch.into_iter().map(|(applier, event)| async move {
        let result = applier.apply(&event).await;
        (event, result)
    }))
    .await;
    for (event, result) in results {
        if let Err(e) = result {
            assert!(e.is_transient(), "a permanent error in the simulation: {e}");
            queue.push_back(event);
        }
    }
    ran
}

/// The assertions every run must pass.
pub fn check(params: &SimParams, out: &SimOutcome) {
    let seed = params.seed;
    assert!(out.violations.is_empty(), "seed {seed}: {:?}", out.violations);
    assert_eq!(
        out.ledger_union, out.desired,
        "seed {seed}: ledger owners vs a full sweep; owners: {:#?}",
        out.owners_before
    );
    // ASM holds every desired seed (tagged, or added by hand), and a tagged seed only if desired.
    let missing: Vec<_> = out.desired.difference(&out.asm_all).collect();
    assert!(missing.is_empty(), "seed {seed}: desired but not in ASM: {missing:?}");
    let desired_tagged: BTreeSet<String> = out.desired.difference(&out.hand_added).cloned().collect();
    assert_eq!(
        out.asm_tagged, desired_tagged,
        "seed {seed}: tagged seeds in ASM vs desired; seeds: {:#?}",
        out.seeds_before
    );
    assert!(
        out.hand_added.is_subset(&out.asm_all),
        "seed {seed}: a hand-added seed was deleted"
    );
    // The apply path had already converged: the reconcile has nothing to do.
    assert_eq!(
        (out.reconcile_added, out.reconcile_deleted),
        (0, 0),
        "seed {seed}: reconcile wrote"
    );
    assert_eq!(
        out.after_reconcile_tagged, desired_tagged,
        "seed {seed}: after reconcile"
    );
    assert_eq!(
        out.after_reconcile_union, out.desired,
        "seed {seed}: ledger after rebuild"
    );
    assert_eq!(
        out.after_reconcile_wanted, out.desired,
        "seed {seed}: seed records after rebuild"
    );
    // The ledger knows what ASM holds: every desired seed, plus hand-added ones it tracks.
    let held_ours: BTreeSet<String> = out.after_reconcile_held.difference(&out.hand_added).cloned().collect();
    assert_eq!(
        held_ours, desired_tagged,
        "seed {seed}: ASM state in the ledger; before the reconcile: {:#?}",
        out.seeds_before
    );
    assert!(
        out.desired.is_subset(&out.after_reconcile_held),
        "seed {seed}: held in the ledger"
    );
}
