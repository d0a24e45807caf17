//! The Hexiosec ASM REST client (API reference: https://asm.hexiosec.com/api/ui), implementing
//! [`AsmApi`].
//!
//! Every request carries `x-hexiosec-api-key`, has a timeout, and is retried on 429, 5xx other
//! than 501 and transport errors, honouring `Retry-After`. POSTs are retried too (there is no
//! idempotency key): a retried add whose first attempt did land comes back as "already exists",
//! which counts as done. The key never reaches a log line or an error: it is only ever put in
//! the header, and every text taken from a response is scrubbed of it.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::Value;

use super::{AddOutcome, AsmApi, AsmError, AsmSeed, DeleteOutcome};
use crate::adapters::http::{Exchange, Retry, RetryPolicy, RetryRules, SendError, send_with_retry};
use crate::config::{Config, ConfigError, HttpSettings};
use crate::domain::secret::Secret;
use crate::domain::seed::{Seed, SeedKind};

/// The header the ASM API reads the key from.
pub(crate) const API_KEY_HEADER: &str = "x-hexiosec-api-key";

/// The longest `Retry-After` we honour; a larger value is capped so that a hostile or broken
/// server cannot park a run for hours.
const RETRY_AFTER_CEILING: Duration = Duration::from_secs(120);

/// Longest piece of a response body quoted in an error.
const MAX_QUOTED_BODY: usize = 300;

/// A client for one scan of the ASM API.
pub struct AsmClient {
    http: reqwest::Client,
    base_url: String,
    scan_id: String,
    key: Secret,
    retry: RetryPolicy,
}

impl std::fmt::Debug for AsmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsmClient")
            .field("base_url", &self.base_url)
            .field("scan_id", &self.scan_id)
            .field("key", &self.key)
            .finish()
    }
}

/// A response read to the end.
struct Reply {
    status: u16,
    body: bytes::Bytes,
}

/// One ASM request as [`send_with_retry`] drives it: the key and the body on every attempt,
/// a warning (its text scrubbed of the key) before every retry.
struct AsmAttempt<'a> {
    client: &'a AsmClient,
    method: Method,
    url: &'a str,
    body: Option<&'a Value>,
    what: &'a str,
}

impl Exchange for AsmAttempt<'_> {
    type Error = std::convert::Infallible;

    async fn request(&self) -> Result<reqwest::RequestBuilder, Self::Error> {
        let mut request = self
            .client
            .http
            .request(self.method.clone(), self.url)
            .header(API_KEY_HEADER, self.client.key.expose())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = self.body {
            request = request.json(body);
        }
        Ok(request)
    }

    async fn retrying(&self, why: Retry, attempt: u32, wait: Duration) {
        let what = self.what;
        match why {
            Retry::Status(status) => tracing::warn!(what, status, attempt, "ASM answered with a retryable status"),
            // ASM has no throttle budget: a 429 comes back as `Retry::Status`.
            Retry::Throttled => tracing::warn!(what, status = 429u16, attempt, "ASM answered with a retryable status"),
            Retry::Transport(e) => {
                let message = self.client.scrub(&e.without_url().to_string());
                tracing::warn!(what, error = %message, attempt, "ASM request failed");
            }
        }
        tokio::time::sleep(wait).await;
    }
}

impl AsmClient {
    /// `base_url` is the API root (`https://asm.hexiosec.com/api`), without a trailing slash.
    pub fn new(base_url: &str, scan_id: &str, key: Secret, http: &HttpSettings) -> AsmClient {
        AsmClient {
            http: crate::adapters::http::client(http.timeout),
            base_url: base_url.trim_end_matches('/').to_string(),
            scan_id: scan_id.to_string(),
            key,
            retry: RetryPolicy::from_settings(http),
        }
    }

    /// From the configuration: `asm.base_url`, `scan_id`, `API_KEY`, `http.*`.
    pub(crate) fn from_config(config: &Config) -> Result<AsmClient, ConfigError> {
        let scan_id = config.require_scan_id()?;
        let key = config.require_api_key()?;
        Ok(AsmClient::new(&config.asm.base_url, scan_id, key.clone(), &config.http))
    }

    fn scan_path(&self) -> String {
        format!("/v1/scans/{}", encode_segment(&self.scan_id))
    }

    /// Sends one request with retries. Returns the final reply whatever its status (the caller
    /// maps statuses), or a transport error once retries are exhausted.
    async fn send(&self, method: Method, path: &str, body: Option<&Value>, what: &str) -> Result<Reply, AsmError> {
        let url = format!("{}{}", self.base_url, path);
        let rules = RetryRules {
            policy: self.retry,
            retry_after_ceiling: RETRY_AFTER_CEILING,
            throttle_budget: None,
        };
        let attempt = AsmAttempt {
            client: self,
            method,
            url: &url,
            body,
            what,
        };
        match send_with_retry(&rules, &attempt).await {
            Ok(answer) | Err(SendError::Throttled(answer)) => Ok(Reply {
                status: answer.status,
                body: answer.body,
            }),
            Err(SendError::Request(never)) => match never {},
            Err(SendError::Transport { error, attempts }) => Err(AsmError::Transport {
                what: what.to_string(),
                message: format!(
                    "{} (after {attempts} attempts)",
                    self.scrub(&error.without_url().to_string())
                ),
            }),
        }
    }

    /// Removes the key, in every form a server may echo it, from text that came back from the
    /// server, and only then cuts it short (a cut first could split the key and keep a piece).
    fn scrub(&self, text: &str) -> String {
        shorten(&self.key.scrub(text))
    }

    /// The error for a status the caller has no better meaning for.
    fn http_error(&self, reply: &Reply, what: &str) -> AsmError {
        let status = reply.status;
        if status == 401 || status == 403 {
            return AsmError::Unauthorized { status };
        }
        AsmError::Http {
            status,
            what: what.to_string(),
            message: self.body_message(&reply.body),
        }
    }

    /// A short readable message from an error body: its `message`/`error` field, else the text.
    fn body_message(&self, body: &[u8]) -> String {
        let parsed = serde_json::from_slice::<Value>(body).ok();
        let field = parsed.as_ref().and_then(|v| {
            ["message", "error", "detail", "title"]
                .iter()
                .find_map(|k| v.get(*k).and_then(Value::as_str))
                .map(str::to_string)
        });
        let text = field.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
        let text = if text.is_empty() {
            "(empty body)".to_string()
        } else {
            text
        };
        self.scrub(&text)
    }
}

#[async_trait]
impl AsmApi for AsmClient {
    async fn check_auth(&self) -> Result<(), AsmError> {
        let what = "GET /auth";
        let reply = self.send(Method::GET, "/auth", None, what).await?;
        if !(200..300).contains(&reply.status) {
            return Err(self.http_error(&reply, what));
        }
        let body: Value = serde_json::from_slice(&reply.body).map_err(|e| AsmError::BadResponse {
            what: what.into(),
            message: format!("not JSON: {e}"),
        })?;
        match body.get("authenticated") {
            Some(Value::Bool(true)) => Ok(()),
            Some(Value::Bool(false)) => Err(AsmError::Unauthorized { status: reply.status }),
            _ => Err(AsmError::BadResponse {
                what: what.into(),
                message: "no boolean `authenticated` field".into(),
            }),
        }
    }

    async fn check_scan(&self) -> Result<(), AsmError> {
        let what = "GET /v1/scans/{id}";
        let reply = self.send(Method::GET, &self.scan_path(), None, what).await?;
        match reply.status {
            200..=299 => Ok(()),
            // Some APIs answer 400 for an id that is not a UUID; to the user it is the same.
            404 | 400 => Err(AsmError::ScanNotFound {
                scan_id: self.scan_id.clone(),
            }),
            _ => Err(self.http_error(&reply, what)),
        }
    }

    async fn list_seeds(&self) -> Result<Vec<AsmSeed>, AsmError> {
        let what = "GET /v1/scans/{id}/seeds";
        let path = format!("{}/seeds?expand=tags", self.scan_path());
        let reply = self.send(Method::GET, &path, None, what).await?;
        match reply.status {
            200..=299 => parse_seed_list(&reply.body).map_err(|e| AsmError::BadResponse {
                what: what.into(),
                message: self.scrub(&e.to_string()),
            }),
            404 => Err(AsmError::ScanNotFound {
                scan_id: self.scan_id.clone(),
            }),
            _ => Err(self.http_error(&reply, what)),
        }
    }

    async fn add_seed(&self, seed: &Seed, tags: &[String]) -> Result<AddOutcome, AsmError> {
        let what = format!("POST /v1/scans/{{id}}/seeds ({})", seed.name());
        let body = serde_json::json!({
            "name": seed.name(),
            "type": seed.kind().as_str(),
            "tags": tags,
        });
        let path = format!("{}/seeds", self.scan_path());
        let reply = self.send(Method::POST, &path, Some(&body), &what).await?;
        match reply.status {
            200..=299 => Ok(AddOutcome::Added),
            409 => Ok(AddOutcome::AlreadyExists),
            400 | 422 => {
                let (code, message) = error_code(&reply.body);
                let message = self.scrub(&message);
                if is_already_exists(code.as_deref(), &message) {
                    return Ok(AddOutcome::AlreadyExists);
                }
                match code {
                    Some(code) => Ok(AddOutcome::Rejected {
                        code: self.scrub(&code),
                        message,
                    }),
                    None => Err(AsmError::Http {
                        status: reply.status,
                        what,
                        message,
                    }),
                }
            }
            404 => Err(AsmError::ScanNotFound {
                scan_id: self.scan_id.clone(),
            }),
            _ => Err(self.http_error(&reply, &what)),
        }
    }

    async fn delete_seed(&self, seed_id: &str) -> Result<DeleteOutcome, AsmError> {
        let what = format!("DELETE /v1/scans/{{id}}/seeds/{seed_id}");
        let path = format!("{}/seeds/{}", self.scan_path(), encode_segment(seed_id));
        let reply = self.send(Method::DELETE, &path, None, &what).await?;
        match reply.status {
            200..=299 => Ok(DeleteOutcome::Deleted),
            404 | 410 => Ok(DeleteOutcome::AlreadyGone),
            _ => Err(self.http_error(&reply, &what)),
        }
    }
}

fn encode_segment(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= MAX_QUOTED_BODY {
        text.to_string()
    } else {
        let mut short: String = text.chars().take(MAX_QUOTED_BODY).collect();
        short.push('…');
        short
    }
}

/// The `code` (a non-empty string) and a message from a 400 body, neither scrubbed nor cut.
fn error_code(body: &[u8]) -> (Option<String>, String) {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let code = parsed.as_ref().and_then(|v| v.get("code")).and_then(|c| match c {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    let message = parsed
        .as_ref()
        .and_then(|v| {
            ["message", "error", "detail"]
                .iter()
                .find_map(|k| v.get(*k).and_then(Value::as_str))
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    (code, message)
}

/// Whether a 400 means "the seed is already in the scan" (ASM has no documented code for it,
/// so both the code and the message are looked at).
fn is_already_exists(code: Option<&str>, message: &str) -> bool {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let code = code.map(squash).unwrap_or_default();
    let message = squash(message);
    ["alreadyexist", "duplicate", "conflict"]
        .iter()
        .any(|needle| code.contains(needle) || message.contains(needle))
        || code == "exists"
}

/// Why a seed listing could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SeedListError {
    #[error("not JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("expected a JSON array of seeds (or one under `data` or `seeds`)")]
    NoListInObject,
    #[error("expected a JSON array of seeds")]
    NotAList,
}

/// Parses the seed list: a JSON array of `{id, name, type, tags}`, or the same array under a
/// `data`, `seeds` or `items` key. Tags may be strings or `{name}` objects. Entries without an
/// id or a name cannot be acted on and are skipped.
pub(crate) fn parse_seed_list(body: &[u8]) -> Result<Vec<AsmSeed>, SeedListError> {
    let value: Value = serde_json::from_slice(body).map_err(SeedListError::NotJson)?;
    let items = match &value {
        Value::Array(items) => items,
        Value::Object(map) => ["data", "seeds", "items", "results"]
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_array))
            .ok_or(SeedListError::NoListInObject)?,
        _ => return Err(SeedListError::NotAList),
    };
    let mut seeds = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let id = match item.get("id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                tracing::warn!(index, "ASM listed a seed without an id; it is left alone");
                continue;
            }
        };
        let Some(name) = item.get("name").and_then(Value::as_str) else {
            tracing::warn!(index, "ASM listed a seed without a name; it is left alone");
            continue;
        };
        let kind = item.get("type").and_then(Value::as_str).and_then(SeedKind::parse_loose);
        let tags = match item.get("tags") {
            Some(Value::Array(tags)) => tags
                .iter()
                .filter_map(|t| match t {
                    Value::String(s) => Some(s.clone()),
                    Value::Object(o) => o.get("name").and_then(Value::as_str).map(str::to_string),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        seeds.push(AsmSeed {
            id,
            name: name.to_string(),
            kind,
            tags,
        });
    }
    Ok(seeds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_list_shapes() {
        let plain = br#"[{"id":"1","name":"a.example.com","type":"Domain","tags":["cloud-connector"]}]"#;
        let seeds = parse_seed_list(plain).unwrap();
        assert_eq!(seeds[0].kind, Some(SeedKind::Domain));
        assert_eq!(seeds[0].tags, vec!["cloud-connector"]);

        let wrapped = br#"{"data":[{"id":7,"name":"1.2.3.4","type":"IPv4","tags":[{"name":"x"},{"id":"t"}]}]}"#;
        let seeds = parse_seed_list(wrapped).unwrap();
        assert_eq!(seeds[0].id, "7");
        assert_eq!(seeds[0].kind, Some(SeedKind::Ipv4));
        assert_eq!(seeds[0].tags, vec!["x"]);

        let seeds_key = br#"{"seeds":[{"id":"2","name":"b.example.com"},{"name":"no-id.example.com"}]}"#;
        let seeds = parse_seed_list(seeds_key).unwrap();
        assert_eq!(seeds.len(), 1);
        assert_eq!(seeds[0].kind, None);
        assert!(seeds[0].tags.is_empty());

        assert!(parse_seed_list(b"{\"total\": 3}").is_err());
        assert!(parse_seed_list(b"<html>").is_err());
    }

    #[test]
    fn already_exists_is_recognised() {
        assert!(is_already_exists(Some("SEED_ALREADY_EXISTS"), ""));
        assert!(is_already_exists(Some("ERR_DUPLICATE_SEED"), ""));
        assert!(is_already_exists(Some("ERR123"), "Seed already exists in this scan"));
        assert!(!is_already_exists(
            Some("SEED_LIMIT_REACHED"),
            "limit of 50 seeds reached"
        ));
        assert!(!is_already_exists(None, "invalid name"));
    }

    #[test]
    fn error_code_reads_code_and_message() {
        let (code, message) = error_code(br#"{"code":"ERR123","message":"bad seed"}"#);
        assert_eq!(code.as_deref(), Some("ERR123"));
        assert_eq!(message, "bad seed");
        let (code, message) = error_code(br#"{"code":"","message":"x"}"#);
        assert_eq!(code, None);
        assert_eq!(message, "x");
        let (code, message) = error_code(b"plain text");
        assert_eq!(code, None);
        assert_eq!(message, "plain text");
    }

    #[test]
    fn debug_hides_the_key() {
        let http = HttpSettings {
            retry_count: 1,
            retry_base_delay: Duration::from_millis(1),
            retry_max_delay: Duration::from_millis(1),
            timeout: Duration::from_secs(1),
        };
        let client = AsmClient::new("http://127.0.0.1:1/api/", "scan", Secret::new("sekrit-key"), &http);
        assert!(!format!("{client:?}").contains("sekrit-key"));
        assert_eq!(client.scrub("echo sekrit-key back"), "echo *** back");
        assert_eq!(client.base_url, "http://127.0.0.1:1/api");
    }
}
