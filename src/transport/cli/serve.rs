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
use crate::adapters::asm::{AsmApi, AsmClient};
use crate::adapters::servicebus::{QueueTarget, RetryQueue};
use crate::app::engines::{LedgerApply, SyncEngine, SyncReconciler};
use crate::app::runner::Services;
use crate::config::{Config, EnvSource, LoadOptions, ProcessEnv, env};
use crate::transport::functions::server::{AppState, ServicesFactory, serve};

pub async fn run(args: &ServeArgs, config: Option<&Path>) -> ExitCode {
    crate::transport::functions::logging::init();
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

/// Configuration, then the credential, the ASM client, the ledger, the retry queue and the
/// engines. Errors say what to set; they fail the invocations that need the services.
/// Public: the Lambda entry point (`seedwatch-lambda`) builds the same services.
pub async fn build_services(file: Option<PathBuf>) -> Result<Services, String> {
    let options = LoadOptions {
        file: file.clone(),
        require_file: true,
    };
    let config = Config::load(&options, &ProcessEnv).map_err(|e| format!("configuration: {e}"))?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    // The read-only part of `seedwatch check`, logged; it never holds up or fails the start.
    tokio::spawn(crate::app::health::doctor::startup(config.clone(), file));
    services_from_config(config, &ProcessEnv).await
}

/// The services for a loaded configuration, reading credentials, storage and queue settings
/// from `env` (the process environment in production; a map in in-process tests).
pub async fn services_from_config(config: Config, env: &dyn EnvSource) -> Result<Services, String> {
    let azure =
        crate::adapters::azure::azure_from_config(&config, env).map_err(|e| format!("Azure credential: {e}"))?;
    services_with_azure(config, env, azure).await
}

/// The same, over a given Azure reader and token source (in-process tests hand in a reader
/// over a fake ARM with a fixed token, as `azure_identity` cannot be pointed at a fake there).
pub async fn services_with_azure(
    config: Config,
    env: &dyn EnvSource,
    (reader, tokens): crate::adapters::azure::AzureHandles,
) -> Result<Services, String> {
    let asm: Arc<dyn AsmApi> = Arc::new(AsmClient::from_config(&config).map_err(|e| format!("ASM: {e}"))?);
    let ledger = crate::adapters::store::open(&config, env, Some(tokens.clone()))
        .await
        .map_err(|e| format!("ledger: {e}"))?;
    tracing::info!(ledger = %ledger.describe(), "ledger opened");
    let queue = match QueueTarget::from_env(env, &config, Some(tokens.clone())) {
        Ok(target) => Some(Arc::new(RetryQueue::new(target, &config))),
        Err(e) => {
            tracing::warn!(error = %e, "no retry queue: passing failures fail the invocation instead");
            None
        }
    };
    let engine = crate::engine::apply::Applier::new(
        reader,
        asm.clone(),
        ledger.clone(),
        config.azure.checks.clone(),
        config.seed_tag.clone(),
    )
    .configured(&config);
    let max_attempts = config.retry.max_attempts;
    let events = config.events.clone();
    tracing::info!(
        window_ms = events.coalesce_window.as_millis() as u64,
        concurrency = events.concurrency,
        clock_skew_ms = events.clock_skew.as_millis() as u64,
        "coalescing resource events"
    );
    let reconciler = Arc::new(SyncReconciler(Arc::new(SyncEngine::live(
        config,
        tokens,
        asm,
        Some(ledger),
    ))));
    Ok(Services {
        applier: Arc::new(LedgerApply(Arc::new(engine))),
        reconciler,
        queue,
        max_attempts,
        events,
    })
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
