//! The real engines behind the handler's ports: the sync engine ([`crate::sync`]) as the
//! [`Reconciler`] for the timer, resyncs and queued resync jobs.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::ports::{Reconciler, Scope, WorkError};
use crate::asm::{AsmApi, AsmError};
use crate::azure::{AzureError, AzureReader, Incomplete, IncompleteScope, OwnerRead, TokenSource};
use crate::config::Config;
use crate::sync::{NoSyncProgress, SyncError, SyncOptions, SyncReport};

/// Builds a reader for a configuration (the live one in production); a subscription resync
/// narrows the configuration's scope and asks for a reader over it.
pub type ReaderFactory = Arc<dyn Fn(&Config) -> Arc<dyn AzureReader> + Send + Sync>;

/// The full reconcile, with the sync engine's guard rails.
pub struct SyncReconciler {
    pub config: Config,
    pub azure: Arc<dyn AzureReader>,
    pub asm: Arc<dyn AsmApi>,
    pub readers: ReaderFactory,
}

impl SyncReconciler {
    /// Over the live estate: `tokens` is the shared credential.
    pub fn live(config: Config, tokens: Arc<dyn TokenSource>, asm: Arc<dyn AsmApi>) -> SyncReconciler {
        let readers: ReaderFactory = Arc::new(move |config: &Config| {
            Arc::new(crate::azure::live_from_config(
                config,
                tokens.clone(),
                crate::azure::arm::Tuning::default(),
            )) as Arc<dyn AzureReader>
        });
        SyncReconciler {
            azure: readers(&config),
            config,
            asm,
            readers,
        }
    }

    async fn all(&self, dry_run: bool) -> Result<Value, WorkError> {
        let options = SyncOptions {
            dry_run,
            ..SyncOptions::default()
        };
        let report = crate::sync::run_sync(&self.config, self.azure.as_ref(), self.asm.as_ref(), options, &NoSyncProgress)
            .await
            .map_err(sync_error)?;
        Ok(summarize(&report))
    }

    /// One subscription: the sweep is narrowed to it, and every other subscription is marked
    /// as not read, so no seed another subscription may contribute is deleted.
    async fn subscription(&self, subscription: &str, dry_run: bool) -> Result<Value, WorkError> {
        let azure = &self.config.azure;
        let allowed = azure.subscriptions.is_empty() || azure.subscriptions.iter().any(|s| s.eq_ignore_ascii_case(subscription));
        let excluded = azure.exclude_subscriptions.iter().any(|s| s.eq_ignore_ascii_case(subscription));
        if !allowed || excluded {
            return Err(WorkError::permanent(format!(
                "subscription {subscription} is outside the configured scope (azure.subscriptions / azure.exclude_subscriptions)"
            )));
        }
        let mut narrowed = self.config.clone();
        narrowed.azure.subscriptions = vec![subscription.to_string()];
        narrowed.azure.management_groups.clear();
        let reader = (self.readers)(&narrowed);
        self.asm.check_auth().await.map_err(|e| sync_error(e.into()))?;
        self.asm.check_scan().await.map_err(|e| sync_error(e.into()))?;
        let sweep = reader
            .sweep(&narrowed.azure.checks, &NoSyncProgress)
            .await
            .map_err(|e| sync_error(e.into()))?;
        let extraction = crate::extract::extract_resources(&sweep.resources, &narrowed.azure.checks);
        let resources_read = sweep.resources.len();
        drop(sweep.resources);
        let mut completeness = sweep.report;
        completeness.incomplete.push(IncompleteScope {
            subscription: "(every other subscription)".into(),
            check: None,
            why: Incomplete::Failed {
                message: format!("not part of this resync of subscription {subscription}"),
            },
        });
        let options = SyncOptions {
            dry_run,
            ..SyncOptions::default()
        };
        let mut report =
            crate::sync::reconcile_and_apply(&narrowed, self.asm.as_ref(), completeness, extraction, options, &NoSyncProgress)
                .await
                .map_err(sync_error)?;
        report.resources_read = resources_read;
        Ok(summarize(&report))
    }

    /// What one resource contributes, read now (a dry run of its apply).
    async fn resource(&self, id: &crate::resource::ResourceId) -> Result<Value, WorkError> {
        match self.azure.read_owner(id).await.map_err(azure_error)? {
            OwnerRead::Gone => Ok(json!({"resource": id.as_str(), "found": false, "seeds": []})),
            OwnerRead::Found(resources) => {
                let extraction = crate::extract::extract_resources(&resources, &self.config.azure.checks);
                let seeds: Vec<Value> = extraction
                    .seeds()
                    .keys()
                    .map(|seed| json!({"name": seed.name(), "type": seed.kind().as_str()}))
                    .collect();
                let warnings: Vec<String> = extraction.warnings.iter().map(ToString::to_string).collect();
                Ok(json!({"resource": id.as_str(), "found": true, "seeds": seeds, "warnings": warnings}))
            }
        }
    }
}

#[async_trait]
impl Reconciler for SyncReconciler {
    async fn reconcile(&self, scope: &Scope, dry_run: bool) -> Result<Value, WorkError> {
        match scope {
            Scope::All => self.all(dry_run).await,
            Scope::Subscription(id) => self.subscription(id, dry_run).await,
            Scope::Resource(id) if dry_run => self.resource(id).await,
            Scope::Resource(_) => Err(WorkError::permanent(
                "a resync of one resource goes through the apply path, not the reconcile",
            )),
        }
    }
}

/// The report without its per-write detail: counts, plus the planned writes and skips of a
/// dry run (what an operator asks a dry run for).
pub fn summarize(report: &SyncReport) -> Value {
    let mut summary = json!({
        "dry_run": report.dry_run,
        "resources_read": report.resources_read,
        "subscriptions": report.subscriptions,
        "desired": report.desired,
        "added": report.added.len(),
        "deleted": report.deleted.len(),
        "kept": report.kept,
        "skipped": report.skipped.len(),
        "failed": report.failed.len(),
        "warnings": report.warnings.len(),
        "incomplete_scopes": report.incomplete_scopes.len(),
    });
    if report.dry_run {
        summary["planned_add"] = serde_json::to_value(&report.planned_add).unwrap_or(Value::Null);
        summary["planned_delete"] = serde_json::to_value(&report.planned_delete).unwrap_or(Value::Null);
        summary["skipped_deletes"] = serde_json::to_value(&report.skipped).unwrap_or(Value::Null);
    }
    if !report.failed.is_empty() {
        summary["failures"] = serde_json::to_value(report.failed.iter().take(20).collect::<Vec<_>>()).unwrap_or(Value::Null);
    }
    summary
}

/// Configuration problems (key, scan, credential) are permanent; outages are transient.
fn sync_error(e: SyncError) -> WorkError {
    let transient = match &e {
        SyncError::Azure(a) => a.is_transient(),
        SyncError::Asm(a) => asm_transient(a),
        SyncError::Unauthorized { .. } | SyncError::ScanNotFound { .. } => false,
    };
    WorkError {
        transient,
        message: e.to_string(),
    }
}

fn azure_error(e: AzureError) -> WorkError {
    WorkError {
        transient: e.is_transient(),
        message: e.to_string(),
    }
}

fn asm_transient(e: &AsmError) -> bool {
    match e {
        AsmError::Transport { .. } => true,
        AsmError::Http { status, .. } => crate::http::is_retryable_status(*status),
        _ => false,
    }
}
