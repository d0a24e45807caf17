//! The streamed plan equals the whole-file plan: the reference below is the old algorithm
//! (read every resource, extract them together, group with `Extraction::seeds`, sort).

use serde_json::{Value, json};

use super::plan_estate;
use crate::domain::check::EnabledChecks;
use crate::domain::estate::read_estate;
use crate::domain::extract::extract_resources;
use crate::domain::plan::display_order;

/// The whole-file plan as JSON, computed the way `plan --estate` did before streaming.
fn whole_file_plan(path: &std::path::Path, checks: &EnabledChecks) -> Value {
    let estate = read_estate(std::fs::File::open(path).unwrap(), "estate.json").unwrap();
    let extraction = extract_resources(&estate.resources, checks);
    let mut seeds: Vec<_> = extraction.seeds().into_iter().collect();
    seeds.sort_by(|a, b| display_order(&a.0, &b.0));
    let mut warnings = estate.warnings.clone();
    warnings.extend(extraction.warnings.iter().cloned());
    let count = |kind: &str| seeds.iter().filter(|(s, _)| s.kind().as_str() == kind).count();
    json!({
        "seeds": seeds.iter().map(|(seed, sources)| json!({
            "name": seed.name(),
            "type": seed.kind().as_str(),
            "sources": sources.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "warnings": warnings,
        "summary": {
            "seeds": seeds.len(),
            "domains": count("domain"),
            "ipv4": count("ipv4"),
            "ipv6": count("ipv6"),
            "ipranges": count("iprange"),
            "resources": estate.resources.len(),
            "warnings": warnings.len(),
        },
    })
}

/// The streamed plan of the file at `path` (tests only: the domain opens no files).
fn plan_file(path: &std::path::Path, checks: &EnabledChecks) -> super::Plan {
    plan_estate(std::fs::File::open(path).unwrap(), "estate.json", checks).unwrap()
}

fn assert_streamed_equals_whole(items: &[Value], what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let shapes = [
        ("array", Value::Array(items.to_vec())),
        (
            "data",
            json!({"count": items.len(), "skip_token": null, "totalRecords": items.len(), "data": items}),
        ),
        ("value", json!({"value": items, "nextLink": null})),
    ];
    let mut checks_without_records = EnabledChecks::all();
    checks_without_records.set(crate::domain::check::ServiceCheck::DnsRecords, false);
    for (shape, document) in shapes {
        let path = dir.path().join(format!("{shape}.json"));
        std::fs::write(&path, serde_json::to_vec_pretty(&document).unwrap()).unwrap();
        for checks in [EnabledChecks::all(), checks_without_records.clone()] {
            let expected = whole_file_plan(&path, &checks);
            let streamed = plan_file(&path, &checks);
            assert_eq!(streamed.to_json(), expected, "{what}, shape {shape}");
            assert!(!expected["seeds"].as_array().unwrap().is_empty(), "{what}");
        }
    }
}

fn example_items() -> Vec<Value> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/estate.json")).unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    value["data"].as_array().unwrap().clone()
}

#[test]
fn example_estate_in_any_order_plans_as_the_whole_file() {
    let items = example_items();
    assert_streamed_equals_whole(&items, "example estate");
    let mut reversed = items.clone();
    reversed.reverse();
    assert_streamed_equals_whole(&reversed, "example estate reversed");
    // Every third item first: companions and zones land on both sides of their owners.
    let mut interleaved: Vec<Value> = items.iter().skip(2).step_by(3).cloned().collect();
    interleaved.extend(
        items
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 != 2)
            .map(|(_, v)| v.clone()),
    );
    assert_streamed_equals_whole(&interleaved, "example estate interleaved");
}

const SUB: &str = "/subscriptions/5a1c0f3e-0000-4000-8000-00000000000";

fn id(i: usize, rest: &str) -> String {
    format!("{SUB}{}/resourceGroups/rg-{}/providers/{rest}", i % 3, i % 5)
}

/// Owners with companions placed before and after them, private and public zones with record
/// sets on both sides, shared seeds, duplicates, bad values and unreadable items.
pub(crate) fn generated_items(count: usize) -> Vec<Value> {
    let mut items = Vec::new();
    for i in 0..count {
        let account = id(i, &format!("Microsoft.Storage/storageAccounts/st{i}"));
        let blob = json!({
            "id": format!("{account}/blobServices/default"),
            "type": "Microsoft.Storage/storageAccounts/blobServices",
            "properties": {"staticWebsite": {"enabled": i % 3 != 2}},
        });
        let storage = json!({
            "id": account, "type": "Microsoft.Storage/storageAccounts",
            "properties": {
                "primaryEndpoints": {"web": format!("https://st{i}.z6.web.core.windows.net/")},
                "customDomain": {"name": format!("static{}.contoso.com", i % 7)},
            },
        });
        let zone_id = id(i, &format!("Microsoft.Network/dnszones/zone{i}.example.com"));
        let zone = json!({
            "id": zone_id, "type": "Microsoft.Network/dnszones",
            "properties": if i.is_multiple_of(4) { json!({"zoneType": "Private"}) } else { json!({"zoneType": "Public"}) },
        });
        let record =
            json!({"id": format!("{zone_id}/A/www"), "type": "Microsoft.Network/dnszones/A", "properties": {}});
        let apex = json!({"id": format!("{zone_id}/CNAME/@"), "type": "Microsoft.Network/dnszones/CNAME", "properties": {"fqdn": 7}});
        let site = json!({
            "id": id(i, &format!("Microsoft.Web/sites/app{i}")), "type": "Microsoft.Web/sites",
            "properties": {"hostNames": [format!("app{i}.azurewebsites.net"), "shared.contoso.com", "bad host"]},
        });
        let pip = json!({
            "id": id(i, &format!("Microsoft.Network/publicIPAddresses/pip{i}")),
            "type": "Microsoft.Network/publicIPAddresses",
            "properties": {"ipAddress": format!("20.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256)},
        });
        if i.is_multiple_of(2) {
            items.extend([blob, storage, record, apex, zone]);
        } else {
            items.extend([storage, zone, site.clone(), record, blob, apex]);
        }
        items.push(pip);
        if i.is_multiple_of(5) {
            items.push(site);
            items.push(json!(5));
            items.push(json!({"id": "/subscriptions/1/x", "type": 3}));
        }
    }
    items
}

#[test]
fn generated_estate_with_companions_on_both_sides_plans_as_the_whole_file() {
    let items = generated_items(40);
    assert_streamed_equals_whole(&items, "generated");
    let mut reversed = items;
    reversed.reverse();
    assert_streamed_equals_whole(&reversed, "generated reversed");
}

#[test]
fn a_companion_after_its_owner_still_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.json");
    let account = id(1, "Microsoft.Storage/storageAccounts/late");
    let zone = id(1, "Microsoft.Network/dnszones/hidden.example.com");
    let items = json!([
        {"id": format!("{zone}/A/www"), "type": "Microsoft.Network/dnszones/A", "properties": {}},
        {"id": account, "type": "Microsoft.Storage/storageAccounts",
         "properties": {"primaryEndpoints": {"web": "https://late.z6.web.core.windows.net/"}}},
        {"id": zone, "type": "Microsoft.Network/dnszones", "properties": {"zoneType": "Private"}},
        {"id": format!("{account}/blobServices/default"), "properties": {"staticWebsite": {"enabled": true}}},
    ]);
    std::fs::write(&path, items.to_string()).unwrap();
    let plan = plan_file(&path, &EnabledChecks::all());
    let names: Vec<&str> = plan.seeds.iter().map(|s| s.seed.name()).collect();
    assert_eq!(names, ["late.z6.web.core.windows.net"]);
}
