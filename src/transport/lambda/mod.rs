//! seedwatch as an AWS Lambda function (`seedwatch-lambda`, cargo feature `lambda`): the same
//! engines, retry queue and guard rails as the Functions handler, behind Lambda's triggers.
//!
//! One function, one handler over `LambdaEvent<serde_json::Value>`, dispatching on the payload:
//! - an EventBridge scheduled-rule event (`"detail-type": "Scheduled Event"`) or the EventBridge
//!   Scheduler input `{"seedwatch": "reconcile"}`: the full reconcile (the timer's job);
//! - a function URL request (payload format 2.0) carrying Event Grid deliveries: the
//!   subscription validation handshake, the shared-secret check, then each event through the
//!   Functions handler's parsing and apply-with-retry path;
//! - a function URL `POST /resync`: the manual resync.
//!
//! - [`url`]: the function URL request and response shapes (pure);
//! - [`webhook`]: the shared secret and the Event Grid handshakes (pure);
//! - [`preflight`]: what a Lambda deployment must configure (no managed identity, a shared ledger);
//! - [`handler`]: the dispatch and the work.

use crate::config::EventSettings;

pub mod handler;
pub mod preflight;
pub(crate) mod url;
pub mod webhook;

/// Environment variables only the Lambda entry point reads.
pub(crate) mod env {
    /// The shared secret Event Grid (and resync callers) must present (`?code=` or the header).
    pub(crate) const WEBHOOK_SECRET: &str = "WEBHOOK_SECRET";
    /// Set by the Lambda runtime in every function: how seedwatch knows it runs under Lambda.
    pub(crate) const AWS_LAMBDA_FUNCTION_NAME: &str = "AWS_LAMBDA_FUNCTION_NAME";
}

/// The coalescing a Lambda deployment uses: a delivery arrives as one request, its changes are
/// submitted together, and Lambda runs one request per execution environment at a time, so a
/// window longer than a few milliseconds would only add latency (Event Grid waits 30 s at most
/// for the answer). The other `events.*` settings are kept.
pub fn tuning(configured: EventSettings) -> EventSettings {
    EventSettings {
        coalesce_window: configured.coalesce_window.min(std::time::Duration::from_millis(20)),
        ..configured
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::EventSettings as Tuning;

    #[test]
    fn the_window_is_capped_and_the_rest_kept() {
        let configured = Tuning {
            coalesce_window: Duration::from_secs(1),
            concurrency: 7,
            clock_skew: Duration::from_secs(3),
            deadline: Duration::from_secs(20),
        };
        let tuned = super::tuning(configured.clone());
        assert_eq!(tuned.coalesce_window, Duration::from_millis(20));
        assert_eq!((tuned.concurrency, tuned.clock_skew), (7, Duration::from_secs(3)));
        let short = Tuning {
            coalesce_window: Duration::from_millis(5),
            ..configured
        };
        assert_eq!(super::tuning(short).coalesce_window, Duration::from_millis(5));
    }
}
