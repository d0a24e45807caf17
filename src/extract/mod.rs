//! Extraction: which seeds an Azure resource contributes. Pure: no I/O.
//!
//! One registry (`registry.rs`), keyed by lower-cased ARM type, serves full sweeps (a whole
//! estate) and events (one owner and its companions) alike.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::check::{EnabledChecks, ServiceCheck};
use crate::resource::{Resource, ResourceId};
use crate::seed::Seed;

/// One seed contributed by one owner resource under one service check.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Contribution {
    pub seed: Seed,
    /// The resource whose seeds these are (an owner: a type in the registry).
    pub owner: ResourceId,
    pub check: ServiceCheck,
    /// Where in the resource the value was found (`properties.dnsSettings.fqdn`).
    pub path: String,
}

/// A value that was not turned into a seed, or a resource that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// The resource id (or `estate[12]` when the item had no usable id).
    pub resource: String,
    /// The property path inside the resource.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.resource, self.message)
        } else {
            write!(f, "{}: {}: {}", self.resource, self.path, self.message)
        }
    }
}

/// What extraction produced.
#[derive(Debug, Clone, Default)]
pub struct Extraction {
    pub contributions: Vec<Contribution>,
    pub warnings: Vec<Warning>,
}

impl Extraction {
    /// Seeds with their sources, deduplicated (one seed, many sources).
    pub fn seeds(&self) -> BTreeMap<Seed, Vec<ResourceId>> {
        let mut out: BTreeMap<Seed, Vec<ResourceId>> = BTreeMap::new();
        for c in &self.contributions {
            let sources = out.entry(c.seed.clone()).or_default();
            if !sources.contains(&c.owner) {
                sources.push(c.owner.clone());
            }
        }
        for sources in out.values_mut() {
            sources.sort();
        }
        out
    }
}

/// Extracts the seeds of a set of resources: a whole estate, or one owner with its companions
/// (for example a storage account with its `blobServices/default`).
pub fn extract_resources(resources: &[Resource], checks: &EnabledChecks) -> Extraction {
    let _ = (resources, checks, ServiceCheck::ALL);
    Extraction::default()
}
