//! Configuration: the Hexiosec connector's `config.yml`, unchanged, plus seedwatch's own keys.
//!
//! Loading order (as the Hexiosec connector): the YAML in `CONNECTOR_CONFIG` if set, else the
//! file from `--config` (default `./config.yml`); then the env overrides `SCAN_ID`, `SEED_TAG`,
//! `DELETE_STALE_SEEDS` and `API_KEY`. Unknown keys are warned about; a bad value is an error
//! naming the key, the value and where it came from.
//!
//! The file's shape is a set of derived structs (`raw`), read through `serde_ignored` (unknown
//! keys, with their full path) and `serde_path_to_error` (the key of a bad value); `convert` then
//! checks them into the typed [`Config`].

mod convert;
mod duration;
mod load;
mod raw;
pub mod tenants;
mod types;
pub(crate) mod url;
mod values;

pub use duration::parse_duration;
pub use types::*;

/// Names of every environment variable and app setting seedwatch reads, in one place so the
/// deployment templates can be checked against them.
pub mod env {
    pub(crate) const CONNECTOR_CONFIG: &str = "CONNECTOR_CONFIG";
    pub(crate) const SCAN_ID: &str = "SCAN_ID";
    pub(crate) const SEED_TAG: &str = "SEED_TAG";
    pub(crate) const DELETE_STALE_SEEDS: &str = "DELETE_STALE_SEEDS";
    pub(crate) const API_KEY: &str = "API_KEY";
    pub(crate) const LOG_LEVEL: &str = "LOG_LEVEL";
    /// The Functions host's storage connection string; also selects the Table Storage ledger.
    pub const AZURE_WEB_JOBS_STORAGE: &str = "AzureWebJobsStorage";
    /// Identity-based host storage: the account name (Entra ID tokens, no key).
    pub(crate) const AZURE_WEB_JOBS_STORAGE_ACCOUNT_NAME: &str = "AzureWebJobsStorage__accountName";
    /// Identity-based host storage: the table service URI (wins over the account name).
    pub(crate) const AZURE_WEB_JOBS_STORAGE_TABLE_SERVICE_URI: &str = "AzureWebJobsStorage__tableServiceUri";
    /// Set by the Functions host: the port `seedwatch serve` listens on (127.0.0.1).
    pub(crate) const FUNCTIONS_CUSTOMHANDLER_PORT: &str = "FUNCTIONS_CUSTOMHANDLER_PORT";
    /// Identity-based Service Bus connection (the `retry` trigger's `connection` prefix):
    /// the namespace host, `mysbns.servicebus.windows.net`.
    pub(crate) const SERVICE_BUS_NAMESPACE: &str = "ServiceBusConnection__fullyQualifiedNamespace";
    /// A Service Bus connection string (`Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…`),
    /// the alternative to the identity-based setting.
    pub(crate) const SERVICE_BUS_CONNECTION: &str = "ServiceBusConnection";
    /// The retry queue's name (the `retry` trigger's `queueName: %RETRY_QUEUE%`).
    pub(crate) const RETRY_QUEUE: &str = "RETRY_QUEUE";
    /// The reconcile timer's NCRONTAB schedule (`reconcile` trigger's `schedule`), read by the
    /// host; seedwatch reads it only to tell an overdue reconcile (`status`). The template must
    /// set it (default `0 0 */6 * * *`).
    pub(crate) const RECONCILE_SCHEDULE: &str = "RECONCILE_SCHEDULE";
    /// The Entra ID authority host, as every Azure SDK reads it (`azure.endpoints.authority`
    /// wins over it).
    pub(crate) const AZURE_AUTHORITY_HOST: &str = "AZURE_AUTHORITY_HOST";
    /// A PEM bundle of extra root certificates every HTTP client trusts (TLS-inspecting
    /// proxies, private CAs).
    pub(crate) const SSL_CERT_FILE: &str = "SSL_CERT_FILE";
}

/// Where configuration values are read from; the process environment in production, a map in
/// tests (edition 2024 makes `set_var` unsafe, and tests run in parallel).
pub trait EnvSource: Send + Sync {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl EnvSource for std::collections::HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{origin}: {message}")]
    Read { origin: String, message: String },
    #[error("{origin}: not valid YAML: {message}")]
    Yaml { origin: String, message: String },
    #[error("{origin}: {key} = {value}: {expected}")]
    Invalid {
        origin: String,
        key: String,
        value: String,
        expected: String,
    },
    #[error("{key} is not set: {hint}")]
    Missing { key: String, hint: String },
}

#[cfg(test)]
mod tests;
