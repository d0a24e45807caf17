//! `seedwatch sync` and its parts: the ASM client against the fake ASM server, the engine, and
//! (further down) the built binary against the fake ASM and fake Azure servers.

use crate::support::{cli, fake_asm, fake_azure};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use fake_asm::{FakeAsm, Fault, ListShape, Route};
use seedwatch::adapters::asm::{AddOutcome, AsmApi, AsmClient, AsmError, DeleteOutcome};
use seedwatch::adapters::azure::{
    AzureError, AzureReader, CompletenessReport, Incomplete, IncompleteScope, OwnerRead, Sweep, SweepProgress,
};
use seedwatch::config::{Config, HttpSettings};
use seedwatch::domain::check::{EnabledChecks, ServiceCheck};
use seedwatch::domain::extract::{Contribution, Extraction};
use seedwatch::domain::reconcile::SkipReason;
use seedwatch::domain::resource::ResourceId;
use seedwatch::domain::secret::Secret;
use seedwatch::domain::seed::Seed;
use seedwatch::engine::sync::{NoSyncProgress, SyncError, SyncOptions, WriteResult, reconcile_and_apply, run_sync};

const KEY: &str = "test-key-7f3a9c-never-printed";
const SCAN: &str = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
const TAG: &str = "cloud-connector";
const SUB: &str = "00000000-0000-0000-0000-0000000000a1";

/// Quick retries. The timeout is generous so that no answer from the local fakes, however
/// loaded the machine, is abandoned and retried: request counts stay exact.
fn fast_http() -> HttpSettings {
    HttpSettings {
        retry_count: 4,
        retry_base_delay: Duration::from_millis(10),
        retry_max_delay: Duration::from_millis(40),
        timeout: Duration::from_secs(15),
    }
}

/// [`fast_http`] with a short timeout, for the one test of an answer slower than the timeout.
fn impatient_http() -> HttpSettings {
    HttpSettings {
        timeout: Duration::from_secs(1),
        ..fast_http()
    }
}

fn client(asm: &FakeAsm, key: &str) -> AsmClient {
    AsmClient::new(&asm.base_url(), SCAN, Secret::new(key), &fast_http())
}

async fn fake() -> FakeAsm {
    let asm = FakeAsm::start(KEY).await;
    asm.add_scan(SCAN);
    asm
}

fn seed(name: &str) -> Seed {
    Seed::from_host_value(name).unwrap()
}

fn config(asm: &FakeAsm, delete: bool) -> Config {
    let yaml = serde_json::json!({
        "scan_id": SCAN,
        "delete_stale_seeds": delete,
        "asm": {"base_url": asm.base_url()},
    });
    let env = std::collections::HashMap::from([("API_KEY".to_string(), KEY.to_string())]);
    let mut config = Config::from_value(&yaml, "test", &env).unwrap();
    config.http = fast_http();
    config
}

fn extraction(names: &[&str]) -> Extraction {
    let owner = ResourceId::parse(&format!(
        "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/dnszones/contoso.com"
    ))
    .unwrap();
    Extraction {
        contributions: names
            .iter()
            .map(|n| Contribution {
                seed: seed(n),
                owner: owner.clone(),
                check: ServiceCheck::DnsZones,
                path: "name".into(),
            })
            .collect(),
        warnings: vec![],
    }
}

fn complete() -> CompletenessReport {
    CompletenessReport {
        subscriptions: vec![SUB.into()],
        incomplete: vec![],
        scope_unknown: false,
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// The ASM client against the fake server.

#[tokio::test]
async fn client_checks_key_and_scan() {
    let asm = fake().await;
    client(&asm, KEY).check_auth().await.unwrap();
    client(&asm, KEY).check_scan().await.unwrap();

    let wrong = client(&asm, "wrong-key").check_auth().await.unwrap_err();
    assert!(matches!(wrong, AsmError::Unauthorized { status: 401 }), "{wrong:?}");

    asm.set_not_authenticated(true);
    let refused = client(&asm, KEY).check_auth().await.unwrap_err();
    assert!(matches!(refused, AsmError::Unauthorized { status: 200 }), "{refused:?}");
    asm.set_not_authenticated(false);

    let other_scan = AsmClient::new(&asm.base_url(), "no-such-scan", Secret::new(KEY), &fast_http());
    let err = other_scan.check_scan().await.unwrap_err();
    assert!(matches!(err, AsmError::ScanNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-scan"));
}

#[tokio::test]
async fn client_lists_every_listing_shape() {
    let asm = fake().await;
    asm.insert_seed(SCAN, "a.contoso.com", "domain", &[TAG]);
    asm.insert_seed(SCAN, "203.0.113.5", "IPv4", &["manual"]);
    for shape in [
        ListShape::Array,
        ListShape::DataWrapper,
        ListShape::SeedsWrapper,
        ListShape::TagObjects,
    ] {
        asm.set_list_shape(shape);
        let mut seeds = client(&asm, KEY).list_seeds().await.unwrap();
        seeds.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(seeds.len(), 2, "{shape:?}");
        assert_eq!(seeds[0].name, "203.0.113.5");
        assert_eq!(seeds[0].kind, Some(seedwatch::domain::seed::SeedKind::Ipv4));
        assert!(seeds[1].has_tag(TAG), "{shape:?}: {seeds:?}");
        assert!(!seeds[0].has_tag(TAG));
    }
}

#[tokio::test]
async fn client_add_and_delete_outcomes() {
    let asm = fake().await;
    let c = client(&asm, KEY);
    let tags = vec![TAG.to_string()];
    assert_eq!(
        c.add_seed(&seed("www.contoso.com"), &tags).await.unwrap(),
        AddOutcome::Added
    );
    assert_eq!(
        c.add_seed(&seed("2001:db8::7"), &tags).await.unwrap(),
        AddOutcome::Added
    );
    assert_eq!(
        c.add_seed(&seed("www.contoso.com"), &tags).await.unwrap(),
        AddOutcome::AlreadyExists
    );
    let stored = asm.seeds(SCAN);
    assert_eq!(stored[0].kind, "domain");
    assert_eq!(stored[1].kind, "ipv6");
    assert_eq!(stored[0].tags, vec![TAG]);

    asm.reject_name("coded.contoso.com", Some("ERR123"));
    match c.add_seed(&seed("coded.contoso.com"), &tags).await.unwrap() {
        AddOutcome::Rejected { code, .. } => assert_eq!(code, "ERR123"),
        other => panic!("{other:?}"),
    }
    asm.reject_name("uncoded.contoso.com", None);
    let err = c.add_seed(&seed("uncoded.contoso.com"), &tags).await.unwrap_err();
    assert!(matches!(err, AsmError::Http { status: 400, .. }), "{err:?}");

    asm.set_seed_limit(Some(2));
    match c.add_seed(&seed("more.contoso.com"), &tags).await.unwrap() {
        AddOutcome::Rejected { code, .. } => assert_eq!(code, "SEED_LIMIT_REACHED"),
        other => panic!("{other:?}"),
    }

    let id = stored[0].id.clone();
    assert_eq!(c.delete_seed(&id).await.unwrap(), DeleteOutcome::Deleted);
    assert_eq!(c.delete_seed(&id).await.unwrap(), DeleteOutcome::AlreadyGone);
    assert_eq!(asm.seed_names(SCAN).len(), 1);
}

#[tokio::test]
async fn client_retries_429_with_retry_after() {
    let asm = fake().await;
    asm.fail_next(
        Route::Add,
        1,
        Fault::TooManyRequests {
            retry_after: Some("1".into()),
        },
    );
    let started = Instant::now();
    let outcome = client(&asm, KEY)
        .add_seed(&seed("a.contoso.com"), &[TAG.into()])
        .await
        .unwrap();
    assert_eq!(outcome, AddOutcome::Added);
    // The backoff alone would have waited 10 ms; Retry-After asked for a second.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(asm.statuses(Route::Add), vec![429, 201]);
}

#[tokio::test]
async fn client_retries_5xx_bursts_drops_and_slowness_but_not_501() {
    let asm = fake().await;
    let c = client(&asm, KEY);
    asm.fail_next(Route::List, 1, Fault::Status(500));
    asm.fail_next(Route::List, 1, Fault::Status(502));
    asm.fail_next(Route::List, 1, Fault::Status(503));
    c.list_seeds().await.unwrap();
    assert_eq!(asm.statuses(Route::List), vec![500, 502, 503, 200]);

    asm.fail_next(Route::Add, 2, Fault::Drop);
    assert_eq!(
        c.add_seed(&seed("d.contoso.com"), &[]).await.unwrap(),
        AddOutcome::Added
    );
    assert_eq!(asm.requests(Route::Add), 3);

    // Slower than the client's timeout: the attempt is abandoned and retried. The delayed answer
    // would come a minute later, far past the timeout, so the first attempt is abandoned however
    // slow the machine; a loaded machine may abandon a retry too, so at least two requests.
    let impatient = AsmClient::new(&asm.base_url(), SCAN, Secret::new(KEY), &impatient_http());
    asm.fail_next(Route::Scan, 1, Fault::Delay(Duration::from_secs(60)));
    impatient.check_scan().await.unwrap();
    assert!(asm.requests(Route::Scan) >= 2, "{}", asm.requests(Route::Scan));

    asm.fail_next(Route::Auth, 1, Fault::Status(501));
    let err = c.check_auth().await.unwrap_err();
    assert!(matches!(err, AsmError::Http { status: 501, .. }), "{err:?}");
    assert_eq!(asm.requests(Route::Auth), 1);
}

#[tokio::test]
async fn client_gives_up_after_the_retry_budget() {
    let asm = fake().await;
    asm.set_outage(true);
    let err = client(&asm, KEY).list_seeds().await.unwrap_err();
    assert!(matches!(err, AsmError::Http { status: 503, .. }), "{err:?}");
    assert_eq!(
        asm.requests(Route::List),
        5,
        "one attempt plus http.retry_count = 4 retries"
    );
}

#[tokio::test]
async fn the_key_never_appears_in_errors() {
    let asm = fake().await;
    let mut errors: Vec<String> = Vec::new();
    let c = client(&asm, KEY);
    errors.push(format!("{c:?}"));
    let wrong = client(&asm, &format!("{KEY}-wrong"));
    let e = wrong.check_auth().await.unwrap_err();
    errors.push(format!("{e} {e:?}"));
    asm.reject_name("x.contoso.com", None);
    let e = c.add_seed(&seed("x.contoso.com"), &[]).await.unwrap_err();
    errors.push(format!("{e} {e:?}"));
    asm.set_outage(true);
    let e = c.check_scan().await.unwrap_err();
    errors.push(format!("{e} {e:?}"));
    let down = AsmClient::new("http://127.0.0.1:9/api", SCAN, Secret::new(KEY), &fast_http());
    let e = down.list_seeds().await.unwrap_err();
    assert!(matches!(e, AsmError::Transport { .. }), "{e:?}");
    errors.push(format!("{e} {e:?}"));
    for text in errors {
        assert!(!text.contains(KEY), "{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// The engine with the real client against the fake ASM.

async fn sync_once(
    asm: &FakeAsm,
    config: &Config,
    names: &[&str],
    report: CompletenessReport,
    options: SyncOptions,
) -> seedwatch::engine::sync::SyncReport {
    let c = client(asm, KEY);
    reconcile_and_apply(config, &c, report, extraction(names), options, &NoSyncProgress)
        .await
        .unwrap()
}

fn ten_owned(asm: &FakeAsm) -> Vec<String> {
    (0..10)
        .map(|i| {
            let name = format!("owned{i}.contoso.com");
            asm.insert_seed(SCAN, &name, "domain", &[TAG]);
            name
        })
        .collect()
}

#[tokio::test]
async fn engine_adds_deletes_and_leaves_hand_added_seeds() {
    let asm = fake().await;
    let owned = ten_owned(&asm);
    asm.insert_seed(SCAN, "stale.contoso.com", "domain", &[TAG]);
    asm.insert_seed(SCAN, "manual.example.org", "domain", &["manual"]);
    asm.insert_seed(SCAN, "WWW.Contoso.com.", "domain", &[]);
    let mut names: Vec<&str> = owned.iter().map(String::as_str).collect();
    names.extend(["www.contoso.com", "new.contoso.com", "198.51.100.7"]);
    let cfg = config(&asm, true);

    let report = sync_once(&asm, &cfg, &names, complete(), SyncOptions::default()).await;
    assert!(report.all_applied(), "{:?}", report.failed);
    assert_eq!(report.added.len(), 2);
    assert_eq!(report.deleted.len(), 1);
    assert_eq!(report.kept, 11);
    let held = asm.seed_names(SCAN);
    assert!(held.contains("manual.example.org") && held.contains("WWW.Contoso.com."));
    assert!(!held.contains("stale.contoso.com"));
    assert!(held.contains("new.contoso.com") && held.contains("198.51.100.7"));
    assert_eq!(asm.applied_writes(SCAN), 3);
    // What the rebuild reads: ASM's seeds after the run, from the listing and the writes.
    let all_held = report.asm_held();
    assert!(all_held.contains(&seed("new.contoso.com")));
    assert!(!all_held.contains(&seed("stale.contoso.com")));
    let in_asm: std::collections::BTreeSet<_> = held
        .iter()
        .filter_map(|name| Seed::from_host_value(name).ok())
        .collect();
    assert_eq!(all_held.into_iter().collect::<std::collections::BTreeSet<_>>(), in_asm);

    // A second run changes nothing and writes nothing.
    asm.clear_journal();
    let again = sync_once(&asm, &cfg, &names, complete(), SyncOptions::default()).await;
    assert!(again.plan.is_empty());
    assert_eq!(asm.write_attempts(), 0);
}

#[tokio::test]
async fn engine_dry_run_writes_nothing() {
    let asm = fake().await;
    let owned = ten_owned(&asm);
    asm.insert_seed(SCAN, "stale.contoso.com", "domain", &[TAG]);
    let mut names: Vec<&str> = owned.iter().map(String::as_str).collect();
    names.push("new.contoso.com");
    let options = SyncOptions {
        dry_run: true,
        ..SyncOptions::default()
    };
    let report = sync_once(&asm, &config(&asm, true), &names, complete(), options).await;
    assert_eq!(report.planned_add.len(), 1);
    assert_eq!(report.planned_delete.len(), 1);
    assert!(report.added.is_empty() && report.deleted.is_empty());
    assert_eq!(asm.write_attempts(), 0);
}

#[tokio::test]
async fn engine_rejection_with_code_is_a_warning_not_a_failure() {
    let asm = fake().await;
    asm.reject_name("limited.contoso.com", Some("SEED_LIMIT_REACHED"));
    let report = sync_once(
        &asm,
        &config(&asm, false),
        &["ok.contoso.com", "limited.contoso.com"],
        complete(),
        SyncOptions::default(),
    )
    .await;
    assert!(report.all_applied());
    assert_eq!(report.added.len(), 1);
    assert!(
        report.warnings.iter().any(|w| w.contains("SEED_LIMIT_REACHED")),
        "{:?}",
        report.warnings
    );
}

#[tokio::test]
async fn engine_failure_without_code_fails_that_seed_and_holds_deletes() {
    let asm = fake().await;
    let owned = ten_owned(&asm);
    asm.insert_seed(SCAN, "stale.contoso.com", "domain", &[TAG]);
    asm.reject_name("bad.contoso.com", None);
    let mut names: Vec<&str> = owned.iter().map(String::as_str).collect();
    names.extend(["bad.contoso.com", "good.contoso.com"]);
    let report = sync_once(&asm, &config(&asm, true), &names, complete(), SyncOptions::default()).await;
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].seed.name, "bad.contoso.com");
    assert_eq!(report.added.len(), 1);
    assert!(asm.seed_names(SCAN).contains("stale.contoso.com"));
    assert!(matches!(report.skipped[0].reason, SkipReason::AddsFailed { failed: 1 }));
}

#[tokio::test]
async fn engine_faults_are_retried_and_converge() {
    let asm = fake().await;
    let owned = ten_owned(&asm);
    asm.insert_seed(SCAN, "stale.contoso.com", "domain", &[TAG]);
    asm.fail_next(Route::List, 1, Fault::Status(503));
    asm.fail_next(
        Route::Add,
        1,
        Fault::TooManyRequests {
            retry_after: Some("1".into()),
        },
    );
    asm.fail_next(Route::Add, 3, Fault::Status(502));
    asm.fail_next(Route::Delete, 1, Fault::Drop);
    let mut names: Vec<&str> = owned.iter().map(String::as_str).collect();
    names.extend(["a.contoso.com", "b.contoso.com"]);
    let cfg = config(&asm, true);
    let report = sync_once(&asm, &cfg, &names, complete(), SyncOptions::default()).await;
    assert!(report.all_applied(), "{:?}", report.failed);
    let want: std::collections::BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
    assert_eq!(asm.tagged_names(SCAN, TAG), want);
    asm.clear_journal();
    sync_once(&asm, &cfg, &names, complete(), SyncOptions::default()).await;
    assert_eq!(asm.write_attempts(), 0);
}

#[tokio::test]
async fn engine_stops_writing_during_an_outage_and_recovers() {
    let asm = fake().await;
    let names: Vec<String> = (0..12).map(|i| format!("n{i}.contoso.com")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    // The listing works, then ASM goes down for the writes.
    asm.fail_next(Route::Writes, 1000, Fault::Status(503));
    let report = sync_once(&asm, &config(&asm, true), &names, complete(), SyncOptions::default()).await;
    assert_eq!(report.failed.len(), 12);
    let attempted = report
        .failed
        .iter()
        .filter(|w| matches!(w.result, WriteResult::Failed { .. }))
        .count();
    assert!(attempted < 12, "writes should stop early, {attempted} were attempted");
    assert!(attempted >= 3);

    let fresh = fake().await;
    let report = sync_once(
        &fresh,
        &config(&fresh, true),
        &names,
        complete(),
        SyncOptions::default(),
    )
    .await;
    assert!(report.all_applied());
    assert_eq!(fresh.seed_names(SCAN).len(), 12);
}

#[tokio::test]
async fn engine_keeps_seeds_of_an_unreadable_subscription() {
    let asm = fake().await;
    let owned = ten_owned(&asm);
    asm.insert_seed(SCAN, "stale.contoso.com", "domain", &[TAG]);
    let names: Vec<&str> = owned.iter().map(String::as_str).collect();
    let mut report = complete();
    report.incomplete.push(IncompleteScope {
        subscription: SUB.into(),
        check: None,
        why: Incomplete::Forbidden {
            message: "the identity lacks Reader".into(),
        },
    });
    let result = sync_once(&asm, &config(&asm, true), &names, report, SyncOptions::default()).await;
    assert_eq!(asm.write_attempts(), 0);
    assert_eq!(result.skipped[0].reason, SkipReason::ProvenanceUnknown);
    assert!(result.warnings.iter().any(|w| w.contains("lacks Reader")));
}

// ---------------------------------------------------------------------------------------------
// `run_sync` with an in-test Azure reader: the ASM checks come first.

struct CountingAzure {
    sweeps: AtomicUsize,
}

#[async_trait]
impl AzureReader for CountingAzure {
    async fn sweep(&self, _checks: &EnabledChecks, _progress: &dyn SweepProgress) -> Result<Sweep, AzureError> {
        self.sweeps.fetch_add(1, Ordering::SeqCst);
        Ok(Sweep {
            resources: vec![],
            report: complete(),
        })
    }

    async fn read_owner(&self, _owner: &ResourceId) -> Result<OwnerRead, AzureError> {
        Ok(OwnerRead::Gone)
    }
}

#[tokio::test]
async fn run_sync_checks_key_and_scan_before_sweeping() {
    let asm = fake().await;
    let azure = CountingAzure {
        sweeps: AtomicUsize::new(0),
    };
    let cfg = config(&asm, true);
    let wrong = client(&asm, "not-the-key");
    let err = run_sync(&cfg, &azure, &wrong, SyncOptions::default(), &NoSyncProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, SyncError::Unauthorized { status: 401 }));
    assert!(err.is_configuration());
    assert!(err.to_string().contains("API_KEY"));

    let other = AsmClient::new(&asm.base_url(), "missing-scan", Secret::new(KEY), &fast_http());
    let err = run_sync(&cfg, &azure, &other, SyncOptions::default(), &NoSyncProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, SyncError::ScanNotFound { .. }));
    assert!(err.to_string().contains("missing-scan"));
    assert_eq!(azure.sweeps.load(Ordering::SeqCst), 0);

    // An empty sweep deletes nothing, even with stale deletion on.
    asm.insert_seed(SCAN, "a.contoso.com", "domain", &[TAG]);
    let report = run_sync(
        &cfg,
        &azure,
        &client(&asm, KEY),
        SyncOptions::default(),
        &NoSyncProgress,
    )
    .await
    .unwrap();
    assert_eq!(azure.sweeps.load(Ordering::SeqCst), 1);
    assert_eq!(asm.write_attempts(), 0);
    assert!(matches!(report.skipped[0].reason, SkipReason::NearEmptySweep { .. }));
}

// ---------------------------------------------------------------------------------------------
// The built binary.

mod binary {
    use assert_cmd::Command;
    use predicates::prelude::*;

    /// `seedwatch sync` in an empty directory with a clean environment.
    pub fn sync_cmd(dir: &std::path::Path) -> Command {
        let mut cmd = super::cli::hermetic_command(dir);
        cmd.arg("sync");
        cmd
    }

    #[test]
    fn missing_config_is_a_configuration_error() {
        let dir = tempfile::tempdir().unwrap();
        sync_cmd(dir.path())
            .env("API_KEY", "k")
            .assert()
            .code(2)
            .stderr(predicate::str::contains("config.yml").and(predicate::str::contains("not found")));
    }

    #[test]
    fn missing_scan_id_or_key_is_a_configuration_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.yml"), "seed_tag: cloud-connector\n").unwrap();
        sync_cmd(dir.path())
            .env("API_KEY", "k")
            .assert()
            .code(2)
            .stderr(predicate::str::contains("scan_id").and(predicate::str::contains("SCAN_ID")));
        sync_cmd(dir.path())
            .env("SCAN_ID", "s")
            .assert()
            .code(2)
            .stderr(predicate::str::contains("API_KEY"));
        sync_cmd(dir.path())
            .env("CONNECTOR_CONFIG", "scan_id: [1, 2]\n")
            .env("API_KEY", "k")
            .assert()
            .code(2)
            .stderr(predicate::str::contains("scan_id"));
    }
}

// ---------------------------------------------------------------------------------------------
// End to end: the built binary against the fake ASM and the fake ARM/Resource Graph servers.

mod e2e {
    use std::collections::BTreeSet;
    use std::time::{Duration, Instant};

    use serde_json::{Value, json};

    use super::cli::{self, Run};
    use super::fake_asm::{FakeAsm, Fault, Route};
    use super::fake_azure::{self, FakeAzure};
    use super::{KEY, SCAN, TAG};

    const SUB_A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
    const SUB_B: &str = "bbbbbbbb-0000-4000-8000-000000000002";

    fn pip(sub: &str, n: usize, ip: &str) -> Value {
        fake_azure::public_ip(&pip_id(sub, n), ip)
    }

    fn ip_a(n: usize) -> String {
        format!("203.0.113.{n}")
    }

    fn ip_b(n: usize) -> String {
        format!("198.51.100.{n}")
    }

    fn pip_id(sub: &str, n: usize) -> String {
        format!("/subscriptions/{sub}/resourceGroups/rg-{n}/providers/Microsoft.Network/publicIPAddresses/pip-{n}")
    }

    struct World {
        azure: FakeAzure,
        asm: FakeAsm,
        /// The working directory of every run (a local ledger, when one is kept, lives here).
        dir: tempfile::TempDir,
        /// The seeds the estate asks for.
        desired: BTreeSet<String>,
        /// More top-level configuration, appended to the YAML.
        extra_yaml: String,
    }

    /// `per_sub` public IPs in each of two subscriptions; an empty scan.
    async fn world(per_sub: usize) -> World {
        let azure = FakeAzure::start().await;
        // Many sweeps per test, none about Resource Graph's quota (tests/it/azure.rs has those).
        azure.lax_graph_quota_for_test();
        let mut estate = Vec::new();
        let mut desired = BTreeSet::new();
        for n in 1..=per_sub {
            estate.push(pip(SUB_A, n, &ip_a(n)));
            estate.push(pip(SUB_B, n, &ip_b(n)));
            desired.insert(ip_a(n));
            desired.insert(ip_b(n));
        }
        azure.load(estate);
        let asm = FakeAsm::start(KEY).await;
        asm.add_scan(SCAN);
        World {
            azure,
            asm,
            dir: tempfile::tempdir().unwrap(),
            desired,
            extra_yaml: String::new(),
        }
    }

    impl World {
        fn env(&self, key: &str, scan: &str) -> Vec<(String, String)> {
            let yaml = format!(
                "scan_id: {scan}\nseed_tag: {TAG}\ndelete_stale_seeds: true\n\
                 http:\n  retry_count: 4\n  retry_base_delay: 10ms\n  retry_max_delay: 50ms\n  timeout: 2s\n\
                 asm:\n  base_url: {}\n\
                 azure:\n  credential: managed_identity\n  endpoints:\n    resource_manager: {}\n{}",
                self.asm.base_url(),
                self.azure.base_url(),
                self.extra_yaml
            );
            vec![
                ("CONNECTOR_CONFIG".into(), yaml),
                ("API_KEY".into(), key.into()),
                ("IDENTITY_ENDPOINT".into(), self.azure.identity_endpoint()),
                ("IDENTITY_HEADER".into(), self.azure.identity_header()),
                ("AZURE_CLIENT_ID".into(), self.azure.client_id()),
            ]
        }

        async fn sync(&self, args: &[&str]) -> Run {
            self.sync_as(KEY, SCAN, args).await
        }

        async fn sync_as(&self, key: &str, scan: &str, args: &[&str]) -> Run {
            cli::run(&[&["sync"], args].concat(), self.dir.path(), self.env(key, scan)).await
        }

        /// Runs sync again and checks it succeeded without a single write to ASM (what a run
        /// after a converged one must do).
        async fn rerun_without_writes(&self) -> Run {
            self.asm.clear_journal();
            let again = self.sync(&[]).await;
            again.ok();
            assert_eq!(self.asm.write_attempts(), 0, "{again:?}");
            again
        }

        /// Pre-seeds the scan with desired seeds, tagged, as a previous run would have.
        fn seed_owned(&self, names: impl IntoIterator<Item = String>) {
            for name in names {
                self.asm.insert_seed(SCAN, &name, "ipv4", &[TAG]);
            }
        }
    }

    fn reasons(report: &Value) -> Vec<String> {
        report["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["reason"].as_str().unwrap().to_string())
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sync_converges_keeps_hand_added_seeds_and_reruns_without_writes() {
        let w = world(6).await;
        // A previous run's seeds (one spelled differently), one stale, and hand-added ones.
        w.seed_owned((1..=5).map(ip_a));
        w.asm.insert_seed(SCAN, "198.51.100.1", "IPv4", &[TAG, "other"]);
        w.asm.insert_seed(SCAN, "stale.contoso.com", "domain", &[TAG]);
        w.asm.insert_seed(SCAN, "manual.example.org", "domain", &["manual"]);
        w.asm.insert_seed(SCAN, "192.0.2.77", "ipv4", &[]);
        w.asm.insert_seed(SCAN, "198.51.100.2", "ipv4", &["by-hand"]);

        let run = w.sync(&["--json"]).await;
        let report = run.ok().json();
        assert_eq!(report["added"].as_array().unwrap().len(), 5, "{report}");
        assert_eq!(
            report["deleted"],
            json!([{"name": "stale.contoso.com", "type": "domain"}])
        );
        assert_eq!(report["kept"], 7);
        assert_eq!(report["failed"], json!([]));

        let held = w.asm.seed_names(SCAN);
        let mut want = w.desired.clone();
        want.extend(["manual.example.org".to_string(), "192.0.2.77".to_string()]);
        assert_eq!(held, want);
        // The desired seed that was added by hand stays untagged: never changed.
        let by_hand = w
            .asm
            .seeds(SCAN)
            .into_iter()
            .find(|s| s.name == "198.51.100.2")
            .unwrap();
        assert_eq!(by_hand.tags, vec!["by-hand"]);
        assert_eq!(w.asm.applied_writes(SCAN), 6);

        // The rerun makes no write at all.
        let again = w.rerun_without_writes().await;
        assert!(
            again.stdout.contains("Summary: 0 added, 0 deleted, 12 kept"),
            "{}",
            again.stdout
        );
    }

    /// Two subscriptions of six public IPs, one synced run; then one resource goes in each
    /// subscription and the identity loses Reader on B.
    async fn forbidden_b_after_a_first_sync(with_ledger: bool) -> World {
        let w = world(6).await;
        if !with_ledger {
            // A file where the local ledger's directory would go: the ledger cannot open, and
            // sync runs without provenance (it says so and carries on).
            std::fs::write(w.dir.path().join(".seedwatch"), b"not a directory").unwrap();
        }
        let first = w.sync(&[]).await;
        first.ok();
        assert_eq!(first.stderr.contains("ledger unavailable"), !with_ledger, "{first:?}");
        w.azure.delete(&pip_id(SUB_A, 6));
        w.azure.delete(&pip_id(SUB_B, 6));
        w.azure.forbid(SUB_B);
        w.asm.clear_journal();
        w
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_forbidden_subscription_loses_none_of_its_seeds() {
        let w = forbidden_b_after_a_first_sync(true).await;
        let report = w.sync(&["--json"]).await.ok().json();
        assert!(report["warnings"].to_string().contains(SUB_B), "{report}");
        // The ledger knows where each seed came from: A's stale seed goes, and all of B's are
        // kept because B was not read.
        assert_eq!(
            report["deleted"],
            json!([{"name": ip_a(6), "type": "ipv4"}]),
            "{report}"
        );
        assert_eq!(reasons(&report), vec!["scope_incomplete"; 6], "{report}");
        let held = w.asm.tagged_names(SCAN, TAG);
        assert!((1..=6).all(|n| held.contains(&ip_b(n))), "{report}");
        assert_eq!(w.asm.applied_writes(SCAN), 1);

        // Once B is readable again, B's stale seed goes too.
        w.azure.clear_faults();
        let report = w.sync(&["--json"]).await.ok().json();
        assert_eq!(
            report["deleted"],
            json!([{"name": ip_b(6), "type": "ipv4"}]),
            "{report}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_provenance_an_incomplete_sweep_deletes_nothing() {
        let w = forbidden_b_after_a_first_sync(false).await;
        let report = w.sync(&["--json"]).await.ok().json();
        assert_eq!(w.asm.write_attempts(), 0);
        // B's six seeds are missing from the sweep and A's sixth is gone: all seven are kept.
        assert_eq!(reasons(&report), vec!["provenance_unknown"; 7], "{report}");
        assert_eq!(w.asm.tagged_names(SCAN, TAG), w.desired);

        w.azure.clear_faults();
        let report = w.sync(&["--json"]).await.ok().json();
        assert_eq!(report["deleted"].as_array().unwrap().len(), 2, "{report}");
        assert!(!w.asm.seed_names(SCAN).contains(&ip_a(6)));
        assert!(!w.asm.seed_names(SCAN).contains(&ip_b(6)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_empty_sweep_deletes_nothing() {
        let w = world(4).await;
        w.sync(&[]).await.ok();
        w.asm.clear_journal();
        // The estate is emptied (or the identity sees nothing any more).
        w.azure.load(vec![]);
        w.azure.add_subscription(SUB_A, "Enabled");
        let run = w.sync(&["--force-deletes", "--json"]).await;
        let report = run.ok().json();
        assert_eq!(w.asm.write_attempts(), 0);
        assert_eq!(reasons(&report).len(), 8);
        assert!(reasons(&report).iter().all(|r| r == "near_empty_sweep"), "{report}");
        assert_eq!(w.asm.tagged_names(SCAN, TAG), w.desired);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_deletion_breaker_trips_and_force_deletes_overrides_it() {
        let w = world(6).await;
        w.sync(&[]).await.ok();
        for n in 2..=5 {
            w.azure.delete(&pip_id(SUB_A, n));
        }
        w.asm.clear_journal();
        // 4 of 12 tagged seeds (33%) is over the default 25%.
        let run = w.sync(&[]).await;
        run.ok();
        assert_eq!(w.asm.write_attempts(), 0);
        assert!(run.stdout.contains("--force-deletes"), "{}", run.stdout);
        assert!(run.stdout.contains("max_delete_fraction"), "{}", run.stdout);
        assert!(
            run.stdout
                .contains("Kept by guard rails (4):\n  4 seeds: would delete 4 of 12 tagged seeds"),
            "{}",
            run.stdout
        );

        let report = w.sync(&["--force-deletes", "--json"]).await.ok().json();
        assert_eq!(report["deleted"].as_array().unwrap().len(), 4);
        assert_eq!(w.asm.applied(SCAN, "DELETE"), 4);
        assert_eq!(w.asm.seed_names(SCAN).len(), 8);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn asm_faults_are_retried_and_the_sync_converges() {
        let w = world(5).await;
        w.asm.fail_next(Route::List, 1, Fault::Status(502));
        w.asm.fail_next(
            Route::Add,
            1,
            Fault::TooManyRequests {
                retry_after: Some("1".into()),
            },
        );
        w.asm.fail_next(Route::Add, 3, Fault::Status(503));
        w.asm.fail_next(Route::Add, 1, Fault::Drop);
        w.asm.fail_next(Route::Auth, 1, Fault::Status(500));
        let report = w.sync(&["--json"]).await.ok().json();
        assert_eq!(report["added"].as_array().unwrap().len(), 10);
        assert_eq!(w.asm.tagged_names(SCAN, TAG), w.desired);
        assert!(w.asm.statuses(Route::Add).contains(&429));
        assert!(w.asm.statuses(Route::Add).contains(&0));

        w.rerun_without_writes().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sync_of_the_policy_estate_holds_exactly_the_planned_seeds() {
        let w = world(0).await;
        w.asm.plan_with_ranges(); // the policy estate has public IP prefixes
        w.azure.load(cli::estate_items(cli::EXAMPLE_ESTATE));
        w.asm.insert_seed(SCAN, "manual.example.org", "domain", &["manual"]);
        w.asm.insert_seed(SCAN, "gone.contoso.com", "domain", &[TAG]);

        // What `plan` says the policy asks for, from the same estate as a file.
        let plan_args = ["plan", "--json", "--estate", cli::EXAMPLE_ESTATE];
        let plan = cli::run(&plan_args, w.dir.path(), w.env(KEY, SCAN)).await.ok().json();
        let planned: BTreeSet<(String, String)> = cli::planned_seeds(&plan).into_iter().collect();
        assert!(planned.len() > 20, "{plan}");

        let report = w.sync(&["--json", "--force-deletes"]).await.ok().json();
        assert_eq!(report["failed"], json!([]), "{report}");
        let held: BTreeSet<(String, String)> = w
            .asm
            .seeds(SCAN)
            .into_iter()
            .filter(|s| s.tags.iter().any(|t| t == TAG))
            .map(|s| (s.name, s.kind))
            .collect();
        assert_eq!(held, planned);
        assert!(w.asm.seed_names(SCAN).contains("manual.example.org"));

        w.rerun_without_writes().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_key_never_reaches_the_logs_even_at_trace_level() {
        let w = world(2).await;
        w.asm.fail_next(Route::Add, 2, Fault::Status(503));
        w.asm.fail_next(Route::Add, 1, Fault::Drop);
        w.asm.reject_name(&ip_b(2), None);
        let mut env = w.env(KEY, SCAN);
        env.push(("LOG_LEVEL".into(), "trace".into()));
        let run = cli::run(&["sync"], w.dir.path(), env).await;
        assert_eq!(run.code, Some(1), "{run:?}");
        assert!(run.stderr.contains("ASM"), "trace logs were written: {}", run.stderr);
        assert!(!run.stderr.contains(KEY) && !run.stdout.contains(KEY));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_400_with_a_code_is_a_warning_and_without_one_a_failure() {
        let w = world(3).await;
        w.asm.reject_name(&ip_a(1), Some("SEED_LIMIT_REACHED"));
        let run = w.sync(&[]).await;
        run.ok();
        assert!(run.stdout.contains("SEED_LIMIT_REACHED"), "{}", run.stdout);
        assert_eq!(w.asm.tagged_names(SCAN, TAG).len(), 5);

        // A fresh world: the refusal above is remembered (and not sent again) for a day.
        let w = world(3).await;
        w.asm.reject_name(&ip_a(1), None);
        let run = w.sync(&["--json"]).await;
        assert_eq!(run.code, Some(1), "{run:?}");
        let report = run.json();
        assert_eq!(report["failed"][0]["name"], ip_a(1));
        assert_eq!(report["failed"][0]["result"], "failed");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wrong_key_or_an_unknown_scan_is_a_clear_configuration_error() {
        let w = world(2).await;
        let wrong_key = "wrong-key-5d1e8b7a";
        let run = w.sync_as(wrong_key, SCAN, &[]).await;
        assert_eq!(run.code, Some(2), "{run:?}");
        assert!(run.stderr.contains("API key was rejected"), "{}", run.stderr);
        assert!(run.stderr.contains("API_KEY"));
        assert!(!run.stderr.contains(wrong_key) && !run.stdout.contains(wrong_key));
        let run = w.sync_as(wrong_key, SCAN, &["--json"]).await;
        assert_eq!(run.code, Some(2));
        assert!(run.json()["error"].as_str().unwrap().contains("API key"));

        let run = w.sync_as(KEY, "6b1f0000-dead-beef-0000-000000000000", &[]).await;
        assert_eq!(run.code, Some(2), "{run:?}");
        assert!(
            run.stderr.contains("6b1f0000-dead-beef-0000-000000000000"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("scan_id"));
        assert!(!run.stderr.contains(KEY));
        assert_eq!(w.asm.write_attempts(), 0);
        assert_eq!(w.azure.counts().graph_pages, 0, "no sweep before the ASM checks pass");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dry_run_prints_the_plan_and_writes_nothing() {
        let w = world(3).await;
        w.seed_owned((1..=3).map(ip_a));
        w.asm.insert_seed(SCAN, "192.0.2.200", "ipv4", &[TAG]);
        let run = w.sync(&["--dry-run"]).await;
        run.ok();
        assert!(run.stdout.contains("dry run"), "{}", run.stdout);
        assert!(run.stdout.contains("Would add (3)"), "{}", run.stdout);
        assert!(run.stdout.contains("Would delete (1)"), "{}", run.stdout);
        assert!(run.stdout.contains("- 192.0.2.200"), "{}", run.stdout);
        let report = w.sync(&["--dry-run", "--json"]).await.ok().json();
        assert_eq!(report["planned_add"].as_array().unwrap().len(), 3);
        assert_eq!(report["dry_run"], true);
        assert_eq!(w.asm.write_attempts(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_crash_half_way_then_a_rerun_converges() {
        let w = world(12).await;
        w.asm.set_latency(Duration::from_millis(250));
        let mut child = cli::command(&["sync"], w.dir.path(), w.env(KEY, SCAN))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while w.asm.applied(SCAN, "POST") < 4 {
            assert!(Instant::now() < deadline, "the sync never started writing");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        child.kill().unwrap();
        let _ = tokio::task::spawn_blocking(move || child.wait()).await.unwrap();
        let written = w.asm.seed_names(SCAN).len();
        assert!(written < 24, "the crash should come half way, {written} were written");

        w.asm.set_latency(Duration::ZERO);
        w.sync(&[]).await.ok();
        assert_eq!(w.asm.tagged_names(SCAN, TAG), w.desired);
        w.rerun_without_writes().await;
    }

    /// Issue 12.4: migrating from the Hexiosec connector, the scan holds AWS and GCP seeds with
    /// the same tag. With an `aws` or `gcp` block enabled, or `sync.shared_tag: true`, a tagged
    /// seed is deleted only when the ledger traces it to Azure.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn seeds_another_connector_tagged_survive_when_the_tag_is_shared() {
        let foreign = ["app.aws-example.com", "52.95.110.1"];
        for extra in [
            "aws:\n  enabled: true\n  default_region: eu-west-2\n",
            "gcp:\n  enabled: true\n  projects: [\"projects/123\"]\n",
            "sync:\n  shared_tag: true\n",
        ] {
            let mut w = world(4).await;
            w.extra_yaml = extra.to_string();
            // The Hexiosec connectors' last runs: Azure's seeds and AWS's, all with the tag.
            w.seed_owned(w.desired.clone());
            w.asm.insert_seed(SCAN, foreign[0], "domain", &[TAG]);
            w.asm.insert_seed(SCAN, foreign[1], "ipv4", &[TAG]);
            let first = w.sync(&["--json"]).await.ok().json();
            assert_eq!(w.asm.applied(SCAN, "DELETE"), 0, "{extra}: {first}");
            assert!(
                reasons(&first).iter().all(|r| r == "not_from_azure"),
                "{extra}: {first}"
            );
            // An Azure resource goes: its seed, which the ledger traces to Azure, is deleted.
            w.azure.delete(&pip_id(SUB_A, 1));
            w.asm.clear_journal();
            let second = w.sync(&["--json"]).await.ok().json();
            assert_eq!(w.asm.applied(SCAN, "DELETE"), 1, "{extra}: {second}");
            let names = w.asm.seed_names(SCAN);
            assert!(!names.contains(&ip_a(1)), "{extra}");
            assert!(foreign.iter().all(|f| names.contains(*f)), "{extra}: {names:?}");
        }
    }
}
