//! What the retry queue carries: a [`RetryJob`] as the message body, and the backoff that
//! schedules its next attempt.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::config::RetrySettings;
use crate::domain::change::ChangeKind;

/// A message on the retry queue. Field names avoid the host's binding-data keys (`MessageId`,
/// `sys`, …): the host copies a JSON body's top-level properties into the invocation metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RetryJob {
    /// Apply one resource again (re-reading it, or as deleted).
    Apply {
        #[serde(rename = "resourceId")]
        resource_id: String,
        change: ChangeKind,
        /// 1 for the first retry.
        attempt: u32,
        /// Why the previous attempt failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cause: Option<String>,
    },
    /// A resync too long for the HTTP request that asked for it.
    Resync {
        scope: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default)]
        attempt: u32,
    },
    /// One batch of subscriptions of a timer reconcile fanned out across instances.
    Batch {
        /// The fanned-out run's history row: every batch reports to it.
        run: String,
        /// 0-based index of this batch, of `batches`.
        batch: u32,
        batches: u32,
        subscriptions: Vec<String>,
        #[serde(default)]
        attempt: u32,
    },
}

impl RetryJob {
    pub(crate) fn label(&self) -> &'static str {
        match self {
            RetryJob::Apply { .. } => "retry",
            RetryJob::Resync { .. } => "resync",
            RetryJob::Batch { .. } => "batch",
        }
    }
}

/// The wait before retry `attempt` (1-based): `base * 2^(attempt-1)` capped at `max`, with equal
/// jitter (half fixed, half random) so a burst of failures does not come back as a burst;
/// never under one second, so the scheduled time is always in the future.
pub fn backoff(attempt: u32, settings: &RetrySettings, rng: &mut impl Rng) -> Duration {
    let exponent = attempt.saturating_sub(1).min(30);
    let full = settings
        .base_delay
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(settings.max_delay.max(settings.base_delay));
    let half = full / 2;
    let jitter = Duration::from_millis(rng.random_range(0..=half.as_millis().min(u64::MAX as u128) as u64));
    (half + jitter).max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn jobs_round_trip_as_json() {
        let job = RetryJob::Apply {
            resource_id: "/subscriptions/1/resourceGroups/rg".into(),
            change: ChangeKind::Deleted,
            attempt: 2,
            cause: Some("ASM 503".into()),
        };
        let text = serde_json::to_string(&job).unwrap();
        assert!(
            text.contains("\"kind\":\"apply\"") && text.contains("\"resourceId\""),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<RetryJob>(&text).unwrap(), job);
        let resync: RetryJob = serde_json::from_str(r#"{"kind":"resync","scope":"all"}"#).unwrap();
        assert_eq!(
            resync,
            RetryJob::Resync {
                scope: "all".into(),
                id: None,
                attempt: 0
            }
        );
        assert!(serde_json::from_str::<RetryJob>(r#"{"kind":"explode"}"#).is_err());
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let settings = RetrySettings {
            base_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(600),
            max_attempts: 8,
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for attempt in 1..=8 {
            let full = (30u64 << (attempt - 1)).min(600);
            for _ in 0..50 {
                let d = backoff(attempt, &settings, &mut rng).as_millis() as u64;
                assert!(d >= full * 500 && d <= full * 1000, "attempt {attempt}: {d}ms");
            }
        }
        let tiny = RetrySettings {
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(10),
            max_attempts: 1,
        };
        assert_eq!(backoff(1, &tiny, &mut rng), Duration::from_secs(1));
        let draws: std::collections::HashSet<_> = (0..20).map(|_| backoff(3, &settings, &mut rng)).collect();
        assert!(draws.len() > 1, "jitter varies the delay");
    }
}
