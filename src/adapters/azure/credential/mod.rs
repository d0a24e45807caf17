//! Credentials: a [`TokenSource`] over `azure_identity` 1.x, chosen by `azure.credential`.
//!
//! `auto` (the default) picks, in order (see docs/decisions.md):
//! 1. managed identity when `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` are set (App Service,
//!    Functions, Container Apps);
//! 2. workload identity when `AZURE_FEDERATED_TOKEN_FILE` is set (AKS, GitHub OIDC);
//! 3. client secret when `AZURE_CLIENT_SECRET` is set (with `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`);
//! 4. client certificate when `AZURE_CLIENT_CERTIFICATE_PATH` is set (same tenant and client
//!    id; see [`super::certificate`]);
//! 5. managed identity through IMDS when `azure.managed_identity_client_id` is configured;
//! 6. the Azure CLI when the CLI has a profile (`AZURE_CONFIG_DIR` or `~/.azure/azureProfile.json`),
//!    i.e. a laptop after `az login`: no network probe;
//! 7. otherwise one short probe of the instance metadata service (1 s): an answer from Azure's
//!    IMDS means a VM or VM scale set, so managed identity; no answer means the Azure CLI.
//!
//! Managed identity asks for the user-assigned identity named by `azure.managed_identity_client_id`,
//! else by `AZURE_CLIENT_ID` (the Azure SDKs' convention, and the app setting the template sets),
//! else for the system-assigned identity. An App Service app with only a user-assigned identity
//! must name it: its token endpoint answers 400 to a request that names none
//! (https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference).
//!
//! `azure_identity` caches managed identity, workload identity, client secret and certificate
//! tokens until 5 minutes before expiry; [`CachedToken`] does the same for the Azure CLI, which
//! does not.
//!
//! Token requests go to `azure.endpoints.authority` (see [`AzureSettings::authority`]) through
//! seedwatch's own HTTP client ([`crate::adapters::http::try_client`]: `http.timeout`, `SSL_CERT_FILE`),
//! and one token request, `azure_identity`'s retries included, takes at most `http.timeout`.

mod claims;
mod identity;
mod imds;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use azure_core::http::Transport;

pub use super::token_cache::CachedToken;
use super::{AzureError, TokenSource};
use crate::config::{AzureSettings, CredentialKind, EnvSource};
use crate::domain::secret::Secret;
pub(crate) use claims::token_claims;
use identity::AutoTokens;
pub use identity::IdentityTokens;
pub use imds::{IMDS_PROBE_URL, imds_answers};

/// Environment variables the credential selection reads. The first two are set by the App
/// Service / Functions platform itself, not by the deployment template.
pub(crate) mod env {
    /// Platform-set (App Service, Functions, Container Apps): the managed identity endpoint.
    pub(crate) const IDENTITY_ENDPOINT: &str = "IDENTITY_ENDPOINT";
    /// Platform-set: the header value the managed identity endpoint requires.
    pub(crate) const IDENTITY_HEADER: &str = "IDENTITY_HEADER";
    pub(crate) const AZURE_FEDERATED_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";
    pub(crate) const AZURE_CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
    pub(crate) const AZURE_TENANT_ID: &str = "AZURE_TENANT_ID";
    pub(crate) const AZURE_CLIENT_ID: &str = "AZURE_CLIENT_ID";
    /// A PEM or PKCS#12 file with the certificate and its private key.
    pub(crate) const AZURE_CLIENT_CERTIFICATE_PATH: &str = "AZURE_CLIENT_CERTIFICATE_PATH";
    /// The PKCS#12 file's password (none means the empty password).
    pub(crate) const AZURE_CLIENT_CERTIFICATE_PASSWORD: &str = "AZURE_CLIENT_CERTIFICATE_PASSWORD";
    /// The Azure CLI's configuration directory (default `~/.azure`).
    pub(crate) const AZURE_CONFIG_DIR: &str = "AZURE_CONFIG_DIR";
    pub(crate) const HOME: &str = "HOME";
    /// Every name above.
    pub(crate) const ALL: &[&str] = &[
        IDENTITY_ENDPOINT,
        IDENTITY_HEADER,
        AZURE_FEDERATED_TOKEN_FILE,
        AZURE_CLIENT_SECRET,
        AZURE_TENANT_ID,
        AZURE_CLIENT_ID,
        AZURE_CLIENT_CERTIFICATE_PATH,
        AZURE_CLIENT_CERTIFICATE_PASSWORD,
        AZURE_CONFIG_DIR,
        HOME,
    ];
}
/// A credential kind once `auto` is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chosen {
    ManagedIdentity,
    WorkloadIdentity,
    ClientSecret,
    ClientCertificate,
    AzureCli,
}

impl Chosen {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Chosen::ManagedIdentity => "managed identity",
            Chosen::WorkloadIdentity => "workload identity",
            Chosen::ClientSecret => "client secret",
            Chosen::ClientCertificate => "client certificate",
            Chosen::AzureCli => "Azure CLI",
        }
    }
}

/// The decision `auto` makes from the environment alone; `None` means "probe IMDS".
pub fn choose_without_probe(settings: &AzureSettings, env: &dyn EnvSource) -> Option<Chosen> {
    let set = |name: &str| env.var(name).is_some_and(|v| !v.trim().is_empty());
    match settings.credential {
        CredentialKind::ManagedIdentity => return Some(Chosen::ManagedIdentity),
        CredentialKind::WorkloadIdentity => return Some(Chosen::WorkloadIdentity),
        CredentialKind::ClientSecret => return Some(Chosen::ClientSecret),
        CredentialKind::ClientCertificate => return Some(Chosen::ClientCertificate),
        CredentialKind::AzureCli => return Some(Chosen::AzureCli),
        CredentialKind::Auto => {}
    }
    if set(env::IDENTITY_ENDPOINT) && set(env::IDENTITY_HEADER) {
        return Some(Chosen::ManagedIdentity);
    }
    if set(env::AZURE_FEDERATED_TOKEN_FILE) {
        return Some(Chosen::WorkloadIdentity);
    }
    if set(env::AZURE_CLIENT_SECRET) {
        return Some(Chosen::ClientSecret);
    }
    if set(env::AZURE_CLIENT_CERTIFICATE_PATH) {
        return Some(Chosen::ClientCertificate);
    }
    if settings.managed_identity_client_id.is_some() {
        return Some(Chosen::ManagedIdentity);
    }
    if azure_cli_profile(env).is_some_and(|p| p.exists()) {
        return Some(Chosen::AzureCli);
    }
    None
}

fn azure_cli_profile(env: &dyn EnvSource) -> Option<PathBuf> {
    let dir = match env.var(env::AZURE_CONFIG_DIR).filter(|v| !v.trim().is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env.var(env::HOME).filter(|v| !v.trim().is_empty())?).join(".azure"),
    };
    Some(dir.join("azureProfile.json"))
}

/// What the credential builder needs besides the settings.
#[derive(Clone, Default)]
pub struct CredentialOptions {
    /// An HTTP transport for `azure_identity`; by default seedwatch's own client
    /// ([`crate::adapters::http::try_client`] with `http_timeout` and `SSL_CERT_FILE`).
    pub transport: Option<Transport>,
    /// `http.timeout`: the bound on one token request, retries included (30 s by default).
    pub http_timeout: Option<Duration>,
    /// Where `auto` probes IMDS ([`IMDS_PROBE_URL`] by default).
    pub imds_probe_url: Option<String>,
    pub imds_probe_timeout: Option<Duration>,
    /// Retry options for `azure_identity`'s own pipeline (tests turn retries off).
    pub retry: Option<azure_core::http::RetryOptions>,
    /// The tenant the Azure CLI asks a token from (an `azure.tenants` connection); `None`: the
    /// CLI's default tenant.
    pub cli_tenant: Option<String>,
}

/// The [`TokenSource`] for the configured credential. `auto` may need an IMDS probe; it runs
/// on the first token request, not here, so building stays synchronous and offline.
pub fn token_source(
    settings: &AzureSettings,
    env: &dyn EnvSource,
    options: CredentialOptions,
) -> Result<Arc<dyn TokenSource>, AzureError> {
    let inputs = Inputs::read(settings, env);
    let mut options = options;
    if options.transport.is_none() {
        let client = crate::adapters::http::try_client(options.timeout(), env)
            .map_err(|e| AzureError::Credential(format!("token requests: {e}")))?;
        options.transport = Some(Transport::new(Arc::new(client)));
    }
    match choose_without_probe(settings, env) {
        Some(chosen) => {
            let tokens = IdentityTokens::new(chosen, &inputs, &options)?;
            log_identity(chosen, &inputs);
            Ok(Arc::new(tokens))
        }
        None => Ok(Arc::new(AutoTokens {
            inputs,
            options,
            resolved: tokio::sync::OnceCell::new(),
        })),
    }
}

/// The start-up line saying which credential, and for managed identity which identity, is used.
/// A client id is not a secret; it names the identity an operator must grant roles to.
fn log_identity(chosen: Chosen, inputs: &Inputs) {
    match (chosen, inputs.managed_identity()) {
        (Chosen::ManagedIdentity, Some((client_id, from))) => tracing::info!(
            credential = chosen.name(),
            client_id = %client_id,
            from,
            "Azure credential: user-assigned managed identity {client_id} (from {from})"
        ),
        (Chosen::ManagedIdentity, None) => tracing::info!(
            credential = chosen.name(),
            "Azure credential: system-assigned managed identity (no azure.managed_identity_client_id or AZURE_CLIENT_ID)"
        ),
        _ => tracing::info!(credential = chosen.name(), "Azure credential: {}", chosen.name()),
    }
}

/// The values credential constructors need, read once through [`EnvSource`].
#[derive(Clone)]
struct Inputs {
    authority: String,
    client_id_setting: Option<String>,
    tenant_id: Option<String>,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    certificate_path: Option<String>,
    certificate_password: Option<Secret>,
    federated_token_file: Option<String>,
}

impl Inputs {
    fn read(settings: &AzureSettings, env: &dyn EnvSource) -> Inputs {
        let get = |name: &str| env.var(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        Inputs {
            authority: settings.authority.clone(),
            client_id_setting: settings.managed_identity_client_id.clone(),
            tenant_id: get(env::AZURE_TENANT_ID),
            client_id: get(env::AZURE_CLIENT_ID),
            client_secret: get(env::AZURE_CLIENT_SECRET).map(Secret::new),
            certificate_path: get(env::AZURE_CLIENT_CERTIFICATE_PATH),
            // A password is taken as written: spaces may be part of it.
            certificate_password: env
                .var(env::AZURE_CLIENT_CERTIFICATE_PASSWORD)
                .filter(|v| !v.is_empty())
                .map(Secret::new),
            federated_token_file: get(env::AZURE_FEDERATED_TOKEN_FILE),
        }
    }
}

impl Inputs {
    /// The user-assigned identity to ask for, and the setting that named it.
    fn managed_identity(&self) -> Option<(String, &'static str)> {
        if let Some(id) = self.client_id_setting.as_ref().filter(|v| !v.trim().is_empty()) {
            return Some((id.trim().to_string(), "azure.managed_identity_client_id"));
        }
        self.client_id.clone().map(|id| (id, env::AZURE_CLIENT_ID))
    }
}

impl CredentialOptions {
    fn timeout(&self) -> Duration {
        self.http_timeout.unwrap_or(Duration::from_secs(30))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::collections::HashMap;

    /// Which managed identity a request names, and where that came from: the configured
    /// `azure.managed_identity_client_id`, else `AZURE_CLIENT_ID`, else none (system-assigned).
    fn managed_identity_client_id(settings: &AzureSettings, env: &dyn EnvSource) -> Option<(String, &'static str)> {
        let inputs = Inputs::read(settings, env);
        inputs.managed_identity()
    }

    fn settings(credential: CredentialKind) -> AzureSettings {
        let mut config = Config::from_value(&serde_json::json!({}), "test", &HashMap::<String, String>::new())
            .unwrap()
            .azure;
        config.credential = credential;
        config
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn auto_follows_the_environment() {
        let auto = settings(CredentialKind::Auto);
        let app_service = env(&[
            (env::IDENTITY_ENDPOINT, "http://127.0.0.1:1/msi"),
            (env::IDENTITY_HEADER, "h"),
        ]);
        assert_eq!(choose_without_probe(&auto, &app_service), Some(Chosen::ManagedIdentity));
        let workload = env(&[
            (env::AZURE_FEDERATED_TOKEN_FILE, "/var/run/token"),
            (env::AZURE_CLIENT_SECRET, "s"),
        ]);
        assert_eq!(choose_without_probe(&auto, &workload), Some(Chosen::WorkloadIdentity));
        let secret = env(&[(env::AZURE_CLIENT_SECRET, "s")]);
        assert_eq!(choose_without_probe(&auto, &secret), Some(Chosen::ClientSecret));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("azureProfile.json"), "{}").unwrap();
        let laptop = env(&[(env::AZURE_CONFIG_DIR, dir.path().to_str().unwrap())]);
        assert_eq!(choose_without_probe(&auto, &laptop), Some(Chosen::AzureCli));
        assert_eq!(choose_without_probe(&auto, &env(&[])), None);
        let mut user_assigned = auto.clone();
        user_assigned.managed_identity_client_id = Some("3333".into());
        assert_eq!(
            choose_without_probe(&user_assigned, &env(&[])),
            Some(Chosen::ManagedIdentity)
        );
        // Only one of the pair: not App Service.
        let half = env(&[(env::IDENTITY_ENDPOINT, "http://x")]);
        assert_eq!(choose_without_probe(&auto, &half), None);
    }

    #[test]
    fn explicit_choices_win() {
        let e = env(&[(env::IDENTITY_ENDPOINT, "http://x"), (env::IDENTITY_HEADER, "h")]);
        assert_eq!(
            choose_without_probe(&settings(CredentialKind::AzureCli), &e),
            Some(Chosen::AzureCli)
        );
        assert_eq!(
            choose_without_probe(&settings(CredentialKind::ClientSecret), &e),
            Some(Chosen::ClientSecret)
        );
    }

    #[test]
    fn missing_inputs_name_the_credential_and_variable() {
        let err = match token_source(&settings(CredentialKind::ClientSecret), &env(&[]), Default::default()) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("expected an error"),
        };
        assert!(
            err.contains("client secret") && err.contains("AZURE_TENANT_ID"),
            "{err}"
        );
        let secret_env = env(&[
            (env::AZURE_TENANT_ID, "not a tenant!"),
            (env::AZURE_CLIENT_ID, "c"),
            (env::AZURE_CLIENT_SECRET, "hunter2-secret"),
        ]);
        // A tenant id that is not a tenant is refused when the credential is built; the
        // error names the credential and never carries the secret.
        let text = match token_source(&settings(CredentialKind::ClientSecret), &secret_env, Default::default()) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("a tenant id with spaces and '!' must be refused"),
        };
        assert!(text.contains("client secret"), "{text}");
        assert!(!text.contains("hunter2-secret"), "{text}");
    }

    #[test]
    fn managed_identity_names_the_configured_or_environment_client_id() {
        let auto = settings(CredentialKind::ManagedIdentity);
        assert_eq!(managed_identity_client_id(&auto, &env(&[])), None);
        let from_env = env(&[(env::AZURE_CLIENT_ID, " 5555 ")]);
        assert_eq!(
            managed_identity_client_id(&auto, &from_env),
            Some(("5555".to_string(), env::AZURE_CLIENT_ID))
        );
        let mut configured = auto.clone();
        configured.managed_identity_client_id = Some("6666".into());
        assert_eq!(
            managed_identity_client_id(&configured, &from_env),
            Some(("6666".to_string(), "azure.managed_identity_client_id"))
        );
    }
}
