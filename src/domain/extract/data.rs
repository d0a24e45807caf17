//! Data services: Azure SQL, Cosmos DB, Redis, PostgreSQL/MySQL flexible servers, Key Vault.

use super::Context;
use super::emit::{Emitter, Want, field, is_set, str_is};
use crate::domain::check::ServiceCheck::{CosmosDb, FlexibleServers, KeyVaults, RedisCache, SqlServers};
use crate::domain::resource::Resource;

/// `fullyQualifiedDomainName` (the regional gateway IPs are shared: never seeded).
pub(crate) fn sql_server(resource: &Resource, _: &Context, emit: &mut Emitter) {
    emit.value(
        SqlServers,
        Want::Host,
        "properties.fullyQualifiedDomainName",
        field(&resource.properties, "fullyQualifiedDomainName"),
    );
}

/// The host of `documentEndpoint` and of each `locations[].documentEndpoint`.
pub(crate) fn cosmos_account(resource: &Resource, _: &Context, emit: &mut Emitter) {
    let props = &resource.properties;
    emit.value(
        CosmosDb,
        Want::Host,
        "properties.documentEndpoint",
        field(props, "documentEndpoint"),
    );
    let locations = emit.array("properties.locations", field(props, "locations"));
    for (i, location) in locations.iter().enumerate() {
        emit.value(
            CosmosDb,
            Want::Host,
            &format!("properties.locations[{i}].documentEndpoint"),
            field(location, "documentEndpoint"),
        );
    }
}

/// `hostName`; a cache injected into a subnet (`subnetId` set) is private.
pub(crate) fn redis(resource: &Resource, _: &Context, emit: &mut Emitter) {
    let props = &resource.properties;
    if is_set(props, &["subnetId"]) {
        return;
    }
    emit.value(RedisCache, Want::Host, "properties.hostName", field(props, "hostName"));
}

/// `fullyQualifiedDomainName`; a VNet-integrated server (`network.delegatedSubnetResourceId`
/// set) is private unless its public access is explicitly enabled.
pub(crate) fn flexible_server(resource: &Resource, _: &Context, emit: &mut Emitter) {
    let props = &resource.properties;
    if is_set(props, &["network", "delegatedSubnetResourceId"])
        && !str_is(props, &["network", "publicNetworkAccess"], "Enabled")
    {
        return;
    }
    emit.value(
        FlexibleServers,
        Want::Host,
        "properties.fullyQualifiedDomainName",
        field(props, "fullyQualifiedDomainName"),
    );
}

/// The host of `vaultUri`.
pub(crate) fn key_vault(resource: &Resource, _: &Context, emit: &mut Emitter) {
    emit.value(
        KeyVaults,
        Want::Host,
        "properties.vaultUri",
        field(&resource.properties, "vaultUri"),
    );
}
