//! Application Gateways: listener host names and the names in their certificates.
//!
//! Only listeners bound to a frontend IP configuration with a `publicIPAddress` are internet
//! facing; a private-only frontend yields no host seeds. Certificate names (CN and DNS SANs of
//! leaf certificates in `sslCertificates[].properties.publicCertData`) are seeded when the
//! gateway has at least one public frontend. Key-Vault-referenced certificates carry no
//! `publicCertData` and yield nothing, silently. The frontend's IP itself is seeded by its
//! public IP resource.

use serde_json::Value;

use super::Context;
use super::certs::certificate_names;
use super::emit::{Emitter, Want, at, describe, field, is_set};
use crate::domain::check::ServiceCheck::{ApplicationGatewayCertificates, ApplicationGateways};
use crate::domain::resource::Resource;

pub(crate) fn application_gateway(resource: &Resource, _: &Context, emit: &mut Emitter) {
    let props = &resource.properties;
    let frontends = emit.array(
        "properties.frontendIPConfigurations",
        field(props, "frontendIPConfigurations"),
    );
    let public_frontends: Vec<String> = frontends
        .iter()
        .filter(|frontend| is_set(frontend, &["properties", "publicIPAddress"]))
        .filter_map(frontend_name)
        .collect();
    let has_public_frontend = frontends
        .iter()
        .any(|frontend| is_set(frontend, &["properties", "publicIPAddress"]));

    if emit.is_on(ApplicationGateways) {
        let listeners = emit.array("properties.httpListeners", field(props, "httpListeners"));
        for (i, listener) in listeners.iter().enumerate() {
            let bound = at(listener, &["properties", "frontendIPConfiguration", "id"]).and_then(Value::as_str);
            let public = match bound {
                Some(id) => {
                    let name = last_segment(id);
                    public_frontends.iter().any(|p| p.eq_ignore_ascii_case(name))
                }
                // No binding recorded: only unambiguous when the gateway has one frontend.
                None => frontends.len() == 1 && has_public_frontend,
            };
            if !public {
                continue;
            }
            emit.value(
                ApplicationGateways,
                Want::Host,
                &format!("properties.httpListeners[{i}].properties.hostName"),
                at(listener, &["properties", "hostName"]),
            );
            emit.list(
                ApplicationGateways,
                Want::Host,
                &format!("properties.httpListeners[{i}].properties.hostNames"),
                at(listener, &["properties", "hostNames"]),
            );
        }
    }

    if emit.is_on(ApplicationGatewayCertificates) && has_public_frontend {
        let certificates = emit.array("properties.sslCertificates", field(props, "sslCertificates"));
        for (i, certificate) in certificates.iter().enumerate() {
            let path = format!("properties.sslCertificates[{i}].properties.publicCertData");
            let data = match at(certificate, &["properties", "publicCertData"]) {
                None | Some(Value::Null) => continue,
                Some(Value::String(data)) if data.trim().is_empty() => continue,
                Some(Value::String(data)) => data,
                Some(other) => {
                    emit.warn(&path, format!("expected a string, found {}", describe(other)));
                    continue;
                }
            };
            match certificate_names(data) {
                Ok(found) => {
                    for error in &found.errors {
                        emit.warn(&path, error.to_string());
                    }
                    for name in &found.names {
                        emit.text(ApplicationGatewayCertificates, Want::DomainOnly, &path, name);
                    }
                }
                Err(error) => emit.warn(&path, error.to_string()),
            }
        }
    }
}

/// A frontend IP configuration's name, or the last segment of its id.
fn frontend_name(frontend: &Value) -> Option<String> {
    if let Some(name) = field(frontend, "name").and_then(Value::as_str)
        && !name.trim().is_empty()
    {
        return Some(name.trim().to_string());
    }
    field(frontend, "id")
        .and_then(Value::as_str)
        .map(|id| last_segment(id).to_string())
}

fn last_segment(id: &str) -> &str {
    id.trim().trim_end_matches('/').rsplit('/').next().unwrap_or_default()
}
