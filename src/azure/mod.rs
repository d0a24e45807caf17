//! Reading the live Azure estate: credentials, Resource Graph sweeps, ARM reads.
//!
//! - [`azure_from_config`] builds the live reader and the token source from the configuration:
//!   what `sync`, `apply`, `serve` and `plan` call.
//! - [`credential`]: `azure.credential` over `azure_identity` ([`TokenSource`]).
//! - [`live`]: [`LiveAzure`], the [`AzureReader`] over ARM ([`arm`]) and Resource Graph ([`graph`]).
//! - [`catalog`]: type → api-version → check → where a sweep finds it.
//! - [`owner`]: which owner's seeds an id's change touches (pure).
//! - `reads`: one owner and its companions, a sweep's ARM children.

pub mod arm;
pub mod catalog;
pub mod certificate;
pub mod credential;
pub mod graph;
pub mod live;
pub mod owner;
pub mod progress;
pub mod quota;
pub mod tenants;
mod tenants_sweep;
pub mod token_cache;

mod reads;
mod sweep;

use std::sync::Arc;

use async_trait::async_trait;

pub use live::{LiveAzure, ScopeSettings};
pub use owner::{Owner, owner_of};
pub use sweep::ExtractedPart;

use crate::check::{EnabledChecks, ServiceCheck};
use crate::resource::{Resource, ResourceId};

/// Why a (subscription, check) scope was not read completely.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Incomplete {
    Unauthorized { message: String },
    Forbidden { message: String },
    Throttled { message: String },
    Timeout { message: String },
    Failed { message: String },
}

/// For every (subscription, check): read fully or not, and why.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CompletenessReport {
    /// Subscriptions in scope of the sweep.
    pub subscriptions: Vec<String>,
    /// Scopes that were not read completely. A scope absent here was read completely.
    pub incomplete: Vec<IncompleteScope>,
    /// True when the list of subscriptions itself could not be read: nothing is complete.
    pub scope_unknown: bool,
    /// Messages for the operator (disabled subscriptions skipped, no subscription visible, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// With `azure.tenants`: each connection's tenant and the subscriptions read through it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<TenantScopes>,
}

/// One connection's part of a sweep (`azure.tenants`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TenantScopes {
    pub tenant: String,
    /// The subscriptions read through this connection.
    pub subscriptions: Vec<String>,
    /// Whether every scope of this connection was read completely.
    pub complete: bool,
    /// Why the connection's subscriptions could not even be listed (its token refused, ...):
    /// nothing of this tenant counts as read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IncompleteScope {
    pub subscription: String,
    /// `None` means every check of that subscription.
    pub check: Option<ServiceCheck>,
    #[serde(flatten)]
    pub why: Incomplete,
}

impl CompletenessReport {
    /// Whether `check` was read completely in `subscription` (case-insensitive id).
    pub fn is_complete(&self, subscription: &str, check: ServiceCheck) -> bool {
        if self.scope_unknown {
            return false;
        }
        let in_scope = self.subscriptions.iter().any(|s| s.eq_ignore_ascii_case(subscription));
        in_scope
            && !self
                .incomplete
                .iter()
                .any(|i| i.subscription.eq_ignore_ascii_case(subscription) && i.check.is_none_or(|c| c == check))
    }

    /// The tenant whose connection read `subscription` (with `azure.tenants`).
    pub fn tenant_of(&self, subscription: &str) -> Option<&str> {
        self.tenants
            .iter()
            .find(|t| t.subscriptions.iter().any(|s| s.eq_ignore_ascii_case(subscription)))
            .map(|t| t.tenant.as_str())
    }

    /// Whether every scope was read completely.
    pub fn is_fully_complete(&self) -> bool {
        !self.scope_unknown && self.incomplete.is_empty()
    }

    /// The report for people: one line when everything was read, else one line per scope
    /// that was not, with the reason and what to do.
    pub fn render_text(&self) -> String {
        let subs = self.subscriptions.len();
        let plural = if subs == 1 { "" } else { "s" };
        let mut out = String::from("Completeness: ");
        if self.scope_unknown {
            out.push_str("the subscriptions in scope could not be determined: nothing counts as read completely.\n");
        } else if self.incomplete.is_empty() {
            out.push_str(&format!(
                "{subs} subscription{plural}, every service check read completely.\n"
            ));
        } else {
            let affected: std::collections::BTreeSet<String> = self
                .incomplete
                .iter()
                .map(|i| i.subscription.to_ascii_lowercase())
                .collect();
            out.push_str(&format!(
                "{subs} subscription{plural}; {} not read completely:\n",
                affected.len()
            ));
            for entry in &self.incomplete {
                let check = entry
                    .check
                    .map_or("every check".to_string(), |c| c.toggle().to_string());
                let (reason, message) = match &entry.why {
                    Incomplete::Unauthorized { message } => ("unauthorized", message),
                    Incomplete::Forbidden { message } => ("forbidden", message),
                    Incomplete::Throttled { message } => ("throttled", message),
                    Incomplete::Timeout { message } => ("timeout", message),
                    Incomplete::Failed { message } => ("failed", message),
                };
                let tenant = self
                    .tenant_of(&entry.subscription)
                    .map_or(String::new(), |t| format!("tenant {t}, "));
                out.push_str(&format!(
                    "  {} ({tenant}{check}): {reason}: {message}\n",
                    entry.subscription
                ));
            }
        }
        for tenant in &self.tenants {
            let state = match &tenant.error {
                Some(error) => format!("could not be read: {error}"),
                None if tenant.complete => "read completely".to_string(),
                None => "not read completely".to_string(),
            };
            out.push_str(&format!(
                "  tenant {}: {} subscription(s), {state}\n",
                tenant.tenant,
                tenant.subscriptions.len()
            ));
        }
        for note in &self.notes {
            out.push_str(&format!("  note: {note}\n"));
        }
        out
    }
}

/// A whole-estate read.
#[derive(Debug, Clone, Default)]
pub struct Sweep {
    pub resources: Vec<Resource>,
    pub report: CompletenessReport,
}

/// A whole-estate read, extracted as it was read: the bodies are gone, what is kept is what
/// the reconcile needs (contributions with provenance, warnings, completeness).
#[derive(Debug, Clone, Default)]
pub struct ExtractedSweep {
    pub extraction: crate::extract::Extraction,
    pub report: CompletenessReport,
    /// Resources the sweep read (and extracted).
    pub resources_read: usize,
}

/// The result of reading one owner resource.
#[derive(Debug, Clone)]
pub enum OwnerRead {
    /// The owner and its companion reads (e.g. a storage account and its `blobServices/default`).
    Found(Vec<Resource>),
    /// ARM answered 404 with a code that says the resource does not exist
    /// ([`arm::GONE_CODES`]): the resource is gone.
    Gone,
}

#[derive(Debug, thiserror::Error)]
pub enum AzureError {
    #[error("Azure credential: {0}")]
    Credential(String),
    #[error("{status} from {what}: {message}")]
    Http { status: u16, what: String, message: String },
    #[error("throttled by Azure reading {what}")]
    Throttled { what: String },
    #[error("cannot reach Azure ({what}): {message}")]
    Transport { what: String, message: String },
    #[error("unexpected response from {what}: {message}")]
    BadResponse { what: String, message: String },
    #[error("timed out reading {what}")]
    Timeout { what: String },
    /// A 404 whose code does not say the resource is gone (`SubscriptionNotFound`,
    /// `InvalidResourceType`, no error body, ...): the identity may have lost the subscription,
    /// or ARM is misrouting. Retried, never taken as a delete.
    #[error("404 from {what} that does not say the resource is gone: {message}")]
    NotFoundUnclear { what: String, message: String },
    /// With `azure.tenants`: no connection covers the subscription; nothing is read.
    #[error("subscription {subscription} is covered by no connection of azure.tenants: not read")]
    Uncovered { subscription: String },
    #[error("seedwatch has no api-version for resource type {arm_type}: it is not a type seedwatch reads")]
    UnknownType { arm_type: String },
}

impl AzureError {
    /// Whether a later attempt may succeed (throttling, 5xx, transport).
    pub fn is_transient(&self) -> bool {
        match self {
            AzureError::Throttled { .. }
            | AzureError::Transport { .. }
            | AzureError::Timeout { .. }
            | AzureError::NotFoundUnclear { .. } => true,
            AzureError::Http { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// Progress callbacks for sweeps (a progress bar on a terminal, log lines otherwise).
pub trait SweepProgress: Send + Sync {
    fn subscriptions_found(&self, _count: usize) {}
    fn page_read(&self, _rows: usize) {}
}

/// No progress output.
pub struct NoProgress;
impl SweepProgress for NoProgress {}

/// The live estate, as the engines need it.
#[async_trait]
pub trait AzureReader: Send + Sync {
    /// Reads every resource the enabled checks need, with a completeness report.
    async fn sweep(&self, checks: &EnabledChecks, progress: &dyn SweepProgress) -> Result<Sweep, AzureError>;

    /// The same read, extracted: what the reconcile uses. The default extracts a whole
    /// [`Sweep`]; the live reader extracts each page as it arrives and keeps no body, so its
    /// memory grows with the seeds, not with the estate.
    async fn sweep_extracted(
        &self,
        checks: &EnabledChecks,
        progress: &dyn SweepProgress,
    ) -> Result<ExtractedSweep, AzureError> {
        let sweep = self.sweep(checks, progress).await?;
        let extraction = crate::extract::extract_resources(&sweep.resources, checks);
        Ok(ExtractedSweep {
            extraction,
            report: sweep.report,
            resources_read: sweep.resources.len(),
        })
    }

    /// The subscriptions a sweep would read (the allow and deny lists applied), or `None` when
    /// the reader cannot tell: what decides whether the timer reconcile fans out.
    async fn subscriptions_in_scope(&self) -> Result<Option<Vec<String>>, AzureError> {
        Ok(None)
    }

    /// Reads one owner (one ARM GET, plus companion reads its type needs).
    async fn read_owner(&self, owner: &ResourceId) -> Result<OwnerRead, AzureError>;

    /// Whether a connection covers `subscription` (always, without `azure.tenants`): a change
    /// in a subscription no connection covers is neither read nor applied.
    fn covers(&self, _subscription: &str) -> bool {
        true
    }
}

/// Bearer tokens for a scope (`https://management.azure.com/.default`,
/// `https://servicebus.azure.net/.default`, `https://storage.azure.com/.default`). Shared by
/// every Azure REST client; implemented over `azure_identity` in `credential.rs`.
#[async_trait]
pub trait TokenSource: Send + Sync {
    async fn bearer(&self, scope: &str) -> Result<crate::secret::Secret, AzureError>;
}

/// A fixed token, for tests and for fakes that do not check tokens.
pub struct StaticToken(pub crate::secret::Secret);

#[async_trait]
impl TokenSource for StaticToken {
    async fn bearer(&self, _scope: &str) -> Result<crate::secret::Secret, AzureError> {
        Ok(self.0.clone())
    }
}

/// The live reader and the token source it uses.
pub type AzureHandles = (Arc<dyn AzureReader>, Arc<dyn TokenSource>);

/// Builds the live reader and the token source from the configuration: `azure.credential`
/// (see [`credential`]), `azure.cloud` / `azure.endpoints.resource_manager`, `http.*` retries
/// and timeout, and the subscription scope. Offline and synchronous: no token is fetched until
/// the first request. The token source is shared with the other Azure clients (Service Bus,
/// Table Storage), which ask it for their own scopes.
pub fn azure_from_config(
    config: &crate::config::Config,
    env: &dyn crate::config::EnvSource,
) -> Result<AzureHandles, AzureError> {
    let options = credential::CredentialOptions {
        http_timeout: Some(config.http.timeout),
        ..Default::default()
    };
    let tokens = credential::token_source(&config.azure, env, options)?;
    let reader = tenants::reader_from_config(config, tokens.clone(), env);
    Ok((reader, tokens))
}

/// The live reader over a given token source and tuning (tests and benchmarks).
pub fn live_from_config(
    config: &crate::config::Config,
    tokens: Arc<dyn TokenSource>,
    tuning: arm::Tuning,
) -> LiveAzure {
    live_sharing_graph_quota(config, tokens, tuning, None)
}

/// The live reader, its Resource Graph queries also paced by a quota every instance shares.
pub fn live_sharing_graph_quota(
    config: &crate::config::Config,
    tokens: Arc<dyn TokenSource>,
    tuning: arm::Tuning,
    gate: Option<Arc<dyn quota::GraphQuotaGate>>,
) -> LiveAzure {
    let mut arm = arm::Arm::new(
        crate::http::client(config.http.timeout),
        &config.azure.resource_manager,
        config.azure.cloud.management_scope(),
        tokens,
        crate::http::RetryPolicy::from_settings(&config.http),
        tuning,
    );
    if let Some(gate) = gate {
        arm = arm.with_graph_gate(gate);
    }
    LiveAzure::new(Arc::new(arm), ScopeSettings::from_settings(&config.azure))
}
