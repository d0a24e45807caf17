//! The fanned-out timer reconcile: batches of subscriptions reconciled on concurrent workers end
//! in the same ASM state as one sweep of the whole estate, seed by seed, and the run history
//! holds the run as complete only once every batch reported. The fake Azure's Resource Graph
//! quota is relaxed (`lax_graph_quota_for_test`): this test is about the end state, the quota
//! is the sweep benchmark's.

use crate::support::{azure_reader, fake_asm, fake_azure};

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use fake_asm::FakeAsm;
use fake_azure::FakeAzure;
use futures::StreamExt;
use seedwatch::adapters::asm::AsmClient;
use seedwatch::app::engines::{SyncEngine, SyncReconciler};
use seedwatch::app::ports::{Batch, Reconciled, Reconciler, Scope};
use seedwatch::config::Config;
use seedwatch::domain::secret::Secret;
use seedwatch::ledger::history::{self, RunResult};
use seedwatch::ledger::memory::MemoryLedger;
use serde_json::{Value, json};

const KEY: &str = "fanout-test-key-never-printed";
const SCAN: &str = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
const TAG: &str = "cloud-connector";
const SUBSCRIPTIONS: usize = 7;

struct World {
    azure: FakeAzure,
    asm: FakeAsm,
    ledger: Arc<MemoryLedger>,
    reconciler: SyncReconciler,
}

async fn world(estate: &[Value]) -> World {
    world_in_batches(estate, 3, 2).await
}

/// Fans out over `threshold` subscriptions, `batch` subscriptions a job.
async fn world_in_batches(estate: &[Value], threshold: usize, batch: usize) -> World {
    let azure = FakeAzure::start().await;
    azure.lax_graph_quota_for_test();
    azure.load(estate.to_vec());
    let asm = FakeAsm::start(KEY).await;
    asm.add_scan(SCAN);
    let yaml = json!({
        "scan_id": SCAN,
        "delete_stale_seeds": true,
        "asm": {"base_url": asm.base_url()},
        // A generous timeout: no answer from the local fakes, however loaded the machine, is
        // abandoned, so no write fails in passing and the end states compare exactly.
        "http": {"retry_count": 3, "retry_base_delay": "10ms", "retry_max_delay": "50ms", "timeout": "60s"},
        "azure": {"endpoints": {"resource_manager": azure.base_url()}},
        // Every owner comes from the sweep (no apply ran), and the deletes below are a small
        // share of the scan.
        "sync": {"graph_lag": "0s", "fanout_threshold": threshold, "fanout_batch": batch, "max_delete_fraction": 0.5},
    });
    let env = HashMap::from([("API_KEY".to_string(), KEY.to_string())]);
    let config = Config::from_value(&yaml, "test", &env).unwrap();
    let client = AsmClient::new(&asm.base_url(), SCAN, Secret::new(KEY), &config.http);
    let ledger = Arc::new(MemoryLedger::new());
    let tokens = azure_reader::managed_identity_tokens(&azure);
    let engine = SyncEngine::live(config, tokens, Arc::new(client), Some(ledger.clone()));
    World {
        azure,
        asm,
        ledger,
        reconciler: SyncReconciler(Arc::new(engine)),
    }
}

/// Some owners gone and some new ones, in several subscriptions.
fn change(world: &World, estate: &[Value]) {
    let ips: Vec<&Value> = estate
        .iter()
        .filter(|r| r["type"] == "Microsoft.Network/publicIPAddresses")
        .collect();
    for gone in ips.iter().step_by(9) {
        world.azure.delete(gone["id"].as_str().unwrap());
    }
    for (n, sub) in world.azure.subscriptions().iter().enumerate() {
        let id =
            format!("/subscriptions/{sub}/resourceGroups/new/providers/Microsoft.Network/publicIPAddresses/new{n}");
        world.azure.upsert(fake_azure::public_ip(&id, &format!("20.77.{n}.9")));
    }
}

/// The batches on `workers` concurrent workers, each retried on a passing failure and reporting
/// its final outcome as the runner does.
async fn fan_out(world: &World, workers: usize) -> String {
    fan_out_in(world, workers, SUBSCRIPTIONS.div_ceil(2)).await
}

async fn fan_out_in(world: &World, workers: usize, expected_batches: usize) -> String {
    let batches = world
        .reconciler
        .fanout()
        .await
        .unwrap()
        .expect("the estate is over the threshold");
    assert_eq!(batches.len(), expected_batches);
    let count = batches.len() as u32;
    let run = world.reconciler.fanout_started(count).await.expect("a run row");
    futures::stream::iter(batches.into_iter().enumerate())
        .map(|(index, subscriptions)| {
            let batch = Batch {
                run: run.clone(),
                index: index as u32,
                count,
                subscriptions,
            };
            async move {
                // A passing failure (a timeout on a loaded machine) is retried as the queue
                // retries a batch job; only the final outcome is reported, as the runner does.
                let mut outcome = world.reconciler.reconcile(&Scope::Batch(batch.clone()), false).await;
                for _ in 0..4 {
                    match &outcome {
                        Err(e) if e.is_transient() => {
                            outcome = world.reconciler.reconcile(&Scope::Batch(batch.clone()), false).await
                        }
                        _ => break,
                    }
                }
                match &outcome {
                    Ok(summary) => {
                        // Shown only when the test fails: what a batch could not do.
                        if let Reconciled::Report(r) = summary {
                            for failed in &r.report.failed {
                                eprintln!("batch {index}: a write failed: {failed:?}");
                            }
                            for warning in &r.ledger_warnings {
                                eprintln!("batch {index}: ledger: {warning}");
                            }
                        }
                        world.reconciler.batch_reported(&batch, Ok(summary)).await
                    }
                    Err(e) => {
                        // Shown only when the test fails: which batch gave up, and why.
                        eprintln!("batch {index} failed: {}", e.message());
                        world.reconciler.batch_reported(&batch, Err(e.message())).await
                    }
                }
            }
        })
        .buffer_unordered(workers)
        .collect::<Vec<()>>()
        .await;
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_on_three_workers_end_where_one_sweep_ends() {
    let estate = fake_azure::generate_estate(SUBSCRIPTIONS, 700, 11);
    let whole = world(&estate).await;
    let fanned = world(&estate).await;
    compare_seed_by_seed(&whole, &fanned, &estate, SUBSCRIPTIONS.div_ceil(2)).await;
}

/// The benchmark's configuration: 200 subscriptions over the default threshold (50), in
/// batches of 20 on 3 workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_subscriptions_in_batches_of_twenty_on_three_workers_end_where_one_sweep_ends() {
    let estate = fake_azure::generate_estate(200, 1000, 13);
    let whole = world_in_batches(&estate, 50, 20).await;
    let fanned = world_in_batches(&estate, 50, 20).await;
    compare_seed_by_seed(&whole, &fanned, &estate, 10).await;
}

/// One sweep and the fanned-out batches from the same estate, before and after a change:
/// ASM ends with the same seeds.
async fn compare_seed_by_seed(whole: &World, fanned: &World, estate: &[Value], batches: usize) {
    for w in [&whole, &fanned] {
        w.reconciler.reconcile(&Scope::All, false).await.unwrap();
    }
    let before: BTreeSet<String> = whole.asm.tagged_names(SCAN, TAG);
    assert!(before.len() > 100, "the estate seeds the scan: {}", before.len());
    assert_eq!(fanned.asm.tagged_names(SCAN, TAG), before);

    change(whole, estate);
    change(fanned, estate);
    whole.reconciler.reconcile(&Scope::All, false).await.unwrap();
    fan_out_in(fanned, 3, batches).await;

    let one_sweep = whole.asm.tagged_names(SCAN, TAG);
    let last = whole.azure.subscriptions().len() - 1;
    assert!(
        one_sweep.contains("20.77.0.9") && one_sweep.contains(&format!("20.77.{last}.9")),
        "new owners seeded"
    );
    let removed: Vec<&String> = before.difference(&one_sweep).collect();
    assert!(removed.len() > 5, "gone owners' seeds deleted: {removed:?}");
    let fanned_out = fanned.asm.tagged_names(SCAN, TAG);
    let only_one: Vec<&String> = one_sweep.difference(&fanned_out).collect();
    let only_fanned: Vec<&String> = fanned_out.difference(&one_sweep).collect();
    assert!(
        only_one.is_empty() && only_fanned.is_empty(),
        "only after one sweep: {only_one:?}; only after the batches: {only_fanned:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_is_complete_once_every_batch_reported_and_a_failed_batch_deletes_nothing_elsewhere() {
    let estate = fake_azure::generate_estate(SUBSCRIPTIONS, 350, 5);
    let w = world(&estate).await;
    w.reconciler.reconcile(&Scope::All, false).await.unwrap();
    let before = w.asm.tagged_names(SCAN, TAG);
    change(&w, &estate);
    // One subscription cannot be read: its batch reads it incompletely and deletes none of its
    // seeds; the other batches still delete their own stale seeds.
    let lost = w.azure.subscriptions()[0].clone();
    w.azure.forbid(&lost);
    fan_out(&w, 3).await;
    let after = w.asm.tagged_names(SCAN, TAG);
    let runs = history::runs(w.ledger.as_ref()).await.unwrap();
    let fanned = runs
        .iter()
        .find(|r| r.scope.contains("batches"))
        .expect("the fanned-out run");
    assert_eq!(fanned.result, RunResult::Ok, "{fanned:?}");
    assert!(
        !fanned.complete,
        "a batch did not read its scope completely: {fanned:?}"
    );
    assert!(
        before.difference(&after).count() > 0,
        "other batches deleted their stale seeds"
    );
    // Every seed the lost subscription's deleted owners gave is still there.
    let lost_ips: Vec<String> = estate
        .iter()
        .filter(|r| r["type"] == "Microsoft.Network/publicIPAddresses")
        .step_by(9)
        .filter(|r| r["id"].as_str().unwrap().contains(&lost))
        .filter_map(|r| r["properties"]["ipAddress"].as_str().map(str::to_string))
        .collect();
    assert!(
        lost_ips.iter().any(|ip| before.contains(ip)),
        "the lost subscription had stale seeds"
    );
    for ip in &lost_ips {
        if before.contains(ip) {
            assert!(after.contains(ip), "{ip} of the unread subscription was deleted");
        }
    }
}
