//! Several tenants from one deployment (`azure.tenants`): one [`LiveAzure`] per connection,
//! each with its own credential and scope, behind one [`AzureReader`] that routes owner reads
//! by subscription and merges sweeps. Completeness stays per subscription; the report names
//! the tenant of each, and a connection whose subscriptions cannot even be listed (its token
//! refused) leaves its whole tenant unread, so none of its seeds can be deleted.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::credential::{self, CredentialOptions};
use super::live::LiveAzure;
use super::{
    AzureError, AzureReader, ExtractedSweep, Incomplete, IncompleteScope, OwnerRead, Sweep, SweepProgress, TokenSource,
};
use crate::config::tenants::{TenantConnection, TenantCredential};
use crate::config::{AzureSettings, Config, CredentialKind, EnvSource};
use crate::domain::check::EnabledChecks;
use crate::domain::resource::ResourceId;

/// Why one connection of `azure.tenants` has no reader: its credential could not be built.
#[derive(Debug, thiserror::Error)]
#[error("tenant {tenant}: {source}")]
pub(crate) struct ConnectionError {
    pub tenant: String,
    pub source: AzureError,
}

/// The text for a check line (`seedwatch check`, the health page) that names the connection.
impl From<ConnectionError> for String {
    fn from(e: ConnectionError) -> String {
        e.to_string()
    }
}

/// One connection: its tenant, and its reader (or why its credential could not be built).
pub(crate) struct Connection {
    pub tenant: String,
    pub settings: TenantConnection,
    /// The reader, or the text of the [`ConnectionError`] that left the connection without one.
    reader: Result<LiveAzure, String>,
}

/// The [`AzureReader`] over every connection of `azure.tenants`, in their configured order.
pub(crate) struct TenantsReader {
    connections: Vec<Connection>,
}

/// The reader for a configuration: the single connection's [`LiveAzure`] without
/// `azure.tenants`, else a [`TenantsReader`]. `tokens` is the deployment's own credential
/// (`credential: default` connections use it).
pub fn reader_from_config(config: &Config, tokens: Arc<dyn TokenSource>, env: &dyn EnvSource) -> Arc<dyn AzureReader> {
    let tuning = super::arm::Tuning::default();
    if config.azure.tenants.is_empty() {
        return Arc::new(super::live_from_config(config, tokens, tuning));
    }
    let connections = connections(config, &tokens, env)
        .into_iter()
        .map(|(settings, reader)| {
            if let Err(e) = &reader {
                tracing::error!(tenant = %settings.tenant_id, error = %e, "azure.tenants connection unusable");
            }
            Connection {
                tenant: settings.tenant_id.clone(),
                settings,
                reader: reader.map_err(|e| e.to_string()),
            }
        })
        .collect();
    Arc::new(TenantsReader { connections })
}

/// Each connection of `azure.tenants` with its own reader (its own credential and scope), or
/// why its credential could not be built (`seedwatch check` reports each).
pub(crate) fn connections(
    config: &Config,
    tokens: &Arc<dyn TokenSource>,
    env: &dyn EnvSource,
) -> Vec<(TenantConnection, Result<LiveAzure, ConnectionError>)> {
    let tuning = super::arm::Tuning::default();
    config
        .azure
        .tenants
        .iter()
        .map(|settings| {
            let reader = connection_tokens(config, settings, env, tokens)
                .map(|t| {
                    let mut one = config.clone();
                    one.azure.subscriptions = settings.subscriptions.clone();
                    one.azure.exclude_subscriptions = settings.exclude_subscriptions.clone();
                    one.azure.management_groups = settings.management_groups.clone();
                    super::live_from_config(&one, t, tuning.clone())
                })
                .map_err(|source| ConnectionError {
                    tenant: settings.tenant_id.clone(),
                    source,
                });
            (settings.clone(), reader)
        })
        .collect()
}

/// The token source of one connection: the deployment's own, or one built from the
/// connection's settings and the secrets in the environment variables it names.
fn connection_tokens(
    config: &Config,
    conn: &TenantConnection,
    env: &dyn EnvSource,
    default: &Arc<dyn TokenSource>,
) -> Result<Arc<dyn TokenSource>, AzureError> {
    let kind = match conn.credential {
        TenantCredential::Default => return Ok(default.clone()),
        TenantCredential::ClientSecret => CredentialKind::ClientSecret,
        TenantCredential::ClientCertificate => CredentialKind::ClientCertificate,
        TenantCredential::WorkloadIdentity => CredentialKind::WorkloadIdentity,
        TenantCredential::AzureCli => CredentialKind::AzureCli,
    };
    let mut values: HashMap<&'static str, String> = HashMap::new();
    values.insert(credential::env::AZURE_TENANT_ID, conn.tenant_id.clone());
    if let Some(id) = &conn.client_id {
        values.insert(credential::env::AZURE_CLIENT_ID, id.clone());
    }
    let named = |name: &str, key: &str| {
        env.var(name).filter(|v| !v.is_empty()).ok_or_else(|| {
            AzureError::Credential(format!("{key} names the environment variable {name}, which is not set"))
        })
    };
    if let Some(name) = &conn.client_secret_env {
        values.insert(credential::env::AZURE_CLIENT_SECRET, named(name, "client_secret_env")?);
    }
    if let Some(path) = &conn.certificate_path {
        values.insert(credential::env::AZURE_CLIENT_CERTIFICATE_PATH, path.clone());
    }
    if let Some(name) = &conn.certificate_password_env {
        values.insert(
            credential::env::AZURE_CLIENT_CERTIFICATE_PASSWORD,
            named(name, "certificate_password_env")?,
        );
    }
    if let Some(file) = &conn.federated_token_file {
        values.insert(credential::env::AZURE_FEDERATED_TOKEN_FILE, file.clone());
    }
    let overlay = ConnectionEnv { base: env, values };
    let mut settings: AzureSettings = config.azure.clone();
    settings.credential = kind;
    settings.managed_identity_client_id = None;
    let options = CredentialOptions {
        http_timeout: Some(config.http.timeout),
        cli_tenant: Some(conn.tenant_id.clone()),
        ..Default::default()
    };
    credential::token_source(&settings, &overlay, options)
}

/// The environment as one connection's credential sees it: its own tenant, client and
/// secrets; none of the deployment's credential variables (a connection never falls back to
/// the home tenant's secret); everything else (`SSL_CERT_FILE`, `HOME`, ...) unchanged.
struct ConnectionEnv<'a> {
    base: &'a dyn EnvSource,
    values: HashMap<&'static str, String>,
}

impl EnvSource for ConnectionEnv<'_> {
    fn var(&self, name: &str) -> Option<String> {
        if let Some(v) = self.values.get(name) {
            return Some(v.clone());
        }
        let kept = [credential::env::AZURE_CONFIG_DIR, credential::env::HOME];
        if credential::env::ALL.contains(&name) && !kept.contains(&name) {
            // The workload identity token file is the platform's, not a secret of the home tenant.
            if name == credential::env::AZURE_FEDERATED_TOKEN_FILE {
                return self.base.var(name);
            }
            return None;
        }
        self.base.var(name)
    }
}

impl TenantsReader {
    /// The connection that reads `subscription`: the first whose own lists name it, else the
    /// first that lists no subscription and does not exclude it.
    pub(crate) fn connection_for(&self, subscription: &str) -> Option<&Connection> {
        let named = self.connections.iter().find(|c| {
            c.settings
                .subscriptions
                .iter()
                .any(|s| s.eq_ignore_ascii_case(subscription))
        });
        named.or_else(|| {
            self.connections
                .iter()
                .find(|c| c.settings.subscriptions.is_empty() && c.settings.may_read(subscription))
        })
    }
}

#[async_trait]
impl AzureReader for TenantsReader {
    async fn sweep(&self, checks: &EnabledChecks, progress: &dyn SweepProgress) -> Result<Sweep, AzureError> {
        super::tenants_sweep::sweep(self, checks, progress).await
    }

    async fn sweep_extracted(
        &self,
        checks: &EnabledChecks,
        progress: &dyn SweepProgress,
    ) -> Result<ExtractedSweep, AzureError> {
        super::tenants_sweep::sweep(self, checks, progress).await
    }

    fn covers(&self, subscription: &str) -> bool {
        self.connection_for(subscription).is_some()
    }

    async fn read_owner(&self, owner: &ResourceId) -> Result<OwnerRead, AzureError> {
        let subscription = owner.subscription_id();
        let Some(conn) = self.connection_for(subscription) else {
            return Err(AzureError::Uncovered {
                subscription: subscription.to_string(),
            });
        };
        match &conn.reader {
            Ok(reader) => reader.read_owner(owner).await,
            Err(e) => Err(AzureError::Credential(e.clone())),
        }
    }
}

impl TenantsReader {
    pub(super) fn connections(&self) -> &[Connection] {
        &self.connections
    }
}

impl Connection {
    pub(super) fn reader(&self) -> Result<&LiveAzure, &str> {
        self.reader.as_ref().map_err(String::as_str)
    }
}

/// The placeholder scope that stands for every subscription of a tenant whose scope is unknown.
pub(super) fn whole_tenant(tenant: &str, message: String) -> IncompleteScope {
    IncompleteScope {
        subscription: format!("(every subscription of tenant {tenant})"),
        check: None,
        why: Incomplete::Unauthorized { message },
    }
}
