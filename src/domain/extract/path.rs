//! Property paths (`properties.dnsSettings.fqdn`, `properties.hostNames[1]`) as shared strings.
//!
//! Every seed carries the path it was found at, and a sweep of a large estate keeps millions
//! of seeds with a few hundred distinct paths between them, so paths are interned: equal paths
//! share one allocation. The interner is per thread (no lock) and bounded, so a resource with a
//! huge list (one path per index) cannot grow it without limit; past the bound a path is simply
//! not shared.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// Distinct paths one thread shares; the extractors' fixed paths and short lists fit well below.
const INTERNED_PATHS: usize = 4096;

thread_local! {
    static PATHS: RefCell<HashMap<Box<str>, PropertyPath>> = RefCell::new(HashMap::new());
}

/// Where in a resource a value was found. Compares, orders and prints as its text. One pointer
/// wide (the text sits behind the shared allocation), since every contribution holds one.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PropertyPath(Arc<String>);

impl PropertyPath {
    /// The path, shared with every equal path made on this thread (up to the interner's bound).
    pub(crate) fn new(path: &str) -> PropertyPath {
        PATHS.with(|paths| {
            let mut paths = paths.borrow_mut();
            if let Some(shared) = paths.get(path) {
                return shared.clone();
            }
            let made = PropertyPath(Arc::new(path.to_string()));
            if paths.len() < INTERNED_PATHS {
                paths.insert(path.into(), made.clone());
            }
            made
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for PropertyPath {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for PropertyPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for PropertyPath {
    fn from(path: &str) -> PropertyPath {
        PropertyPath::new(path)
    }
}

impl From<String> for PropertyPath {
    fn from(path: String) -> PropertyPath {
        PropertyPath::new(&path)
    }
}

impl PartialEq<str> for PropertyPath {
    fn eq(&self, other: &str) -> bool {
        self.0.as_str() == other
    }
}

impl PartialEq<&str> for PropertyPath {
    fn eq(&self, other: &&str) -> bool {
        self.0.as_str() == *other
    }
}

impl fmt::Display for PropertyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PropertyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_paths_share_one_allocation() {
        let a = PropertyPath::new("properties.dnsSettings.fqdn");
        let b = PropertyPath::from(String::from("properties.dnsSettings.fqdn"));
        assert_eq!(a, b);
        assert!(Arc::ptr_eq(&a.0, &b.0));
        assert_eq!(a, "properties.dnsSettings.fqdn");
        assert_eq!(
            format!("{a} {a:?}"),
            "properties.dnsSettings.fqdn \"properties.dnsSettings.fqdn\""
        );
    }

    #[test]
    fn past_the_bound_paths_are_still_right_but_not_shared() {
        let many: Vec<PropertyPath> = (0..INTERNED_PATHS + 10)
            .map(|i| PropertyPath::new(&format!("properties.hostNames[{i}]")))
            .collect();
        let last = format!("properties.hostNames[{}]", INTERNED_PATHS + 9);
        assert_eq!(many[INTERNED_PATHS + 9].as_str(), last);
        PATHS.with(|paths| assert!(paths.borrow().len() <= INTERNED_PATHS));
    }
}
