//! Estates for the fake: one public IP, and a generated realistic mix.

use serde_json::{Value, json};

/// A Standard, static IPv4 public IP address at `id` holding `ip`, as ARM and Resource Graph
/// return it; its name is the last segment of `id`.
pub fn public_ip(id: &str, ip: &str) -> Value {
    json!({
        "id": id,
        "name": id.rsplit('/').next().unwrap(),
        "type": "Microsoft.Network/publicIPAddresses",
        "location": "westeurope",
        "sku": {"name": "Standard", "tier": "Regional"},
        "tags": {},
        "properties": {
            "provisioningState": "Succeeded",
            "ipAddress": ip,
            "publicIPAllocationMethod": "Static",
            "publicIPAddressVersion": "IPv4"
        }
    })
}

/// A deterministic estate of `resources` resources spread over `subscriptions` subscriptions,
/// in a realistic mix of the policy's types (public IPs, DNS records, sites, storage, AFD, ...).
/// ARM-only children (AFD custom domains, blobServices) are included and count.
pub fn generate_estate(subscriptions: usize, resources: usize, seed: u64) -> Vec<Value> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let subs: Vec<String> = (0..subscriptions.max(1))
        .map(|i| format!("{:08x}-0000-4000-8000-{:012x}", seed as u32, i))
        .collect();
    let mut out = Vec::with_capacity(resources);
    let mut i = 0usize;
    while out.len() < resources {
        let sub = &subs[i % subs.len()];
        let rg = format!("/subscriptions/{sub}/resourceGroups/rg-{}", i % 50);
        let roll = next() % 100;
        let n = i;
        match roll {
            0..=34 => out.push(json!({
                "id": format!("{rg}/providers/Microsoft.Network/publicIPAddresses/pip-{n}"),
                "name": format!("pip-{n}"), "type": "Microsoft.Network/publicIPAddresses", "location": "westeurope",
                "sku": {"name": "Standard", "tier": "Regional"}, "tags": {},
                "properties": {"provisioningState": "Succeeded", "ipAddress": format!("20.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255),
                  "publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4",
                  "dnsSettings": {"domainNameLabel": format!("app{n}"), "fqdn": format!("app{n}.westeurope.cloudapp.azure.com")}}
            })),
            35..=54 => out.push(json!({
                "id": format!("{rg}/providers/Microsoft.Network/dnszones/zone{}.example.com/A/host{n}", n % 100),
                "name": format!("host{n}"), "type": "Microsoft.Network/dnszones/A",
                "properties": {"fqdn": format!("host{n}.zone{}.example.com.", n % 100), "TTL": 3600,
                  "ARecords": [{"ipv4Address": "203.0.113.10"}], "provisioningState": "Succeeded"}
            })),
            55..=64 => out.push(json!({
                "id": format!("{rg}/providers/Microsoft.Network/dnszones/zone{}.example.com/CNAME/www{n}", n % 100),
                "name": format!("www{n}"), "type": "Microsoft.Network/dnszones/CNAME",
                "properties": {"fqdn": format!("www{n}.zone{}.example.com.", n % 100), "TTL": 3600,
                  "CNAMERecord": {"cname": format!("app{n}.azurewebsites.net")}}
            })),
            65..=76 => out.push(json!({
                "id": format!("{rg}/providers/Microsoft.Web/sites/app{n}"),
                "name": format!("app{n}"), "type": "Microsoft.Web/sites", "kind": "app,linux", "location": "westeurope", "tags": {},
                "properties": {"state": "Running", "enabled": true, "publicNetworkAccess": "Enabled",
                  "defaultHostName": format!("app{n}.azurewebsites.net"),
                  "hostNames": [format!("app{n}.azurewebsites.net"), format!("www{n}.contoso.com")],
                  "enabledHostNames": [format!("app{n}.azurewebsites.net"), format!("app{n}.scm.azurewebsites.net")],
                  "siteConfig": {"linuxFxVersion": "DOCKER|nginx", "ipSecurityRestrictions": [{"ipAddress": "Any", "action": "Allow"}]}}
            })),
            77..=81 => {
                let account = format!("{rg}/providers/Microsoft.Storage/storageAccounts/st{n}");
                out.push(json!({
                    "id": account, "name": format!("st{n}"), "type": "Microsoft.Storage/storageAccounts", "kind": "StorageV2",
                    "location": "westeurope", "sku": {"name": "Standard_LRS", "tier": "Standard"}, "tags": {},
                    "properties": {"provisioningState": "Succeeded", "publicNetworkAccess": "Enabled",
                      "networkAcls": {"defaultAction": "Allow", "bypass": "AzureServices", "ipRules": [], "virtualNetworkRules": []},
                      "primaryEndpoints": {"blob": format!("https://st{n}.blob.core.windows.net/"), "web": format!("https://st{n}.z6.web.core.windows.net/")}}
                }));
                if n.is_multiple_of(2) && out.len() < resources {
                    out.push(json!({
                        "id": format!("{account}/blobServices/default"), "name": "default",
                        "type": "Microsoft.Storage/storageAccounts/blobServices",
                        "properties": {"staticWebsite": {"enabled": n.is_multiple_of(4), "indexDocument": "index.html"}}
                    }));
                }
            }
            82..=84 => {
                let profile = format!("{rg}/providers/Microsoft.Cdn/profiles/afd{n}");
                out.push(json!({
                    "id": profile, "name": format!("afd{n}"), "type": "Microsoft.Cdn/profiles", "kind": "frontdoor",
                    "location": "Global", "sku": {"name": "Standard_AzureFrontDoor"},
                    "properties": {"resourceState": "Active", "frontDoorId": "00000000-0000-0000-0000-000000000000"}
                }));
                if out.len() < resources {
                    out.push(json!({
                        "id": format!("{profile}/afdendpoints/web{n}"), "name": format!("web{n}"),
                        "type": "Microsoft.Cdn/profiles/afdendpoints", "location": "Global",
                        "properties": {"hostName": format!("web{n}-b2c3d4e5f6g7h8i9.z01.azurefd.net"), "enabledState": "Enabled"}
                    }));
                }
                if out.len() < resources {
                    out.push(json!({
                        "id": format!("{profile}/customdomains/www{n}"), "name": format!("www{n}"),
                        "type": "Microsoft.Cdn/profiles/customdomains",
                        "properties": {"hostName": format!("edge{n}.contoso.com"), "domainValidationState": "Approved"}
                    }));
                }
            }
            85..=88 => out.push(json!({
                "id": format!("{rg}/providers/Microsoft.Sql/servers/sql{n}"),
                "name": format!("sql{n}"), "type": "Microsoft.Sql/servers", "location": "westeurope",
                "properties": {"fullyQualifiedDomainName": format!("sql{n}.database.windows.net"), "publicNetworkAccess": "Enabled", "state": "Ready"}
            })),
            89..=92 => out.push(json!({
                "id": format!("{rg}/providers/Microsoft.KeyVault/vaults/kv{n}"),
                "name": format!("kv{n}"), "type": "Microsoft.KeyVault/vaults", "location": "westeurope",
                "properties": {"vaultUri": format!("https://kv{n}.vault.azure.net/"), "publicNetworkAccess": "Enabled"}
            })),
            93..=95 => out.push(json!({
                "id": format!("{rg}/providers/Microsoft.DocumentDB/databaseAccounts/cosmos{n}"),
                "name": format!("cosmos{n}"), "type": "Microsoft.DocumentDB/databaseAccounts", "kind": "GlobalDocumentDB", "location": "westeurope",
                "properties": {"documentEndpoint": format!("https://cosmos{n}.documents.azure.com:443/"), "publicNetworkAccess": "Enabled",
                  "locations": [{"locationName": "West Europe", "documentEndpoint": format!("https://cosmos{n}-westeurope.documents.azure.com:443/")}]}
            })),
            96..=97 => out.push(json!({
                "id": format!("{rg}/providers/Microsoft.Cache/Redis/redis{n}"),
                "name": format!("redis{n}"), "type": "Microsoft.Cache/Redis", "location": "westeurope",
                "properties": {"hostName": format!("redis{n}.redis.cache.windows.net"), "publicNetworkAccess": "Enabled", "port": 6379, "sslPort": 6380}
            })),
            _ => out.push(json!({
                "id": format!("{rg}/providers/Microsoft.Compute/virtualMachines/vm{n}"),
                "name": format!("vm{n}"), "type": "Microsoft.Compute/virtualMachines", "location": "westeurope",
                "properties": {"vmId": format!("{n}"), "hardwareProfile": {"vmSize": "Standard_B2s"}}
            })),
        }
        i += 1;
    }
    out
}
