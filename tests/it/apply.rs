//! The incremental path: the deterministic simulation (in-process, and one variant against the
//! Table backend on Azurite).

use crate::support::{cli, fake_asm, fake_azure, gated_ledger, sim};

use std::sync::Arc;

use seedwatch::ledger::memory::MemoryLedger;
use sim::SimParams;

fn base_seed() -> Option<u64> {
    std::env::var("SEEDWATCH_SIM_SEED").ok().and_then(|s| s.parse().ok())
}

fn params(seed: u64) -> SimParams {
    SimParams {
        seed,
        operations: 60,
        appliers: 3,
        seed_pool: 16,
        asm_fault_rate: 0.1,
        arm_fault_rate: 0.05,
        crash_rate: 0.03,
        duplicate_rate: 0.3,
    }
}

/// The simulation's ARM and ASM with every fault rate at 0 (nothing random is ever rolled), over
/// `ledger`, for regression tests that force one interleaving by hand.
struct QuietWorld {
    azure: Arc<sim::SimAzure>,
    asm: Arc<sim::SimAsm>,
    ledger: Arc<dyn seedwatch::ledger::Ledger>,
    clock: Arc<sim::TickClock>,
}

impl QuietWorld {
    fn new(estate: Arc<sim::Estate>, ledger: Arc<dyn seedwatch::ledger::Ledger>) -> QuietWorld {
        let dice = sim::Dice::new(1);
        QuietWorld {
            azure: Arc::new(sim::SimAzure {
                estate,
                dice: dice.clone(),
                fault_rate: std::sync::Mutex::new(0.0),
                reads: std::sync::atomic::AtomicUsize::new(0),
            }),
            asm: Arc::new(sim::SimAsm::new(dice, ledger.clone())),
            ledger,
            clock: Arc::new(sim::TickClock::default()),
        }
    }

    /// An applier over this world, with the simulation's clock and extractor.
    fn applier(&self) -> seedwatch::engine::apply::Applier {
        let mut applier = seedwatch::engine::apply::Applier::new(
            self.azure.clone(),
            self.asm.clone(),
            self.ledger.clone(),
            seedwatch::domain::check::EnabledChecks::all(),
            sim::TAG.to_string(),
        );
        applier.clock = self.clock.clone();
        applier.extract = sim::sim_extract;
        applier.options.delete_stale_seeds = true;
        applier.options.max_delete_fraction = 1.0; // the breaker open
        applier
    }
}

/// Many seeded runs on one current-thread runtime each (deterministic interleavings).
#[test]
fn simulation_converges_and_never_deletes_wrongly() {
    let seeds: Vec<u64> = match base_seed() {
        Some(seed) => vec![seed],
        None => {
            let start: u64 = rand::random::<u32>() as u64;
            (start..start + 40).collect()
        }
    };
    let mut crashes = 0;
    for seed in seeds {
        println!("simulation seed {seed} (reproduce with SEEDWATCH_SIM_SEED={seed})");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let p = params(seed);
        let out = runtime.block_on(sim::run(&p, Arc::new(MemoryLedger::new())));
        sim::check(&p, &out);
        crashes += out.crashes;
        assert!(out.applies > 0);
    }
    assert!(crashes > 0, "the runs injected no crash at all");
}

#[test]
fn simulation_on_the_table_backend() {
    let endpoint = std::env::var("SEEDWATCH_TEST_AZURITE").unwrap_or_else(|_| {
        panic!("SEEDWATCH_TEST_AZURITE is not set: run the tests through scripts/test.sh, which starts Azurite")
    });
    let seed = base_seed().unwrap_or_else(|| rand::random::<u32>() as u64);
    println!("simulation seed {seed} on Azurite (reproduce with SEEDWATCH_SIM_SEED={seed})");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let table = seedwatch::adapters::store::table::TableLedger::connect(
            seedwatch::adapters::http::client(std::time::Duration::from_secs(30)),
            &endpoint,
            &format!("sim{}", uuid::Uuid::new_v4().simple()),
            seedwatch::adapters::store::table::TableAuth::SharedKey {
                account: "devstoreaccount1".into(),
                key: seedwatch::domain::secret::Secret::new(
                    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
                ),
            },
            seedwatch::adapters::http::RetryPolicy {
                count: 2,
                base: std::time::Duration::from_millis(50),
                max: std::time::Duration::from_millis(200),
            },
        )
        .await
        .unwrap();
        let mut p = params(seed);
        p.operations = 30;
        let out = sim::run(&p, Arc::new(table)).await;
        sim::check(&p, &out);
    });
}

// ---------------------------------------------------------------------------------------------
// Regressions the simulation found (each one deterministic, on the in-memory ledger).

/// A withdrawal from a seed that has no record yet still leaves a tombstone, so an applier
/// holding an older generation of the same owner cannot create the record as present
/// (simulation seed 3779128790: a stale `present` membership nobody ever withdrew).
#[tokio::test]
async fn a_withdrawal_before_the_record_exists_outranks_an_older_generation() {
    use seedwatch::domain::check::ServiceCheck;
    use seedwatch::ledger::Ledger;
    let ledger = MemoryLedger::new();
    let seed = seedwatch::domain::seed::Seed::from_host_value("h13.sim.example.com").unwrap();
    let owner = seedwatch::domain::resource::ResourceId::parse(
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/dnszones/z1.example.com",
    )
    .unwrap();
    let now = || 1_000;
    // Generation 3 (the owner is gone) is written first…
    seedwatch::ledger::ops::set_membership(&ledger, &seed, &owner, 3, None, &now, 3_600_000, 5)
        .await
        .unwrap();
    // …then the slower applier of generation 2 (which still saw the seed) catches up.
    let written = seedwatch::ledger::ops::set_membership(
        &ledger,
        &seed,
        &owner,
        2,
        Some(vec![ServiceCheck::DnsRecords]),
        &now,
        3_600_000,
        5,
    )
    .await
    .unwrap()
    .expect("the tombstone record");
    assert!(!written.value.is_wanted(), "{:?}", written.value.owners);
    let stored = ledger.seed(&seed).await.unwrap().unwrap();
    assert!(!stored.value.is_wanted(), "{:?}", stored.value.owners);
}

/// A read that finds nothing changed still records when it was made, so an event body taken
/// before it is refused as stale (simulation seed 2790574725: a late body rolled an owner back
/// to seeds it no longer had).
#[tokio::test]
async fn a_body_older_than_a_duplicate_read_is_stale() {
    use seedwatch::engine::apply::{ApplyRequest, Clock};

    let estate = Arc::new(sim::Estate::default());
    let world = QuietWorld::new(estate.clone(), Arc::new(MemoryLedger::new()));
    let (applier, ledger, asm, clock) = (world.applier(), &world.ledger, &world.asm, &world.clock);
    let id = seedwatch::domain::resource::ResourceId::parse(
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/pip0",
    )
    .unwrap();
    let body = |seeds: &[&str]| serde_json::json!({"id": id.as_str(), "properties": {"seeds": seeds}});
    let put = |seeds: &[&str]| {
        let resource = seedwatch::domain::resource::Resource::from_json(body(seeds)).unwrap();
        estate.resources.lock().unwrap().insert(id.clone(), resource);
    };

    put(&[]);
    applier.apply(&ApplyRequest::changed(id.clone())).await.unwrap();
    // The resource briefly gains a seed; the notification carrying that body is delayed.
    put(&["h8.sim.example.com"]);
    let mut late = ApplyRequest::changed(id.clone());
    late.body = Some(body(&["h8.sim.example.com"]));
    late.body_time_ms = Some(clock.now_ms());
    // It loses the seed again; this event's read finds what the ledger already has.
    put(&[]);
    applier.apply(&ApplyRequest::changed(id.clone())).await.unwrap();
    // The late body must not roll the owner back.
    applier.apply(&late).await.unwrap();
    let record = ledger.owner(&id).await.unwrap().unwrap();
    assert!(record.value.seeds.is_empty(), "{:?}", record.value.seeds);
    assert!(asm.names(true).is_empty(), "{:?}", asm.names(true));
}

/// Issue 18: the simulation checks every ASM delete when it is sent, so a wrong delete fails
/// it even when the seed is added back before the end (the final comparison alone cannot see
/// it). Here a delete with no intent behind it, then the re-add.
#[tokio::test]
async fn the_simulation_fails_a_wrong_delete_even_if_the_seed_is_added_back() {
    use seedwatch::adapters::asm::AsmApi;
    let world = QuietWorld::new(Arc::new(sim::Estate::default()), Arc::new(MemoryLedger::new()));
    world.asm.insert("h1.sim.example.com", &[sim::TAG]);
    let id = world.asm.seeds.lock().unwrap().keys().next().unwrap().clone();
    world.asm.delete_seed(&id).await.unwrap();
    let seed = seedwatch::domain::seed::Seed::from_host_value("h1.sim.example.com").unwrap();
    world.asm.add_seed(&seed, &[sim::TAG.to_string()]).await.unwrap();
    assert_eq!(world.asm.names(true).len(), 1, "added back");
    let violations = world.asm.violations.lock().unwrap().clone();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].contains("without") || violations[0].contains("no ledger record"),
        "{violations:?}"
    );
}

/// Issue 12.2 in the simulation's world: with `delete_stale_seeds` false, the withdrawal is
/// recorded and no delete is ever sent (the simulated ASM counts any delete as a violation).
#[tokio::test]
async fn with_delete_stale_seeds_false_no_delete_is_sent() {
    use seedwatch::engine::apply::ApplyRequest;
    let estate = Arc::new(sim::Estate::default());
    let world = QuietWorld::new(estate.clone(), Arc::new(MemoryLedger::new()));
    world
        .asm
        .deletes_allowed
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let mut applier = world.applier();
    applier.options.delete_stale_seeds = false;
    let id = seedwatch::domain::resource::ResourceId::parse(
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/pip0",
    )
    .unwrap();
    let resource = seedwatch::domain::resource::Resource::from_json(
        serde_json::json!({"id": id.as_str(), "properties": {"seeds": ["h2.sim.example.com"]}}),
    )
    .unwrap();
    estate.resources.lock().unwrap().insert(id.clone(), resource);
    applier.apply(&ApplyRequest::changed(id.clone())).await.unwrap();
    estate.resources.lock().unwrap().clear();
    let report = applier.apply(&ApplyRequest::deleted(id.clone())).await.unwrap();

    assert!(
        world.asm.violations.lock().unwrap().is_empty(),
        "{:?}",
        world.asm.violations
    );
    assert!(report.deleted.is_empty());
    assert_eq!(report.kept.len(), 1, "{report:?}");
    assert_eq!(world.asm.names(true).len(), 1);
    let seed = seedwatch::domain::seed::Seed::from_host_value("h2.sim.example.com").unwrap();
    let record = world.ledger.seed(&seed).await.unwrap().unwrap();
    assert!(
        !record.value.is_wanted(),
        "the withdrawal is recorded: {:?}",
        record.value
    );
    assert!(record.value.asm.held, "{:?}", record.value.asm);
}

/// A body-based commit that lands after a resource-group delete was marked and listed its
/// owners is read again, so the owner does not escape the delete (simulation seed 3779128790
/// on the Table backend: a zone under a deleted group kept its seeds in the ledger and ASM).
/// The zone's first owner write is held until the group's delete has finished.
#[tokio::test]
async fn a_body_committed_after_its_resource_group_delete_listed_its_owners_is_read_again() {
    use seedwatch::domain::resource::ResourceId;
    use seedwatch::domain::seed::Seed;
    use seedwatch::engine::apply::{ApplyRequest, Clock};
    use seedwatch::ledger::Ledger;
    use seedwatch::ledger::keys::owner_key;

    let group = ResourceId::parse("/subscriptions/s/resourceGroups/rg").unwrap();
    let zone =
        ResourceId::parse("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/dnszones/z1.example.com")
            .unwrap();
    let names = ["www.z1.example.com", "api.z1.example.com"];
    let seeds: Vec<Seed> = names.iter().map(|n| Seed::from_host_value(n).unwrap()).collect();

    let memory: Arc<dyn Ledger> = Arc::new(MemoryLedger::new());
    let (gated, gate) = gated_ledger::GatedLedger::new(memory.clone(), owner_key(&zone));
    // ARM: the group and the zone are gone.
    let world = QuietWorld::new(Arc::new(sim::Estate::default()), gated.clone());
    let (applier_a, applier_b) = (world.applier(), world.applier());
    let (ledger, asm, clock) = (&world.ledger, &world.asm, &world.clock);

    // A Resource Notifications change whose body was taken while the zone still existed.
    let mut from_body = ApplyRequest::changed(zone.clone());
    from_body.body = Some(serde_json::json!({"id": zone.as_str(), "properties": {"seeds": names}}));
    from_body.body_time_ms = Some(clock.now_ms());

    // A checks `deleted_since` (nothing yet) and stops at its commit of the zone; B marks the
    // group deleted and lists its owners (none: the zone's record has not landed) to the end;
    // then A's commit lands.
    let a = async {
        let result = applier_a.apply(&from_body).await;
        gated.disarm();
        result
    };
    let b = async move {
        gate.reached
            .await
            .expect("applier A never wrote the zone's owner record");
        let result = applier_b.apply(&ApplyRequest::deleted(group.clone())).await;
        let _ = gate.release.send(());
        result
    };
    let (a, b) = tokio::join!(a, b);
    a.unwrap();
    let b = b.unwrap();
    assert!(b.owners.is_empty(), "the group's delete listed {:?}", b.owners);

    let record = ledger.owner(&zone).await.unwrap();
    assert!(
        record
            .as_ref()
            .is_none_or(|r| r.value.deleted && r.value.seeds.is_empty()),
        "the zone's owner record is live: {:?}",
        record.map(|r| r.value)
    );
    for seed in &seeds {
        if let Some(stored) = ledger.seed(seed).await.unwrap() {
            assert!(!stored.value.is_wanted(), "{seed} is wanted: {:?}", stored.value.owners);
            assert!(!stored.value.asm.held, "{seed} is held: {:?}", stored.value.asm);
        }
    }
    let in_asm = asm.names(false);
    assert!(names.iter().all(|n| !in_asm.contains(*n)), "ASM holds {in_asm:?}");
}

// ---------------------------------------------------------------------------------------------
// End to end: `seedwatch sync` then `seedwatch apply`, the built binary against the fake ASM and
// the fake ARM/Resource Graph servers, sharing one local ledger (the working directory's).

mod e2e {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::cli::{self, Run};
    use super::fake_asm::{FakeAsm, Route};
    use super::fake_azure::FakeAzure;

    const KEY: &str = "e2e-key";
    const SCAN: &str = "scan-e2e";
    const TAG: &str = "cloud-connector";
    const SUB: &str = "aaaaaaaa-0000-4000-8000-000000000001";

    fn pip(rg: &str, name: &str, ip: &str) -> Value {
        super::fake_azure::public_ip(&pip_id(rg, name), ip)
    }

    fn pip_id(rg: &str, name: &str) -> String {
        format!("/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Network/publicIPAddresses/{name}")
    }

    struct World {
        azure: FakeAzure,
        asm: FakeAsm,
        dir: tempfile::TempDir,
        /// `delete_stale_seeds` (on unless a test turns it off).
        delete_stale_seeds: bool,
        /// `sync.max_delete_fraction`: the real default unless a test relaxes it by name.
        max_delete_fraction: f64,
        /// More `sync:` keys, indented under it.
        sync_yaml: String,
    }

    impl World {
        async fn start(estate: Vec<Value>) -> World {
            let azure = FakeAzure::start().await;
            azure.load(estate);
            let asm = FakeAsm::start(KEY).await;
            asm.add_scan(SCAN);
            World {
                azure,
                asm,
                dir: tempfile::tempdir().unwrap(),
                delete_stale_seeds: true,
                max_delete_fraction: 0.25,
                sync_yaml: String::new(),
            }
        }

        /// A laxer world: the deletion breaker lets every delete through.
        fn lax_delete_breaker_for_test(mut self) -> World {
            self.max_delete_fraction = 1.0;
            self
        }

        async fn run(&self, args: &[&str]) -> Run {
            let yaml = format!(
                "scan_id: {SCAN}\nseed_tag: {TAG}\ndelete_stale_seeds: {}\n\
                 sync:\n  max_delete_fraction: {}\n{}\
                 http:\n  retry_count: 2\n  retry_base_delay: 10ms\n  retry_max_delay: 50ms\n  timeout: 2s\n\
                 asm:\n  base_url: {}\n\
                 azure:\n  credential: managed_identity\n  endpoints:\n    resource_manager: {}\n",
                self.delete_stale_seeds,
                self.max_delete_fraction,
                self.sync_yaml,
                self.asm.base_url(),
                self.azure.base_url()
            );
            let env: Vec<(String, String)> = vec![
                ("CONNECTOR_CONFIG".into(), yaml),
                ("API_KEY".into(), KEY.into()),
                ("IDENTITY_ENDPOINT".into(), self.azure.identity_endpoint()),
                ("IDENTITY_HEADER".into(), self.azure.identity_header()),
                ("AZURE_CLIENT_ID".into(), self.azure.client_id()),
            ];
            cli::run(args, self.dir.path(), env).await
        }

        async fn apply(&self, id: &str, deleted: bool) -> Value {
            let mut args = vec!["apply", "--resource", id, "--json"];
            if deleted {
                args.push("--deleted");
            }
            let run = self.run(&args).await;
            assert_eq!(run.code, Some(0), "{run:?}");
            run.json()
        }

        fn tagged(&self) -> BTreeSet<String> {
            self.asm.tagged_names(SCAN, TAG)
        }
    }

    fn names(report: &Value, field: &str) -> BTreeSet<String> {
        report[field]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect()
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_a_sync_apply_adds_and_removes_exactly_what_changed() {
        let w = World::start(vec![
            pip("rg-1", "pip-1", "203.0.113.1"),
            pip("rg-2", "pip-2", "203.0.113.2"),
        ])
        .await
        .lax_delete_breaker_for_test();
        let sync = w.run(&["sync", "--json"]).await;
        assert_eq!(sync.code, Some(0), "{sync:?}");
        assert_eq!(w.tagged(), set(&["203.0.113.1", "203.0.113.2"]));
        assert!(w.dir.path().join(".seedwatch").join("ledger.redb").exists());

        // A new public resource: one ARM read, one ASM write.
        w.azure.upsert(pip("rg-3", "pip-3", "203.0.113.3"));
        w.azure.reset_counts();
        w.asm.clear_journal();
        let report = w.apply(&pip_id("rg-3", "pip-3"), false).await;
        assert_eq!(names(&report, "added"), set(&["203.0.113.3"]));
        assert_eq!(report["arm_reads"], 1);
        assert_eq!(report["asm_writes"], 1);
        assert_eq!(w.azure.counts().arm_gets, 1);
        assert_eq!(w.asm.write_attempts(), 1);
        assert_eq!(w.tagged(), set(&["203.0.113.1", "203.0.113.2", "203.0.113.3"]));

        // The same event again: a read, no write.
        w.asm.clear_journal();
        let again = w.apply(&pip_id("rg-3", "pip-3"), false).await;
        assert_eq!(again["asm_writes"], 0);
        assert_eq!(w.asm.write_attempts(), 0);

        // A second resource contributes pip-1's address too; deleting it keeps the seed.
        w.azure.upsert(pip("rg-3", "pip-4", "203.0.113.1"));
        let shared = w.apply(&pip_id("rg-3", "pip-4"), false).await;
        assert_eq!(shared["asm_writes"], 0, "{shared}");
        w.azure.delete(&pip_id("rg-3", "pip-4"));
        let kept = w.apply(&pip_id("rg-3", "pip-4"), true).await;
        assert!(names(&kept, "deleted").is_empty(), "{kept}");
        assert!(w.tagged().contains("203.0.113.1"));

        // Deleting pip-3 removes its seed.
        w.azure.delete(&pip_id("rg-3", "pip-3"));
        let removed = w.apply(&pip_id("rg-3", "pip-3"), true).await;
        assert_eq!(names(&removed, "deleted"), set(&["203.0.113.3"]));
        assert_eq!(w.tagged(), set(&["203.0.113.1", "203.0.113.2"]));

        // A resource-group delete removes everything under it, and nothing else.
        w.azure.delete(&pip_id("rg-1", "pip-1"));
        let group = w
            .apply(&format!("/subscriptions/{SUB}/resourceGroups/rg-1"), true)
            .await;
        assert_eq!(names(&group, "deleted"), set(&["203.0.113.1"]), "{group}");
        assert_eq!(w.tagged(), set(&["203.0.113.2"]));

        // A full reconcile afterwards agrees: nothing to write.
        w.asm.clear_journal();
        let sync = w.run(&["sync", "--json"]).await;
        assert_eq!(sync.code, Some(0), "{sync:?}");
        assert_eq!(w.asm.write_attempts(), 0, "{}", sync.stdout);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn apply_reports_transient_failures_and_bad_ids() {
        let w = World::start(vec![pip("rg-1", "pip-1", "203.0.113.1")]).await;
        let bad = w.run(&["apply", "--resource", "not-an-id", "--json"]).await;
        assert_eq!(bad.code, Some(2), "{bad:?}");
        assert!(bad.stderr.contains("--resource"));

        w.asm.set_outage(true);
        let down = w
            .run(&["apply", "--resource", &pip_id("rg-1", "pip-1"), "--json"])
            .await;
        assert_eq!(down.code, Some(1), "{down:?}");
        assert_eq!(down.json()["transient"], true);
        assert!(!down.stderr.contains(KEY));
        w.asm.set_outage(false);
        let ok = w.apply(&pip_id("rg-1", "pip-1"), false).await;
        assert_eq!(names(&ok, "added"), set(&["203.0.113.1"]));
        assert!(w.asm.requests(Route::Any) > 0);
    }

    /// DELETE requests that reached ASM (any outcome).
    fn delete_requests(w: &World) -> usize {
        w.asm.journal().iter().filter(|e| e.method == "DELETE").count()
    }

    fn kept(report: &Value) -> Vec<(String, String)> {
        report["kept"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["name"].as_str().unwrap().to_string(),
                    k["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// Issue 12.2: with `delete_stale_seeds: false` (the default) an event deletes nothing; the
    /// seed stays and is reported as kept, and the ledger still records the withdrawal (a later
    /// reconcile with the setting on deletes it on the ledger's word).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delete_stale_seeds_false_keeps_a_deleted_resources_seed() {
        let mut w = World::start(vec![
            pip("rg-1", "pip-1", "203.0.113.1"),
            pip("rg-2", "pip-2", "203.0.113.2"),
        ])
        .await
        .lax_delete_breaker_for_test();
        w.delete_stale_seeds = false;
        assert_eq!(w.run(&["sync", "--json"]).await.code, Some(0));
        assert_eq!(w.tagged(), set(&["203.0.113.1", "203.0.113.2"]));

        w.asm.clear_journal();
        w.azure.delete(&pip_id("rg-1", "pip-1"));
        let report = w.apply(&pip_id("rg-1", "pip-1"), true).await;
        assert_eq!(delete_requests(&w), 0, "{report}");
        assert!(names(&report, "deleted").is_empty(), "{report}");
        let kept = kept(&report);
        assert_eq!(kept.len(), 1, "{report}");
        assert_eq!(kept[0].0, "203.0.113.1");
        assert!(kept[0].1.contains("delete_stale_seeds is false"), "{report}");
        assert_eq!(w.tagged(), set(&["203.0.113.1", "203.0.113.2"]));
        // A resource-group delete: the same.
        w.azure.delete(&pip_id("rg-2", "pip-2"));
        let group = w
            .apply(&format!("/subscriptions/{SUB}/resourceGroups/rg-2"), true)
            .await;
        assert_eq!(delete_requests(&w), 0, "{group}");
        assert_eq!(w.tagged(), set(&["203.0.113.1", "203.0.113.2"]));
    }

    /// Issue 12.3 (second half): deletes made by events count against sync.max_delete_fraction
    /// over a rolling hour, shared through the ledger by every instance (here: separate
    /// processes); past it they are kept for the next reconcile and reported.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn event_deletes_stop_at_the_breaker_and_wait_for_the_reconcile() {
        let estate: Vec<Value> = (1..=8)
            .map(|n| pip("rg-1", &format!("pip-{n}"), &format!("203.0.113.{n}")))
            .collect();
        let w = World::start(estate).await; // max_delete_fraction 0.25 of 8 tagged: 2 an hour
        assert_eq!(w.run(&["sync", "--json"]).await.code, Some(0));
        assert_eq!(w.tagged().len(), 8);

        w.asm.clear_journal();
        let mut kept_seeds = Vec::new();
        for n in 1..=3 {
            let id = pip_id("rg-1", &format!("pip-{n}"));
            w.azure.delete(&id);
            let report = w.apply(&id, true).await;
            kept_seeds.extend(kept(&report));
        }
        assert_eq!(delete_requests(&w), 2, "{:?}", w.asm.journal());
        assert_eq!(kept_seeds.len(), 1, "{kept_seeds:?}");
        assert!(
            kept_seeds.iter().all(|(_, why)| why.contains("deletion breaker")),
            "{kept_seeds:?}"
        );
        assert_eq!(w.tagged().len(), 6);

        // The next reconcile deletes what the breaker held back (1 of 6: within its own limit).
        w.asm.clear_journal();
        let sync = w.run(&["sync", "--json"]).await;
        assert_eq!(sync.code, Some(0), "{sync:?}");
        assert_eq!(delete_requests(&w), 1, "{}", sync.stdout);
        assert_eq!(w.tagged().len(), 5);
    }

    fn post_requests(w: &World) -> usize {
        w.asm.journal().iter().filter(|e| e.method == "POST").count()
    }

    /// Issue 12.6: Resource Graph lags behind ARM. The lag is played with the fake's data: the
    /// apply reads ARM, then the estate is set to what a lagging Resource Graph still shows
    /// before the sync sweeps (the sync reads no ARM for these resources). A sync that starts
    /// just after an event added a resource keeps its seed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sync_just_after_an_event_added_a_resource_keeps_its_seed() {
        let w = World::start(vec![
            pip("rg-1", "pip-1", "203.0.113.1"),
            pip("rg-2", "pip-2", "203.0.113.2"),
        ])
        .await
        .lax_delete_breaker_for_test();
        assert_eq!(w.run(&["sync", "--json"]).await.code, Some(0));

        w.azure.upsert(pip("rg-3", "pip-3", "203.0.113.3"));
        let added = w.apply(&pip_id("rg-3", "pip-3"), false).await;
        assert_eq!(names(&added, "added"), set(&["203.0.113.3"]));
        // Resource Graph has not indexed pip-3 yet.
        w.azure.delete(&pip_id("rg-3", "pip-3"));
        w.asm.clear_journal();
        let sync = w.run(&["sync", "--json"]).await;
        assert_eq!(sync.code, Some(0), "{sync:?}");
        assert_eq!(delete_requests(&w), 0, "{}", sync.stdout);
        assert_eq!(w.tagged(), set(&["203.0.113.1", "203.0.113.2", "203.0.113.3"]));
    }

    /// Issue 12.6: a sync that starts just after a confirmed delete neither adds the seed back
    /// nor revives the owner in the ledger.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sync_just_after_a_confirmed_delete_does_not_revive_the_seed() {
        use seedwatch::ledger::Ledger;
        let w = World::start(vec![
            pip("rg-1", "pip-1", "203.0.113.1"),
            pip("rg-2", "pip-2", "203.0.113.2"),
            pip("rg-3", "pip-3", "203.0.113.3"),
        ])
        .await
        .lax_delete_breaker_for_test();
        assert_eq!(w.run(&["sync", "--json"]).await.code, Some(0));

        w.azure.delete(&pip_id("rg-3", "pip-3"));
        let removed = w.apply(&pip_id("rg-3", "pip-3"), true).await;
        assert_eq!(names(&removed, "deleted"), set(&["203.0.113.3"]));
        // Resource Graph still shows pip-3.
        w.azure.upsert(pip("rg-3", "pip-3", "203.0.113.3"));
        w.asm.clear_journal();
        let sync = w.run(&["sync", "--json"]).await;
        assert_eq!(sync.code, Some(0), "{sync:?}");
        assert_eq!(post_requests(&w), 0, "{}", sync.stdout);
        assert_eq!(w.tagged(), set(&["203.0.113.1", "203.0.113.2"]));

        let ledger =
            seedwatch::adapters::store::local::LocalLedger::open(&w.dir.path().join(".seedwatch").join("ledger.redb"))
                .unwrap();
        let id = seedwatch::domain::resource::ResourceId::parse(&pip_id("rg-3", "pip-3")).unwrap();
        let owner = ledger.owner(&id).await.unwrap().expect("the owner record");
        assert!(owner.value.deleted, "the sync revived the owner: {:?}", owner.value);
    }
}
