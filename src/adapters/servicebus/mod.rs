//! The retry queue: work that failed for a passing reason (ARM throttled, ASM down) and long
//! resyncs, sent to a Service Bus queue through the REST API
//! (https://learn.microsoft.com/rest/api/servicebus/send-message-to-queue) and run again by the
//! `retry` function.
//!
//! Each send carries a fresh `MessageId` (duplicate detection would silently drop a reused one,
//! scheduled messages included) and, for retries, a `ScheduledEnqueueTimeUtc` (RFC 1123) for
//! exponential backoff with jitter. Auth is a bearer token for `https://servicebus.azure.net/`
//! from the shared [`TokenSource`], or a SAS token from a connection string.

mod job;
pub(crate) mod probe;
mod refusal;
mod sas;
mod target;

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::adapters::http::{Answer, Exchange, RetryPolicy, RetryRules, SendError, send_with_retry};
use crate::config::{Config, RetrySettings};
use crate::domain::secret::Secret;
pub use job::{RetryJob, backoff};
use refusal::{refusal_message, transport_message};
pub use sas::sas_token;
pub use target::{ConnectionString, QueueAuth, QueueTarget};

/// The shortest `Authorization` credential scrubbed from a refusal (see `RetryQueue::secrets`).
const MIN_SCRUBBED_TOKEN: usize = 8;

/// Token scope for the Service Bus data plane (the same audience in every cloud).
pub(crate) const SERVICE_BUS_SCOPE: &str = "https://servicebus.azure.net/.default";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("the retry queue is not configured: {0}")]
    NotConfigured(String),
    #[error("Service Bus token: {0}")]
    Token(String),
    #[error("Service Bus refused the message ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("cannot reach Service Bus: {0}")]
    Transport(String),
}

/// What a send did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub message_id: String,
    /// When the message becomes visible (`None`: at once).
    pub visible_at: Option<SystemTime>,
}

/// The Service Bus REST client for the retry queue.
pub struct RetryQueue {
    target: QueueTarget,
    client: reqwest::Client,
    policy: RetryPolicy,
    settings: RetrySettings,
}

impl RetryQueue {
    pub fn new(target: QueueTarget, config: &Config) -> RetryQueue {
        RetryQueue {
            target,
            client: crate::adapters::http::client(config.http.timeout),
            policy: RetryPolicy::from_settings(&config.http),
            settings: config.retry.clone(),
        }
    }

    pub fn target(&self) -> &QueueTarget {
        &self.target
    }

    /// Schedules `job` after the backoff for its attempt.
    pub async fn schedule(&self, job: &RetryJob, correlation_id: Option<&str>) -> Result<Sent, QueueError> {
        let attempt = match job {
            RetryJob::Apply { attempt, .. } | RetryJob::Resync { attempt, .. } | RetryJob::Batch { attempt, .. } => {
                *attempt
            }
        };
        let delay = backoff(attempt.max(1), &self.settings, &mut rand::rng());
        self.send(job, Some(SystemTime::now() + delay), correlation_id).await
    }

    /// Sends `job` now, or at `visible_at`.
    pub async fn send(
        &self,
        job: &RetryJob,
        visible_at: Option<SystemTime>,
        correlation_id: Option<&str>,
    ) -> Result<Sent, QueueError> {
        let body = serde_json::to_vec(job).map_err(|e| QueueError::Refused {
            status: 0,
            message: format!("cannot encode the message: {e}"),
        })?;
        let message_id = format!("{}-{}", job.label(), uuid::Uuid::new_v4());
        let mut broker = serde_json::json!({ "MessageId": message_id, "Label": job.label() });
        if let Some(at) = visible_at {
            broker["ScheduledEnqueueTimeUtc"] = httpdate::fmt_http_date(at).into();
        }
        if let Some(id) = correlation_id {
            broker["CorrelationId"] = id.into();
        }
        let url = format!("{}/messages", self.target.entity_url());
        let rules = RetryRules {
            policy: self.policy,
            retry_after_ceiling: self.policy.max,
            throttle_budget: None,
        };
        let attempt = SendAttempt {
            queue: self,
            url: &url,
            body: &body,
            broker: broker.to_string(),
            label: job.label(),
            authorization: Mutex::new(None),
        };
        let answer = match send_with_retry(&rules, &attempt).await {
            Ok(answer) | Err(SendError::Throttled(answer)) => answer,
            Err(SendError::Request(e)) => return Err(e),
            Err(SendError::Transport { error, .. }) => return Err(QueueError::Transport(transport_message(&error))),
        };
        if (200..300).contains(&answer.status) {
            return Ok(Sent { message_id, visible_at });
        }
        let Answer { status, body, .. } = answer;
        let secrets = self.secrets(&attempt.sent().unwrap_or_else(|| Secret::new("")));
        Err(QueueError::Refused {
            status,
            message: refusal_message(status, &String::from_utf8_lossy(&body), &secrets),
        })
    }

    /// What an answer may echo and an error must not carry: the SAS key and the
    /// `Authorization` value sent (a bearer token or a SAS token). Real tokens run to hundreds
    /// of characters; a token shorter than [`MIN_SCRUBBED_TOKEN`] is a stand-in, and scrubbing
    /// it would mask every occurrence of a letter or two across the whole message.
    fn secrets(&self, authorization: &Secret) -> Vec<Secret> {
        let sent = authorization.expose();
        let credential = sent.strip_prefix("Bearer ").unwrap_or(sent);
        let mut secrets = Vec::new();
        if credential.len() >= MIN_SCRUBBED_TOKEN {
            secrets.push(Secret::new(credential));
        }
        if let QueueAuth::Sas { key, .. } = &self.target.auth {
            secrets.push(key.clone());
        }
        secrets
    }

    async fn authorization(&self) -> Result<Secret, QueueError> {
        authorization(&self.target, 3600).await.map_err(QueueError::Token)
    }
}

/// The `Authorization` value for the queue: a bearer token, or a SAS token valid
/// `sas_seconds` (<https://learn.microsoft.com/azure/service-bus-messaging/service-bus-sas>).
pub(crate) async fn authorization(target: &QueueTarget, sas_seconds: u64) -> Result<Secret, String> {
    match &target.auth {
        QueueAuth::Bearer(tokens) => tokens
            .bearer(SERVICE_BUS_SCOPE)
            .await
            .map(|t| Secret::new(format!("Bearer {}", t.expose())))
            .map_err(|e| e.to_string()),
        QueueAuth::Sas { key_name, key } => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            Ok(Secret::new(sas_token(
                &target.entity_url(),
                key_name,
                key,
                now + sas_seconds,
            )))
        }
    }
}

/// One send to the queue as [`send_with_retry`] drives it: a current `Authorization` on every
/// attempt, remembered so that a refusal echoing it can be scrubbed of it.
struct SendAttempt<'a> {
    queue: &'a RetryQueue,
    url: &'a str,
    body: &'a [u8],
    broker: String,
    label: &'static str,
    /// The `Authorization` value of the latest attempt.
    authorization: Mutex<Option<Secret>>,
}

impl SendAttempt<'_> {
    fn sent(&self) -> Option<Secret> {
        self.authorization.lock().ok().and_then(|sent| sent.clone())
    }
}

impl Exchange for SendAttempt<'_> {
    type Error = QueueError;

    async fn request(&self) -> Result<reqwest::RequestBuilder, QueueError> {
        let authorization = self.queue.authorization().await?;
        let request = self
            .queue
            .client
            .post(self.url)
            .header(reqwest::header::AUTHORIZATION, authorization.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("BrokerProperties", self.broker.as_str())
            .header("kind", self.label)
            .body(self.body.to_vec());
        if let Ok(mut sent) = self.authorization.lock() {
            *sent = Some(authorization);
        }
        Ok(request)
    }
}
