//! `seedwatch-lambda`: seedwatch as an AWS Lambda function (see `src/transport/lambda/` and
//! docs/deploy-aws.md). Thin: logging, the lazily built engines, the shared secret, then
//! `lambda_runtime::run` over one handler.

use std::sync::Arc;

use futures::FutureExt;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use seedwatch::config::{Config, LoadOptions, ProcessEnv};
use seedwatch::transport::functions::server::{AppState, ServicesFactory};
use seedwatch::transport::lambda::handler::LambdaApp;
use seedwatch::transport::lambda::preflight;
use seedwatch::transport::lambda::webhook::WebhookSecret;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    seedwatch::transport::functions::logging::init();
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "seedwatch-lambda starting");
    let factory: ServicesFactory = Arc::new(|| build().boxed());
    let state = AppState::new(factory);
    let secret = WebhookSecret::from_env(&ProcessEnv);
    if let Err(why) = &secret {
        tracing::error!(error = %why, "function URL requests will be refused");
    }
    let app = LambdaApp::new(state, secret);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let app = app.clone();
        async move { app.handle(event).await }
    }))
    .await
}

/// The configuration checked for Lambda, then the same services as `seedwatch serve`.
async fn build() -> Result<seedwatch::app::runner::Services, String> {
    let options = LoadOptions {
        file: None,
        require_file: true,
    };
    let config = Config::load(&options, &ProcessEnv).map_err(|e| format!("configuration: {e}"))?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if preflight::under_lambda(&ProcessEnv) {
        for warning in preflight::check(&config, &ProcessEnv)? {
            tracing::warn!("{warning}");
        }
    }
    let mut services = seedwatch::transport::cli::serve::services_from_config(config, &ProcessEnv).await?;
    services.events = seedwatch::transport::lambda::tuning(services.events.clone());
    Ok(services)
}
