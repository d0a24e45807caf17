//! The one composition root: the clients built once from the configuration (the Azure reader
//! and credential, the ASM client, the ledger, the retry queue) and the engines over them.
//! `seedwatch serve`, `sync` and `apply`, the Functions handler and the Lambda all start here.

use std::sync::Arc;

use crate::adapters::asm::{AsmApi, AsmClient};
use crate::adapters::azure::{AzureHandles, AzureReader, TokenSource};
use crate::adapters::servicebus::{QueueTarget, RetryQueue};
use crate::app::engines::{LedgerApply, SyncEngine, SyncReconciler};
use crate::app::runner::Services;
use crate::config::{Config, EnvSource};
use crate::engine::apply::Applier;
use crate::ledger::Ledger;

/// What stopped the clients from being built; each names what to set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("configuration: {0}")]
    Configuration(String),
    #[error("ASM: {0}")]
    Asm(String),
    #[error("Azure credential: {0}")]
    Azure(String),
    #[error("ledger: {0}")]
    Ledger(String),
    /// What the deployment must configure (the Lambda's own checks), said as is.
    #[error("{0}")]
    Deployment(String),
}

/// The configuration and the clients over it.
pub struct App {
    pub config: Config,
    pub azure: Arc<dyn AzureReader>,
    /// The shared credential (storage, Service Bus and the status function's probe use it too).
    pub tokens: Arc<dyn TokenSource>,
    pub asm: Arc<dyn AsmApi>,
}

impl App {
    /// The clients for a loaded configuration, reading credentials from `env` (the process
    /// environment in production; a map in in-process tests).
    pub fn build(config: Config, env: &dyn EnvSource) -> Result<App, BuildError> {
        // The ASM settings first: a missing key or scan id is the likelier mistake.
        let asm = asm_client(&config)?;
        let (azure, tokens) =
            crate::adapters::azure::azure_from_config(&config, env).map_err(|e| BuildError::Azure(e.to_string()))?;
        Ok(App {
            config,
            azure,
            tokens,
            asm,
        })
    }

    /// The same over a given Azure reader and token source (in-process tests hand in a reader
    /// over a fake ARM with a fixed token, as `azure_identity` cannot be pointed at a fake there).
    pub(crate) fn with_azure(config: Config, (azure, tokens): AzureHandles) -> Result<App, BuildError> {
        Ok(App {
            asm: asm_client(&config)?,
            config,
            azure,
            tokens,
        })
    }

    /// The ledger `ledger.kind` selects.
    pub(crate) async fn ledger(&self, env: &dyn EnvSource) -> Result<Arc<dyn Ledger>, BuildError> {
        crate::adapters::store::open(&self.config, env, Some(self.tokens.clone()))
            .await
            .map_err(|e| BuildError::Ledger(e.to_string()))
    }

    /// The incremental apply engine over these clients and `ledger`, with the configuration's rules.
    pub(crate) fn applier(&self, ledger: Arc<dyn Ledger>) -> Applier {
        Applier::new(
            self.azure.clone(),
            self.asm.clone(),
            ledger,
            self.config.azure.checks.clone(),
            self.config.seed_tag.clone(),
        )
        .configured(&self.config)
    }

    /// The engines and the retry queue the handler runs on (Functions and Lambda alike).
    pub async fn services(self, env: &dyn EnvSource) -> Result<Services, BuildError> {
        let ledger = self.ledger(env).await?;
        tracing::info!(ledger = %ledger.describe(), "ledger opened");
        let queue = match QueueTarget::from_env(env, &self.config, Some(self.tokens.clone())) {
            Ok(target) => Some(Arc::new(RetryQueue::new(target, &self.config))),
            Err(e) => {
                tracing::warn!(error = %e, "no retry queue: passing failures fail the invocation instead");
                None
            }
        };
        let applier = self.applier(ledger.clone());
        let events = self.config.events.clone();
        tracing::info!(
            window_ms = events.coalesce_window.as_millis() as u64,
            concurrency = events.concurrency,
            clock_skew_ms = events.clock_skew.as_millis() as u64,
            "coalescing resource events"
        );
        let max_attempts = self.config.retry.max_attempts;
        let engine = SyncEngine::live(self.config, self.tokens, self.asm, Some(ledger));
        Ok(Services {
            applier: Arc::new(LedgerApply(Arc::new(applier))),
            reconciler: Arc::new(SyncReconciler(Arc::new(engine))),
            queue,
            max_attempts,
            events,
        })
    }
}

fn asm_client(config: &Config) -> Result<Arc<dyn AsmApi>, BuildError> {
    let asm = AsmClient::from_config(config).map_err(|e| BuildError::Asm(e.to_string()))?;
    Ok(Arc::new(asm))
}
