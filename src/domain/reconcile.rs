//! Reconcile: the seeds the estate asks for against the seeds ASM holds. Pure: no I/O.
//!
//! The rules, in the order they apply:
//! 1. Seeds are compared after normalisation ([`AsmSeed::normalised`]), so `WWW.Contoso.com.`
//!    in ASM is `www.contoso.com`. An ASM seed whose name does not normalise is left alone.
//! 2. A desired seed already in ASM, tagged or not, is *kept*: no write. A missing one is added.
//! 3. Only seeds carrying `seed_tag` are ever deleted (ownership by tag): a hand-added seed is
//!    never deleted or changed, even when nothing in Azure matches it.
//! 4. A stale tagged seed is deleted only when `delete_stale_seeds` is on and every scope
//!    (subscription × service check) that contributed it was read completely. Scopes come from
//!    the optional [`Provenance`]; when a seed's provenance is unknown, it is deleted only if
//!    the whole sweep was complete ([`CompletenessReport::is_fully_complete`]).
//!    When another connector may share the tag ([`Rules::shared_tag`]), a seed without Azure
//!    provenance is never deleted: it may be that connector's.
//! 5. A near-empty sweep deletes nothing (see [`is_near_empty`]).
//! 6. The deletion breaker: a run that would delete more than `max_delete_fraction` of the
//!    tagged seeds deletes nothing, unless forced.
//!
//! Rules 5 and 6 weigh the run against the tagged seeds *of the scopes it read*: those it
//! still asks for plus the stale ones rule 4 lets it delete. A full sweep that read everything
//! counts every tagged seed; a reconcile of one subscription or one fan-out batch counts its
//! own, so its guard rails are its scope's (a batch of 20 subscriptions out of 200 is not a
//! "near-empty sweep" of the whole scan, and deleting all of its own seeds is a breaker trip).
//!
//! A run with nothing to add and nothing to delete yields an empty plan: no write at all.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::domain::check::ServiceCheck;
use crate::domain::completeness::CompletenessReport;
use crate::domain::seed::AsmSeed;
use crate::domain::seed::{Seed, SeedKind};

/// Below this share of the tagged seeds, a sweep is "near-empty" and deletes nothing.
///
/// Why: an identity that loses its Reader role on most subscriptions does not get 403s there,
/// the subscriptions simply vanish from its listing, so the completeness report looks clean.
/// The only symptom is a sweep far smaller than what seedwatch put in the scan before. A real
/// estate rarely shrinks by 90% between two sweeps; when it does, the seeds can be removed by
/// hand in ASM.
pub(crate) const NEAR_EMPTY_FRACTION: f64 = 0.10;

/// One scope a seed came from: a service check in a subscription.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Scope {
    pub subscription: String,
    pub check: ServiceCheck,
}

/// Where each seed came from when it was last seen: the scopes that contributed it.
///
/// The ledger supplies it (from the owners it recorded for each seed); without a ledger it is
/// `None`, and a stale seed's provenance is unknown. Only stale seeds are looked up: a seed in
/// the current sweep is desired and never a delete candidate.
pub type Provenance = BTreeMap<Seed, Vec<Scope>>;

/// The knobs of a reconcile.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Seeds carrying this tag are seedwatch's; only they are ever deleted.
    pub seed_tag: String,
    /// `delete_stale_seeds`.
    pub delete_stale: bool,
    /// `sync.max_delete_fraction`.
    pub max_delete_fraction: f64,
    /// `--force-deletes`: the deletion breaker does not stop the deletes.
    pub force_deletes: bool,
    /// `sync.shared_tag` (or an enabled `aws`/`gcp` block): another connector may tag seeds
    /// with `seed_tag`, so only seeds the ledger traces to Azure are deleted.
    pub shared_tag: bool,
}

/// What a reconcile works from.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The seeds the sweep asks for.
    pub desired: &'a BTreeSet<Seed>,
    /// The seeds ASM holds now.
    pub asm: &'a [AsmSeed],
    pub completeness: &'a CompletenessReport,
    pub provenance: Option<&'a Provenance>,
    pub rules: &'a Rules,
}

/// A seed by name and ASM type, for reports.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SeedRef {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: SeedKind,
}

impl From<&Seed> for SeedRef {
    fn from(seed: &Seed) -> SeedRef {
        SeedRef {
            name: seed.name().to_string(),
            kind: seed.kind(),
        }
    }
}

/// A tagged ASM seed that nothing in the estate asks for any more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleSeed {
    /// The ASM seed id (what `DELETE` takes).
    pub id: String,
    /// The name as ASM spells it.
    pub name: String,
    #[serde(skip)]
    pub seed: Seed,
}

/// Why a stale tagged seed was not deleted.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum SkipReason {
    /// `delete_stale_seeds` is false.
    DeleteStaleSeedsOff,
    /// A scope that contributed the seed was not read completely.
    ScopeIncomplete { subscription: String, check: ServiceCheck },
    /// The seed's provenance is unknown and the sweep was not fully complete.
    ProvenanceUnknown,
    /// Another connector may share the tag and the ledger does not trace the seed to Azure.
    NotFromAzure,
    /// The sweep found almost nothing compared with the `tagged` seeds of the scopes it read.
    NearEmptySweep { desired: usize, tagged: usize },
    /// The run would delete more than `max_delete_fraction` of the `tagged` seeds of the
    /// scopes it read.
    DeleteBreaker {
        would_delete: usize,
        tagged: usize,
        max_fraction: f64,
    },
    /// Adds failed in this run, so ASM or the run is unhealthy: deletes wait for the next run.
    AddsFailed { failed: usize },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::DeleteStaleSeedsOff => write!(f, "delete_stale_seeds is false"),
            SkipReason::ScopeIncomplete { subscription, check } => write!(
                f,
                "{check} in subscription {subscription} was not read completely, so its seeds are kept"
            ),
            SkipReason::ProvenanceUnknown => write!(
                f,
                "the sweep was incomplete and the seed's source is unknown, so it is kept"
            ),
            SkipReason::NotFromAzure => write!(
                f,
                "another connector may share the seed tag (sync.shared_tag, or an enabled aws/gcp block) and the ledger does not show this seed came from Azure, so it is kept"
            ),
            SkipReason::NearEmptySweep { desired, tagged } => write!(
                f,
                "the sweep found {desired} seeds against {tagged} tagged in ASM in the scopes it read (under {:.0}%): a near-empty sweep deletes nothing (lost Reader role?)",
                NEAR_EMPTY_FRACTION * 100.0
            ),
            SkipReason::DeleteBreaker {
                would_delete,
                tagged,
                max_fraction,
            } => write!(
                f,
                "would delete {would_delete} of {tagged} tagged seeds in the scopes read, more than sync.max_delete_fraction = {max_fraction}; rerun with --force-deletes if this is intended"
            ),
            SkipReason::AddsFailed { failed } => {
                write!(f, "{failed} adds failed in this run; deletes wait for a healthy run")
            }
        }
    }
}

/// A stale seed that stays, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkippedDelete {
    #[serde(flatten)]
    pub seed: StaleSeed,
    #[serde(flatten)]
    pub reason: SkipReason,
}

/// What to write.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    /// Desired seeds ASM does not hold.
    pub add: Vec<SeedRef>,
    #[serde(skip)]
    pub add_seeds: Vec<Seed>,
    /// Stale tagged seeds that pass every guard rail.
    pub delete: Vec<StaleSeed>,
    /// Desired seeds ASM already holds (tagged or not).
    pub kept: usize,
    /// Stale tagged seeds kept, with the reason.
    pub skipped: Vec<SkippedDelete>,
    /// Seeds in ASM without our tag that nothing asks for: hand-added, left alone.
    pub untagged_left_alone: usize,
    /// ASM seed names that do not normalise: left alone.
    pub unrecognised: Vec<String>,
    /// How many ASM seeds carry our tag.
    pub tagged: usize,
}

impl Plan {
    /// Whether applying the plan writes anything.
    pub fn is_empty(&self) -> bool {
        self.add_seeds.is_empty() && self.delete.is_empty()
    }
}

/// Whether a sweep with `desired` seeds is too small to trust for deletes against `tagged`
/// seedwatch seeds in ASM: nothing desired, or fewer than [`NEAR_EMPTY_FRACTION`] of `tagged`.
pub(crate) fn is_near_empty(desired: usize, tagged: usize) -> bool {
    desired == 0 || (desired as f64) < NEAR_EMPTY_FRACTION * tagged as f64
}

/// Computes what to write.
pub fn reconcile(inputs: Inputs<'_>) -> Plan {
    let mut plan = Plan::default();
    let normalised: Vec<(&AsmSeed, Option<Seed>)> = inputs.asm.iter().map(|s| (s, s.normalised())).collect();
    let present = count_present(&normalised, &inputs.rules.seed_tag, &mut plan);
    for seed in inputs.desired {
        if present.contains(seed) {
            plan.kept += 1;
        } else {
            plan.add.push(SeedRef::from(seed));
            plan.add_seeds.push(seed.clone());
        }
    }
    let eligible = stale_deletes(&inputs, &normalised, &mut plan);
    if eligible.is_empty() {
        return plan;
    }
    let in_scope = tagged_desired(&inputs, &normalised) + eligible.len();
    match set_block(&inputs, eligible.len(), in_scope) {
        Some(reason) => plan.skipped.extend(eligible.into_iter().map(|seed| SkippedDelete {
            seed,
            reason: reason.clone(),
        })),
        None => plan.delete = eligible,
    }
    plan
}

/// The normalised seeds ASM holds; counts the tagged ones and the unrecognised names.
fn count_present<'a>(normalised: &'a [(&AsmSeed, Option<Seed>)], tag: &str, plan: &mut Plan) -> BTreeSet<&'a Seed> {
    let mut present = BTreeSet::new();
    for (asm_seed, seed) in normalised {
        if asm_seed.has_tag(tag) {
            plan.tagged += 1;
        }
        match seed {
            Some(seed) => {
                present.insert(seed);
            }
            None => plan.unrecognised.push(asm_seed.name.clone()),
        }
    }
    present
}

/// Tagged ASM seeds the sweep still asks for.
fn tagged_desired(inputs: &Inputs<'_>, normalised: &[(&AsmSeed, Option<Seed>)]) -> usize {
    normalised
        .iter()
        .filter(|(asm_seed, seed)| {
            asm_seed.has_tag(&inputs.rules.seed_tag) && seed.as_ref().is_some_and(|s| inputs.desired.contains(s))
        })
        .count()
}

/// Stale tagged seeds, each checked against its own scopes first: those its scopes forbid
/// deleting go to `plan.skipped`, the rest are returned.
fn stale_deletes(inputs: &Inputs<'_>, normalised: &[(&AsmSeed, Option<Seed>)], plan: &mut Plan) -> Vec<StaleSeed> {
    let rules = inputs.rules;
    let mut eligible: Vec<StaleSeed> = Vec::new();
    let mut seen_ids: BTreeSet<&str> = BTreeSet::new();
    for (asm_seed, seed) in normalised {
        let Some(seed) = seed else { continue };
        if inputs.desired.contains(seed) {
            continue;
        }
        if !asm_seed.has_tag(&rules.seed_tag) {
            plan.untagged_left_alone += 1;
            continue;
        }
        if !seen_ids.insert(asm_seed.id.as_str()) {
            continue;
        }
        let stale = StaleSeed {
            id: asm_seed.id.clone(),
            name: asm_seed.name.clone(),
            seed: seed.clone(),
        };
        let blocked = if !rules.delete_stale {
            Some(SkipReason::DeleteStaleSeedsOff)
        } else {
            scope_block(seed, inputs.completeness, inputs.provenance, rules.shared_tag)
        };
        match blocked {
            Some(reason) => plan.skipped.push(SkippedDelete { seed: stale, reason }),
            None => eligible.push(stale),
        }
    }
    eligible
}

/// Why the set of `eligible` deletes as a whole must not go ahead, if it must not: a sweep too
/// small to trust, or more deletes than the breaker allows, against the `tagged` seeds of the
/// scopes read.
fn set_block(inputs: &Inputs<'_>, eligible: usize, tagged: usize) -> Option<SkipReason> {
    let rules = inputs.rules;
    if is_near_empty(inputs.desired.len(), tagged) {
        Some(SkipReason::NearEmptySweep {
            desired: inputs.desired.len(),
            tagged,
        })
    } else if !rules.force_deletes && eligible as f64 > rules.max_delete_fraction * tagged as f64 {
        Some(SkipReason::DeleteBreaker {
            would_delete: eligible,
            tagged,
            max_fraction: rules.max_delete_fraction,
        })
    } else {
        None
    }
}

/// Why this stale seed's own scopes forbid deleting it, if they do.
fn scope_block(
    seed: &Seed,
    report: &CompletenessReport,
    provenance: Option<&Provenance>,
    shared_tag: bool,
) -> Option<SkipReason> {
    let scopes = provenance.and_then(|p| p.get(seed)).filter(|s| !s.is_empty());
    match scopes {
        Some(scopes) => scopes
            .iter()
            .find(|scope| !report.is_complete(&scope.subscription, scope.check))
            .map(|scope| SkipReason::ScopeIncomplete {
                subscription: scope.subscription.clone(),
                check: scope.check,
            }),
        None if shared_tag => Some(SkipReason::NotFromAzure),
        None if report.is_fully_complete() => None,
        None => Some(SkipReason::ProvenanceUnknown),
    }
}

#[cfg(test)]
mod tests;
