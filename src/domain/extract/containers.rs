//! Containers: AKS, Container Apps, Container Instances, Container Registry.

use super::Context;
use super::emit::{Emitter, Want, at, field, is_true, str_is};
use crate::domain::check::ServiceCheck::{Aks, ContainerApps, ContainerInstances, ContainerRegistries};
use crate::domain::resource::Resource;

/// The API server `fqdn`; nothing for a private cluster (`privateFQDN` is never seeded).
pub(crate) fn aks(resource: &Resource, _: &Context, emit: &mut Emitter) {
    let props = &resource.properties;
    if is_true(props, &["apiServerAccessProfile", "enablePrivateCluster"]) {
        return;
    }
    emit.value(Aks, Want::Host, "properties.fqdn", field(props, "fqdn"));
}

/// `configuration.ingress.fqdn` and `configuration.ingress.customDomains[].name`, only when the
/// ingress is `external`.
pub(crate) fn container_app(resource: &Resource, _: &Context, emit: &mut Emitter) {
    let Some(ingress) = at(&resource.properties, &["configuration", "ingress"]) else {
        return;
    };
    if !is_true(ingress, &["external"]) {
        return;
    }
    emit.value(
        ContainerApps,
        Want::Host,
        "properties.configuration.ingress.fqdn",
        field(ingress, "fqdn"),
    );
    let domains = emit.array(
        "properties.configuration.ingress.customDomains",
        field(ingress, "customDomains"),
    );
    for (i, domain) in domains.iter().enumerate() {
        emit.value(
            ContainerApps,
            Want::Host,
            &format!("properties.configuration.ingress.customDomains[{i}].name"),
            field(domain, "name"),
        );
    }
}

/// `ipAddress.ip` and `ipAddress.fqdn`, only when `ipAddress.type` is `Public`.
pub(crate) fn container_group(resource: &Resource, _: &Context, emit: &mut Emitter) {
    let Some(address) = field(&resource.properties, "ipAddress") else {
        return;
    };
    if !str_is(address, &["type"], "Public") {
        return;
    }
    emit.value(
        ContainerInstances,
        Want::Ip,
        "properties.ipAddress.ip",
        field(address, "ip"),
    );
    emit.value(
        ContainerInstances,
        Want::Host,
        "properties.ipAddress.fqdn",
        field(address, "fqdn"),
    );
}

/// `loginServer`.
pub(crate) fn container_registry(resource: &Resource, _: &Context, emit: &mut Emitter) {
    emit.value(
        ContainerRegistries,
        Want::Host,
        "properties.loginServer",
        field(&resource.properties, "loginServer"),
    );
}
