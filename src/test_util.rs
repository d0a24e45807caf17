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
