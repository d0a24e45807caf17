//! Shared HTTP plumbing for every outbound client (ARM, Resource Graph, ASM, Service Bus,
//! Table Storage, Entra ID token requests): one send-with-retry ([`send_with_retry`]) that
//! honours `Retry-After`, a timeout on every request, and the extra roots of `SSL_CERT_FILE`.

use std::path::PathBuf;
use std::time::Duration;

mod send;
pub(crate) use send::{Answer, Exchange, Retry, RetryRules, SendError, send_with_retry};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::config::{EnvSource, HttpSettings, ProcessEnv, env};

/// Exponential backoff between `base` and `max`, `count` retries after the first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub count: u32,
    pub base: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    pub(crate) fn from_settings(http: &HttpSettings) -> RetryPolicy {
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
    pub(crate) fn delay(&self, attempt: u32, retry_after: Option<Duration>, ceiling: Duration) -> Duration {
        match retry_after {
            Some(wait) => wait.min(ceiling),
            None => self.backoff(attempt),
        }
    }
}

/// Whether a status is worth retrying: 408, 429 and 5xx other than 501.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || (status >= 500 && status != 501)
}

/// Reads `Retry-After` (seconds or an HTTP date) and `Retry-After-Ms`.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
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

/// Why an HTTP client could not be built as configured.
#[derive(Debug, thiserror::Error)]
pub enum HttpSetupError {
    #[error("{var}={path}: {message}", var = env::SSL_CERT_FILE, path = .path.display())]
    CaBundle { path: PathBuf, message: String },
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

/// The root certificates of the PEM bundle named by `SSL_CERT_FILE`, none when it is unset.
/// They are trusted in addition to the platform's roots, so a TLS-inspecting proxy's CA or a
/// private CA works. (On Linux the platform verifier itself reads the system roots from
/// `SSL_CERT_FILE` when it is set, as OpenSSL does.)
pub(crate) fn extra_roots(env: &dyn EnvSource) -> Result<Vec<reqwest::Certificate>, HttpSetupError> {
    let Some(path) = env
        .var(env::SSL_CERT_FILE)
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
    else {
        return Ok(Vec::new());
    };
    let path = PathBuf::from(path);
    let bad = |message: String| HttpSetupError::CaBundle {
        path: path.clone(),
        message,
    };
    let pem = std::fs::read(&path).map_err(|e| bad(format!("cannot read the CA bundle: {e}")))?;
    let mut roots = Vec::new();
    for (at, der) in CertificateDer::pem_slice_iter(&pem).enumerate() {
        let der = der.map_err(|e| bad(format!("certificate {} is not valid PEM: {e}", at + 1)))?;
        let cert = reqwest::Certificate::from_der(&der)
            .map_err(|e| bad(format!("certificate {} is not a certificate: {e}", at + 1)))?;
        roots.push(cert);
    }
    if roots.is_empty() {
        return Err(bad("no PEM CERTIFICATE block in the CA bundle".into()));
    }
    Ok(roots)
}

/// A reqwest client with rustls, a per-request timeout, seedwatch's user agent and the
/// extra roots of `SSL_CERT_FILE` in `env`. The one place outbound clients are built.
pub fn try_client(timeout: Duration, env: &dyn EnvSource) -> Result<reqwest::Client, HttpSetupError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("seedwatch/", env!("CARGO_PKG_VERSION")))
        .tls_certs_merge(extra_roots(env)?)
        .build()
        .map_err(|e| HttpSetupError::Build(e.to_string()))
}

/// [`try_client`] over the process environment. A bad `SSL_CERT_FILE` is logged and the
/// client built without it; [`crate::adapters::azure::azure_from_config`] refuses it at start.
pub fn client(timeout: Duration) -> reqwest::Client {
    try_client(timeout, &ProcessEnv).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "HTTP client without the extra roots");
        try_client(timeout, &std::collections::HashMap::<String, String>::new())
            .unwrap_or_else(|_| reqwest::Client::new())
    })
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
    fn a_bad_ca_bundle_is_named_with_its_variable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roots.pem");
        std::fs::write(&path, "not a bundle").unwrap();
        let env: std::collections::HashMap<String, String> =
            [(env::SSL_CERT_FILE.to_string(), path.display().to_string())].into();
        let err = try_client(Duration::from_secs(1), &env).unwrap_err().to_string();
        assert!(
            err.contains("SSL_CERT_FILE=") && err.contains("no PEM CERTIFICATE"),
            "{err}"
        );
        let missing: std::collections::HashMap<String, String> =
            [(env::SSL_CERT_FILE.to_string(), "/nonexistent/roots.pem".to_string())].into();
        let err = try_client(Duration::from_secs(1), &missing).unwrap_err().to_string();
        assert!(
            err.contains("/nonexistent/roots.pem") && err.contains("cannot read"),
            "{err}"
        );
        assert!(
            extra_roots(&std::collections::HashMap::<String, String>::new())
                .unwrap()
                .is_empty()
        );
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
