//! The extraction of resources read one at a time (a sweep's pages, its companion reads), kept
//! compact: every contribution and warning goes straight into two flat lists, and those that
//! hold only under a fact still unknown when their resource was read (a record set whose zone
//! may be private, a storage account whose `blobServices/default` may enable its static
//! website) are marked by a range and an interned condition rather than held as a tree per
//! resource. [`CollectedExtraction::finish`] drops the ranges whose condition fails once every
//! fact is known, so the result equals [`super::extract_resources`] over the same resources.

use std::collections::HashMap;
use std::ops::Range;

use super::{Contribution, Extraction, Fact, FactStream, Outcome, Warning};
use crate::domain::check::EnabledChecks;
use crate::domain::resource::Resource;

/// Answers assumed for facts: a leaf of an [`Outcome`] holds when every one of them does.
type Condition = Box<[(Fact, bool)]>;

/// Contributions and warnings that hold only under `condition` (an index into the conditions).
#[derive(Debug, Clone)]
struct Conditional {
    contributions: Range<usize>,
    warnings: Range<usize>,
    condition: u32,
}

/// See the module documentation.
#[derive(Debug)]
pub struct CollectedExtraction {
    facts: FactStream,
    contributions: Vec<Contribution>,
    warnings: Vec<Warning>,
    conditional: Vec<Conditional>,
    conditions: Vec<Condition>,
    condition_index: HashMap<Condition, u32>,
    rows: usize,
}

impl CollectedExtraction {
    pub(crate) fn new(checks: &EnabledChecks) -> CollectedExtraction {
        CollectedExtraction {
            facts: FactStream::new(checks),
            contributions: Vec::new(),
            warnings: Vec::new(),
            conditional: Vec::new(),
            conditions: Vec::new(),
            condition_index: HashMap::new(),
            rows: 0,
        }
    }

    /// Learns what `resource` states, extracts it and keeps only the result (never the body).
    pub(crate) fn push(&mut self, resource: &Resource) {
        self.rows += 1;
        let outcome = self.facts.push_extraction(resource);
        let mut assumed = Vec::new();
        self.keep(outcome, &mut assumed);
    }

    /// Resources pushed (into this one or any it absorbed).
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Joins another collection's resources and facts to this one's.
    pub(crate) fn absorb(&mut self, other: CollectedExtraction) {
        let CollectedExtraction {
            facts,
            contributions,
            warnings,
            conditional,
            conditions,
            condition_index: _,
            rows,
        } = other;
        let (c0, w0) = (self.contributions.len(), self.warnings.len());
        self.facts.absorb(facts);
        self.rows += rows;
        append_freeing(&mut self.contributions, contributions);
        append_freeing(&mut self.warnings, warnings);
        let remapped: Vec<u32> = conditions.into_iter().map(|c| self.intern(c)).collect();
        self.conditional
            .extend(conditional.into_iter().map(|entry| Conditional {
                contributions: entry.contributions.start + c0..entry.contributions.end + c0,
                warnings: entry.warnings.start + w0..entry.warnings.end + w0,
                condition: remapped[entry.condition as usize],
            }));
    }

    /// The extraction under the facts of everything pushed, and how many resources there were.
    pub(crate) fn finish(self) -> (Extraction, usize) {
        let CollectedExtraction {
            facts,
            mut contributions,
            mut warnings,
            conditional,
            conditions,
            condition_index,
            rows,
        } = self;
        drop(condition_index);
        let holds: Vec<bool> = conditions
            .iter()
            .map(|condition| condition.iter().all(|(fact, answer)| facts.holds(fact) == *answer))
            .collect();
        let mut dropped_contributions = Vec::new();
        let mut dropped_warnings = Vec::new();
        for entry in conditional {
            if !holds[entry.condition as usize] {
                dropped_contributions.push(entry.contributions);
                dropped_warnings.push(entry.warnings);
            }
        }
        remove_ranges(&mut contributions, dropped_contributions);
        remove_ranges(&mut warnings, dropped_warnings);
        contributions.shrink_to_fit();
        warnings.shrink_to_fit();
        (
            Extraction {
                contributions,
                warnings,
            },
            rows,
        )
    }

    /// Appends every leaf of `outcome`, marking those reached under assumptions.
    fn keep(&mut self, outcome: Outcome<Extraction>, assumed: &mut Vec<(Fact, bool)>) {
        match outcome {
            Outcome::Known(extraction) => {
                let (c0, w0) = (self.contributions.len(), self.warnings.len());
                self.contributions.extend(extraction.contributions);
                self.warnings.extend(extraction.warnings);
                let (c1, w1) = (self.contributions.len(), self.warnings.len());
                if !assumed.is_empty() && (c1 > c0 || w1 > w0) {
                    let condition = self.intern(assumed.clone().into_boxed_slice());
                    match self.conditional.last_mut() {
                        // Rows come sorted by id, so a zone's record sets follow each other:
                        // one entry covers them all.
                        Some(last)
                            if last.condition == condition
                                && last.contributions.end == c0
                                && last.warnings.end == w0 =>
                        {
                            last.contributions.end = c1;
                            last.warnings.end = w1;
                        }
                        _ => self.conditional.push(Conditional {
                            contributions: c0..c1,
                            warnings: w0..w1,
                            condition,
                        }),
                    }
                }
            }
            Outcome::Depends {
                fact,
                if_false,
                if_true,
            } => {
                assumed.push((fact.clone(), false));
                self.keep(*if_false, assumed);
                assumed.pop();
                assumed.push((fact, true));
                self.keep(*if_true, assumed);
                assumed.pop();
            }
        }
    }

    /// The index of `condition`, shared with every equal one (a zone's many record sets).
    fn intern(&mut self, condition: Condition) -> u32 {
        if let Some(index) = self.condition_index.get(&condition) {
            return *index;
        }
        let index = u32::try_from(self.conditions.len()).unwrap_or(u32::MAX);
        self.conditions.push(condition.clone());
        self.condition_index.insert(condition, index);
        index
    }
}

/// Appends `from` to `into`, freeing `from` a block at a time as it goes, so the two lists are
/// never both whole in memory (a sweep's parts hold hundreds of thousands of contributions).
fn append_freeing<T>(into: &mut Vec<T>, mut from: Vec<T>) {
    const BLOCK: usize = 1 << 14;
    into.reserve_exact(from.len());
    let mut tails = Vec::new();
    while from.len() > BLOCK {
        let tail = from.split_off(from.len() - BLOCK);
        from.shrink_to_fit();
        tails.push(tail);
    }
    into.append(&mut from);
    drop(from);
    while let Some(mut tail) = tails.pop() {
        into.append(&mut tail);
    }
}

/// Removes the items in `ranges` (disjoint) in place, keeping the order of the rest.
fn remove_ranges<T>(items: &mut Vec<T>, mut ranges: Vec<Range<usize>>) {
    if ranges.iter().all(|r| r.is_empty()) {
        return;
    }
    ranges.sort_unstable_by_key(|r| r.start);
    let mut next = ranges.into_iter().peekable();
    let mut index = 0;
    items.retain(|_| {
        while next.peek().is_some_and(|r| r.end <= index) {
            next.next();
        }
        let dropped = next.peek().is_some_and(|r| r.contains(&index));
        index += 1;
        !dropped
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appending_block_by_block_keeps_the_order() {
        let mut into: Vec<usize> = (0..5).collect();
        append_freeing(&mut into, (5..100_000).collect());
        assert_eq!(into, (0..100_000).collect::<Vec<_>>());
    }

    #[test]
    fn ranges_are_removed_in_place() {
        let mut items: Vec<u32> = (0..10).collect();
        remove_ranges(&mut items, vec![7..9, 1..3, 4..4, 3..4]);
        assert_eq!(items, vec![0, 4, 5, 6, 9]);
    }
}
