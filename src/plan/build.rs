//! Building a plan from contributions as they come, in memory that grows with the seeds and
//! their sources, not with the input.

use std::cmp::Ordering;

use super::owners::{OwnerIndex, Owners};
use super::{Plan, PlannedSeed, display_order};
use crate::extract::{ItemSeeds, Warning};
use crate::resource::ResourceId;
use crate::seed::Seed;

/// Collects seeds (each with the owner it came from) and warnings, then sorts them into a
/// [`Plan`].
#[derive(Debug, Default)]
pub struct PlanBuilder {
    owners: Owners,
    pairs: Vec<(Seed, OwnerIndex)>,
    input_warnings: Vec<Warning>,
    /// Extraction warnings with the input position of their resource.
    warnings: Vec<(usize, Warning)>,
    resources: usize,
}

impl PlanBuilder {
    pub fn new() -> PlanBuilder {
        PlanBuilder::default()
    }

    /// A problem met while reading the input (listed before extraction warnings).
    pub fn input_warning(&mut self, warning: Warning) {
        self.input_warnings.push(warning);
    }

    /// Counts resources read.
    pub fn count_resources(&mut self, count: usize) {
        self.resources += count;
    }

    /// Registers an owner whose seeds will be added.
    pub fn owner(&mut self, id: &ResourceId) -> OwnerIndex {
        self.owners.add(id)
    }

    /// Adds what the resource at input position `position` contributed.
    pub fn add(&mut self, position: usize, owner: OwnerIndex, contribution: ItemSeeds) {
        self.pairs
            .extend(contribution.seeds.into_iter().map(|seed| (seed, owner)));
        self.warnings
            .extend(contribution.warnings.into_iter().map(|warning| (position, warning)));
    }

    /// Adds one seed of `owner`.
    pub fn add_seed(&mut self, owner: OwnerIndex, seed: Seed) {
        self.pairs.push((seed, owner));
    }

    /// Sorts seeds for display and sources by id, without duplicates.
    pub fn finish(self) -> Plan {
        let PlanBuilder {
            owners,
            mut pairs,
            input_warnings,
            mut warnings,
            resources,
        } = self;
        pairs.sort_unstable_by(|a, b| {
            display_order(&a.0, &b.0)
                .then_with(|| a.0.cmp(&b.0))
                .then_with(|| owners.cmp_ids(a.1, b.1))
        });
        pairs.dedup_by(|later, earlier| later.0 == earlier.0 && owners.cmp_ids(later.1, earlier.1) == Ordering::Equal);
        let mut seeds: Vec<PlannedSeed> = Vec::new();
        let mut sources = Vec::with_capacity(pairs.len());
        for (seed, owner) in pairs {
            match seeds.last_mut() {
                Some(last) if last.seed == seed => last.sources.end += 1,
                _ => seeds.push(PlannedSeed {
                    seed,
                    sources: sources.len()..sources.len() + 1,
                }),
            }
            sources.push(owner);
        }
        // Stable: a resource's warnings keep their order.
        warnings.sort_by_key(|(position, _)| *position);
        let mut all_warnings = input_warnings;
        all_warnings.extend(warnings.into_iter().map(|(_, warning)| warning));
        Plan {
            seeds,
            sources,
            owners,
            warnings: all_warnings,
            resources,
        }
    }
}
