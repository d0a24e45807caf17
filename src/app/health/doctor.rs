//! Runs the probes in order: configuration, credential and tokens, subscriptions and Reader,
//! Event Grid, ASM, ledger, retry queue. The read-only part (configuration, tokens, ASM key and
//! scan) also runs when the handler starts, logged without failing the start.

use std::path::Path;
use std::sync::Arc;

use super::report::{CheckLine, Report};
use super::{arm_checks, probes, queue_probe};
use crate::adapters::asm::{AsmApi, AsmClient};
use crate::adapters::azure::TokenSource;
use crate::adapters::servicebus::{QueueAuth, QueueTarget};
use crate::adapters::store::LedgerTarget;
use crate::config::{Config, EnvSource};

/// The token audiences this configuration uses: ARM always, Service Bus and Storage when they
/// are reached with the credential (not with a connection string).
pub(crate) fn audiences(
    config: &Config,
    env: &dyn EnvSource,
    tokens: &Arc<dyn TokenSource>,
) -> Vec<(&'static str, String)> {
    let mut out = vec![("arm", config.azure.cloud.management_scope().to_string())];
    if let Ok(target) = QueueTarget::from_env(env, config, Some(tokens.clone()))
        && matches!(target.auth, QueueAuth::Bearer(_))
    {
        out.push((
            "service-bus",
            crate::adapters::servicebus::SERVICE_BUS_SCOPE.to_string(),
        ));
    }
    if let Ok(LedgerTarget::Table { storage, .. }) =
        crate::adapters::store::target(&config.ledger, config.azure.cloud, env)
        && storage.shared_key.is_none()
    {
        out.push(("storage", probes::STORAGE_SCOPE.to_string()));
    }
    out
}

/// The read-only part: configuration, tokens, ASM key, scan and tag. No write anywhere.
pub(crate) async fn read_only(
    config: &Config,
    env: &dyn EnvSource,
    file: Option<&Path>,
    tokens: Option<&Arc<dyn TokenSource>>,
    asm: Option<&dyn AsmApi>,
) -> (Report, probes::Identity) {
    let mut report = Report::default();
    report.extend(probes::config_lines(config, env, file));
    let scopes = tokens.map(|t| audiences(config, env, t)).unwrap_or_default();
    let borrowed: Vec<(&str, &str)> = scopes.iter().map(|(n, s)| (*n, s.as_str())).collect();
    let (lines, identity) = probes::token_lines(config, env, tokens, &borrowed).await;
    report.extend(lines);
    match asm {
        Some(asm) => report.extend(probes::asm_lines(asm, config).await),
        None => report.push(CheckLine::failed(
            "asm.key",
            "no ASM client: scan_id or API_KEY is missing",
            "set scan_id (or SCAN_ID) and API_KEY",
        )),
    }
    (report, identity)
}

/// Every probe, the writing ones (ledger, queue) included: `seedwatch check`.
pub(crate) async fn full(config: &Config, env: &dyn EnvSource, file: Option<&Path>) -> Report {
    let tokens = crate::adapters::azure::credential::token_source(&config.azure, env, Default::default()).ok();
    let asm = AsmClient::from_config(config).ok();
    let (mut report, identity) = read_only(
        config,
        env,
        file,
        tokens.as_ref(),
        asm.as_ref().map(|a| a as &dyn AsmApi),
    )
    .await;
    let arm_ok = report
        .lines
        .iter()
        .any(|l| l.name == "token.arm" && l.state == super::report::LineState::Ok);
    match &tokens {
        Some(tokens) if !config.azure.tenants.is_empty() => {
            report.extend(super::tenant_checks::lines(config, env, tokens, &identity).await);
        }
        Some(tokens) if arm_ok => report.extend(azure_lines(config, tokens.clone(), &identity).await),
        _ => {}
    }
    report.push(match crate::adapters::store::open(config, env, tokens.clone()).await {
        Ok(ledger) => probes::ledger_write_line(ledger.as_ref()).await,
        Err(e) => CheckLine::failed(
            "ledger",
            format!("cannot open the ledger: {e}"),
            "check ledger.kind and the storage settings (AzureWebJobsStorage…), and the identity's storage data role",
        ),
    });
    match QueueTarget::from_env(env, config, tokens.clone()) {
        Ok(target) => report.extend(queue_probe::queue_lines(&target, &crate::adapters::http::client(config.http.timeout)).await),
        Err(e) => report.push(CheckLine::warning(
            "queue",
            e.to_string(),
            "without a retry queue, passing failures fail the invocation and the trigger redelivers; set RETRY_QUEUE and ServiceBusConnection__fullyQualifiedNamespace",
        )),
    }
    report
}

/// Subscriptions in scope, Reader in each, and the Event Grid subscription of each.
async fn azure_lines(config: &Config, tokens: Arc<dyn TokenSource>, identity: &probes::Identity) -> Vec<CheckLine> {
    let live = crate::adapters::azure::live_from_config(config, tokens, crate::adapters::azure::arm::Tuning::default());
    let arm = live.arm();
    let subscriptions = match arm_checks::subscriptions_in_scope(arm, config).await {
        Ok(subs) if subs.is_empty() => {
            return vec![CheckLine::failed(
                "subscriptions",
                "no subscription in scope: the identity can list none",
                "grant the identity Reader on the subscriptions to monitor (or a management group above them)",
            )];
        }
        Ok(subs) => subs,
        Err(e) => {
            return vec![CheckLine::failed(
                "subscriptions",
                format!("cannot list subscriptions: {e}"),
                "grant Reader",
            )];
        }
    };
    let mut lines = Vec::new();
    for sub in &subscriptions {
        lines.push(arm_checks::subscription_line(arm, sub, identity).await);
    }
    for sub in &subscriptions {
        lines.push(arm_checks::event_grid_line(arm, sub).await);
    }
    lines
}

/// Logs the read-only part at handler start-up: one line per check, at info when ok and at
/// warning otherwise. Never fails.
pub(crate) fn log_report(report: &Report) {
    for line in &report.lines {
        match line.state {
            super::report::LineState::Ok => {
                tracing::info!(check = %line.name, state = "ok", detail = %line.detail, "start-up check")
            }
            state => tracing::warn!(
                check = %line.name,
                state = state.as_str(),
                detail = %line.detail,
                advice = line.advice.as_deref().unwrap_or(""),
                "start-up check"
            ),
        }
    }
}

/// The read-only part at handler start-up, with clients of its own, logged; never fails.
pub(crate) async fn startup(config: Config, file: Option<std::path::PathBuf>) {
    let env = crate::config::ProcessEnv;
    let tokens = crate::adapters::azure::credential::token_source(&config.azure, &env, Default::default()).ok();
    let asm = AsmClient::from_config(&config).ok();
    let asm = asm.as_ref().map(|a| a as &dyn AsmApi);
    let (report, _) = read_only(&config, &env, file.as_deref(), tokens.as_ref(), asm).await;
    log_report(&report);
}
