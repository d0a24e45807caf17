//! What a reconcile's writes did, and the report of one sync.

use serde::Serialize;

use crate::adapters::asm::AsmSeed;
use crate::adapters::azure::{CompletenessReport, IncompleteScope};
use crate::domain::extract::Extraction;
use crate::domain::reconcile::{Plan, SeedRef, SkippedDelete, StaleSeed};
use crate::domain::seed::Seed;

/// What happened to one planned write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum WriteResult {
    Added,
    AlreadyExists,
    /// ASM refused the seed (a 400 with a `code`): a warning.
    Rejected {
        code: String,
        message: String,
    },
    Deleted,
    AlreadyGone,
    Failed {
        error: String,
    },
    /// Not tried: ASM was failing, or the run is a dry run.
    NotAttempted {
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteKind {
    Add,
    Delete,
}

/// One write and its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WriteOutcome {
    pub action: WriteKind,
    #[serde(flatten)]
    pub seed: SeedRef,
    /// The ASM id, for deletes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(flatten)]
    pub result: WriteResult,
    #[serde(skip)]
    pub normalised: Option<Seed>,
}

impl WriteOutcome {
    pub(crate) fn is_failure(&self) -> bool {
        matches!(
            self.result,
            WriteResult::Failed { .. } | WriteResult::NotAttempted { .. }
        )
    }
}

/// The summary of one sync.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    pub scan_id: String,
    pub seed_tag: String,
    pub dry_run: bool,
    pub resources_read: usize,
    pub subscriptions: usize,
    /// Distinct seeds the estate asks for.
    pub desired: usize,
    /// What was (or, in a dry run, would be) written.
    pub planned_add: Vec<SeedRef>,
    pub planned_delete: Vec<StaleSeed>,
    #[serde(skip)]
    pub plan: Plan,
    pub added: Vec<SeedRef>,
    pub deleted: Vec<SeedRef>,
    /// Desired seeds ASM already held.
    pub kept: usize,
    /// Stale seeds kept by the guard rails, with reasons.
    pub skipped: Vec<SkippedDelete>,
    /// Writes that failed or were not attempted, with reasons.
    pub failed: Vec<WriteOutcome>,
    /// Seeds ASM refused (400 with a code), extraction warnings, unreadable scopes.
    pub warnings: Vec<String>,
    pub incomplete_scopes: Vec<IncompleteScope>,
    /// With `azure.tenants`: each tenant, its subscriptions and whether it was read completely.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<crate::adapters::azure::TenantScopes>,
    /// Every write attempted, in order of completion.
    pub writes: Vec<WriteOutcome>,
    /// For the ledger rebuild: the estate's contributions and warnings.
    #[serde(skip)]
    pub extraction: Extraction,
    /// For the ledger rebuild: the seeds ASM listed before the writes.
    #[serde(skip)]
    pub listed: Vec<AsmSeed>,
    /// When the listing was requested (Unix milliseconds): ledger state recorded later is
    /// newer than the listing and the rebuild leaves it alone.
    #[serde(skip)]
    pub listed_at_ms: i64,
    /// For the ledger rebuild: which scopes the sweep read completely.
    #[serde(skip)]
    pub completeness: CompletenessReport,
}

impl SyncReport {
    /// Whether every planned write was applied (rejections are warnings, not failures).
    pub fn all_applied(&self) -> bool {
        self.failed.is_empty()
    }

    /// Every seed ASM holds after this run, as far as the run knows: the listing, then each
    /// write's outcome in order. One pass: the rebuild asks about every seed of the estate.
    pub fn asm_held(&self) -> std::collections::HashSet<Seed> {
        self.held_after_writes(self.listed.iter().filter_map(|s| s.normalised()).collect())
    }

    /// `listed` (the listing, normalised) as each write's outcome leaves it.
    pub(crate) fn held_after_writes(
        &self,
        mut held: std::collections::HashSet<Seed>,
    ) -> std::collections::HashSet<Seed> {
        for write in &self.writes {
            let Some(seed) = &write.normalised else { continue };
            match (&write.action, &write.result) {
                (WriteKind::Add, WriteResult::Added | WriteResult::AlreadyExists) => {
                    held.insert(seed.clone());
                }
                (WriteKind::Delete, WriteResult::Deleted | WriteResult::AlreadyGone) => {
                    held.remove(seed);
                }
                _ => {}
            }
        }
        held
    }
}

impl SyncReport {
    /// Sorts each write's outcome into added, deleted, failed and warnings.
    pub(super) fn tally_writes(&mut self) {
        for write in &self.writes {
            match &write.result {
                WriteResult::Added => self.added.push(write.seed.clone()),
                WriteResult::AlreadyExists => {
                    self.added.push(write.seed.clone());
                    self.warnings.push(format!(
                        "{} was already in ASM (added by an earlier attempt?)",
                        write.seed.name
                    ));
                }
                WriteResult::Deleted | WriteResult::AlreadyGone => self.deleted.push(write.seed.clone()),
                WriteResult::Rejected { code, message } => self
                    .warnings
                    .push(format!("ASM refused {} ({code}): {message}", write.seed.name)),
                WriteResult::Failed { .. } | WriteResult::NotAttempted { .. } => self.failed.push(write.clone()),
            }
        }
        self.added.sort();
        self.deleted.sort();
    }
}
