//! Shared Microsoft parents and regional endpoints: names many tenants live under, which are
//! never seeds themselves. Tenant names below them (`myapp.azurewebsites.net`) are seeds.

/// Suffixes shared by every tenant of a service. The suffix itself is never a seed.
const SHARED_SUFFIXES: &[&str] = &[
    // Generic Microsoft and Azure parents.
    "azure.com",
    "azure.net",
    "windows.net",
    "core.windows.net",
    "microsoft.com",
    "azureedge.net",
    "azurefd.net",
    "trafficmanager.net",
    "cloudapp.net",
    "cloudapp.azure.com",
    "azurewebsites.net",
    "scm.azurewebsites.net",
    "appserviceenvironment.net",
    "azurestaticapps.net",
    "azure-api.net",
    "developer.azure-api.net",
    "management.azure-api.net",
    "scm.azure-api.net",
    "portal.azure-api.net",
    "blob.core.windows.net",
    "web.core.windows.net",
    "dfs.core.windows.net",
    "file.core.windows.net",
    "queue.core.windows.net",
    "table.core.windows.net",
    "blob.storage.azure.net",
    "web.storage.azure.net",
    "database.windows.net",
    "database.azure.com",
    "postgres.database.azure.com",
    "mysql.database.azure.com",
    "documents.azure.com",
    "cosmos.azure.com",
    "redis.cache.windows.net",
    "cache.windows.net",
    "redisenterprise.cache.azure.net",
    "cache.azure.net",
    "redis.azure.net",
    "azmk8s.io",
    "azurecontainerapps.io",
    "azurecontainer.io",
    "vault.azure.net",
    "managedhsm.azure.net",
    "azurecr.io",
    "data.azurecr.io",
    "servicebus.windows.net",
    "cognitiveservices.azure.com",
    "openai.azure.com",
    "api.cognitive.microsoft.com",
    "cognitive.microsoft.com",
    "service.signalr.net",
    "webpubsub.azure.com",
    "search.windows.net",
    "azureedge-test.net",
    "azure-dns.com",
    "azure-dns.net",
    "azure-dns.org",
    "azure-dns.info",
    "bastion.azure.com",
    // Sovereign clouds.
    "usgovcloudapi.net",
    "azurewebsites.us",
    "cloudapp.usgovcloudapi.net",
    "chinacloudapi.cn",
    "chinacloudsites.cn",
    "chinacloudapp.cn",
];

/// Suffixes below which the next label is a region, a zone or a shard (`westeurope.cloudapp.azure.com`,
/// `z13.web.core.windows.net`, `z01.azurefd.net`): such one-label-deeper names are shared too.
const REGIONAL_SUFFIXES: &[&str] = &[
    "cloudapp.azure.com",
    "azmk8s.io",
    "hcp.azmk8s.io",
    "azurecontainerapps.io",
    "azurecontainer.io",
    "web.core.windows.net",
    "blob.storage.azure.net",
    "web.storage.azure.net",
    "azurefd.net",
    "azurewebsites.net",
    "api.cognitive.microsoft.com",
    "azurestaticapps.net",
    "data.azurecr.io",
    "redisenterprise.cache.azure.net",
    "redis.azure.net",
    "documents.azure.com",
];

/// Azure region names as they appear in host names.
const REGIONS: &[&str] = &[
    "australiacentral",
    "australiacentral2",
    "australiaeast",
    "australiasoutheast",
    "austriaeast",
    "belgiumcentral",
    "brazilsouth",
    "brazilsoutheast",
    "canadacentral",
    "canadaeast",
    "centralindia",
    "centralus",
    "centraluseuap",
    "chilecentral",
    "eastasia",
    "eastus",
    "eastus2",
    "eastus2euap",
    "francecentral",
    "francesouth",
    "germanynorth",
    "germanywestcentral",
    "indonesiacentral",
    "israelcentral",
    "italynorth",
    "japaneast",
    "japanwest",
    "jioindiacentral",
    "jioindiawest",
    "koreacentral",
    "koreasouth",
    "malaysiawest",
    "mexicocentral",
    "newzealandnorth",
    "northcentralus",
    "northeurope",
    "norwayeast",
    "norwaywest",
    "polandcentral",
    "qatarcentral",
    "southafricanorth",
    "southafricawest",
    "southcentralus",
    "southindia",
    "southeastasia",
    "spaincentral",
    "swedencentral",
    "swedensouth",
    "switzerlandnorth",
    "switzerlandwest",
    "uaecentral",
    "uaenorth",
    "uksouth",
    "ukwest",
    "westcentralus",
    "westeurope",
    "westindia",
    "westus",
    "westus2",
    "westus3",
    "usgovarizona",
    "usgovtexas",
    "usgovvirginia",
    "chinaeast",
    "chinaeast2",
    "chinaeast3",
    "chinanorth",
    "chinanorth2",
    "chinanorth3",
];

/// Whether `name` (lower-case, no trailing dot) is a shared parent or a shared regional endpoint.
pub fn is_shared_parent(name: &str) -> bool {
    if SHARED_SUFFIXES.contains(&name) {
        return true;
    }
    // Azure DNS name servers (`ns1-07.azure-dns.com`) are shared by every hosted zone.
    if ["azure-dns.com", "azure-dns.net", "azure-dns.org", "azure-dns.info"]
        .iter()
        .any(|parent| is_below(name, parent))
    {
        return true;
    }
    let Some((first, rest)) = name.split_once('.') else {
        return false;
    };
    if REGIONAL_SUFFIXES.contains(&rest) && is_region_like(first) {
        return true;
    }
    // Two levels: `hcp.westeurope.azmk8s.io`, `privatelink.westeurope.azmk8s.io`, `z13.web.…`.
    if let Some((second, rest2)) = rest.split_once('.')
        && REGIONAL_SUFFIXES.contains(&rest2)
        && is_region_like(second)
    {
        return matches!(first, "hcp" | "portal" | "privatelink" | "scm");
    }
    false
}

fn is_below(name: &str, parent: &str) -> bool {
    name.len() > parent.len() + 1 && name.ends_with(parent) && name.as_bytes()[name.len() - parent.len() - 1] == b'.'
}

/// A region name, a region with a stamp suffix (`westeurope-01`), or a zone shard (`z13`).
fn is_region_like(label: &str) -> bool {
    if REGIONS.contains(&label) {
        return true;
    }
    if let Some((region, stamp)) = label.rsplit_once('-')
        && REGIONS.contains(&region)
        && !stamp.is_empty()
        && stamp.bytes().all(|b| b.is_ascii_digit())
    {
        return true;
    }
    label.len() >= 2 && label.len() <= 4 && label.starts_with('z') && label[1..].bytes().all(|b| b.is_ascii_digit())
}
