//! `azure.tenants`: several connections, one per Entra tenant (or per credential), each with
//! its own scope. No secret is written in the configuration: a connection names the app
//! setting (environment variable) that holds its client secret or certificate password, and
//! the path of its certificate file.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::values::{NonEmptyText, Rejection, Shaped, TextList, read_from_json, reject, show};
use super::{AzureSettings, ConfigError};

/// How one connection signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantCredential {
    /// The deployment's own credential (`azure.credential`): the home tenant's connection,
    /// e.g. the Function App's managed identity.
    Default,
    ClientSecret,
    ClientCertificate,
    WorkloadIdentity,
    AzureCli,
}

impl TenantCredential {
    pub(crate) fn name(self) -> &'static str {
        match self {
            TenantCredential::Default => "default",
            TenantCredential::ClientSecret => "client_secret",
            TenantCredential::ClientCertificate => "client_certificate",
            TenantCredential::WorkloadIdentity => "workload_identity",
            TenantCredential::AzureCli => "azure_cli",
        }
    }
}

/// One entry of `azure.tenants`.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantConnection {
    pub tenant_id: String,
    pub credential: TenantCredential,
    /// The application (client) id; not a secret.
    pub client_id: Option<String>,
    /// The environment variable (app setting) holding the client secret.
    pub client_secret_env: Option<String>,
    /// A PEM or PKCS#12 file with the certificate and its key.
    pub certificate_path: Option<String>,
    /// The environment variable holding the PKCS#12 password.
    pub certificate_password_env: Option<String>,
    /// Workload identity's token file; `AZURE_FEDERATED_TOKEN_FILE` when absent.
    pub federated_token_file: Option<String>,
    pub subscriptions: Vec<String>,
    pub exclude_subscriptions: Vec<String>,
    pub management_groups: Vec<String>,
}

/// One entry of `azure.tenants` as written; [`read`] checks it into a [`TenantConnection`].
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawTenant {
    tenant_id: Option<NonEmptyText>,
    credential: Option<TenantCredential>,
    client_id: Option<NonEmptyText>,
    client_secret_env: Option<NonEmptyText>,
    certificate_path: Option<NonEmptyText>,
    certificate_password_env: Option<NonEmptyText>,
    federated_token_file: Option<NonEmptyText>,
    subscriptions: Option<TextList>,
    exclude_subscriptions: Option<TextList>,
    management_groups: Option<TextList>,
    #[serde(rename = "client_secret", deserialize_with = "refuse_literal_secret")]
    _client_secret: (),
    #[serde(rename = "certificate_password", deserialize_with = "refuse_literal_secret")]
    _certificate_password: (),
}

/// `azure.tenants`: a list of connections, each a mapping; null is no list.
pub(super) fn list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<RawTenant>>, D::Error> {
    struct Entry(RawTenant);
    impl<'de> Deserialize<'de> for Entry {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let shape = Shaped::map("expected a mapping with tenant_id and credential", false);
            Ok(Entry(deserializer.deserialize_any(shape)?.unwrap_or_default()))
        }
    }
    let entries: Option<Vec<Entry>> =
        deserializer.deserialize_any(Shaped::list("expected a list of connections", true))?;
    Ok(entries.map(|entries| entries.into_iter().map(|Entry(raw)| raw).collect()))
}

/// A secret written in the file is refused whatever its value, which is never shown.
fn refuse_literal_secret<'de, D: Deserializer<'de>>(_: D) -> Result<(), D::Error> {
    Err(reject(
        &show(&Value::String("(not shown)".into())),
        "secrets are not written in config.yml: put the value in an app setting (or a Key Vault \
         reference) and name that setting in client_secret_env / certificate_password_env",
    ))
}

read_from_json!(TenantCredential);

impl TenantCredential {
    /// `credential` of one connection: no managed identity (it signs in to its own tenant only).
    fn read(value: Value) -> Result<TenantCredential, Rejection> {
        let NonEmptyText(name) = NonEmptyText::read(value)?;
        let kind = match name.as_str() {
            "default" => TenantCredential::Default,
            "client_secret" => TenantCredential::ClientSecret,
            "client_certificate" => TenantCredential::ClientCertificate,
            "workload_identity" => TenantCredential::WorkloadIdentity,
            "azure_cli" => TenantCredential::AzureCli,
            "managed_identity" | "auto" => {
                return Err(Rejection {
                    value: show(&Value::String(name)),
                    expected: "a managed identity signs in to its own tenant only: use default for the home \
                               tenant's connection (azure.credential), and client_secret, client_certificate, \
                               workload_identity or azure_cli for another tenant",
                });
            }
            _ => {
                return Err(Rejection {
                    value: show(&Value::String(name)),
                    expected: CREDENTIALS_EXPECTED,
                });
            }
        };
        Ok(kind)
    }
}

const CREDENTIALS_EXPECTED: &str =
    "expected default, client_secret, client_certificate, workload_identity or azure_cli";

/// Checks `azure.tenants` (absent: no list, the single connection of `azure.*`).
pub(super) fn read(
    raw: Option<Vec<RawTenant>>,
    origin: &str,
    single: &AzureSettings,
) -> Result<Vec<TenantConnection>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let invalid = |key: String, value: &Value, expected: &str| ConfigError::Invalid {
        origin: origin.to_string(),
        key,
        value: show(value),
        expected: expected.to_string(),
    };
    if raw.is_empty() {
        return Err(invalid(
            "azure.tenants".into(),
            &Value::Array(Vec::new()),
            "expected at least one connection (or no azure.tenants at all)",
        ));
    }
    for key in ["subscriptions", "exclude_subscriptions", "management_groups"] {
        let set = match key {
            "subscriptions" => &single.subscriptions,
            "exclude_subscriptions" => &single.exclude_subscriptions,
            _ => &single.management_groups,
        };
        if !set.is_empty() {
            return Err(invalid(
                format!("azure.{key}"),
                &Value::from(set.clone()),
                "with azure.tenants, each connection has its own subscriptions, exclude_subscriptions and \
                 management_groups: move this list into the connection it belongs to",
            ));
        }
    }
    let out = raw
        .into_iter()
        .enumerate()
        .map(|(index, raw)| connection(raw, &format!("azure.tenants[{index}]"), &invalid))
        .collect::<Result<Vec<_>, _>>()?;
    check_disjoint(&out).map_err(|(key, value, expected)| invalid(key, &Value::String(value), &expected))?;
    Ok(out)
}

type Invalid<'a> = dyn Fn(String, &Value, &str) -> ConfigError + 'a;

fn connection(raw: RawTenant, at: &str, invalid: &Invalid) -> Result<TenantConnection, ConfigError> {
    let text = |t: Option<NonEmptyText>| t.map(|NonEmptyText(s)| s);
    let list = |l: Option<TextList>| l.map(|TextList(items)| items).unwrap_or_default();
    let tenant_id = text(raw.tenant_id).ok_or_else(|| {
        invalid(
            format!("{at}.tenant_id"),
            &Value::Null,
            "every connection names its tenant",
        )
    })?;
    // The tenant goes into the token endpoint's path: a GUID or a domain name, nothing else.
    if !tenant_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(invalid(
            format!("{at}.tenant_id"),
            &Value::String(tenant_id),
            "expected a tenant id (a GUID) or a tenant domain name",
        ));
    }
    let credential = raw
        .credential
        .ok_or_else(|| invalid(format!("{at}.credential"), &Value::Null, CREDENTIALS_EXPECTED))?;
    let conn = TenantConnection {
        tenant_id,
        credential,
        client_id: text(raw.client_id),
        client_secret_env: text(raw.client_secret_env),
        certificate_path: text(raw.certificate_path),
        certificate_password_env: text(raw.certificate_password_env),
        federated_token_file: text(raw.federated_token_file),
        subscriptions: list(raw.subscriptions),
        exclude_subscriptions: list(raw.exclude_subscriptions),
        management_groups: list(raw.management_groups),
    };
    check_needs(&conn, at, invalid)?;
    Ok(conn)
}

/// The settings each credential needs.
fn check_needs(conn: &TenantConnection, at: &str, invalid: &Invalid) -> Result<(), ConfigError> {
    let credential = conn.credential;
    let needs: &[(&str, bool)] = match credential {
        TenantCredential::ClientSecret => &[
            ("client_id", conn.client_id.is_some()),
            ("client_secret_env", conn.client_secret_env.is_some()),
        ],
        TenantCredential::ClientCertificate => &[
            ("client_id", conn.client_id.is_some()),
            ("certificate_path", conn.certificate_path.is_some()),
        ],
        TenantCredential::WorkloadIdentity => &[("client_id", conn.client_id.is_some())],
        TenantCredential::Default | TenantCredential::AzureCli => &[],
    };
    if let Some((key, _)) = needs.iter().find(|(_, present)| !present) {
        return Err(invalid(
            format!("{at}.{key}"),
            &Value::Null,
            &format!("credential {} needs {key}", credential.name()),
        ));
    }
    Ok(())
}

/// A subscription listed by two connections is refused: which credential reads it would be
/// a guess.
fn check_disjoint(connections: &[TenantConnection]) -> Result<(), (String, String, String)> {
    for (i, a) in connections.iter().enumerate() {
        for (j, b) in connections.iter().enumerate().skip(i + 1) {
            if let Some(sub) = a
                .subscriptions
                .iter()
                .find(|s| b.subscriptions.iter().any(|t| t.eq_ignore_ascii_case(s)))
            {
                return Err((
                    format!("azure.tenants[{j}].subscriptions"),
                    sub.clone(),
                    format!(
                        "subscription {sub} is also listed by azure.tenants[{i}] (tenant {}): list each \
                         subscription under one connection only",
                        a.tenant_id
                    ),
                ));
            }
        }
    }
    Ok(())
}

impl TenantConnection {
    /// Whether this connection's own lists let it read `subscription` (a connection that
    /// lists no subscription reads every one it can see, less its exclusions).
    pub(crate) fn may_read(&self, subscription: &str) -> bool {
        let listed =
            self.subscriptions.is_empty() || self.subscriptions.iter().any(|s| s.eq_ignore_ascii_case(subscription));
        listed
            && !self
                .exclude_subscriptions
                .iter()
                .any(|s| s.eq_ignore_ascii_case(subscription))
    }
}

/// Narrows the settings to one subscription (a subscription resync): the single connection's
/// scope, or each connection that may read it; `false` when none may.
pub fn narrow_to_subscription(azure: &mut AzureSettings, subscription: &str) -> bool {
    narrow_to_subscriptions(azure, &[subscription.to_string()])
}

/// Narrows the settings to `subscriptions` (a resync, or one batch of a fanned-out reconcile):
/// the single connection's scope, or each connection that may read one of them, limited to
/// those; `false` when one of them no connection may read.
pub(crate) fn narrow_to_subscriptions(azure: &mut AzureSettings, subscriptions: &[String]) -> bool {
    if azure.tenants.is_empty() {
        azure.subscriptions = subscriptions.to_vec();
        azure.management_groups.clear();
        return true;
    }
    if !subscriptions
        .iter()
        .all(|s| azure.tenants.iter().any(|c| c.may_read(s)))
    {
        return false;
    }
    azure.tenants.retain(|c| subscriptions.iter().any(|s| c.may_read(s)));
    for c in &mut azure.tenants {
        c.subscriptions = subscriptions.iter().filter(|s| c.may_read(s)).cloned().collect();
        c.management_groups.clear();
    }
    true
}
