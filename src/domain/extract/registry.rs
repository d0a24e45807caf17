//! The extractor registry: one row per ARM type that owns seeds, keyed by the lower-cased type.
//!
//! Adding a service means adding a row here and a function in its family's file. Companion
//! types (resources that change an owner's seeds but have none of their own) are listed
//! separately so event handling can map them to their owner.

use super::emit::Emitter;
use super::{Context, appgw, containers, data, dns, edge, network, storage, web};
use crate::domain::check::ServiceCheck::{self, *};
use crate::domain::resource::{Resource, ResourceId};

/// Reads one resource's seeds. `needs_properties: false` means the extractor can work from the
/// envelope alone (a DNS zone's name).
pub struct Extractor {
    /// Lower-case ARM type (`microsoft.network/publicipaddresses`).
    pub arm_type: &'static str,
    /// The service checks whose seeds this extractor produces.
    pub checks: &'static [ServiceCheck],
    pub needs_properties: bool,
    pub(crate) extract: fn(&Resource, &Context, &mut Emitter),
}

impl std::fmt::Debug for Extractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extractor")
            .field("arm_type", &self.arm_type)
            .field("checks", &self.checks)
            .finish()
    }
}

const fn row(
    arm_type: &'static str,
    checks: &'static [ServiceCheck],
    extract: fn(&Resource, &Context, &mut Emitter),
) -> Extractor {
    Extractor {
        arm_type,
        checks,
        needs_properties: true,
        extract,
    }
}

static REGISTRY: &[Extractor] = &[
    row(
        "microsoft.network/publicipaddresses",
        &[PublicIpAddresses],
        network::public_ip,
    ),
    // VMSS (Uniform) instance public IPs: the same body as a public IP, under the compute tree.
    row(
        "microsoft.compute/virtualmachinescalesets/virtualmachines/networkinterfaces/ipconfigurations/publicipaddresses",
        &[PublicIpAddresses],
        network::public_ip,
    ),
    row(
        "microsoft.network/publicipprefixes",
        &[PublicIpAddresses],
        network::public_ip_prefix,
    ),
    row(
        "microsoft.network/customipprefixes",
        &[PublicIpAddresses],
        network::custom_ip_prefix,
    ),
    row(
        "microsoft.network/applicationgateways",
        &[ApplicationGateways, ApplicationGatewayCertificates],
        appgw::application_gateway,
    ),
    row(
        "microsoft.network/frontdoors",
        &[FrontDoorClassic],
        edge::front_door_classic,
    ),
    row(
        "microsoft.cdn/profiles/afdendpoints",
        &[FrontDoorAfd],
        edge::afd_endpoint,
    ),
    row(
        "microsoft.cdn/profiles/customdomains",
        &[FrontDoorAfd],
        edge::afd_custom_domain,
    ),
    row(
        "microsoft.network/trafficmanagerprofiles",
        &[TrafficManager],
        network::traffic_manager,
    ),
    Extractor {
        arm_type: "microsoft.network/dnszones",
        checks: &[DnsZones],
        needs_properties: false,
        extract: dns::zone,
    },
    Extractor {
        arm_type: "microsoft.network/dnszones/a",
        checks: &[DnsRecords],
        needs_properties: false,
        extract: dns::record_set,
    },
    Extractor {
        arm_type: "microsoft.network/dnszones/aaaa",
        checks: &[DnsRecords],
        needs_properties: false,
        extract: dns::record_set,
    },
    Extractor {
        arm_type: "microsoft.network/dnszones/cname",
        checks: &[DnsRecords],
        needs_properties: false,
        extract: dns::record_set,
    },
    row(
        "microsoft.storage/storageaccounts",
        &[StorageStaticWebsites],
        storage::storage_account,
    ),
    row("microsoft.cdn/profiles/endpoints", &[CdnEndpoints], edge::cdn_endpoint),
    row("microsoft.web/sites", &[AppServices], web::app_service),
    row("microsoft.web/sites/slots", &[AppServices], web::app_service),
    row("microsoft.sql/servers", &[SqlServers], data::sql_server),
    row(
        "microsoft.documentdb/databaseaccounts",
        &[CosmosDb],
        data::cosmos_account,
    ),
    row("microsoft.cache/redis", &[RedisCache], data::redis),
    row("microsoft.cache/redisenterprise", &[RedisCache], data::redis),
    row("microsoft.containerservice/managedclusters", &[Aks], containers::aks),
    row(
        "microsoft.app/containerapps",
        &[ContainerApps],
        containers::container_app,
    ),
    row(
        "microsoft.containerinstance/containergroups",
        &[ContainerInstances],
        containers::container_group,
    ),
    row("microsoft.apimanagement/service", &[ApiManagement], web::api_management),
    row("microsoft.web/staticsites", &[StaticWebApps], web::static_web_app),
    row(
        "microsoft.dbforpostgresql/flexibleservers",
        &[FlexibleServers],
        data::flexible_server,
    ),
    row(
        "microsoft.dbformysql/flexibleservers",
        &[FlexibleServers],
        data::flexible_server,
    ),
    row("microsoft.keyvault/vaults", &[KeyVaults], data::key_vault),
    row(
        "microsoft.containerregistry/registries",
        &[ContainerRegistries],
        containers::container_registry,
    ),
];

/// Companion types: (lower-case type, its name under the owner). A companion's seeds are its
/// owner's: `…/storageAccounts/x/blobServices/default` says whether `x`'s static website is on.
const COMPANIONS: &[&str] = &["microsoft.storage/storageaccounts/blobservices"];

/// Every registered extractor, in the policy's order.
pub fn registry() -> &'static [Extractor] {
    REGISTRY
}

/// The extractor for an ARM type (compared ignoring ASCII case).
pub fn lookup(arm_type: &str) -> Option<&'static Extractor> {
    let arm_type = arm_type.trim();
    REGISTRY.iter().find(|e| e.arm_type.eq_ignore_ascii_case(arm_type))
}

/// Whether resources of this ARM type own seeds (have an extractor). Event handling walks a
/// changed id up to the nearest ancestor for which this is true.
pub fn is_owner_type(arm_type: &str) -> bool {
    lookup(arm_type).is_some()
}

/// Whether resources of this ARM type are companions: no seeds of their own, but they change
/// their owner's seeds (see [`companion_owner`]).
pub fn is_companion_type(arm_type: &str) -> bool {
    let arm_type = arm_type.trim();
    COMPANIONS.iter().any(|t| t.eq_ignore_ascii_case(arm_type))
}

/// The owner whose seeds a companion resource changes: `…/storageAccounts/x/blobServices/default`
/// (or anything below it) maps to `…/storageAccounts/x`. `None` when `id` is not a companion.
/// To re-extract an owner after a companion changed, read the owner and its companion and pass
/// both to [`super::extract_resources`].
pub fn companion_owner(id: &ResourceId) -> Option<ResourceId> {
    let mut current = id.without_extension();
    loop {
        if is_companion_type(&current.arm_type()) {
            let owner = current.parent()?;
            return is_owner_type(&owner.arm_type()).then_some(owner);
        }
        current = current.parent()?;
        if is_owner_type(&current.arm_type()) {
            return None;
        }
    }
}
