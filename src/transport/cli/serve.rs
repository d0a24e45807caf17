//! `seedwatch serve`: the Azure Functions custom handler.
//!
//! Binds 127.0.0.1 at once (the host polls `GET /` every 25 ms until it answers), then builds
//! the configuration, credentials and clients in the background. Stops on SIGTERM or Ctrl-C
//! after the invocations in flight are answered.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use futures::FutureExt;

use super::ServeArgs;
use crate::app::build::{App, BuildError};
use crate::app::runner::Services;
use crate::config::{Config, EnvSource, LoadOptions, ProcessEnv, env};
use crate::transport::functions::server::{AppState, ServicesFactory, serve};

pub(crate) async fn run(args: &ServeArgs, config: Option<&Path>) -> ExitCode {
    crate::transport::logging::init();
    let port = match args.port {
        Some(port) => port,
        None => match ProcessEnv
            .var(env::FUNCTIONS_CUSTOMHANDLER_PORT)
            .map(|p| p.trim().parse::<u16>())
        {
            Some(Ok(port)) => port,
            Some(Err(_)) => return super::fail(format!("{} is not a port number", env::FUNCTIONS_CUSTOMHANDLER_PORT)),
            None => {
                return super::fail(format!(
                    "no port: the Functions host sets {}; for a local run pass --port",
                    env::FUNCTIONS_CUSTOMHANDLER_PORT
                ));
            }
        },
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => return super::fail(format!("cannot listen on 127.0.0.1:{port}: {e}")),
    };
    tracing::info!(port, version = env!("CARGO_PKG_VERSION"), "seedwatch serve listening");
    let file = config.map(Path::to_path_buf);
    let factory: ServicesFactory = Arc::new(move || {
        let file = file.clone();
        async move { build_services(file).await }.boxed()
    });
    let state = AppState::new(factory);
    match serve(listener, state, shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("seedwatch serve stopped");
            ExitCode::SUCCESS
        }
        Err(e) => super::fail(format!("server error: {e}")),
    }
}

/// Configuration, then the clients and engines ([`App`]). Errors say what to set; they fail
/// the invocations that need the services.
async fn build_services(file: Option<PathBuf>) -> Result<Services, BuildError> {
    let options = LoadOptions {
        file: file.clone(),
        require_file: true,
    };
    let config = Config::load(&options, &ProcessEnv).map_err(|e| BuildError::Configuration(e.to_string()))?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    // The read-only part of `seedwatch check`, logged; it never holds up or fails the start.
    tokio::spawn(crate::app::health::doctor::startup(config.clone(), file));
    App::build(config, &ProcessEnv)?.services(&ProcessEnv).await
}

/// [`App::with_azure`]'s services over a given Azure reader and token source (in-process
/// tests hand in a reader over a fake ARM).
pub async fn services_with_azure(
    config: Config,
    env: &dyn EnvSource,
    azure: crate::adapters::azure::AzureHandles,
) -> Result<Services, BuildError> {
    App::with_azure(config, azure)?.services(env).await
}

/// SIGTERM (the host stopping or recycling the worker) or Ctrl-C (a local run).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutting down: finishing the invocations in flight");
}
