//! Public DNS zones and their A, AAAA and CNAME record sets.
//!
//! A record set seeds its own name only, never its values (A addresses and CNAME targets may
//! belong to others). Names with an underscore label (`_dmarc`, `selector._domainkey`) are
//! service records, not hosts. Legacy private zones (`zoneType: Private`) and their records are
//! not seeded; `microsoft.network/privatednszones` has no extractor at all.

use serde_json::Value;

use super::Context;
use super::emit::{Emitter, Want, describe, field, str_is};
use crate::domain::check::ServiceCheck::{DnsRecords, DnsZones};
use crate::domain::resource::Resource;

const ZONE_TYPE: &str = "microsoft.network/dnszones";

/// Whether `resource` is a DNS zone that says it is private.
pub(crate) fn is_private_zone(resource: &Resource) -> bool {
    resource.arm_type.eq_ignore_ascii_case(ZONE_TYPE) && str_is(&resource.properties, &["zoneType"], "Private")
}

/// The zone apex, from the resource name.
pub(crate) fn zone(resource: &Resource, _: &Context, emit: &mut Emitter) {
    if is_private_zone(resource) {
        return;
    }
    let name = if resource.name.trim().is_empty() {
        resource.id.name()
    } else {
        resource.name.as_str()
    };
    emit.text(DnsZones, Want::Host, "name", name);
}

/// The record set's `fqdn`, or its relative name joined to the zone name when `fqdn` is absent
/// (`@` is the apex).
pub(crate) fn record_set(resource: &Resource, context: &Context, emit: &mut Emitter) {
    let zone = resource.id.parent();
    if zone.as_ref().is_some_and(|zone| context.zone_is_private(zone)) {
        return;
    }
    let (path, name) = match field(&resource.properties, "fqdn") {
        Some(Value::String(fqdn)) if !fqdn.trim().is_empty() => ("properties.fqdn", fqdn.trim().to_string()),
        Some(other @ (Value::Bool(_) | Value::Number(_) | Value::Array(_) | Value::Object(_))) => {
            emit.warn(
                "properties.fqdn",
                format!("expected a string, found {}", describe(other)),
            );
            return;
        }
        _ => {
            let Some(zone) = zone else { return };
            let relative = if resource.name.trim().is_empty() {
                resource.id.name()
            } else {
                resource.name.trim()
            };
            let joined = if relative == "@" {
                zone.name().to_string()
            } else {
                format!("{relative}.{}", zone.name())
            };
            ("name", joined)
        }
    };
    if has_underscore_label(&name) {
        return;
    }
    emit.text(DnsRecords, Want::Host, path, &name);
}

/// `_dmarc.contoso.com`, `selector._domainkey.contoso.com.`: service records, not hosts.
fn has_underscore_label(name: &str) -> bool {
    name.split('.').any(|label| label.starts_with('_'))
}

#[cfg(test)]
mod tests {
    use super::has_underscore_label;

    #[test]
    fn underscore_labels_are_service_records() {
        assert!(has_underscore_label("_dmarc.contoso.com."));
        assert!(has_underscore_label("selector1._domainkey.contoso.com"));
        assert!(!has_underscore_label("www.contoso.com."));
        assert!(!has_underscore_label("my_host.contoso.com"));
    }
}
