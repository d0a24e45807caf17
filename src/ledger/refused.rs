//! Seeds ASM refused (a 400 with a code: a type the plan does not include, a value it does not
//! accept, the plan's seed limit). A refusal is remembered for [`RETRY_AFTER`], so reconciles
//! and events do not send the same seed again and again; after that the next add tries once
//! more (the plan may have changed), and a new refusal starts a new day.
//!
//! Records live in partition [`PARTITION`], one per seed, keyed like seed records.
//! [`crate::engine::refused`] puts them in front of ASM.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::seed::{Seed, SeedKind};
use crate::ledger::{Expect, Ledger, LedgerError, keys};

/// Partition of the refused-seed records.
pub(crate) const PARTITION: &str = "r";
/// How long a refusal holds before the seed is sent again.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// One refusal, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RefusedSeed {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: SeedKind,
    /// ASM's error code and (scrubbed, short) message.
    pub code: String,
    pub message: String,
    pub refused_at_ms: i64,
}

impl RefusedSeed {
    /// Whether the refusal still holds at `now_ms`.
    pub(crate) fn holds_at(&self, now_ms: i64) -> bool {
        now_ms.saturating_sub(self.refused_at_ms) < RETRY_AFTER.as_millis() as i64
    }

    /// The message given instead of sending the seed again.
    pub(crate) fn answer_message(&self) -> String {
        format!(
            "{} (refused at {}; not sent again before {})",
            self.message,
            crate::ledger::failures::format_ms(self.refused_at_ms),
            crate::ledger::failures::format_ms(self.refused_at_ms + RETRY_AFTER.as_millis() as i64)
        )
    }
}

fn key(seed: &Seed) -> (String, String) {
    let (_, row) = keys::seed_key(seed);
    (PARTITION.to_string(), row)
}

/// The refusal of `seed` that still holds at `now_ms`, if any.
pub(crate) async fn refused_recently(
    ledger: &dyn Ledger,
    seed: &Seed,
    now_ms: i64,
) -> Result<Option<RefusedSeed>, LedgerError> {
    let (partition, row) = key(seed);
    let Some((data, _)) = ledger.get_raw(&partition, &row).await? else {
        return Ok(None);
    };
    let record: RefusedSeed = serde_json::from_str(&data).map_err(|e| LedgerError::Corrupt {
        key: row.clone(),
        message: e.to_string(),
    })?;
    Ok(Some(record).filter(|r| r.holds_at(now_ms)))
}

/// Records a refusal (replacing an earlier one of the seed).
pub(crate) async fn remember(ledger: &dyn Ledger, record: &RefusedSeed) -> Result<(), LedgerError> {
    let seed = Seed::from_stored(&record.name, record.kind).map_err(|e| LedgerError::Corrupt {
        key: record.name.clone(),
        message: e.to_string(),
    })?;
    let (partition, row) = key(&seed);
    let data = serde_json::to_string(record).map_err(|e| LedgerError::Corrupt {
        key: row.clone(),
        message: e.to_string(),
    })?;
    ledger.put_raw(&partition, &row, &data, &Expect::Any).await.map(|_| ())
}
