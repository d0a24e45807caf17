//! Helpers shared by the unit tests.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts how many generated cases of a property test reached its assertion, so a property
/// whose guard lets almost nothing through fails instead of passing vacuously.
///
/// Use the closure form of `proptest!` inside a plain `#[test]`, call [`Reached::case`] first in
/// the body, [`Reached::hit`] where the assertion runs, and [`Reached::check`] after the run.
pub(crate) struct Reached {
    name: &'static str,
    cases: AtomicUsize,
    hits: AtomicUsize,
}

impl Reached {
    pub(crate) fn new(name: &'static str) -> Reached {
        Reached {
            name,
            cases: AtomicUsize::new(0),
            hits: AtomicUsize::new(0),
        }
    }

    pub(crate) fn case(&self) {
        self.cases.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Reports the count and fails unless at least `min_fraction` of the cases reached it.
    pub(crate) fn check(&self, min_fraction: f64) {
        let cases = self.cases.load(Ordering::Relaxed);
        let hits = self.hits.load(Ordering::Relaxed);
        println!("{}: {hits} of {cases} generated cases reached the assertion", self.name);
        assert!(cases > 0, "{}: the property never ran", self.name);
        assert!(
            hits as f64 >= min_fraction * cases as f64,
            "{}: only {hits} of {cases} generated cases reached the assertion (need {:.0}%)",
            self.name,
            min_fraction * 100.0
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "only 1 of 10 generated cases reached the assertion")]
    fn too_few_cases_reaching_the_assertion_fail_the_property() {
        let reached = Reached::new("sparse");
        for case in 0..10 {
            reached.case();
            if case == 0 {
                reached.hit();
            }
        }
        reached.check(0.5);
    }

    #[test]
    #[should_panic(expected = "the property never ran")]
    fn a_property_that_never_ran_fails() {
        Reached::new("idle").check(0.0);
    }

    /// Every property test in the library counts its cases with [`Reached`]: each `proptest!`
    /// in a source file comes with a `Reached::new` and a `.check(` in the same file.
    #[test]
    fn every_property_test_in_src_counts_with_reached() {
        let mut unchecked = Vec::new();
        let mut properties = 0;
        let mut pending = vec![std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                if path.ends_with("test_util.rs") || path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let source = std::fs::read_to_string(&path).unwrap();
                let uses = source.matches("proptest!").count();
                properties += uses;
                if source.matches("Reached::new(").count() < uses || source.matches("reached.check(").count() < uses {
                    unchecked.push(format!("{}: {uses} proptest! without a Reached", path.display()));
                }
            }
        }
        assert!(
            properties >= 7,
            "found only {properties} property tests: did the search break?"
        );
        assert!(unchecked.is_empty(), "{unchecked:#?}");
    }
}
