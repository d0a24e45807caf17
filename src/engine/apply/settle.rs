//! Step 4 of an apply: set the owner's membership on each affected seed, then settle the
//! seed with ASM under an intent (a lease other appliers respect).

use std::sync::atomic::Ordering;

use super::{Applier, ApplyError, KEPT_DELETE_STALE_OFF, Run, Settle, Step};
use crate::adapters::asm::{AddOutcome, DeleteOutcome};
use crate::domain::check::ServiceCheck;
use crate::domain::resource::ResourceId;
use crate::domain::seed::Seed;
use crate::ledger::{Expect, Intent, IntentAction, LedgerError, OwnerRecord, SeedRecord, Version, Versioned, ops};

impl Applier {
    /// Brings every seed the committed record touches in line, then marks the owner settled.
    pub(super) async fn propagate(&self, record: OwnerRecord, version: Version, run: &Run) -> Result<(), ApplyError> {
        let mut deferred = false;
        let changes = ops::membership_changes(&record);
        for (seed, checks) in changes {
            let current = self
                .set_membership(&seed, &record.id, record.generation, checks)
                .await?;
            self.step(Step::MembershipWritten)?;
            deferred |= self.settle(&seed, current, run).await?;
        }
        if deferred {
            return Ok(()); // not settled: the retry after the lease finishes the job
        }
        let mut settled = record;
        settled.pending_removal.clear();
        settled.settled = true;
        match self.ledger.put_owner(&settled, &Expect::Version(version)).await {
            // A newer commit took over: it carries our pending removals forward.
            Ok(_) | Err(LedgerError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Sets one owner's membership on a seed record (compare-and-swap, retried).
    pub(super) async fn set_membership(
        &self,
        seed: &Seed,
        owner: &ResourceId,
        generation: u64,
        checks: Option<Vec<ServiceCheck>>,
    ) -> Result<Option<Versioned<SeedRecord>>, ApplyError> {
        let ttl = self.options.tombstone_ttl.as_millis() as i64;
        match ops::set_membership(
            self.ledger.as_ref(),
            seed,
            owner,
            generation,
            checks,
            &|| self.clock.now_ms(),
            ttl,
            self.options.max_conflicts,
        )
        .await
        {
            Err(LedgerError::Conflict { .. }) => Err(ApplyError::Contended {
                what: format!("seed {seed}"),
            }),
            other => Ok(other?),
        }
    }

    /// What the seed needs from ASM, given its record.
    pub(super) fn decide(&self, record: &SeedRecord, now: i64, run: &Run) -> Settle {
        let wanted = record.is_wanted();
        let mut held = record.asm.held;
        let mut ours = record.asm.ours;
        if let Some(intent) = &record.intent
            && intent.token != run.token
        {
            let fresh = now - intent.at_ms < self.options.lease.as_millis() as i64;
            if fresh {
                // Its holder is calling ASM (or crashed doing so): what ASM holds is unknown
                // until the lease ends. A live holder re-evaluates the seed before releasing
                // it; retry afterwards in case it crashed.
                return Settle::Deferred;
            }
            // An expired intent: its call may or may not have happened. Both ASM writes are
            // idempotent, so assume the worst case for what ASM holds. A delete on such an
            // assumption checks the tag in a fresh listing first (see `asm_delete`).
            // An intent is only recorded for a seed believed ours (an add carries our tag).
            held = !wanted;
            ours = true;
        }
        if wanted && !held && record.asm.rejected.is_none() {
            Settle::Do(IntentAction::Add)
        } else if !wanted && held && ours {
            if !self.options.delete_stale_seeds {
                run.keep(&record.seed, KEPT_DELETE_STALE_OFF.to_string());
                Settle::Nothing
            } else if run.is_kept(&record.seed) {
                Settle::Nothing // the breaker held it back in this run
            } else {
                Settle::Do(IntentAction::Delete)
            }
        } else {
            Settle::Nothing
        }
    }

    /// Brings ASM in line with the seed's record, holding an intent during each ASM call.
    /// `true` when another applier's intent holds the seed (a retry must finish the job).
    pub(super) async fn settle(
        &self,
        seed: &Seed,
        mut current: Option<Versioned<SeedRecord>>,
        run: &Run,
    ) -> Result<bool, ApplyError> {
        let mut conflicts = 0;
        let mut calls = 0;
        loop {
            let Some(versioned) = current.take() else {
                return Ok(false);
            };
            let now = self.clock.now_ms();
            let action = match self.decide(&versioned.value, now, run) {
                Settle::Nothing => {
                    // Our own intent with nothing left to do is released; a conflict reads again.
                    let ours = versioned.value.intent.as_ref().is_some_and(|i| i.token == run.token);
                    if !ours || self.release_intent(versioned).await? {
                        return Ok(false);
                    }
                    current = self.ledger.seed(seed).await?;
                    continue;
                }
                Settle::Deferred => {
                    tracing::debug!(seed = %seed, token = %run.token, "deferred to another applier's intent");
                    Run::note(&run.deferred, seed);
                    return Ok(true);
                }
                Settle::Do(action) => action,
            };
            calls += 1;
            if calls > 4 {
                return Err(ApplyError::Contended {
                    what: format!("seed {seed} in ASM"),
                });
            }
            let mut record = versioned.value.clone();
            record.intent = Some(Intent {
                action,
                token: run.token.clone(),
                at_ms: now,
            });
            let version = match self.ledger.put_seed(&record, &Expect::Version(versioned.version)).await {
                Ok(v) => v,
                Err(LedgerError::Conflict { .. }) => {
                    conflicts += 1;
                    if conflicts > self.options.max_conflicts {
                        return Err(ApplyError::Contended {
                            what: format!("seed {seed}"),
                        });
                    }
                    calls -= 1;
                    current = self.ledger.seed(seed).await?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            tracing::debug!(seed = %seed, ?action, token = %run.token, "intent recorded");
            self.step(Step::IntentRecorded)?;
            let outcome = match action {
                IntentAction::Add => self.asm_add(seed, run).await,
                IntentAction::Delete => self.asm_delete(seed, &record, run).await,
            };
            let outcome = match outcome {
                Ok(outcome) => outcome,
                Err(error) => {
                    self.leave_in_doubt(&record, version).await;
                    return Err(error);
                }
            };
            self.step(Step::AsmCalled)?;
            current = Some(self.record_outcome(seed, &run.token, outcome).await?);
            self.step(Step::AsmRecorded)?;
        }
    }

    /// Clears our intent from a seed record. `false` when another applier wrote it meanwhile.
    async fn release_intent(&self, versioned: Versioned<SeedRecord>) -> Result<bool, ApplyError> {
        let mut record = versioned.value;
        record.intent = None;
        match self.ledger.put_seed(&record, &Expect::Version(versioned.version)).await {
            Ok(_) => Ok(true),
            Err(LedgerError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// An ASM call failed, and may have been applied with its answer lost: keep the intent as
    /// a record of that doubt, but expired, so whoever settles the seed next (a retry or another
    /// owner's apply) takes over at once and assumes the worst.
    async fn leave_in_doubt(&self, record: &SeedRecord, version: Version) {
        let mut in_doubt = record.clone();
        if let Some(intent) = in_doubt.intent.as_mut() {
            intent.at_ms = 0;
        }
        let _ = self.ledger.put_seed(&in_doubt, &Expect::Version(version)).await;
    }

    async fn asm_add(&self, seed: &Seed, run: &Run) -> Result<Outcome, ApplyError> {
        run.asm_writes.fetch_add(1, Ordering::Relaxed);
        let tags = [self.seed_tag.clone()];
        // A seed ASM refused within the last day is answered from the ledger, not sent again.
        let now = self.clock.now_ms();
        match crate::engine::refused::add_remembering(&*self.asm, &*self.ledger, now, seed, &tags).await {
            Ok(AddOutcome::Added) => {
                Run::note(&run.added, seed);
                Ok(Outcome::Held {
                    ours: Some(true),
                    id: Some(None),
                })
            }
            // Perhaps someone else's seed, perhaps ours from an attempt whose answer was lost:
            // ours as far as a later delete goes, which checks the tag in a listing first.
            Ok(AddOutcome::AlreadyExists) => Ok(Outcome::Held {
                ours: Some(true),
                id: Some(None),
            }),
            Ok(AddOutcome::Rejected { code, message }) => {
                run.warn(format!("ASM refused seed {seed}: {code}: {message}"));
                Ok(Outcome::Rejected(code))
            }
            Err(source) => Err(ApplyError::Asm {
                seed: seed.to_string(),
                source,
            }),
        }
    }

    async fn asm_delete(&self, seed: &Seed, record: &SeedRecord, run: &Run) -> Result<Outcome, ApplyError> {
        let asm_err = |source| ApplyError::Asm {
            seed: seed.to_string(),
            source,
        };
        // A known id comes from a listing that showed our tag; otherwise (we added the seed,
        // or an expired intent left its state unknown) find it and check the tag again.
        let known = record.asm.id.clone().filter(|_| record.asm.ours && record.asm.held);
        let id = match known {
            Some(id) => id,
            None => {
                run.asm_reads.fetch_add(1, Ordering::Relaxed);
                let listed = self.asm.list_seeds().await.map_err(asm_err)?;
                // Most names are listed as written: match those cheaply, normalise (IDNA) the
                // whole listing only when none does.
                let cheap = listed.iter().find(|s| {
                    s.name.trim().trim_end_matches('.').eq_ignore_ascii_case(seed.name())
                        && s.normalised().as_ref() == Some(seed)
                });
                let found = cheap.or_else(|| listed.iter().find(|s| s.normalised().as_ref() == Some(seed)));
                match found {
                    None => return Ok(Outcome::Gone),
                    Some(found) if !found.has_tag(&self.seed_tag) => {
                        run.warn(format!("seed {seed} in ASM does not carry tag {}: kept", self.seed_tag));
                        return Ok(Outcome::Held {
                            ours: Some(false),
                            id: Some(Some(found.id.clone())),
                        });
                    }
                    Some(found) => found.id.clone(),
                }
            }
        };
        // The deletion breaker, checked as the delete is about to be sent.
        let admission = crate::ledger::breaker::reserve_delete(
            self.ledger.as_ref(),
            self.clock.now_ms(),
            self.options.max_delete_fraction,
            self.options.max_conflicts,
        )
        .await?;
        if let Some(reason) = admission.reason() {
            run.keep(seed, reason);
            return Ok(Outcome::Held {
                ours: Some(true),
                id: Some(Some(id)),
            });
        }
        run.asm_writes.fetch_add(1, Ordering::Relaxed);
        match self.asm.delete_seed(&id).await.map_err(asm_err)? {
            DeleteOutcome::Deleted => Run::note(&run.deleted, seed),
            DeleteOutcome::AlreadyGone => {}
        }
        Ok(Outcome::Gone)
    }

    /// Records an ASM call's outcome and releases our intent (compare-and-swap, retried).
    async fn record_outcome(
        &self,
        seed: &Seed,
        token: &str,
        outcome: Outcome,
    ) -> Result<Versioned<SeedRecord>, ApplyError> {
        for _ in 0..self.options.max_conflicts {
            let current = self.ledger.seed(seed).await?;
            let (mut record, expect) = match current {
                Some(c) => (c.value, Expect::Version(c.version)),
                None => (SeedRecord::new(seed.clone()), Expect::Absent),
            };
            match &outcome {
                Outcome::Held { ours, id } => {
                    record.asm.held = true;
                    record.asm.rejected = None;
                    if let Some(ours) = ours {
                        record.asm.ours = *ours;
                    }
                    if let Some(id) = id {
                        record.asm.id = id.clone();
                    }
                }
                Outcome::Gone => {
                    record.asm.held = false;
                    record.asm.ours = false;
                    record.asm.id = None;
                }
                Outcome::Rejected(code) => {
                    record.asm.held = false;
                    record.asm.rejected = Some(code.clone());
                }
            }
            record.asm.at_ms = self.clock.now_ms();
            if record.intent.as_ref().is_some_and(|i| i.token == token) {
                record.intent = None;
            }
            match self.ledger.put_seed(&record, &expect).await {
                Ok(version) => return Ok(Versioned { value: record, version }),
                Err(LedgerError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApplyError::Contended {
            what: format!("seed {seed}"),
        })
    }
}

/// The result of one ASM call, as it is recorded.
enum Outcome {
    /// ASM holds it; `Some` fields replace what the record says.
    Held {
        ours: Option<bool>,
        id: Option<Option<String>>,
    },
    Gone,
    Rejected(String),
}
