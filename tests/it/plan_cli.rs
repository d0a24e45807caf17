//! `seedwatch plan --estate` end to end through the built binary.

use crate::support::cli;

use std::path::Path;

use assert_cmd::Command;
use cli::{EXAMPLE_ESTATE, hermetic_command, planned_seeds};
use predicates::prelude::*;
use serde_json::Value;

/// `seedwatch plan --json --estate examples/estate.json` in `dir`.
fn plan_example_as_json(dir: &Path) -> Command {
    let mut cmd = hermetic_command(dir);
    cmd.args(["plan", "--json", "--estate", EXAMPLE_ESTATE]);
    cmd
}

/// `seedwatch plan --estate <file>` in `dir`.
fn plan_file(dir: &Path, file: &Path) -> Command {
    let mut cmd = hermetic_command(dir);
    cmd.args(["plan", "--estate"]).arg(file);
    cmd
}

fn plan_json(cmd: &mut Command) -> Value {
    let output = cmd.assert().success().get_output().stdout.clone();
    let text = String::from_utf8(output).unwrap();
    assert_eq!(text.trim().lines().count(), 1, "exactly one JSON object: {text}");
    serde_json::from_str(&text).unwrap()
}

const SUB: &str = "/subscriptions/8f3c2a1e-5b7d-4e9a-9c61-2d4f7a0b3e15/resourceGroups";

/// Every seed the example estate must give, in display order, with how many sources.
const EXPECTED: &[(&str, &str, usize)] = &[
    ("contoso-agw.westeurope.cloudapp.azure.com", "domain", 1),
    ("devbox-contoso.westeurope.cloudapp.azure.com", "domain", 1),
    ("mysql-contoso.mysql.database.azure.com", "domain", 1),
    ("psql-contoso.postgres.database.azure.com", "domain", 1),
    ("cosmos-contoso.documents.azure.com", "domain", 1),
    ("cosmos-contoso-northeurope.documents.azure.com", "domain", 1),
    ("cosmos-contoso-perimeter.documents.azure.com", "domain", 1),
    ("cosmos-contoso-westeurope.documents.azure.com", "domain", 1),
    ("contoso.com", "domain", 2),
    ("api.contoso.com", "domain", 2),
    ("apis.contoso.com", "domain", 1),
    ("apps.contoso.com", "domain", 2),
    ("assets.contoso.com", "domain", 1),
    ("beta.contoso.com", "domain", 1),
    ("checkout.contoso.com", "domain", 1),
    ("developer.contoso.com", "domain", 1),
    ("docs.contoso.com", "domain", 1),
    ("files.contoso.com", "domain", 1),
    ("gateway.contoso.com", "domain", 1),
    ("mail.contoso.com", "domain", 1),
    ("orders.contoso.com", "domain", 1),
    ("portal.contoso.com", "domain", 1),
    ("shop.contoso.com", "domain", 2),
    ("staging-api.contoso.com", "domain", 1),
    ("static.contoso.com", "domain", 1),
    ("status.contoso.com", "domain", 1),
    ("v6.contoso.com", "domain", 1),
    ("www.contoso.com", "domain", 2),
    ("aks-prod-1a2b3c4d.hcp.westeurope.azmk8s.io", "domain", 1),
    ("ci-scanner.westeurope.azurecontainer.io", "domain", 1),
    (
        "ca-orders.blueforest-1a2b3c4d.westeurope.azurecontainerapps.io",
        "domain",
        1,
    ),
    ("crcontoso.azurecr.io", "domain", 1),
    ("amr-contoso.westeurope.redis.azure.net", "domain", 1),
    ("kv-contoso-web.vault.azure.net", "domain", 1),
    ("apim-contoso.azure-api.net", "domain", 1),
    ("contoso-assets.azureedge.net", "domain", 1),
    ("fd-contoso.azurefd.net", "domain", 1),
    ("web-prod-b2c3d4e5f6g7h8i9.z01.azurefd.net", "domain", 1),
    ("gentle-river-0a1b2c3d4.5.azurestaticapps.net", "domain", 1),
    ("app-contoso-api.azurewebsites.net", "domain", 1),
    ("app-contoso-api-staging.azurewebsites.net", "domain", 1),
    ("func-contoso-jobs.azurewebsites.net", "domain", 1),
    ("tm-contoso.trafficmanager.net", "domain", 1),
    ("redis-contoso.redis.cache.windows.net", "domain", 1),
    ("stcontosoweb.z6.web.core.windows.net", "domain", 1),
    ("sql-contoso-prod.database.windows.net", "domain", 1),
    ("203.0.113.10", "ipv4", 1),
    ("203.0.113.40", "ipv4", 1),
    ("203.0.113.50", "ipv4", 1),
    ("2001:db8::10", "ipv6", 1),
    ("192.0.2.0/24", "iprange", 1),
    ("198.51.100.16/28", "iprange", 1),
];

#[test]
fn example_estate_gives_exactly_the_expected_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_json(&mut plan_example_as_json(dir.path()));
    let source_counts = plan["seeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sources"].as_array().unwrap().len());
    let got: Vec<(String, String, usize)> = planned_seeds(&plan)
        .into_iter()
        .zip(source_counts)
        .map(|((name, kind), sources)| (name, kind, sources))
        .collect();
    let expected: Vec<(String, String, usize)> = EXPECTED
        .iter()
        .map(|(n, t, c)| (n.to_string(), t.to_string(), *c))
        .collect();
    assert_eq!(got, expected);

    // Provenance: full resource ids, sorted.
    let www = plan["seeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "www.contoso.com")
        .unwrap();
    assert_eq!(
        www["sources"],
        serde_json::json!([
            format!("{SUB}/rg-dns/providers/Microsoft.Network/dnszones/contoso.com/A/www"),
            format!("{SUB}/rg-web/providers/Microsoft.Network/applicationGateways/agw-prod"),
        ])
    );

    // The one deliberate bad value: an App Gateway `?` wildcard.
    let warnings = plan["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(
        warnings[0]["path"],
        "properties.httpListeners[1].properties.hostNames[2]"
    );
    assert!(warnings[0]["resource"].as_str().unwrap().ends_with("/agw-prod"));
    assert!(warnings[0]["message"].as_str().unwrap().contains("app??.contoso.com"));
}

#[test]
fn example_estate_negatives_stay_out() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_json(&mut plan_example_as_json(dir.path()));
    let seeds: Vec<String> = planned_seeds(&plan).into_iter().map(|(n, _)| n).collect();
    for absent in [
        "intranet.contoso.com",                     // listener on a private frontend
        "hr.contoso.com",                           // gateway with a private frontend only
        "legacy.contoso.com",                       // its certificate, same gateway
        "ca.contoso.com",                           // CA certificate in the PKCS#7 bundle
        "pki.contoso.com",                          // CA certificate SAN
        "198.51.100.128/25",                        // decommissioned custom prefix
        "198.51.100.77",                            // A record value
        "contoso.statuspage-vendor.example",        // CNAME target
        "dr.contoso-hosting.example",               // Traffic Manager external endpoint
        "corp.contoso.com",                         // legacy private zone
        "db.corp.contoso.com",                      // record in the private zone
        "selector1._domainkey.contoso.com",         // underscore label
        "logs.contoso.com",                         // storage with public access disabled
        "stcontosodata.z6.web.core.windows.net",    // static website reported disabled
        "stcontosoarchive.z6.web.core.windows.net", // static website unknown
        "app-contoso-backoffice.azurewebsites.net", // public access disabled
        "backoffice.contoso.com",
        "sql-contoso-hr.database.windows.net",
        "cosmos-contoso-hr.documents.azure.com",
        "redis-contoso-vnet.redis.cache.windows.net",    // subnet-injected
        "psql-contoso-vnet.postgres.database.azure.com", // VNet-integrated
        "kv-contoso-hr.vault.azure.net",
        "crcontosohr.azurecr.io",
        "aks-payments-9f8e7d6c.privatelink.westeurope.azmk8s.io", // private cluster
        "ca-inventory-worker.internal.blueforest-1a2b3c4d.westeurope.azurecontainerapps.io",
        "10.30.0.4", // private container group
        "apim-contoso-internal.azure-api.net",
        "app-contoso-api.scm.azurewebsites.net", // SCM host is not in hostNames
        "198.51.100.20",                         // outbound IPs
        "ns1-07.azure-dns.com",
    ] {
        assert!(!seeds.iter().any(|s| s == absent), "{absent} must not be seeded");
    }
    // `dnsSettings.reverseFqdn` (www.contoso.com. on the gateway's public IP) is never used: that
    // IP contributes exactly its DNS name and address; www.contoso.com comes from other resources.
    let pip = format!("{SUB}/rg-web/providers/Microsoft.Network/publicIPAddresses/pip-agw-prod");
    let from_pip: Vec<&str> = plan["seeds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["sources"].as_array().unwrap().iter().any(|source| *source == pip))
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        from_pip,
        ["contoso-agw.westeurope.cloudapp.azure.com", "203.0.113.10"],
        "seeds from {pip}"
    );
}

#[test]
fn text_output_is_a_table_with_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    plan_file(dir.path(), Path::new(EXAMPLE_ESTATE))
        .assert()
        .success()
        .stdout(predicate::str::starts_with("SEED"))
        .stdout(predicate::str::contains("EXAMPLE SOURCE"))
        .stdout(predicate::str::contains("gateway.contoso.com "))
        .stdout(predicate::str::contains("Warnings (1):"))
        .stdout(predicate::str::contains(
            "52 seeds (46 domains, 3 IPv4, 1 IPv6, 2 ranges) from 65 resources; 1 warning.",
        ));
}

#[test]
fn toggles_from_connector_config_turn_checks_off() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "scan_id: s1\nazure:\n  enabled: true\n  services:\n    check_dns_zones: false\n    check_dns_records: false\n    check_application_gateway_certificates: false\n    check_public_ip_addresses: false\n";
    let plan = plan_json(plan_example_as_json(dir.path()).env("CONNECTOR_CONFIG", yaml));
    let seeds = planned_seeds(&plan);
    let has = |n: &str| seeds.iter().any(|(name, _)| name == n);
    assert!(!has("mail.contoso.com"), "DNS records are off");
    assert!(!has("v6.contoso.com"));
    assert!(!has("gateway.contoso.com"), "certificates are off");
    assert!(!has("checkout.contoso.com"));
    assert!(!has("192.0.2.0/24"), "public IPs are off");
    assert!(!has("203.0.113.10"));
    assert!(has("www.contoso.com"), "listener host names stay on");
    assert!(has("shop.contoso.com"), "Front Door stays on");
    let contoso = plan["seeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "contoso.com");
    assert!(contoso.is_none(), "zone and apex record are both off");
}

#[test]
fn config_warnings_go_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    plan_example_as_json(dir.path())
        .env("CONNECTOR_CONFIG", "azure:\n  servics: {}\n")
        .assert()
        .success()
        .stderr(predicate::str::contains("servics"));
}

#[test]
fn malformed_estate_is_exit_2_with_file_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.json");
    std::fs::write(&file, "[\n  {\"id\": \"/subscriptions/1\",\n  oops\n]").unwrap();
    plan_file(dir.path(), &file)
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("broken.json: line 3, column"));

    std::fs::write(&file, "{\"rows\": []}").unwrap();
    plan_file(dir.path(), &file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("\"data\""));

    std::fs::write(&file, b"[{\"id\": \"/subscriptions/1/x\xff\"}]").unwrap();
    plan_file(dir.path(), &file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("broken.json: line 1"));

    plan_file(dir.path(), &dir.path().join("missing.json"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.json"));
}

#[test]
fn bad_items_are_warnings_and_the_rest_is_planned() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("estate.json");
    std::fs::write(
        &file,
        r#"{"value": [
            42,
            {"id": "/subscriptions/1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1",
             "type": "Microsoft.KeyVault/vaults", "properties": {"vaultUri": "https://kv1.vault.azure.net/"}},
            {"name": "no id"}
        ]}"#,
    )
    .unwrap();
    let plan = plan_json(
        hermetic_command(dir.path())
            .args(["plan", "--json", "--estate"])
            .arg(&file),
    );
    assert_eq!(
        planned_seeds(&plan),
        [("kv1.vault.azure.net".to_string(), "domain".to_string())]
    );
    let resources: Vec<&str> = plan["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["resource"].as_str().unwrap())
        .collect();
    assert_eq!(resources, ["estate[0]", "estate[2]"]);
}

/// Without `--estate` the live estate is read; when no credential can be built, the error says
/// so and points at `--estate`. Hermetic: the client-secret credential is chosen explicitly and
/// its variables are removed, so a developer's `az login` does not change the outcome.
#[test]
fn without_estate_and_without_a_credential_points_at_estate() {
    let dir = tempfile::tempdir().unwrap();
    hermetic_command(dir.path())
        .env("CONNECTOR_CONFIG", "azure:\n  credential: client_secret\n")
        .env_remove("AZURE_TENANT_ID")
        .env_remove("AZURE_CLIENT_ID")
        .env_remove("AZURE_CLIENT_SECRET")
        .args(["plan"])
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("--estate"));
}

#[test]
fn bad_config_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    plan_file(dir.path(), Path::new(EXAMPLE_ESTATE))
        .env("CONNECTOR_CONFIG", "azure:\n  services:\n    check_dns_zones: maybe\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("check_dns_zones"));
}

/// The file is streamed: a storage account before its `blobServices/default` and a record set
/// before its private zone still get the whole file's answer, in the table and in `--json`.
#[test]
fn companions_after_their_owners_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("estate.json");
    let rg = "/subscriptions/1/resourceGroups/rg/providers";
    let items = serde_json::json!({"count": 4, "skip_token": null, "data": [
        {"id": format!("{rg}/Microsoft.Network/dnszones/hidden.example.com/A/www"),
         "type": "Microsoft.Network/dnszones/A", "properties": {"fqdn": "www.hidden.example.com."}},
        {"id": format!("{rg}/Microsoft.Storage/storageAccounts/late"), "type": "Microsoft.Storage/storageAccounts",
         "properties": {"primaryEndpoints": {"web": "https://late.z6.web.core.windows.net/"}}},
        {"id": format!("{rg}/Microsoft.Network/dnszones/hidden.example.com"),
         "type": "Microsoft.Network/dnszones", "properties": {"zoneType": "Private"}},
        {"id": format!("{rg}/Microsoft.Storage/storageAccounts/late/blobServices/default"),
         "type": "Microsoft.Storage/storageAccounts/blobServices",
         "properties": {"staticWebsite": {"enabled": true}}},
    ]});
    std::fs::write(&file, items.to_string()).unwrap();
    let plan = plan_json(
        hermetic_command(dir.path())
            .args(["plan", "--json", "--estate"])
            .arg(&file),
    );
    assert_eq!(
        planned_seeds(&plan),
        [("late.z6.web.core.windows.net".to_string(), "domain".to_string())]
    );
    assert_eq!(
        plan["seeds"][0]["sources"],
        serde_json::json!([format!("{rg}/Microsoft.Storage/storageAccounts/late")])
    );
    assert_eq!(plan["summary"]["resources"], 4);
    plan_file(dir.path(), &file)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "late.z6.web.core.windows.net  domain        1  rg/Microsoft.Storage/storageAccounts/late",
        ))
        .stdout(predicate::str::contains("hidden").not());
}

/// Errors far into a streamed file (past the reader's buffer) name the right line and column,
/// and UTF-16 files (PowerShell's `>`) are transcoded while streaming.
#[test]
fn streamed_files_keep_error_positions_and_read_utf16() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("long.json");
    let item = r#"{"id": "/subscriptions/1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1", "type": "Microsoft.KeyVault/vaults", "properties": {"vaultUri": "https://kv1.vault.azure.net/"}}"#;
    let mut text = String::from("[\n");
    for _ in 0..3000 {
        text.push_str(item);
        text.push_str(",\n");
    }
    text.push_str("  {\"id\": oops}\n]");
    std::fs::write(&file, &text).unwrap();
    plan_file(dir.path(), &file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("long.json: line 3002, column 10"));

    let utf16 = dir.path().join("utf16.json");
    let mut bytes = vec![0xFF, 0xFE];
    for unit in format!("[{item}]").encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    std::fs::write(&utf16, &bytes).unwrap();
    let plan = plan_json(
        hermetic_command(dir.path())
            .args(["plan", "--json", "--estate"])
            .arg(&utf16),
    );
    assert_eq!(
        planned_seeds(&plan),
        [("kv1.vault.azure.net".to_string(), "domain".to_string())]
    );
    bytes.push(0x41);
    std::fs::write(&utf16, &bytes).unwrap();
    plan_file(dir.path(), &utf16)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not valid UTF-16"));
}
