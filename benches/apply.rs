//! The incremental path's own cost per event: `Applier::apply` with zero-latency in-process
//! fakes of ARM and ASM (the real extractor and owner mapping), so what is measured is the
//! engine and the ledger, not the network.
//!
//! `cargo bench --bench apply`. A stream of events over 1,000 public IPs: creations (one seed
//! each, every fifth shares its address with another IP), repeated events for unchanged
//! resources, updates that change the address, and deletions. Reported per ledger backend (in
//! memory, and the redb file with a durable commit per write): p50/p99/max latency per event,
//! events per second sequentially and with 8 events in flight, and ARM and ASM calls per event.
//! With 8 in flight, each event's estate change is made as the event starts, so the write mix
//! matches the sequential run; an apply that fails is counted ("failed applies", the handler
//! would queue a retry), never retried inside the timed region.
//! `SEEDWATCH_BENCH_EVENTS` changes the number of events (default 20,000).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use seedwatch::adapters::asm::{AddOutcome, AsmApi, AsmError, AsmSeed, DeleteOutcome};
use seedwatch::adapters::azure::{AzureError, AzureReader, OwnerRead, Sweep, SweepProgress};
use seedwatch::adapters::store::local::LocalLedger;
use seedwatch::domain::check::EnabledChecks;
use seedwatch::domain::resource::{Resource, ResourceId};
use seedwatch::domain::seed::Seed;
use seedwatch::engine::apply::{Applier, ApplyRequest};
use seedwatch::ledger::Ledger;
use seedwatch::ledger::memory::MemoryLedger;
use serde_json::json;

const RESOURCES: usize = 1_000;

#[derive(Default)]
struct Estate {
    resources: Mutex<BTreeMap<ResourceId, Resource>>,
    reads: AtomicUsize,
}

#[async_trait]
impl AzureReader for Estate {
    async fn sweep(&self, _: &EnabledChecks, _: &dyn SweepProgress) -> Result<Sweep, AzureError> {
        Ok(Sweep::default())
    }
    async fn read_owner(&self, owner: &ResourceId) -> Result<OwnerRead, AzureError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Ok(match self.resources.lock().unwrap().get(owner) {
            Some(r) => OwnerRead::Found(vec![r.clone()]),
            None => OwnerRead::Gone,
        })
    }
}

#[derive(Default)]
struct Asm {
    seeds: Mutex<BTreeMap<String, AsmSeed>>,
    writes: AtomicUsize,
    lists: AtomicUsize,
    next: AtomicUsize,
}

#[async_trait]
impl AsmApi for Asm {
    async fn check_auth(&self) -> Result<(), AsmError> {
        Ok(())
    }
    async fn check_scan(&self) -> Result<(), AsmError> {
        Ok(())
    }
    async fn list_seeds(&self) -> Result<Vec<AsmSeed>, AsmError> {
        self.lists.fetch_add(1, Ordering::Relaxed);
        Ok(self.seeds.lock().unwrap().values().cloned().collect())
    }
    async fn add_seed(&self, seed: &Seed, tags: &[String]) -> Result<AddOutcome, AsmError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut seeds = self.seeds.lock().unwrap();
        if seeds.values().any(|s| s.name == seed.name()) {
            return Ok(AddOutcome::AlreadyExists);
        }
        let id = format!("s{}", self.next.fetch_add(1, Ordering::Relaxed));
        seeds.insert(
            id.clone(),
            AsmSeed {
                id,
                name: seed.name().into(),
                kind: Some(seed.kind()),
                tags: tags.to_vec(),
            },
        );
        Ok(AddOutcome::Added)
    }
    async fn delete_seed(&self, seed_id: &str) -> Result<DeleteOutcome, AsmError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(match self.seeds.lock().unwrap().remove(seed_id) {
            Some(_) => DeleteOutcome::Deleted,
            None => DeleteOutcome::AlreadyGone,
        })
    }
}

fn pip_id(n: usize) -> ResourceId {
    ResourceId::parse(&format!(
        "/subscriptions/00000000-0000-4000-8000-00000000000{}/resourceGroups/rg-{}/providers/Microsoft.Network/publicIPAddresses/pip-{n}",
        n % 4,
        n % 20
    ))
    .unwrap()
}

fn pip(n: usize, ip: &str) -> Resource {
    Resource::from_json(json!({
        "id": pip_id(n).as_str(),
        "name": format!("pip-{n}"),
        "type": "Microsoft.Network/publicIPAddresses",
        "location": "westeurope",
        "sku": {"name": "Standard"},
        "properties": {"ipAddress": ip, "publicIPAllocationMethod": "Static", "provisioningState": "Succeeded"}
    }))
    .unwrap()
}

fn address(n: usize, version: usize) -> String {
    // Every fifth IP shares its address with its neighbour: shared seeds.
    let k = if n % 5 == 4 { n - 1 } else { n };
    format!("20.{}.{}.{}", 10 + version % 50, k / 250, k % 250 + 1)
}

/// A deterministic event stream: the estate change happens, then its event is applied.
struct Workload {
    step: usize,
    versions: Vec<usize>,
    exists: Vec<bool>,
}

impl Workload {
    fn next(&mut self, estate: &Estate) -> (ApplyRequest, &'static str) {
        self.step += 1;
        let n = (self.step * 7919) % RESOURCES;
        let roll = (self.step * 31) % 100;
        let mut resources = estate.resources.lock().unwrap();
        if !self.exists[n] {
            self.exists[n] = true;
            resources.insert(pip_id(n), pip(n, &address(n, self.versions[n])));
            return (ApplyRequest::changed(pip_id(n)), "create");
        }
        if roll < 60 {
            (ApplyRequest::changed(pip_id(n)), "repeat")
        } else if roll < 85 {
            self.versions[n] += 1;
            resources.insert(pip_id(n), pip(n, &address(n, self.versions[n])));
            (ApplyRequest::changed(pip_id(n)), "update")
        } else {
            self.exists[n] = false;
            resources.remove(&pip_id(n));
            (ApplyRequest::deleted(pip_id(n)), "delete")
        }
    }
}

struct Stats {
    latencies: Vec<Duration>,
    by_kind: BTreeMap<&'static str, (usize, usize, usize)>,
}

async fn run(name: &str, ledger: Arc<dyn Ledger>, events: usize, in_flight: usize) {
    let estate = Arc::new(Estate::default());
    let asm = Arc::new(Asm::default());
    let applier = Arc::new(Applier::new(
        estate.clone(),
        asm.clone(),
        ledger,
        EnabledChecks::all(),
        "cloud-connector".into(),
    ));
    let mut workload = Workload {
        step: 0,
        versions: vec![0; RESOURCES],
        exists: vec![false; RESOURCES],
    };
    let stats = Arc::new(Mutex::new(Stats {
        latencies: Vec::with_capacity(events),
        by_kind: BTreeMap::new(),
    }));
    let mut failed = 0;
    let started = Instant::now();
    if in_flight == 1 {
        for _ in 0..events {
            let (request, kind) = workload.next(&estate);
            let (reads, writes) = (estate.reads.load(Ordering::Relaxed), asm.writes.load(Ordering::Relaxed));
            let t = Instant::now();
            applier.apply(&request).await.expect("apply");
            let elapsed = t.elapsed();
            let mut s = stats.lock().unwrap();
            s.latencies.push(elapsed);
            let entry = s.by_kind.entry(kind).or_default();
            entry.0 += 1;
            entry.1 += estate.reads.load(Ordering::Relaxed) - reads;
            entry.2 += asm.writes.load(Ordering::Relaxed) - writes;
        }
    } else {
        // Each estate change is made when its event starts (as in the sequential run), so the
        // events see their own change and the write mix is the sequential one. An apply that
        // fails (concurrent appliers on a shared seed may defer to each other's intents) is
        // counted and not retried here: the handler would queue it for a later retry.
        let errors = AtomicUsize::new(0);
        futures::stream::iter(0..events)
            .map(|_| {
                let (request, _) = workload.next(&estate);
                let applier = applier.clone();
                let stats = stats.clone();
                let errors = &errors;
                async move {
                    let t = Instant::now();
                    if applier.apply(&request).await.is_err() {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    stats.lock().unwrap().latencies.push(t.elapsed());
                }
            })
            .buffer_unordered(in_flight)
            .collect::<Vec<_>>()
            .await;
        failed = errors.into_inner();
    }
    let wall = started.elapsed();
    let mut s = stats.lock().unwrap();
    s.latencies.sort();
    let pct = |p: f64| s.latencies[((s.latencies.len() as f64 * p) as usize).min(s.latencies.len() - 1)];
    println!(
        "{name:<28} in flight {in_flight:>2}: {events} events in {:.2} s = {:>6.0} events/s; latency p50 {:>7.3} ms, p99 {:>7.3} ms, max {:>7.3} ms; ARM reads {:.2}/event, ASM writes {:.2}/event, ASM listings {:.3}/event, failed applies {failed}",
        wall.as_secs_f64(),
        events as f64 / wall.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        s.latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        estate.reads.load(Ordering::Relaxed) as f64 / events as f64,
        asm.writes.load(Ordering::Relaxed) as f64 / events as f64,
        asm.lists.load(Ordering::Relaxed) as f64 / events as f64,
    );
    for (kind, (count, reads, writes)) in &s.by_kind {
        println!(
            "    {kind:<7} {count:>6} events: {:.2} ARM reads, {:.2} ASM writes per event",
            *reads as f64 / *count as f64,
            *writes as f64 / *count as f64
        );
    }
}

fn main() {
    let events: usize = std::env::var("SEEDWATCH_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        run("memory ledger", Arc::new(MemoryLedger::new()), events, 1).await;
        run("memory ledger", Arc::new(MemoryLedger::new()), events, 8).await;
        let dir = tempfile::tempdir().expect("temporary directory");
        let local = LocalLedger::open(&dir.path().join("ledger.redb")).expect("redb");
        run("local redb ledger (durable)", Arc::new(local), events / 10, 1).await;
    });
}
