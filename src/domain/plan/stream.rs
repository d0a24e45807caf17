//! The plan of an estate file, built while the file is streamed: each resource is extracted as
//! it arrives and dropped; what is kept is its seeds (with a compact owner id), its warnings,
//! and the small facts later resources may need. A resource whose outcome depends on a fact a
//! later companion may state (a record set before its private zone, a storage account before
//! its `blobServices/default`) is held as a small decision and resolved at the end, so the plan
//! is the one the whole file gives when extracted at once.

use std::collections::HashMap;
use std::io::Read;

use super::Plan;
use super::build::PlanBuilder;
use super::owners::OwnerIndex;
use crate::domain::check::EnabledChecks;
use crate::domain::estate::{EstateError, EstateSink, stream_estate};
use crate::domain::extract::{Fact, FactStream, ItemSeeds, Outcome, Warning, is_companion_type, is_owner_type};
use crate::domain::resource::Resource;

/// Reads an estate item by item and returns its plan; `file` names the source in errors.
pub fn plan_estate(input: impl Read, file: &str, checks: &EnabledChecks) -> Result<Plan, EstateError> {
    let mut planner = EstatePlanner::new(checks);
    stream_estate(input, file, &mut planner)?;
    Ok(planner.finish())
}

/// An [`EstateSink`] that plans as it reads.
#[derive(Debug)]
pub struct EstatePlanner {
    facts: FactStream,
    builder: PlanBuilder,
    /// Facts seeds were made conditional on; condition `1 + 2 * index + answer`.
    conditions: Vec<Fact>,
    condition_index: HashMap<Fact, u32>,
    /// Outcomes that depend on more than one fact, or whose warnings depend on one.
    pending: Vec<Pending>,
}

#[derive(Debug)]
struct Pending {
    position: usize,
    owner: OwnerIndex,
    outcome: Outcome,
}

impl EstatePlanner {
    pub(crate) fn new(checks: &EnabledChecks) -> EstatePlanner {
        EstatePlanner {
            facts: FactStream::new(checks),
            builder: PlanBuilder::new(),
            conditions: Vec::new(),
            condition_index: HashMap::new(),
            pending: Vec::new(),
        }
    }

    /// Resolves the resources that waited for the whole input, then builds the plan.
    pub(crate) fn finish(self) -> Plan {
        let EstatePlanner {
            facts,
            mut builder,
            conditions,
            condition_index,
            pending,
        } = self;
        drop(condition_index);
        let holds: Vec<bool> = conditions.iter().map(|fact| facts.holds(fact)).collect();
        builder.resolve_conditions(|condition| {
            let index = (condition - 1) / 2;
            let answer = (condition - 1) % 2 == 1;
            holds.get(index as usize).is_some_and(|holds| *holds == answer)
        });
        for item in pending {
            let contribution = item.outcome.resolve(&mut |fact| facts.holds(fact));
            builder.add(item.position, item.owner, contribution);
        }
        drop(facts);
        builder.finish()
    }
}

impl EstatePlanner {
    /// Adds the seeds of both answers to `fact`: common ones always, the others under their
    /// answer. `no` and `yes` have the same warnings.
    fn add_both(&mut self, position: usize, resource: &Resource, fact: Fact, no: ItemSeeds, yes: ItemSeeds) {
        if no.seeds.is_empty() && yes.seeds.is_empty() && no.warnings.is_empty() {
            return;
        }
        let owner = self.builder.owner(&resource.id);
        let next = u32::try_from(self.conditions.len()).unwrap_or(u32::MAX);
        let index = *self.condition_index.entry(fact.clone()).or_insert(next);
        if index == next {
            self.conditions.push(fact);
        }
        let when = |answer: bool| index.saturating_mul(2).saturating_add(1 + u32::from(answer));
        for seed in &yes.seeds {
            if no.seeds.contains(seed) {
                self.builder.add_seed(owner, seed.clone());
            } else {
                self.builder.add_conditional(owner, seed.clone(), when(true));
            }
        }
        for seed in no.seeds {
            if !yes.seeds.contains(&seed) {
                self.builder.add_conditional(owner, seed, when(false));
            }
        }
        self.builder.add(
            position,
            owner,
            ItemSeeds {
                seeds: Vec::new(),
                warnings: no.warnings,
            },
        );
    }
}

impl EstateSink for EstatePlanner {
    fn resource(&mut self, index: usize, resource: Resource) {
        self.builder.count_resources(1);
        match self.facts.push(&resource) {
            Outcome::Known(contribution) => {
                if contribution.seeds.is_empty() && contribution.warnings.is_empty() {
                    return;
                }
                let owner = self.builder.owner(&resource.id);
                self.builder.add(index, owner, contribution);
            }
            Outcome::Depends {
                fact,
                if_false,
                if_true,
            } => match (*if_false, *if_true) {
                // The usual case (one fact, warnings alike): seeds of either answer are kept
                // as 40-byte conditional entries, not as a held outcome.
                (Outcome::Known(no), Outcome::Known(yes)) if no.warnings == yes.warnings => {
                    self.add_both(index, &resource, fact, no, yes);
                }
                (if_false, if_true) => {
                    let owner = self.builder.owner(&resource.id);
                    self.pending.push(Pending {
                        position: index,
                        owner,
                        outcome: Outcome::Depends {
                            fact,
                            if_false: Box::new(if_false),
                            if_true: Box::new(if_true),
                        },
                    });
                }
            },
        }
    }

    fn rejected(&mut self, warning: Warning) {
        self.builder.input_warning(warning);
    }

    /// Extraction reads the bodies of owners and companions only (not VMs, disks, NICs).
    fn needs_body(&self, arm_type: &str) -> bool {
        is_owner_type(arm_type) || is_companion_type(arm_type)
    }

    fn needs_envelope_details(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests;
