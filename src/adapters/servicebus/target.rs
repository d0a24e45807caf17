//! Where the retry queue is and how requests to it are authorised, read from the app settings
//! (`RETRY_QUEUE`, `ServiceBusConnection__fullyQualifiedNamespace` or `ServiceBusConnection`).

use std::sync::Arc;

use super::QueueError;
use crate::adapters::azure::TokenSource;
use crate::config::{Config, EnvSource, env};
use crate::domain::secret::Secret;

/// How requests are authorised.
#[derive(Clone)]
pub enum QueueAuth {
    /// Entra ID bearer tokens (managed identity with Azure Service Bus Data Sender).
    Bearer(Arc<dyn TokenSource>),
    /// Shared access signature from a connection string's key.
    Sas { key_name: String, key: Secret },
}

/// The queue's address and credentials, read from the app settings.
#[derive(Clone)]
pub struct QueueTarget {
    /// `https://mysbns.servicebus.windows.net` or the `azure.endpoints.service_bus` override.
    pub base_url: String,
    pub queue: String,
    pub auth: QueueAuth,
}

impl std::fmt::Debug for QueueTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match &self.auth {
            QueueAuth::Bearer(_) => "bearer".to_string(),
            QueueAuth::Sas { key_name, .. } => format!("sas({key_name})"),
        };
        f.debug_struct("QueueTarget")
            .field("base_url", &self.base_url)
            .field("queue", &self.queue)
            .field("auth", &auth)
            .finish()
    }
}

impl QueueTarget {
    /// Reads `RETRY_QUEUE` and either `ServiceBusConnection__fullyQualifiedNamespace` (bearer
    /// tokens from `tokens`) or a connection string in `ServiceBusConnection` (SAS).
    /// `azure.endpoints.service_bus` replaces the namespace URL (tests, proxies).
    pub fn from_env(
        env: &dyn EnvSource,
        config: &Config,
        tokens: Option<Arc<dyn TokenSource>>,
    ) -> Result<QueueTarget, QueueError> {
        let queue = env
            .var(env::RETRY_QUEUE)
            .map(|q| q.trim().to_string())
            .filter(|q| !q.is_empty())
            .ok_or_else(|| QueueError::NotConfigured(format!("{} is not set", env::RETRY_QUEUE)))?;
        if queue.contains(['/', '?', '#']) {
            return Err(QueueError::NotConfigured(format!(
                "{} = {queue:?}: expected a queue name",
                env::RETRY_QUEUE
            )));
        }
        let namespace = env.var(env::SERVICE_BUS_NAMESPACE).filter(|v| !v.trim().is_empty());
        let connection = env.var(env::SERVICE_BUS_CONNECTION).filter(|v| !v.trim().is_empty());
        let (namespace_url, auth) = match (namespace, connection) {
            (Some(ns), _) => {
                let tokens = tokens.ok_or_else(|| {
                    QueueError::NotConfigured(format!(
                        "{} is set but no Azure credential is available",
                        env::SERVICE_BUS_NAMESPACE
                    ))
                })?;
                (namespace_url(&ns)?, QueueAuth::Bearer(tokens))
            }
            (None, Some(conn)) => {
                let parsed = ConnectionString::parse(&conn)?;
                (
                    parsed.endpoint,
                    QueueAuth::Sas {
                        key_name: parsed.key_name,
                        key: parsed.key,
                    },
                )
            }
            (None, None) => {
                return Err(QueueError::NotConfigured(format!(
                    "set {} (managed identity) or {} (connection string)",
                    env::SERVICE_BUS_NAMESPACE,
                    env::SERVICE_BUS_CONNECTION
                )));
            }
        };
        Ok(QueueTarget {
            base_url: config.azure.service_bus.clone().unwrap_or(namespace_url),
            queue,
            auth,
        })
    }

    pub(super) fn entity_url(&self) -> String {
        format!("{}/{}", self.base_url.trim_end_matches('/'), self.queue)
    }
}

/// `mysbns.servicebus.windows.net`, with or without a scheme or trailing slash, as a URL.
fn namespace_url(raw: &str) -> Result<String, QueueError> {
    let host = raw
        .trim()
        .trim_start_matches("sb://")
        .trim_start_matches("https://")
        .trim_end_matches('/');
    if host.is_empty() || host.contains(['/', '?', '#', ' ', '@']) {
        return Err(QueueError::NotConfigured(format!(
            "{} = {raw:?}: expected a namespace host such as mysbns.servicebus.windows.net",
            env::SERVICE_BUS_NAMESPACE
        )));
    }
    Ok(format!("https://{host}"))
}

/// The parts of a Service Bus connection string seedwatch uses.
pub struct ConnectionString {
    pub endpoint: String,
    pub key_name: String,
    pub key: Secret,
}

impl ConnectionString {
    /// Parses `Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=…;SharedAccessKey=…`.
    /// Errors name the missing part, never the key.
    pub(crate) fn parse(text: &str) -> Result<ConnectionString, QueueError> {
        let mut endpoint = None;
        let mut key_name = None;
        let mut key = None;
        for part in text.split(';') {
            let Some((name, value)) = part.split_once('=') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "endpoint" => endpoint = Some(value.to_string()),
                "sharedaccesskeyname" => key_name = Some(value.to_string()),
                "sharedaccesskey" => key = Some(Secret::new(value)),
                _ => {}
            }
        }
        let missing = |what: &str| {
            QueueError::NotConfigured(format!(
                "{}: no {what} in the connection string",
                env::SERVICE_BUS_CONNECTION
            ))
        };
        let endpoint = endpoint.filter(|e| !e.is_empty()).ok_or_else(|| missing("Endpoint"))?;
        let endpoint = if endpoint.starts_with("http://") {
            crate::config::url::check_base_url(&endpoint).map_err(|why| {
                QueueError::NotConfigured(format!("{}: Endpoint {endpoint}: {why}", env::SERVICE_BUS_CONNECTION))
            })?
        } else {
            namespace_url(&endpoint)?
        };
        Ok(ConnectionString {
            endpoint,
            key_name: key_name
                .filter(|k| !k.is_empty())
                .ok_or_else(|| missing("SharedAccessKeyName"))?,
            key: key
                .filter(|k| !k.expose().is_empty())
                .ok_or_else(|| missing("SharedAccessKey"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config() -> Config {
        Config::from_value(&serde_json::json!({}), "test", &HashMap::<String, String>::new()).unwrap()
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn targets_from_identity_and_connection_string() {
        let cfg = config();
        let tokens: Arc<dyn TokenSource> = Arc::new(crate::adapters::azure::StaticToken(Secret::new("t")));
        let t = QueueTarget::from_env(
            &env(&[
                (env::RETRY_QUEUE, "asm-retries"),
                (env::SERVICE_BUS_NAMESPACE, "mysbns.servicebus.windows.net"),
            ]),
            &cfg,
            Some(tokens),
        )
        .unwrap();
        assert_eq!(t.entity_url(), "https://mysbns.servicebus.windows.net/asm-retries");
        assert!(matches!(t.auth, QueueAuth::Bearer(_)));

        let conn = "Endpoint=sb://other.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=s3cr3t+key=";
        let t = QueueTarget::from_env(
            &env(&[(env::RETRY_QUEUE, "q"), (env::SERVICE_BUS_CONNECTION, conn)]),
            &cfg,
            None,
        )
        .unwrap();
        assert_eq!(t.entity_url(), "https://other.servicebus.windows.net/q");
        let QueueAuth::Sas { key_name, key } = &t.auth else {
            panic!("sas")
        };
        assert_eq!((key_name.as_str(), key.expose()), ("send", "s3cr3t+key="));
        assert!(!format!("{t:?}").contains("s3cr3t"));
    }

    #[test]
    fn missing_settings_say_what_to_set() {
        let cfg = config();
        let err = QueueTarget::from_env(&env(&[]), &cfg, None).unwrap_err().to_string();
        assert!(err.contains(env::RETRY_QUEUE), "{err}");
        let err = QueueTarget::from_env(&env(&[(env::RETRY_QUEUE, "q")]), &cfg, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(env::SERVICE_BUS_NAMESPACE) && err.contains(env::SERVICE_BUS_CONNECTION),
            "{err}"
        );
        let err = QueueTarget::from_env(
            &env(&[
                (env::RETRY_QUEUE, "q"),
                (
                    env::SERVICE_BUS_CONNECTION,
                    "Endpoint=sb://x/;SharedAccessKey=zzz-secret",
                ),
            ]),
            &cfg,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("SharedAccessKeyName") && !err.contains("zzz-secret"),
            "{err}"
        );
    }
}
