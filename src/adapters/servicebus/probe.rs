//! The retry queue's probe on the wire: one message the `retry` function recognises and drops
//! (kind `probe`), and the queue's dead-letter count read from its entity description.
//! REST: <https://learn.microsoft.com/rest/api/servicebus/send-message-to-queue>,
//! <https://learn.microsoft.com/rest/api/servicebus/get-entity>.

use serde_json::{Map, Value, json};

use super::QueueTarget;
use crate::domain::secret::Secret;

/// The `kind` of a probe message.
pub(crate) const PROBE_KIND: &str = "probe";

/// Whether a queued message body is a probe (the `retry` function drops it).
pub(crate) fn is_probe(message: &Map<String, Value>) -> bool {
    message.get("kind").and_then(Value::as_str) == Some(PROBE_KIND)
}

/// What sending a probe did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProbeSent {
    Sent,
    /// Service Bus answered with this status.
    Refused(u16),
    /// No answer (the transport's error, without the URL).
    Unreachable(String),
}

/// What reading the dead-letter count found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeadLetters {
    Count(u64),
    /// Service Bus answered with this status (the Sender role may not read the entity).
    Refused(u16),
    /// No answer (the transport's error, without the URL).
    Unreachable(String),
    /// The entity description carries no `DeadLetterMessageCount`.
    NoCount,
}

/// The `Authorization` value for the queue: a bearer token, or a SAS token valid 10 minutes.
pub(crate) async fn probe_authorization(target: &QueueTarget) -> Result<Secret, String> {
    super::authorization(target, 600).await
}

/// The probe's `BrokerProperties` header and body.
fn probe_message(message_id: &str) -> (String, String) {
    let broker = json!({"MessageId": message_id, "Label": PROBE_KIND}).to_string();
    let body = json!({"kind": PROBE_KIND, "from": "seedwatch check"}).to_string();
    (broker, body)
}

/// Sends one probe (no retry).
pub(crate) async fn send_probe(target: &QueueTarget, client: &reqwest::Client, auth: &Secret) -> ProbeSent {
    let (broker, body) = probe_message(&format!("probe-{}", uuid::Uuid::new_v4()));
    let sent = client
        .post(format!("{}/messages", target.entity_url()))
        .header(reqwest::header::AUTHORIZATION, auth.expose())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("BrokerProperties", broker)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => ProbeSent::Sent,
        Ok(r) => ProbeSent::Refused(r.status().as_u16()),
        Err(e) => ProbeSent::Unreachable(e.without_url().to_string()),
    }
}

/// Reads the queue's entity description for its dead-letter count.
pub(crate) async fn dead_letters(target: &QueueTarget, client: &reqwest::Client, auth: &Secret) -> DeadLetters {
    let reply = client
        .get(format!("{}?api-version=2021-05", target.entity_url()))
        .header(reqwest::header::AUTHORIZATION, auth.expose())
        .send()
        .await;
    let reply = match reply {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => return DeadLetters::Refused(r.status().as_u16()),
        Err(e) => return DeadLetters::Unreachable(e.without_url().to_string()),
    };
    let text = reply.text().await.unwrap_or_default();
    dead_letter_count(&text).map_or(DeadLetters::NoCount, DeadLetters::Count)
}

/// `DeadLetterMessageCount` from an entity description (Atom XML, any namespace prefix).
fn dead_letter_count(xml: &str) -> Option<u64> {
    let at = xml.find("DeadLetterMessageCount>")?;
    let rest = &xml[at + "DeadLetterMessageCount>".len()..];
    rest.split('<').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_are_recognised_and_counts_read() {
        let (broker, body) = probe_message("probe-1");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert!(is_probe(body.as_object().unwrap()));
        let broker: Value = serde_json::from_str(&broker).unwrap();
        assert_eq!(broker, json!({"MessageId": "probe-1", "Label": "probe"}));
        let job = json!({"kind": "resync", "scope": "all"});
        assert!(!is_probe(job.as_object().unwrap()));
        let xml = "<CountDetails><d2p1:ActiveMessageCount>3</d2p1:ActiveMessageCount><d2p1:DeadLetterMessageCount>7</d2p1:DeadLetterMessageCount></CountDetails>";
        assert_eq!(dead_letter_count(xml), Some(7));
        assert_eq!(dead_letter_count("<x/>"), None);
    }
}
