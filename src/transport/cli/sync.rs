//! `seedwatch sync`: one full reconcile of the scan against the estate.
//!
//! Needs nothing but its configuration (`CONNECTOR_CONFIG` or the `--config` file, which must
//! exist) and credentials (`API_KEY`, and the Azure credential), so it runs as well from a
//! laptop as from a container or a cron job. Exit codes: 0 everything applied, 1 some writes
//! (or the sweep) failed, 2 configuration errors (missing config, scan id or key, a rejected
//! key, an unknown scan).

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};

use super::{SyncArgs, exit};
use crate::adapters::azure::SweepProgress;
use crate::app::build::App;
use crate::config::{Config, LoadOptions, ProcessEnv};
use crate::engine::reconcile::Reconcile;
use crate::engine::sync::{Phase, SyncOptions, SyncProgress, SyncReport, WriteKind};
use crate::ledger::failures::{FailedChanges, format_ms};

pub(super) async fn run(args: &SyncArgs, config_path: Option<&Path>) -> ExitCode {
    super::init_cli_logging();
    let load = LoadOptions {
        file: config_path.map(Path::to_path_buf),
        require_file: true,
    };
    let config = match Config::load(&load, &ProcessEnv) {
        Ok(config) => config,
        Err(e) => return fail(args, e),
    };
    let app = match App::build(config, &ProcessEnv) {
        Ok(app) => app,
        Err(e) => return fail(args, e),
    };
    // The ledger is optional here: without it the reconcile runs with unknown provenance, and
    // the next run rebuilds it.
    let ledger = match app.ledger(&ProcessEnv).await {
        Ok(ledger) => Some(ledger),
        Err(e) => {
            eprintln!("warning: ledger unavailable, reconciling without it: {e}");
            None
        }
    };
    let progress = BarProgress::new(!args.json && std::io::stderr().is_terminal());
    let options = SyncOptions {
        dry_run: args.dry_run,
        force_deletes: args.force_deletes,
        provenance: None,
    };
    let run = crate::app::health::record::begin(ledger.clone(), "cli", "all", args.dry_run).await;
    let result = crate::engine::reconcile::reconcile(Reconcile {
        config: &app.config,
        azure: app.azure.as_ref(),
        asm: app.asm.as_ref(),
        ledger: ledger.as_deref(),
        options,
        left_out: None,
        progress: &progress,
    })
    .await;
    let summary = result
        .as_ref()
        .map(|synced| serde_json::to_value(synced).unwrap_or_default())
        .map_err(ToString::to_string);
    crate::app::health::record::end(run, summary.as_ref().map_err(String::as_str)).await;
    progress.finish();
    match result {
        Ok(synced) => {
            for warning in &synced.ledger_warnings {
                eprintln!("warning: {warning}");
            }
            let report = synced.report;
            // Without a ledger nothing records failed changes: the section is left out.
            let failed_changes = synced.failed_changes.as_ref();
            if args.json {
                match render_json(&report, failed_changes) {
                    Ok(text) => println!("{text}"),
                    Err(e) => return fail(args, format!("cannot render the report: {e}")),
                }
            } else {
                print!("{}", render_text(&report, failed_changes));
            }
            if report.all_applied() {
                ExitCode::from(exit::OK)
            } else {
                ExitCode::from(exit::PARTIAL)
            }
        }
        Err(e) => {
            let code = if e.is_configuration() {
                exit::BAD_INPUT
            } else {
                exit::PARTIAL
            };
            print_error(args, &e);
            ExitCode::from(code)
        }
    }
}

fn print_error(args: &SyncArgs, message: &dyn std::fmt::Display) {
    if args.json {
        println!("{}", serde_json::json!({ "error": message.to_string() }));
    }
    eprintln!("error: {message}");
}

fn fail(args: &SyncArgs, message: impl std::fmt::Display) -> ExitCode {
    print_error(args, &message);
    ExitCode::from(exit::BAD_INPUT)
}

/// The report as JSON, with the failed changes (every one) when a ledger was used.
pub(super) fn render_json(
    report: &SyncReport,
    failed_changes: Option<&FailedChanges>,
) -> Result<String, serde_json::Error> {
    let mut value = serde_json::to_value(report)?;
    if let Some(failed) = failed_changes {
        value["failed_changes"] = failed.to_json(usize::MAX);
    }
    serde_json::to_string_pretty(&value)
}

/// The readable summary, with the changes the handler gave up on when a ledger was used.
pub(super) fn render_text(report: &SyncReport, failed_changes: Option<&FailedChanges>) -> String {
    let mut out = String::new();
    render_head(&mut out, report);
    render_writes(&mut out, report);
    kept_by_guard_rails(&mut out, report);
    render_failed_writes(&mut out, report);
    render_warnings(&mut out, report);
    if let Some(failed) = failed_changes {
        render_failed_changes(&mut out, failed, report.dry_run);
    }
    let (added, deleted) = if report.dry_run {
        (report.planned_add.len(), report.planned_delete.len())
    } else {
        (report.added.len(), report.deleted.len())
    };
    let verb = if report.dry_run { "would be " } else { "" };
    let _ = writeln!(
        out,
        "Summary: {added} {verb}added, {deleted} {verb}deleted, {} kept, {} kept by guard rails, {} failed, {} warnings",
        report.kept,
        report.skipped.len(),
        report.failed.len(),
        report.warnings.len()
    );
    out
}

/// The scan, what was read, and each tenant's state.
fn render_head(out: &mut String, report: &SyncReport) {
    let dry = if report.dry_run {
        " (dry run: nothing written)"
    } else {
        ""
    };
    let _ = writeln!(out, "seedwatch sync: scan {}{dry}", report.scan_id);
    let _ = writeln!(
        out,
        "Read {} resources in {} subscriptions: {} seeds wanted, {} already in ASM; ASM holds {} seeds tagged {:?}.",
        report.resources_read, report.subscriptions, report.desired, report.kept, report.plan.tagged, report.seed_tag
    );
    for tenant in &report.tenants {
        let state = match &tenant.error {
            Some(error) => format!("not read: {error}"),
            None if tenant.complete => "read completely".to_string(),
            None => "not read completely".to_string(),
        };
        let _ = writeln!(
            out,
            "  tenant {}: {} subscription(s), {state}",
            tenant.tenant,
            tenant.subscriptions.len()
        );
    }
}

/// The seeds added and deleted (or, in a dry run, that would be).
fn render_writes(out: &mut String, report: &SyncReport) {
    if report.dry_run {
        section(
            out,
            "Would add",
            report.planned_add.iter().map(|s| format!("+ {} ({})", s.name, s.kind)),
        );
        section(
            out,
            "Would delete",
            report
                .planned_delete
                .iter()
                .map(|s| format!("- {} ({})", s.name, s.seed.kind())),
        );
    } else {
        section(
            out,
            "Added",
            report.added.iter().map(|s| format!("+ {} ({})", s.name, s.kind)),
        );
        section(
            out,
            "Deleted",
            report.deleted.iter().map(|s| format!("- {} ({})", s.name, s.kind)),
        );
    }
}

/// The writes that failed or were not attempted, and why.
fn render_failed_writes(out: &mut String, report: &SyncReport) {
    section(
        out,
        "Failed",
        report.failed.iter().map(|w| {
            let action = match w.action {
                WriteKind::Add => "add",
                WriteKind::Delete => "delete",
            };
            let why = match &w.result {
                crate::engine::sync::WriteResult::Failed { error } => error.clone(),
                crate::engine::sync::WriteResult::NotAttempted { reason } => format!("not attempted: {reason}"),
                other => format!("{other:?}"),
            };
            format!("{action} {}: {why}", w.seed.name)
        }),
    );
}

/// The warnings, the first 50 of them.
fn render_warnings(out: &mut String, report: &SyncReport) {
    const MAX_WARNINGS: usize = 50;
    section(
        out,
        "Warnings",
        report
            .warnings
            .iter()
            .take(MAX_WARNINGS)
            .cloned()
            .chain((report.warnings.len() > MAX_WARNINGS).then(|| {
                format!(
                    "… and {} more (use --json for all)",
                    report.warnings.len() - MAX_WARNINGS
                )
            })),
    );
}

/// Changes the handler gave up on: what failed, and whether this run cleared it.
fn render_failed_changes(out: &mut String, failed: &FailedChanges, dry_run: bool) {
    const MAX_SHOWN: usize = 20;
    if failed.found.is_empty() {
        return;
    }
    let state = if dry_run {
        "a dry run clears none".to_string()
    } else {
        format!("{} cleared by this reconcile", failed.cleared.len())
    };
    let _ = writeln!(out, "Changes the handler gave up on ({}; {state}):", failed.found.len());
    for f in failed.found.iter().take(MAX_SHOWN).map(|f| &f.value) {
        let cause = f.cause.lines().next().unwrap_or_default();
        let cleared = if failed.is_cleared(&f.id) { ", cleared" } else { "" };
        let _ = writeln!(
            out,
            "  {} {}: {cause} ({} attempts, gave up {}{cleared})",
            f.change.as_str(),
            f.id,
            f.attempts,
            format_ms(f.failed_at_ms)
        );
    }
    if failed.found.len() > MAX_SHOWN {
        let _ = writeln!(
            out,
            "  … and {} more (use --json for all)",
            failed.found.len() - MAX_SHOWN
        );
    }
}

/// Stale seeds kept, grouped by reason (a large scan can keep thousands for one reason).
fn kept_by_guard_rails(out: &mut String, report: &SyncReport) {
    const NAMES_PER_REASON: usize = 20;
    if report.skipped.is_empty() {
        return;
    }
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for skipped in &report.skipped {
        let reason = skipped.reason.to_string();
        match groups.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, names)) => names.push(&skipped.seed.name),
            None => groups.push((reason, vec![&skipped.seed.name])),
        }
    }
    let _ = writeln!(out, "Kept by guard rails ({}):", report.skipped.len());
    for (reason, names) in groups {
        let _ = writeln!(out, "  {} seeds: {reason}", names.len());
        for name in names.iter().take(NAMES_PER_REASON) {
            let _ = writeln!(out, "    {name}");
        }
        if names.len() > NAMES_PER_REASON {
            let _ = writeln!(
                out,
                "    … and {} more (use --json for all)",
                names.len() - NAMES_PER_REASON
            );
        }
    }
}

fn section(out: &mut String, title: &str, lines: impl Iterator<Item = String>) {
    let lines: Vec<String> = lines.collect();
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(out, "{title} ({}):", lines.len());
    for line in lines {
        let _ = writeln!(out, "  {line}");
    }
}

/// A progress bar on a terminal; nothing otherwise (log lines come from `tracing`).
struct BarProgress {
    bar: Option<ProgressBar>,
}

impl BarProgress {
    fn new(on_terminal: bool) -> BarProgress {
        let bar = on_terminal.then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{pos}]") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        BarProgress { bar }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl SweepProgress for BarProgress {
    fn subscriptions_found(&self, count: usize) {
        tracing::info!(count, "subscriptions in scope");
        if let Some(bar) = &self.bar {
            bar.set_message(format!("reading the Azure estate: {count} subscriptions, rows read"));
        }
    }

    fn page_read(&self, rows: usize) {
        if let Some(bar) = &self.bar {
            bar.inc(rows as u64);
        }
    }
}

impl SyncProgress for BarProgress {
    fn phase(&self, phase: Phase) {
        tracing::info!("{}", phase.label());
        if let Some(bar) = &self.bar {
            bar.set_message(phase.label());
            bar.set_position(0);
        }
    }

    fn writes_planned(&self, count: usize) {
        tracing::info!(count, "writes planned");
        if let Some(bar) = &self.bar {
            bar.set_message(format!("writing to ASM: {count} planned, done"));
            bar.set_position(0);
        }
    }

    fn write_done(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::resource::ResourceId;
    use crate::ledger::{FailedChange, FailedChangeKind, Version, Versioned};

    fn failed(n: usize, cause: &str) -> Versioned<FailedChange> {
        let id = ResourceId::parse(&format!(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/p{n}"
        ))
        .unwrap();
        Versioned {
            value: FailedChange::new(id, FailedChangeKind::Deleted, cause, 9, 0),
            version: Version(n.to_string()),
        }
    }

    #[test]
    fn failed_changes_are_listed_capped_and_marked_when_cleared() {
        let mut failures = FailedChanges {
            found: (0..25).map(|n| failed(n, "ASM answered 503\nsecond line")).collect(),
            cleared: Vec::new(),
        };
        failures.cleared.push(failures.found[0].value.id.clone());
        let mut out = String::new();
        render_failed_changes(&mut out, &failures, false);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "Changes the handler gave up on (25; 1 cleared by this reconcile):"
        );
        assert_eq!(
            lines[1],
            "  deleted /subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/p0: \
             ASM answered 503 (9 attempts, gave up 1970-01-01T00:00:00Z, cleared)"
        );
        assert!(!lines[2].contains("cleared"), "{}", lines[2]);
        assert_eq!(lines.len(), 22, "{out}");
        assert_eq!(lines[21], "  … and 5 more (use --json for all)");

        let mut dry = String::new();
        render_failed_changes(&mut dry, &failures, true);
        assert!(dry.starts_with("Changes the handler gave up on (25; a dry run clears none):"));
        let mut none = String::new();
        render_failed_changes(&mut none, &FailedChanges::default(), false);
        assert!(none.is_empty());
    }
}
