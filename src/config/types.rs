//! The loaded configuration's types: what the rest of seedwatch reads.

use std::path::PathBuf;
use std::time::Duration;

use super::tenants;
use crate::domain::check::EnabledChecks;
use crate::domain::secret::Secret;

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
    pub(crate) fn resource_manager(self) -> &'static str {
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
    pub(crate) fn authority_host(self) -> &'static str {
        match self {
            Cloud::Public => "https://login.microsoftonline.com",
            Cloud::UsGovernment => "https://login.microsoftonline.us",
            Cloud::China => "https://login.chinacloudapi.cn",
        }
    }

    pub(crate) fn table_suffix(self) -> &'static str {
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
pub(crate) fn all_seed_types() -> std::collections::BTreeSet<crate::domain::seed::SeedKind> {
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
pub(crate) const DEFAULT_GRAPH_LAG: Duration = Duration::from_secs(300);

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

pub(crate) const DEFAULT_SEED_TAG: &str = "cloud-connector";
pub(crate) const DEFAULT_ASM_BASE_URL: &str = "https://asm.hexiosec.com/api";
pub(crate) const DEFAULT_LEDGER_TABLE: &str = "seedwatch";

/// What the caller asks of the loader.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// `--config FILE`; `None` means the default `./config.yml`.
    pub file: Option<PathBuf>,
    /// Whether a missing file is an error (`sync`, `serve`) or means defaults (`plan`).
    pub require_file: bool,
}
