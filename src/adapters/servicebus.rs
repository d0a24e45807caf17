//! The retry queue: work that failed for a passing reason (ARM throttled, ASM down) and long
//! resyncs, sent to a Service Bus queue through the REST API
//! (https://learn.microsoft.com/rest/api/servicebus/send-message-to-queue) and run again by the
//! `retry` function.
//!
//! Each send carries a fresh `MessageId` (duplicate detection would silently drop a reused one,
//! scheduled messages included) and, for retries, a `ScheduledEnqueueTimeUtc` (RFC 1123) for
//! exponential backoff with jitter. Auth is a bearer token for `https://servicebus.azure.net/`
//! from the shared [`TokenSource`], or a SAS token from a connection string.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::adapters::azure::TokenSource;
use crate::adapters::http::{RetryPolicy, is_retryable_status, retry_after};
use crate::config::{Config, EnvSource, RetrySettings, env};
use crate::domain::change::ChangeKind;
use crate::domain::secret::Secret;

mod refusal;
use refusal::{refusal_message, transport_message};

/// The shortest `Authorization` credential scrubbed from a refusal (see `RetryQueue::secrets`).
const MIN_SCRUBBED_TOKEN: usize = 8;

/// Token scope for the Service Bus data plane (the same audience in every cloud).
pub const SERVICE_BUS_SCOPE: &str = "https://servicebus.azure.net/.default";

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
    pub fn label(&self) -> &'static str {
        match self {
            RetryJob::Apply { .. } => "retry",
            RetryJob::Resync { .. } => "resync",
            RetryJob::Batch { .. } => "batch",
        }
    }
}

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

/// How requests are authorised.
#[derive(Clone)]
pub enum QueueAuth {
    /// Entra ID bearer tokens (managed identity with Azure Service Bus Data Sender).
    Bearer(Arc<dyn TokenSource>),
    /// Shared access signature from a connection string's key.
    Sas { key_name: String, key: Secret },
}

/// The queue's address and credentials, read from the app settings.
#[derive(Clone)]
pub struct QueueTarget {
    /// `https://mysbns.servicebus.windows.net` or the `azure.endpoints.service_bus` override.
    pub base_url: String,
    pub queue: String,
    pub auth: QueueAuth,
}

impl std::fmt::Debug for QueueTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match &self.auth {
            QueueAuth::Bearer(_) => "bearer".to_string(),
            QueueAuth::Sas { key_name, .. } => format!("sas({key_name})"),
        };
        f.debug_struct("QueueTarget")
            .field("base_url", &self.base_url)
            .field("queue", &self.queue)
            .field("auth", &auth)
            .finish()
    }
}

impl QueueTarget {
    /// Reads `RETRY_QUEUE` and either `ServiceBusConnection__fullyQualifiedNamespace` (bearer
    /// tokens from `tokens`) or a connection string in `ServiceBusConnection` (SAS).
    /// `azure.endpoints.service_bus` replaces the namespace URL (tests, proxies).
    pub fn from_env(
        env: &dyn EnvSource,
        config: &Config,
        tokens: Option<Arc<dyn TokenSource>>,
    ) -> Result<QueueTarget, QueueError> {
        let queue = env
            .var(env::RETRY_QUEUE)
            .map(|q| q.trim().to_string())
            .filter(|q| !q.is_empty())
            .ok_or_else(|| QueueError::NotConfigured(format!("{} is not set", env::RETRY_QUEUE)))?;
        if queue.contains(['/', '?', '#']) {
            return Err(QueueError::NotConfigured(format!(
                "{} = {queue:?}: expected a queue name",
                env::RETRY_QUEUE
            )));
        }
        let namespace = env.var(env::SERVICE_BUS_NAMESPACE).filter(|v| !v.trim().is_empty());
        let connection = env.var(env::SERVICE_BUS_CONNECTION).filter(|v| !v.trim().is_empty());
        let (namespace_url, auth) = match (namespace, connection) {
            (Some(ns), _) => {
                let tokens = tokens.ok_or_else(|| {
                    QueueError::NotConfigured(format!(
                        "{} is set but no Azure credential is available",
                        env::SERVICE_BUS_NAMESPACE
                    ))
                })?;
                (namespace_url(&ns)?, QueueAuth::Bearer(tokens))
            }
            (None, Some(conn)) => {
                let parsed = ConnectionString::parse(&conn)?;
                (
                    parsed.endpoint,
                    QueueAuth::Sas {
                        key_name: parsed.key_name,
                        key: parsed.key,
                    },
                )
            }
            (None, None) => {
                return Err(QueueError::NotConfigured(format!(
                    "set {} (managed identity) or {} (connection string)",
                    env::SERVICE_BUS_NAMESPACE,
                    env::SERVICE_BUS_CONNECTION
                )));
            }
        };
        Ok(QueueTarget {
            base_url: config.azure.service_bus.clone().unwrap_or(namespace_url),
            queue,
            auth,
        })
    }

    fn entity_url(&self) -> String {
        format!("{}/{}", self.base_url.trim_end_matches('/'), self.queue)
    }
}

/// `mysbns.servicebus.windows.net`, with or without a scheme or trailing slash, as a URL.
fn namespace_url(raw: &str) -> Result<String, QueueError> {
    let host = raw
        .trim()
        .trim_start_matches("sb://")
        .trim_start_matches("https://")
        .trim_end_matches('/');
    if host.is_empty() || host.contains(['/', '?', '#', ' ', '@']) {
        return Err(QueueError::NotConfigured(format!(
            "{} = {raw:?}: expected a namespace host such as mysbns.servicebus.windows.net",
            env::SERVICE_BUS_NAMESPACE
        )));
    }
    Ok(format!("https://{host}"))
}

/// The parts of a Service Bus connection string seedwatch uses.
pub struct ConnectionString {
    pub endpoint: String,
    pub key_name: String,
    pub key: Secret,
}

impl ConnectionString {
    /// Parses `Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=…;SharedAccessKey=…`.
    /// Errors name the missing part, never the key.
    pub fn parse(text: &str) -> Result<ConnectionString, QueueError> {
        let mut endpoint = None;
        let mut key_name = None;
        let mut key = None;
        for part in text.split(';') {
            let Some((name, value)) = part.split_once('=') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "endpoint" => endpoint = Some(value.to_string()),
                "sharedaccesskeyname" => key_name = Some(value.to_string()),
                "sharedaccesskey" => key = Some(Secret::new(value)),
                _ => {}
            }
        }
        let missing = |what: &str| {
            QueueError::NotConfigured(format!(
                "{}: no {what} in the connection string",
                env::SERVICE_BUS_CONNECTION
            ))
        };
        let endpoint = endpoint.filter(|e| !e.is_empty()).ok_or_else(|| missing("Endpoint"))?;
        let endpoint = if endpoint.starts_with("http://") {
            crate::config::url::check_base_url(&endpoint).map_err(|why| {
                QueueError::NotConfigured(format!("{}: Endpoint {endpoint}: {why}", env::SERVICE_BUS_CONNECTION))
            })?
        } else {
            namespace_url(&endpoint)?
        };
        Ok(ConnectionString {
            endpoint,
            key_name: key_name
                .filter(|k| !k.is_empty())
                .ok_or_else(|| missing("SharedAccessKeyName"))?,
            key: key
                .filter(|k| !k.expose().is_empty())
                .ok_or_else(|| missing("SharedAccessKey"))?,
        })
    }
}

/// Characters escaped in SAS tokens: everything but letters, digits and `-_.~`.
const SAS_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// `SharedAccessSignature sr=…&sig=…&se=…&skn=…` for `resource_uri`, valid until `expiry`
/// (seconds since the epoch). The HMAC key is the UTF-8 bytes of the key as given, not decoded.
pub fn sas_token(resource_uri: &str, key_name: &str, key: &Secret, expiry: u64) -> String {
    let encoded_uri = utf8_percent_encode(resource_uri, SAS_ESCAPE).to_string();
    let to_sign = format!("{encoded_uri}\n{expiry}");
    let signature = match Hmac::<Sha256>::new_from_slice(key.expose().as_bytes()) {
        Ok(mut mac) => {
            mac.update(to_sign.as_bytes());
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        }
        // HMAC accepts keys of any length; this arm is unreachable in practice.
        Err(_) => String::new(),
    };
    format!(
        "SharedAccessSignature sr={encoded_uri}&sig={}&se={expiry}&skn={}",
        utf8_percent_encode(&signature, SAS_ESCAPE),
        utf8_percent_encode(key_name, SAS_ESCAPE)
    )
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

    pub fn settings(&self) -> &RetrySettings {
        &self.settings
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
        let mut attempt = 0;
        loop {
            let authorization = self.authorization().await?;
            let result = self
                .client
                .post(&url)
                .header(reqwest::header::AUTHORIZATION, authorization.expose())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("BrokerProperties", broker.to_string())
                .header("kind", job.label())
                .body(body.clone())
                .send()
                .await;
            let failure = match result {
                Ok(response) if response.status().is_success() => {
                    return Ok(Sent { message_id, visible_at });
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let wait = retry_after(response.headers());
                    let text = response.text().await.unwrap_or_default();
                    let error = QueueError::Refused {
                        status,
                        message: refusal_message(status, &text, &self.secrets(&authorization)),
                    };
                    if !is_retryable_status(status) {
                        return Err(error);
                    }
                    (error, wait)
                }
                Err(e) => (QueueError::Transport(transport_message(&e)), None),
            };
            if attempt >= self.policy.count {
                return Err(failure.0);
            }
            tokio::time::sleep(self.policy.delay(attempt, failure.1, self.policy.max)).await;
            attempt += 1;
        }
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
        match &self.target.auth {
            QueueAuth::Bearer(tokens) => {
                let token = tokens
                    .bearer(SERVICE_BUS_SCOPE)
                    .await
                    .map_err(|e| QueueError::Token(e.to_string()))?;
                Ok(Secret::new(format!("Bearer {}", token.expose())))
            }
            QueueAuth::Sas { key_name, key } => {
                let expiry = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs()
                    + 3600;
                Ok(Secret::new(sas_token(&self.target.entity_url(), key_name, key, expiry)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::collections::HashMap;

    fn config() -> Config {
        Config::from_value(&serde_json::json!({}), "test", &HashMap::<String, String>::new()).unwrap()
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

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

    #[test]
    fn targets_from_identity_and_connection_string() {
        let cfg = config();
        let tokens: Arc<dyn TokenSource> = Arc::new(crate::adapters::azure::StaticToken(Secret::new("t")));
        let t = QueueTarget::from_env(
            &env(&[
                (env::RETRY_QUEUE, "asm-retries"),
                (env::SERVICE_BUS_NAMESPACE, "mysbns.servicebus.windows.net"),
            ]),
            &cfg,
            Some(tokens),
        )
        .unwrap();
        assert_eq!(t.entity_url(), "https://mysbns.servicebus.windows.net/asm-retries");
        assert!(matches!(t.auth, QueueAuth::Bearer(_)));

        let conn = "Endpoint=sb://other.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=s3cr3t+key=";
        let t = QueueTarget::from_env(
            &env(&[(env::RETRY_QUEUE, "q"), (env::SERVICE_BUS_CONNECTION, conn)]),
            &cfg,
            None,
        )
        .unwrap();
        assert_eq!(t.entity_url(), "https://other.servicebus.windows.net/q");
        let QueueAuth::Sas { key_name, key } = &t.auth else {
            panic!("sas")
        };
        assert_eq!((key_name.as_str(), key.expose()), ("send", "s3cr3t+key="));
        assert!(!format!("{t:?}").contains("s3cr3t"));
    }

    #[test]
    fn missing_settings_say_what_to_set() {
        let cfg = config();
        let err = QueueTarget::from_env(&env(&[]), &cfg, None).unwrap_err().to_string();
        assert!(err.contains(env::RETRY_QUEUE), "{err}");
        let err = QueueTarget::from_env(&env(&[(env::RETRY_QUEUE, "q")]), &cfg, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(env::SERVICE_BUS_NAMESPACE) && err.contains(env::SERVICE_BUS_CONNECTION),
            "{err}"
        );
        let err = QueueTarget::from_env(
            &env(&[
                (env::RETRY_QUEUE, "q"),
                (
                    env::SERVICE_BUS_CONNECTION,
                    "Endpoint=sb://x/;SharedAccessKey=zzz-secret",
                ),
            ]),
            &cfg,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("SharedAccessKeyName") && !err.contains("zzz-secret"),
            "{err}"
        );
    }

    #[test]
    fn sas_token_matches_the_documented_algorithm() {
        let token = sas_token(
            "https://ns.servicebus.windows.net/q",
            "send",
            &Secret::new("key"),
            1_700_000_000,
        );
        let encoded = "https%3A%2F%2Fns.servicebus.windows.net%2Fq";
        assert!(
            token.starts_with(&format!("SharedAccessSignature sr={encoded}&sig=")),
            "{token}"
        );
        assert!(token.ends_with("&se=1700000000&skn=send"), "{token}");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        mac.update(format!("{encoded}\n1700000000").as_bytes());
        let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let sig = token.split("&sig=").nth(1).unwrap().split('&').next().unwrap();
        let decoded = percent_encoding::percent_decode_str(sig).decode_utf8().unwrap();
        assert_eq!(decoded, expected);
    }
}
