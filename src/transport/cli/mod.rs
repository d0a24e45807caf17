//! The `seedwatch` command line: argument parsing, logging set-up and exit codes. Each
//! subcommand lives in its own file and only wires configuration to the library.

mod apply;
mod check;
mod plan;
pub mod serve;
mod status;
mod sync;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Exit codes shared by every subcommand.
pub(crate) mod exit {
    /// Everything was done.
    pub(crate) const OK: u8 = 0;
    /// Some writes failed (sync, apply); the rest was done.
    pub(crate) const PARTIAL: u8 = 1;
    /// Bad configuration or bad input; nothing was done.
    pub(crate) const BAD_INPUT: u8 = 2;
}

#[derive(Debug, Parser)]
#[command(
    name = "seedwatch",
    version,
    about = "Keeps Hexiosec ASM seeds in step with an Azure estate"
)]
pub(crate) struct Cli {
    /// Configuration file (YAML, Hexiosec connector format). Default ./config.yml;
    /// the CONNECTOR_CONFIG environment variable wins when set.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Show the seeds that would be pushed, from an exported estate or the live tenant.
    Plan(PlanArgs),
    /// Sweep the estate and reconcile the scan's seeds in ASM once.
    Sync(SyncArgs),
    /// Apply one resource's change by hand (the incremental path).
    Apply(ApplyArgs),
    /// Run the Azure Functions custom handler.
    Serve(ServeArgs),
    /// Check every dependency once and say what to do about each failure.
    Check(CheckArgs),
    /// Show the connector's state (online, degraded, offline, pending, refreshing) and why.
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Print one JSON object instead of lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    /// Azure resources as JSON: an array, `{"data": [...]}` (az graph query) or `{"value": [...]}`.
    /// Without it, the live estate is read with the configured credential.
    #[arg(long, value_name = "FILE")]
    pub estate: Option<PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    /// Print the plan and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Delete even when the deletion breaker (sync.max_delete_fraction) trips.
    #[arg(long)]
    pub force_deletes: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// The ARM id of the resource that changed.
    #[arg(long, value_name = "ID")]
    pub resource: String,
    /// The resource was deleted (confirmed with one ARM read; a resource group's owners are
    /// each re-read).
    #[arg(long)]
    pub deleted: bool,
    /// Print what changed as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Port for local runs; the Functions host sets FUNCTIONS_CUSTOMHANDLER_PORT.
    #[arg(long)]
    pub port: Option<u16>,
}

/// Parses arguments and runs the chosen subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::BAD_INPUT);
        }
    };
    runtime.block_on(async {
        match &cli.command {
            Command::Plan(args) => plan::run(args, cli.config.as_deref()).await,
            Command::Sync(args) => sync::run(args, cli.config.as_deref()).await,
            Command::Apply(args) => apply::run(args, cli.config.as_deref()).await,
            Command::Serve(args) => serve::run(args, cli.config.as_deref()).await,
            Command::Check(args) => check::run(args, cli.config.as_deref()).await,
            Command::Status(args) => status::run(args, cli.config.as_deref()).await,
        }
    })
}

/// Human log lines on stderr for the CLI (stdout carries the command's output).
pub(crate) fn init_cli_logging() {
    let filter = std::env::var(crate::config::env::LOG_LEVEL).unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| "warn".into()))
        .with_target(false)
        .try_init();
}

/// Prints an error for the user and returns the bad-input exit code.
pub(crate) fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(exit::BAD_INPUT)
}

/// Writes a typed document (`status --json`, `check --json`) to stdout as one line of JSON:
/// serialised here, at the edge. The documents hold only strings, numbers and string-keyed
/// maps, so writing them cannot fail; if it ever did, the error goes to stderr.
pub(crate) fn print_json(document: &impl serde::Serialize) {
    match serde_json::to_string(document) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: the JSON document could not be written: {e}"),
    }
}
