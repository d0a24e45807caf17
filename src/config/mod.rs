//! Configuration: the Hexiosec connector's `config.yml`, unchanged, plus seedwatch's own keys.
//!
//! Loading order (as the Hexiosec connector): the YAML in `CONNECTOR_CONFIG` if set, else the
//! file from `--config` (default `./config.yml`); then the env overrides `SCAN_ID`, `SEED_TAG`,
//! `DELETE_STALE_SEEDS` and `API_KEY`. Unknown keys are warned about; a bad value is an error
//! naming the key, the value and where it came from.

mod duration;
mod schema;
pub mod tenants;
pub mod url;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::domain::check::{EnabledChecks, ServiceCheck};
use crate::domain::secret::Secret;

pub use duration::parse_duration;

/// Names of every environment variable and app setting seedwatch reads, in one place so the
/// deployment templates can be checked against them.
pub mod env {
    pub const CONNECTOR_CONFIG: &str = "CONNECTOR_CONFIG";
    pub const SCAN_ID: &str = "SCAN_ID";
    pub const SEED_TAG: &str = "SEED_TAG";
    pub const DELETE_STALE_SEEDS: &str = "DELETE_STALE_SEEDS";
    pub const API_KEY: &str = "API_KEY";
    pub const LOG_LEVEL: &str = "LOG_LEVEL";
    /// The Functions host's storage connection string; also selects the Table Storage ledger.
    pub const AZURE_WEB_JOBS_STORAGE: &str = "AzureWebJobsStorage";
    /// Identity-based host storage: the account name (Entra ID tokens, no key).
    pub const AZURE_WEB_JOBS_STORAGE_ACCOUNT_NAME: &str = "AzureWebJobsStorage__accountName";
    /// Identity-based host storage: the table service URI (wins over the account name).
    pub const AZURE_WEB_JOBS_STORAGE_TABLE_SERVICE_URI: &str = "AzureWebJobsStorage__tableServiceUri";
    /// Set by the Functions host: the port `seedwatch serve` listens on (127.0.0.1).
    pub const FUNCTIONS_CUSTOMHANDLER_PORT: &str = "FUNCTIONS_CUSTOMHANDLER_PORT";
    /// Identity-based Service Bus connection (the `retry` trigger's `connection` prefix):
    /// the namespace host, `mysbns.servicebus.windows.net`.
    pub const SERVICE_BUS_NAMESPACE: &str = "ServiceBusConnection__fullyQualifiedNamespace";
    /// A Service Bus connection string (`Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…`),
    /// the alternative to the identity-based setting.
    pub const SERVICE_BUS_CONNECTION: &str = "ServiceBusConnection";
    /// The retry queue's name (the `retry` trigger's `queueName: %RETRY_QUEUE%`).
    pub const RETRY_QUEUE: &str = "RETRY_QUEUE";
    /// The reconcile timer's NCRONTAB schedule (`reconcile` trigger's `schedule`), read by the
    /// host; seedwatch reads it only to tell an overdue reconcile (`status`). The template must
    /// set it (default `0 0 */6 * * *`).
    pub const RECONCILE_SCHEDULE: &str = "RECONCILE_SCHEDULE";
    /// The Entra ID authority host, as every Azure SDK reads it (`azure.endpoints.authority`
    /// wins over it).
    pub const AZURE_AUTHORITY_HOST: &str = "AZURE_AUTHORITY_HOST";
    /// A PEM bundle of extra root certificates every HTTP client trusts (TLS-inspecting
    /// proxies, private CAs).
    pub const SSL_CERT_FILE: &str = "SSL_CERT_FILE";
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    Auto,
    ManagedIdentity,
    WorkloadIdentity,
    ClientSecret,
    ClientCertificate,
    AzureCli,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    Public,
    UsGovernment,
    China,
}

impl Cloud {
    pub fn resource_manager(self) -> &'static str {
        match self {
            Cloud::Public => "https://management.azure.com",
            Cloud::UsGovernment => "https://management.usgovcloudapi.net",
            Cloud::China => "https://management.chinacloudapi.cn",
        }
    }

    /// Token scope for ARM and Resource Graph.
    pub fn management_scope(self) -> &'static str {
        match self {
            Cloud::Public => "https://management.azure.com/.default",
            Cloud::UsGovernment => "https://management.usgovcloudapi.net/.default",
            Cloud::China => "https://management.chinacloudapi.cn/.default",
        }
    }

    /// The Entra ID authority host for this cloud.
    pub fn authority_host(self) -> &'static str {
        match self {
            Cloud::Public => "https://login.microsoftonline.com",
            Cloud::UsGovernment => "https://login.microsoftonline.us",
            Cloud::China => "https://login.chinacloudapi.cn",
        }
    }

    pub fn service_bus_suffix(self) -> &'static str {
        match self {
            Cloud::Public => "servicebus.windows.net",
            Cloud::UsGovernment => "servicebus.usgovcloudapi.net",
            Cloud::China => "servicebus.chinacloudapi.cn",
        }
    }

    pub fn table_suffix(self) -> &'static str {
        match self {
            Cloud::Public => "table.core.windows.net",
            Cloud::UsGovernment => "table.core.usgovcloudapi.net",
            Cloud::China => "table.core.chinacloudapi.cn",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerKind {
    Auto,
    Table,
    Local,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    pub retry_count: u32,
    pub retry_base_delay: Duration,
    pub retry_max_delay: Duration,
    /// Per-request timeout for ASM and Azure calls.
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AzureSettings {
    pub enabled: bool,
    pub credential: CredentialKind,
    pub managed_identity_client_id: Option<String>,
    pub cloud: Cloud,
    /// ARM and Resource Graph base URL; `http://` allowed only to a loopback address (tests).
    pub resource_manager: String,
    /// Service Bus base URL override (`http://127.0.0.1:9000`); normally derived from the namespace.
    pub service_bus: Option<String>,
    /// The Entra ID authority host (`https://` only): `azure.endpoints.authority`, else
    /// `AZURE_AUTHORITY_HOST`, else the cloud's.
    pub authority: String,
    pub subscriptions: Vec<String>,
    pub exclude_subscriptions: Vec<String>,
    pub management_groups: Vec<String>,
    /// `azure.tenants`: several connections, each with its tenant, credential and scope; empty
    /// means the single connection above.
    pub tenants: Vec<tenants::TenantConnection>,
    pub checks: EnabledChecks,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AsmSettings {
    pub base_url: String,
    /// `asm.seed_types`: the seed types sent to ASM, spelled as the ASM API spells them
    /// (`domain`, `ipv4`, `ipv6`, `iprange`); all four by default. Seeds of another type are
    /// left out of the desired set, as a disabled service check's are.
    pub seed_types: std::collections::BTreeSet<crate::domain::seed::SeedKind>,
}

/// Every seed type, the default of `asm.seed_types`.
pub fn all_seed_types() -> std::collections::BTreeSet<crate::domain::seed::SeedKind> {
    use crate::domain::seed::SeedKind;
    [SeedKind::Domain, SeedKind::Ipv4, SeedKind::Ipv6, SeedKind::IpRange]
        .into_iter()
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyncSettings {
    /// The deletion breaker: the most a reconcile deletes, and the most events and applies
    /// delete over a rolling hour, as a share of the tagged seeds (`sync.max_delete_fraction`).
    pub max_delete_fraction: f64,
    /// Another connector (Hexiosec's AWS or GCP one) may put seeds with our `seed_tag` in the
    /// scan (`sync.shared_tag`, or implied by an enabled `aws`/`gcp` block): a tagged seed is
    /// then deleted only with Azure provenance in the ledger.
    pub shared_tag: bool,
    /// How far Resource Graph may lag behind ARM (`sync.graph_lag`): an owner the ledger read
    /// this long before a sweep started, or later, is taken from the ledger, not the sweep.
    pub graph_lag: Duration,
    /// Above this many subscriptions in scope (`sync.fanout_threshold`, default 50), the timer
    /// reconcile fans out: one retry-queue job per batch of subscriptions.
    pub fanout_threshold: u32,
    /// Subscriptions per fanned-out job (`sync.fanout_batch`, default 20).
    pub fanout_batch: u32,
}

/// The default `sync.graph_lag`: Resource Graph indexes changes seconds to minutes after ARM.
pub const DEFAULT_GRAPH_LAG: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq)]
pub struct LedgerSettings {
    pub kind: LedgerKind,
    pub path: Option<PathBuf>,
    pub table: String,
}

/// How the handler coalesces resource events (`events.*`).
#[derive(Debug, Clone, PartialEq)]
pub struct EventSettings {
    /// How long a resource's first event waits for the rest of its burst before the one read
    /// (`events.coalesce_window`; 0 applies at once).
    pub coalesce_window: Duration,
    /// Applies running at once in one instance (`events.concurrency`).
    pub concurrency: u32,
    /// How far the event publisher's clock may be from ours (`events.clock_skew`): an event
    /// dated at least this long before a read started is covered by that read.
    pub clock_skew: Duration,
    /// How long an Event Grid invocation may work before it answers (`events.deadline`):
    /// Event Grid waits 30 s for an answer, then counts the delivery failed and redelivers the
    /// whole batch; what is not finished by the deadline is queued to the retry queue.
    pub deadline: Duration,
}

impl Default for EventSettings {
    fn default() -> EventSettings {
        EventSettings {
            coalesce_window: Duration::from_secs(1),
            concurrency: 32,
            clock_skew: Duration::from_secs(2),
            deadline: Duration::from_secs(20),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetrySettings {
    pub base_delay: Duration,
    pub max_delay: Duration,
    pub max_attempts: u32,
}

/// The loaded configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub scan_id: Option<String>,
    pub seed_tag: String,
    pub delete_stale_seeds: bool,
    pub http: HttpSettings,
    pub azure: AzureSettings,
    pub asm: AsmSettings,
    pub sync: SyncSettings,
    pub ledger: LedgerSettings,
    pub events: EventSettings,
    pub retry: RetrySettings,
    /// The ASM API key from `API_KEY`; never printed.
    pub api_key: Option<Secret>,
    /// Where the YAML came from (`CONNECTOR_CONFIG`, a file path, or `defaults`).
    pub origin: String,
    /// Unknown keys and ignored blocks, for the caller to log.
    pub warnings: Vec<String>,
}

pub const DEFAULT_SEED_TAG: &str = "cloud-connector";
pub const DEFAULT_ASM_BASE_URL: &str = "https://asm.hexiosec.com/api";
pub const DEFAULT_LEDGER_TABLE: &str = "seedwatch";

/// What the caller asks of the loader.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// `--config FILE`; `None` means the default `./config.yml`.
    pub file: Option<PathBuf>,
    /// Whether a missing file is an error (`sync`, `serve`) or means defaults (`plan`).
    pub require_file: bool,
}

impl Config {
    /// Loads from `CONNECTOR_CONFIG` or the file, then applies the env overrides.
    pub fn load(options: &LoadOptions, env: &dyn EnvSource) -> Result<Config, ConfigError> {
        let (text, origin) = match env.var(env::CONNECTOR_CONFIG) {
            Some(text) if text.trim().is_empty() => {
                return Err(ConfigError::Read {
                    origin: env::CONNECTOR_CONFIG.into(),
                    message: "is set but empty".into(),
                });
            }
            Some(text) => (Some(text), env::CONNECTOR_CONFIG.to_string()),
            None => {
                let explicit = options.file.is_some();
                let path = options.file.clone().unwrap_or_else(|| PathBuf::from("config.yml"));
                match read_file(&path) {
                    Ok(text) => (Some(text), path.display().to_string()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit && !options.require_file => {
                        (None, "defaults".to_string())
                    }
                    Err(e) => {
                        let message = if e.kind() == std::io::ErrorKind::NotFound {
                            format!("not found (and {} is not set)", env::CONNECTOR_CONFIG)
                        } else {
                            format!("cannot read: {e}")
                        };
                        return Err(ConfigError::Read {
                            origin: path.display().to_string(),
                            message,
                        });
                    }
                }
            }
        };
        let value = match text {
            Some(text) => parse_yaml(&text, &origin)?,
            None => Value::Object(Default::default()),
        };
        Config::from_value(&value, &origin, env)
    }

    /// Builds the configuration from parsed YAML (`origin` names it in errors) and the env.
    pub fn from_value(value: &Value, origin: &str, env: &dyn EnvSource) -> Result<Config, ConfigError> {
        let empty = Value::Object(Default::default());
        let root = match value {
            Value::Null => &empty,
            Value::Object(_) => value,
            other => {
                return Err(ConfigError::Invalid {
                    origin: origin.into(),
                    key: "(top level)".into(),
                    value: schema::show(other),
                    expected: "expected a mapping of keys".into(),
                });
            }
        };
        let mut warnings = Vec::new();
        schema::unknown_keys(root, origin, &mut warnings);
        let r = schema::Reader { root, origin };

        let mut checks = EnabledChecks::all();
        for check in ServiceCheck::ALL {
            let key = format!("azure.services.{}", check.toggle());
            if let Some(on) = r.bool(&key)? {
                checks.set(*check, on);
            }
        }
        let azure_enabled = r.bool("azure.enabled")?.unwrap_or(true);
        if !azure_enabled {
            warnings.push(format!("{origin}: azure.enabled is false: no Azure service check runs"));
            checks = EnabledChecks::none();
        }
        let cloud = match r.string("azure.cloud")?.as_deref() {
            None | Some("public") => Cloud::Public,
            Some("usgovernment") => Cloud::UsGovernment,
            Some("china") => Cloud::China,
            Some(other) => return Err(r.invalid("azure.cloud", other, "expected public, usgovernment or china")),
        };
        let credential = match r.string("azure.credential")?.as_deref() {
            None | Some("auto") => CredentialKind::Auto,
            Some("managed_identity") => CredentialKind::ManagedIdentity,
            Some("workload_identity") => CredentialKind::WorkloadIdentity,
            Some("client_secret") => CredentialKind::ClientSecret,
            Some("client_certificate") => CredentialKind::ClientCertificate,
            Some("azure_cli") => CredentialKind::AzureCli,
            Some(other) => {
                return Err(r.invalid(
                    "azure.credential",
                    other,
                    "expected auto, managed_identity, workload_identity, client_secret, client_certificate or azure_cli",
                ));
            }
        };
        let resource_manager = match r.string("azure.endpoints.resource_manager")? {
            Some(url) => r.base_url("azure.endpoints.resource_manager", &url)?,
            None => cloud.resource_manager().to_string(),
        };
        let service_bus = match r.string("azure.endpoints.service_bus")? {
            Some(url) => Some(r.base_url("azure.endpoints.service_bus", &url)?),
            None => None,
        };
        let authority = schema::authority_host(&r, cloud, env)?;
        let asm_base = match r.string("asm.base_url")? {
            Some(url) => r.base_url("asm.base_url", &url)?,
            None => DEFAULT_ASM_BASE_URL.to_string(),
        };
        let seed_types = schema::seed_types(&r, "asm.seed_types")?;
        let ledger_kind = match r.string("ledger.kind")?.as_deref() {
            None | Some("auto") => LedgerKind::Auto,
            Some("table") => LedgerKind::Table,
            Some("local") => LedgerKind::Local,
            Some(other) => return Err(r.invalid("ledger.kind", other, "expected auto, table or local")),
        };
        let max_delete_fraction = r.fraction("sync.max_delete_fraction")?.unwrap_or(0.25);
        let other_connectors = schema::other_connectors(root, origin, &r, &mut warnings)?;
        let shared_tag = r.bool("sync.shared_tag")?.unwrap_or(false) || !other_connectors.is_empty();
        let graph_lag = r.duration_or_zero("sync.graph_lag", DEFAULT_GRAPH_LAG)?;
        let fanout_threshold = r.nonzero_or("sync.fanout_threshold", 50)?;
        let fanout_batch = r.nonzero_or("sync.fanout_batch", 20)?;

        let http = HttpSettings {
            retry_count: r.nonzero_or("http.retry_count", 4)?,
            retry_base_delay: r.duration_or("http.retry_base_delay", Duration::from_secs(1))?,
            retry_max_delay: r.duration_or("http.retry_max_delay", Duration::from_secs(5))?,
            timeout: r.duration_or("http.timeout", Duration::from_secs(30))?,
        };
        let defaults = EventSettings::default();
        let events = EventSettings {
            coalesce_window: r.duration_or_zero("events.coalesce_window", defaults.coalesce_window)?,
            concurrency: r.nonzero_or("events.concurrency", defaults.concurrency)?,
            clock_skew: r.duration_or_zero("events.clock_skew", defaults.clock_skew)?,
            deadline: r.duration_or("events.deadline", defaults.deadline)?,
        };
        // Event Grid gives up on an answer after 30 s
        // (https://learn.microsoft.com/azure/event-grid/delivery-and-retry); queueing what is
        // left needs a little time after the deadline.
        if events.deadline > Duration::from_secs(25) {
            return Err(r.invalid(
                "events.deadline",
                &format!("{:?}", events.deadline),
                "expected at most 25s (Event Grid waits 30s for an answer)",
            ));
        }
        // Every invocation of a burst waits out the window: keep it well inside the host's
        // function timeout and Event Grid's delivery timeout.
        if events.coalesce_window > Duration::from_secs(30) {
            return Err(r.invalid(
                "events.coalesce_window",
                &format!("{:?}", events.coalesce_window),
                "expected at most 30s (each event's invocation waits for the window)",
            ));
        }
        let retry = RetrySettings {
            base_delay: r.duration_or("retry.base_delay", Duration::from_secs(30))?,
            max_delay: r.duration_or("retry.max_delay", Duration::from_secs(3600))?,
            max_attempts: r.nonzero_or("retry.max_attempts", 8)?,
        };

        let mut config = Config {
            scan_id: r.string("scan_id")?.filter(|s| !s.trim().is_empty()),
            seed_tag: r
                .string("seed_tag")?
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_SEED_TAG.into()),
            delete_stale_seeds: r.bool("delete_stale_seeds")?.unwrap_or(false),
            http,
            azure: AzureSettings {
                enabled: azure_enabled,
                credential,
                managed_identity_client_id: r.string("azure.managed_identity_client_id")?,
                cloud,
                resource_manager,
                service_bus,
                authority,
                subscriptions: r.string_list("azure.subscriptions")?,
                exclude_subscriptions: r.string_list("azure.exclude_subscriptions")?,
                management_groups: r.string_list("azure.management_groups")?,
                tenants: Vec::new(),
                checks,
            },
            asm: AsmSettings {
                base_url: asm_base,
                seed_types,
            },
            sync: SyncSettings {
                max_delete_fraction,
                shared_tag,
                graph_lag,
                fanout_threshold,
                fanout_batch,
            },
            ledger: LedgerSettings {
                kind: ledger_kind,
                path: r.string("ledger.path")?.map(PathBuf::from),
                table: r.string("ledger.table")?.unwrap_or_else(|| DEFAULT_LEDGER_TABLE.into()),
            },
            events,
            retry,
            api_key: None,
            origin: origin.to_string(),
            warnings,
        };
        config.azure.tenants = tenants::read(root, origin, &config.azure, &mut config.warnings)?;
        config.apply_env(env)?;
        Ok(config)
    }

    fn apply_env(&mut self, env: &dyn EnvSource) -> Result<(), ConfigError> {
        if let Some(scan) = env.var(env::SCAN_ID).filter(|s| !s.trim().is_empty()) {
            self.scan_id = Some(scan.trim().to_string());
        }
        if let Some(tag) = env.var(env::SEED_TAG).filter(|s| !s.trim().is_empty()) {
            self.seed_tag = tag.trim().to_string();
        }
        if let Some(raw) = env.var(env::DELETE_STALE_SEEDS).filter(|s| !s.trim().is_empty()) {
            self.delete_stale_seeds = schema::parse_bool_text(&raw).ok_or_else(|| ConfigError::Invalid {
                origin: "environment".into(),
                key: env::DELETE_STALE_SEEDS.into(),
                value: format!("{raw:?}"),
                expected: "expected true or false".into(),
            })?;
        }
        if let Some(key) = env.var(env::API_KEY).filter(|s| !s.trim().is_empty()) {
            self.api_key = Some(Secret::new(key.trim().to_string()));
        }
        Ok(())
    }

    /// The scan id, or an error saying how to set it.
    pub fn require_scan_id(&self) -> Result<&str, ConfigError> {
        self.scan_id.as_deref().ok_or_else(|| ConfigError::Missing {
            key: "scan_id".into(),
            hint: format!("set scan_id in {} or the SCAN_ID environment variable", self.origin),
        })
    }

    /// The ASM API key, or an error saying how to set it.
    pub fn require_api_key(&self) -> Result<&Secret, ConfigError> {
        self.api_key.as_ref().ok_or_else(|| ConfigError::Missing {
            key: env::API_KEY.into(),
            hint: "set the API_KEY environment variable to the Hexiosec ASM API key".into(),
        })
    }
}

fn read_file(path: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    String::from_utf8(bytes).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

fn parse_yaml(text: &str, origin: &str) -> Result<Value, ConfigError> {
    serde_saphyr::from_str::<Value>(text).map_err(|e| ConfigError::Yaml {
        origin: origin.to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests;
