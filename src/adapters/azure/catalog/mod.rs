//! The ARM types seedwatch reads: api-version for ARM GETs, the service check(s) each serves,
//! and where a full sweep finds it (a Resource Graph table, an ARM list under a parent, or a
//! companion read beside its owner). Keys are lower-cased ARM types.
//!
//! The extractor registry (`crate::domain::extract`) decides which seeds a type yields; this table only
//! says how to fetch it. Each api-version is one the REST API reference lists for its path (the
//! test `every_api_version_is_one_the_specs_list_for_its_path` names each page).

use crate::domain::check::{EnabledChecks, ServiceCheck};

/// Where a full sweep reads a type from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Resource Graph table `resources`.
    Resources,
    /// Resource Graph table `dnsresources` (DNS record sets).
    DnsResources,
    /// Resource Graph table `computeresources` (VM scale set instance public IPs).
    ComputeResources,
    /// Not in Resource Graph: listed through ARM under its parent (AFD custom domains).
    ArmChild,
    /// Not in Resource Graph: read through ARM beside its owner, whose extractor uses it
    /// (a storage account's `blobServices/default`).
    Companion,
}

/// One type seedwatch reads.
#[derive(Debug, Clone, Copy)]
pub struct TypeInfo {
    /// Lower-cased ARM type.
    pub arm_type: &'static str,
    /// api-version for `GET {id}` (and lists under it).
    pub api_version: &'static str,
    /// The checks this type serves. Empty for a type read only to find children (CDN profiles).
    pub checks: &'static [ServiceCheck],
    pub source: Source,
    /// Whether the type is an owner: a resource whose seeds are recomputed as a unit.
    pub owner: bool,
}

use ServiceCheck as C;

#[cfg(test)]
mod spec_versions;
mod types;

pub use types::TYPES;

/// api-version for a CDN/AFD profile and its children.
pub(crate) const CDN_API_VERSION: &str = "2024-09-01";
/// api-version for `blobServices/default` that carries `staticWebsite`.
pub(crate) const BLOB_SERVICES_API_VERSION: &str = "2025-08-01";
/// api-version for listing subscriptions.
pub(crate) const SUBSCRIPTIONS_API_VERSION: &str = "2022-12-01";
/// Resource Graph api-version.
pub(crate) const RESOURCE_GRAPH_API_VERSION: &str = "2024-04-01";

/// The entry for a type (any casing).
pub fn lookup(arm_type: &str) -> Option<&'static TypeInfo> {
    TYPES.iter().find(|t| t.arm_type.eq_ignore_ascii_case(arm_type))
}

/// Whether a type is an owner: its seeds are recomputed as a unit when it or a child changes.
pub fn is_owner_type(arm_type: &str) -> bool {
    lookup(arm_type).is_some_and(|t| t.owner)
}

/// The api-version to GET a resource of this type.
pub(crate) fn api_version(arm_type: &str) -> Option<&'static str> {
    lookup(arm_type).map(|t| t.api_version)
}

/// Whether a CDN profile is an Azure Front Door Standard/Premium profile (whose custom
/// domains live under it): `kind: frontdoor` or a `*_AzureFrontDoor` SKU.
pub(crate) fn is_front_door_profile(kind: Option<&str>, sku: &serde_json::Value) -> bool {
    kind.is_some_and(|k| k.eq_ignore_ascii_case("frontdoor"))
        || sku
            .get("name")
            .and_then(|n| n.as_str())
            .is_some_and(|n| n.to_ascii_lowercase().ends_with("_azurefrontdoor"))
}

/// The Resource Graph types a sweep must read from `source` for the enabled checks, sorted.
/// CDN profiles are read when AFD is on, to find the profiles whose custom domains to list.
pub fn graph_types(checks: &EnabledChecks, source: Source) -> Vec<&'static str> {
    let afd = checks.is_on(C::FrontDoorAfd);
    let mut out: Vec<&'static str> = TYPES
        .iter()
        .filter(|t| t.source == source)
        .filter(|t| t.checks.iter().any(|c| checks.is_on(*c)) || (t.checks.is_empty() && afd))
        .map(|t| t.arm_type)
        .collect();
    out.sort_unstable();
    out
}

/// The enabled checks a Resource Graph table serves.
pub(crate) fn checks_in(checks: &EnabledChecks, source: Source) -> Vec<ServiceCheck> {
    let mut out: Vec<ServiceCheck> = TYPES
        .iter()
        .filter(|t| t.source == source)
        .flat_map(|t| t.checks.iter().copied())
        .filter(|c| checks.is_on(*c))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_has_a_type() {
        for check in ServiceCheck::ALL {
            assert!(
                TYPES.iter().any(|t| t.checks.contains(check) && t.owner),
                "{check} has no owner type"
            );
        }
        for t in TYPES {
            assert_eq!(t.arm_type, t.arm_type.to_ascii_lowercase());
        }
    }

    #[test]
    fn the_catalog_covers_the_extractor_registry() {
        for extractor in crate::domain::extract::registry() {
            let entry =
                lookup(extractor.arm_type).unwrap_or_else(|| panic!("{} not in the catalog", extractor.arm_type));
            assert!(entry.owner, "{}", extractor.arm_type);
            for check in extractor.checks {
                assert!(entry.checks.contains(check), "{} {check}", extractor.arm_type);
            }
        }
        for t in TYPES.iter().filter(|t| t.owner) {
            assert!(
                crate::domain::extract::is_owner_type(t.arm_type),
                "{} has no extractor",
                t.arm_type
            );
        }
        for t in TYPES.iter().filter(|t| t.source == Source::Companion) {
            assert!(crate::domain::extract::is_companion_type(t.arm_type), "{}", t.arm_type);
        }
    }

    #[test]
    fn graph_types_follow_the_toggles() {
        let mut checks = EnabledChecks::all();
        let all = graph_types(&checks, Source::Resources);
        assert!(all.contains(&"microsoft.cdn/profiles"));
        assert!(!all.contains(&"microsoft.network/dnszones/a"));
        assert_eq!(
            graph_types(&checks, Source::DnsResources),
            vec![
                "microsoft.network/dnszones/a",
                "microsoft.network/dnszones/aaaa",
                "microsoft.network/dnszones/cname"
            ]
        );
        checks.set(C::FrontDoorAfd, false);
        assert!(!graph_types(&checks, Source::Resources).contains(&"microsoft.cdn/profiles"));
        checks.set(C::DnsRecords, false);
        assert!(graph_types(&checks, Source::DnsResources).is_empty());
        assert!(checks_in(&checks, Source::DnsResources).is_empty());
    }

    #[test]
    fn front_door_profiles() {
        assert!(is_front_door_profile(Some("frontdoor"), &serde_json::Value::Null));
        assert!(is_front_door_profile(
            Some("cdn"),
            &serde_json::json!({"name": "Premium_AzureFrontDoor"})
        ));
        assert!(!is_front_door_profile(
            Some("cdn"),
            &serde_json::json!({"name": "Standard_Microsoft"})
        ));
        assert_eq!(api_version("Microsoft.Web/sites"), Some("2024-04-01"));
        assert!(is_owner_type("Microsoft.Network/dnsZones/CNAME"));
        assert!(!is_owner_type("microsoft.cdn/profiles"));
    }
}
