//! One authenticated HTTP path for ARM and Resource Graph: bearer token, retries on 408/429/5xx
//! and transport errors, `Retry-After`, and pacing that slows down before Azure throttles
//! (`x-ms-ratelimit-remaining-subscription-reads` for ARM, `x-ms-user-quota-*` for Resource
//! Graph). Errors carry Azure's `error.code` and `error.message`, never a token.

mod errors;
mod pacing;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;

use super::{AzureError, TokenSource};
use crate::adapters::http::{Answer, Exchange, Retry, RetryPolicy, RetryRules, SendError, send_with_retry};
use errors::transport_message;
pub use errors::{GONE_CODES, Reply, error_code, error_message};
pub use pacing::{Bucket, Counters, Tuning, bucket_for, parse_timespan};
use pacing::{Pacer, quota_reset};

/// What is escaped in one path segment: controls, space and the characters that end or
/// split a segment or start a query or fragment (RFC 3986 `pchar` keeps the rest).
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|');

/// The authenticated client for ARM and Resource Graph.
pub struct Arm {
    http: reqwest::Client,
    base: String,
    scope: String,
    tokens: Arc<dyn TokenSource>,
    retry: RetryPolicy,
    pub tuning: Tuning,
    pacer: Pacer,
    pub counters: Counters,
    /// Resource Graph's quota as every instance shares it (`None`: this process's pacing only).
    graph_gate: Option<Arc<dyn super::quota::GraphQuotaGate>>,
}

impl Arm {
    pub(crate) fn new(
        http: reqwest::Client,
        base: &str,
        scope: &str,
        tokens: Arc<dyn TokenSource>,
        retry: RetryPolicy,
        tuning: Tuning,
    ) -> Arm {
        Arm {
            http,
            base: base.trim_end_matches('/').to_string(),
            scope: scope.to_string(),
            tokens,
            retry,
            tuning,
            pacer: Pacer::default(),
            counters: Counters::default(),
            graph_gate: None,
        }
    }

    /// Consults `gate` before each Resource Graph query and tells it the quota headers.
    pub(crate) fn with_graph_gate(mut self, gate: Arc<dyn super::quota::GraphQuotaGate>) -> Arm {
        self.graph_gate = Some(gate);
        self
    }

    /// `{base}{path_and_query}` for a path seedwatch wrote (no outside text in it).
    pub(crate) fn url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.base, path_and_query)
    }

    /// `{base}{id}{/extra...}?api-version={v}` with every path segment of the id percent-encoded,
    /// so no character of an id (`?`, `#`, `%`, a space) can change the request's meaning.
    pub(crate) fn resource_url(&self, id: &str, extra: &[&str], api_version: &str) -> String {
        let mut url = self.base.clone();
        for segment in id.split('/').filter(|s| !s.is_empty()).chain(extra.iter().copied()) {
            url.push('/');
            url.extend(percent_encoding::utf8_percent_encode(segment, PATH_SEGMENT));
        }
        url.push_str("?api-version=");
        url.extend(percent_encoding::utf8_percent_encode(api_version, PATH_SEGMENT));
        url
    }

    /// A continuation link (`nextLink`) from a response, followed only to the configured
    /// Resource Manager scheme, host and port: the request carries the bearer token, so a link
    /// elsewhere is an error naming the host. A relative link is taken against the base.
    pub(crate) fn next_link(&self, link: &str, what: &str) -> Result<String, AzureError> {
        let refuse = |message: String| AzureError::BadResponse {
            what: what.to_string(),
            message,
        };
        let base = url::Url::parse(&self.base)
            .map_err(|e| refuse(format!("the Resource Manager base URL is not a URL: {e}")))?;
        let next = base
            .join(link)
            .map_err(|e| refuse(format!("nextLink is not a URL ({e})")))?;
        let origin = |u: &url::Url| {
            (
                u.scheme().to_string(),
                u.host_str().map(str::to_ascii_lowercase),
                u.port_or_known_default(),
            )
        };
        if origin(&next) != origin(&base) {
            return Err(refuse(format!(
                "nextLink points at {}://{}{}, not the configured Resource Manager {}: not followed",
                next.scheme(),
                next.host_str().unwrap_or("(no host)"),
                next.port().map(|p| format!(":{p}")).unwrap_or_default(),
                base.origin().ascii_serialization()
            )));
        }
        Ok(next.to_string())
    }

    /// GET with retries; the reply may be any non-retryable status.
    pub(crate) async fn get(&self, url: &str, bucket: Bucket, what: &str) -> Result<Reply, AzureError> {
        self.send(reqwest::Method::GET, url, None, bucket, what).await
    }

    /// POST JSON with retries.
    pub(crate) async fn post(&self, url: &str, body: &Value, bucket: Bucket, what: &str) -> Result<Reply, AzureError> {
        self.send(reqwest::Method::POST, url, Some(body), bucket, what).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
        bucket: Bucket,
        what: &str,
    ) -> Result<Reply, AzureError> {
        let rules = RetryRules {
            policy: self.retry,
            retry_after_ceiling: self.tuning.max_wait,
            throttle_budget: Some(self.tuning.max_throttle_retries),
        };
        let attempt = ArmAttempt {
            arm: self,
            method,
            url,
            body,
            bucket: &bucket,
            what,
            outstanding: AtomicBool::new(false),
        };
        match send_with_retry(&rules, &attempt).await {
            Ok(Answer { status, headers, body }) => Ok(Reply { status, headers, body }),
            Err(SendError::Request(e)) => Err(e),
            Err(SendError::Throttled(_)) => {
                self.counters.throttled.fetch_add(1, Ordering::Relaxed);
                Err(AzureError::Throttled { what: what.to_string() })
            }
            Err(SendError::Transport { error, .. }) if error.is_timeout() => {
                Err(AzureError::Timeout { what: what.to_string() })
            }
            Err(SendError::Transport { error, .. }) => Err(AzureError::Transport {
                what: what.to_string(),
                message: transport_message(error),
            }),
        }
    }
}

/// One ARM or Resource Graph request as [`send_with_retry`] drives it: each attempt waits for
/// its bucket (and the shared Resource Graph quota), carries a current token and is counted; a
/// 429 holds the whole bucket instead of sleeping, so every request drawing from it slows down.
struct ArmAttempt<'a> {
    arm: &'a Arm,
    method: reqwest::Method,
    url: &'a str,
    body: Option<&'a Value>,
    bucket: &'a Bucket,
    what: &'a str,
    /// A Resource Graph query of this exchange is sent and not yet answered (it holds a unit of
    /// the pacer's Graph budget until answered or given up).
    outstanding: AtomicBool,
}

impl Drop for ArmAttempt<'_> {
    fn drop(&mut self) {
        if self.outstanding.swap(false, Ordering::Relaxed) {
            self.arm.pacer.graph_abandoned();
        }
    }
}

impl Exchange for ArmAttempt<'_> {
    type Error = AzureError;

    async fn request(&self) -> Result<reqwest::RequestBuilder, AzureError> {
        let arm = self.arm;
        arm.pacer.wait(self.bucket).await;
        if let Bucket::Graph = self.bucket {
            if self.outstanding.swap(false, Ordering::Relaxed) {
                arm.pacer.graph_abandoned();
            }
            arm.pacer.graph_send().await;
            self.outstanding.store(true, Ordering::Relaxed);
            if let Some(gate) = &arm.graph_gate {
                gate.acquire().await;
            }
        }
        let token = arm.tokens.bearer(&arm.scope).await?;
        let mut request = arm
            .http
            .request(self.method.clone(), self.url)
            .bearer_auth(token.expose());
        if let Some(body) = self.body {
            request = request.json(body);
        }
        match self.bucket {
            Bucket::Graph => arm.counters.graph_pages.fetch_add(1, Ordering::Relaxed),
            Bucket::Arm(_) => arm.counters.arm_requests.fetch_add(1, Ordering::Relaxed),
        };
        Ok(request)
    }

    async fn observe(&self, _status: u16, headers: &HeaderMap) {
        let arm = self.arm;
        if let Bucket::Graph = self.bucket {
            self.outstanding.store(false, Ordering::Relaxed);
        }
        arm.pacer.pace_from_headers(&arm.tuning, self.bucket, headers);
        if let (Bucket::Graph, Some(gate)) = (self.bucket, &arm.graph_gate)
            && let Some(remaining) = headers
                .get("x-ms-user-quota-remaining")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
            && let Some(reset) = quota_reset(headers)
        {
            gate.observe(remaining, reset).await;
        }
    }

    fn throttle_hint(&self, headers: &HeaderMap) -> Option<Duration> {
        quota_reset(headers)
    }

    async fn retrying(&self, why: Retry, _retry: u32, wait: Duration) {
        let counters = &self.arm.counters;
        if let Retry::Throttled = why {
            counters.throttled.fetch_add(1, Ordering::Relaxed);
            let what = self.what;
            tracing::info!(what, wait_ms = wait.as_millis() as u64, "throttled by Azure; waiting");
            self.arm.pacer.hold(self.bucket, wait);
            return;
        }
        counters.retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm(base: &str) -> Arm {
        struct NoToken;
        #[async_trait::async_trait]
        impl TokenSource for NoToken {
            async fn bearer(&self, _scope: &str) -> Result<crate::domain::secret::Secret, AzureError> {
                Err(AzureError::Credential("none".into()))
            }
        }
        Arm::new(
            reqwest::Client::new(),
            base,
            "https://management.azure.com/.default",
            Arc::new(NoToken),
            RetryPolicy {
                count: 0,
                base: Duration::from_millis(1),
                max: Duration::from_millis(1),
            },
            Tuning::default(),
        )
    }

    #[test]
    fn next_links_stay_on_the_resource_manager_host() {
        let arm = arm("https://management.azure.com/");
        assert_eq!(
            arm.next_link(
                "https://management.azure.com/subscriptions?api-version=1&$skiptoken=a",
                "w"
            )
            .unwrap(),
            "https://management.azure.com/subscriptions?api-version=1&$skiptoken=a"
        );
        assert_eq!(
            arm.next_link("/subscriptions?x=1", "w").unwrap(),
            "https://management.azure.com/subscriptions?x=1"
        );
        for bad in [
            "https://evil.example.com/subscriptions?api-version=1",
            "http://management.azure.com/subscriptions",
            "https://management.azure.com:8443/subscriptions",
            "https://management.azure.com.evil.example/x",
            "//evil.example.com/x",
        ] {
            let err = arm.next_link(bad, "the list").unwrap_err().to_string();
            assert!(
                err.contains("not followed") && err.contains("https://management.azure.com"),
                "{bad}: {err}"
            );
        }
        let err = arm
            .next_link("https://evil.example.com/x", "w")
            .unwrap_err()
            .to_string();
        assert!(err.contains("evil.example.com"), "{err}");
    }

    #[test]
    fn resource_urls_encode_each_segment() {
        let arm = arm("https://management.azure.com");
        assert_eq!(
            arm.resource_url(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/a",
                &[],
                "2024-04-01"
            ),
            "https://management.azure.com/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/a?api-version=2024-04-01"
        );
        assert_eq!(
            arm.resource_url(
                "/subscriptions/s/resourceGroups/rg/x/a?b#c%d e",
                &["blobServices", "default"],
                "1"
            ),
            "https://management.azure.com/subscriptions/s/resourceGroups/rg/x/a%3Fb%23c%25d%20e/blobServices/default?api-version=1"
        );
    }
}
