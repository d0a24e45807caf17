//! The plan of an estate file, built while the file is streamed: each resource is extracted as
//! it arrives and dropped; what is kept is its seeds (with a compact owner id), its warnings,
//! and the small facts later resources may need. A resource whose outcome depends on a fact a
//! later companion may state (a record set before its private zone, a storage account before
//! its `blobServices/default`) is held as a small decision and resolved at the end, so the plan
//! is the one the whole file gives when extracted at once.

use std::path::Path;

use super::Plan;
use super::build::PlanBuilder;
use super::owners::OwnerIndex;
use crate::check::EnabledChecks;
use crate::estate::{EstateError, EstateSink, stream_estate};
use crate::extract::{FactStream, Outcome, Warning};
use crate::resource::Resource;

/// Reads the estate file at `path` item by item and returns its plan.
pub fn plan_estate_file(path: &Path, checks: &EnabledChecks) -> Result<Plan, EstateError> {
    let mut planner = EstatePlanner::new(checks);
    stream_estate(path, &mut planner)?;
    Ok(planner.finish())
}

/// An [`EstateSink`] that plans as it reads.
#[derive(Debug)]
pub struct EstatePlanner {
    facts: FactStream,
    builder: PlanBuilder,
    pending: Vec<Pending>,
}

#[derive(Debug)]
struct Pending {
    position: usize,
    owner: OwnerIndex,
    outcome: Outcome,
}

impl EstatePlanner {
    pub fn new(checks: &EnabledChecks) -> EstatePlanner {
        EstatePlanner {
            facts: FactStream::new(checks),
            builder: PlanBuilder::new(),
            pending: Vec::new(),
        }
    }

    /// Resolves the resources that waited for the whole input, then builds the plan.
    pub fn finish(self) -> Plan {
        let EstatePlanner {
            facts,
            mut builder,
            pending,
        } = self;
        for item in pending {
            let contribution = item.outcome.resolve(&mut |fact| facts.holds(fact));
            builder.add(item.position, item.owner, contribution);
        }
        drop(facts);
        builder.finish()
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
            outcome => {
                let owner = self.builder.owner(&resource.id);
                self.pending.push(Pending {
                    position: index,
                    owner,
                    outcome,
                });
            }
        }
    }

    fn rejected(&mut self, warning: Warning) {
        self.builder.input_warning(warning);
    }
}

#[cfg(test)]
mod tests;
