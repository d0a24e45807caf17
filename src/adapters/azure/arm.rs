//! One authenticated HTTP path for ARM and Resource Graph: bearer token, retries on 408/429/5xx
//! and transport errors, `Retry-After`, and pacing that slows down before Azure throttles
//! (`x-ms-ratelimit-remaining-subscription-reads` for ARM, `x-ms-user-quota-*` for Resource
//! Graph). Errors carry Azure's `error.code` and `error.message`, never a token.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::HeaderMap;
use serde_json::Value;

use super::{AzureError, TokenSource};
use crate::adapters::http::{RetryPolicy, is_retryable_status, retry_after};

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

/// A response whose status the caller interprets (2xx, 404, 403, ...).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn json(&self, what: &str) -> Result<Value, AzureError> {
        serde_json::from_slice(&self.body).map_err(|e| AzureError::BadResponse {
            what: what.to_string(),
            message: format!("not JSON: {e}"),
        })
    }

    /// Whether this is a 404 that says the resource does not exist ([`GONE_CODES`]).
    pub fn is_gone(&self) -> bool {
        self.status == 404
            && error_code(&self.body).is_some_and(|c| GONE_CODES.iter().any(|g| g.eq_ignore_ascii_case(&c)))
    }

    /// The error for a 404 that is not [`Reply::is_gone`].
    pub fn unclear_not_found(&self, what: &str) -> AzureError {
        AzureError::NotFoundUnclear {
            what: what.to_string(),
            message: error_message(&self.body),
        }
    }

    /// The error for a non-success reply, with Azure's code and message.
    pub fn error(&self, what: &str) -> AzureError {
        AzureError::Http {
            status: self.status,
            what: what.to_string(),
            message: error_message(&self.body),
        }
    }
}

/// The ARM error codes of a 404 that mean the resource itself does not exist: it, its resource
/// group, or its parent resource was not found
/// (https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-not-found).
/// Any other 404 (`SubscriptionNotFound`: a subscription the identity lost or that moved
/// tenant; `InvalidResourceType`, `NoRegisteredProviderFound`: a routing or api-version
/// problem; no or garbled body) says nothing about the resource, so it is never a delete.
/// See docs/decisions.md.
pub const GONE_CODES: &[&str] = &["ResourceNotFound", "ResourceGroupNotFound", "ParentResourceNotFound"];

/// `error.code` of an ARM error envelope.
pub fn error_code(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value
        .get("error")
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// `Code: message` from an ARM/ARG error envelope, or the start of the body.
pub fn error_message(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        let error = value.get("error").unwrap_or(&value);
        let code = error.get("code").and_then(Value::as_str);
        let message = error.get("message").and_then(Value::as_str);
        let detail = error
            .get("details")
            .and_then(Value::as_array)
            .and_then(|d| d.first())
            .and_then(|d| d.get("message"))
            .and_then(Value::as_str);
        let mut text = match (code, message) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.to_string(),
            (None, Some(m)) => m.to_string(),
            (None, None) => String::new(),
        };
        if let Some(d) = detail.filter(|d| !text.contains(*d)) {
            text.push_str(&format!(" ({d})"));
        }
        if !text.is_empty() {
            return truncate(&text, 600);
        }
    }
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        "no error body".into()
    } else {
        truncate(text.trim(), 300)
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut t: String = text.chars().take(max).collect();
        t.push('…');
        t
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
    Some(Duration::from_secs(days * 86_400 + hours * 3600 + minutes * 60) + Duration::from_secs_f64(seconds))
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
/// slows every request drawing from the same bucket.
#[derive(Debug, Default)]
struct Pacer {
    not_before: std::sync::Mutex<HashMap<Bucket, Instant>>,
}

impl Pacer {
    async fn wait(&self, bucket: &Bucket) {
        loop {
            let until = self.not_before.lock().map(|m| m.get(bucket).copied()).unwrap_or(None);
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t.into()).await,
                _ => return,
            }
        }
    }

    fn hold(&self, bucket: &Bucket, wait: Duration) {
        let until = Instant::now() + wait;
        if let Ok(mut map) = self.not_before.lock() {
            let entry = map.entry(bucket.clone()).or_insert(until);
            if *entry < until {
                *entry = until;
            }
        }
    }
}

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
    /// Resource Graph queries sent and not yet answered: what a quota still left will be
    /// spent on before another query can be sent.
    graph_in_flight: std::sync::atomic::AtomicU64,
}

impl Arm {
    pub fn new(
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
            graph_in_flight: Default::default(),
        }
    }

    /// Consults `gate` before each Resource Graph query and tells it the quota headers.
    pub fn with_graph_gate(mut self, gate: Arc<dyn super::quota::GraphQuotaGate>) -> Arm {
        self.graph_gate = Some(gate);
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `{base}{path_and_query}` for a path seedwatch wrote (no outside text in it).
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.base, path_and_query)
    }

    /// `{base}{id}{/extra...}?api-version={v}` with every path segment of the id percent-encoded,
    /// so no character of an id (`?`, `#`, `%`, a space) can change the request's meaning.
    pub fn resource_url(&self, id: &str, extra: &[&str], api_version: &str) -> String {
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
    pub fn next_link(&self, link: &str, what: &str) -> Result<String, AzureError> {
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
    pub async fn get(&self, url: &str, bucket: Bucket, what: &str) -> Result<Reply, AzureError> {
        self.send(reqwest::Method::GET, url, None, bucket, what).await
    }

    /// POST JSON with retries.
    pub async fn post(&self, url: &str, body: &Value, bucket: Bucket, what: &str) -> Result<Reply, AzureError> {
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
        let mut failures = 0u32;
        let mut throttles = 0u32;
        loop {
            self.pacer.wait(&bucket).await;
            if let (Bucket::Graph, Some(gate)) = (&bucket, &self.graph_gate) {
                gate.acquire().await;
            }
            let token = self.tokens.bearer(&self.scope).await?;
            let mut request = self.http.request(method.clone(), url).bearer_auth(token.expose());
            if let Some(body) = body {
                request = request.json(body);
            }
            match bucket {
                Bucket::Graph => self.counters.graph_pages.fetch_add(1, Ordering::Relaxed),
                Bucket::Arm(_) => self.counters.arm_requests.fetch_add(1, Ordering::Relaxed),
            };
            let in_flight = (bucket == Bucket::Graph).then(|| InFlight::count(&self.graph_in_flight));
            let response = request.send().await;
            drop(in_flight);
            let response = match response {
                Ok(r) => r,
                Err(e) => {
                    let timeout = e.is_timeout();
                    if failures < self.retry.count {
                        self.counters.retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(self.retry.backoff(failures)).await;
                        failures += 1;
                        continue;
                    }
                    return Err(if timeout {
                        AzureError::Timeout { what: what.to_string() }
                    } else {
                        AzureError::Transport {
                            what: what.to_string(),
                            message: transport_message(e),
                        }
                    });
                }
            };
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            self.pace_from_headers(&bucket, &headers);
            if let (Bucket::Graph, Some(gate)) = (&bucket, &self.graph_gate)
                && let Some(remaining) = headers
                    .get("x-ms-user-quota-remaining")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                && let Some(reset) = quota_reset(&headers)
            {
                gate.observe(remaining, reset).await;
            }
            let body = match response.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    if failures < self.retry.count {
                        self.counters.retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(self.retry.backoff(failures)).await;
                        failures += 1;
                        continue;
                    }
                    return Err(if e.is_timeout() {
                        AzureError::Timeout { what: what.to_string() }
                    } else {
                        AzureError::Transport {
                            what: what.to_string(),
                            message: transport_message(e),
                        }
                    });
                }
            };
            if status == 429 {
                self.counters.throttled.fetch_add(1, Ordering::Relaxed);
                if throttles >= self.tuning.max_throttle_retries {
                    return Err(AzureError::Throttled { what: what.to_string() });
                }
                let wait = retry_after(&headers)
                    .or_else(|| quota_reset(&headers))
                    .unwrap_or_else(|| self.retry.backoff(throttles))
                    .min(self.tuning.max_wait);
                tracing::info!(what, wait_ms = wait.as_millis() as u64, "throttled by Azure; waiting");
                self.pacer.hold(&bucket, wait);
                throttles += 1;
                continue;
            }
            if is_retryable_status(status) && failures < self.retry.count {
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
                let wait = self.retry.delay(failures, retry_after(&headers), self.tuning.max_wait);
                tokio::time::sleep(wait).await;
                failures += 1;
                continue;
            }
            return Ok(Reply { status, headers, body });
        }
    }

    /// Slows down before the quota runs out: Resource Graph's `x-ms-user-quota-remaining`
    /// (wait for `resets-after` when fewer remain than queries we run at once) and ARM's
    /// `x-ms-ratelimit-remaining-subscription-reads` (pace to the refill rate near the floor).
    fn pace_from_headers(&self, bucket: &Bucket, headers: &HeaderMap) {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        match bucket {
            Bucket::Graph => {
                // What remains after this query will go to the queries still in flight; only
                // past those may another be sent before the reset.
                if let Some(remaining) = number("x-ms-user-quota-remaining")
                    && remaining <= self.graph_in_flight.load(Ordering::Relaxed)
                    && let Some(reset) = quota_reset(headers)
                {
                    self.pacer.hold(bucket, reset.min(self.tuning.max_wait));
                }
            }
            Bucket::Arm(_) => {
                if let Some(remaining) = number("x-ms-ratelimit-remaining-subscription-reads")
                    && remaining < self.tuning.arm_reads_reserve
                {
                    let missing = self.tuning.arm_reads_reserve - remaining;
                    let per_second = self.tuning.arm_reads_refill_per_second.max(1);
                    let wait = Duration::from_millis(missing * 1000 / per_second);
                    self.pacer.hold(bucket, wait.min(self.tuning.max_wait));
                }
            }
        }
    }
}

/// Counts one request in flight while alive.
struct InFlight<'a>(&'a std::sync::atomic::AtomicU64);

impl<'a> InFlight<'a> {
    fn count(counter: &'a std::sync::atomic::AtomicU64) -> InFlight<'a> {
        counter.fetch_add(1, Ordering::Relaxed);
        InFlight(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn quota_reset(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get("x-ms-user-quota-resets-after")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_timespan)
}

/// A transport error without the URL's query (which may carry a `$skiptoken`) or any header.
fn transport_message(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    truncate(&text, 300)
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
    }

    #[test]
    fn error_messages() {
        let body =
            br#"{"error":{"code":"AuthorizationFailed","message":"The client 'x' does not have authorization"}}"#;
        assert_eq!(
            error_message(body),
            "AuthorizationFailed: The client 'x' does not have authorization"
        );
        let body = br#"{"error":{"code":"RateLimiting","message":"Please provide","details":[{"code":"RateLimiting","message":"Client application has been throttled"}]}}"#;
        assert!(error_message(body).ends_with("(Client application has been throttled)"));
        assert_eq!(error_message(b""), "no error body");
        assert_eq!(error_message(b"<html>bad gateway</html>"), "<html>bad gateway</html>");
    }

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

    #[test]
    fn buckets() {
        assert_eq!(
            bucket_for("/subscriptions/AbC/resourceGroups/rg?api-version=1"),
            Bucket::Arm("abc".into())
        );
        assert_eq!(bucket_for("/subscriptions?api-version=1"), Bucket::Arm(String::new()));
    }
}
