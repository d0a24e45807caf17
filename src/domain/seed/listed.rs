//! Seeds as ASM lists them: the other input of a reconcile.

use super::{Seed, SeedKind};

/// A seed as ASM lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsmSeed {
    pub id: String,
    pub name: String,
    pub kind: Option<SeedKind>,
    pub tags: Vec<String>,
}

impl AsmSeed {
    /// Whether the seed carries `tag` (compared ignoring ASCII case, in case ASM folds tags).
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t.trim().eq_ignore_ascii_case(tag.trim()))
    }

    /// The seed after normalisation (`WWW.Contoso.com.` is `www.contoso.com`), or `None` when
    /// the name does not normalise (such seeds are left alone). Without a listed type the kind
    /// is guessed from the name: a CIDR block is a range, anything else a host or address.
    pub fn normalised(&self) -> Option<Seed> {
        match self.kind {
            Some(kind) => Seed::from_stored(&self.name, kind).ok(),
            None => Seed::from_host_value(&self.name)
                .or_else(|_| Seed::from_range(&self.name))
                .ok(),
        }
    }
}
