//! Service checks: the Hexiosec `azure.services.check_*` toggles plus seedwatch's own. A check
//! is the unit a user turns on or off, and the unit of completeness: a sweep reports per
//! (subscription, check) whether it read everything.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! service_checks {
    ($($variant:ident => $toggle:literal, $label:literal;)*) => {
        /// One row of the seed policy's service-check table.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum ServiceCheck {
            $($variant,)*
        }

        impl ServiceCheck {
            /// Every check, in the policy's order.
            pub const ALL: &'static [ServiceCheck] = &[$(ServiceCheck::$variant,)*];

            /// The config toggle under `azure.services` (`check_public_ip_addresses`).
            pub(crate) fn toggle(self) -> &'static str {
                match self {
                    $(ServiceCheck::$variant => $toggle,)*
                }
            }

            /// A short human name for reports.
            pub fn label(self) -> &'static str {
                match self {
                    $(ServiceCheck::$variant => $label,)*
                }
            }

            pub(crate) fn from_toggle(toggle: &str) -> Option<ServiceCheck> {
                match toggle {
                    $($toggle => Some(ServiceCheck::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

service_checks! {
    PublicIpAddresses => "check_public_ip_addresses", "Public IPs";
    ApplicationGateways => "check_application_gateways", "Application Gateways";
    ApplicationGatewayCertificates => "check_application_gateway_certificates", "Application Gateway certificates";
    FrontDoorClassic => "check_front_door_classic", "Front Door (classic)";
    FrontDoorAfd => "check_front_door_afd", "Front Door (AFD)";
    TrafficManager => "check_traffic_manager", "Traffic Manager";
    DnsZones => "check_dns_zones", "DNS zones";
    DnsRecords => "check_dns_records", "DNS records";
    StorageStaticWebsites => "check_storage_static_websites", "Storage static websites";
    CdnEndpoints => "check_cdn_endpoints", "CDN endpoints";
    AppServices => "check_app_services", "App Services";
    SqlServers => "check_sql_servers", "Azure SQL";
    CosmosDb => "check_cosmos_db", "Cosmos DB";
    RedisCache => "check_redis_cache", "Redis";
    Aks => "check_aks", "AKS";
    ContainerApps => "check_container_apps", "Container Apps";
    ContainerInstances => "check_container_instances", "Container Instances";
    ApiManagement => "check_api_management", "API Management";
    StaticWebApps => "check_static_web_apps", "Static Web Apps";
    FlexibleServers => "check_flexible_servers", "Flexible servers";
    KeyVaults => "check_key_vaults", "Key Vaults";
    ContainerRegistries => "check_container_registries", "Container registries";
}

impl fmt::Display for ServiceCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.toggle())
    }
}

/// Which checks are on. Every check is on unless its toggle is set to `false`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnabledChecks {
    off: Vec<ServiceCheck>,
}

impl Default for EnabledChecks {
    fn default() -> Self {
        EnabledChecks::all()
    }
}

impl EnabledChecks {
    pub fn all() -> Self {
        EnabledChecks { off: Vec::new() }
    }

    pub fn none() -> Self {
        EnabledChecks {
            off: ServiceCheck::ALL.to_vec(),
        }
    }

    pub(crate) fn is_on(&self, check: ServiceCheck) -> bool {
        !self.off.contains(&check)
    }

    pub fn set(&mut self, check: ServiceCheck, on: bool) {
        self.off.retain(|c| *c != check);
        if !on {
            self.off.push(check);
        }
    }

    pub fn enabled(&self) -> impl Iterator<Item = ServiceCheck> + '_ {
        ServiceCheck::ALL.iter().copied().filter(|c| self.is_on(*c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fourteen_hexiosec_toggles_exist() {
        for toggle in [
            "check_public_ip_addresses",
            "check_application_gateways",
            "check_application_gateway_certificates",
            "check_front_door_classic",
            "check_front_door_afd",
            "check_traffic_manager",
            "check_dns_zones",
            "check_dns_records",
            "check_storage_static_websites",
            "check_cdn_endpoints",
            "check_app_services",
            "check_sql_servers",
            "check_cosmos_db",
            "check_redis_cache",
        ] {
            let check = ServiceCheck::from_toggle(toggle).expect(toggle);
            assert_eq!(check.toggle(), toggle);
        }
        assert_eq!(ServiceCheck::ALL.len(), 22);
    }

    #[test]
    fn toggles_turn_checks_off() {
        let mut checks = EnabledChecks::all();
        checks.set(ServiceCheck::DnsRecords, false);
        assert!(!checks.is_on(ServiceCheck::DnsRecords));
        assert_eq!(checks.enabled().count(), 21);
        checks.set(ServiceCheck::DnsRecords, true);
        assert!(checks.is_on(ServiceCheck::DnsRecords));
    }
}
