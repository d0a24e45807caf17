//! `seedwatch-lambda`: seedwatch as an AWS Lambda function (see `src/transport/lambda/` and
//! docs/deploy-aws.md). Thin: logging, the lazily built engines, the shared secret, then
//! `lambda_runtime::run` over one handler.

use std::sync::Arc;

use futures::FutureExt;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use seedwatch::app::build::{App, BuildError};
use seedwatch::app::state::{AppState, ServicesFactory};
use seedwatch::config::{Config, LoadOptions, ProcessEnv};
use seedwatch::transport::lambda::handler::LambdaApp;
use seedwatch::transport::lambda::preflight;
use seedwatch::transport::lambda::webhook::WebhookSecret;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    seedwatch::transport::logging::init();
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
async fn build() -> Result<seedwatch::app::runner::Services, BuildError> {
    let options = LoadOptions {
        file: None,
        require_file: true,
    };
    let config = Config::load(&options, &ProcessEnv).map_err(|e| BuildError::Configuration(e.to_string()))?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if preflight::under_lambda(&ProcessEnv) {
        for warning in preflight::check(&config, &ProcessEnv).map_err(BuildError::Deployment)? {
            tracing::warn!("{warning}");
        }
    }
    let mut services = App::build(config, &ProcessEnv)?.services(&ProcessEnv).await?;
    services.events = seedwatch::transport::lambda::tuning(services.events.clone());
    Ok(services)
}
