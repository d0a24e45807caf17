//! The fanned-out timer reconcile at the shape: 200 subscriptions (default 100,000
//! resources) in batches of 20 on 3 concurrent workers, against the fake Resource Graph with
//! its real quota (15 queries per 5 s per user) and 20 ms per page. Each worker is its own
//! engine, as an instance is: its own HTTP clients and pacing; the workers share only the
//! ledger, through which they share the quota (`adapters::azure::shared_quota`).
//!
//! Before the measured run, one unmeasured reconcile of the whole estate (quota relaxed) seeds
//! the fake ASM, so the measured run is a timer reconcile's steady state: every batch lists the
//! scan, sweeps its subscriptions and finds what ASM holds.
//!
//! The bound is the Resource Graph quota's, computed from the estate (rows per batch and
//! table), not from what the run did: each batch queries each table the enabled checks read,
//! a page per 1,000 rows and at least one, so P queries need `ceil(P / 15) - 1` further 5 s
//! windows after the first, and the last page takes 20 ms:
//! `bound = (ceil(P / 15) - 1) x 5 s + 20 ms`
//! (<https://learn.microsoft.com/azure/governance/resource-graph/concepts/guidance-for-throttled-requests>).
//!
//! `cargo bench --bench fanout` (env: `FANOUT_RESOURCES`, `FANOUT_SUBSCRIPTIONS`,
//! `FANOUT_BATCH`, `FANOUT_WORKERS`, `FANOUT_PAGE_MS`).

#[allow(dead_code, unused_imports)]
#[path = "../tests/it/support/fake_azure/mod.rs"]
mod fake_azure;

#[allow(dead_code, unused_imports)]
#[path = "../tests/it/support/fake_asm.rs"]
mod fake_asm;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use seedwatch::adapters::asm::AsmClient;
use seedwatch::adapters::azure::catalog::{self, Source};
use seedwatch::adapters::azure::{StaticToken, TokenSource};
use seedwatch::app::engines::{SyncEngine, SyncReconciler};
use seedwatch::app::ports::{Batch, Reconciler, Scope};
use seedwatch::config::Config;
use seedwatch::domain::check::EnabledChecks;
use seedwatch::domain::secret::Secret;
use seedwatch::ledger::Ledger;
use seedwatch::ledger::history::{self, RunResult};
use seedwatch::ledger::memory::MemoryLedger;
use serde_json::{Value, json};

const KEY: &str = "fanout-bench-key-never-printed";
const SCAN: &str = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
/// Resource Graph's documented default quota: 15 queries per 5 s window per user.
const GRAPH_QUOTA: u32 = 15;
const GRAPH_WINDOW: Duration = Duration::from_secs(5);
const PAGE_ROWS: u64 = 1000;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Shape {
    resources: usize,
    subscriptions: usize,
    batch: usize,
    workers: usize,
    page_latency: Duration,
}

fn main() {
    let shape = Shape {
        resources: env_number("FANOUT_RESOURCES", 100_000) as usize,
        subscriptions: env_number("FANOUT_SUBSCRIPTIONS", 200) as usize,
        batch: env_number("FANOUT_BATCH", 20) as usize,
        workers: env_number("FANOUT_WORKERS", 3) as usize,
        page_latency: Duration::from_millis(env_number("FANOUT_PAGE_MS", 20)),
    };
    // The fakes run on a runtime of their own, so the workers' runtime measures seedwatch.
    let fakes = tokio::runtime::Runtime::new().expect("the fakes' runtime");
    let (azure, asm, estate) = fakes.block_on(async {
        let azure = fake_azure::FakeAzure::start_with_page_latency(shape.page_latency).await;
        let estate = fake_azure::generate_estate(shape.subscriptions, shape.resources, 17);
        azure.load(estate.clone());
        azure.lax_graph_quota_for_test();
        let asm = fake_asm::FakeAsm::start(KEY).await;
        asm.add_scan(SCAN);
        (azure, asm, estate)
    });
    let runtime = tokio::runtime::Runtime::new().expect("the workers' runtime");
    runtime.block_on(run(&shape, &azure, &asm, &estate));
    drop(fakes);
}

async fn run(shape: &Shape, azure: &fake_azure::FakeAzure, asm: &fake_asm::FakeAsm, estate: &[Value]) {
    let ledger = Arc::new(MemoryLedger::new());
    let tokens: Arc<dyn TokenSource> = Arc::new(StaticToken(Secret::new(azure.arm_token_minted_for_test())));
    let workers: Vec<SyncReconciler> = (0..shape.workers)
        .map(|_| worker(shape, azure, asm, tokens.clone(), ledger.clone()))
        .collect();

    let started = Instant::now();
    workers[0]
        .reconcile(&Scope::All, false)
        .await
        .expect("the seeding reconcile");
    let seeded = started.elapsed();
    let seeds = asm.seed_names(SCAN).len();

    // The real quota from a fresh window, as a timer fires: the fake's window starts when the
    // quota is set and the shared gate's when the seeding run began, so both are let expire.
    azure.set_graph_quota(GRAPH_QUOTA, GRAPH_WINDOW);
    tokio::time::sleep(GRAPH_WINDOW + Duration::from_millis(100)).await;
    azure.reset_counts();
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    let batches = fan_out(&workers).await;
    let elapsed = started.elapsed();
    let cpu = cpu_seconds() - cpu_before;
    let counts = azure.counts();

    let runs = history::runs(ledger.as_ref() as &dyn Ledger)
        .await
        .expect("run history");
    let fanned = runs
        .iter()
        .find(|r| r.scope.contains("batches"))
        .expect("the fanned-out run");
    // A batch that gave up or read its scope incompletely would make the run look faster.
    assert!(
        fanned.complete && fanned.result == RunResult::Ok,
        "the fanned-out run did not end complete and ok: {fanned:?}"
    );
    let bound = quota_bound(estate, &batches, shape.page_latency);
    println!(
        "fanout bench: {} resources in {} subscriptions, batches of {} on {} workers, {:?} per Resource Graph page, Resource Graph quota 15 per 5 s",
        shape.resources, shape.subscriptions, shape.batch, shape.workers, shape.page_latency
    );
    println!(
        "  seeding reconcile of the whole estate (quota relaxed, not measured): {:.1} s, {seeds} seeds in ASM",
        seeded.as_secs_f64()
    );
    println!(
        "  fanned-out run: {} batches, result {:?}, complete {}",
        batches.len(),
        fanned.result,
        fanned.complete
    );
    println!(
        "  wall time {:.3} s; CPU time of the process (workers and fakes) {cpu:.1} s",
        elapsed.as_secs_f64()
    );
    println!(
        "  Resource Graph queries at least (a page per 1,000 rows per batch and table): {}; sent {} ({} answered 429)",
        bound.queries, counts.graph_pages, counts.throttled
    );
    println!(
        "  quota bound (ceil(P/15) - 1) x 5 s + page latency: {:.3} s -> wall time / bound {:.2}x",
        bound.time.as_secs_f64(),
        elapsed.as_secs_f64() / bound.time.as_secs_f64()
    );
}

/// One instance: its own engine (clients, pacing) over the shared ledger.
fn worker(
    shape: &Shape,
    azure: &fake_azure::FakeAzure,
    asm: &fake_asm::FakeAsm,
    tokens: Arc<dyn TokenSource>,
    ledger: Arc<MemoryLedger>,
) -> SyncReconciler {
    let yaml = json!({
        "scan_id": SCAN,
        "delete_stale_seeds": true,
        "asm": {"base_url": asm.base_url()},
        "azure": {"endpoints": {"resource_manager": azure.base_url()}},
        "sync": {"graph_lag": "0s", "fanout_threshold": 50, "fanout_batch": shape.batch},
    });
    let env = HashMap::from([("API_KEY".to_string(), KEY.to_string())]);
    let config = Config::from_value(&yaml, "bench", &env).expect("config");
    let client = AsmClient::new(&asm.base_url(), SCAN, Secret::new(KEY), &config.http);
    SyncReconciler(Arc::new(SyncEngine::live(
        config,
        tokens,
        Arc::new(client),
        Some(ledger),
    )))
}

/// Plans on the first worker, then every worker takes the next batch until none is left, as
/// instances take jobs off the queue; a passing failure is retried as the queue retries.
async fn fan_out(workers: &[SyncReconciler]) -> Vec<Vec<String>> {
    let planned = workers[0]
        .fanout()
        .await
        .expect("the fan-out plan")
        .expect("the estate is over the threshold");
    let count = planned.len() as u32;
    let run = workers[0].fanout_started(count).await.expect("a run row");
    let queue: Mutex<VecDeque<Batch>> = Mutex::new(
        planned
            .iter()
            .enumerate()
            .map(|(index, subscriptions)| Batch {
                run: run.clone(),
                index: index as u32,
                count,
                subscriptions: subscriptions.clone(),
            })
            .collect(),
    );
    let take = || queue.lock().expect("the queue").pop_front();
    let started = Instant::now();
    futures::future::join_all(workers.iter().enumerate().map(|(n, worker)| async move {
        while let Some(batch) = take() {
            let began = started.elapsed();
            let scope = Scope::Batch(batch.clone());
            let mut outcome = worker.reconcile(&scope, false).await;
            for _ in 0..4 {
                match &outcome {
                    Err(e) if e.is_transient() => outcome = worker.reconcile(&scope, false).await,
                    _ => break,
                }
            }
            if let Err(e) = &outcome {
                eprintln!("batch {} gave up: {}", batch.index, e.message());
            }
            println!(
                "  batch {} on worker {n}: {:.1} s to {:.1} s",
                batch.index,
                began.as_secs_f64(),
                started.elapsed().as_secs_f64()
            );
            worker
                .batch_reported(&batch, outcome.as_ref().map_err(|e| e.message()))
                .await;
        }
    }))
    .await;
    planned
}

struct Bound {
    queries: u64,
    time: Duration,
}

/// The quota's bound from the estate: per batch, per table the checks read, a page per 1,000
/// rows and at least one.
fn quota_bound(estate: &[Value], batches: &[Vec<String>], page_latency: Duration) -> Bound {
    let checks = EnabledChecks::all();
    let tables: Vec<Vec<&'static str>> = [Source::Resources, Source::DnsResources, Source::ComputeResources]
        .into_iter()
        .map(|source| catalog::graph_types(&checks, source))
        .filter(|types| !types.is_empty())
        .collect();
    let batch_of: HashMap<String, usize> = batches
        .iter()
        .enumerate()
        .flat_map(|(n, subs)| subs.iter().map(move |s| (s.to_ascii_lowercase(), n)))
        .collect();
    let mut rows: BTreeMap<(usize, usize), u64> = BTreeMap::new();
    for resource in estate {
        let arm_type = resource["type"].as_str().unwrap_or_default().to_ascii_lowercase();
        let id = resource["id"].as_str().unwrap_or_default().to_ascii_lowercase();
        let sub = id.split('/').nth(2).unwrap_or_default().to_string();
        let (Some(batch), Some(table)) = (
            batch_of.get(&sub),
            tables.iter().position(|types| types.contains(&arm_type.as_str())),
        ) else {
            continue;
        };
        *rows.entry((*batch, table)).or_default() += 1;
    }
    let queries: u64 = (0..batches.len())
        .flat_map(|b| (0..tables.len()).map(move |t| (b, t)))
        .map(|key| rows.get(&key).copied().unwrap_or(0).div_ceil(PAGE_ROWS).max(1))
        .sum();
    let windows = queries.div_ceil(u64::from(GRAPH_QUOTA)).saturating_sub(1);
    Bound {
        queries,
        time: GRAPH_WINDOW * windows as u32 + page_latency,
    }
}

/// User plus system CPU seconds of this process so far (`/proc/self/stat`, in clock ticks of
/// 1/100 s on Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |n: usize| fields.get(n).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}
