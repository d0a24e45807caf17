//! What an ARM read that did not say "gone" must never do: delete. Each test runs the built
//! `seedwatch` against the fakes and counts ASM DELETE requests.
//!
//! - a 404 whose code is not `ResourceNotFound`, `ResourceGroupNotFound` or
//!   `ParentResourceNotFound` is an error that is retried, not a delete (issue 12.3);
//! - a failed companion read (a storage account's `blobServices/default`) is not "static
//!   website off": apply fails, sync reports the check incomplete, nothing is deleted (12.5);
//! - a record set read by an event is read with its zone, so a legacy private zone's records
//!   are not seeded (12.8).

use crate::support::{cli, fake_asm, fake_azure};

use std::collections::BTreeSet;

use cli::Run;
use fake_asm::{FakeAsm, Route};
use fake_azure::FakeAzure;
use serde_json::{Value, json};

const KEY: &str = "arm-reads-key";
const SCAN: &str = "scan-arm-reads";
const TAG: &str = "cloud-connector";
const SUB: &str = "bbbbbbbb-0000-4000-8000-000000000001";

fn rg() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg-1")
}

fn pip_id() -> String {
    format!("{}/providers/Microsoft.Network/publicIPAddresses/pip-1", rg())
}

fn account_id() -> String {
    format!("{}/providers/Microsoft.Storage/storageAccounts/stweb", rg())
}

struct World {
    azure: FakeAzure,
    asm: FakeAsm,
    dir: tempfile::TempDir,
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
        }
    }

    /// A laxer world than the default: the estate holds a seed or two, so the deletion breaker
    /// (`sync.max_delete_fraction`) is opened fully for the one delete each test expects.
    async fn run(&self, args: &[&str]) -> Run {
        let yaml = format!(
            "scan_id: {SCAN}\nseed_tag: {TAG}\ndelete_stale_seeds: true\n\
             sync:\n  max_delete_fraction: 1.0\n\
             http:\n  retry_count: 1\n  retry_base_delay: 10ms\n  retry_max_delay: 20ms\n  timeout: 5s\n\
             asm:\n  base_url: {}\n\
             azure:\n  credential: managed_identity\n  endpoints:\n    resource_manager: {}\n",
            self.asm.base_url(),
            self.azure.base_url()
        );
        let mut env = vec![("CONNECTOR_CONFIG".into(), yaml), ("API_KEY".into(), KEY.into())];
        env.extend(self.azure.managed_identity_env());
        cli::run(args, self.dir.path(), env).await
    }

    async fn apply(&self, id: &str, deleted: bool) -> Run {
        let mut args = vec!["apply", "--resource", id, "--json"];
        if deleted {
            args.push("--deleted");
        }
        self.run(&args).await
    }

    fn tagged(&self) -> BTreeSet<String> {
        self.asm.tagged_names(SCAN, TAG)
    }

    fn deletes(&self) -> usize {
        self.asm.requests(Route::Delete)
    }
}

/// A fault a test injects into the fake ARM.
type Fault = dyn Fn(&FakeAzure);

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_that_does_not_say_gone_deletes_nothing_and_fails_the_apply_as_transient() {
    let w = World::start(vec![fake_azure::public_ip(&pip_id(), "203.0.113.51")]).await;
    w.apply(&pip_id(), false).await.ok();
    assert_eq!(w.tagged(), set(&["203.0.113.51"]));

    let unclear: [(&str, &Fault); 4] = [
        ("SubscriptionNotFound", &|a| a.lose_subscription(SUB)),
        ("InvalidResourceType", &|a| {
            a.answer_not_found(
                SUB,
                "InvalidResourceType",
                "The resource type could not be found in the namespace 'Microsoft.Network'.",
            )
        }),
        ("NoRegisteredProviderFound", &|a| {
            a.answer_not_found(
                SUB,
                "NoRegisteredProviderFound",
                "No registered resource provider found.",
            )
        }),
        ("a garbled body", &|a| {
            a.answer_not_found(SUB, "", "<html>404 Not Found</html>")
        }),
    ];
    for (what, fault) in unclear {
        fault(&w.azure);
        let run = w.apply(&pip_id(), true).await;
        assert_eq!(run.code, Some(1), "{what}: {run:?}");
        assert_eq!(run.json()["transient"], true, "{what}: retried, not given up: {run:?}");
        assert_eq!(w.deletes(), 0, "{what}: an ASM DELETE was sent");
        assert_eq!(w.tagged(), set(&["203.0.113.51"]), "{what}");
        w.azure.clear_faults();
    }

    // The same event once ARM says ResourceNotFound: the one delete this test expects.
    w.azure.delete(&pip_id());
    let gone = w.apply(&pip_id(), true).await;
    assert_eq!(gone.code, Some(0), "{gone:?}");
    assert_eq!(w.deletes(), 1);
    assert!(w.tagged().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_resource_group_or_parent_is_gone() {
    let afd = format!("{}/providers/Microsoft.Cdn/profiles/afd1", rg());
    let endpoint = format!("{afd}/afdEndpoints/web1");
    let w = World::start(vec![
        fake_azure::public_ip(&pip_id(), "203.0.113.52"),
        json!({"id": afd, "name": "afd1", "type": "Microsoft.Cdn/profiles", "kind": "frontdoor",
               "sku": {"name": "Standard_AzureFrontDoor"}, "properties": {}}),
        json!({"id": endpoint, "name": "web1", "type": "Microsoft.Cdn/profiles/afdEndpoints",
               "properties": {"hostName": "web1-abc123.z01.azurefd.net", "enabledState": "Enabled"}}),
    ])
    .await;
    w.apply(&pip_id(), false).await.ok();
    w.apply(&endpoint, false).await.ok();
    assert_eq!(w.tagged(), set(&["203.0.113.52", "web1-abc123.z01.azurefd.net"]));

    // ParentResourceNotFound: the profile went, the endpoint with it.
    w.azure.delete(&afd);
    w.apply(&endpoint, true).await.ok();
    // ResourceGroupNotFound: the group went, the address with it.
    w.azure.delete(&rg());
    w.apply(&pip_id(), true).await.ok();
    assert!(w.tagged().is_empty());
    assert_eq!(w.deletes(), 2);
}

fn storage_estate(static_website: bool) -> Vec<Value> {
    vec![
        json!({"id": account_id(), "name": "stweb", "type": "Microsoft.Storage/storageAccounts", "kind": "StorageV2",
               "properties": {"primaryEndpoints": {"web": "https://stweb.z6.web.core.windows.net/"}}}),
        json!({"id": format!("{}/blobServices/default", account_id()), "name": "default",
               "type": "Microsoft.Storage/storageAccounts/blobServices",
               "properties": {"staticWebsite": {"enabled": static_website}}}),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_companion_read_is_not_static_website_off() {
    let w = World::start(storage_estate(true)).await;
    w.run(&["sync", "--json"]).await.ok();
    assert_eq!(w.tagged(), set(&["stweb.z6.web.core.windows.net"]));
    let blob = format!("{}/blobServices/default", account_id());

    for (status, code) in [
        (400, "InvalidApiVersionParameter"),
        (403, "AuthorizationFailed"),
        (404, "InvalidResourceType"),
        (409, "Conflict"),
        (429, "TooManyRequests"),
        (503, "ServiceUnavailable"),
    ] {
        w.azure.fail_get(&blob, status, code);
        let apply = w.apply(&account_id(), false).await;
        assert_eq!(apply.code, Some(1), "{status}: {apply:?}");
        let sync = w.run(&["sync", "--json"]).await;
        let report = sync.json();
        let incomplete = report["incomplete_scopes"].as_array().cloned().unwrap_or_default();
        assert!(
            incomplete.iter().any(|i| i["check"] == "storage_static_websites"
                && i["subscription"].as_str().is_some_and(|s| s.eq_ignore_ascii_case(SUB))),
            "{status}: the report says the check was not read completely: {}",
            sync.stdout
        );
        assert_eq!(w.deletes(), 0, "{status}: an ASM DELETE was sent");
        assert_eq!(w.tagged(), set(&["stweb.z6.web.core.windows.net"]), "{status}");
        w.azure.clear_faults();
    }

    // Switched off for real: the next read withdraws the seed.
    w.azure.load(storage_estate(false));
    w.apply(&account_id(), false).await.ok();
    assert_eq!(w.deletes(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_on_a_record_in_a_legacy_private_zone_adds_nothing() {
    let zone = format!("{}/providers/Microsoft.Network/dnszones/ad.contoso.com", rg());
    let record = format!("{zone}/A/dc01");
    let w = World::start(vec![
        json!({"id": zone, "name": "ad.contoso.com", "type": "Microsoft.Network/dnszones", "location": "global",
               "properties": {"zoneType": "Private", "numberOfRecordSets": 2}}),
        json!({"id": record, "name": "dc01", "type": "Microsoft.Network/dnszones/A",
               "properties": {"fqdn": "dc01.ad.contoso.com.", "TTL": 3600, "ARecords": [{"ipv4Address": "203.0.113.60"}]}}),
    ])
    .await;
    let run = w.apply(&record, false).await;
    run.ok();
    assert!(w.tagged().is_empty(), "{}", run.stdout);
    assert_eq!(w.asm.requests(Route::Add), 0);
    assert_eq!(w.azure.counts().arm_gets, 2, "the record set and its zone");
}
