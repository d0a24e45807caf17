//! The known keys of the configuration and typed reads with errors that name key, value and origin.

use std::time::Duration;

use serde_json::Value;

use super::duration::parse_duration;
use super::{Cloud, ConfigError, EnvSource, env};
use crate::domain::check::ServiceCheck;

/// Keys seedwatch reads, by parent path. `aws` and `gcp` are Hexiosec blocks kept for
/// compatibility and ignored as a whole.
fn known_children(path: &str) -> Option<Vec<&'static str>> {
    let keys: Vec<&'static str> = match path {
        "" => vec![
            "scan_id",
            "seed_tag",
            "delete_stale_seeds",
            "http",
            "azure",
            "aws",
            "gcp",
            "asm",
            "sync",
            "ledger",
            "events",
            "retry",
        ],
        "http" => vec!["retry_count", "retry_base_delay", "retry_max_delay", "timeout"],
        "azure" => vec![
            "enabled",
            "credential",
            "managed_identity_client_id",
            "cloud",
            "endpoints",
            "subscriptions",
            "exclude_subscriptions",
            "management_groups",
            "tenants",
            "services",
        ],
        "azure.endpoints" => vec!["resource_manager", "service_bus", "authority"],
        "azure.services" => ServiceCheck::ALL.iter().map(|c| c.toggle()).collect(),
        "asm" => vec!["base_url", "seed_types"],
        "sync" => vec![
            "max_delete_fraction",
            "shared_tag",
            "graph_lag",
            "fanout_threshold",
            "fanout_batch",
        ],
        "ledger" => vec!["kind", "path", "table"],
        "events" => vec!["coalesce_window", "concurrency", "clock_skew", "deadline"],
        "retry" => vec!["base_delay", "max_delay", "max_attempts"],
        _ => return None,
    };
    Some(keys)
}

/// Warns about every key the schema does not know, with its full path.
pub(super) fn unknown_keys(root: &Value, origin: &str, warnings: &mut Vec<String>) {
    fn walk(value: &Value, path: &str, origin: &str, warnings: &mut Vec<String>) {
        let (Value::Object(map), Some(known)) = (value, known_children(path)) else {
            return;
        };
        for (key, child) in map {
            let full = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if known.contains(&key.as_str()) {
                if full != "aws" && full != "gcp" {
                    walk(child, &full, origin, warnings);
                }
            } else {
                warnings.push(format!("{origin}: unknown key {full} is ignored"));
            }
        }
    }
    walk(root, "", origin, warnings);
}

/// `azure.endpoints.authority`, else `AZURE_AUTHORITY_HOST`, else the cloud's host. An explicit
/// `azure.cloud` does not hide `AZURE_AUTHORITY_HOST` (it does in `azure_identity`).
pub(super) fn authority_host(r: &Reader, cloud: Cloud, env: &dyn EnvSource) -> Result<String, ConfigError> {
    const KEY: &str = "azure.endpoints.authority";
    if let Some(url) = r.string(KEY)? {
        return r.authority_url(KEY, &url);
    }
    match env.var(env::AZURE_AUTHORITY_HOST).filter(|v| !v.trim().is_empty()) {
        Some(url) => Reader {
            root: &Value::Null,
            origin: "environment",
        }
        .authority_url(env::AZURE_AUTHORITY_HOST, url.trim()),
        None => Ok(cloud.authority_host().to_string()),
    }
}

/// The Hexiosec `aws` and `gcp` blocks: seedwatch reads neither, and says so. Returns the
/// connectors enabled there: those may tag their seeds with our `seed_tag` in the same scan.
pub(super) fn other_connectors(
    root: &Value,
    origin: &str,
    r: &Reader<'_>,
    warnings: &mut Vec<String>,
) -> Result<Vec<&'static str>, ConfigError> {
    let mut enabled = Vec::new();
    for block in ["aws", "gcp"] {
        if root.get(block).is_none_or(Value::is_null) {
            continue;
        }
        if r.bool(&format!("{block}.enabled"))?.unwrap_or(false) {
            enabled.push(block);
            warnings.push(format!(
                "{origin}: the {block} block is ignored (seedwatch reads Azure only); as the {block} connector \
                 may tag seeds with the same seed_tag, a tagged seed is deleted only when the ledger shows \
                 it came from Azure"
            ));
        } else {
            warnings.push(format!(
                "{origin}: the {block} block is ignored (seedwatch reads Azure only)"
            ));
        }
    }
    Ok(enabled)
}

/// A short rendering of a value for error messages.
pub(super) fn show(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        let mut short: String = text.chars().take(80).collect();
        short.push('…');
        short
    } else {
        text
    }
}

pub(super) fn parse_bool_text(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

pub(super) struct Reader<'a> {
    pub root: &'a Value,
    pub origin: &'a str,
}

impl Reader<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        let mut node = self.root;
        for part in key.split('.') {
            node = node.as_object()?.get(part)?;
        }
        if node.is_null() { None } else { Some(node) }
    }

    pub fn invalid(&self, key: &str, value: &str, expected: &str) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.to_string(),
            key: key.to_string(),
            value: format!("{value:?}"),
            expected: expected.to_string(),
        }
    }

    fn invalid_value(&self, key: &str, value: &Value, expected: &str) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.to_string(),
            key: key.to_string(),
            value: show(value),
            expected: expected.to_string(),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) => parse_bool_text(s)
                .map(Some)
                .ok_or_else(|| self.invalid_value(key, &Value::String(s.clone()), "expected true or false")),
            Some(other) => Err(self.invalid_value(key, other, "expected true or false")),
        }
    }

    pub fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(v @ Value::Number(_)) => Ok(Some(v.to_string())),
            Some(other) => Err(self.invalid_value(key, other, "expected a string")),
        }
    }

    pub fn string_list(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                    other => Err(self.invalid_value(key, other, "expected a list of non-empty strings")),
                })
                .collect(),
            Some(other) => Err(self.invalid_value(key, other, "expected a list of strings")),
        }
    }

    /// A positive whole number; 0 means the default, as in the Hexiosec connector.
    pub fn nonzero_or(&self, key: &str, default: u32) -> Result<u32, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => {
                let n = match v {
                    Value::Number(n) => n.as_u64(),
                    Value::String(s) => s.trim().parse::<u64>().ok(),
                    _ => None,
                };
                match n {
                    Some(0) => Ok(default),
                    Some(n) if n <= 1000 => Ok(n as u32),
                    _ => Err(self.invalid_value(key, v, "expected a whole number from 0 to 1000")),
                }
            }
        }
    }

    /// A Go-style duration (`500ms`, `1s`, `1m30s`) or a number of seconds; 0 means the default.
    pub fn duration_or(&self, key: &str, default: Duration) -> Result<Duration, ConfigError> {
        let d = self.duration_or_zero(key, default)?;
        Ok(if d.is_zero() { default } else { d })
    }

    /// As [`Reader::duration_or`], but 0 is a value of its own (no wait at all).
    pub fn duration_or_zero(&self, key: &str, default: Duration) -> Result<Duration, ConfigError> {
        let parsed = match self.get(key) {
            None => return Ok(default),
            Some(Value::String(s)) => parse_duration(s),
            Some(Value::Number(n)) => n
                .as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1e9)
                .map(Duration::from_secs_f64),
            Some(_) => None,
        };
        match parsed {
            Some(d) => Ok(d),
            None => Err(self.invalid_value(
                key,
                self.get(key).unwrap_or(&Value::Null),
                "expected a duration such as 500ms, 1s or 2m30s",
            )),
        }
    }

    pub fn fraction(&self, key: &str) -> Result<Option<f64>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_f64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())) {
                Some(f) if (0.0..=1.0).contains(&f) => Ok(Some(f)),
                _ => Err(self.invalid_value(key, v, "expected a number from 0 to 1")),
            },
        }
    }

    /// A base URL: https, or http to a loopback address; no query; the trailing slash is
    /// dropped.
    pub fn base_url(&self, key: &str, raw: &str) -> Result<String, ConfigError> {
        super::url::check_base_url(raw).map_err(|why| self.invalid(key, raw, why))
    }

    /// An Entra ID authority host: `https://` (Entra ID and the Azure SDKs refuse anything
    /// else), a host and nothing after it; the trailing slash is dropped.
    pub fn authority_url(&self, key: &str, raw: &str) -> Result<String, ConfigError> {
        match url::Url::parse(raw) {
            Ok(url)
                if url.scheme() == "https"
                    && url.host().is_some()
                    && matches!(url.path(), "" | "/")
                    && url.query().is_none()
                    && url.fragment().is_none() =>
            {
                Ok(raw.trim_end_matches('/').to_string())
            }
            _ => Err(self.invalid(
                key,
                raw,
                "expected an https:// authority host such as https://login.microsoftonline.com",
            )),
        }
    }
}

/// `asm.seed_types`: a list of ASM seed type names (any case); absent means all of them. An
/// empty list or an unknown name is an error naming the key and the value.
pub fn seed_types(
    r: &Reader,
    key: &str,
) -> Result<std::collections::BTreeSet<crate::domain::seed::SeedKind>, ConfigError> {
    if r.get(key).is_none() {
        return Ok(super::all_seed_types());
    }
    let names = r.string_list(key)?;
    if names.is_empty() {
        return Err(r.invalid(key, "[]", "expected at least one of domain, ipv4, ipv6, iprange"));
    }
    names
        .iter()
        .map(|name| {
            crate::domain::seed::SeedKind::parse_loose(name)
                .ok_or_else(|| r.invalid(key, name, "expected seed types among domain, ipv4, ipv6, iprange"))
        })
        .collect()
}
