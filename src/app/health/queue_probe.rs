//! The retry queue's check: a probe the `retry` function recognises and drops, sent with the
//! same credential as the retries, and the queue's dead-letter count when the credential may
//! read it (the Sender role may not). The messages and the REST calls are
//! `adapters::servicebus::probe`'s; this decides the check lines.

use super::report::CheckLine;
use crate::adapters::servicebus::QueueTarget;
use crate::adapters::servicebus::probe::{self, DeadLetters, ProbeSent};
use crate::domain::secret::Secret;

/// Sends a probe, then reads the dead-letter count if allowed.
pub(crate) async fn queue_lines(target: &QueueTarget, client: &reqwest::Client) -> Vec<CheckLine> {
    let advice = "grant the identity Azure Service Bus Data Sender on the queue, and check RETRY_QUEUE";
    let auth = match probe::probe_authorization(target).await {
        Ok(a) => a,
        Err(e) => return vec![CheckLine::failed("queue", format!("no Service Bus token: {e}"), advice)],
    };
    let mut lines = vec![match probe::send_probe(target, client, &auth).await {
        ProbeSent::Sent => CheckLine::ok(
            "queue",
            format!("sent a probe to {} (the retry function drops it)", target.queue),
        ),
        ProbeSent::Refused(status) => CheckLine::failed(
            "queue",
            format!("Service Bus refused the probe to {} ({status})", target.queue),
            advice,
        ),
        ProbeSent::Unreachable(e) => CheckLine::failed("queue", format!("cannot reach Service Bus: {e}"), advice),
    }];
    lines.push(dead_letter_line(target, client, &auth).await);
    lines
}

async fn dead_letter_line(target: &QueueTarget, client: &reqwest::Client, auth: &Secret) -> CheckLine {
    let unreadable = |why: String| {
        CheckLine::ok(
            "queue.dead-letter",
            format!("dead-letter count not read ({why}): reading it needs Manage rights, which the Sender role lacks"),
        )
    };
    match probe::dead_letters(target, client, auth).await {
        DeadLetters::Count(0) => CheckLine::ok("queue.dead-letter", "no dead-lettered message"),
        DeadLetters::Count(n) => CheckLine::warning(
            "queue.dead-letter",
            format!("{n} dead-lettered messages"),
            format!(
                "inspect {}/$deadletterqueue (Service Bus Explorer) and resubmit or drop them",
                target.queue
            ),
        ),
        DeadLetters::Refused(status) => unreadable(status.to_string()),
        DeadLetters::Unreachable(e) => unreadable(e),
        DeadLetters::NoCount => unreadable("no CountDetails in the entity description".into()),
    }
}
