//! What a Lambda deployment must configure, checked before the engines are built, so a
//! mistake is one clear message instead of a slow failure on the first event:
//! - Azure credentials that exist outside Azure: a client secret, a client certificate or
//!   workload identity federation. `azure.credential: auto` never reaches managed identity or the IMDS probe
//!   under Lambda, because one of those must be configured;
//! - a ledger in Azure Table Storage (the function's file system is read-only and instances
//!   do not share it), so that Lambda instances, and a Functions deployment, share one ledger.

use crate::adapters::azure::credential::env::AZURE_CLIENT_CERTIFICATE_PATH;
use crate::adapters::store::{LedgerTarget, target};
use crate::config::{Config, CredentialKind, EnvSource, LedgerKind, env};

/// Azure credential variables (the `azure_identity` names).
pub(crate) const AZURE_CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
pub(crate) const AZURE_FEDERATED_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";
pub(crate) const AZURE_TENANT_ID: &str = "AZURE_TENANT_ID";
pub(crate) const AZURE_CLIENT_ID: &str = "AZURE_CLIENT_ID";

/// Whether this process runs under Lambda (`AWS_LAMBDA_FUNCTION_NAME` is set).
pub fn under_lambda(env: &dyn EnvSource) -> bool {
    env.var(super::env::AWS_LAMBDA_FUNCTION_NAME)
        .is_some_and(|v| !v.trim().is_empty())
}

/// Checks the configuration for a Lambda deployment. Returns warnings to log; an error says
/// what to set instead.
pub fn check(config: &Config, env: &dyn EnvSource) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    check_credential(config, env)?;
    match target(&config.ledger, config.azure.cloud, env).map_err(|e| format!("ledger: {e}"))? {
        LedgerTarget::Table { .. } => {}
        LedgerTarget::Local(path) if config.ledger.kind == LedgerKind::Local => warnings.push(format!(
            "ledger.kind is local ({}): each Lambda instance keeps its own ledger and loses it when \
             recycled; use Table Storage beyond a trial",
            path.display()
        )),
        LedgerTarget::Local(_) => {
            return Err(format!(
                "no ledger storage: under Lambda the ledger lives in Azure Table Storage; set {} \
                 (a connection string) or {} / {} (identity-based, with the Azure credential)",
                env::AZURE_WEB_JOBS_STORAGE,
                env::AZURE_WEB_JOBS_STORAGE_TABLE_SERVICE_URI,
                env::AZURE_WEB_JOBS_STORAGE_ACCOUNT_NAME
            ));
        }
    }
    let queue_set = [env::SERVICE_BUS_NAMESPACE, env::SERVICE_BUS_CONNECTION]
        .iter()
        .any(|name| env.var(name).is_some_and(|v| !v.trim().is_empty()));
    if queue_set {
        warnings.push(format!(
            "retries are sent to the Service Bus queue {}; the Lambda function only sends them: \
             the `retry` function of a Functions deployment sharing the queue runs them",
            env.var(env::RETRY_QUEUE).unwrap_or_default()
        ));
    } else {
        warnings.push(format!(
            "no retry queue ({} or {}): a change that fails for a passing reason answers 500, \
             so Event Grid delivers it again on its own schedule",
            env::SERVICE_BUS_NAMESPACE,
            env::SERVICE_BUS_CONNECTION
        ));
    }
    Ok(warnings)
}

fn check_credential(config: &Config, env: &dyn EnvSource) -> Result<(), String> {
    let set = |name: &str| env.var(name).is_some_and(|v| !v.trim().is_empty());
    let outside_azure = "there is no managed identity outside Azure: use azure.credential \
                         client_secret, client_certificate or workload_identity";
    match config.azure.credential {
        CredentialKind::ManagedIdentity => Err(format!("azure.credential is managed_identity; {outside_azure}")),
        CredentialKind::AzureCli => Err(format!(
            "azure.credential is azure_cli, which a Lambda function does not have; {outside_azure}"
        )),
        CredentialKind::ClientSecret | CredentialKind::ClientCertificate | CredentialKind::WorkloadIdentity => Ok(()),
        CredentialKind::Auto
            if set(AZURE_FEDERATED_TOKEN_FILE) || set(AZURE_CLIENT_SECRET) || set(AZURE_CLIENT_CERTIFICATE_PATH) =>
        {
            Ok(())
        }
        CredentialKind::Auto => Err(format!(
            "azure.credential is auto but neither {AZURE_CLIENT_SECRET} nor {AZURE_FEDERATED_TOKEN_FILE} \
             is set (with {AZURE_TENANT_ID} and {AZURE_CLIENT_ID}); {outside_azure}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn config(yaml: serde_json::Value) -> Config {
        Config::from_value(&yaml, "test", &HashMap::<String, String>::new()).unwrap()
    }

    const STORAGE: (&str, &str) = (
        "AzureWebJobsStorage",
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net",
    );

    #[test]
    fn auto_needs_a_secret_or_a_federated_token_under_lambda() {
        let cfg = config(json!({"scan_id": "s"}));
        let err = check(&cfg, &env(&[STORAGE])).unwrap_err();
        assert!(
            err.contains("AZURE_CLIENT_SECRET") && err.contains("no managed identity"),
            "{err}"
        );
        assert!(check(&cfg, &env(&[STORAGE, (AZURE_CLIENT_SECRET, "x")])).is_ok());
        assert!(check(&cfg, &env(&[STORAGE, (AZURE_FEDERATED_TOKEN_FILE, "/tmp/t")])).is_ok());
        assert!(check(&cfg, &env(&[STORAGE, (AZURE_CLIENT_CERTIFICATE_PATH, "/tmp/app.pem")])).is_ok());
        // Even with Azure's managed identity variables present, auto does not rely on them here.
        let err = check(
            &cfg,
            &env(&[STORAGE, ("IDENTITY_ENDPOINT", "http://x"), ("IDENTITY_HEADER", "h")]),
        )
        .unwrap_err();
        assert!(err.contains("auto"), "{err}");
    }

    #[test]
    fn managed_identity_and_the_cli_are_refused() {
        for kind in ["managed_identity", "azure_cli"] {
            let cfg = config(json!({"scan_id": "s", "azure": {"credential": kind}}));
            let err = check(&cfg, &env(&[STORAGE, (AZURE_CLIENT_SECRET, "x")])).unwrap_err();
            assert!(err.contains(kind), "{err}");
        }
        let cfg = config(json!({"scan_id": "s", "azure": {"credential": "client_secret"}}));
        assert!(check(&cfg, &env(&[STORAGE])).is_ok());
    }

    #[test]
    fn the_ledger_must_be_shared_storage_unless_local_is_chosen() {
        let cfg = config(json!({"scan_id": "s"}));
        let err = check(&cfg, &env(&[(AZURE_CLIENT_SECRET, "x")])).unwrap_err();
        assert!(err.contains("Table Storage"), "{err}");
        let identity = env(&[
            (AZURE_CLIENT_SECRET, "x"),
            ("AzureWebJobsStorage__accountName", "acct"),
            (
                "ServiceBusConnection__fullyQualifiedNamespace",
                "ns.servicebus.windows.net",
            ),
        ]);
        let warnings = check(&cfg, &identity).unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("only sends them"), "{warnings:?}");
        let local = config(json!({"scan_id": "s", "ledger": {"kind": "local", "path": "/tmp/l.redb"}}));
        let warnings = check(&local, &env(&[(AZURE_CLIENT_SECRET, "x")])).unwrap();
        assert!(warnings.iter().any(|w| w.contains("own ledger")), "{warnings:?}");
        assert!(warnings.iter().any(|w| w.contains("no retry queue")), "{warnings:?}");
    }
}
