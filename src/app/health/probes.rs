//! The doctor's probes for configuration, tokens, ASM and the ledger. Each returns lines; none
//! fails the caller. Secrets never reach a line: tokens are only decoded for their identity
//! claims, and error texts come from the clients, which blank keys out.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::report::CheckLine;
use crate::adapters::asm::{AsmApi, AsmError};
use crate::adapters::azure::TokenSource;
use crate::adapters::azure::credential::token_claims;
use crate::config::{Config, EnvSource, env};
use crate::ledger::{Expect, Ledger};

/// The Table Storage token audience.
pub(crate) const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

/// Who the credential is, from the token's claims (or the configured client id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Identity {
    pub client_id: Option<String>,
    pub object_id: Option<String>,
}

impl Identity {
    /// What `az role assignment create --assignee` takes.
    pub(crate) fn assignee(&self) -> String {
        self.object_id
            .clone()
            .or_else(|| self.client_id.clone())
            .unwrap_or_else(|| "<the identity's client id>".into())
    }
}

/// Where each setting came from: `env`, `file` or `default`.
pub(crate) fn config_lines(config: &Config, env: &dyn EnvSource, file: Option<&Path>) -> Vec<CheckLine> {
    let yaml = config_yaml(env, file);
    let in_file = |path: &[&str]| {
        let mut value = &yaml;
        for key in path {
            match value.get(*key) {
                Some(v) => value = v,
                None => return false,
            }
        }
        true
    };
    let set = |name: &str| env.var(name).is_some_and(|v| !v.trim().is_empty());
    let source = |env_name: Option<&str>, path: &[&str]| match (env_name.is_some_and(set), in_file(path)) {
        (true, _) => "env",
        (false, true) => "file",
        (false, false) => "default",
    };
    let sources = [
        ("scan_id", source(Some(env::SCAN_ID), &["scan_id"])),
        ("API_KEY", if set(env::API_KEY) { "env" } else { "missing" }),
        ("seed_tag", source(Some(env::SEED_TAG), &["seed_tag"])),
        (
            "delete_stale_seeds",
            source(Some(env::DELETE_STALE_SEEDS), &["delete_stale_seeds"]),
        ),
        ("asm.base_url", source(None, &["asm", "base_url"])),
        ("azure.credential", source(None, &["azure", "credential"])),
        ("azure.subscriptions", source(None, &["azure", "subscriptions"])),
        ("ledger.kind", source(None, &["ledger", "kind"])),
        (env::RETRY_QUEUE, if set(env::RETRY_QUEUE) { "env" } else { "unset" }),
    ];
    let listed: Vec<String> = sources.iter().map(|(k, s)| format!("{k} ({s})")).collect();
    let mut lines = vec![CheckLine::ok(
        "config",
        format!("valid, from {}: {}", config.origin, listed.join(", ")),
    )];
    for warning in &config.warnings {
        lines.push(CheckLine::warning(
            "config",
            warning.clone(),
            "remove or correct the key in the configuration",
        ));
    }
    lines
}

fn config_yaml(env: &dyn EnvSource, file: Option<&Path>) -> Value {
    let text = match env.var(env::CONNECTOR_CONFIG) {
        Some(text) => text,
        None => std::fs::read_to_string(file.unwrap_or(Path::new("config.yml"))).unwrap_or_default(),
    };
    serde_saphyr::from_str::<Value>(&text).unwrap_or(Value::Null)
}

/// One token per audience in use; the identity from the first token's claims.
pub(crate) async fn token_lines(
    config: &Config,
    env: &dyn EnvSource,
    tokens: Option<&Arc<dyn TokenSource>>,
    audiences: &[(&str, &str)],
) -> (Vec<CheckLine>, Identity) {
    let configured = config
        .azure
        .managed_identity_client_id
        .clone()
        .or_else(|| env.var(crate::adapters::azure::credential::env::AZURE_CLIENT_ID));
    let mut identity = Identity {
        client_id: configured,
        object_id: None,
    };
    let chosen = crate::adapters::azure::credential::choose_without_probe(&config.azure, env)
        .map(|c| c.name())
        .unwrap_or("auto (managed identity if IMDS answers, else Azure CLI)");
    let Some(tokens) = tokens else {
        let line = CheckLine::failed(
            "credential",
            format!("{chosen}: no credential could be built"),
            "set azure.credential and its variables (see README, Authentication)",
        );
        return (vec![line], identity);
    };
    let mut lines = Vec::new();
    for (name, scope) in audiences {
        match tokens.bearer(scope).await {
            Ok(token) => {
                if let Some(claims) = token_claims(token.expose()) {
                    identity.client_id = identity.client_id.take().or_else(|| claims.client_id().map(str::to_string));
                    identity.object_id = identity.object_id.take().or(claims.oid);
                }
                let who = identity.client_id.as_deref().unwrap_or("unknown");
                lines.push(CheckLine::ok(
                    format!("token.{name}"),
                    format!("{chosen} got a token for {scope} (client id {who})"),
                ));
            }
            Err(e) => lines.push(CheckLine::failed(
                format!("token.{name}"),
                format!("{chosen}: {e}"),
                "check the identity exists and is assigned to the app (managed identity), or the tenant, client id and secret",
            )),
        }
    }
    (lines, identity)
}

/// The ASM key, the scan, and seedwatch's tag on the scan's seeds.
pub(crate) async fn asm_lines(asm: &dyn AsmApi, config: &Config) -> Vec<CheckLine> {
    let scan = config.scan_id.clone().unwrap_or_default();
    if let Err(e) = asm.check_auth().await {
        let advice = match e {
            AsmError::Unauthorized { .. } => "set API_KEY to a valid Hexiosec ASM API key (Key Vault secret)",
            _ => "check asm.base_url and that ASM is reachable from the app",
        };
        return vec![CheckLine::failed("asm.key", e.to_string(), advice)];
    }
    let mut lines = vec![CheckLine::ok("asm.key", "the API key is valid")];
    if let Err(e) = asm.check_scan().await {
        lines.push(CheckLine::failed(
            "asm.scan",
            e.to_string(),
            "set scan_id (or SCAN_ID) to a scan the key can see",
        ));
        return lines;
    }
    lines.push(CheckLine::ok("asm.scan", format!("scan {scan} found")));
    lines.push(match asm.list_seeds().await {
        Ok(seeds) => {
            let tagged = seeds.iter().filter(|s| s.has_tag(&config.seed_tag)).count();
            if tagged > 0 {
                CheckLine::ok(
                    "asm.tag",
                    format!("{tagged} of {} seeds carry the tag {:?}", seeds.len(), config.seed_tag),
                )
            } else {
                CheckLine::warning(
                    "asm.tag",
                    format!("no seed of {} carries the tag {:?}", seeds.len(), config.seed_tag),
                    "run `seedwatch sync` (or wait for the first reconcile); seedwatch owns only tagged seeds",
                )
            }
        }
        Err(e) => CheckLine::failed("asm.tag", e.to_string(), "check that ASM is reachable"),
    });
    lines
}

/// Writes, reads and deletes a probe entity in the ledger.
pub(crate) async fn ledger_write_line(ledger: &dyn Ledger) -> CheckLine {
    let row = format!("probe-{}", uuid::Uuid::new_v4().simple());
    let partition = crate::ledger::history::HISTORY_PARTITION;
    let advice =
        "check the storage settings (AzureWebJobsStorage…) and the identity's Storage Table Data Contributor role";
    let result = async {
        ledger
            .put_raw(partition, &row, "{\"probe\":true}", &Expect::Absent)
            .await?;
        let read = ledger.get_raw(partition, &row).await?;
        ledger.delete_raw(partition, &row, None).await?;
        Ok::<bool, crate::ledger::LedgerError>(read.is_some())
    }
    .await;
    match result {
        Ok(true) => CheckLine::ok(
            "ledger",
            format!("{}: wrote, read and deleted a probe entity", ledger.describe()),
        ),
        Ok(false) => CheckLine::failed(
            "ledger",
            format!("{}: a probe entity written was not read back", ledger.describe()),
            advice,
        ),
        Err(e) => CheckLine::failed("ledger", format!("{}: {e}", ledger.describe()), advice),
    }
}

/// Reads the ledger's history (the status function's read-only probe).
pub(crate) async fn ledger_read_line(ledger: &dyn Ledger) -> CheckLine {
    match crate::ledger::history::last_event_ms(ledger).await {
        Ok(_) => CheckLine::ok("ledger", format!("{} is readable", ledger.describe())),
        Err(e) => CheckLine::failed(
            "ledger",
            format!("{}: {e}", ledger.describe()),
            "check the storage settings (AzureWebJobsStorage…) and the identity's storage data role",
        ),
    }
}
