//! Front Door (classic), Azure Front Door Standard/Premium endpoints and custom domains, and
//! classic CDN endpoints.

use super::Context;
use super::emit::{Emitter, Want, at, field};
use crate::domain::check::ServiceCheck::{CdnEndpoints, FrontDoorAfd, FrontDoorClassic};
use crate::domain::resource::Resource;

/// Every `frontendEndpoints[].properties.hostName` (the default `*.azurefd.net` name and the
/// custom domains).
pub(crate) fn front_door_classic(resource: &Resource, _: &Context, emit: &mut Emitter) {
    let frontends = emit.array(
        "properties.frontendEndpoints",
        field(&resource.properties, "frontendEndpoints"),
    );
    for (i, frontend) in frontends.iter().enumerate() {
        emit.value(
            FrontDoorClassic,
            Want::Host,
            &format!("properties.frontendEndpoints[{i}].properties.hostName"),
            at(frontend, &["properties", "hostName"]),
        );
    }
}

/// An AFD endpoint's `hostName`.
pub(crate) fn afd_endpoint(resource: &Resource, _: &Context, emit: &mut Emitter) {
    emit.value(
        FrontDoorAfd,
        Want::Host,
        "properties.hostName",
        field(&resource.properties, "hostName"),
    );
}

/// An AFD custom domain's `hostName` (pending or unbound domains are still the customer's).
pub(crate) fn afd_custom_domain(resource: &Resource, _: &Context, emit: &mut Emitter) {
    emit.value(
        FrontDoorAfd,
        Want::Host,
        "properties.hostName",
        field(&resource.properties, "hostName"),
    );
}

/// A classic CDN endpoint's `hostName` and its inline `customDomains[].properties.hostName`.
pub(crate) fn cdn_endpoint(resource: &Resource, _: &Context, emit: &mut Emitter) {
    let props = &resource.properties;
    emit.value(
        CdnEndpoints,
        Want::Host,
        "properties.hostName",
        field(props, "hostName"),
    );
    let domains = emit.array("properties.customDomains", field(props, "customDomains"));
    for (i, domain) in domains.iter().enumerate() {
        emit.value(
            CdnEndpoints,
            Want::Host,
            &format!("properties.customDomains[{i}].properties.hostName"),
            at(domain, &["properties", "hostName"]),
        );
    }
}
