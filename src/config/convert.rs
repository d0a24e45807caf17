//! From the file's shape ([`RawConfig`]) to the typed [`Config`]: defaults, the checks that
//! span keys, and the warnings about what is ignored.

use std::path::PathBuf;
use std::time::Duration;

use super::raw::{RawAzure, RawConfig, RawEvents, RawHttp, RawRetry, RawSync};
use super::types::*;
use super::values::{AuthorityUrl, BaseUrl, Count, Flag, Fraction, Seconds, SeedTypes, Text, TextList, quoted};
use super::{ConfigError, EnvSource, env, tenants};
use crate::domain::check::{EnabledChecks, ServiceCheck};

fn invalid(origin: &str, key: &str, value: String, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        origin: origin.to_string(),
        key: key.to_string(),
        value,
        expected: expected.to_string(),
    }
}

fn text(value: Option<Text>) -> Option<String> {
    value.map(|Text(s)| s)
}

fn flag(value: Option<Flag>) -> Option<bool> {
    value.map(|Flag(b)| b)
}

fn list(value: Option<TextList>) -> Vec<String> {
    value.map(|TextList(items)| items).unwrap_or_default()
}

impl RawConfig {
    /// The typed configuration; `ignored` are the unknown keys found reading the file.
    pub(super) fn into_config(
        mut self,
        origin: &str,
        env: &dyn EnvSource,
        ignored: Vec<String>,
    ) -> Result<Config, ConfigError> {
        // Unknown keys first, those of `azure.tenants` last, as they were always reported.
        let (in_tenants, elsewhere): (Vec<String>, Vec<String>) =
            ignored.into_iter().partition(|key| key.starts_with("azure.tenants["));
        let unknown = |key: String| format!("{origin}: unknown key {key} is ignored");
        let mut warnings: Vec<String> = elsewhere.into_iter().map(unknown).collect();
        let raw_tenants = self.azure.tenants.take();
        let mut azure = azure_settings(self.azure, origin, env, &mut warnings)?;
        let other_connectors = other_connectors(&self.aws, &self.gcp, origin, &mut warnings);
        let events = event_settings(self.events, origin)?;
        azure.tenants = tenants::read(raw_tenants, origin, &azure)?;
        warnings.extend(in_tenants.into_iter().map(unknown));
        Ok(Config {
            scan_id: text(self.scan_id).filter(|s| !s.trim().is_empty()),
            seed_tag: text(self.seed_tag)
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_SEED_TAG.into()),
            delete_stale_seeds: flag(self.delete_stale_seeds).unwrap_or(false),
            http: http_settings(self.http),
            azure,
            asm: AsmSettings {
                base_url: self
                    .asm
                    .base_url
                    .map_or_else(|| DEFAULT_ASM_BASE_URL.to_string(), |BaseUrl(url)| url),
                seed_types: self.asm.seed_types.map_or_else(all_seed_types, |SeedTypes(set)| set),
            },
            sync: sync_settings(self.sync, !other_connectors.is_empty()),
            ledger: LedgerSettings {
                kind: self.ledger.kind.unwrap_or(LedgerKind::Auto),
                path: text(self.ledger.path).map(PathBuf::from),
                table: text(self.ledger.table).unwrap_or_else(|| DEFAULT_LEDGER_TABLE.into()),
            },
            events,
            retry: retry_settings(self.retry),
            api_key: None,
            origin: origin.to_string(),
            warnings,
        })
    }
}

/// `azure.*` but `azure.tenants` (read last, against these settings).
fn azure_settings(
    raw: RawAzure,
    origin: &str,
    env: &dyn EnvSource,
    warnings: &mut Vec<String>,
) -> Result<AzureSettings, ConfigError> {
    let mut checks = EnabledChecks::all();
    // In the order of the checks, not of the file: the set's contents compare equal either way,
    // but its list would not.
    for check in ServiceCheck::ALL {
        if let Some((_, on)) = raw.services.0.iter().find(|(c, _)| c == check) {
            checks.set(*check, *on);
        }
    }
    let enabled = flag(raw.enabled).unwrap_or(true);
    if !enabled {
        warnings.push(format!("{origin}: azure.enabled is false: no Azure service check runs"));
        checks = EnabledChecks::none();
    }
    let cloud = raw.cloud.unwrap_or(Cloud::Public);
    let endpoints = raw.endpoints;
    Ok(AzureSettings {
        enabled,
        credential: raw.credential.unwrap_or(CredentialKind::Auto),
        managed_identity_client_id: text(raw.managed_identity_client_id),
        cloud,
        resource_manager: endpoints
            .resource_manager
            .map_or_else(|| cloud.resource_manager().to_string(), |BaseUrl(url)| url),
        service_bus: endpoints.service_bus.map(|BaseUrl(url)| url),
        authority: authority_host(endpoints.authority, cloud, env)?,
        subscriptions: list(raw.subscriptions),
        exclude_subscriptions: list(raw.exclude_subscriptions),
        management_groups: list(raw.management_groups),
        tenants: Vec::new(),
        checks,
    })
}

/// `azure.endpoints.authority`, else `AZURE_AUTHORITY_HOST`, else the cloud's host. An explicit
/// `azure.cloud` does not hide `AZURE_AUTHORITY_HOST` (it does in `azure_identity`).
fn authority_host(key: Option<AuthorityUrl>, cloud: Cloud, env: &dyn EnvSource) -> Result<String, ConfigError> {
    if let Some(AuthorityUrl(url)) = key {
        return Ok(url);
    }
    match env.var(env::AZURE_AUTHORITY_HOST).filter(|v| !v.trim().is_empty()) {
        Some(url) => super::values::check_authority_url(url.trim())
            .map_err(|why| invalid("environment", env::AZURE_AUTHORITY_HOST, quoted(url.trim()), why)),
        None => Ok(cloud.authority_host().to_string()),
    }
}

/// The Hexiosec `aws` and `gcp` blocks: seedwatch reads neither, and says so. Returns the
/// connectors enabled there: those may tag their seeds with our `seed_tag` in the same scan.
fn other_connectors(
    aws: &Option<super::raw::OtherConnector>,
    gcp: &Option<super::raw::OtherConnector>,
    origin: &str,
    warnings: &mut Vec<String>,
) -> Vec<&'static str> {
    let mut enabled = Vec::new();
    for (block, present) in [("aws", aws), ("gcp", gcp)] {
        let Some(present) = present else { continue };
        if present.enabled {
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
    enabled
}

fn http_settings(raw: RawHttp) -> HttpSettings {
    HttpSettings {
        retry_count: Count::nonzero_or(raw.retry_count, 4),
        retry_base_delay: Seconds::or_default(raw.retry_base_delay, Duration::from_secs(1)),
        retry_max_delay: Seconds::or_default(raw.retry_max_delay, Duration::from_secs(5)),
        timeout: Seconds::or_default(raw.timeout, Duration::from_secs(30)),
    }
}

/// `sync.*`; `other_connectors`: an enabled `aws` or `gcp` block implies `shared_tag`.
fn sync_settings(raw: RawSync, other_connectors: bool) -> SyncSettings {
    SyncSettings {
        max_delete_fraction: raw.max_delete_fraction.map_or(0.25, |Fraction(f)| f),
        shared_tag: flag(raw.shared_tag).unwrap_or(false) || other_connectors,
        graph_lag: Seconds::or_absent(raw.graph_lag, DEFAULT_GRAPH_LAG),
        fanout_threshold: Count::nonzero_or(raw.fanout_threshold, 50),
        fanout_batch: Count::nonzero_or(raw.fanout_batch, 20),
    }
}

fn event_settings(raw: RawEvents, origin: &str) -> Result<EventSettings, ConfigError> {
    let defaults = EventSettings::default();
    let events = EventSettings {
        coalesce_window: Seconds::or_absent(raw.coalesce_window, defaults.coalesce_window),
        concurrency: Count::nonzero_or(raw.concurrency, defaults.concurrency),
        clock_skew: Seconds::or_absent(raw.clock_skew, defaults.clock_skew),
        deadline: Seconds::or_default(raw.deadline, defaults.deadline),
    };
    // Event Grid gives up on an answer after 30 s
    // (https://learn.microsoft.com/azure/event-grid/delivery-and-retry); queueing what is
    // left needs a little time after the deadline.
    if events.deadline > Duration::from_secs(25) {
        return Err(invalid(
            origin,
            "events.deadline",
            quoted(&format!("{:?}", events.deadline)),
            "expected at most 25s (Event Grid waits 30s for an answer)",
        ));
    }
    // Every invocation of a burst waits out the window: keep it well inside the host's
    // function timeout and Event Grid's delivery timeout.
    if events.coalesce_window > Duration::from_secs(30) {
        return Err(invalid(
            origin,
            "events.coalesce_window",
            quoted(&format!("{:?}", events.coalesce_window)),
            "expected at most 30s (each event's invocation waits for the window)",
        ));
    }
    Ok(events)
}

fn retry_settings(raw: RawRetry) -> RetrySettings {
    RetrySettings {
        base_delay: Seconds::or_default(raw.base_delay, Duration::from_secs(30)),
        max_delay: Seconds::or_default(raw.max_delay, Duration::from_secs(3600)),
        max_attempts: Count::nonzero_or(raw.max_attempts, 8),
    }
}
