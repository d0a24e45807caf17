//! The [`TokenSource`]s over `azure_identity`: one credential once chosen ([`IdentityTokens`]),
//! and `auto`'s deferred choice ([`AutoTokens`]), which probes IMDS on the first request.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::TokenCredential;
use azure_core::http::ClientOptions;
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};

use super::super::certificate;
use super::super::token_cache::CachedToken;
use super::super::{AzureError, TokenSource};
use super::{Chosen, CredentialOptions, IMDS_PROBE_URL, Inputs, env, imds_answers, log_identity};
use crate::domain::secret::Secret;

/// `azure_identity`'s options: always a custom cloud, so the configured authority is used
/// (`azure_identity` reads `AZURE_AUTHORITY_HOST` only when no cloud is given; the config
/// already folded it into [`crate::config::AzureSettings::authority`]).
fn client_options(authority: &str, options: &CredentialOptions) -> ClientOptions {
    let mut custom = CustomConfiguration::default();
    custom.authority_host = authority.to_string();
    let cloud = CloudConfiguration::Custom(custom);
    ClientOptions {
        transport: options.transport.clone(),
        cloud: Some(Arc::new(cloud)),
        retry: options.retry.clone().unwrap_or_default(),
        ..Default::default()
    }
}

/// One `azure_identity` credential, named in every error.
pub struct IdentityTokens {
    chosen: Chosen,
    credential: Arc<dyn TokenCredential>,
    /// Bounds one token request; `None` for the Azure CLI, a local process, not HTTP.
    timeout: Option<Duration>,
    authority: String,
}

/// The error for a credential whose constructor refused its inputs.
fn refused(chosen: Chosen) -> impl Fn(azure_core::Error) -> AzureError {
    move |e| AzureError::Credential(format!("{}: {}", chosen.name(), one_line(&e)))
}

/// The error for an environment variable the chosen credential needs.
fn missing(chosen: Chosen, name: &str) -> AzureError {
    AzureError::Credential(format!(
        "{}: {name} is not set (azure.credential = {})",
        chosen.name(),
        match chosen {
            Chosen::ClientSecret => "client_secret",
            Chosen::WorkloadIdentity => "workload_identity",
            _ => "auto",
        }
    ))
}

/// An input the chosen credential cannot do without.
fn required<T: Clone>(value: &Option<T>, chosen: Chosen, name: &str) -> Result<T, AzureError> {
    value.clone().ok_or_else(|| missing(chosen, name))
}

fn managed_identity(inputs: &Inputs, options: &CredentialOptions) -> Result<Arc<dyn TokenCredential>, AzureError> {
    let opts = ManagedIdentityCredentialOptions {
        user_assigned_id: inputs.managed_identity().map(|(id, _)| UserAssignedId::ClientId(id)),
        client_options: client_options(&inputs.authority, options),
    };
    let credential = ManagedIdentityCredential::new(Some(opts)).map_err(refused(Chosen::ManagedIdentity))?;
    Ok(credential)
}

fn workload_identity(inputs: &Inputs, options: &CredentialOptions) -> Result<Arc<dyn TokenCredential>, AzureError> {
    let chosen = Chosen::WorkloadIdentity;
    let mut opts = WorkloadIdentityCredentialOptions {
        tenant_id: Some(required(&inputs.tenant_id, chosen, env::AZURE_TENANT_ID)?),
        client_id: Some(required(&inputs.client_id, chosen, env::AZURE_CLIENT_ID)?),
        token_file_path: Some(PathBuf::from(required(
            &inputs.federated_token_file,
            chosen,
            env::AZURE_FEDERATED_TOKEN_FILE,
        )?)),
        ..Default::default()
    };
    opts.credential_options.client_options = client_options(&inputs.authority, options);
    let credential = WorkloadIdentityCredential::new(Some(opts)).map_err(refused(chosen))?;
    Ok(credential)
}

fn client_secret(inputs: &Inputs, options: &CredentialOptions) -> Result<Arc<dyn TokenCredential>, AzureError> {
    let chosen = Chosen::ClientSecret;
    let tenant = required(&inputs.tenant_id, chosen, env::AZURE_TENANT_ID)?;
    let client = required(&inputs.client_id, chosen, env::AZURE_CLIENT_ID)?;
    let secret = required(&inputs.client_secret, chosen, env::AZURE_CLIENT_SECRET)?;
    let opts = ClientSecretCredentialOptions {
        client_options: client_options(&inputs.authority, options),
    };
    let secret = azure_core::credentials::Secret::new(secret.expose().to_string());
    let credential = ClientSecretCredential::new(&tenant, client, secret, Some(opts)).map_err(refused(chosen))?;
    Ok(credential)
}

fn client_certificate(inputs: &Inputs, options: &CredentialOptions) -> Result<Arc<dyn TokenCredential>, AzureError> {
    certificate::credential(
        certificate::Inputs {
            tenant_id: inputs.tenant_id.clone(),
            client_id: inputs.client_id.clone(),
            path: inputs.certificate_path.clone(),
            password: inputs.certificate_password.clone(),
        },
        &inputs.authority,
        client_options(&inputs.authority, options),
    )
    .map_err(|e| AzureError::Credential(format!("client certificate: {e}")))
}

fn azure_cli(options: &CredentialOptions) -> Result<Arc<dyn TokenCredential>, AzureError> {
    let cli_options = options.cli_tenant.clone().map(|tenant| AzureCliCredentialOptions {
        tenant_id: Some(tenant),
        ..Default::default()
    });
    let cli = AzureCliCredential::new(cli_options).map_err(refused(Chosen::AzureCli))?;
    Ok(Arc::new(CachedToken::new(cli)))
}

impl IdentityTokens {
    pub(super) fn new(
        chosen: Chosen,
        inputs: &Inputs,
        options: &CredentialOptions,
    ) -> Result<IdentityTokens, AzureError> {
        let credential = match chosen {
            Chosen::ManagedIdentity => managed_identity(inputs, options)?,
            Chosen::WorkloadIdentity => workload_identity(inputs, options)?,
            Chosen::ClientSecret => client_secret(inputs, options)?,
            Chosen::ClientCertificate => client_certificate(inputs, options)?,
            Chosen::AzureCli => azure_cli(options)?,
        };
        let timeout = (chosen != Chosen::AzureCli).then(|| options.timeout());
        Ok(IdentityTokens {
            chosen,
            credential,
            timeout,
            authority: inputs.authority.clone(),
        })
    }
}

#[async_trait]
impl TokenSource for IdentityTokens {
    async fn bearer(&self, scope: &str) -> Result<Secret, AzureError> {
        let scopes = [scope];
        let request = self.credential.get_token(&scopes, None);
        let answer = match self.timeout {
            Some(limit) => tokio::time::timeout(limit, request).await.map_err(|_| {
                let from = match self.chosen {
                    Chosen::ManagedIdentity => "the managed identity endpoint".to_string(),
                    _ => self.authority.clone(),
                };
                AzureError::Credential(format!(
                    "{} could not get a token for {scope}: no answer from {from} within {limit:?} (http.timeout)",
                    self.chosen.name()
                ))
            })?,
            None => request.await,
        };
        let token = answer.map_err(|e| {
            let mut message = format!(
                "{} could not get a token for {scope}: {}",
                self.chosen.name(),
                one_line(&e)
            );
            if self.chosen == Chosen::AzureCli {
                message.push_str(" (run `az login`, or set azure.credential)");
            }
            AzureError::Credential(message)
        })?;
        Ok(Secret::new(token.token.secret().to_string()))
    }
}

/// `auto` after the environment said nothing: probe IMDS once, on first use.
pub(super) struct AutoTokens {
    pub(super) inputs: Inputs,
    pub(super) options: CredentialOptions,
    pub(super) resolved: tokio::sync::OnceCell<Result<IdentityTokens, AzureError>>,
}

#[async_trait]
impl TokenSource for AutoTokens {
    async fn bearer(&self, scope: &str) -> Result<Secret, AzureError> {
        let resolved = self
            .resolved
            .get_or_init(|| async {
                let url = self.options.imds_probe_url.as_deref().unwrap_or(IMDS_PROBE_URL);
                let timeout = self.options.imds_probe_timeout.unwrap_or(Duration::from_secs(1));
                let chosen = if imds_answers(url, timeout).await {
                    Chosen::ManagedIdentity
                } else {
                    Chosen::AzureCli
                };
                tracing::info!(credential = chosen.name(), "azure.credential auto");
                let tokens = IdentityTokens::new(chosen, &self.inputs, &self.options);
                if tokens.is_ok() {
                    log_identity(chosen, &self.inputs);
                }
                tokens
            })
            .await;
        match resolved {
            Ok(tokens) => tokens.bearer(scope).await,
            // The same error every time: building the credential does not depend on the scope.
            Err(e) => Err(AzureError::Credential(e.to_string())),
        }
    }
}

/// An `azure_core` error on one line. Its text comes from Entra ID or the token endpoint's
/// error body, never from a token.
fn one_line(e: &azure_core::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 500 {
        flat.chars().take(500).collect::<String>() + "…"
    } else {
        flat
    }
}
