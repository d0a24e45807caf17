//! `seedwatch plan`: the seeds that would be pushed, from an exported estate file (`--estate`)
//! or from the live tenant with the configured credential (plus the completeness report).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use super::{PlanArgs, exit};
use crate::adapters::estate_file::plan_estate_file;
use crate::config::{Config, LoadOptions, ProcessEnv};
use crate::domain::plan::Plan;

/// How many warnings the table shows before pointing at `--json`.
const MAX_TEXT_WARNINGS: usize = 200;

pub(super) async fn run(args: &PlanArgs, config: Option<&Path>) -> ExitCode {
    super::init_cli_logging();
    let options = LoadOptions {
        file: config.map(Path::to_path_buf),
        require_file: false,
    };
    let config = match Config::load(&options, &ProcessEnv) {
        Ok(config) => config,
        Err(e) => return super::fail(e),
    };
    for warning in &config.warnings {
        eprintln!("warning: {warning}");
    }
    let Some(estate_path) = &args.estate else {
        return live(args, &config).await;
    };
    // Streamed: memory grows with the seeds, not with the file.
    let plan = match plan_estate_file(estate_path, &config.azure.checks) {
        Ok(plan) => plan,
        Err(e) => return super::fail(e),
    };
    print_plan(&plan, args.json)
}

/// Prints the plan on stdout as a table or as one JSON object. A closed pipe (`| head`) is not
/// an error worth a panic.
pub(super) fn print_plan(plan: &Plan, json: bool) -> ExitCode {
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let written = if json {
        plan.write_json(&mut stdout)
            .map_err(std::io::Error::from)
            .and_then(|()| stdout.write_all(b"\n"))
    } else {
        stdout.write_all(plan.render_text(MAX_TEXT_WARNINGS).as_bytes())
    };
    let _ = written.and_then(|()| stdout.flush());
    ExitCode::from(exit::OK)
}

/// `plan` without `--estate`: sweep the live estate, then print the same plan plus the
/// completeness report. Exit code 1 when some scope was not read completely.
async fn live(args: &PlanArgs, config: &Config) -> ExitCode {
    let (reader, _tokens) = match crate::adapters::azure::azure_from_config(config, &ProcessEnv) {
        Ok(handles) => handles,
        Err(e) => {
            return super::fail(format!(
                "{e}\n(to plan from an exported estate instead, pass --estate FILE)"
            ));
        }
    };
    let progress = crate::adapters::azure::progress::SweepBar::new();
    // Extracted page by page: memory grows with the seeds, not with the estate.
    let sweep = reader.sweep_extracted(&config.azure.checks, &progress).await;
    progress.finish(sweep.is_ok());
    let sweep = match sweep {
        Ok(sweep) => sweep,
        Err(e) => {
            return super::fail(format!(
                "cannot read the live Azure estate: {e}\n(to plan from an exported estate instead, pass --estate FILE)"
            ));
        }
    };
    let plan = Plan::new(&sweep.extraction, Vec::new(), sweep.resources_read);
    let text = if args.json {
        let mut value = plan.to_json();
        if let Some(map) = value.as_object_mut() {
            map.insert(
                "completeness".into(),
                serde_json::to_value(&sweep.report).unwrap_or(serde_json::Value::Null),
            );
        }
        let mut text = value.to_string();
        text.push('\n');
        text
    } else {
        let mut text = plan.render_text(MAX_TEXT_WARNINGS);
        text.push_str(&sweep.report.render_text());
        text
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
    if sweep.report.is_fully_complete() {
        ExitCode::from(exit::OK)
    } else {
        ExitCode::from(exit::PARTIAL)
    }
}
