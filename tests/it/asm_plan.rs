//! The fake ASM is as strict as the service (key first, values checked against their type, a
//! plan that refuses ranges), and seedwatch remembers a seed ASM refused instead of sending it
//! on every run; `asm.seed_types` turns a type off.

use crate::support::{cli, fake_asm, fake_azure};

use fake_asm::{FakeAsm, Fault, Route};
use fake_azure::FakeAzure;
use serde_json::{Value, json};

const KEY: &str = "test-key-plan-5e1d";
const SCAN: &str = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
const SUB: &str = "aaaaaaaa-0000-4000-8000-000000000001";

async fn fake() -> FakeAsm {
    let asm = FakeAsm::start(KEY).await;
    asm.add_scan(SCAN);
    asm
}

async fn post_seed(asm: &FakeAsm, key: &str, name: &str, kind: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/scans/{SCAN}/seeds", asm.base_url()))
        .header("x-hexiosec-api-key", key)
        .json(&json!({"name": name, "type": kind, "tags": ["t"]}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_key_is_checked_before_any_fault() {
    let asm = fake().await;
    asm.fail_next(Route::Add, 1, Fault::Status(503));
    let (status, _) = post_seed(&asm, "wrong-key", "www.contoso.com", "domain").await;
    assert_eq!(status, 401, "a wrong key is refused before the scripted fault");
    let (status, _) = post_seed(&asm, KEY, "www.contoso.com", "domain").await;
    assert_eq!(
        status, 503,
        "the fault is still there for the next request with the key"
    );
}

#[tokio::test]
async fn values_must_be_of_their_type() {
    let asm = fake().await;
    asm.plan_with_ranges();
    for (name, kind) in [
        ("www.contoso.com", "ipv4"),
        ("20.50.1.7", "domain"),
        ("2603:1020::5", "ipv4"),
        ("20.50.1.7", "ipv6"),
        ("www.contoso.com", "iprange"),
        ("20.50.1.0/33", "iprange"),
    ] {
        let (status, body) = post_seed(&asm, KEY, name, kind).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("INVALID_SEED")),
            "{name} as {kind}: {body}"
        );
    }
    for (name, kind) in [
        ("www.contoso.com", "domain"),
        ("20.50.1.7", "ipv4"),
        ("2603:1020::5", "IPv6"),
        ("20.50.2.0/28", "iprange"),
        ("20.50.3.1-20.50.3.9", "iprange"),
    ] {
        let (status, body) = post_seed(&asm, KEY, name, kind).await;
        assert_eq!(status, 201, "{name} as {kind}: {body}");
    }
}

#[tokio::test]
async fn the_default_plan_refuses_ranges() {
    let asm = fake().await;
    let (status, body) = post_seed(&asm, KEY, "20.50.2.0/28", "iprange").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("SEED_TYPE_NOT_IN_PLAN")),
        "{body}"
    );
    let (status, _) = post_seed(&asm, KEY, "2603:1020::5", "ipv6").await;
    assert_eq!(status, 201, "IPv6 is a documented seed type");
    asm.set_plan_seed_types(&["domain"]);
    let (status, body) = post_seed(&asm, KEY, "20.50.1.7", "ipv4").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("SEED_TYPE_NOT_IN_PLAN")),
        "{body}"
    );
}

fn prefix(n: usize, cidr: &str) -> Value {
    json!({
        "id": format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/publicIPPrefixes/ippre-{n}"),
        "name": format!("ippre-{n}"),
        "type": "Microsoft.Network/publicIPPrefixes",
        "location": "westeurope",
        "sku": {"name": "Standard", "tier": "Regional"},
        "tags": {},
        "properties": {"provisioningState": "Succeeded", "publicIPAddressVersion": "IPv4", "ipPrefix": cidr}
    })
}

struct World {
    azure: FakeAzure,
    asm: FakeAsm,
    dir: tempfile::TempDir,
}

async fn world() -> World {
    let azure = FakeAzure::start().await;
    let pip = format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/pip-1");
    azure.load(vec![
        fake_azure::public_ip(&pip, "203.0.113.7"),
        prefix(1, "20.61.32.0/28"),
    ]);
    World {
        azure,
        asm: fake().await,
        dir: tempfile::tempdir().unwrap(),
    }
}

impl World {
    async fn sync(&self, extra_yaml: &str) -> cli::Run {
        let yaml = format!(
            "scan_id: {SCAN}\nseed_tag: cloud-connector\n\
             http:\n  retry_count: 0\n  timeout: 5s\n\
             asm:\n  base_url: {}\n{extra_yaml}\
             azure:\n  credential: managed_identity\n  endpoints:\n    resource_manager: {}\n",
            self.asm.base_url(),
            self.azure.base_url()
        );
        let env = vec![
            ("CONNECTOR_CONFIG".into(), yaml),
            ("API_KEY".into(), KEY.into()),
            ("IDENTITY_ENDPOINT".into(), self.azure.identity_endpoint()),
            ("IDENTITY_HEADER".into(), self.azure.identity_header()),
            ("AZURE_CLIENT_ID".into(), self.azure.client_id()),
        ];
        cli::run(&["sync", "--json"], self.dir.path(), env).await
    }

    fn adds_of(&self, name: &str) -> usize {
        self.asm
            .journal()
            .iter()
            .filter(|e| e.method == "POST" && e.target == name)
            .count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_seed_is_remembered_not_sent_on_every_run() {
    let w = world().await;
    for run in 0..3 {
        let report = w.sync("").await.ok().json();
        let warnings = report["warnings"].to_string();
        assert!(
            warnings.contains("20.61.32.0/28") && warnings.contains("SEED_TYPE_NOT_IN_PLAN"),
            "run {run}: the refusal is reported every time: {report}"
        );
    }
    assert_eq!(
        w.adds_of("20.61.32.0/28"),
        1,
        "sent once, then answered from the ledger"
    );
    assert_eq!(w.adds_of("203.0.113.7"), 1);
    assert!(w.asm.seed_names(SCAN).contains("203.0.113.7"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_types_turn_a_type_off() {
    let w = world().await;
    let report = w.sync("  seed_types: [domain, ipv4]\n").await.ok().json();
    assert_eq!(w.adds_of("20.61.32.0/28"), 0, "{report}");
    assert_eq!(w.adds_of("203.0.113.7"), 1, "{report}");
    assert!(report["warnings"].to_string().contains("asm.seed_types"), "{report}");

    let bad = w.sync("  seed_types: [domain, cidr]\n").await;
    assert_eq!(bad.code, Some(2), "{bad:?}");
    assert!(
        bad.stderr.contains("asm.seed_types") && bad.stderr.contains("cidr"),
        "{bad:?}"
    );
}
