//! [`ResourceId`]: an ARM resource id, parsed at every edge, compared ignoring case.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::grammar::check_grammar;

/// An ARM resource id. Equality, ordering and hashing ignore case.
///
/// Only the original spelling is stored, shared on clone: every seed a resource contributes
/// names its owner, and a sweep keeps millions of them (one allocation per resource, not per
/// contribution, and no second lower-cased copy: comparisons fold case as they go).
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResourceId {
    original: Arc<str>,
}

fn from_spelling(id: &str) -> ResourceId {
    ResourceId {
        original: Arc::from(id),
    }
}

/// The bytes of an id with ASCII case folded, for comparisons that allocate nothing.
fn folded(id: &str) -> impl Iterator<Item = u8> + '_ {
    id.bytes().map(|b| b.to_ascii_lowercase())
}

/// Why a text is not an ARM resource id. Every variant names what was wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceIdError {
    #[error("resource id {0:?} does not start with /subscriptions/")]
    NotArm(String),
    #[error("resource id contains control characters")]
    ControlCharacters,
    #[error("resource id is longer than {MAX_ID_LEN} characters")]
    TooLong,
    #[error("resource id {id:?} has an empty segment (\"//\") at character {at}")]
    EmptySegment { id: String, at: usize },
    #[error("resource id {id:?}: segment {segment:?} is not allowed (\".\" and \"..\" are path steps, not names)")]
    DotSegment { id: String, segment: String },
    #[error("resource id {id:?}: segment {segment:?} holds {found:?}, which no ARM name or type may contain")]
    ForbiddenCharacter { id: String, segment: String, found: char },
    #[error("resource id {id:?}: {what} {segment:?} is not valid ({rule})")]
    BadSegment {
        id: String,
        what: &'static str,
        segment: String,
        rule: &'static str,
    },
    #[error("resource id {id:?}: {message}")]
    Shape { id: String, message: String },
}

/// ARM caps resource ids well below this; it bounds what one id can cost.
pub const MAX_ID_LEN: usize = 4096;

impl ResourceId {
    /// Parses an id by the ARM resource id grammar
    /// (<https://learn.microsoft.com/rest/api/resources/resources/get-by-id>):
    ///
    /// ```text
    /// /subscriptions/{subscriptionId}
    ///   [/resourceGroups/{resourceGroupName}]
    ///   [/providers/{namespace}/{type}/{name}[/{childType}/{childName}]*]*
    /// ```
    ///
    /// where `/providers/...` may repeat for extension resources. Segments are never empty,
    /// `.` or `..`, and never hold control characters or URL syntax (`?`, `#`, `%`, `\\`): an
    /// id that parses can be spliced into an ARM URL path without changing its meaning.
    /// Surrounding white space and one trailing `/` are dropped.
    pub fn parse(raw: &str) -> Result<ResourceId, ResourceIdError> {
        if raw.len() > MAX_ID_LEN {
            return Err(ResourceIdError::TooLong);
        }
        if raw.chars().any(char::is_control) {
            return Err(ResourceIdError::ControlCharacters);
        }
        let trimmed = raw.trim();
        let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
        check_grammar(trimmed)?;
        Ok(from_spelling(trimmed))
    }

    /// The id as Azure spelled it.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// The lower-cased id (ledger keys, fact keys). Borrowed when the id is already lower case.
    pub fn key(&self) -> Cow<'_, str> {
        if self.original.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(self.original.to_ascii_lowercase())
        } else {
            Cow::Borrowed(&self.original)
        }
    }

    fn segments(&self) -> Vec<&str> {
        self.original.split('/').filter(|s| !s.is_empty()).collect()
    }

    pub fn subscription_id(&self) -> &str {
        self.original.split('/').nth(2).unwrap_or_default()
    }

    pub(crate) fn resource_group(&self) -> Option<&str> {
        let segments = self.segments();
        match segments.as_slice() {
            [_, _, rg, name, ..] if rg.eq_ignore_ascii_case("resourcegroups") => Some(name),
            _ => None,
        }
    }

    /// The id with extension resources cut off (`…/sites/x/providers/Microsoft.Insights/…`
    /// becomes `…/sites/x`), since their changes belong to the resource they extend.
    pub(crate) fn without_extension(&self) -> ResourceId {
        let mut found = 0;
        let mut cut = None;
        let mut offset = 0;
        let key = self.key();
        for part in key.split_inclusive('/') {
            if part == "providers/" {
                found += 1;
                if found == 2 {
                    cut = Some(offset - 1);
                    break;
                }
            }
            offset += part.len();
        }
        match cut {
            Some(at) => from_spelling(&self.original[..at]),
            None => self.clone(),
        }
    }

    /// The ARM type, lower case (`microsoft.network/dnszones/a`); `microsoft.resources/subscriptions`
    /// and `microsoft.resources/resourcegroups` for the containers.
    pub fn arm_type(&self) -> String {
        let key = self.key();
        let segments: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
        let Some(pos) = segments.iter().position(|s| *s == "providers") else {
            return if segments.len() >= 4 {
                "microsoft.resources/resourcegroups".into()
            } else {
                "microsoft.resources/subscriptions".into()
            };
        };
        let rest = &segments[pos + 1..];
        let Some(namespace) = rest.first() else {
            return "microsoft.resources/subscriptions".into();
        };
        let mut parts = vec![namespace.to_string()];
        parts.extend(rest[1..].iter().step_by(2).map(|s| s.to_string()));
        parts.join("/")
    }

    /// The resource's own name: the last segment.
    pub fn name(&self) -> &str {
        self.original.rsplit('/').next().unwrap_or_default()
    }

    /// The immediate parent: the id with its last `/{type}/{name}` pair removed. `None` for a
    /// subscription.
    pub fn parent(&self) -> Option<ResourceId> {
        let segments = self.segments();
        if segments.len() <= 2 {
            return None;
        }
        let providers_at = segments.iter().position(|s| s.eq_ignore_ascii_case("providers"));
        let keep = match providers_at {
            // `/subscriptions/s/resourceGroups/rg/providers/NS/type/name` -> resource group.
            Some(p) if segments.len() <= p + 4 => p,
            Some(_) => segments.len() - 2,
            None => segments.len() - 2,
        };
        let joined = format!("/{}", segments[..keep].join("/"));
        ResourceId::parse(&joined).ok()
    }

    /// Whether `self` is `other` or lies below it.
    pub fn is_within(&self, other: &ResourceId) -> bool {
        let (mine, theirs) = (self.original.as_bytes(), other.original.as_bytes());
        mine.len() >= theirs.len()
            && mine[..theirs.len()].eq_ignore_ascii_case(theirs)
            && (mine.len() == theirs.len() || mine[theirs.len()] == b'/')
    }
}

impl PartialEq for ResourceId {
    fn eq(&self, other: &Self) -> bool {
        self.original.eq_ignore_ascii_case(&other.original)
    }
}
impl Eq for ResourceId {}
impl Hash for ResourceId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The lower-cased bytes in fixed-size blocks, then a terminator as `str` hashes: equal
        // ids (ignoring case) feed the hasher the same calls.
        let mut block = [0u8; 64];
        for chunk in self.original.as_bytes().chunks(block.len()) {
            let folded = &mut block[..chunk.len()];
            folded.copy_from_slice(chunk);
            folded.make_ascii_lowercase();
            state.write(folded);
        }
        state.write_u8(0xff);
    }
}
impl PartialOrd for ResourceId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ResourceId {
    fn cmp(&self, other: &Self) -> Ordering {
        folded(&self.original).cmp(folded(&other.original))
    }
}
impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}
impl fmt::Debug for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.original)
    }
}
impl TryFrom<String> for ResourceId {
    type Error = ResourceIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ResourceId::parse(&value)
    }
}
impl From<ResourceId> for String {
    fn from(value: ResourceId) -> String {
        value.original.to_string()
    }
}
