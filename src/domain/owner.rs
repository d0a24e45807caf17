//! Owner mapping: which resource's seeds change when the resource with a given id changes.
//! Pure (no I/O). The resource types are those of the ARM REST reference
//! (<https://learn.microsoft.com/rest/api/resources/>).
//!
//! Rules, in order:
//! - extension resources (`…/sites/x/providers/Microsoft.Insights/…`) are cut at the second
//!   `/providers/`: their changes belong to the resource they extend;
//! - a subscription or resource group id is a [`Owner::Prefix`]: every owner under it;
//! - a CDN/AFD profile is a [`Owner::Prefix`]: it yields no seeds itself, but deleting it
//!   deletes its endpoints and custom domains;
//! - AFD routes (`profiles/p/afdEndpoints/e/routes/r`) and secrets (`profiles/p/secrets/s`) are
//!   [`Owner::Untracked`]: under the seed policy no seed depends on them (a custom domain is
//!   seeded by its `hostName` whether or not a route serves it, and secrets are not seeded). If
//!   an extractor ever gates custom domains on routes, map routes to `Prefix(profile)` instead;
//! - DNS record sets other than A/AAAA/CNAME are [`Owner::Untracked`]: they yield no seeds and
//!   do not change the zone's seeds;
//! - otherwise walk up from the id to the nearest ancestor (itself included) whose type is an
//!   owner type: `…/sites/x/config/web` → the site, `…/sites/x/slots/s/config/web` → the slot,
//!   `…/applicationGateways/g/httpListeners/l` → the gateway, `…/privateEndpointConnections/c`
//!   → the resource above it;
//! - no owner within the resource's own provider path → [`Owner::Untracked`].
//!
//! On a delete, callers drop every owner *within* the returned id (a deleted zone, site or
//! profile takes its record sets, slots or endpoints with it).

use crate::domain::resource::ResourceId;

/// What an id maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// One owner resource: re-read it.
    Resource(ResourceId),
    /// Every owner under this id (a subscription, a resource group, a CDN profile).
    Prefix(ResourceId),
    /// No tracked resource's seeds depend on this id.
    Untracked,
}

/// The owner of the resource `id` names.
pub fn owner_of(id: &ResourceId) -> Owner {
    owner_with(id, crate::domain::extract::is_owner_type)
}

/// [`owner_of`] with the set of owner types given (for the extractor registry to plug in).
pub(crate) fn owner_with(id: &ResourceId, is_owner: impl Fn(&str) -> bool) -> Owner {
    let id = id.without_extension();
    let arm_type = id.arm_type();
    if arm_type == "microsoft.resources/subscriptions" || arm_type == "microsoft.resources/resourcegroups" {
        return Owner::Prefix(id);
    }
    if is_afd_route_or_secret(&arm_type) || is_untracked_record_set(&arm_type) {
        return Owner::Untracked;
    }
    if arm_type == "microsoft.cdn/profiles" {
        return Owner::Prefix(id);
    }
    let mut current = Some(id);
    while let Some(candidate) = current {
        let candidate_type = candidate.arm_type();
        if candidate_type.starts_with("microsoft.resources/") || !candidate_type.contains('/') {
            break;
        }
        if is_owner(&candidate_type) {
            return Owner::Resource(candidate);
        }
        current = candidate.parent();
    }
    Owner::Untracked
}

fn is_afd_route_or_secret(arm_type: &str) -> bool {
    arm_type.starts_with("microsoft.cdn/profiles/afdendpoints/routes")
        || arm_type.starts_with("microsoft.cdn/profiles/secrets")
}

fn is_untracked_record_set(arm_type: &str) -> bool {
    match arm_type.strip_prefix("microsoft.network/dnszones/") {
        Some(record) => !matches!(record.split('/').next(), Some("a" | "aaaa" | "cname")),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RG: &str = "/subscriptions/1111/resourceGroups/RG-Web";

    fn id(s: &str) -> ResourceId {
        ResourceId::parse(s).unwrap()
    }

    fn owns(child: &str, owner: &str) {
        assert_eq!(owner_of(&id(child)), Owner::Resource(id(owner)), "{child}");
    }

    #[test]
    fn children_walk_up_to_their_owner() {
        let site = format!("{RG}/providers/Microsoft.Web/sites/app1");
        owns(&format!("{RG}/providers/microsoft.web/SITES/app1/config/web"), &site);
        owns(
            &format!("{RG}/providers/Microsoft.Web/sites/app1/hostNameBindings/www.contoso.com"),
            &site,
        );
        let slot = format!("{site}/slots/staging");
        owns(
            &format!("{RG}/providers/Microsoft.Web/sites/app1/Slots/staging/config/web"),
            &slot,
        );
        owns(&slot.to_uppercase().replace("/SUBSCRIPTIONS", "/subscriptions"), &slot);
        owns(&format!("{site}/slots/staging/hostNameBindings/h"), &slot);
        let gw = format!("{RG}/providers/Microsoft.Network/applicationGateways/gw1");
        owns(&format!("{gw}/httpListeners/l1"), &gw);
        owns(&format!("{gw}/sslCertificates/cert1"), &gw);
        let swa = format!("{RG}/providers/Microsoft.Web/staticSites/swa");
        owns(&format!("{swa}/customDomains/www.contoso.com"), &swa);
        let st = format!("{RG}/providers/Microsoft.Storage/storageAccounts/acct");
        owns(
            &format!("{RG}/providers/microsoft.storage/storageaccounts/acct/blobServices/default"),
            &st,
        );
        let fd = format!("{RG}/providers/Microsoft.Network/frontDoors/fd1");
        owns(&format!("{fd}/frontendEndpoints/fe1"), &fd);
        let tm = format!("{RG}/providers/Microsoft.Network/trafficManagerProfiles/tm1");
        owns(&format!("{tm}/externalEndpoints/ext1"), &tm);
        owns(&format!("{tm}/azureEndpoints/a1"), &tm);
        let sql = format!("{RG}/providers/Microsoft.Sql/servers/sql1");
        owns(&format!("{sql}/privateEndpointConnections/pec1"), &sql);
        owns(&format!("{sql}/firewallRules/AllowAll"), &sql);
        let kv = format!("{RG}/providers/Microsoft.KeyVault/vaults/kv1");
        owns(&format!("{kv}/privateEndpointConnections/pec"), &kv);
        let ep = format!("{RG}/providers/Microsoft.Cdn/profiles/cdn1/endpoints/ep1");
        owns(&format!("{ep}/customDomains/cd1"), &ep);
        let afd_ep = format!("{RG}/providers/Microsoft.Cdn/profiles/afd/afdEndpoints/web");
        owns(&afd_ep, &afd_ep);
    }

    #[test]
    fn owners_map_to_themselves() {
        for own in [
            format!("{RG}/providers/Microsoft.Network/dnszones/contoso.com/A/www.eu"),
            format!("{RG}/providers/Microsoft.Network/dnsZones/contoso.com/CNAME/*"),
            format!("{RG}/providers/Microsoft.Network/dnszones/contoso.com/aaaa/@"),
            format!("{RG}/providers/Microsoft.Network/dnszones/contoso.com"),
            format!("{RG}/providers/Microsoft.Cdn/profiles/afd/customdomains/www-contoso-com"),
            format!("{RG}/providers/Microsoft.Network/publicIPAddresses/pip1"),
            format!("{RG}/providers/Microsoft.Cache/redisEnterprise/re1"),
        ] {
            owns(&own, &own);
        }
        owns(
            &format!("{RG}/providers/Microsoft.Cache/redisEnterprise/re1/databases/default"),
            &format!("{RG}/providers/Microsoft.Cache/redisEnterprise/re1"),
        );
    }

    #[test]
    fn extension_resources_are_cut() {
        owns(
            &format!("{RG}/providers/Microsoft.Web/sites/app1/providers/Microsoft.Insights/diagnosticSettings/d"),
            &format!("{RG}/providers/Microsoft.Web/sites/app1"),
        );
        assert_eq!(
            owner_of(&id(&format!(
                "{RG}/providers/Microsoft.Compute/virtualMachines/vm/providers/Microsoft.Authorization/locks/l"
            ))),
            Owner::Untracked
        );
    }

    #[test]
    fn containers_are_prefixes() {
        assert_eq!(
            owner_of(&id(RG)),
            Owner::Prefix(id("/subscriptions/1111/resourcegroups/rg-web"))
        );
        assert_eq!(
            owner_of(&id("/SUBSCRIPTIONS/1111")),
            Owner::Prefix(id("/subscriptions/1111"))
        );
        let profile = format!("{RG}/providers/Microsoft.Cdn/profiles/afd");
        assert_eq!(owner_of(&id(&profile)), Owner::Prefix(id(&profile)));
    }

    #[test]
    fn untracked() {
        for other in [
            format!("{RG}/providers/Microsoft.Cdn/profiles/afd/afdEndpoints/web/routes/r1"),
            format!("{RG}/providers/Microsoft.Cdn/profiles/afd/secrets/s1"),
            format!("{RG}/providers/Microsoft.Network/dnszones/contoso.com/TXT/_dmarc"),
            format!("{RG}/providers/Microsoft.Network/dnszones/contoso.com/MX/@"),
            format!("{RG}/providers/Microsoft.Network/privateDnsZones/p.local/A/x"),
            format!("{RG}/providers/Microsoft.Network/virtualNetworks/vnet/subnets/s"),
            format!("{RG}/providers/Microsoft.Resources/deployments/d1"),
            format!("{RG}/providers/Microsoft.Web/serverfarms/plan"),
        ] {
            assert_eq!(owner_of(&id(&other)), Owner::Untracked, "{other}");
        }
    }
}
