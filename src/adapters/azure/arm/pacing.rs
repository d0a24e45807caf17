//! Pacing that slows down before Azure throttles: ARM's per-subscription read bucket
//! (`x-ms-ratelimit-remaining-subscription-reads`,
//! https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling)
//! and Resource Graph's per-user quota (`x-ms-user-quota-*`,
//! https://learn.microsoft.com/azure/governance/resource-graph/concepts/guidance-for-throttled-requests).

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;

/// Knobs for sweeps and reads; the defaults suit Azure, tests shrink the waits.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Subscriptions per Resource Graph query (Azure's guidance: fewer than 300).
    pub subscriptions_per_query: usize,
    /// Rows per Resource Graph page (`$top`, at most 1000).
    pub page_size: u32,
    /// Resource Graph query chains (batch x table) in flight at once.
    pub concurrent_queries: usize,
    /// ARM reads (children, companions) in flight at once.
    pub concurrent_arm_reads: usize,
    /// How many 429s one request may meet before its scope is reported as throttled out.
    pub max_throttle_retries: u32,
    /// The longest single wait for `Retry-After` or a quota reset.
    pub max_wait: Duration,
    /// Below this many remaining ARM reads in a subscription, pace requests to the refill rate.
    pub arm_reads_reserve: u64,
    /// ARM's read refill rate per subscription (token bucket, 25/s since 2024).
    pub arm_reads_refill_per_second: u64,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            subscriptions_per_query: 200,
            page_size: 1000,
            concurrent_queries: 4,
            concurrent_arm_reads: 32,
            max_throttle_retries: 12,
            max_wait: Duration::from_secs(60),
            arm_reads_reserve: 20,
            arm_reads_refill_per_second: 25,
        }
    }
}

/// `hh:mm:ss` (optionally with fractional seconds, or `d.hh:mm:ss`) as sent in
/// `x-ms-user-quota-resets-after`.
pub fn parse_timespan(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (days, rest) = match text.split_once('.') {
        Some((d, r)) if r.contains(':') && !d.contains(':') => (d.parse::<u64>().ok()?, r),
        _ => (0, text),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let [h, m, s] = parts.as_slice() else {
        return None;
    };
    let hours: u64 = h.parse().ok()?;
    let minutes: u64 = m.parse().ok()?;
    let seconds: f64 = s.parse().ok()?;
    if !seconds.is_finite() || seconds < 0.0 || minutes >= 60 || seconds >= 60.0 {
        return None;
    }
    let whole = days
        .checked_mul(86_400)?
        .checked_add(hours.checked_mul(3600)?)?
        .checked_add(minutes * 60)?;
    Some(Duration::from_secs(whole) + Duration::from_secs_f64(seconds))
}

/// Counters for reports and benchmarks.
#[derive(Debug, Default)]
pub struct Counters {
    pub graph_pages: AtomicU64,
    pub arm_requests: AtomicU64,
    pub throttled: AtomicU64,
    pub retries: AtomicU64,
}

/// Which pacing bucket a request draws from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// Resource Graph's per-user quota.
    Graph,
    /// ARM reads in one subscription (lower-cased id); tenant-level reads use "".
    Arm(String),
}

/// Shared "not before" instants per bucket: a 429 or a low remaining count in one request
/// slows every request drawing from the same bucket. Resource Graph queries also draw from a
/// local [`GraphBudget`].
#[derive(Debug, Default)]
pub(super) struct Pacer {
    not_before: std::sync::Mutex<HashMap<Bucket, Instant>>,
    graph: std::sync::Mutex<GraphBudget>,
}

/// What this process may still send in Resource Graph's current quota window: the last
/// `x-ms-user-quota-remaining` less the queries sent since that answer, less the queries that
/// were in flight when it came (they may not have been counted yet). Deciding when sending,
/// not when answered, uses the whole window (15 queries, not 15 less the chains in flight)
/// without sending one query past it.
#[derive(Debug, Default)]
struct GraphBudget {
    /// Queries sent and not yet answered.
    in_flight: u64,
    /// Queries that may still be sent, and when the window they belong to resets; `None`
    /// until an answer says (or once the window has reset).
    left: Option<(u64, Instant)>,
    /// The longest `resets-after` seen: about the window's length (5 s on Azure).
    window: Duration,
}

impl Pacer {
    pub(super) async fn wait(&self, bucket: &Bucket) {
        loop {
            let until = self.not_before.lock().map(|m| m.get(bucket).copied()).unwrap_or(None);
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t.into()).await,
                _ => return,
            }
        }
    }

    pub(super) fn hold(&self, bucket: &Bucket, wait: Duration) {
        let until = Instant::now() + wait;
        if let Ok(mut map) = self.not_before.lock() {
            let entry = map.entry(bucket.clone()).or_insert(until);
            if *entry < until {
                *entry = until;
            }
        }
    }
}

impl Pacer {
    /// Slows down before the quota runs out: Resource Graph's `x-ms-user-quota-remaining` and
    /// `resets-after` set the Graph budget (see [`GraphBudget`]), and ARM's
    /// `x-ms-ratelimit-remaining-subscription-reads` paces to the refill rate near the floor.
    pub(super) fn pace_from_headers(&self, tuning: &Tuning, bucket: &Bucket, headers: &HeaderMap) {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        match bucket {
            Bucket::Graph => {
                let remaining = number("x-ms-user-quota-remaining");
                let reset = quota_reset(headers).map(|r| r.min(tuning.max_wait));
                self.graph_answered(remaining.zip(reset));
            }
            Bucket::Arm(_) => {
                if let Some(remaining) = number("x-ms-ratelimit-remaining-subscription-reads")
                    && remaining < tuning.arm_reads_reserve
                {
                    let missing = tuning.arm_reads_reserve - remaining;
                    let per_second = tuning.arm_reads_refill_per_second.max(1);
                    let wait = Duration::from_millis(missing * 1000 / per_second);
                    self.hold(bucket, wait.min(tuning.max_wait));
                }
            }
        }
    }
}

impl Pacer {
    /// Takes one query from the Resource Graph budget, waiting for the window to reset when
    /// none is left. Every call is matched by one [`Pacer::graph_answered`] (or
    /// [`Pacer::graph_abandoned`] when no answer came).
    pub(super) async fn graph_send(&self) {
        loop {
            let wait_until = {
                let Ok(mut budget) = self.graph.lock() else { return };
                let now = Instant::now();
                match budget.left {
                    Some((0, reset_at)) if reset_at > now => Some(reset_at),
                    Some((left, reset_at)) if reset_at > now => {
                        budget.left = Some((left - 1, reset_at));
                        budget.in_flight += 1;
                        None
                    }
                    _ => {
                        budget.left = None;
                        budget.in_flight += 1;
                        None
                    }
                }
            };
            match wait_until {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => return,
            }
        }
    }

    /// A query was answered; `quota` is the answer's remaining count and reset, when it said.
    pub(super) fn graph_answered(&self, quota: Option<(u64, Duration)>) {
        let Ok(mut budget) = self.graph.lock() else { return };
        budget.in_flight = budget.in_flight.saturating_sub(1);
        let Some((remaining, reset)) = quota else { return };
        let now = Instant::now();
        let left = remaining.saturating_sub(budget.in_flight);
        let reset_at = now + reset;
        budget.window = budget.window.max(reset);
        // Answers may come out of order: within one window the smaller count is the later one.
        // An answer resetting half a window or more after the known reset is from the next
        // window (a query sent just after the server reset, before our rounded-up reset): its
        // count replaces the old one instead of being held to it.
        let next_window = |at: Instant| reset_at >= at + budget.window / 2;
        budget.left = match budget.left {
            Some((known, at)) if at > now && !next_window(at) => Some((known.min(left), at.max(reset_at))),
            _ => Some((left, reset_at)),
        };
    }

    /// A query sent with [`Pacer::graph_send`] got no answer (a transport error).
    pub(super) fn graph_abandoned(&self) {
        if let Ok(mut budget) = self.graph.lock() {
            budget.in_flight = budget.in_flight.saturating_sub(1);
        }
    }
}

pub(super) fn quota_reset(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get("x-ms-user-quota-resets-after")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_timespan)
}

/// The bucket for an ARM URL: its subscription, lower-cased.
pub fn bucket_for(path: &str) -> Bucket {
    let lower = path.to_ascii_lowercase();
    let sub = lower
        .split("/subscriptions/")
        .nth(1)
        .and_then(|rest| rest.split(['/', '?']).next())
        .unwrap_or_default();
    Bucket::Arm(sub.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespans() {
        assert_eq!(parse_timespan("00:00:03"), Some(Duration::from_secs(3)));
        assert_eq!(parse_timespan("01:02:03"), Some(Duration::from_secs(3723)));
        assert_eq!(parse_timespan("00:00:00.250"), Some(Duration::from_millis(250)));
        assert_eq!(parse_timespan("1.00:00:01"), Some(Duration::from_secs(86_401)));
        assert_eq!(parse_timespan("soon"), None);
        assert_eq!(parse_timespan("00:99:00"), None);
        assert_eq!(
            parse_timespan("99999999999999999.00:00:01"),
            None,
            "too long: not a panic"
        );
        assert_eq!(parse_timespan("9999999999999999999:00:01"), None);
    }

    /// The budget's waits use the wall clock (std `Instant`), so these tests use short real
    /// windows rather than paused time.
    #[tokio::test]
    async fn the_graph_budget_counts_queries_in_flight_and_waits_for_the_reset() {
        let pacer = Pacer::default();
        pacer.graph_send().await;
        pacer.graph_send().await;
        // 2 left at the server, and the other query in flight may take one of them.
        pacer.graph_answered(Some((2, Duration::from_millis(300))));
        let started = Instant::now();
        pacer.graph_send().await;
        assert!(started.elapsed() < Duration::from_millis(250), "one unit was left");
        pacer.graph_send().await;
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "none left: waited for the reset"
        );
    }

    #[tokio::test]
    async fn a_late_answer_never_raises_the_budget_and_an_unanswered_query_frees_its_unit() {
        let pacer = Pacer::default();
        for _ in 0..3 {
            pacer.graph_send().await;
        }
        pacer.graph_answered(Some((0, Duration::from_secs(30))));
        // Counted earlier at the server, answered later: it must not give units back.
        pacer.graph_answered(Some((5, Duration::from_secs(30))));
        let left = pacer.graph.lock().unwrap().left.map(|(n, _)| n);
        assert_eq!(left, Some(0));
        pacer.graph_abandoned();
        assert_eq!(pacer.graph.lock().unwrap().in_flight, 0);
    }

    /// A query sent after the server's reset but before ours (the header is rounded up) is
    /// answered from the next window: its count is taken, not held to the old one.
    #[tokio::test]
    async fn an_answer_from_the_next_window_replaces_the_old_count() {
        let pacer = Pacer::default();
        let left = |pacer: &Pacer| pacer.graph.lock().unwrap().left.map(|(n, _)| n);
        // Windows seen to last 5 s; late in the current one, 2 left, resetting in 1 s.
        pacer.graph.lock().unwrap().window = Duration::from_secs(5);
        pacer.graph_send().await;
        pacer.graph_answered(Some((2, Duration::from_secs(1))));
        assert_eq!(left(&pacer), Some(2));
        // The server had reset: this answer opened the next window, resetting 5 s from now.
        pacer.graph_send().await;
        pacer.graph_answered(Some((14, Duration::from_secs(5))));
        assert_eq!(left(&pacer), Some(14));
        // Within that window, answers count down as before.
        pacer.graph_send().await;
        pacer.graph_answered(Some((13, Duration::from_millis(4900))));
        assert_eq!(left(&pacer), Some(13));
    }

    #[tokio::test]
    async fn without_quota_headers_the_budget_does_not_limit() {
        let pacer = Pacer::default();
        for _ in 0..100 {
            pacer.graph_send().await;
            pacer.graph_answered(None);
        }
        assert_eq!(pacer.graph.lock().unwrap().in_flight, 0);
        assert_eq!(pacer.graph.lock().unwrap().left, None);
    }

    #[test]
    fn buckets() {
        assert_eq!(
            bucket_for("/subscriptions/AbC/resourceGroups/rg?api-version=1"),
            Bucket::Arm("abc".into())
        );
        assert_eq!(bucket_for("/subscriptions?api-version=1"), Bucket::Arm(String::new()));
    }
}
