//! api-versions the REST API reference lists for each (type, path) seedwatch GETs: a catalog
//! version outside its row answers 400 `NoRegisteredProviderFound` in Azure.

use super::{BLOB_SERVICES_API_VERSION, CDN_API_VERSION, TYPES};

/// api-versions the REST API specs list for each (type, path) seedwatch GETs, copied from
/// the reference pages (each row's URL). A catalog version outside its row answers 400
/// `NoRegisteredProviderFound` in Azure.
const SPEC_VERSIONS: &[(&str, &[&str], &str)] = &[
    (
        "microsoft.network/publicipaddresses",
        &["2024-05-01", "2024-07-01", "2025-03-01", "2025-05-01"],
        "https://learn.microsoft.com/rest/api/virtualnetwork/public-ip-addresses/get",
    ),
    (
        "microsoft.compute/virtualmachinescalesets/virtualmachines/networkinterfaces/ipconfigurations/publicipaddresses",
        &["2018-10-01"],
        "https://learn.microsoft.com/rest/api/virtualnetwork/public-ip-addresses/get-virtual-machine-scale-set-public-ip-address",
    ),
    (
        "microsoft.network/publicipprefixes",
        &["2024-05-01", "2024-07-01", "2025-03-01"],
        "https://learn.microsoft.com/rest/api/virtualnetwork/public-ip-prefixes/get",
    ),
    (
        "microsoft.network/customipprefixes",
        &["2024-05-01", "2024-07-01", "2025-03-01"],
        "https://learn.microsoft.com/rest/api/virtualnetwork/custom-ip-prefixes/get",
    ),
    (
        "microsoft.network/applicationgateways",
        &["2024-05-01", "2024-07-01", "2025-03-01"],
        "https://learn.microsoft.com/rest/api/application-gateway/application-gateways/get",
    ),
    (
        "microsoft.network/frontdoors",
        &["2021-06-01"],
        "https://learn.microsoft.com/rest/api/frontdoorservice/frontdoor/front-doors/get",
    ),
    (
        "microsoft.cdn/profiles",
        &["2024-09-01", "2025-04-15", "2025-06-01", "2025-09-01"],
        "https://learn.microsoft.com/rest/api/frontdoor/azurefrontdoorstandardpremium/profiles/get",
    ),
    (
        "microsoft.cdn/profiles/afdendpoints",
        &["2024-09-01", "2025-04-15", "2025-06-01", "2025-09-01"],
        "https://learn.microsoft.com/rest/api/frontdoor/azurefrontdoorstandardpremium/afd-endpoints/get",
    ),
    (
        "microsoft.cdn/profiles/customdomains",
        &["2024-09-01", "2025-04-15", "2025-06-01", "2025-09-01"],
        "https://learn.microsoft.com/rest/api/frontdoor/azurefrontdoorstandardpremium/afd-custom-domains/list-by-profile",
    ),
    (
        "microsoft.cdn/profiles/endpoints",
        &["2024-09-01", "2025-04-15", "2025-06-01", "2025-09-01"],
        "https://learn.microsoft.com/rest/api/cdn/endpoints/get",
    ),
    (
        "microsoft.network/trafficmanagerprofiles",
        &["2022-04-01"],
        "https://learn.microsoft.com/rest/api/trafficmanager/profiles/get",
    ),
    (
        "microsoft.network/dnszones",
        &["2018-05-01"],
        "https://learn.microsoft.com/rest/api/dns/zones/get",
    ),
    (
        "microsoft.network/dnszones/a",
        &["2018-05-01"],
        "https://learn.microsoft.com/rest/api/dns/record-sets/get",
    ),
    (
        "microsoft.network/dnszones/aaaa",
        &["2018-05-01"],
        "https://learn.microsoft.com/rest/api/dns/record-sets/get",
    ),
    (
        "microsoft.network/dnszones/cname",
        &["2018-05-01"],
        "https://learn.microsoft.com/rest/api/dns/record-sets/get",
    ),
    (
        "microsoft.storage/storageaccounts",
        &["2023-05-01", "2024-01-01", "2025-01-01", "2025-08-01"],
        "https://learn.microsoft.com/rest/api/storagerp/storage-accounts/get-properties",
    ),
    (
        "microsoft.storage/storageaccounts/blobservices",
        &["2025-08-01"],
        "https://learn.microsoft.com/rest/api/storagerp/blob-services/get-service-properties",
    ),
    (
        "microsoft.web/sites",
        &["2024-04-01", "2024-11-01"],
        "https://learn.microsoft.com/rest/api/appservice/web-apps/get",
    ),
    (
        "microsoft.web/sites/slots",
        &["2024-04-01", "2024-11-01"],
        "https://learn.microsoft.com/rest/api/appservice/web-apps/get-slot",
    ),
    (
        "microsoft.sql/servers",
        &["2023-08-01"],
        "https://learn.microsoft.com/rest/api/sql/servers/get",
    ),
    (
        "microsoft.documentdb/databaseaccounts",
        &["2024-11-15"],
        "https://learn.microsoft.com/rest/api/cosmos-db-resource-provider/database-accounts/get",
    ),
    (
        "microsoft.cache/redis",
        &["2024-11-01"],
        "https://learn.microsoft.com/rest/api/redis/redis/get",
    ),
    (
        "microsoft.cache/redisenterprise",
        &["2025-04-01"],
        "https://learn.microsoft.com/rest/api/redis/redisenterprisecache/redis-enterprise/get",
    ),
    (
        "microsoft.containerservice/managedclusters",
        &["2024-09-01", "2025-05-01"],
        "https://learn.microsoft.com/rest/api/aks/managed-clusters/get",
    ),
    (
        "microsoft.app/containerapps",
        &["2025-01-01"],
        "https://learn.microsoft.com/rest/api/resource-manager/containerapps/container-apps/get",
    ),
    (
        "microsoft.containerinstance/containergroups",
        &["2023-05-01"],
        "https://learn.microsoft.com/rest/api/container-instances/container-groups/get",
    ),
    (
        "microsoft.apimanagement/service",
        &["2024-05-01"],
        "https://learn.microsoft.com/rest/api/apimanagement/api-management-service/get",
    ),
    (
        "microsoft.web/staticsites",
        &["2024-04-01", "2024-11-01"],
        "https://learn.microsoft.com/rest/api/appservice/static-sites/get-static-site",
    ),
    (
        "microsoft.dbforpostgresql/flexibleservers",
        &["2024-08-01"],
        "https://learn.microsoft.com/rest/api/postgresql/flexibleserver/servers/get",
    ),
    (
        "microsoft.dbformysql/flexibleservers",
        &["2023-12-30"],
        "https://learn.microsoft.com/rest/api/mysql/flexibleserver/servers/get",
    ),
    (
        "microsoft.keyvault/vaults",
        &["2023-07-01", "2024-11-01"],
        "https://learn.microsoft.com/rest/api/keyvault/keyvault/vaults/get",
    ),
    (
        "microsoft.containerregistry/registries",
        &["2023-07-01", "2025-04-01"],
        "https://learn.microsoft.com/rest/api/containerregistry/registries/get",
    ),
];

#[test]
fn every_api_version_is_one_the_specs_list_for_its_path() {
    for t in TYPES {
        let Some((_, versions, source)) = SPEC_VERSIONS.iter().find(|(ty, _, _)| *ty == t.arm_type) else {
            panic!(
                "{} has no row in SPEC_VERSIONS: copy its versions from the REST API reference",
                t.arm_type
            )
        };
        assert!(
            versions.contains(&t.api_version),
            "{} uses api-version {}, which {source} does not list ({versions:?})",
            t.arm_type,
            t.api_version
        );
    }
    assert_eq!(
        SPEC_VERSIONS.len(),
        TYPES.len(),
        "a row for a type the catalog does not have"
    );
    for version in [CDN_API_VERSION, BLOB_SERVICES_API_VERSION] {
        assert!(SPEC_VERSIONS.iter().any(|(_, v, _)| v.contains(&version)), "{version}");
    }
}
