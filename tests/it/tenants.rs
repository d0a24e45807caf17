//! Several tenants from one deployment (`azure.tenants`) and Azure Lighthouse, against the
//! fakes: one fake Entra ID issuing per-tenant tokens, a fake ARM that refuses a token from
//! another tenant and lists delegated subscriptions as ARM does.

use crate::support::{cli, fake_asm, fake_azure, fake_entra};

use std::collections::HashMap;
use std::sync::Arc;

use fake_asm::FakeAsm;
use fake_azure::FakeAzure;
use fake_entra::FakeEntra;
use seedwatch::adapters::azure::tenants::reader_from_config;
use seedwatch::adapters::azure::{AzureError, NoProgress, StaticToken};
use seedwatch::config::Config;
use seedwatch::domain::resource::ResourceId;
use seedwatch::domain::secret::Secret;
use serde_json::{Value, json};

const TENANT_A: &str = "aaaaaaaa-1111-4111-8111-111111111111";
const TENANT_B: &str = "bbbbbbbb-2222-4222-8222-222222222222";
const CLIENT_A: &str = "aaaaaaaa-0000-4000-8000-00000000000a";
const CLIENT_B: &str = "bbbbbbbb-0000-4000-8000-00000000000b";
const SUB_A: &str = "a0000000-0000-4000-8000-000000000001";
const SUB_B: &str = "b0000000-0000-4000-8000-000000000002";
const KEY: &str = "asm-key";
const SCAN: &str = "scan-1";
const TAG: &str = "cloud-connector";

fn ip_id(sub: &str, name: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/{name}")
}

fn estate() -> Vec<Value> {
    vec![
        fake_azure::public_ip(&ip_id(SUB_A, "a1"), "20.0.0.1"),
        fake_azure::public_ip(&ip_id(SUB_A, "a2"), "20.0.0.2"),
        fake_azure::public_ip(&ip_id(SUB_B, "b1"), "20.0.0.3"),
        fake_azure::public_ip(&ip_id(SUB_B, "b2"), "20.0.0.4"),
    ]
}

struct World {
    azure: FakeAzure,
    entra: FakeEntra,
    asm: FakeAsm,
    dir: tempfile::TempDir,
}

impl World {
    async fn start() -> World {
        let azure = FakeAzure::start().await;
        azure.load(estate());
        azure.place_subscription(SUB_A, TENANT_A);
        azure.place_subscription(SUB_B, TENANT_B);
        let entra = FakeEntra::start().await;
        entra.register_secret(TENANT_A, CLIENT_A, "secret-a");
        entra.register_secret(TENANT_B, CLIENT_B, "secret-b");
        entra.issue_in_tenant(TENANT_A, &azure.arm_token_for_tenant_for_test(TENANT_A));
        entra.issue_in_tenant(TENANT_B, &azure.arm_token_for_tenant_for_test(TENANT_B));
        let asm = FakeAsm::start(KEY).await;
        asm.add_scan(SCAN);
        World {
            azure,
            entra,
            asm,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `seedwatch sync --json` with two client-secret connections that list no subscription;
    /// `secret_b` is what the deployment holds for tenant B.
    async fn sync(&self, secret_b: &str) -> cli::Run {
        self.run(&["sync", "--json"], secret_b).await
    }

    async fn run(&self, args: &[&str], secret_b: &str) -> cli::Run {
        // Every stale seed of this small estate may go (the breaker is not under test here).
        let yaml = format!(
            "scan_id: {SCAN}\nseed_tag: {TAG}\ndelete_stale_seeds: true\nsync:\n  max_delete_fraction: 1\n\
             http:\n  retry_count: 1\n  retry_base_delay: 10ms\n  retry_max_delay: 50ms\n  timeout: 5s\n\
             asm:\n  base_url: {}\n\
             azure:\n  endpoints:\n    resource_manager: {}\n    authority: {}\n  tenants:\n\
             \x20   - tenant_id: {TENANT_A}\n      credential: client_secret\n      client_id: {CLIENT_A}\n      client_secret_env: TENANT_A_SECRET\n\
             \x20   - tenant_id: {TENANT_B}\n      credential: client_secret\n      client_id: {CLIENT_B}\n      client_secret_env: TENANT_B_SECRET\n",
            self.asm.base_url(),
            self.azure.base_url(),
            self.entra.authority(),
        );
        let bundle = self.entra.write_ca_bundle(self.dir.path());
        let env: Vec<(String, String)> = vec![
            ("CONNECTOR_CONFIG".into(), yaml),
            ("API_KEY".into(), KEY.into()),
            ("TENANT_A_SECRET".into(), "secret-a".into()),
            ("TENANT_B_SECRET".into(), secret_b.into()),
            ("SSL_CERT_FILE".into(), bundle.to_str().unwrap().into()),
        ];
        cli::run(args, self.dir.path(), env).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_seed_from_both_and_a_refused_token_deletes_nothing_of_its_tenant() {
    let w = World::start().await;
    let first = w.sync("secret-b").await;
    assert_eq!(first.code, Some(0), "{first:?}");
    let all: Vec<&str> = vec!["20.0.0.1", "20.0.0.2", "20.0.0.3", "20.0.0.4"];
    assert_eq!(
        w.asm.tagged_names(SCAN, TAG),
        all.iter().map(|s| s.to_string()).collect(),
        "seeds from both tenants"
    );
    let plan = w.run(&["plan", "--json"], "secret-b").await.json();
    assert_eq!(
        plan["completeness"]["tenants"].as_array().map(Vec::len),
        Some(2),
        "{plan}"
    );
    let grants: Vec<String> = w.entra.grants().iter().map(|g| g.tenant.clone()).collect();
    assert!(
        grants.contains(&TENANT_A.to_string()) && grants.contains(&TENANT_B.to_string()),
        "{grants:?}"
    );

    // Both tenants lose a resource; tenant B's secret no longer works.
    w.azure.delete(&ip_id(SUB_A, "a2"));
    w.azure.delete(&ip_id(SUB_B, "b2"));
    let second = w.sync("rotated-elsewhere").await;
    let report = second.json();
    let tagged = w.asm.tagged_names(SCAN, TAG);
    assert!(!tagged.contains("20.0.0.2"), "tenant A converges: {tagged:?} {report}");
    assert!(
        tagged.contains("20.0.0.4") && tagged.contains("20.0.0.3"),
        "nothing of tenant B is deleted: {tagged:?} {report}"
    );
    let incomplete = report["incomplete_scopes"].to_string();
    assert!(incomplete.contains(TENANT_B), "tenant B reported unread: {report}");
    assert!(!incomplete.contains(SUB_A), "tenant A read completely: {report}");
    let tenants = report["tenants"].as_array().expect("a tenants section");
    let by_tenant = |t: &str| tenants.iter().find(|x| x["tenant"] == t).cloned().unwrap_or_default();
    assert_eq!(by_tenant(TENANT_A)["complete"], true, "{report}");
    assert_eq!(by_tenant(TENANT_A)["subscriptions"], json!([SUB_A]), "{report}");
    assert_eq!(by_tenant(TENANT_B)["complete"], false, "{report}");
    assert!(by_tenant(TENANT_B)["error"].is_string(), "{report}");
    assert!(!w.entra.refusals().is_empty());
    assert!(
        !report.to_string().contains("rotated-elsewhere"),
        "no secret in the report"
    );
}

fn config(tenants: Value, azure: &FakeAzure) -> Config {
    let yaml = json!({"azure": {"endpoints": {"resource_manager": azure.base_url()}, "tenants": tenants},
                      "http": {"retry_count": 1, "retry_base_delay": "10ms", "retry_max_delay": "50ms"}});
    Config::from_value(&yaml, "test", &HashMap::<String, String>::new()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_for_a_subscription_no_connection_covers_reads_nothing() {
    let azure = FakeAzure::start().await;
    azure.load(estate());
    let config = config(
        json!([{"tenant_id": TENANT_A, "credential": "default", "subscriptions": [SUB_A]}]),
        &azure,
    );
    let token = Arc::new(StaticToken(Secret::new(azure.arm_token_minted_for_test())));
    let reader = reader_from_config(&config, token, &HashMap::<String, String>::new());
    azure.reset_counts();
    let outside = ResourceId::parse(&ip_id(SUB_B, "b1")).unwrap();
    let err = reader.read_owner(&outside).await.unwrap_err();
    assert!(matches!(err, AzureError::Uncovered { .. }), "{err}");
    assert!(!err.is_transient());
    assert_eq!(azure.counts().arm_gets, 0, "nothing read");
    // A covered subscription is read through its connection.
    let inside = ResourceId::parse(&ip_id(SUB_A, "a1")).unwrap();
    assert!(reader.read_owner(&inside).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lighthouse_delegated_subscriptions_are_swept_by_the_home_tenant() {
    let azure = FakeAzure::start().await;
    azure.load(estate());
    azure.place_subscription(SUB_A, TENANT_A);
    azure.place_subscription(SUB_B, TENANT_B);
    azure.delegate_subscription(SUB_B, TENANT_A);
    let yaml = json!({"azure": {"endpoints": {"resource_manager": azure.base_url()}}});
    let config = Config::from_value(&yaml, "test", &HashMap::<String, String>::new()).unwrap();
    let token = Arc::new(StaticToken(Secret::new(azure.arm_token_for_tenant_for_test(TENANT_A))));
    let reader = reader_from_config(&config, token, &HashMap::<String, String>::new());
    let checks = config.azure.checks.clone();
    let sweep = reader.sweep(&checks, &NoProgress).await.unwrap();
    assert!(sweep.report.is_fully_complete(), "{:?}", sweep.report);
    let ids: Vec<String> = sweep
        .resources
        .iter()
        .map(|r| r.id.as_str().to_ascii_lowercase())
        .collect();
    assert!(
        ids.contains(&ip_id(SUB_B, "b1").to_ascii_lowercase()),
        "delegated subscription read: {ids:?}"
    );
    assert_eq!(sweep.resources.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_two_connections_can_read_is_read_once_and_reported() {
    let azure = FakeAzure::start().await;
    azure.load(estate());
    let config = config(
        json!([{"tenant_id": TENANT_A, "credential": "default"}, {"tenant_id": TENANT_B, "credential": "default"}]),
        &azure,
    );
    let token = Arc::new(StaticToken(Secret::new(azure.arm_token_minted_for_test())));
    let reader = reader_from_config(&config, token, &HashMap::<String, String>::new());
    let sweep = reader.sweep(&config.azure.checks.clone(), &NoProgress).await.unwrap();
    assert_eq!(sweep.resources.len(), 4, "each resource once");
    assert_eq!(sweep.report.tenant_of(SUB_B), Some(TENANT_A), "read through the first");
    let notes = sweep.report.notes.join("\n");
    assert!(
        notes.contains(SUB_B) && notes.contains("read through tenant"),
        "{notes}"
    );
}

#[test]
fn the_configuration_refuses_overlaps_literal_secrets_and_managed_identity() {
    let env = HashMap::<String, String>::new();
    let load = |tenants: Value| Config::from_value(&json!({"azure": {"tenants": tenants}}), "config.yml", &env);
    let err = load(json!([
        {"tenant_id": TENANT_A, "credential": "default", "subscriptions": [SUB_A]},
        {"tenant_id": TENANT_B, "credential": "azure_cli", "subscriptions": [SUB_A.to_uppercase()]}
    ]))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("azure.tenants[1].subscriptions") && err.contains("also listed"),
        "{err}"
    );
    let err = load(json!([{"tenant_id": TENANT_A, "credential": "client_secret", "client_id": CLIENT_A, "client_secret": "hunter2"}]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("client_secret_env") && !err.contains("hunter2"), "{err}");
    let err = load(json!([{"tenant_id": TENANT_A, "credential": "managed_identity"}]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("azure.tenants[0].credential"), "{err}");
    let err = load(json!([{"tenant_id": TENANT_A, "credential": "client_certificate", "client_id": CLIENT_A}]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("certificate_path"), "{err}");
    let ok = load(json!([{"tenant_id": TENANT_A, "credential": "default"}])).unwrap();
    assert_eq!(ok.azure.tenants.len(), 1);
    assert!(
        load(Value::Null).unwrap().azure.tenants.is_empty(),
        "no list: the single connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_without_a_token_reports_every_listed_subscription_incomplete() {
    let azure = FakeAzure::start().await;
    azure.load(estate());
    // Tenant B's authority does not answer: no token for any of its reads.
    let yaml = json!({"azure": {"endpoints": {"resource_manager": azure.base_url(), "authority": "https://127.0.0.1:9"},
                                "tenants": [
                                    {"tenant_id": TENANT_A, "credential": "default", "subscriptions": [SUB_A]},
                                    {"tenant_id": TENANT_B, "credential": "client_secret", "client_id": CLIENT_B,
                                     "client_secret_env": "B_SECRET", "subscriptions": [SUB_B]}]},
                      "http": {"retry_count": 1, "retry_base_delay": "10ms", "retry_max_delay": "50ms", "timeout": "2s"}});
    let env: HashMap<String, String> = [("B_SECRET".to_string(), "secret-b".to_string())].into();
    let config = Config::from_value(&yaml, "test", &env).unwrap();
    let token = Arc::new(StaticToken(Secret::new(azure.arm_token_minted_for_test())));
    let reader = reader_from_config(&config, token, &env);
    let sweep = reader.sweep(&config.azure.checks.clone(), &NoProgress).await.unwrap();
    let checks: Vec<_> = config.azure.checks.enabled().collect();
    for check in &checks {
        assert!(sweep.report.is_complete(SUB_A, *check), "{:?}", sweep.report);
        assert!(!sweep.report.is_complete(SUB_B, *check), "{:?}", sweep.report);
    }
    assert_eq!(sweep.report.tenant_of(SUB_B), Some(TENANT_B));
    let text = sweep.report.render_text();
    assert!(
        text.contains(&format!("tenant {TENANT_B}: 1 subscription(s), not read completely")),
        "{text}"
    );
    assert!(!text.contains("secret-b"), "{text}");
    assert_eq!(sweep.resources.len(), 2, "tenant A's resources only");
}

#[test]
fn a_subscription_resync_narrows_each_connection_that_may_read_it() {
    let env = HashMap::<String, String>::new();
    let yaml = json!({"azure": {"tenants": [
        {"tenant_id": TENANT_A, "credential": "default", "subscriptions": [SUB_A]},
        {"tenant_id": TENANT_B, "credential": "azure_cli", "exclude_subscriptions": [SUB_A]}]}});
    let config = Config::from_value(&yaml, "test", &env).unwrap();
    let mut narrowed = config.azure.clone();
    assert!(seedwatch::config::tenants::narrow_to_subscription(&mut narrowed, SUB_B));
    assert_eq!(narrowed.tenants.len(), 1);
    assert_eq!(narrowed.tenants[0].tenant_id, TENANT_B);
    assert_eq!(narrowed.tenants[0].subscriptions, vec![SUB_B.to_string()]);
    let mut narrowed = config.azure.clone();
    assert!(seedwatch::config::tenants::narrow_to_subscription(&mut narrowed, SUB_A));
    assert_eq!(narrowed.tenants.len(), 1);
    assert_eq!(narrowed.tenants[0].tenant_id, TENANT_A);
    let only_a = Config::from_value(
        &json!({"azure": {"tenants": [{"tenant_id": TENANT_A, "credential": "default", "subscriptions": [SUB_A]}]}}),
        "test",
        &env,
    )
    .unwrap();
    let mut narrowed = only_a.azure.clone();
    assert!(
        !seedwatch::config::tenants::narrow_to_subscription(&mut narrowed, SUB_B),
        "covered by none"
    );
}
