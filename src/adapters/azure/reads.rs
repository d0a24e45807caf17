//! Single reads through ARM: an owner with the companions its extractor needs, a sweep's
//! children (AFD custom domains, `blobServices/default`). A companion that does not answer is
//! an error, never "feature off" (docs/decisions.md).

use serde_json::Value;

use super::arm::{Reply, bucket_for};
use super::catalog::{self, BLOB_SERVICES_API_VERSION, CDN_API_VERSION};
use super::{AzureError, LiveAzure, OwnerRead};
use crate::domain::check::ServiceCheck;
use crate::domain::resource::{Resource, ResourceId};

/// An ARM read a sweep makes for a Resource Graph row.
pub(super) enum ChildRead {
    AfdCustomDomains(ResourceId),
    BlobServices(ResourceId),
}

/// What a [`ChildRead`] gave, for the check it serves.
pub(super) struct ChildOutcome {
    pub(super) parent: ResourceId,
    pub(super) check: ServiceCheck,
    pub(super) result: Result<Vec<Resource>, AzureError>,
}

impl LiveAzure {
    /// One owner read with its companions (`AzureReader::read_owner`).
    pub(super) async fn read_one_owner(&self, owner: &ResourceId) -> Result<OwnerRead, AzureError> {
        let arm_type = owner.arm_type();
        let api_version = catalog::api_version(&arm_type).ok_or_else(|| AzureError::UnknownType {
            arm_type: arm_type.clone(),
        })?;
        let what = owner.to_string();
        let url = self.arm.resource_url(owner.as_str(), &[], api_version);
        let reply = self.arm.get(&url, bucket_for(owner.as_str()), &what).await?;
        if reply.is_gone() {
            return Ok(OwnerRead::Gone);
        }
        if reply.status == 404 {
            return Err(reply.unclear_not_found(&what));
        }
        let resource = resource_from_reply(reply, &what)?;
        let mut found = vec![resource];
        // A companion that did not answer fails the whole read: nothing of the owner is
        // committed, so none of its seeds is withdrawn (or added) on a missing companion.
        if arm_type == "microsoft.storage/storageaccounts" {
            found.push(self.blob_services(owner).await?);
        }
        if let Some(zone) = parent_zone(owner, &arm_type) {
            found.push(self.read_zone(&zone).await?);
        }
        Ok(OwnerRead::Found(found))
    }

    pub(super) async fn read_child(&self, read: ChildRead) -> ChildOutcome {
        match read {
            ChildRead::AfdCustomDomains(profile) => {
                let result = self.list_children(&profile, "customDomains", CDN_API_VERSION).await;
                ChildOutcome {
                    parent: profile,
                    check: ServiceCheck::FrontDoorAfd,
                    result,
                }
            }
            ChildRead::BlobServices(account) => {
                let result = self.blob_services(&account).await.map(|r| vec![r]);
                ChildOutcome {
                    parent: account,
                    check: ServiceCheck::StorageStaticWebsites,
                    result,
                }
            }
        }
    }

    /// `GET {parent}/{collection}`, every page; a parent ARM says is gone has no children.
    async fn list_children(
        &self,
        parent: &ResourceId,
        collection: &str,
        api_version: &str,
    ) -> Result<Vec<Resource>, AzureError> {
        let what = format!("{collection} of {parent}");
        let mut url = self.arm.resource_url(parent.as_str(), &[collection], api_version);
        let mut out = Vec::new();
        for _ in 0..1000 {
            let reply = self.arm.get(&url, bucket_for(parent.as_str()), &what).await?;
            if reply.is_gone() {
                return Ok(out);
            }
            if reply.status == 404 {
                return Err(reply.unclear_not_found(&what));
            }
            if !reply.is_success() {
                return Err(reply.error(&what));
            }
            let page = reply.json(&what)?;
            for item in page.get("value").and_then(Value::as_array).into_iter().flatten() {
                match Resource::from_json(item.clone()) {
                    Ok(r) => out.push(r),
                    Err(e) => tracing::warn!(error = %e, parent = %parent, "skipping a child resource"),
                }
            }
            match page.get("nextLink").and_then(Value::as_str).filter(|l| !l.is_empty()) {
                Some(next) => url = self.arm.next_link(next, &what)?,
                None => return Ok(out),
            }
        }
        Ok(out)
    }

    /// The DNS zone of a record set read by an event. Any failure, a gone zone included, is an
    /// error: the record set's exposure cannot be decided without it.
    async fn read_zone(&self, zone: &ResourceId) -> Result<Resource, AzureError> {
        let what = format!("the DNS zone {zone}");
        let api_version = catalog::api_version("microsoft.network/dnszones").unwrap_or("2018-05-01");
        let url = self.arm.resource_url(zone.as_str(), &[], api_version);
        let reply = self.arm.get(&url, bucket_for(zone.as_str()), &what).await?;
        if reply.status == 404 && !reply.is_gone() {
            return Err(reply.unclear_not_found(&what));
        }
        resource_from_reply(reply, &what)
    }

    /// A storage account's `blobServices/default`. A read that did not answer (400 for an
    /// api-version not rolled out, 403, 404, 409, 429 or 5xx after retries) is an error, never
    /// "static website off": the caller marks the check incomplete for the account (sweep) or
    /// fails the read (apply), so its web endpoint seed is not deleted on a failed read.
    async fn blob_services(&self, account: &ResourceId) -> Result<Resource, AzureError> {
        let what = format!("blobServices/default of {account}");
        let url = self.arm.resource_url(
            account.as_str(),
            &["blobServices", "default"],
            BLOB_SERVICES_API_VERSION,
        );
        let reply = self.arm.get(&url, bucket_for(account.as_str()), &what).await?;
        if reply.status == 404 && !reply.is_gone() {
            return Err(reply.unclear_not_found(&what));
        }
        resource_from_reply(reply, &what)
    }
}

/// The zone of a public DNS record set: the extractor needs it to tell a legacy private zone
/// (`zoneType: Private`), whose records must not be seeded.
fn parent_zone(owner: &ResourceId, arm_type: &str) -> Option<ResourceId> {
    let record = arm_type.strip_prefix("microsoft.network/dnszones/")?;
    if record.contains('/') {
        return None;
    }
    owner.parent()
}

fn resource_from_reply(reply: Reply, what: &str) -> Result<Resource, AzureError> {
    if !reply.is_success() {
        return Err(reply.error(what));
    }
    Resource::from_json(reply.json(what)?).map_err(|e| AzureError::BadResponse {
        what: what.to_string(),
        message: e.to_string(),
    })
}
