//! App Service sites and slots, Static Web Apps, API Management.

use serde_json::Value;

use super::Context;
use super::emit::{Emitter, Want, describe, field, str_is};
use crate::domain::check::ServiceCheck::{ApiManagement, AppServices, StaticWebApps};
use crate::domain::resource::Resource;

/// Every `hostNames[]` entry: the default `*.azurewebsites.net` name and the custom domains.
/// Slots (`sites/slots`) have the same shape and their own custom domains.
pub(crate) fn app_service(resource: &Resource, _: &Context, emit: &mut Emitter) {
    emit.list(
        AppServices,
        Want::Host,
        "properties.hostNames",
        field(&resource.properties, "hostNames"),
    );
}

/// `defaultHostname` and `customDomains[]` (strings; objects with `domainName` or `name` are
/// read too, as the `customDomains` child resources look).
pub(crate) fn static_web_app(resource: &Resource, _: &Context, emit: &mut Emitter) {
    let props = &resource.properties;
    emit.value(
        StaticWebApps,
        Want::Host,
        "properties.defaultHostname",
        field(props, "defaultHostname"),
    );
    let domains = emit.array("properties.customDomains", field(props, "customDomains"));
    for (i, domain) in domains.iter().enumerate() {
        let path = format!("properties.customDomains[{i}]");
        match domain {
            Value::Object(_) => {
                let name = field(domain, "domainName").or_else(|| field(domain, "name"));
                emit.value(StaticWebApps, Want::Host, &path, name);
            }
            other => emit.value(StaticWebApps, Want::Host, &path, Some(other)),
        }
    }
}

/// The host of `gatewayUrl`, every `hostnameConfigurations[].hostName` and the
/// `publicIPAddresses[]`; nothing for an `Internal` virtual network deployment.
pub(crate) fn api_management(resource: &Resource, _: &Context, emit: &mut Emitter) {
    let props = &resource.properties;
    if str_is(props, &["virtualNetworkType"], "Internal") {
        return;
    }
    emit.value(
        ApiManagement,
        Want::Host,
        "properties.gatewayUrl",
        field(props, "gatewayUrl"),
    );
    let configs = emit.array(
        "properties.hostnameConfigurations",
        field(props, "hostnameConfigurations"),
    );
    for (i, config) in configs.iter().enumerate() {
        let path = format!("properties.hostnameConfigurations[{i}].hostName");
        match config {
            Value::Object(_) => emit.value(ApiManagement, Want::Host, &path, field(config, "hostName")),
            other => emit.warn(
                &format!("properties.hostnameConfigurations[{i}]"),
                format!("expected an object, found {}", describe(other)),
            ),
        }
    }
    emit.list(
        ApiManagement,
        Want::Ip,
        "properties.publicIPAddresses",
        field(props, "publicIPAddresses"),
    );
}
