//! Reading the live Azure estate: credentials, Resource Graph sweeps, ARM reads.
//!
//! - [`azure_from_config`] builds the live reader and the token source from the configuration:
//!   what `sync`, `apply`, `serve` and `plan` call.
//! - [`credential`]: `azure.credential` over `azure_identity` ([`TokenSource`]).
//! - [`live`]: [`LiveAzure`], the [`AzureReader`] over ARM ([`arm`]) and Resource Graph ([`graph`]).
//! - [`catalog`]: type → api-version → check → where a sweep finds it.
//! - [`owner`]: which owner's seeds an id's change touches (pure).
//! - `reads`: one owner and its companions, a sweep's ARM children.
//! - `access`: what the doctor reads about access and event delivery (subscriptions, role
//!   assignments, Event Grid event subscriptions), typed.

pub(crate) mod access;
pub mod arm;
pub mod catalog;
pub mod certificate;
pub mod credential;
pub(crate) mod graph;
pub(crate) mod live;
pub(crate) mod progress;
pub(crate) mod quota;
pub(crate) mod shared_quota;
pub mod tenants;
mod tenants_sweep;
pub(crate) mod token_cache;

mod reads;
mod sweep;

use std::sync::Arc;

use async_trait::async_trait;

pub use crate::domain::completeness::{CompletenessReport, Incomplete, IncompleteScope, TenantScopes};
pub use crate::domain::owner::{Owner, owner_of};
pub use live::{LiveAzure, ScopeSettings};
pub use sweep::ExtractedPart;

use crate::domain::check::EnabledChecks;
use crate::domain::resource::{Resource, ResourceId};

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
    pub extraction: crate::domain::extract::Extraction,
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
        let extraction = crate::domain::extract::extract_resources(&sweep.resources, checks);
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
    async fn bearer(&self, scope: &str) -> Result<crate::domain::secret::Secret, AzureError>;
}

/// A fixed token, for tests and for fakes that do not check tokens.
pub struct StaticToken(pub crate::domain::secret::Secret);

#[async_trait]
impl TokenSource for StaticToken {
    async fn bearer(&self, _scope: &str) -> Result<crate::domain::secret::Secret, AzureError> {
        Ok(self.0.clone())
    }
}

/// The live reader and the token source it uses.
pub(crate) type AzureHandles = (Arc<dyn AzureReader>, Arc<dyn TokenSource>);

/// Builds the live reader and the token source from the configuration: `azure.credential`
/// (see [`credential`]), `azure.cloud` / `azure.endpoints.resource_manager`, `http.*` retries
/// and timeout, and the subscription scope. Offline and synchronous: no token is fetched until
/// the first request. The token source is shared with the other Azure clients (Service Bus,
/// Table Storage), which ask it for their own scopes.
pub(crate) fn azure_from_config(
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
pub(crate) fn live_sharing_graph_quota(
    config: &crate::config::Config,
    tokens: Arc<dyn TokenSource>,
    tuning: arm::Tuning,
    gate: Option<Arc<dyn quota::GraphQuotaGate>>,
) -> LiveAzure {
    let mut arm = arm::Arm::new(
        crate::adapters::http::client(config.http.timeout),
        &config.azure.resource_manager,
        config.azure.cloud.management_scope(),
        tokens,
        crate::adapters::http::RetryPolicy::from_settings(&config.http),
        tuning,
    );
    if let Some(gate) = gate {
        arm = arm.with_graph_gate(gate);
    }
    LiveAzure::new(Arc::new(arm), ScopeSettings::from_settings(&config.azure))
}
