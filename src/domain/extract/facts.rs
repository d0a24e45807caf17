//! Cross-resource facts, and extraction of one resource at a time when the resources that state
//! those facts may still be to come (a streamed estate file).
//!
//! A fact is small and typed: "the DNS zone with this key is private", "the storage account
//! with this key has its static website enabled". Facts only ever become true as more of the
//! input is read, so a resource whose extraction asked about a fact that is not (yet) known is
//! extracted under both answers; [`Outcome::resolve`] picks the branch once every fact of the
//! input is known. The result is exactly what [`super::extract_resources`] gives for the whole
//! input, whatever the order of owners and companions.

use std::cell::RefCell;
use std::collections::HashSet;

use super::{Extraction, Warning, dns, extract_one, storage};
use crate::domain::check::EnabledChecks;
use crate::domain::resource::{Resource, ResourceId};
use crate::domain::seed::Seed;

/// One fact an extractor can ask about, naming the resource it is about (ids compare ignoring
/// case, and clones share the id's one allocation).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Fact {
    /// The DNS zone has `zoneType: Private` (its record sets are not seeded).
    PrivateZone(ResourceId),
    /// The storage account's `blobServices/default` companion enables its static website.
    StaticWebsite(ResourceId),
}

/// Facts that one resource of the input states about another.
#[derive(Debug, Default)]
pub(crate) struct Context {
    /// DNS zones with `zoneType: Private`.
    private_zones: HashSet<ResourceId>,
    /// Storage accounts whose static website is known to be enabled.
    static_websites: HashSet<ResourceId>,
    /// Set while an outcome is explored: answers assumed for facts not (yet) known.
    probe: Option<Probe>,
}

/// Assumed answers, and the facts asked about that were neither known nor assumed (answered
/// "no" for this run).
#[derive(Debug, Default)]
struct Probe {
    assumed: Vec<(Fact, bool)>,
    open: RefCell<Vec<Fact>>,
}

impl Context {
    pub(crate) fn build(resources: &[Resource]) -> Context {
        let mut context = Context::default();
        for resource in resources {
            context.learn(resource);
        }
        context
    }

    /// Records the facts `resource` states about itself or its owner.
    pub(crate) fn learn(&mut self, resource: &Resource) {
        if dns::is_private_zone(resource) {
            self.private_zones.insert(resource.id.clone());
        }
        if let Some(account) = storage::static_website_enabled_for(resource) {
            self.static_websites.insert(account);
        }
    }

    /// Whether the fact is known from the input read so far.
    pub(crate) fn knows(&self, fact: &Fact) -> bool {
        match fact {
            Fact::PrivateZone(key) => self.private_zones.contains(key),
            Fact::StaticWebsite(key) => self.static_websites.contains(key),
        }
    }

    fn holds(&self, known: bool, fact: impl FnOnce() -> Fact) -> bool {
        if known {
            return true;
        }
        let Some(probe) = &self.probe else {
            return false;
        };
        let fact = fact();
        if let Some((_, answer)) = probe.assumed.iter().find(|(f, _)| *f == fact) {
            return *answer;
        }
        probe.open.borrow_mut().push(fact);
        false
    }

    pub(crate) fn zone_is_private(&self, zone: &ResourceId) -> bool {
        self.holds(self.private_zones.contains(zone), || Fact::PrivateZone(zone.clone()))
    }

    pub(crate) fn static_website_enabled(&self, account: &ResourceId) -> bool {
        self.holds(self.static_websites.contains(account), || {
            Fact::StaticWebsite(account.clone())
        })
    }
}

/// What one resource contributes: its seeds (each once, in the order found) and its warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemSeeds {
    pub seeds: Vec<Seed>,
    pub warnings: Vec<Warning>,
}

impl ItemSeeds {
    fn from_extraction(extraction: Extraction) -> ItemSeeds {
        let mut seeds: Vec<Seed> = Vec::with_capacity(extraction.contributions.len());
        for contribution in extraction.contributions {
            if !seeds.contains(&contribution.seed) {
                seeds.push(contribution.seed);
            }
        }
        ItemSeeds {
            seeds,
            warnings: extraction.warnings,
        }
    }
}

/// A resource's contribution, possibly depending on facts not known when it was read: its
/// seeds ([`ItemSeeds`], for plans) or its whole extraction (with provenance, for sweeps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T = ItemSeeds> {
    Known(T),
    Depends {
        fact: Fact,
        if_false: Box<Outcome<T>>,
        if_true: Box<Outcome<T>>,
    },
}

impl<T> Outcome<T> {
    /// The contribution under the facts of the whole input (`holds` says whether a fact does).
    pub(crate) fn resolve(self, holds: &mut impl FnMut(&Fact) -> bool) -> T {
        let mut current = self;
        loop {
            match current {
                Outcome::Known(seeds) => return seeds,
                Outcome::Depends {
                    fact,
                    if_false,
                    if_true,
                } => current = if holds(&fact) { *if_true } else { *if_false },
            }
        }
    }
}

/// Extracts resources one at a time, learning facts as they come: the streaming counterpart of
/// [`super::extract_resources`].
#[derive(Debug)]
pub struct FactStream {
    context: Context,
    checks: EnabledChecks,
}

impl FactStream {
    pub(crate) fn new(checks: &EnabledChecks) -> FactStream {
        FactStream {
            context: Context::default(),
            checks: checks.clone(),
        }
    }

    /// Learns what `resource` states and extracts it. A `Depends` outcome must be resolved
    /// with [`FactStream::holds`] once the whole input has been pushed.
    pub(crate) fn push(&mut self, resource: &Resource) -> Outcome {
        self.context.learn(resource);
        let (run, open) = self.run(resource, Vec::new());
        self.explore(resource, Vec::new(), run, open, &ItemSeeds::from_extraction)
    }

    /// As [`FactStream::push`], keeping the whole extraction (contributions with their check
    /// and property path, warnings) rather than the seeds alone.
    pub(crate) fn push_extraction(&mut self, resource: &Resource) -> Outcome<Extraction> {
        self.context.learn(resource);
        let (run, open) = self.run(resource, Vec::new());
        self.explore(resource, Vec::new(), run, open, &|extraction| extraction)
    }

    /// Whether a fact holds for the input pushed so far.
    pub(crate) fn holds(&self, fact: &Fact) -> bool {
        self.context.knows(fact)
    }

    /// Learns every fact `other` learned (its input joins this one's).
    pub(crate) fn absorb(&mut self, other: FactStream) {
        self.context.private_zones.extend(other.context.private_zones);
        self.context.static_websites.extend(other.context.static_websites);
    }

    /// Extracts once under `assumed` answers; returns the result and the facts answered "no"
    /// without being known or assumed.
    fn run(&mut self, resource: &Resource, assumed: Vec<(Fact, bool)>) -> (Extraction, Vec<Fact>) {
        self.context.probe = Some(Probe {
            assumed,
            open: RefCell::default(),
        });
        let mut out = Extraction::default();
        extract_one(resource, &self.context, &self.checks, &mut out);
        let open = self
            .context
            .probe
            .take()
            .map(|probe| probe.open.into_inner())
            .unwrap_or_default();
        (out, open)
    }

    /// The decision tree over the open facts. The run at hand already answered every open fact
    /// "no", so it is the "no" branch of its first open fact; only "yes" branches run again.
    fn explore<T>(
        &mut self,
        resource: &Resource,
        assumed: Vec<(Fact, bool)>,
        run: Extraction,
        mut open: Vec<Fact>,
        keep: &impl Fn(Extraction) -> T,
    ) -> Outcome<T> {
        open.retain(|fact| !assumed.iter().any(|(f, _)| f == fact));
        if open.is_empty() {
            return Outcome::Known(keep(run));
        }
        let fact = open.remove(0);
        let mut yes = assumed.clone();
        yes.push((fact.clone(), true));
        let mut no = assumed;
        no.push((fact.clone(), false));
        let (yes_run, yes_open) = self.run(resource, yes.clone());
        let if_true = self.explore(resource, yes, yes_run, yes_open, keep);
        let if_false = self.explore(resource, no, run, open, keep);
        Outcome::Depends {
            fact,
            if_false: Box::new(if_false),
            if_true: Box::new(if_true),
        }
    }
}
