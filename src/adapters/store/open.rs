//! Choosing and opening the ledger: `ledger.kind` (auto, table, local), the Functions storage
//! settings (`AzureWebJobsStorage` connection string, or identity-based
//! `AzureWebJobsStorage__accountName` / `__tableServiceUri`), `ledger.path`, `ledger.table`.

use std::path::PathBuf;
use std::sync::Arc;

use crate::adapters::azure::TokenSource;
use crate::adapters::http::RetryPolicy;
use crate::adapters::store::local::LocalLedger;
use crate::adapters::store::table::{TableAuth, TableLedger};
use crate::config::{Cloud, Config, EnvSource, LedgerKind, LedgerSettings, env};
use crate::domain::secret::Secret;
use crate::ledger::{Ledger, LedgerError};

/// Azurite's well-known development account (public, documented:
/// https://learn.microsoft.com/azure/storage/common/storage-use-azurite#well-known-storage-account-and-key).
pub(super) const DEV_ACCOUNT: &str = "devstoreaccount1";
pub(super) const DEV_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
pub(super) const DEV_TABLE_ENDPOINT: &str = "http://127.0.0.1:10002/devstoreaccount1";

/// The local store's default location, relative to the working directory.
pub fn default_local_path() -> PathBuf {
    PathBuf::from(".seedwatch").join("ledger.redb")
}

/// A Table Storage endpoint and how to authenticate to it.
#[derive(Debug, Clone)]
pub struct StorageTarget {
    pub endpoint: String,
    /// Shared Key (account, key) from a connection string; `None` means Entra ID tokens.
    pub shared_key: Option<(String, Secret)>,
}

/// Where the ledger lives.
#[derive(Debug, Clone)]
pub enum LedgerTarget {
    Local(PathBuf),
    Table { storage: StorageTarget, table: String },
}

/// Decides where the ledger lives from the settings and the environment (no I/O).
pub fn target(settings: &LedgerSettings, cloud: Cloud, env: &dyn EnvSource) -> Result<LedgerTarget, LedgerError> {
    let storage = storage_from_env(cloud, env)?;
    let local = || LedgerTarget::Local(settings.path.clone().unwrap_or_else(default_local_path));
    match (settings.kind, storage) {
        (LedgerKind::Local, _) | (LedgerKind::Auto, None) => Ok(local()),
        (LedgerKind::Auto | LedgerKind::Table, Some(storage)) => Ok(LedgerTarget::Table {
            storage,
            table: settings.table.clone(),
        }),
        (LedgerKind::Table, None) => Err(LedgerError::Config(format!(
            "ledger.kind is table but none of {}, {} or {} is set",
            env::AZURE_WEB_JOBS_STORAGE,
            env::AZURE_WEB_JOBS_STORAGE_ACCOUNT_NAME,
            env::AZURE_WEB_JOBS_STORAGE_TABLE_SERVICE_URI
        ))),
    }
}

/// Opens the configured ledger. `tokens` is needed for identity-based storage only.
pub async fn open(
    config: &Config,
    env: &dyn EnvSource,
    tokens: Option<Arc<dyn TokenSource>>,
) -> Result<Arc<dyn Ledger>, LedgerError> {
    match target(&config.ledger, config.azure.cloud, env)? {
        LedgerTarget::Local(path) => Ok(Arc::new(LocalLedger::open(&path)?)),
        LedgerTarget::Table { storage, table } => {
            let auth = match storage.shared_key {
                Some((account, key)) => TableAuth::SharedKey { account, key },
                None => TableAuth::Bearer(tokens.ok_or_else(|| {
                    LedgerError::Credential("identity-based storage needs an Azure credential".into())
                })?),
            };
            let http = crate::adapters::http::client(config.http.timeout);
            let retry = RetryPolicy::from_settings(&config.http);
            Ok(Arc::new(
                TableLedger::connect(http, &storage.endpoint, &table, auth, retry).await?,
            ))
        }
    }
}

fn storage_from_env(cloud: Cloud, env: &dyn EnvSource) -> Result<Option<StorageTarget>, LedgerError> {
    let set = |name: &str| env.var(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    if let Some(connection) = set(env::AZURE_WEB_JOBS_STORAGE) {
        return parse_connection_string(&connection, cloud).map(Some);
    }
    if let Some(uri) = set(env::AZURE_WEB_JOBS_STORAGE_TABLE_SERVICE_URI) {
        let endpoint = check_url(&uri, env::AZURE_WEB_JOBS_STORAGE_TABLE_SERVICE_URI)?;
        return Ok(Some(StorageTarget {
            endpoint,
            shared_key: None,
        }));
    }
    if let Some(account) = set(env::AZURE_WEB_JOBS_STORAGE_ACCOUNT_NAME) {
        if !account.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
            return Err(LedgerError::Config(format!(
                "{} = {account:?}: a storage account name is lower-case letters and digits",
                env::AZURE_WEB_JOBS_STORAGE_ACCOUNT_NAME
            )));
        }
        return Ok(Some(StorageTarget {
            endpoint: format!("https://{account}.{}", cloud.table_suffix()),
            shared_key: None,
        }));
    }
    Ok(None)
}

fn check_url(raw: &str, name: &str) -> Result<String, LedgerError> {
    crate::config::url::check_base_url(raw).map_err(|why| LedgerError::Config(format!("{name} {raw}: {why}")))
}

/// Parses a storage connection string. Errors name the missing or bad part, never the value
/// (the string holds the account key).
pub fn parse_connection_string(text: &str, cloud: Cloud) -> Result<StorageTarget, LedgerError> {
    let what = env::AZURE_WEB_JOBS_STORAGE;
    let mut parts: Vec<(String, String)> = Vec::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, value)) = part.split_once('=') else {
            return Err(LedgerError::Config(format!(
                "{what}: a connection string is Key=Value pairs separated by ';'"
            )));
        };
        parts.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let get = |key: &str| parts.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    if get("usedevelopmentstorage").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(StorageTarget {
            endpoint: DEV_TABLE_ENDPOINT.into(),
            shared_key: Some((DEV_ACCOUNT.into(), Secret::new(DEV_ACCOUNT_KEY))),
        });
    }
    if get("sharedaccesssignature").is_some() {
        return Err(LedgerError::Config(format!(
            "{what}: SAS connection strings are not supported for the ledger; use an account key or identity-based storage ({})",
            env::AZURE_WEB_JOBS_STORAGE_ACCOUNT_NAME
        )));
    }
    let account = get("accountname").ok_or_else(|| LedgerError::Config(format!("{what}: AccountName is missing")))?;
    let key = get("accountkey").ok_or_else(|| LedgerError::Config(format!("{what}: AccountKey is missing")))?;
    use base64::Engine;
    if base64::engine::general_purpose::STANDARD.decode(&key).is_err() {
        return Err(LedgerError::Config(format!("{what}: AccountKey is not valid base64")));
    }
    let endpoint = match get("tableendpoint") {
        Some(endpoint) => check_url(&endpoint, &format!("{what}: TableEndpoint"))?,
        None => {
            let protocol = get("defaultendpointsprotocol").unwrap_or_else(|| "https".into());
            if protocol != "https" && protocol != "http" {
                return Err(LedgerError::Config(format!(
                    "{what}: DefaultEndpointsProtocol must be https or http"
                )));
            }
            let suffix = match get("endpointsuffix") {
                Some(suffix) => format!("table.{suffix}"),
                None => cloud.table_suffix().to_string(),
            };
            check_url(
                &format!("{protocol}://{account}.{suffix}"),
                &format!("{what}: endpoint"),
            )?
        }
    };
    Ok(StorageTarget {
        endpoint,
        shared_key: Some((account, Secret::new(key))),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::DEFAULT_LEDGER_TABLE;

    fn settings(kind: LedgerKind) -> LedgerSettings {
        LedgerSettings {
            kind,
            path: None,
            table: DEFAULT_LEDGER_TABLE.into(),
        }
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn auto_picks_table_only_when_storage_is_configured() {
        let t = target(&settings(LedgerKind::Auto), Cloud::Public, &env(&[])).unwrap();
        assert!(matches!(t, LedgerTarget::Local(p) if p == default_local_path()));
        let t = target(
            &settings(LedgerKind::Auto),
            Cloud::Public,
            &env(&[(env::AZURE_WEB_JOBS_STORAGE, "UseDevelopmentStorage=true")]),
        )
        .unwrap();
        match t {
            LedgerTarget::Table { storage, table } => {
                assert_eq!(storage.endpoint, DEV_TABLE_ENDPOINT);
                assert_eq!(table, "seedwatch");
                assert_eq!(storage.shared_key.unwrap().0, DEV_ACCOUNT);
            }
            other => panic!("{other:?}"),
        }
        let t = target(
            &settings(LedgerKind::Local),
            Cloud::Public,
            &env(&[(env::AZURE_WEB_JOBS_STORAGE, "UseDevelopmentStorage=true")]),
        )
        .unwrap();
        assert!(matches!(t, LedgerTarget::Local(_)));
        let err = target(&settings(LedgerKind::Table), Cloud::Public, &env(&[])).unwrap_err();
        assert!(err.to_string().contains("AzureWebJobsStorage"), "{err}");
    }

    #[test]
    fn identity_based_storage_uses_tokens() {
        let t = target(
            &settings(LedgerKind::Auto),
            Cloud::UsGovernment,
            &env(&[(env::AZURE_WEB_JOBS_STORAGE_ACCOUNT_NAME, "acct1")]),
        )
        .unwrap();
        let LedgerTarget::Table { storage, .. } = t else {
            panic!()
        };
        assert_eq!(storage.endpoint, "https://acct1.table.core.usgovcloudapi.net");
        assert!(storage.shared_key.is_none());
        let t = target(
            &settings(LedgerKind::Table),
            Cloud::Public,
            &env(&[(
                env::AZURE_WEB_JOBS_STORAGE_TABLE_SERVICE_URI,
                "https://acct2.table.core.windows.net/",
            )]),
        )
        .unwrap();
        let LedgerTarget::Table { storage, .. } = t else {
            panic!()
        };
        assert_eq!(storage.endpoint, "https://acct2.table.core.windows.net");
    }

    #[test]
    fn connection_strings_parse_and_errors_hide_the_key() {
        let key = "c2VjcmV0LWtleS12YWx1ZQ==";
        let s = parse_connection_string(
            &format!(
                "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={key};EndpointSuffix=core.windows.net"
            ),
            Cloud::Public,
        )
        .unwrap();
        assert_eq!(s.endpoint, "https://acct.table.core.windows.net");
        let (account, secret) = s.shared_key.unwrap();
        assert_eq!((account.as_str(), secret.expose()), ("acct", key));
        let s = parse_connection_string(
            &format!(
                "AccountName=devstoreaccount1;AccountKey={key};TableEndpoint=http://127.0.0.1:5/devstoreaccount1;"
            ),
            Cloud::Public,
        )
        .unwrap();
        assert_eq!(s.endpoint, "http://127.0.0.1:5/devstoreaccount1");
        for bad in [
            format!("AccountKey={key}"),
            "AccountName=a".to_string(),
            "AccountName=a;AccountKey=%%%".to_string(),
            "garbage".to_string(),
            "AccountName=a;SharedAccessSignature=sv=1&sig=abc".to_string(),
        ] {
            let err = parse_connection_string(&bad, Cloud::Public).unwrap_err().to_string();
            assert!(!err.contains(key) && !err.contains("sig=abc"), "{err}");
        }
    }
}

#[cfg(test)]
mod connection_string_tests {
    use super::parse_connection_string;
    use crate::config::Cloud;

    #[test]
    fn storage_and_service_bus_connection_strings_refuse_plain_http_to_other_hosts() {
        let key = "a2V5";
        let remote = format!("AccountName=acct;AccountKey={key};TableEndpoint=http://acct.table.example.com/");
        let err = parse_connection_string(&remote, Cloud::Public).unwrap_err().to_string();
        assert!(
            err.contains("TableEndpoint") && err.contains("http://acct.table.example.com") && err.contains("loopback"),
            "{err}"
        );
        let protocol = format!("DefaultEndpointsProtocol=http;AccountName=acct;AccountKey={key}");
        let err = parse_connection_string(&protocol, Cloud::Public)
            .unwrap_err()
            .to_string();
        assert!(err.contains("loopback") && !err.contains(key), "{err}");
        let local = format!("AccountName=acct;AccountKey={key};TableEndpoint=http://127.0.0.1:10002/acct");
        assert!(parse_connection_string(&local, Cloud::Public).is_ok());
        let bus = "Endpoint=http://bus.example.com/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0";
        let err = crate::adapters::servicebus::ConnectionString::parse(bus)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("ServiceBusConnection") && err.contains("loopback") && !err.contains("c2VjcmV0"),
            "{err}"
        );
        let local = "Endpoint=http://127.0.0.1:9000/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0";
        assert!(crate::adapters::servicebus::ConnectionString::parse(local).is_ok());
    }
}
