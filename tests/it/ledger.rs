//! Ledger backends: the same conformance checks against the in-memory store, the redb file and
//! a real Azurite (Table Storage) started by `scripts/test.sh`, plus Azurite-only checks for
//! 412 conflicts and paging, and a fake table server for empty continuation pages.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use seedwatch::adapters::http::RetryPolicy;
use seedwatch::adapters::store::local::LocalLedger;
use seedwatch::adapters::store::table::{TableAuth, TableLedger};
use seedwatch::config::{Config, env};
use seedwatch::domain::check::ServiceCheck;
use seedwatch::domain::resource::ResourceId;
use seedwatch::domain::secret::Secret;
use seedwatch::domain::seed::Seed;
use seedwatch::ledger::memory::MemoryLedger;
use seedwatch::ledger::{
    Expect, FailedChange, FailedChangeKind, Ledger, LedgerError, OwnedSeed, OwnerRecord, SeedRecord, seeds_hash,
};

const DEV_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The Azurite table endpoint exported by scripts/test.sh. Missing means the suite was not
/// started through the script: fail loudly rather than skip.
fn azurite() -> String {
    std::env::var("SEEDWATCH_TEST_AZURITE").unwrap_or_else(|_| {
        panic!("SEEDWATCH_TEST_AZURITE is not set: run the tests through scripts/test.sh, which starts Azurite")
    })
}

fn fresh_table() -> String {
    format!("t{}", uuid::Uuid::new_v4().simple())
}

fn retry() -> RetryPolicy {
    RetryPolicy {
        count: 2,
        base: std::time::Duration::from_millis(50),
        max: std::time::Duration::from_millis(200),
    }
}

async fn table_ledger() -> TableLedger {
    TableLedger::connect(
        seedwatch::adapters::http::client(std::time::Duration::from_secs(30)),
        &azurite(),
        &fresh_table(),
        TableAuth::SharedKey {
            account: "devstoreaccount1".into(),
            key: Secret::new(DEV_KEY),
        },
        retry(),
    )
    .await
    .unwrap()
}

fn id(s: &str) -> ResourceId {
    ResourceId::parse(s).unwrap()
}

fn owner(s: &str, seeds: &[&str]) -> OwnerRecord {
    let seeds: Vec<OwnedSeed> = seeds
        .iter()
        .map(|n| OwnedSeed {
            seed: Seed::from_host_value(n).unwrap(),
            check: ServiceCheck::DnsRecords,
        })
        .collect();
    OwnerRecord {
        id: id(s),
        generation: 1,
        seeds_hash: seeds_hash(&seeds),
        seeds,
        pending_removal: vec![],
        seen_at_ms: 1,
        deleted: false,
        settled: false,
    }
}

const RG: &str = "/subscriptions/11111111-aaaa/resourceGroups/RG-Web";

/// Versions, conditions, deletes and prefix scans: identical on every backend.
async fn conformance(ledger: &dyn Ledger) {
    let pip = owner(
        &format!("{RG}/providers/Microsoft.Network/publicIPAddresses/pip1"),
        &["app.contoso.com"],
    );
    let v1 = ledger.put_owner(&pip, &Expect::Absent).await.unwrap();
    assert!(matches!(
        ledger.put_owner(&pip, &Expect::Absent).await,
        Err(LedgerError::Conflict { .. })
    ));
    // Case-insensitive ids address the same record.
    let read = ledger
        .owner(&id(&pip
            .id
            .as_str()
            .to_ascii_uppercase()
            .replace("/SUBSCRIPTIONS/", "/subscriptions/")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.value, pip);
    assert_eq!(read.version, v1);

    // Two writers hold v1: the first wins, the stale one gets a conflict.
    let mut newer = pip.clone();
    newer.generation = 2;
    let v2 = ledger.put_owner(&newer, &Expect::Version(v1.clone())).await.unwrap();
    assert_ne!(v1, v2);
    let mut stale = pip.clone();
    stale.generation = 99;
    assert!(matches!(
        ledger.put_owner(&stale, &Expect::Version(v1.clone())).await,
        Err(LedgerError::Conflict { .. })
    ));
    assert_eq!(ledger.owner(&pip.id).await.unwrap().unwrap().value.generation, 2);
    assert!(matches!(
        ledger.delete_owner(&pip.id, Some(&v1)).await,
        Err(LedgerError::Conflict { .. })
    ));

    // Owners under a prefix: the resource group, not its namesake `RG-Web2` or another
    // subscription.
    for extra in [
        format!("{RG}/providers/Microsoft.Network/dnszones/contoso.com/A/www"),
        format!("{RG}/providers/Microsoft.Network/dnszones/contoso.com"),
        format!("{RG}2/providers/Microsoft.Network/publicIPAddresses/pip1"),
        "/subscriptions/22222222-bbbb/resourceGroups/RG-Web/providers/Microsoft.Network/publicIPAddresses/pip1"
            .to_string(),
    ] {
        ledger
            .put_owner(&owner(&extra, &["x.contoso.com"]), &Expect::Absent)
            .await
            .unwrap();
    }
    let mut within: Vec<String> = ledger
        .owners_within(&id(RG))
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.value.id.key().to_string())
        .collect();
    within.sort();
    assert_eq!(within.len(), 3, "{within:?}");
    assert!(
        within
            .iter()
            .all(|k| k.starts_with("/subscriptions/11111111-aaaa/resourcegroups/rg-web/"))
    );
    let zone = ledger
        .owners_within(&id(&format!("{RG}/providers/Microsoft.Network/dnszones/contoso.com")))
        .await
        .unwrap();
    assert_eq!(zone.len(), 2);
    let subscription = ledger.owners_within(&id("/subscriptions/22222222-bbbb")).await.unwrap();
    assert_eq!(subscription.len(), 1);
    assert_eq!(ledger.all_owners().await.unwrap().len(), 5);

    // Delete at the current version; a second delete is not an error.
    ledger.delete_owner(&pip.id, Some(&v2)).await.unwrap();
    assert!(ledger.owner(&pip.id).await.unwrap().is_none());
    ledger.delete_owner(&pip.id, Some(&v2)).await.unwrap();
    // Replacing a vanished entity is a conflict, not a silent insert.
    assert!(matches!(
        ledger.put_owner(&newer, &Expect::Version(v2)).await,
        Err(LedgerError::Conflict { .. })
    ));

    // Seeds, including a CIDR (a `/` in the key).
    let mut range = SeedRecord::new(Seed::from_range("20.1.0.0/24").unwrap());
    range.set_membership(&pip.id, 1, Some(vec![ServiceCheck::PublicIpAddresses]), 5);
    let sv = ledger.put_seed(&range, &Expect::Absent).await.unwrap();
    let back = ledger.seed(&range.seed).await.unwrap().unwrap();
    assert_eq!(back.value, range);
    range.asm.held = true;
    ledger.put_seed(&range, &Expect::Version(sv)).await.unwrap();
    ledger
        .put_seed(
            &SeedRecord::new(Seed::from_host_value("b.contoso.com").unwrap()),
            &Expect::Any,
        )
        .await
        .unwrap();
    let all = ledger.all_seeds().await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(
        all.iter()
            .any(|s| s.value.asm.held && s.value.seed.name() == "20.1.0.0/24")
    );
    assert!(
        ledger
            .seed(&Seed::from_host_value("nope.contoso.com").unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

/// Many tasks increment one record through compare-and-swap: no update is lost.
async fn concurrent_writers_converge(ledger: Arc<dyn Ledger>) {
    let seed = Seed::from_host_value("counter.contoso.com").unwrap();
    ledger
        .put_seed(&SeedRecord::new(seed.clone()), &Expect::Absent)
        .await
        .unwrap();
    let conflicts = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8u64)
        .map(|n| {
            let ledger = ledger.clone();
            let seed = seed.clone();
            let conflicts = conflicts.clone();
            tokio::spawn(async move {
                let owner = id(&format!("{RG}/providers/Microsoft.Network/publicIPAddresses/p{n}"));
                loop {
                    let current = ledger.seed(&seed).await.unwrap().unwrap();
                    let mut record = current.value;
                    record.set_membership(&owner, 1, Some(vec![ServiceCheck::PublicIpAddresses]), 1);
                    match ledger.put_seed(&record, &Expect::Version(current.version)).await {
                        Ok(_) => break,
                        Err(LedgerError::Conflict { .. }) => {
                            conflicts.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let record = ledger.seed(&seed).await.unwrap().unwrap().value;
    assert_eq!(record.contributors().count(), 8);
}

/// Failed changes: latest wins per resource, listed apart from owners and seeds, deleted at the
/// version read (a re-recorded failure survives), long ids hashed into a safe key.
async fn failed_changes_conform(ledger: &dyn Ledger) {
    let pip = id(&format!("{RG}/providers/Microsoft.Network/publicIPAddresses/pip1"));
    let long = id(&format!("{RG}/providers/Microsoft.Web/sites/{}", "n".repeat(1500)));
    // An owner and a seed alongside, so a scan that strays into their partitions shows.
    ledger
        .put_owner(&owner(pip.as_str(), &["app.contoso.com"]), &Expect::Any)
        .await
        .unwrap();
    ledger
        .put_seed(
            &SeedRecord::new(Seed::from_host_value("app.contoso.com").unwrap()),
            &Expect::Any,
        )
        .await
        .unwrap();
    let first = FailedChange::new(pip.clone(), FailedChangeKind::Changed, "ASM answered 503", 4, 1_000);
    let v1 = ledger.put_failure(&first).await.unwrap();
    let again = FailedChange::new(
        id(&pip
            .as_str()
            .to_ascii_uppercase()
            .replace("/SUBSCRIPTIONS/", "/subscriptions/")),
        FailedChangeKind::Deleted,
        "throttled by Azure reading the resource",
        2,
        2_000,
    );
    let v2 = ledger.put_failure(&again).await.unwrap();
    assert_ne!(v1, v2);
    let cause = format!("ASM answered 500: {}", "é".repeat(3000));
    let long_failure = FailedChange::new(long.clone(), FailedChangeKind::Changed, &cause, 9, 3_000);
    ledger.put_failure(&long_failure).await.unwrap();

    // Keys stay within Table Storage's 512 characters, for owners with long ids too.
    ledger
        .put_owner(&owner(long.as_str(), &[]), &Expect::Absent)
        .await
        .unwrap();
    assert_eq!(ledger.owner(&long).await.unwrap().unwrap().value.id, long);
    ledger.delete_owner(&long, None).await.unwrap();

    let mut all = ledger.failures().await.unwrap();
    all.sort_by_key(|f| f.value.failed_at_ms);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(
        all[0].value, again,
        "the latest failure of a resource replaces the earlier one"
    );
    assert_eq!(all[0].version, v2);
    assert_eq!(all[1].value, long_failure, "a long id and a long cause round-trip");
    assert_eq!(ledger.all_owners().await.unwrap().len(), 1);
    assert_eq!(ledger.all_seeds().await.unwrap().len(), 1);

    // A delete at the first version read loses to the re-recorded failure.
    assert!(matches!(
        ledger.delete_failure(&pip, Some(&v1)).await,
        Err(LedgerError::Conflict { .. })
    ));
    ledger.delete_failure(&pip, Some(&v2)).await.unwrap();
    ledger.delete_failure(&pip, Some(&v2)).await.unwrap();
    ledger.delete_failure(&long, None).await.unwrap();
    assert!(ledger.failures().await.unwrap().is_empty());
    assert_eq!(ledger.all_owners().await.unwrap().len(), 1, "owners are untouched");
}

#[tokio::test]
async fn memory_backend_conforms() {
    conformance(&MemoryLedger::new()).await;
    concurrent_writers_converge(Arc::new(MemoryLedger::new())).await;
    failed_changes_conform(&MemoryLedger::new()).await;
}

#[tokio::test]
async fn local_backend_conforms_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("ledger.redb");
    {
        let ledger = LocalLedger::open(&path).unwrap();
        conformance(&ledger).await;
    }
    let reopened = LocalLedger::open(&path).unwrap();
    assert_eq!(reopened.all_owners().await.unwrap().len(), 4);
    assert_eq!(reopened.all_seeds().await.unwrap().len(), 2);
    // Versions keep growing across reopen: an old version never matches a new entity.
    let rec = owner(&format!("{RG}/providers/Microsoft.Network/publicIPAddresses/new"), &[]);
    let v = reopened.put_owner(&rec, &Expect::Absent).await.unwrap();
    assert_eq!(v.0.parse::<u64>().unwrap(), 10, "nine writes happened before this one");
    drop(reopened);
    concurrent_writers_converge(Arc::new(LocalLedger::open(&dir.path().join("other.redb")).unwrap())).await;
    failed_changes_conform(&LocalLedger::open(&dir.path().join("failures.redb")).unwrap()).await;
}

#[tokio::test]
async fn table_backend_conforms_on_azurite() {
    let ledger = table_ledger().await;
    conformance(&ledger).await;
    concurrent_writers_converge(Arc::new(table_ledger().await)).await;
    failed_changes_conform(&table_ledger().await).await;
}

#[tokio::test]
async fn table_backend_opens_from_a_connection_string_and_creates_its_table() {
    let table = fresh_table();
    let yaml = serde_json::json!({ "ledger": { "table": table } });
    let vars: HashMap<String, String> = [(
        env::AZURE_WEB_JOBS_STORAGE.to_string(),
        format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};TableEndpoint={}",
            azurite()
        ),
    )]
    .into();
    let config = Config::from_value(&yaml, "test", &vars).unwrap();
    let ledger = seedwatch::adapters::store::open(&config, &vars, None).await.unwrap();
    assert!(ledger.describe().contains(&table));
    assert!(!ledger.describe().contains(DEV_KEY));
    ledger
        .put_owner(&owner(&format!("{RG}/providers/x.y/z/a"), &[]), &Expect::Absent)
        .await
        .unwrap();
    // Opening again finds the existing table (409 TableAlreadyExists is fine).
    let again = seedwatch::adapters::store::open(&config, &vars, None).await.unwrap();
    assert_eq!(again.all_owners().await.unwrap().len(), 1);

    // A wrong key is an authentication error that does not echo the key.
    let wrong = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==";
    let bad_vars: HashMap<String, String> = [(
        env::AZURE_WEB_JOBS_STORAGE.to_string(),
        format!(
            "AccountName=devstoreaccount1;AccountKey={wrong};TableEndpoint={}",
            azurite()
        ),
    )]
    .into();
    let err = match seedwatch::adapters::store::open(&config, &bad_vars, None).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a wrong key must be rejected"),
    };
    assert!(err.contains("403"), "{err}");
    assert!(!err.contains(wrong));
}

#[tokio::test]
async fn table_queries_follow_continuations_past_1000_entities() {
    let ledger = Arc::new(table_ledger().await);
    let total = 1_150;
    futures::stream::iter(0..total)
        .map(|n| {
            let ledger = ledger.clone();
            async move {
                let seed = Seed::from_host_value(&format!("host{n}.contoso.com")).unwrap();
                ledger.put_seed(&SeedRecord::new(seed), &Expect::Absent).await.unwrap();
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let all = ledger.all_seeds().await.unwrap();
    assert_eq!(all.len(), total);
    let mut names: Vec<&str> = all.iter().map(|s| s.value.seed.name()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), total);
}

#[tokio::test]
async fn table_queries_with_small_pages_return_everything_once() {
    let ledger = table_ledger().await.with_page_size(3);
    for n in 0..10 {
        let rec = owner(&format!("{RG}/providers/Microsoft.Network/publicIPAddresses/p{n}"), &[]);
        ledger.put_owner(&rec, &Expect::Absent).await.unwrap();
    }
    assert_eq!(ledger.owners_within(&id(RG)).await.unwrap().len(), 10);
    assert_eq!(ledger.all_owners().await.unwrap().len(), 10);
}

/// A fake table service whose first query page is empty but carries a continuation.
#[tokio::test]
async fn empty_pages_with_a_continuation_are_followed() {
    use axum::extract::{Query, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;

    #[derive(Default)]
    struct Seen {
        queries: std::sync::Mutex<Vec<HashMap<String, String>>>,
    }
    async fn tables() -> impl IntoResponse {
        (
            StatusCode::CONFLICT,
            [("x-ms-error-code", "TableAlreadyExists")],
            r#"{"odata.error":{"code":"TableAlreadyExists","message":{"lang":"en-US","value":"exists"}}}"#,
        )
    }
    async fn query(
        State(seen): State<Arc<Seen>>,
        headers: HeaderMap,
        Query(q): Query<HashMap<String, String>>,
    ) -> impl IntoResponse {
        assert!(
            headers
                .get("authorization")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("SharedKey acct:")
        );
        assert!(headers.contains_key("x-ms-date") && headers.contains_key("x-ms-version"));
        let page = seen.queries.lock().unwrap().len();
        seen.queries.lock().unwrap().push(q);
        let record = SeedRecord::new(Seed::from_host_value("late.contoso.com").unwrap());
        let entity = serde_json::json!({
            "odata.etag": "W/\"datetime'2025-03-01T10%3A15%3A07.1234567Z'\"",
            "PartitionKey": "s", "RowKey": "domain_3Alate.contoso.com",
            "Chunks": 1, "D0": serde_json::to_string(&record).unwrap(),
        });
        match page {
            0 => (
                [
                    ("x-ms-continuation-NextPartitionKey", "1!4!cw--"),
                    ("x-ms-continuation-NextRowKey", "1!8!ZG9t"),
                ],
                axum::Json(serde_json::json!({"value": []})),
            )
                .into_response(),
            _ => axum::Json(serde_json::json!({"odata.metadata": "x", "value": [entity]})).into_response(),
        }
    }
    let seen = Arc::new(Seen::default());
    let app = axum::Router::new()
        .route("/acct/Tables", axum::routing::post(tables))
        .route("/acct/{query}", axum::routing::get(query))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let ledger = TableLedger::connect(
        seedwatch::adapters::http::client(std::time::Duration::from_secs(5)),
        &format!("http://{addr}/acct"),
        "seeds",
        TableAuth::SharedKey {
            account: "acct".into(),
            key: Secret::new(DEV_KEY),
        },
        retry(),
    )
    .await
    .unwrap();
    let all = ledger.all_seeds().await.unwrap();
    assert_eq!(all.len(), 1);
    let queries = seen.queries.lock().unwrap();
    assert_eq!(queries.len(), 2);
    assert_eq!(
        queries[0].get("$filter").map(String::as_str),
        Some("PartitionKey eq 's'")
    );
    assert_eq!(queries[1].get("NextPartitionKey").map(String::as_str), Some("1!4!cw--"));
    assert_eq!(queries[1].get("NextRowKey").map(String::as_str), Some("1!8!ZG9t"));
    assert_eq!(queries[1].get("$filter"), queries[0].get("$filter"));
}

use crate::support::{gated_ledger, sim};

/// Issue 12.7: the rebuild neither breaks on the ledger's own records nor overwrites fresher
/// state. Driven through `sync_with_ledger` (what `seedwatch sync` and the timer run) over the
/// simulation's quiet ARM and ASM.
mod rebuild_safety {
    use std::sync::Arc;

    use seedwatch::config::Config;
    use seedwatch::domain::resource::{Resource, ResourceId};
    use seedwatch::domain::seed::Seed;
    use seedwatch::engine::apply::{Applier, ApplyRequest, SystemClock};
    use seedwatch::engine::rebuild::{LedgerSync, RebuildOptions, rebuild, sync_with_ledger};
    use seedwatch::engine::sync::{NoSyncProgress, SyncOptions};
    use seedwatch::ledger::{Expect, Ledger, keys};
    use serde_json::json;

    use super::gated_ledger::GatedLedger;
    use super::sim;

    struct World {
        estate: Arc<sim::Estate>,
        azure: Arc<sim::SimAzure>,
        asm: Arc<sim::SimAsm>,
    }

    fn pip(n: usize) -> ResourceId {
        ResourceId::parse(&format!(
            "/subscriptions/5e1f0000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/pip{n}"
        ))
        .unwrap()
    }

    /// Owner `n`'s one seed: a public address.
    fn name(n: usize) -> String {
        format!("20.0.0.{n}")
    }

    fn world(ledger: Arc<dyn Ledger>, owners: &[usize]) -> World {
        let dice = sim::Dice::new(1);
        let estate = Arc::new(sim::Estate::default());
        for n in owners {
            put(&estate, *n);
        }
        World {
            azure: Arc::new(sim::SimAzure {
                estate: estate.clone(),
                dice: dice.clone(),
                fault_rate: std::sync::Mutex::new(0.0),
                reads: std::sync::atomic::AtomicUsize::new(0),
            }),
            asm: Arc::new(sim::SimAsm::new(dice, ledger)),
            estate,
        }
    }

    /// Owner `n`: a public IP address, as ARM and Resource Graph show it.
    fn put(estate: &sim::Estate, n: usize) {
        let resource = Resource::from_json(json!({
            "id": pip(n).as_str(),
            "type": "Microsoft.Network/publicIPAddresses",
            "properties": {"ipAddress": name(n), "publicIPAllocationMethod": "Static"}
        }))
        .unwrap();
        estate.resources.lock().unwrap().insert(pip(n), resource);
    }

    fn config() -> Config {
        Config::from_value(
            &json!({"scan_id": "sim", "seed_tag": sim::TAG, "delete_stale_seeds": true, "sync": {"max_delete_fraction": 1.0}}),
            "test",
            &std::collections::HashMap::new(),
        )
        .unwrap()
    }

    async fn sync(azure: &sim::SimAzure, asm: &sim::SimAsm, ledger: &dyn Ledger) -> LedgerSync {
        sync_with_ledger(
            &config(),
            azure,
            asm,
            Some(ledger),
            SyncOptions::default(),
            &NoSyncProgress,
        )
        .await
        .unwrap()
    }

    fn applier(w: &World, ledger: Arc<dyn Ledger>) -> Applier {
        let mut applier = Applier::new(
            w.azure.clone(),
            w.asm.clone(),
            ledger,
            seedwatch::domain::check::EnabledChecks::all(),
            sim::TAG.to_string(),
        );
        applier.clock = Arc::new(SystemClock);
        applier.options.delete_stale_seeds = true;
        applier.options.max_delete_fraction = 1.0; // the breaker open
        applier
    }

    fn seed(n: usize) -> Seed {
        Seed::from_host_value(&name(n)).unwrap()
    }

    /// 12.7 (a): a stored record that no longer decodes or normalises is skipped with a warning
    /// and removed by the rebuild, which then records what it stood for afresh.
    #[tokio::test]
    async fn records_that_no_longer_decode_are_skipped_and_repaired() {
        let ledger: Arc<dyn Ledger> = Arc::new(seedwatch::ledger::memory::MemoryLedger::new());
        let w = world(ledger.clone(), &[1]);
        // A seed stored before `core.windows.net` became a shared parent, and an owner record
        // in a format that no longer decodes.
        let bad_seed = (
            keys::SEED_PARTITION.to_string(),
            "domain_3Acore.windows.net".to_string(),
        );
        let data = json!({"seed": {"name": "core.windows.net", "kind": "domain"}, "owners": {}}).to_string();
        ledger
            .put_raw(&bad_seed.0, &bad_seed.1, &data, &Expect::Absent)
            .await
            .unwrap();
        let bad_owner = keys::owner_key(&pip(9));
        let data = json!({"id": pip(9).as_str(), "generation": "two"}).to_string();
        ledger
            .put_raw(&bad_owner.0, &bad_owner.1, &data, &Expect::Absent)
            .await
            .unwrap();
        assert!(
            ledger.all_seeds().await.unwrap().is_empty(),
            "the scan skips the bad record"
        );

        let done = sync(&w.azure, &w.asm, ledger.as_ref()).await;
        assert!(done.ledger_warnings.is_empty(), "{:?}", done.ledger_warnings);
        let rebuilt = done.rebuild.expect("the rebuild ran");
        assert_eq!(rebuilt.records_repaired, 2);
        assert!(ledger.get_raw(&bad_seed.0, &bad_seed.1).await.unwrap().is_none());
        assert!(ledger.get_raw(&bad_owner.0, &bad_owner.1).await.unwrap().is_none());
        let recorded = ledger.seed(&seed(1)).await.unwrap().expect("the good seed is recorded");
        assert!(recorded.value.asm.held && recorded.value.is_wanted());
    }

    /// 12.7 (b): the rebuild takes "ASM holds it" from a listing made before the sync's writes;
    /// an apply that deleted the seed after that listing is newer and stands. Forced with the
    /// gated ledger: the rebuild is held at its first write while the apply runs.
    #[tokio::test]
    async fn the_rebuild_does_not_override_an_apply_newer_than_its_listing() {
        let inner: Arc<dyn Ledger> = Arc::new(seedwatch::ledger::memory::MemoryLedger::new());
        let w = world(inner.clone(), &[1, 2]);
        sync(&w.azure, &w.asm, inner.as_ref()).await;
        assert_eq!(w.asm.names(true), [name(1), name(2)].into_iter().collect());

        // A new resource, so the next rebuild writes its owner first: hold that write.
        put(&w.estate, 3);
        let (gated, gate) = GatedLedger::new(inner.clone(), keys::owner_key(&pip(3)));
        let syncing = sync(&w.azure, &w.asm, gated.as_ref());
        let meanwhile = async {
            gate.reached.await.expect("the rebuild reached its first write");
            // Meanwhile pip1 is deleted and its event applied: the seed leaves ASM.
            w.estate.resources.lock().unwrap().remove(&pip(1));
            let report = applier(&w, inner.clone())
                .apply(&ApplyRequest::deleted(pip(1)))
                .await
                .unwrap();
            let _ = gate.release.send(());
            report
        };
        let (done, report) = tokio::join!(syncing, meanwhile);
        assert_eq!(report.deleted.len(), 1, "{report:?}");
        assert!(done.ledger_warnings.is_empty(), "{:?}", done.ledger_warnings);

        assert!(!w.asm.names(true).contains(&name(1)));
        let record = inner.seed(&seed(1)).await.unwrap();
        assert!(
            record.as_ref().is_none_or(|r| !r.value.asm.held),
            "the ledger says ASM holds a seed it does not: {record:?}"
        );
    }

    /// 12.7 (b), the tie: an apply that recorded ASM's state in the millisecond the listing was
    /// requested may have written ASM after the listing answered. Its state stands, as an
    /// owner read in the sweep's snapshot millisecond does.
    #[tokio::test]
    async fn an_apply_recorded_in_the_listings_millisecond_is_not_overridden() {
        let ledger: Arc<dyn Ledger> = Arc::new(seedwatch::ledger::memory::MemoryLedger::new());
        let w = world(ledger.clone(), &[1]);
        sync(&w.azure, &w.asm, ledger.as_ref()).await;
        // A second sync lists the seed as held: the report the rebuild works from.
        let report = sync(&w.azure, &w.asm, ledger.as_ref()).await.report;
        assert!(report.asm_held().contains(&seed(1)));

        // An apply deleted the seed and recorded it in the listing's millisecond.
        let current = ledger.seed(&seed(1)).await.unwrap().expect("recorded");
        let mut record = current.value.clone();
        record.asm.held = false;
        record.asm.id = None;
        record.asm.at_ms = report.listed_at_ms;
        ledger
            .put_seed(&record, &Expect::Version(current.version))
            .await
            .unwrap();

        let options = RebuildOptions {
            completeness: &report.completeness,
            seed_tag: sim::TAG,
            sweep_started_ms: report.listed_at_ms,
            graph_lag: std::time::Duration::ZERO,
            now_ms: report.listed_at_ms,
            lease: std::time::Duration::from_secs(60),
            tombstone_ttl: std::time::Duration::from_secs(86_400),
        };
        let rebuilt = rebuild(ledger.as_ref(), &report, &options).await.unwrap();
        assert_eq!(rebuilt.seeds_newer, 1, "{rebuilt:?}");
        let after = ledger.seed(&seed(1)).await.unwrap().expect("recorded");
        assert!(!after.value.asm.held, "the listing overrode the apply: {after:?}");
    }
}
