//! Steps 2 and 3 of an apply: read the owner (or trust the event's body), commit the read,
//! and drop what went with a deleted container.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use super::{Applier, ApplyError, Run, Step};
use crate::adapters::azure::OwnerRead;
use crate::domain::resource::{Resource, ResourceId};
use crate::domain::seed::Seed;
use crate::ledger::{Expect, LedgerError, OwnedSeed, OwnerRecord, Versioned, ops};

/// What an owner contributes, as last read.
struct Reading {
    seeds: Vec<OwnedSeed>,
    gone: bool,
    /// When the read was made (the body's time when the body was trusted).
    read_at: i64,
    /// The body's time, when the event's body was trusted instead of a read.
    body_taken_at: Option<i64>,
}

impl Applier {
    /// What the owner contributes now: from the event's body when that is newer than the last
    /// commit and only adds seeds (no read needed); otherwise from a read. A body that would
    /// remove seeds is confirmed by a read (it may lack what the owner's seeds depend on), and
    /// an older one is stale.
    async fn current(
        &self,
        owner: &ResourceId,
        body: Option<(Resource, i64)>,
        previous: Option<&Versioned<OwnerRecord>>,
        run: &Run,
    ) -> Result<Reading, ApplyError> {
        let read_at = self.clock.now_ms();
        if let Some((resource, taken_at)) = body
            && previous.is_none_or(|p| taken_at > p.value.seen_at_ms)
            && !self.deleted_since(owner, taken_at).await?
        {
            let now = self.seeds_of(owner, std::slice::from_ref(&resource));
            let before = previous.map(|p| p.value.seed_set()).unwrap_or_default();
            let after: BTreeSet<Seed> = now.iter().map(|s| s.seed.clone()).collect();
            if before.is_subset(&after) {
                return Ok(Reading {
                    seeds: now,
                    gone: false,
                    read_at: taken_at,
                    body_taken_at: Some(taken_at),
                });
            }
        }
        let (seeds, gone) = self.read(owner, run).await?;
        Ok(Reading {
            seeds,
            gone,
            read_at,
            body_taken_at: None,
        })
    }

    /// Re-reads one owner and commits what it contributes now; if it is gone, drops it and
    /// every owner below it.
    pub(super) async fn update_owner(
        &self,
        owner: &ResourceId,
        mut body: Option<(Resource, i64)>,
        run: &Run,
    ) -> Result<Vec<ResourceId>, ApplyError> {
        for _ in 0..self.options.max_conflicts {
            let previous = self.ledger.owner(owner).await?;
            let Reading {
                seeds: now,
                gone,
                read_at,
                body_taken_at,
            } = self.current(owner, body.take(), previous.as_ref(), run).await?;
            self.step(Step::Read)?;
            if let Some(prev) = &previous
                && prev.value.settled
                && prev.value.deleted == gone
                && prev.value.seeds == now
            {
                // A duplicate: everything already agrees. Still record when the owner was read:
                // an event body taken before this read is stale, and only `seen_at_ms` tells
                // a later apply so (without it, a late body could roll the owner back).
                if read_at > prev.value.seen_at_ms {
                    let mut seen = prev.value.clone();
                    seen.seen_at_ms = read_at;
                    match self
                        .ledger
                        .put_owner(&seen, &Expect::Version(prev.version.clone()))
                        .await
                    {
                        Ok(_) => {}
                        // Committed by someone else since: start again from their commit.
                        Err(LedgerError::Conflict { .. }) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                // A gone owner's children are checked again all the same, in case an earlier
                // attempt stopped before dropping them.
                let mut touched = vec![owner.clone()];
                if gone {
                    touched.extend(self.drop_below(owner, read_at, run).await?);
                }
                return Ok(touched);
            }
            let record = ops::next_record(owner, previous.as_ref().map(|p| &p.value), now, gone, read_at);
            let expect = match &previous {
                Some(p) => Expect::Version(p.version.clone()),
                None => Expect::Absent,
            };
            match self.ledger.put_owner(&record, &expect).await {
                Ok(version) => {
                    self.step(Step::OwnerCommitted)?;
                    // A container delete may have been marked between the check above and this
                    // commit, and listed its owners before the commit landed: look again, and
                    // if so read the owner instead (the next round commits over this record).
                    if let Some(taken_at) = body_taken_at
                        && self.deleted_since(owner, taken_at).await?
                    {
                        continue;
                    }
                    self.propagate(record, version, run).await?;
                    let mut touched = vec![owner.clone()];
                    if gone {
                        // Its children went with it (a zone's record sets, a site's slots).
                        touched.extend(self.drop_below(owner, read_at, run).await?);
                    }
                    return Ok(touched);
                }
                Err(LedgerError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApplyError::Contended {
            what: format!("owner {owner}"),
        })
    }

    pub(super) async fn read(&self, owner: &ResourceId, run: &Run) -> Result<(Vec<OwnedSeed>, bool), ApplyError> {
        run.arm_reads.fetch_add(1, Ordering::Relaxed);
        match self.azure.read_owner(owner).await {
            Ok(OwnerRead::Found(resources)) => Ok((self.seeds_of(owner, &resources), false)),
            Ok(OwnerRead::Gone) => Ok((Vec::new(), true)),
            Err(source) => Err(ApplyError::Azure {
                owner: owner.to_string(),
                source,
            }),
        }
    }

    /// The owner's own seeds from an extraction of it and its companions.
    pub(super) fn seeds_of(&self, owner: &ResourceId, resources: &[Resource]) -> Vec<OwnedSeed> {
        let extraction = (self.extract)(resources, &self.checks);
        let mut seeds: Vec<OwnedSeed> = extraction
            .contributions
            .into_iter()
            .filter(|c| &c.owner == owner && self.seed_types.contains(&c.seed.kind()))
            .map(|c| OwnedSeed {
                seed: c.seed,
                check: c.check,
            })
            .collect();
        seeds.sort();
        seeds.dedup();
        seeds
    }

    /// Records that `prefix` (a container) was seen deleted now, as a tombstone owner record.
    pub(super) async fn mark_deleted(&self, prefix: &ResourceId) -> Result<(), ApplyError> {
        for _ in 0..self.options.max_conflicts {
            let previous = self.ledger.owner(prefix).await?;
            let mut record = ops::next_record(
                prefix,
                previous.as_ref().map(|p| &p.value),
                Vec::new(),
                true,
                self.clock.now_ms(),
            );
            // A container contributes no seeds; carry over anything still pending, if it ever did.
            record.settled = record.pending_removal.is_empty();
            let expect = match &previous {
                Some(p) => Expect::Version(p.version.clone()),
                None => Expect::Absent,
            };
            match self.ledger.put_owner(&record, &expect).await {
                Ok(_) => return Ok(()),
                Err(LedgerError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApplyError::Contended {
            what: format!("container {prefix}"),
        })
    }

    /// Whether an ancestor of `owner` was seen deleted at or after `taken_at` (so a body taken
    /// then may describe a resource that no longer exists).
    pub(super) async fn deleted_since(&self, owner: &ResourceId, taken_at: i64) -> Result<bool, ApplyError> {
        let mut current = owner.parent();
        while let Some(ancestor) = current {
            if let Some(record) = self.ledger.owner(&ancestor).await?
                && record.value.deleted
                && record.value.seen_at_ms >= taken_at
            {
                return Ok(true);
            }
            current = ancestor.parent();
        }
        Ok(false)
    }

    /// Re-reads every owner the ledger knows at or below `prefix` (a deleted resource group,
    /// subscription or CDN profile): each one that is gone is dropped, each one that exists
    /// again is updated, so a late delete event cannot remove a re-created resource.
    pub(super) async fn verify_within(
        &self,
        prefix: &ResourceId,
        except: Option<&ResourceId>,
        run: &Run,
    ) -> Result<Vec<ResourceId>, ApplyError> {
        let mut touched = Vec::new();
        for found in self.ledger.owners_within(prefix).await? {
            if (found.value.deleted && found.value.settled) || Some(&found.value.id) == except {
                continue;
            }
            for id in Box::pin(self.update_owner(&found.value.id, None, run)).await? {
                if !touched.contains(&id) {
                    touched.push(id);
                }
            }
        }
        Ok(touched)
    }

    /// Tombstones every live owner strictly below `parent`, which an ARM read made at
    /// `read_at_ms` found gone (its children went with it). An owner committed since that read
    /// is re-read instead: it may have been re-created.
    pub(super) async fn drop_below(
        &self,
        parent: &ResourceId,
        read_at_ms: i64,
        run: &Run,
    ) -> Result<Vec<ResourceId>, ApplyError> {
        let mut dropped = Vec::new();
        for found in self.ledger.owners_within(parent).await? {
            let id = found.value.id.clone();
            if (found.value.deleted && found.value.settled) || &id == parent {
                continue;
            }
            if found.value.seen_at_ms >= read_at_ms {
                dropped.extend(Box::pin(self.update_owner(&id, None, run)).await?);
                continue;
            }
            let record = ops::next_record(&id, Some(&found.value), Vec::new(), true, self.clock.now_ms());
            match self.ledger.put_owner(&record, &Expect::Version(found.version)).await {
                Ok(version) => {
                    self.step(Step::OwnerCommitted)?;
                    self.propagate(record, version, run).await?;
                    dropped.push(id);
                }
                // Committed by someone else since we listed it: read it ourselves.
                Err(LedgerError::Conflict { .. }) => dropped.extend(Box::pin(self.update_owner(&id, None, run)).await?),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(dropped)
    }
}
