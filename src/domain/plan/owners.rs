//! The source resources of a plan, stored compactly: a million owner ids of ~120 characters
//! each would be most of a large plan's memory, but ids of one type in one resource group share
//! everything up to their last `/`, so that prefix is stored once and each owner keeps its name.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;

use crate::domain::resource::ResourceId;

/// An owner's position in [`Owners`].
pub type OwnerIndex = u32;

#[derive(Debug, Clone)]
pub struct Owners {
    /// Shared id prefixes; the first is empty (for an owner that keeps its whole id).
    prefixes: Vec<Box<str>>,
    prefix_index: HashMap<Box<str>, u32>,
    /// Every owner's name, one after the other.
    names: String,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    prefix: u32,
    name_len: u32,
    name_start: usize,
}

impl Default for Owners {
    fn default() -> Self {
        Owners {
            prefixes: vec!["".into()],
            prefix_index: HashMap::new(),
            names: String::new(),
            entries: Vec::new(),
        }
    }
}

impl Owners {
    /// Adds an owner (as Azure spelled its id) and returns its index.
    pub(crate) fn add(&mut self, id: &ResourceId) -> OwnerIndex {
        let text = id.as_str();
        let cut = text.rfind('/').map_or(0, |at| at + 1);
        let (prefix, name) = text.split_at(cut);
        let prefix = match self.prefix_index.get(prefix) {
            Some(index) => *index,
            None => {
                // Past u32::MAX prefixes (never in practice) an owner keeps its whole id.
                let Ok(index) = u32::try_from(self.prefixes.len()) else {
                    return self.push(0, text);
                };
                self.prefixes.push(prefix.into());
                self.prefix_index.insert(prefix.into(), index);
                index
            }
        };
        self.push(prefix, name)
    }

    fn push(&mut self, prefix: u32, name: &str) -> OwnerIndex {
        // Ids are at most 4096 characters (`ResourceId::parse`).
        let name_len = u32::try_from(name.len()).unwrap_or(u32::MAX);
        self.entries.push(Entry {
            prefix,
            name_len,
            name_start: self.names.len(),
        });
        self.names.push_str(name);
        // Past u32::MAX owners (far more than memory holds) the last index is reused.
        u32::try_from(self.entries.len() - 1).unwrap_or(u32::MAX)
    }

    fn parts(&self, index: OwnerIndex) -> (&str, &str) {
        let Some(entry) = self.entries.get(index as usize) else {
            return ("", "");
        };
        let prefix = self.prefixes.get(entry.prefix as usize).map_or("", |p| p);
        let end = entry
            .name_start
            .saturating_add(entry.name_len as usize)
            .min(self.names.len());
        (prefix, self.names.get(entry.name_start..end).unwrap_or(""))
    }

    /// The id as Azure spelled it.
    pub fn id(&self, index: OwnerIndex) -> OwnerId<'_> {
        let (prefix, name) = self.parts(index);
        OwnerId { prefix, name }
    }

    /// Orders two owners as [`ResourceId`] does (by the lower-cased id).
    pub(crate) fn cmp_ids(&self, a: OwnerIndex, b: OwnerIndex) -> Ordering {
        let key = |index| {
            let (prefix, name) = self.parts(index);
            prefix.bytes().chain(name.bytes()).map(|b| b.to_ascii_lowercase())
        };
        key(a).cmp(key(b))
    }
}

/// One owner id, displayed as Azure spelled it.
#[derive(Debug, Clone, Copy)]
pub struct OwnerId<'a> {
    prefix: &'a str,
    name: &'a str,
}

impl OwnerId<'_> {
    pub(crate) fn to_resource_id(self) -> Option<ResourceId> {
        ResourceId::parse(&self.to_string()).ok()
    }
}

impl fmt::Display for OwnerId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.prefix)?;
        f.write_str(self.name)
    }
}

impl serde::Serialize for OwnerId<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_share_prefixes_and_compare_like_resource_ids() {
        let ids = [
            "/subscriptions/1/resourceGroups/RG/providers/Microsoft.Web/sites/b",
            "/subscriptions/1/resourceGroups/rg/providers/Microsoft.Web/sites/A",
            "/subscriptions/1/resourceGroups/RG/providers/Microsoft.Web/sites/a",
        ];
        let mut owners = Owners::default();
        let parsed: Vec<ResourceId> = ids.iter().map(|id| ResourceId::parse(id).unwrap()).collect();
        let indices: Vec<OwnerIndex> = parsed.iter().map(|id| owners.add(id)).collect();
        for (index, id) in indices.iter().zip(ids) {
            assert_eq!(owners.id(*index).to_string(), id);
        }
        assert_eq!(owners.prefixes.len(), 3);
        for a in 0..3 {
            for b in 0..3 {
                assert_eq!(owners.cmp_ids(indices[a], indices[b]), parsed[a].cmp(&parsed[b]));
            }
        }
    }
}
