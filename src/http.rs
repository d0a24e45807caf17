//! Shared HTTP plumbing for every outbound client (ARM, Resource Graph, ASM, Service Bus,
//! Table Storage): one retry policy that honours `Retry-After`, and a timeout on every request.

use std::time::Duration;

use crate::config::HttpSettings;

/// Exponential backoff between `base` and `max`, `count` retries after the first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub count: u32,
    pub base: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    pub fn from_settings(http: &HttpSettings) -> RetryPolicy {
        RetryPolicy {
            count: http.retry_count,
            base: http.retry_base_delay,
            max: http.retry_max_delay,
        }
    }

    /// The wait before retry number `attempt` (0-based): `base * 2^attempt`, capped at `max`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(20));
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The wait before the next attempt: the server's `Retry-After` when it sent one (capped
    /// at `ceiling` so a hostile value cannot stall us forever), else the backoff.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, ceiling: Duration) -> Duration {
        match retry_after {
            Some(wait) => wait.min(ceiling),
            None => self.backoff(attempt),
        }
    }
}

/// Whether a status is worth retrying: 408, 429 and 5xx other than 501.
pub fn is_retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || (status >= 500 && status != 501)
}

/// Reads `Retry-After` (seconds or an HTTP date) and `Retry-After-Ms`.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return Some(Duration::from_millis(ms));
    }
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(std::time::SystemTime::now()).unwrap_or_default())
}

/// A reqwest client with rustls, a per-request timeout and seedwatch's user agent.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("seedwatch/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            count: 4,
            base: Duration::from_secs(1),
            max: Duration::from_secs(5),
        };
        let waits: Vec<u64> = (0..5).map(|a| p.backoff(a).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 5, 5]);
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(30)), Duration::from_secs(10)),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn retryable_statuses() {
        assert!(is_retryable_status(429));
        assert!(is_retryable_status(503));
        assert!(!is_retryable_status(501));
        assert!(!is_retryable_status(404));
    }

    #[test]
    fn retry_after_forms() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
