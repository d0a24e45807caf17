//! A change to one resource, from an event or a queued retry: what the apply path works on.

use crate::domain::owner::{Owner, owner_of};
use crate::domain::resource::{Resource, ResourceId};

/// The event a change came from, for the logs of what was done about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventRef {
    pub id: String,
    pub event_type: String,
}

/// Whether a change means "re-read the resource" or "the resource is gone".
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Changed,
    Deleted,
}

/// One resource change for the apply path.
#[derive(Debug, Clone)]
pub struct Change {
    pub id: ResourceId,
    pub kind: ChangeKind,
    /// The resource body when the event carried it (Resource Notifications `CreatedOrUpdated`),
    /// so no ARM read is needed.
    pub body: Option<Box<Resource>>,
    /// When the change happened, per the event.
    pub time: Option<String>,
}

impl Change {
    /// Folds a later-arriving change for the same owner (see [`Change::key`]) into this one.
    /// Event order is not change order, so anything ambiguous becomes a re-read, which is
    /// always right:
    /// - changes to different resources of one owner become one re-read of the owner (a read
    ///   of the owner includes its children), a delete of the owner itself winning;
    /// - a delete among changes of one resource wins, without a body: the apply of a delete
    ///   still reads the resource, and also re-checks what was below it in case it was deleted
    ///   and created again (what went with the delete sends no events of its own);
    /// - two bodies keep the newer one when both are dated differently; every other mix of
    ///   changes reads the resource again.
    pub(crate) fn merge(&mut self, other: Change) {
        if self.id.key() != other.id.key() {
            let owner = self.owner();
            let owner_deleted = [&*self, &other]
                .iter()
                .any(|c| c.kind == ChangeKind::Deleted && c.id.without_extension() == owner);
            self.id = owner;
            self.kind = if owner_deleted {
                ChangeKind::Deleted
            } else {
                ChangeKind::Changed
            };
            self.body = None;
            self.time = None;
            return;
        }
        match (self.kind, other.kind) {
            (ChangeKind::Changed, ChangeKind::Changed) => {
                let newer = match (&self.body, &other.body, parse_time(&self.time), parse_time(&other.time)) {
                    (Some(_), Some(_), Some(mine), Some(theirs)) if mine != theirs => Some(theirs > mine),
                    _ => None,
                };
                match newer {
                    Some(true) => *self = other,
                    Some(false) => {}
                    None => {
                        self.body = None;
                        self.time = None;
                    }
                }
            }
            _ => {
                self.kind = ChangeKind::Deleted;
                self.body = None;
                self.time = None;
            }
        }
    }

    /// The resource whose seeds this change affects (the id itself when no owner tracks it).
    pub fn owner(&self) -> ResourceId {
        match owner_of(&self.id) {
            Owner::Resource(owner) | Owner::Prefix(owner) => owner,
            Owner::Untracked => self.id.clone(),
        }
    }

    /// The coalescing key: the lower-cased id of the owner, so a burst of changes to one
    /// owner and its children (a site, its config, its host name bindings) is one read.
    pub(crate) fn key(&self) -> String {
        self.owner().key().to_string()
    }

    /// When the change happened per the event (Unix milliseconds), if the event said so.
    pub(crate) fn time_ms(&self) -> Option<i64> {
        let t = parse_time(&self.time)?;
        i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
    }
}

fn parse_time(text: &Option<String>) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text.as_deref()?, &time::format_description::well_known::Rfc3339).ok()
}
