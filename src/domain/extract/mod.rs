//! Extraction: which seeds an Azure resource contributes. Pure: no I/O.
//!
//! One registry (`registry.rs`), keyed by lower-cased ARM type, serves full sweeps (a whole
//! estate) and events (one owner and its companions) alike. One file per service family holds
//! the extractors; `emit.rs` is the only place values become seeds, so normalisation, toggles,
//! provenance and warnings are handled once.
//!
//! Cross-resource facts come from the same input: a DNS zone with `zoneType: Private` hides its
//! record sets, and a storage account's `blobServices/default` companion says whether its static
//! website is enabled. To apply them to a single owner, pass the owner together with its zone or
//! companion (see [`companion_owner`]). To extract an input read one resource at a time (a
//! streamed estate file), use [`FactStream`]: it holds the facts as small typed values and
//! resolves resources whose companions come later in the input.

mod appgw;
mod certs;
mod collect;
mod containers;
mod data;
mod dns;
mod edge;
mod emit;
mod exposure;
mod facts;
mod network;
mod path;
mod registry;
mod storage;
mod web;

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use crate::domain::check::EnabledChecks;
use crate::domain::check::ServiceCheck;
use crate::domain::resource::{Resource, ResourceId};
use crate::domain::seed::Seed;

pub use certs::{CertificateError, certificate_names};
pub use collect::CollectedExtraction;
pub(crate) use facts::Context;
pub use facts::{Fact, FactStream, ItemSeeds, Outcome};
pub use path::PropertyPath;
pub use registry::{Extractor, companion_owner, is_companion_type, is_owner_type, lookup, registry};

/// One seed contributed by one owner resource under one service check.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Contribution {
    pub seed: Seed,
    /// The resource whose seeds these are (an owner: a type in the registry).
    pub owner: ResourceId,
    pub check: ServiceCheck,
    /// Where in the resource the value was found (`properties.dnsSettings.fqdn`); equal paths
    /// share one allocation.
    pub path: PropertyPath,
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
    /// Seeds with their sources, deduplicated (one seed, many sources), sources sorted.
    pub fn seeds(&self) -> BTreeMap<Seed, Vec<ResourceId>> {
        let mut pairs: Vec<(&Seed, &ResourceId)> = self.contributions.iter().map(|c| (&c.seed, &c.owner)).collect();
        pairs.sort_unstable();
        pairs.dedup();
        let mut out: BTreeMap<Seed, Vec<ResourceId>> = BTreeMap::new();
        for (seed, owner) in pairs {
            match out.get_mut(seed) {
                Some(sources) => sources.push(owner.clone()),
                None => {
                    out.insert(seed.clone(), vec![owner.clone()]);
                }
            }
        }
        out
    }

    /// The owners that contributed at least one seed.
    pub fn owners(&self) -> HashSet<&ResourceId> {
        self.contributions.iter().map(|c| &c.owner).collect()
    }
}

/// Extracts the seeds of a set of resources: a whole estate, or one owner with its companions
/// (for example a storage account with its `blobServices/default`, or a DNS record set with its
/// zone). Resources of types without an extractor contribute nothing; bad values become
/// warnings. Never panics on outside data.
pub fn extract_resources(resources: &[Resource], checks: &EnabledChecks) -> Extraction {
    let context = Context::build(resources);
    let mut out = Extraction::default();
    for resource in resources {
        extract_one(resource, &context, checks, &mut out);
    }
    out
}

/// Extracts one resource under the facts in `context`, appending to `out`.
pub(crate) fn extract_one(resource: &Resource, context: &Context, checks: &EnabledChecks, out: &mut Extraction) {
    let Some(extractor) = registry::lookup(&resource.arm_type) else {
        return;
    };
    if !extractor.checks.iter().any(|check| checks.is_on(*check)) {
        return;
    }
    let mut emit = emit::Emitter::new(&resource.id, checks, out);
    match &resource.properties {
        Value::Object(_) => {}
        Value::Null if !extractor.needs_properties => {}
        Value::Null => {
            emit.warn(
                "properties",
                "missing: the resource has no properties to read seeds from",
            );
            return;
        }
        other => {
            emit.warn(
                "properties",
                format!("expected an object, found {}", emit::describe(other)),
            );
            return;
        }
    }
    if exposure::public_access_disabled(&resource.properties) {
        return;
    }
    (extractor.extract)(resource, context, &mut emit);
}

#[cfg(test)]
mod tests;
