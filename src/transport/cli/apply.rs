//! `seedwatch apply --resource ID [--deleted] [--json]`: the incremental path by hand.
//!
//! Reads the resource's owner once from ARM (a delete is confirmed the same way: a resource
//! that exists again is applied as it is), updates the ledger and writes to ASM only the seeds
//! whose owner set became empty or stopped being empty; a seed that stays although nobody
//! contributes it (`delete_stale_seeds` false, the deletion breaker) is listed as `kept` with
//! the reason. Exit codes: 0 applied, 1 the apply
//! failed (`"transient": true` in the JSON when a later attempt may succeed), 2 bad
//! configuration or a bad resource id.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use super::{ApplyArgs, exit};
use crate::app::build::App;
use crate::config::{Config, LoadOptions, ProcessEnv};
use crate::domain::resource::ResourceId;
use crate::engine::apply::{ApplyReport, ApplyRequest};

pub(super) async fn run(args: &ApplyArgs, config_path: Option<&Path>) -> ExitCode {
    super::init_cli_logging();
    let resource = match ResourceId::parse(&args.resource) {
        Ok(id) => id,
        Err(e) => return fail(args, format!("--resource: {e}"), exit::BAD_INPUT, false),
    };
    let load = LoadOptions {
        file: config_path.map(Path::to_path_buf),
        require_file: true,
    };
    let config = match Config::load(&load, &ProcessEnv) {
        Ok(config) => config,
        Err(e) => return fail(args, e, exit::BAD_INPUT, false),
    };
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let app = match App::build(config, &ProcessEnv) {
        Ok(app) => app,
        Err(e) => return fail(args, e, exit::BAD_INPUT, false),
    };
    let applier = match app.ledger(&ProcessEnv).await {
        Ok(ledger) => app.applier(ledger),
        Err(e) => return fail(args, e, exit::BAD_INPUT, false),
    };
    let request = if args.deleted {
        ApplyRequest::deleted(resource)
    } else {
        ApplyRequest::changed(resource)
    };
    match applier.apply(&request).await {
        Ok(report) => {
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(text) => println!("{text}"),
                    Err(e) => return fail(args, format!("cannot render the report: {e}"), exit::PARTIAL, false),
                }
            } else {
                print!("{}", render_text(&report));
            }
            ExitCode::from(exit::OK)
        }
        Err(e) => fail(args, &e, exit::PARTIAL, e.is_transient()),
    }
}

fn fail(args: &ApplyArgs, message: impl std::fmt::Display, code: u8, transient: bool) -> ExitCode {
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "error": message.to_string(), "transient": transient })
        );
    }
    eprintln!("error: {message}");
    ExitCode::from(code)
}

/// The human summary.
pub(super) fn render_text(report: &ApplyReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "seedwatch apply: {}", report.resource);
    if report.owners.is_empty() {
        let _ = writeln!(out, "No tracked resource's seeds depend on this id.");
    }
    for owner in &report.owners {
        let _ = writeln!(out, "  owner {owner}");
    }
    for seed in &report.added {
        let _ = writeln!(out, "+ {} ({})", seed.name, seed.kind);
    }
    for seed in &report.deleted {
        let _ = writeln!(out, "- {} ({})", seed.name, seed.kind);
    }
    for seed in &report.kept {
        let _ = writeln!(out, "= {} ({}) kept: {}", seed.name, seed.kind, seed.reason);
    }
    if report.added.is_empty() && report.deleted.is_empty() {
        let _ = writeln!(out, "ASM already agrees: nothing added or deleted.");
    }
    for warning in &report.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    let _ = writeln!(
        out,
        "{} ARM read(s), {} ASM write(s), {} ASM listing(s).",
        report.arm_reads, report.asm_writes, report.asm_reads
    );
    out
}
