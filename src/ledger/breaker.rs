//! The incremental path's deletion breaker, shared by every instance through the ledger.
//!
//! A full reconcile refuses to delete more than `sync.max_delete_fraction` of the tagged seeds
//! in one run. Events and `seedwatch apply` delete one seed at a time, so the same limit holds
//! over a rolling hour: every ASM delete an apply is about to send first reserves a slot in one
//! ledger entity (compare-and-swap, so instances sharing Table Storage share the count). Past
//! the limit the delete is not sent; the seed stays, and the next reconcile decides about it
//! under its own guard rails.

use serde::{Deserialize, Serialize};

use crate::ledger::{Expect, Ledger, LedgerError, keys};

/// The window the breaker counts deletes over.
pub(crate) const WINDOW_MS: i64 = 3_600_000;

/// The stored state: deletes sent by applies in the last hour, and the base of the fraction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct DeleteWindow {
    /// When each ASM delete of the last [`WINDOW_MS`] was reserved (Unix milliseconds).
    #[serde(default)]
    pub deletes_ms: Vec<i64>,
    /// Tagged seeds in ASM at the last full reconcile's listing (the fraction's base).
    #[serde(default)]
    pub tagged: Option<usize>,
}

/// The breaker's answer to one delete.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Admission {
    Granted,
    /// The delete would exceed the limit: `recent` deletes in the window already.
    Refused {
        recent: usize,
        tagged: usize,
        max_fraction: f64,
    },
}

impl Admission {
    /// The reason reported for a seed kept by the breaker.
    pub(crate) fn reason(&self) -> Option<String> {
        match self {
            Admission::Granted => None,
            Admission::Refused {
                recent,
                tagged,
                max_fraction,
            } => Some(format!(
                "deletion breaker: {recent} seed(s) deleted by events in the last hour, of {tagged} tagged; \
                 one more would exceed sync.max_delete_fraction = {max_fraction}; the next reconcile decides"
            )),
        }
    }
}

async fn read(ledger: &dyn Ledger) -> Result<(DeleteWindow, Expect), LedgerError> {
    let (partition, row) = keys::breaker_key();
    Ok(match ledger.get_raw(&partition, &row).await? {
        Some((data, version)) => {
            // An unreadable window starts afresh (it only ever holds back deletes).
            let window = serde_json::from_str(&data).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "deletion breaker state unreadable; starting a new window");
                DeleteWindow::default()
            });
            (window, Expect::Version(version))
        }
        None => (DeleteWindow::default(), Expect::Absent),
    })
}

async fn write(ledger: &dyn Ledger, window: &DeleteWindow, expect: &Expect) -> Result<(), LedgerError> {
    let (partition, row) = keys::breaker_key();
    let data = serde_json::to_string(window).map_err(|e| LedgerError::Corrupt {
        key: row.clone(),
        message: e.to_string(),
    })?;
    ledger.put_raw(&partition, &row, &data, expect).await.map(|_| ())
}

/// Tagged seeds the ledger believes ASM holds: the base when no reconcile recorded one yet.
async fn tagged_in_ledger(ledger: &dyn Ledger) -> Result<usize, LedgerError> {
    let (seeds, _) = ledger.all_seeds_readable().await?;
    Ok(seeds.iter().filter(|s| s.value.asm.held && s.value.asm.ours).count())
}

/// Reserves one delete at `now_ms`, if fewer than `max_fraction` of the tagged seeds were
/// deleted by applies in the last hour (counting this one). A refusal writes nothing; a
/// fraction of 1 lets every delete through (as in a reconcile, where it allows deleting all).
pub(crate) async fn reserve_delete(
    ledger: &dyn Ledger,
    now_ms: i64,
    max_fraction: f64,
    max_conflicts: u32,
) -> Result<Admission, LedgerError> {
    if max_fraction >= 1.0 {
        // All of the tagged seeds may go, as in a reconcile: nothing to count.
        return Ok(Admission::Granted);
    }
    for _ in 0..max_conflicts {
        let (mut window, expect) = read(ledger).await?;
        window.deletes_ms.retain(|at| now_ms - at < WINDOW_MS);
        let tagged = match window.tagged {
            Some(n) => n,
            None => tagged_in_ledger(ledger).await?,
        };
        let recent = window.deletes_ms.len();
        if (recent + 1) as f64 > max_fraction * tagged as f64 {
            return Ok(Admission::Refused {
                recent,
                tagged,
                max_fraction,
            });
        }
        window.deletes_ms.push(now_ms);
        match write(ledger, &window, &expect).await {
            Ok(()) => return Ok(Admission::Granted),
            Err(LedgerError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(LedgerError::Conflict {
        key: "deletion breaker".into(),
    })
}

/// Records the tagged seeds a full reconcile listed: the base of the fraction from now on.
pub(crate) async fn record_tagged(ledger: &dyn Ledger, tagged: usize, max_conflicts: u32) -> Result<(), LedgerError> {
    for _ in 0..max_conflicts {
        let (mut window, expect) = read(ledger).await?;
        if window.tagged == Some(tagged) {
            return Ok(());
        }
        window.tagged = Some(tagged);
        match write(ledger, &window, &expect).await {
            Ok(()) => return Ok(()),
            Err(LedgerError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(LedgerError::Conflict {
        key: "deletion breaker".into(),
    })
}
