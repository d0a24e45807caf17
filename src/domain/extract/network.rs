//! Public IP addresses, public and custom IP prefixes, Traffic Manager profiles.

use super::Context;
use super::emit::{Emitter, Want, at, str_is};
use crate::domain::check::ServiceCheck::{PublicIpAddresses, TrafficManager};
use crate::domain::resource::Resource;

/// `ipAddress` (v4 or v6) and `dnsSettings.fqdn`. No address means none is allocated yet: no IP
/// seed, but the DNS label still counts. `dnsSettings.reverseFqdn` names a host that lives
/// elsewhere and is never seeded.
pub(crate) fn public_ip(resource: &Resource, _: &Context, emit: &mut Emitter) {
    let props = &resource.properties;
    emit.value(
        PublicIpAddresses,
        Want::Ip,
        "properties.ipAddress",
        at(props, &["ipAddress"]),
    );
    emit.value(
        PublicIpAddresses,
        Want::Host,
        "properties.dnsSettings.fqdn",
        at(props, &["dnsSettings", "fqdn"]),
    );
}

/// `ipPrefix` as a range.
pub(crate) fn public_ip_prefix(resource: &Resource, _: &Context, emit: &mut Emitter) {
    emit.value(
        PublicIpAddresses,
        Want::Range,
        "properties.ipPrefix",
        at(&resource.properties, &["ipPrefix"]),
    );
}

/// `cidr` as a range, only once the prefix is `Commissioned` (advertised on the internet).
pub(crate) fn custom_ip_prefix(resource: &Resource, _: &Context, emit: &mut Emitter) {
    let props = &resource.properties;
    if !str_is(props, &["commissionedState"], "Commissioned") {
        return;
    }
    emit.value(PublicIpAddresses, Want::Range, "properties.cidr", at(props, &["cidr"]));
}

/// `dnsConfig.fqdn`. Endpoint targets belong to others and are not seeded.
pub(crate) fn traffic_manager(resource: &Resource, _: &Context, emit: &mut Emitter) {
    emit.value(
        TrafficManager,
        Want::Host,
        "properties.dnsConfig.fqdn",
        at(&resource.properties, &["dnsConfig", "fqdn"]),
    );
}
