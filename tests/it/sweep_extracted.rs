//! The live sweep extracted page by page (`AzureReader::sweep_extracted`, no resource body kept)
//! gives exactly what extracting the whole sweep at once gives.

use crate::support::{azure_reader, fake_azure};

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
