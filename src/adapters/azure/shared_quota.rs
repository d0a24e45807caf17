//! Resource Graph's per-user quota as one ledger entity every instance shares (Table Storage in
//! production): the current window's start and the queries counted in it, updated under its
//! ETag. An instance counts a query before sending it and waits for the next window when the
//! current one is full; a quota header saying none remain fills the window until its reset.
//! A ledger that does not answer opens the gate (the process's own pacing and the headers still
//! apply): the quota is a courtesy to avoid 429s, which the client retries anyway.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::adapters::azure::quota::{GRAPH_QUERIES_PER_WINDOW, GRAPH_WINDOW, GraphQuotaGate};
use crate::ledger::history::HISTORY_PARTITION;
use crate::ledger::{Expect, Ledger, LedgerError};

const QUOTA_ROW: &str = "graph-quota";
/// Conditional updates tried before the gate opens (instances updating at the same moment).
const ATTEMPTS: usize = 64;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Window {
    start_ms: i64,
    used: u32,
}

/// The shared quota over a ledger; `now_ms` is the clock (instances' clocks are NTP-synced;
/// a skew of a few hundred milliseconds shifts a window, the headers catch the rest).
pub(crate) struct LedgerGraphQuota {
    ledger: Arc<dyn Ledger>,
    per_window: u32,
    window: Duration,
    now_ms: fn() -> i64,
}

impl LedgerGraphQuota {
    pub(crate) fn new(ledger: Arc<dyn Ledger>) -> LedgerGraphQuota {
        LedgerGraphQuota {
            ledger,
            per_window: GRAPH_QUERIES_PER_WINDOW,
            window: GRAPH_WINDOW,
            now_ms: crate::domain::clock::now_ms,
        }
    }

    async fn read(&self) -> Result<(Window, Option<crate::ledger::Version>), LedgerError> {
        Ok(match self.ledger.get_raw(HISTORY_PARTITION, QUOTA_ROW).await? {
            Some((data, version)) => (serde_json::from_str(&data).unwrap_or_default(), Some(version)),
            None => (Window::default(), None),
        })
    }

    async fn write(&self, window: Window, version: Option<crate::ledger::Version>) -> Result<(), LedgerError> {
        let data = serde_json::to_string(&window).map_err(|e| LedgerError::Corrupt {
            key: QUOTA_ROW.into(),
            message: e.to_string(),
        })?;
        let expect = version.map_or(Expect::Absent, Expect::Version);
        self.ledger
            .put_raw(HISTORY_PARTITION, QUOTA_ROW, &data, &expect)
            .await
            .map(|_| ())
    }

    /// One attempt: `Ok(None)` when the query was counted, `Ok(Some(wait))` when the window
    /// is full.
    async fn try_acquire(&self) -> Result<Option<Duration>, LedgerError> {
        let window_ms = self.window.as_millis() as i64;
        let (mut window, version) = self.read().await?;
        let now = (self.now_ms)();
        if now >= window.start_ms + window_ms {
            window = Window { start_ms: now, used: 0 };
        }
        if window.used >= self.per_window {
            let wait = (window.start_ms + window_ms - now).clamp(1, window_ms);
            return Ok(Some(Duration::from_millis(wait as u64)));
        }
        window.used += 1;
        self.write(window, version).await.map(|()| None)
    }
}

#[async_trait]
impl GraphQuotaGate for LedgerGraphQuota {
    async fn acquire(&self) {
        for _ in 0..ATTEMPTS {
            match self.try_acquire().await {
                Ok(None) => return,
                Ok(Some(wait)) => tokio::time::sleep(wait).await,
                Err(LedgerError::Conflict { .. }) => tokio::task::yield_now().await,
                Err(e) => {
                    tracing::warn!(error = %e, "the shared Resource Graph quota is unavailable; pacing locally");
                    return;
                }
            }
        }
    }

    async fn observe(&self, remaining: u64, resets_after: Duration) {
        if remaining > 0 {
            return;
        }
        // None remain: the window is full until the reset, whoever used it.
        let Ok((_, version)) = self.read().await else {
            return;
        };
        let window = Window {
            start_ms: (self.now_ms)() + resets_after.as_millis() as i64 - self.window.as_millis() as i64,
            used: self.per_window,
        };
        let _ = self.write(window, version).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::memory::MemoryLedger;
    use std::sync::atomic::{AtomicI64, Ordering};

    static CLOCK: AtomicI64 = AtomicI64::new(1_000_000);
    fn clock() -> i64 {
        CLOCK.load(Ordering::SeqCst)
    }

    #[tokio::test(start_paused = true)]
    async fn instances_share_fifteen_queries_per_window() {
        let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::new());
        let gate = |ledger: &Arc<dyn Ledger>| LedgerGraphQuota {
            now_ms: clock,
            ..LedgerGraphQuota::new(ledger.clone())
        };
        // Two instances over one ledger: 15 queries between them fit in the window.
        let (a, b) = (gate(&ledger), gate(&ledger));
        for n in 0..15 {
            let one = if n % 2 == 0 { &a } else { &b };
            assert_eq!(one.try_acquire().await.unwrap(), None, "query {n}");
        }
        assert_eq!(a.try_acquire().await.unwrap(), Some(Duration::from_secs(5)));
        CLOCK.fetch_add(2_000, Ordering::SeqCst);
        assert_eq!(b.try_acquire().await.unwrap(), Some(Duration::from_secs(3)));
        CLOCK.fetch_add(3_000, Ordering::SeqCst);
        assert_eq!(b.try_acquire().await.unwrap(), None, "a new window");
        // A header saying none remain fills the window until its reset.
        a.observe(0, Duration::from_secs(4)).await;
        assert_eq!(b.try_acquire().await.unwrap(), Some(Duration::from_secs(4)));
    }
}
