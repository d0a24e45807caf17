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

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, Transport};
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};

use super::certificate;
pub use super::token_cache::CachedToken;
use super::{AzureError, TokenSource};
use crate::config::{AzureSettings, CredentialKind, EnvSource};
use crate::domain::secret::Secret;

/// Environment variables the credential selection reads. The first two are set by the App
/// Service / Functions platform itself, not by the deployment template.
pub mod env {
    /// Platform-set (App Service, Functions, Container Apps): the managed identity endpoint.
    pub const IDENTITY_ENDPOINT: &str = "IDENTITY_ENDPOINT";
    /// Platform-set: the header value the managed identity endpoint requires.
    pub const IDENTITY_HEADER: &str = "IDENTITY_HEADER";
    pub const AZURE_FEDERATED_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";
    pub const AZURE_CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
    pub const AZURE_TENANT_ID: &str = "AZURE_TENANT_ID";
    pub const AZURE_CLIENT_ID: &str = "AZURE_CLIENT_ID";
    /// A PEM or PKCS#12 file with the certificate and its private key.
    pub const AZURE_CLIENT_CERTIFICATE_PATH: &str = "AZURE_CLIENT_CERTIFICATE_PATH";
    /// The PKCS#12 file's password (none means the empty password).
    pub const AZURE_CLIENT_CERTIFICATE_PASSWORD: &str = "AZURE_CLIENT_CERTIFICATE_PASSWORD";
    /// The Azure CLI's configuration directory (default `~/.azure`).
    pub const AZURE_CONFIG_DIR: &str = "AZURE_CONFIG_DIR";
    pub const HOME: &str = "HOME";
    /// Every name above.
    pub const ALL: &[&str] = &[
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

/// The instance metadata service's well-known address (the same one `azure_identity` uses).
pub const IMDS_PROBE_URL: &str = "http://169.254.169.254/metadata/instance?api-version=2021-02-01";

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
    pub fn name(self) -> &'static str {
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

/// Whether Azure's instance metadata service answers at `url` within `timeout`.
pub async fn imds_answers(url: &str, timeout: Duration) -> bool {
    let Ok(client) = reqwest::Client::builder().timeout(timeout).no_proxy().build() else {
        return false;
    };
    match client.get(url).header("Metadata", "true").send().await {
        Ok(r) => r.status().is_success(),
        Err(_) => false,
    }
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

/// Which managed identity a request names, and where that came from: the configured
/// `azure.managed_identity_client_id`, else `AZURE_CLIENT_ID`, else none (system-assigned).
pub fn managed_identity_client_id(settings: &AzureSettings, env: &dyn EnvSource) -> Option<(String, &'static str)> {
    let inputs = Inputs::read(settings, env);
    inputs.managed_identity()
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

/// `azure_identity`'s options: always a custom cloud, so the configured authority is used
/// (`azure_identity` reads `AZURE_AUTHORITY_HOST` only when no cloud is given; the config
/// already folded it into [`AzureSettings::authority`]).
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

impl IdentityTokens {
    fn new(chosen: Chosen, inputs: &Inputs, options: &CredentialOptions) -> Result<IdentityTokens, AzureError> {
        let fail = |e: azure_core::Error| AzureError::Credential(format!("{}: {}", chosen.name(), one_line(&e)));
        let missing = |name: &str| {
            AzureError::Credential(format!(
                "{}: {name} is not set (azure.credential = {})",
                chosen.name(),
                match chosen {
                    Chosen::ClientSecret => "client_secret",
                    Chosen::WorkloadIdentity => "workload_identity",
                    _ => "auto",
                }
            ))
        };
        let credential: Arc<dyn TokenCredential> = match chosen {
            Chosen::ManagedIdentity => {
                let opts = ManagedIdentityCredentialOptions {
                    user_assigned_id: inputs.managed_identity().map(|(id, _)| UserAssignedId::ClientId(id)),
                    client_options: client_options(&inputs.authority, options),
                };
                ManagedIdentityCredential::new(Some(opts)).map_err(fail)?
            }
            Chosen::WorkloadIdentity => {
                let mut opts = WorkloadIdentityCredentialOptions {
                    tenant_id: Some(inputs.tenant_id.clone().ok_or_else(|| missing(env::AZURE_TENANT_ID))?),
                    client_id: Some(inputs.client_id.clone().ok_or_else(|| missing(env::AZURE_CLIENT_ID))?),
                    token_file_path: Some(PathBuf::from(
                        inputs
                            .federated_token_file
                            .clone()
                            .ok_or_else(|| missing(env::AZURE_FEDERATED_TOKEN_FILE))?,
                    )),
                    ..Default::default()
                };
                opts.credential_options.client_options = client_options(&inputs.authority, options);
                WorkloadIdentityCredential::new(Some(opts)).map_err(fail)?
            }
            Chosen::ClientSecret => {
                let tenant = inputs.tenant_id.clone().ok_or_else(|| missing(env::AZURE_TENANT_ID))?;
                let client = inputs.client_id.clone().ok_or_else(|| missing(env::AZURE_CLIENT_ID))?;
                let secret = inputs
                    .client_secret
                    .as_ref()
                    .ok_or_else(|| missing(env::AZURE_CLIENT_SECRET))?;
                let opts = ClientSecretCredentialOptions {
                    client_options: client_options(&inputs.authority, options),
                };
                ClientSecretCredential::new(
                    &tenant,
                    client,
                    azure_core::credentials::Secret::new(secret.expose().to_string()),
                    Some(opts),
                )
                .map_err(fail)?
            }
            Chosen::ClientCertificate => certificate::credential(
                certificate::Inputs {
                    tenant_id: inputs.tenant_id.clone(),
                    client_id: inputs.client_id.clone(),
                    path: inputs.certificate_path.clone(),
                    password: inputs.certificate_password.clone(),
                },
                &inputs.authority,
                client_options(&inputs.authority, options),
            )
            .map_err(|m| AzureError::Credential(format!("client certificate: {m}")))?,
            Chosen::AzureCli => {
                let cli_options = options.cli_tenant.clone().map(|tenant| AzureCliCredentialOptions {
                    tenant_id: Some(tenant),
                    ..Default::default()
                });
                let cli = AzureCliCredential::new(cli_options).map_err(fail)?;
                Arc::new(CachedToken::new(cli))
            }
        };
        let timeout = (chosen != Chosen::AzureCli).then(|| options.timeout());
        Ok(IdentityTokens {
            chosen,
            credential,
            timeout,
            authority: inputs.authority.clone(),
        })
    }

    pub fn chosen(&self) -> Chosen {
        self.chosen
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
struct AutoTokens {
    inputs: Inputs,
    options: CredentialOptions,
    resolved: tokio::sync::OnceCell<Result<IdentityTokens, String>>,
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
                let tokens = IdentityTokens::new(chosen, &self.inputs, &self.options).map_err(|e| e.to_string());
                if tokens.is_ok() {
                    log_identity(chosen, &self.inputs);
                }
                tokens
            })
            .await;
        match resolved {
            Ok(tokens) => tokens.bearer(scope).await,
            Err(message) => Err(AzureError::Credential(message.clone())),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::collections::HashMap;

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

    /// A black hole where IMDS should be: it accepts the probe's request and never answers.
    /// The probe must give up by itself (its timeout) and say IMDS is not there; without the
    /// timeout it would wait forever, which the watchdog turns into a failure.
    #[tokio::test]
    async fn imds_probe_gives_up_on_a_silent_endpoint() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (request_tx, request_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = request_tx.send(String::from_utf8_lossy(&request).into_owned());
            // Hold the connection open, silent, until the probe hangs up.
            let _ = socket.read(&mut buf).await;
        });
        let url = format!("http://127.0.0.1:{port}/metadata/instance?api-version=2021-02-01");
        let answered = tokio::time::timeout(Duration::from_secs(60), imds_answers(&url, Duration::from_millis(200)))
            .await
            .expect("the probe gave up by itself");
        assert!(!answered, "a silent endpoint is not IMDS");
        let request = request_rx.await.expect("the probe reached the endpoint");
        assert!(request.starts_with("GET /metadata/instance"), "{request}");
        assert!(request.to_ascii_lowercase().contains("metadata: true"), "{request}");
    }

    #[tokio::test]
    async fn imds_probe_of_a_closed_port_says_no() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        assert!(!imds_answers(&format!("http://127.0.0.1:{port}/metadata"), Duration::from_secs(5)).await);
    }
}
