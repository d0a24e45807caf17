//! The provenance ledger: which owner resource contributes which seed, and what ASM holds.
//!
//! Three record kinds, each versioned for optimistic concurrency (an ETag in Table Storage, a
//! counter in the local store):
//! - an [`OwnerRecord`] per owner resource: the seeds it contributed when last read, a
//!   generation that grows with every committed read, and the seeds it may still be listed on;
//! - a [`SeedRecord`] per seed: every owner's membership (present or a tombstone, stamped with
//!   the owner generation that wrote it), whether ASM holds the seed, and any pending intent;
//! - a [`FailedChange`] per resource whose change the handler gave up on: written by the
//!   handler after the last retry, read and cleared by the next reconcile that covers it
//!   ([`failures`]).
//!
//! Backends only store opaque entities under (partition, row) keys ([`Ledger`]'s required
//! methods); the typed layer, the key encoding and the record formats live here so every backend
//! behaves the same. The backends are adapters ([`crate::adapters::store`]): Azure Table Storage
//! REST, a local redb file, and memory for tests and benchmarks.
//!
//! The ledger calls neither ARM nor ASM: it is records and rules over a store.

pub(crate) mod breaker;
pub(crate) mod failures;
pub(crate) mod fanout;
pub mod history;
pub mod keys;
pub(crate) mod lag;
pub mod memory;
pub mod ops;
mod records;
pub(crate) mod refused;

use async_trait::async_trait;

use crate::domain::resource::ResourceId;
use crate::domain::seed::Seed;

pub use records::{
    AsmState, FailedChange, FailedChangeKind, Intent, IntentAction, Membership, OwnedSeed, OwnerRecord, PendingSeed,
    SeedRecord, seeds_hash,
};

/// An entity version: a Table Storage ETag, or a counter in the local stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(pub String);

/// The condition a write is made under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// The entity must not exist yet (Table Storage insert).
    Absent,
    /// The entity must still be at this version (`If-Match`).
    Version(Version),
    /// Unconditional (insert-or-replace): only for the full rebuild and failed changes (the
    /// latest failure of a resource replaces the one before).
    Any,
}

/// A record with the version it was read at.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub value: T,
    pub version: Version,
}

/// A stored entity, as backends hand it back from a scan.
#[derive(Debug, Clone)]
pub struct RawEntity {
    pub partition: String,
    pub row: String,
    pub data: String,
    pub version: Version,
}

/// Which partitions a scan reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Partitions {
    Exact(String),
    /// Every partition whose key starts with this.
    Prefix(String),
}

/// A scan: some partitions, optionally only rows in `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub partitions: Partitions,
    pub rows: Option<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The entity changed (or appeared, or vanished) since it was read: re-read and retry.
    #[error("ledger entity {key} changed concurrently")]
    Conflict { key: String },
    #[error("ledger ({backend}) answered {status} {code}: {message}")]
    Http {
        backend: String,
        status: u16,
        code: String,
        message: String,
        /// Whether the store's HTTP policy counts the status as retryable (408, 429, 5xx).
        transient: bool,
    },
    #[error("cannot reach the ledger ({backend}): {message}")]
    Transport { backend: String, message: String },
    #[error("ledger record {key} is unreadable: {message}")]
    Corrupt { key: String, message: String },
    #[error("local ledger {path}: {message}")]
    Local { path: String, message: String },
    #[error("ledger configuration: {0}")]
    Config(String),
    #[error("ledger credential: {0}")]
    Credential(String),
}

impl LedgerError {
    /// Whether a later attempt may succeed.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            LedgerError::Conflict { .. } | LedgerError::Transport { .. } => true,
            LedgerError::Http { transient, .. } => *transient,
            LedgerError::Credential(_) => true,
            _ => false,
        }
    }
}

/// The ledger. Backends implement the raw entity methods; the typed methods are shared.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Where the ledger lives, for logs (no secrets).
    fn describe(&self) -> String;

    async fn get_raw(&self, partition: &str, row: &str) -> Result<Option<(String, Version)>, LedgerError>;
    /// Writes `data` under the condition; a failed condition is [`LedgerError::Conflict`].
    async fn put_raw(&self, partition: &str, row: &str, data: &str, expect: &Expect) -> Result<Version, LedgerError>;
    /// Deletes at `version` (`None`: unconditionally). A missing entity is not an error.
    async fn delete_raw(&self, partition: &str, row: &str, version: Option<&Version>) -> Result<(), LedgerError>;
    /// Every entity the scan selects, all pages.
    async fn scan_raw(&self, scan: &Scan) -> Result<Vec<RawEntity>, LedgerError>;

    async fn owner(&self, id: &ResourceId) -> Result<Option<Versioned<OwnerRecord>>, LedgerError> {
        let (partition, row) = keys::owner_key(id);
        read_typed(self.get_raw(&partition, &row).await?, &row)
    }

    async fn put_owner(&self, record: &OwnerRecord, expect: &Expect) -> Result<Version, LedgerError> {
        let (partition, row) = keys::owner_key(&record.id);
        self.put_raw(&partition, &row, &encode(record)?, expect).await
    }

    async fn delete_owner(&self, id: &ResourceId, version: Option<&Version>) -> Result<(), LedgerError> {
        let (partition, row) = keys::owner_key(id);
        self.delete_raw(&partition, &row, version).await
    }

    /// The owner records of `prefix` and of every resource below it.
    async fn owners_within(&self, prefix: &ResourceId) -> Result<Vec<Versioned<OwnerRecord>>, LedgerError> {
        let scan = keys::owners_within_scan(prefix);
        let mut out: Vec<Versioned<OwnerRecord>> = decode_all(self.scan_raw(&scan).await?)?;
        // Long ids are keyed by a truncated prefix plus a hash, so the range can over-select.
        out.retain(|o| o.value.id.is_within(prefix));
        Ok(out)
    }

    /// Every owner record that still decodes; each one that does not is skipped with a
    /// warning (the next rebuild removes it: see [`Ledger::all_owners_readable`]).
    async fn all_owners(&self) -> Result<Vec<Versioned<OwnerRecord>>, LedgerError> {
        Ok(warn_unreadable(self.all_owners_readable().await?))
    }

    /// Every owner record, split into those that decode and those that no longer do.
    async fn all_owners_readable(&self) -> Result<Readable<OwnerRecord>, LedgerError> {
        Ok(decode_lenient(self.scan_raw(&keys::all_owners_scan()).await?))
    }

    /// The owner records of some subscriptions (one partition each), split as
    /// [`Ledger::all_owners_readable`] splits them.
    async fn owners_readable_in(&self, subscriptions: &[String]) -> Result<Readable<OwnerRecord>, LedgerError> {
        let mut raw = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        for subscription in subscriptions {
            let lower = subscription.to_ascii_lowercase();
            if !seen.contains(&lower) {
                raw.extend(self.scan_raw(&keys::owners_scan(&lower)).await?);
                seen.push(lower);
            }
        }
        Ok(decode_lenient(raw))
    }

    async fn seed(&self, seed: &Seed) -> Result<Option<Versioned<SeedRecord>>, LedgerError> {
        let (partition, row) = keys::seed_key(seed);
        read_typed(self.get_raw(&partition, &row).await?, &row)
    }

    async fn put_seed(&self, record: &SeedRecord, expect: &Expect) -> Result<Version, LedgerError> {
        let (partition, row) = keys::seed_key(&record.seed);
        self.put_raw(&partition, &row, &encode(record)?, expect).await
    }

    async fn delete_seed(&self, seed: &Seed, version: Option<&Version>) -> Result<(), LedgerError> {
        let (partition, row) = keys::seed_key(seed);
        self.delete_raw(&partition, &row, version).await
    }

    /// Every seed record that still decodes and normalises; each one that does not (a name
    /// that became a shared parent, an IDNA upgrade) is skipped with a warning.
    async fn all_seeds(&self) -> Result<Vec<Versioned<SeedRecord>>, LedgerError> {
        Ok(warn_unreadable(self.all_seeds_readable().await?))
    }

    /// Every seed record, split into those that decode and those that no longer do.
    async fn all_seeds_readable(&self) -> Result<Readable<SeedRecord>, LedgerError> {
        Ok(decode_lenient(self.scan_raw(&keys::all_seeds_scan()).await?))
    }

    /// Records a change the handler gave up on, replacing any earlier one for the resource.
    async fn put_failure(&self, record: &FailedChange) -> Result<Version, LedgerError> {
        let (partition, row) = keys::failure_key(&record.id);
        self.put_raw(&partition, &row, &encode(record)?, &Expect::Any).await
    }

    /// Every recorded failed change.
    async fn failures(&self) -> Result<Vec<Versioned<FailedChange>>, LedgerError> {
        decode_all(self.scan_raw(&keys::all_failures_scan()).await?)
    }

    /// Clears a failed change at `version` (`None`: unconditionally). A failure recorded again
    /// since it was read has a new version: the delete is then a [`LedgerError::Conflict`].
    async fn delete_failure(&self, id: &ResourceId, version: Option<&Version>) -> Result<(), LedgerError> {
        let (partition, row) = keys::failure_key(id);
        self.delete_raw(&partition, &row, version).await
    }
}

/// A stored record that no longer decodes (or whose seed no longer normalises).
#[derive(Debug, Clone)]
pub struct Unreadable {
    pub partition: String,
    pub row: String,
    pub version: Version,
    pub message: String,
}

/// The records of a scan that decode, and those that do not.
pub(crate) type Readable<T> = (Vec<Versioned<T>>, Vec<Unreadable>);

/// The owner records of `subscriptions` (one partition each), or of every subscription.
pub(crate) async fn owners_readable(
    ledger: &dyn Ledger,
    subscriptions: Option<&[String]>,
) -> Result<Readable<OwnerRecord>, LedgerError> {
    match subscriptions {
        Some(subscriptions) => ledger.owners_readable_in(subscriptions).await,
        None => ledger.all_owners_readable().await,
    }
}

fn decode_lenient<T: serde::de::DeserializeOwned>(raw: Vec<RawEntity>) -> Readable<T> {
    let mut good = Vec::with_capacity(raw.len());
    let mut bad = Vec::new();
    for e in raw {
        match decode(&e.data, &e.row) {
            Ok(value) => good.push(Versioned {
                value,
                version: e.version,
            }),
            Err(error) => bad.push(Unreadable {
                partition: e.partition,
                row: e.row,
                version: e.version,
                message: error.to_string(),
            }),
        }
    }
    (good, bad)
}

fn warn_unreadable<T>((good, bad): Readable<T>) -> Vec<Versioned<T>> {
    for record in &bad {
        tracing::warn!(
            partition = %record.partition,
            row = %record.row,
            "{}; skipped (the next full reconcile removes it)",
            record.message
        );
    }
    good
}

fn encode<T: serde::Serialize>(record: &T) -> Result<String, LedgerError> {
    serde_json::to_string(record).map_err(|e| LedgerError::Corrupt {
        key: "(new record)".into(),
        message: e.to_string(),
    })
}

fn decode<T: serde::de::DeserializeOwned>(data: &str, key: &str) -> Result<T, LedgerError> {
    let de = &mut serde_json::Deserializer::from_str(data);
    serde_path_to_error::deserialize(de).map_err(|e| LedgerError::Corrupt {
        key: key.to_string(),
        message: e.to_string(),
    })
}

fn read_typed<T: serde::de::DeserializeOwned>(
    raw: Option<(String, Version)>,
    key: &str,
) -> Result<Option<Versioned<T>>, LedgerError> {
    raw.map(|(data, version)| {
        Ok(Versioned {
            value: decode(&data, key)?,
            version,
        })
    })
    .transpose()
}

fn decode_all<T: serde::de::DeserializeOwned>(raw: Vec<RawEntity>) -> Result<Vec<Versioned<T>>, LedgerError> {
    raw.into_iter()
        .map(|e| {
            Ok(Versioned {
                value: decode(&e.data, &e.row)?,
                version: e.version,
            })
        })
        .collect()
}
