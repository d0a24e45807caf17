//! `seedwatch plan`: the seeds that would be pushed, from an exported estate file (`--estate`)
//! or, once the Azure reader is wired in, from the live tenant.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use super::{PlanArgs, exit};
use crate::config::{Config, LoadOptions, ProcessEnv};
use crate::estate::read_estate;
use crate::plan::Plan;

/// How many warnings the table shows before pointing at `--json`.
const MAX_TEXT_WARNINGS: usize = 200;

pub async fn run(args: &PlanArgs, config: Option<&Path>) -> ExitCode {
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
        return super::fail(
            "reading the live estate needs the Azure reader, which this build does not have yet; \
             pass --estate FILE (an `az graph query` export or a JSON array of resources)",
        );
    };
    let estate = match read_estate(estate_path) {
        Ok(estate) => estate,
        Err(e) => return super::fail(e),
    };
    let plan = Plan::from_resources(&estate.resources, estate.warnings, &config.azure.checks);
    print_plan(&plan, args.json)
}

/// Prints the plan on stdout as a table or as one JSON object. A closed pipe (`| head`) is not
/// an error worth a panic.
pub fn print_plan(plan: &Plan, json: bool) -> ExitCode {
    let text = if json {
        let mut text = plan.to_json().to_string();
        text.push('\n');
        text
    } else {
        plan.render_text(MAX_TEXT_WARNINGS)
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
    ExitCode::from(exit::OK)
}
