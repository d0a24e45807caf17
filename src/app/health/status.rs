//! Gathers the connector state: the read-only probes that make it offline (token, ASM key,
//! ledger) and the ledger's run history, failed changes and pending retries.

use std::sync::Arc;

use super::report::CheckLine;
use super::state::{FailedChangeView, StatusInputs, ncrontab_period};
use crate::adapters::asm::AsmApi;
use crate::adapters::azure::TokenSource;
use crate::config::{Config, EnvSource, env};
use crate::ledger::{FailedChangeKind, Ledger, history};

/// What the status reads: the handler's own clients, or ones the CLI builds.
#[derive(Clone)]
pub struct StatusSource {
    pub config: Config,
    pub ledger: Result<Arc<dyn Ledger>, String>,
    pub asm: Option<Arc<dyn AsmApi>>,
    pub tokens: Option<Arc<dyn TokenSource>>,
}

/// The probes and the history, at `now_ms`.
pub(crate) async fn gather(source: &StatusSource, env: &dyn EnvSource, now_ms: i64) -> StatusInputs {
    let mut inputs = StatusInputs {
        now_ms,
        period: env.var(env::RECONCILE_SCHEDULE).and_then(|s| ncrontab_period(&s)),
        ..StatusInputs::default()
    };
    inputs.probes.push(token_probe(source).await);
    inputs.probes.push(asm_probe(source).await);
    let ledger = match &source.ledger {
        Ok(ledger) => ledger.clone(),
        Err(e) => {
            inputs.probes.push(CheckLine::failed(
                "ledger",
                format!("cannot open the ledger: {e}"),
                "check the storage settings (AzureWebJobsStorage…) and the identity's storage data role",
            ));
            return inputs;
        }
    };
    let line = super::probes::ledger_read_line(ledger.as_ref()).await;
    let readable = line.state == super::report::LineState::Ok;
    inputs.probes.push(line);
    if readable {
        read_history(ledger.as_ref(), &mut inputs).await;
    }
    inputs
}

async fn token_probe(source: &StatusSource) -> CheckLine {
    let scope = source.config.azure.cloud.management_scope();
    match &source.tokens {
        None => CheckLine::failed(
            "token.arm",
            "no Azure credential",
            "set azure.credential and its variables",
        ),
        Some(tokens) => match tokens.bearer(scope).await {
            Ok(_) => CheckLine::ok("token.arm", format!("a token for {scope}")),
            Err(e) => CheckLine::failed(
                "token.arm",
                e.to_string(),
                "check the identity exists and is assigned to the app; run `seedwatch check`",
            ),
        },
    }
}

async fn asm_probe(source: &StatusSource) -> CheckLine {
    let Some(asm) = &source.asm else {
        return CheckLine::failed(
            "asm.key",
            "scan_id or API_KEY is missing",
            "set scan_id (or SCAN_ID) and API_KEY",
        );
    };
    match asm.check_auth().await {
        Err(e) => CheckLine::failed("asm.key", e.to_string(), "set API_KEY to a valid Hexiosec ASM API key"),
        Ok(()) => match asm.check_scan().await {
            Ok(()) => CheckLine::ok("asm.key", "the API key is valid and the scan exists"),
            Err(e) => CheckLine::failed(
                "asm.scan",
                e.to_string(),
                "set scan_id (or SCAN_ID) to a scan the key can see",
            ),
        },
    }
}

async fn read_history(ledger: &dyn Ledger, inputs: &mut StatusInputs) {
    let warn = |what: &str, e: crate::ledger::LedgerError| tracing::warn!(error = %e, "status: cannot read {what}");
    match history::runs(ledger).await {
        Ok(runs) => inputs.runs = runs,
        Err(e) => warn("the run history", e),
    }
    match history::last_event_ms(ledger).await {
        Ok(at) => inputs.last_event_ms = at,
        Err(e) => warn("the last event", e),
    }
    match history::pending_retries(ledger).await {
        Ok(pending) => inputs.pending_retries = pending,
        Err(e) => warn("the pending retries", e),
    }
    match ledger.failures().await {
        Ok(failures) => {
            inputs.failed_changes = failures
                .into_iter()
                .map(|f| FailedChangeView {
                    resource: f.value.id.as_str().to_string(),
                    change: match f.value.change {
                        FailedChangeKind::Changed => "changed".into(),
                        FailedChangeKind::Deleted => "deleted".into(),
                    },
                    cause: f.value.cause.clone(),
                    attempts: f.value.attempts,
                    failed_ms: f.value.failed_at_ms,
                })
                .collect()
        }
        Err(e) => warn("the failed changes", e),
    }
}
