//! `seedwatch check` through the built binary against the fakes: all ok, then each dependency
//! broken in turn gives its line, its advice and the exit code (0 ok, 1 warnings, 2 failed).

use crate::support::{cli, fake_asm, fake_azure, fake_servicebus};

use serde_json::Value;

use cli::Run;
use fake_servicebus::{FakeAuth, FakeServiceBus};

const KEY: &str = "asm-key-for-check-tests-never-printed";
const SCAN: &str = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
const TAG: &str = "cloud-connector";
const SUB_A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const SUB_B: &str = "bbbbbbbb-0000-4000-8000-000000000002";
const QUEUE: &str = "asm-retries";
const SAS_KEY: &str = "c2VlZHdhdGNoLWNoZWNrLWtleQ==";

struct World {
    azure: fake_azure::FakeAzure,
    asm: fake_asm::FakeAsm,
    bus: FakeServiceBus,
    dir: tempfile::TempDir,
}

impl World {
    /// Two subscriptions with a public IP each, a scan holding one tagged seed, a queue.
    async fn start() -> World {
        let azure = fake_azure::FakeAzure::start().await;
        azure.load(vec![
            fake_azure::public_ip(&pip(SUB_A), "203.0.113.1"),
            fake_azure::public_ip(&pip(SUB_B), "198.51.100.1"),
        ]);
        let asm = fake_asm::FakeAsm::start(KEY).await;
        asm.add_scan(SCAN);
        asm.insert_seed(SCAN, "203.0.113.1", "ipv4", &[TAG]);
        let bus = FakeServiceBus::start(
            QUEUE,
            FakeAuth::Sas {
                key_name: "send".into(),
                key: SAS_KEY.into(),
            },
        )
        .await;
        World {
            azure,
            asm,
            bus,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn yaml(&self, scan: &str, ledger: &str) -> String {
        format!(
            "scan_id: {scan}\nseed_tag: {TAG}\n\
             http:\n  retry_count: 1\n  retry_base_delay: 10ms\n  retry_max_delay: 20ms\n  timeout: 3s\n\
             asm:\n  base_url: {}\n\
             azure:\n  credential: managed_identity\n  endpoints:\n    resource_manager: {}\n    service_bus: {}\n\
             {ledger}",
            self.asm.base_url(),
            self.azure.base_url(),
            self.bus.base_url(),
        )
    }

    fn env(&self) -> Vec<(String, String)> {
        let ledger = format!(
            "ledger:\n  kind: local\n  path: {}\n",
            self.dir.path().join("ledger.redb").display()
        );
        vec![
            ("CONNECTOR_CONFIG".into(), self.yaml(SCAN, &ledger)),
            ("API_KEY".into(), KEY.into()),
            ("IDENTITY_ENDPOINT".into(), self.azure.identity_endpoint()),
            ("IDENTITY_HEADER".into(), self.azure.identity_header()),
            ("AZURE_CLIENT_ID".into(), self.azure.client_id()),
            ("RETRY_QUEUE".into(), QUEUE.into()),
            (
                "ServiceBusConnection".into(),
                format!(
                    "Endpoint=sb://{}/;SharedAccessKeyName=send;SharedAccessKey={SAS_KEY}",
                    self.bus.addr
                ),
            ),
        ]
    }

    async fn check_with(&self, env: Vec<(String, String)>) -> (Run, Value) {
        let run = cli::run(&["check", "--json"], self.dir.path(), env).await;
        let json = run.json();
        (run, json)
    }

    async fn check(&self) -> (Run, Value) {
        self.check_with(self.env()).await
    }
}

fn pip(sub: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/pip")
}

fn with(mut env: Vec<(String, String)>, key: &str, value: &str) -> Vec<(String, String)> {
    env.retain(|(k, _)| k != key);
    env.push((key.into(), value.into()));
    env
}

/// The line named `name`, or a panic listing the lines.
fn line<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("no line {name}: {report:#}"))
}

fn states(report: &Value) -> Vec<(String, String)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_string(),
                l["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Only the named lines are not ok; they have `state`; the exit code follows.
fn assert_only(run: &Run, report: &Value, broken: &[&str], state: &str, code: i32) {
    for (name, got) in states(report) {
        let expected = if broken.contains(&name.as_str()) { state } else { "ok" };
        assert_eq!(got, expected, "{name}: {report:#}");
    }
    assert_eq!(run.code, Some(code), "{run:?}");
    assert!(!run.stdout.contains(KEY) && !run.stderr.contains(KEY), "the key leaked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_the_fakes_every_check_is_ok() {
    let w = World::start().await;
    let (run, report) = w.check().await;
    assert_only(&run, &report, &[], "ok", 0);
    for name in [
        "config",
        "token.arm",
        "asm.key",
        "asm.scan",
        "asm.tag",
        "ledger",
        "queue",
        "queue.dead-letter",
    ] {
        line(&report, name);
    }
    let sub = line(&report, &format!("subscription.{SUB_B}"));
    assert!(sub["detail"].as_str().unwrap().contains("holds Reader"), "{sub}");
    let events = line(&report, &format!("event-grid.{SUB_A}"));
    let detail = events["detail"].as_str().unwrap();
    assert!(
        detail.contains("AzureFunction") && detail.contains("ResourceWriteSuccess"),
        "{detail}"
    );
    let config = line(&report, "config")["detail"].as_str().unwrap().to_string();
    assert!(
        config.contains("scan_id (file)") && config.contains("API_KEY (env)") && config.contains("seed_tag (file)"),
        "{config}"
    );
    let token = line(&report, "token.arm")["detail"].as_str().unwrap().to_string();
    assert!(token.contains(fake_azure::FAKE_CLIENT_ID), "{token}");
    // The probe reached the queue, and nothing was left in the ledger.
    let probe = w.bus.delivered();
    assert_eq!(probe.len(), 1);
    assert_eq!(probe[0].body_json()["kind"], "probe");
    // The text form says the same.
    let text = cli::run(&["check"], w.dir.path(), w.env()).await;
    assert_eq!(text.code, Some(0), "{text:?}");
    assert!(text.stdout.contains("all checks ok"), "{}", text.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_fails_the_token_line() {
    let w = World::start().await;
    let (run, report) = w.check_with(with(w.env(), "IDENTITY_HEADER", "wrong-header")).await;
    let token = line(&report, "token.arm");
    assert_eq!(token["state"], "failed", "{report:#}");
    assert!(token["advice"].as_str().unwrap().contains("identity"), "{token}");
    // Without a token nothing is read through ARM: no subscription line at all.
    assert!(states(&report).iter().all(|(n, _)| !n.starts_with("subscription.")));
    assert_eq!(run.code, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_without_reader_names_the_command_that_grants_it() {
    let w = World::start().await;
    w.azure.forbid(SUB_B);
    w.azure.remove_reader(SUB_B);
    let (run, report) = w.check().await;
    let name = format!("subscription.{SUB_B}");
    let events = format!("event-grid.{SUB_B}");
    assert_only(&run, &report, &[&name, &events], "failed", 2);
    let advice = line(&report, &name)["advice"].as_str().unwrap().to_string();
    assert_eq!(
        advice,
        format!(
            "az role assignment create --assignee {} --role Reader --scope /subscriptions/{SUB_B}",
            fake_azure::FAKE_OBJECT_ID
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readable_without_a_reader_assignment_is_a_warning() {
    let w = World::start().await;
    w.azure.remove_reader(SUB_A);
    let (run, report) = w.check().await;
    let name = format!("subscription.{SUB_A}");
    assert_only(&run, &report, &[&name], "warning", 1);
    assert!(
        line(&report, &name)["advice"]
            .as_str()
            .unwrap()
            .contains("--role Reader")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_asm_key_fails_and_says_which_setting() {
    let w = World::start().await;
    let (run, report) = w.check_with(with(w.env(), "API_KEY", "not-the-key")).await;
    assert_only(&run, &report, &["asm.key"], "failed", 2);
    let key = line(&report, "asm.key");
    assert!(key["detail"].as_str().unwrap().contains("401"), "{key}");
    assert!(key["advice"].as_str().unwrap().contains("API_KEY"), "{key}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_scan_fails_the_scan_line() {
    let w = World::start().await;
    let ledger = format!(
        "ledger:\n  kind: local\n  path: {}\n",
        w.dir.path().join("l.redb").display()
    );
    let env = with(
        w.env(),
        "CONNECTOR_CONFIG",
        &w.yaml("00000000-dead-4000-8000-000000000000", &ledger),
    );
    let (run, report) = w.check_with(env).await;
    assert_only(&run, &report, &["asm.scan"], "failed", 2);
    assert!(
        line(&report, "asm.scan")["advice"]
            .as_str()
            .unwrap()
            .contains("scan_id")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_that_cannot_be_reached_fails_the_ledger_line() {
    let w = World::start().await;
    // Table Storage on a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let storage = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;TableEndpoint=http://127.0.0.1:{closed}/devstoreaccount1;"
    );
    let env = with(w.env(), "CONNECTOR_CONFIG", &w.yaml(SCAN, "ledger:\n  kind: table\n"));
    let (run, report) = w.check_with(with(env, "AzureWebJobsStorage", &storage)).await;
    assert_only(&run, &report, &["ledger"], "failed", 2);
    assert!(
        line(&report, "ledger")["advice"]
            .as_str()
            .unwrap()
            .contains("AzureWebJobsStorage")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_that_refuses_the_sender_fails_the_queue_line() {
    let w = World::start().await;
    w.bus.inject(&[403]);
    let (run, report) = w.check().await;
    assert_only(&run, &report, &["queue"], "failed", 2);
    let queue = line(&report, "queue");
    assert!(queue["detail"].as_str().unwrap().contains("403"), "{queue}");
    assert!(
        queue["advice"]
            .as_str()
            .unwrap()
            .contains("Azure Service Bus Data Sender"),
        "{queue}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_without_its_event_grid_subscription_fails_that_line() {
    let w = World::start().await;
    w.azure.remove_event_subscription(SUB_A);
    let (run, report) = w.check().await;
    let name = format!("event-grid.{SUB_A}");
    assert_only(&run, &report, &[&name], "failed", 2);
    assert!(
        line(&report, &name)["advice"]
            .as_str()
            .unwrap()
            .contains("deployEventSubscriptions")
    );

    let w2 = World::start().await;
    w2.azure.set_event_subscription_state(SUB_B, "Failed");
    let (run, report) = w2.check().await;
    let name = format!("event-grid.{SUB_B}");
    assert_only(&run, &report, &[&name], "failed", 2);
    assert!(
        line(&report, &name)["detail"]
            .as_str()
            .unwrap()
            .contains("provisioningState Failed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_counted_where_the_role_allows_reading_them() {
    let w = World::start().await;
    let (_, report) = w.check().await;
    let unread = line(&report, "queue.dead-letter");
    assert!(
        unread["detail"].as_str().unwrap().contains("not read (401)"),
        "{unread}"
    );
    w.bus.grant_manage_with_dead_letters(3);
    let (run, report) = w.check().await;
    assert_only(&run, &report, &["queue.dead-letter"], "warning", 1);
    assert!(
        line(&report, "queue.dead-letter")["detail"]
            .as_str()
            .unwrap()
            .contains("3 dead-lettered")
    );
}
