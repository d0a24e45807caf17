//! `seedwatch status [--json]`: the connector state (online, degraded, offline, pending,
//! refreshing) with its reasons and what to do, read from the ledger's run history and the
//! read-only probes (token, ASM key, ledger). Exit 0 online or refreshing, 1 pending or
//! degraded, 2 offline.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use super::StatusArgs;
use crate::adapters::asm::{AsmApi, AsmClient};
use crate::app::health::state::{StatusDocument, decide, rfc3339};
use crate::app::health::status::{StatusSource, gather};
use crate::config::{Config, LoadOptions, ProcessEnv};

pub(super) async fn run(args: &StatusArgs, config_path: Option<&Path>) -> ExitCode {
    super::init_cli_logging();
    let load = LoadOptions {
        file: config_path.map(Path::to_path_buf),
        require_file: true,
    };
    let config = match Config::load(&load, &ProcessEnv) {
        Ok(config) => config,
        Err(e) => return super::fail(e),
    };
    let tokens = crate::adapters::azure::credential::token_source(&config.azure, &ProcessEnv, Default::default()).ok();
    let asm = AsmClient::from_config(&config)
        .ok()
        .map(|a| Arc::new(a) as Arc<dyn AsmApi>);
    let ledger = crate::adapters::store::open(&config, &ProcessEnv, tokens.clone())
        .await
        .map_err(|e| e.to_string());
    let source = StatusSource {
        config,
        ledger,
        asm,
        tokens,
    };
    let inputs = gather(&source, &ProcessEnv, crate::domain::clock::now_ms()).await;
    let decision = decide(&inputs);
    if args.json {
        super::print_json(&StatusDocument::new(&inputs, &decision));
    } else {
        print!("{}", render_text(&inputs, &decision));
    }
    ExitCode::from(decision.state.exit_code())
}

fn render_text(
    inputs: &crate::app::health::state::StatusInputs,
    decision: &crate::app::health::state::Decision,
) -> String {
    let mut out = format!("state: {}\n", decision.state.as_str());
    for reason in &decision.reasons {
        out.push_str(&format!("  {}\n    → {}\n", reason.reason, reason.advice));
    }
    for note in &decision.notes {
        out.push_str(&format!("  {note}\n"));
    }
    out.push_str("\nlast runs:\n");
    if inputs.runs.is_empty() {
        out.push_str("  none recorded\n");
    }
    for run in inputs.runs.iter().take(10) {
        out.push_str(&format!(
            "  {}  {:<7} {:<10} {:?}  +{} -{} kept {} warnings {}{}\n",
            rfc3339(run.started_ms),
            run.trigger,
            run.scope,
            run.result,
            run.added,
            run.deleted,
            run.kept_by_guard_rails,
            run.warnings,
            if run.complete { "" } else { "  (incomplete)" }
        ));
        for tenant in &run.tenants {
            out.push_str(&format!(
                "      tenant {}: {} subscription(s), {}\n",
                tenant.tenant,
                tenant.subscriptions,
                if tenant.complete { "complete" } else { "incomplete" }
            ));
        }
    }
    out.push_str(&format!(
        "\nretries pending: {}\nfailed changes: {}\n",
        inputs.pending_retries.len(),
        inputs.failed_changes.len()
    ));
    out
}
