//! The live sweep extracted page by page (`AzureReader::sweep_extracted`, no resource body kept)
//! gives exactly what extracting the whole sweep at once gives.

use crate::support::{azure_reader, cli, fake_azure};

use azure_reader::*;
use seedwatch::adapters::azure::{AzureReader, NoProgress};
use seedwatch::domain::check::EnabledChecks;
use seedwatch::domain::extract::{Contribution, Extraction, extract_resources};
use serde_json::json;

/// Contributions and warnings in a stable order (query chains finish in any order).
fn sorted(extraction: Extraction) -> (Vec<Contribution>, Vec<String>) {
    let mut contributions = extraction.contributions;
    contributions.sort();
    let mut warnings: Vec<String> = extraction.warnings.iter().map(ToString::to_string).collect();
    warnings.sort();
    (contributions, warnings)
}

/// A private zone and a public one, each with a record set: the zone (table `resources`) and
/// its records (table `dnsresources`) arrive on different query chains, in any order.
fn add_zones(fake: &fake_azure::FakeAzure, sub: &str) {
    let rg = format!("/subscriptions/{sub}/resourceGroups/zones");
    for (zone, zone_type) in [("private.example.com", "Private"), ("public.example.com", "Public")] {
        fake.upsert(json!({
            "id": format!("{rg}/providers/Microsoft.Network/dnszones/{zone}"),
            "name": zone, "type": "Microsoft.Network/dnszones", "location": "global",
            "properties": {"zoneType": zone_type}
        }));
        fake.upsert(json!({
            "id": format!("{rg}/providers/Microsoft.Network/dnszones/{zone}/A/www"),
            "name": "www", "type": "Microsoft.Network/dnszones/A",
            "properties": {"fqdn": format!("www.{zone}."), "ARecords": [{"ipv4Address": "20.1.2.3"}]}
        }));
    }
}

async fn both_ways(
    fake: &fake_azure::FakeAzure,
) -> ((Vec<Contribution>, Vec<String>), (Vec<Contribution>, Vec<String>)) {
    let live = reader(fake, json!({}), tuning());
    let checks = EnabledChecks::all();
    let whole = live.sweep(&checks, &NoProgress).await.unwrap();
    let extracted = live.sweep_extracted(&checks, &NoProgress).await.unwrap();
    assert_eq!(extracted.resources_read, whole.resources.len());
    assert_eq!(
        serde_json::to_value(&extracted.report).unwrap(),
        serde_json::to_value(&whole.report).unwrap()
    );
    (
        sorted(extract_resources(&whole.resources, &checks)),
        sorted(extracted.extraction),
    )
}

#[tokio::test]
async fn page_by_page_extraction_equals_extracting_the_whole_sweep() {
    let (fake, _estate, subs) = started_with_lax_graph_quota(3, 1500).await;
    add_zones(&fake, &subs[0]);
    let (whole, extracted) = both_ways(&fake).await;
    assert!(whole.0.len() > 1000, "the estate contributes seeds: {}", whole.0.len());
    // The private zone's record is not seeded, the public one's is; static websites count.
    let names: Vec<&str> = whole.0.iter().map(|c| c.seed.name()).collect();
    assert!(names.contains(&"www.public.example.com"));
    assert!(!names.contains(&"www.private.example.com"));
    assert!(
        whole.0.iter().any(|c| c.path.contains("primaryEndpoints.web")),
        "a static website seed"
    );
    assert_eq!(extracted, whole);
}

#[tokio::test]
async fn a_failed_chain_is_left_out_of_both_alike() {
    let (fake, _estate, subs) = started_with_lax_graph_quota(3, 900).await;
    add_zones(&fake, &subs[1]);
    fake.forbid(&subs[1]);
    let (whole, extracted) = both_ways(&fake).await;
    assert!(!whole.0.is_empty());
    assert!(
        !whole
            .0
            .iter()
            .any(|c| c.owner.subscription_id().eq_ignore_ascii_case(&subs[1])),
        "nothing of the forbidden subscription"
    );
    assert_eq!(extracted, whole);
}

/// The multi-tenant reader (`azure.tenants`) sweeps each connection page by page too, and
/// joining the connections' extractions equals extracting the joined sweep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenants_reader_extracts_page_by_page_with_the_same_result() {
    use seedwatch::adapters::azure::StaticToken;
    use seedwatch::adapters::azure::tenants::reader_from_config;
    use seedwatch::domain::secret::Secret;

    let (fake, _estate, subs) = started_with_lax_graph_quota(3, 1500).await;
    add_zones(&fake, &subs[0]);
    // Tenant A reads the first subscription, tenant B every other one.
    let tenants = json!([
        {"tenant_id": "aaaaaaaa-1111-4111-8111-111111111111", "credential": "default", "subscriptions": [subs[0]]},
        {"tenant_id": "bbbbbbbb-2222-4222-8222-222222222222", "credential": "default"}
    ]);
    let config = config(&fake, json!({"tenants": tenants}));
    let token = std::sync::Arc::new(StaticToken(Secret::new(fake.arm_token_minted_for_test())));
    let reader = reader_from_config(&config, token, &std::collections::HashMap::<String, String>::new());
    let checks = EnabledChecks::all();

    let whole = reader.sweep(&checks, &NoProgress).await.unwrap();
    let extracted = reader.sweep_extracted(&checks, &NoProgress).await.unwrap();

    assert_eq!(extracted.report.tenants.len(), 2, "{:?}", extracted.report);
    assert!(extracted.report.is_fully_complete(), "{:?}", extracted.report);
    assert_eq!(extracted.resources_read, whole.resources.len());
    assert_eq!(
        serde_json::to_value(&extracted.report).unwrap(),
        serde_json::to_value(&whole.report).unwrap()
    );
    let expected = sorted(extract_resources(&whole.resources, &checks));
    assert!(
        expected.0.len() > 1000,
        "the estate contributes seeds: {}",
        expected.0.len()
    );
    let names: Vec<&str> = expected.0.iter().map(|c| c.seed.name()).collect();
    assert!(names.contains(&"www.public.example.com"));
    assert!(!names.contains(&"www.private.example.com"));
    assert_eq!(sorted(extracted.extraction), expected);
}

/// `seedwatch plan` without `--estate` plans from the sweep extracted page by page: the plan
/// (seeds, sources, warnings, resources read) is the one the whole sweep gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_plan_equals_the_plan_of_the_whole_sweep() {
    use seedwatch::domain::plan::Plan;

    let (fake, _estate, subs) = started_with_lax_graph_quota(3, 1500).await;
    add_zones(&fake, &subs[2]);
    let checks = EnabledChecks::all();
    let whole = reader(&fake, json!({}), tuning())
        .sweep(&checks, &NoProgress)
        .await
        .unwrap();
    let expected = Plan::from_resources(&whole.resources, Vec::new(), &checks).to_json();

    let yaml = format!(
        "azure:\n  endpoints:\n    resource_manager: {}\nhttp:\n  retry_base_delay: 10ms\n  retry_max_delay: 50ms\n",
        fake.base_url()
    );
    let mut env = vec![("CONNECTOR_CONFIG".to_string(), yaml)];
    env.extend(fake.managed_identity_env());
    let dir = tempfile::tempdir().unwrap();
    let live = cli::run(&["plan", "--json"], dir.path(), env).await.ok().json();

    assert!(expected["seeds"].as_array().unwrap().len() > 1000);
    assert_eq!(live["seeds"], expected["seeds"]);
    assert_eq!(live["summary"], expected["summary"]);
    assert!(expected["summary"].is_object());
    // Query chains finish in any order, and warnings keep the order they were read in.
    let warnings = |plan: &serde_json::Value| {
        let mut all: Vec<String> = plan["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        all.sort();
        all
    };
    assert_eq!(warnings(&live), warnings(&expected));
    assert_eq!(live["completeness"]["incomplete"], json!([]));
}
