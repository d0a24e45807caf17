//! Building a plan from contributions as they come, in memory that grows with the seeds and
//! their sources, not with the input.

use std::cmp::Ordering;

use super::owners::{OwnerIndex, Owners};
use super::{Plan, PlannedSeed, display_order};
use crate::domain::extract::{ItemSeeds, Warning};
use crate::domain::resource::ResourceId;
use crate::domain::seed::Seed;

/// A seed from one owner, kept only if its condition holds (0: always; otherwise set by the
/// caller, see [`PlanBuilder::add_conditional`]). Once grouped, the same 40 bytes become a
/// [`PlannedSeed`] in place (owner → first source, condition → source count).
#[derive(Debug)]
struct Pair {
    seed: Seed,
    owner: OwnerIndex,
    condition: u32,
}

/// Collects seeds (each with the owner it came from) and warnings, then sorts them into a
/// [`Plan`].
#[derive(Debug, Default)]
pub struct PlanBuilder {
    owners: Owners,
    pairs: Vec<Pair>,
    input_warnings: Vec<Warning>,
    /// Extraction warnings with the input position of their resource.
    warnings: Vec<(usize, Warning)>,
    resources: usize,
}

impl PlanBuilder {
    pub(crate) fn new() -> PlanBuilder {
        PlanBuilder::default()
    }

    /// A problem met while reading the input (listed before extraction warnings).
    pub(crate) fn input_warning(&mut self, warning: Warning) {
        self.input_warnings.push(warning);
    }

    /// Counts resources read.
    pub(crate) fn count_resources(&mut self, count: usize) {
        self.resources += count;
    }

    /// Registers an owner whose seeds will be added.
    pub fn owner(&mut self, id: &ResourceId) -> OwnerIndex {
        self.owners.add(id)
    }

    /// Adds what the resource at input position `position` contributed.
    pub(crate) fn add(&mut self, position: usize, owner: OwnerIndex, contribution: ItemSeeds) {
        self.pairs.extend(contribution.seeds.into_iter().map(|seed| Pair {
            seed,
            owner,
            condition: 0,
        }));
        self.warnings
            .extend(contribution.warnings.into_iter().map(|warning| (position, warning)));
    }

    /// Adds one seed of `owner`.
    pub(crate) fn add_seed(&mut self, owner: OwnerIndex, seed: Seed) {
        self.add_conditional(owner, seed, 0);
    }

    /// Adds one seed of `owner` that stays only if `condition` (not 0) holds in
    /// [`PlanBuilder::resolve_conditions`].
    pub(crate) fn add_conditional(&mut self, owner: OwnerIndex, seed: Seed, condition: u32) {
        self.pairs.push(Pair { seed, owner, condition });
    }

    /// Drops the seeds whose condition does not hold.
    pub(crate) fn resolve_conditions(&mut self, holds: impl Fn(u32) -> bool) {
        self.pairs.retain_mut(|pair| {
            let keep = pair.condition == 0 || holds(pair.condition);
            pair.condition = 0;
            keep
        });
    }

    /// Sorts seeds for display and sources by id, without duplicates.
    pub(crate) fn finish(self) -> Plan {
        let PlanBuilder {
            owners,
            mut pairs,
            input_warnings,
            mut warnings,
            resources,
        } = self;
        pairs.sort_unstable_by(|a, b| {
            display_order(&a.seed, &b.seed)
                .then_with(|| a.seed.cmp(&b.seed))
                .then_with(|| owners.cmp_ids(a.owner, b.owner))
        });
        pairs.dedup_by(|later, earlier| {
            later.seed == earlier.seed && owners.cmp_ids(later.owner, earlier.owner) == Ordering::Equal
        });
        // Group in place: the first pair of each seed becomes its entry (owner → first source,
        // condition → source count), so no second list of seeds is allocated.
        let mut sources: Vec<OwnerIndex> = Vec::with_capacity(pairs.len());
        let mut groups = 0;
        for read in 0..pairs.len() {
            let owner = pairs[read].owner;
            if groups > 0 && pairs[groups - 1].seed == pairs[read].seed {
                pairs[groups - 1].condition += 1;
            } else {
                pairs.swap(groups, read);
                pairs[groups].owner = u32::try_from(sources.len()).unwrap_or(u32::MAX);
                pairs[groups].condition = 1;
                groups += 1;
            }
            sources.push(owner);
        }
        pairs.truncate(groups);
        let seeds: Vec<PlannedSeed> = pairs
            .into_iter()
            .map(|pair| PlannedSeed {
                seed: pair.seed,
                first_source: pair.owner,
                source_count: pair.condition,
            })
            .collect();
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
