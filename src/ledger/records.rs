//! The three record kinds and their stored (JSON) form.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::check::ServiceCheck;
use crate::domain::resource::ResourceId;
use crate::domain::seed::{Seed, SeedKind};

/// A seed as stored: name and kind, normalised again on the way in.
#[derive(Serialize, Deserialize)]
struct SeedWire {
    name: String,
    kind: SeedKind,
}

mod seed_serde {
    use super::*;

    pub(super) fn serialize<S: serde::Serializer>(seed: &Seed, s: S) -> Result<S::Ok, S::Error> {
        SeedWire {
            name: seed.name().to_string(),
            kind: seed.kind(),
        }
        .serialize(s)
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Seed, D::Error> {
        let wire = SeedWire::deserialize(d)?;
        Seed::from_stored(&wire.name, wire.kind).map_err(serde::de::Error::custom)
    }
}

/// One seed an owner contributes, under one service check.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OwnedSeed {
    #[serde(with = "seed_serde")]
    pub seed: Seed,
    pub check: ServiceCheck,
}

/// What the ledger knows of one owner resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnerRecord {
    pub id: ResourceId,
    /// Grows by one with every committed read of the owner; seed memberships carry it, so a
    /// slow applier holding an older read can never overwrite a newer one.
    pub generation: u64,
    /// The seeds of the last committed read, sorted.
    pub seeds: Vec<OwnedSeed>,
    /// Seeds this owner may still be listed on as present although it no longer contributes
    /// them: set when a read is committed, cleared once every seed record was updated.
    #[serde(default)]
    pub pending_removal: Vec<PendingSeed>,
    /// [`seeds_hash`] of `seeds`: what the owner last looked like, cheaply comparable.
    pub seeds_hash: String,
    /// When the owner was last read (Unix milliseconds).
    pub seen_at_ms: i64,
    /// The resource is gone; the record stays as a tombstone so generations keep growing.
    #[serde(default)]
    pub deleted: bool,
    /// Every seed record and ASM agree with this read: a repeated event with the same seeds
    /// needs no work.
    #[serde(default)]
    pub settled: bool,
}

/// A seed waiting for this owner's membership to be withdrawn.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PendingSeed {
    #[serde(with = "seed_serde")]
    pub seed: Seed,
}

impl OwnerRecord {
    pub(crate) fn subscription(&self) -> &str {
        self.id.subscription_id()
    }

    /// The distinct seeds of the last read.
    pub(crate) fn seed_set(&self) -> std::collections::BTreeSet<Seed> {
        self.seeds.iter().map(|s| s.seed.clone()).collect()
    }
}

/// A stable digest of a seed set (sorted `kind:name:check` lines).
pub fn seeds_hash(seeds: &[OwnedSeed]) -> String {
    let mut lines: Vec<String> = seeds
        .iter()
        .map(|s| format!("{}:{}:{}", s.seed.kind(), s.seed.name(), s.check.toggle()))
        .collect();
    lines.sort();
    lines.dedup();
    let digest = Sha256::digest(lines.join("\n").as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// One owner's membership on a seed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub owner: ResourceId,
    /// The owner generation that wrote this membership; older writes are ignored.
    pub generation: u64,
    /// `false` is a tombstone: the owner stopped contributing at `generation`.
    pub present: bool,
    /// The service checks under which the owner contributes the seed.
    #[serde(default)]
    pub checks: Vec<ServiceCheck>,
    /// When it was written (Unix milliseconds): tombstones expire.
    pub at_ms: i64,
}

/// What ASM holds, as far as the ledger knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsmState {
    pub held: bool,
    /// ASM's seed id, when a listing told us.
    #[serde(default)]
    pub id: Option<String>,
    /// Carries `seed_tag` (we added it, or a listing showed the tag): only such seeds are
    /// ever deleted.
    #[serde(default)]
    pub ours: bool,
    /// ASM refused to add the seed (a 400 with this code): not retried until the next reconcile.
    #[serde(default)]
    pub rejected: Option<String>,
    /// When this state was recorded (Unix milliseconds; 0 when unknown): a rebuild does not
    /// override a state recorded after the ASM listing it works from.
    #[serde(default)]
    pub at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentAction {
    Add,
    Delete,
}

/// An ASM write that may be in flight: recorded before the call, cleared after. While fresh it
/// is a lease: other appliers leave the seed's ASM state to its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub action: IntentAction,
    /// Which apply attempt holds it.
    pub token: String,
    pub at_ms: i64,
}

/// What the ledger knows of one seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedRecord {
    #[serde(with = "seed_serde")]
    pub seed: Seed,
    /// Keyed by the owner's lower-cased id.
    #[serde(default)]
    pub owners: BTreeMap<String, Membership>,
    #[serde(default)]
    pub asm: AsmState,
    #[serde(default)]
    pub intent: Option<Intent>,
}

impl SeedRecord {
    pub fn new(seed: Seed) -> SeedRecord {
        SeedRecord {
            seed,
            owners: BTreeMap::new(),
            asm: AsmState::default(),
            intent: None,
        }
    }

    /// Whether any owner contributes the seed: it belongs in ASM.
    pub fn is_wanted(&self) -> bool {
        self.owners.values().any(|m| m.present)
    }

    /// The owners contributing the seed now.
    pub fn contributors(&self) -> impl Iterator<Item = &Membership> {
        self.owners.values().filter(|m| m.present)
    }

    /// Sets `owner`'s membership as of `generation`; a write older than the stored one is
    /// ignored. Returns whether anything changed.
    pub fn set_membership(
        &mut self,
        owner: &ResourceId,
        generation: u64,
        checks: Option<Vec<ServiceCheck>>,
        now_ms: i64,
    ) -> bool {
        let present = checks.is_some();
        if let Some(existing) = self.owners.get(&*owner.key())
            && (existing.generation > generation
                || (existing.generation == generation
                    && existing.present == present
                    && checks.as_ref().is_none_or(|c| *c == existing.checks)))
        {
            return false;
        }
        // A tombstone keeps the checks the owner contributed under: the reconcile's guard rails
        // ask where a stale seed came from.
        let checks = match checks {
            Some(checks) => checks,
            None => self
                .owners
                .get(&*owner.key())
                .map(|m| m.checks.clone())
                .unwrap_or_default(),
        };
        self.owners.insert(
            owner.key().to_string(),
            Membership {
                owner: owner.clone(),
                generation,
                present,
                checks,
                at_ms: now_ms,
            },
        );
        true
    }

    /// Drops tombstones written before `cutoff_ms` (no applier holds a read that old).
    pub(crate) fn prune_tombstones(&mut self, cutoff_ms: i64) -> bool {
        let before = self.owners.len();
        self.owners.retain(|_, m| m.present || m.at_ms >= cutoff_ms);
        before != self.owners.len()
    }

    /// Whether the record carries nothing worth keeping.
    pub(crate) fn is_empty(&self) -> bool {
        self.owners.is_empty() && !self.asm.held && self.intent.is_none()
    }
}

/// What a failed change asked for. The ledger's own copy of the handler's change kind, so the
/// ledger does not depend on the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailedChangeKind {
    /// Re-read the resource.
    Changed,
    /// The resource is gone.
    Deleted,
}

impl FailedChangeKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FailedChangeKind::Changed => "changed",
            FailedChangeKind::Deleted => "deleted",
        }
    }
}

/// A resource change the handler gave up on (its last retry failed, or it failed permanently).
/// Kept until a reconcile that read the resource's subscription completely has covered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedChange {
    pub id: ResourceId,
    pub change: FailedChangeKind,
    /// Why the last attempt failed (already free of secrets: it is the logged error).
    pub cause: String,
    /// Attempts made, the first one included.
    pub attempts: u32,
    /// When the handler gave up (Unix milliseconds).
    pub failed_at_ms: i64,
}

impl FailedChange {
    /// Causes longer than this are cut: a record must stay well inside Table Storage's 64 KiB
    /// property limit, and the first line or two say what went wrong.
    pub(crate) const MAX_CAUSE_CHARS: usize = 2000;

    pub fn new(
        id: ResourceId,
        change: FailedChangeKind,
        cause: &str,
        attempts: u32,
        failed_at_ms: i64,
    ) -> FailedChange {
        let cause = match cause.char_indices().nth(Self::MAX_CAUSE_CHARS) {
            Some((cut, _)) => format!("{}…", &cause[..cut]),
            None => cause.to_string(),
        };
        FailedChange {
            id,
            change,
            cause,
            attempts,
            failed_at_ms,
        }
    }

    pub(crate) fn subscription(&self) -> &str {
        self.id.subscription_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> ResourceId {
        ResourceId::parse("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/p").unwrap()
    }

    #[test]
    fn older_generations_never_win() {
        let mut r = SeedRecord::new(Seed::from_host_value("a.example.com").unwrap());
        assert!(r.set_membership(&owner(), 5, Some(vec![ServiceCheck::PublicIpAddresses]), 1));
        assert!(!r.set_membership(&owner(), 4, None, 2));
        assert!(r.is_wanted());
        assert!(r.set_membership(&owner(), 6, None, 3));
        assert!(!r.is_wanted());
        assert!(!r.set_membership(&owner(), 5, Some(vec![ServiceCheck::PublicIpAddresses]), 4));
        assert!(!r.is_wanted());
        assert!(!r.prune_tombstones(3));
        assert!(r.prune_tombstones(4));
        assert!(r.is_empty());
    }

    #[test]
    fn records_round_trip_and_bad_seeds_are_errors() {
        let mut r = SeedRecord::new(Seed::from_range("20.1.0.0/24").unwrap());
        r.set_membership(&owner(), 1, Some(vec![ServiceCheck::PublicIpAddresses]), 1);
        let text = serde_json::to_string(&r).unwrap();
        let back: SeedRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        let bad = text.replace("20.1.0.0/24", "10.0.0.0/8");
        assert!(serde_json::from_str::<SeedRecord>(&bad).is_err());
    }

    #[test]
    fn hash_ignores_order() {
        let a = OwnedSeed {
            seed: Seed::from_host_value("a.example.com").unwrap(),
            check: ServiceCheck::DnsRecords,
        };
        let b = OwnedSeed {
            seed: Seed::from_host_value("b.example.com").unwrap(),
            check: ServiceCheck::DnsRecords,
        };
        assert_eq!(seeds_hash(&[a.clone(), b.clone()]), seeds_hash(&[b.clone(), a.clone()]));
        assert_ne!(seeds_hash(&[a]), seeds_hash(&[b]));
    }

    #[test]
    fn failed_changes_round_trip_and_long_causes_are_cut() {
        let long = "x".repeat(FailedChange::MAX_CAUSE_CHARS + 10);
        let failed = FailedChange::new(owner(), FailedChangeKind::Deleted, &long, 4, 17);
        assert_eq!(failed.cause.chars().count(), FailedChange::MAX_CAUSE_CHARS + 1);
        let text = serde_json::to_string(&failed).unwrap();
        assert!(text.contains("\"change\":\"deleted\""), "{text}");
        let back: FailedChange = serde_json::from_str(&text).unwrap();
        assert_eq!(back, failed);
        let short = FailedChange::new(owner(), FailedChangeKind::Changed, "ASM answered 503", 1, 1);
        assert_eq!(short.cause, "ASM answered 503");
        assert_eq!(short.subscription(), "s");
    }
}
