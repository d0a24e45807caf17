//! Storage accounts: the custom domain always, the static website endpoint only when the
//! website is known to be enabled.
//!
//! `primaryEndpoints.web` is present on every account whether or not a static website is
//! enabled, so it is seeded only when the `blobServices/default` companion (ARM api-version
//! 2025-08-01 or newer) in the same input reports `staticWebsite.enabled: true`, or when the
//! account itself carries that flag.

use super::Context;
use super::emit::{Emitter, Want, at, is_true};
use crate::domain::check::ServiceCheck::StorageStaticWebsites;
use crate::domain::resource::{Resource, ResourceId};

const BLOB_SERVICES_TYPE: &str = "microsoft.storage/storageaccounts/blobservices";

/// The account whose static website `resource` reports as enabled, if it is a
/// `blobServices/default` companion that does so.
pub(crate) fn static_website_enabled_for(resource: &Resource) -> Option<ResourceId> {
    if !resource.arm_type.eq_ignore_ascii_case(BLOB_SERVICES_TYPE)
        || !resource.id.name().eq_ignore_ascii_case("default")
    {
        return None;
    }
    if !is_true(&resource.properties, &["staticWebsite", "enabled"]) {
        return None;
    }
    resource.id.parent()
}

pub(crate) fn storage_account(resource: &Resource, context: &Context, emit: &mut Emitter) {
    let props = &resource.properties;
    emit.value(
        StorageStaticWebsites,
        Want::Host,
        "properties.customDomain.name",
        at(props, &["customDomain", "name"]),
    );
    let website_on = context.static_website_enabled(&resource.id) || is_true(props, &["staticWebsite", "enabled"]);
    if website_on {
        emit.value(
            StorageStaticWebsites,
            Want::Host,
            "properties.primaryEndpoints.web",
            at(props, &["primaryEndpoints", "web"]),
        );
    }
}
