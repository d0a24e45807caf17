//! The retry queue's probe: one message the `retry` function recognises and drops (kind
//! `probe`), sent with the same credential as the retries, and the queue's dead-letter count
//! read from its entity description when the credential may read it (the Sender role may not).
//! REST: <https://learn.microsoft.com/rest/api/servicebus/send-message-to-queue>,
//! <https://learn.microsoft.com/rest/api/servicebus/get-entity>.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::report::CheckLine;
use crate::adapters::servicebus::{QueueAuth, QueueTarget, SERVICE_BUS_SCOPE, sas_token};
use crate::domain::secret::Secret;

/// The `kind` of a probe message.
pub(crate) const PROBE_KIND: &str = "probe";

/// Whether a queued message is a probe (the `retry` function drops it).
pub(crate) fn is_probe(message: &Map<String, Value>) -> bool {
    message.get("kind").and_then(Value::as_str) == Some(PROBE_KIND)
}

fn entity_url(target: &QueueTarget) -> String {
    format!("{}/{}", target.base_url.trim_end_matches('/'), target.queue)
}

async fn authorization(target: &QueueTarget) -> Result<Secret, String> {
    match &target.auth {
        QueueAuth::Bearer(tokens) => tokens
            .bearer(SERVICE_BUS_SCOPE)
            .await
            .map(|t| Secret::new(format!("Bearer {}", t.expose())))
            .map_err(|e| e.to_string()),
        QueueAuth::Sas { key_name, key } => {
            let expiry = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs()
                + 600;
            Ok(Secret::new(sas_token(&entity_url(target), key_name, key, expiry)))
        }
    }
}

/// Sends a probe, then reads the dead-letter count if allowed.
pub(crate) async fn queue_lines(target: &QueueTarget, client: &reqwest::Client) -> Vec<CheckLine> {
    let advice = "grant the identity Azure Service Bus Data Sender on the queue, and check RETRY_QUEUE";
    let auth = match authorization(target).await {
        Ok(a) => a,
        Err(e) => return vec![CheckLine::failed("queue", format!("no Service Bus token: {e}"), advice)],
    };
    let message_id = format!("probe-{}", uuid::Uuid::new_v4());
    let broker = json!({"MessageId": message_id, "Label": PROBE_KIND}).to_string();
    let body = json!({"kind": PROBE_KIND, "from": "seedwatch check"}).to_string();
    let sent = client
        .post(format!("{}/messages", entity_url(target)))
        .header(reqwest::header::AUTHORIZATION, auth.expose())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("BrokerProperties", broker)
        .body(body)
        .send()
        .await;
    let mut lines = vec![match sent {
        Ok(r) if r.status().is_success() => CheckLine::ok(
            "queue",
            format!("sent a probe to {} (the retry function drops it)", target.queue),
        ),
        Ok(r) => CheckLine::failed(
            "queue",
            format!(
                "Service Bus refused the probe to {} ({})",
                target.queue,
                r.status().as_u16()
            ),
            advice,
        ),
        Err(e) => CheckLine::failed(
            "queue",
            format!("cannot reach Service Bus: {}", e.without_url()),
            advice,
        ),
    }];
    lines.push(dead_letter_line(target, client, &auth).await);
    lines
}

async fn dead_letter_line(target: &QueueTarget, client: &reqwest::Client, auth: &Secret) -> CheckLine {
    let reply = client
        .get(format!("{}?api-version=2021-05", entity_url(target)))
        .header(reqwest::header::AUTHORIZATION, auth.expose())
        .send()
        .await;
    let unreadable = |why: String| {
        CheckLine::ok(
            "queue.dead-letter",
            format!("dead-letter count not read ({why}): reading it needs Manage rights, which the Sender role lacks"),
        )
    };
    let reply = match reply {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => return unreadable(format!("{}", r.status().as_u16())),
        Err(e) => return unreadable(e.without_url().to_string()),
    };
    let text = reply.text().await.unwrap_or_default();
    match dead_letter_count(&text) {
        Some(0) => CheckLine::ok("queue.dead-letter", "no dead-lettered message"),
        Some(n) => CheckLine::warning(
            "queue.dead-letter",
            format!("{n} dead-lettered messages"),
            format!(
                "inspect {}/$deadletterqueue (Service Bus Explorer) and resubmit or drop them",
                target.queue
            ),
        ),
        None => unreadable("no CountDetails in the entity description".into()),
    }
}

/// `DeadLetterMessageCount` from an entity description (Atom XML, any namespace prefix).
pub(crate) fn dead_letter_count(xml: &str) -> Option<u64> {
    let at = xml.find("DeadLetterMessageCount>")?;
    let rest = &xml[at + "DeadLetterMessageCount>".len()..];
    rest.split('<').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_are_recognised_and_counts_read() {
        let probe = json!({"kind": "probe", "from": "x"});
        assert!(is_probe(probe.as_object().unwrap()));
        let job = json!({"kind": "resync", "scope": "all"});
        assert!(!is_probe(job.as_object().unwrap()));
        let xml = "<CountDetails><d2p1:ActiveMessageCount>3</d2p1:ActiveMessageCount><d2p1:DeadLetterMessageCount>7</d2p1:DeadLetterMessageCount></CountDetails>";
        assert_eq!(dead_letter_count(xml), Some(7));
        assert_eq!(dead_letter_count("<x/>"), None);
    }
}
