//! `seedwatch check [--json]`: runs every dependency once (configuration, credential and
//! tokens, subscriptions and Reader, Event Grid, ASM, ledger, retry queue) and says what to do
//! about each failure. Exit 0 all ok, 1 with warnings, 2 when any check failed.

use std::path::Path;
use std::process::ExitCode;

use super::CheckArgs;
use crate::app::health::report::{CheckLine, Report};
use crate::config::{Config, LoadOptions, ProcessEnv};

pub(super) async fn run(args: &CheckArgs, config_path: Option<&Path>) -> ExitCode {
    super::init_cli_logging();
    let load = LoadOptions {
        file: config_path.map(Path::to_path_buf),
        require_file: true,
    };
    let report = match Config::load(&load, &ProcessEnv) {
        Ok(config) => crate::app::health::doctor::full(&config, &ProcessEnv, config_path).await,
        Err(e) => {
            let mut report = Report::default();
            report.push(CheckLine::failed(
                "config",
                e.to_string(),
                "fix the configuration (config.yml or CONNECTOR_CONFIG, SCAN_ID, API_KEY)",
            ));
            report
        }
    };
    if args.json {
        super::print_json(&report.document());
    } else {
        print!("{}", report.render_text());
    }
    ExitCode::from(report.exit_code())
}
