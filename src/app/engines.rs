//! The real engines behind the handler's ports: the one reconcile ([`crate::engine::reconcile`])
//! as the [`Reconciler`] (timer, resyncs, queued resync jobs, fan-out batches), and the
//! ledger's apply path ([`crate::engine::apply`]) as the [`ApplyPort`].

use std::sync::Arc;

use async_trait::async_trait;
use tracing::Instrument;

use crate::adapters::asm::AsmApi;
use crate::adapters::azure::{AzureError, AzureReader, Incomplete, IncompleteScope, OwnerRead, TokenSource};
use crate::app::ports::{Applied, ApplyPort, Reconciled, Reconciler, ResourcePreview, Scope, WorkError};
use crate::config::Config;
use crate::domain::change::{Change, ChangeKind};
use crate::engine::apply::{ApplyRequest, ReportedSeed};
use crate::engine::reconcile::{Reconcile, ReconcileReport};
use crate::engine::sync::{NoSyncProgress, SyncError, SyncOptions};
use crate::ledger::{FailedChange, FailedChangeKind, Ledger};

/// Builds a reader for a configuration (the live one in production); a subscription resync
/// narrows the configuration's scope and asks for a reader over it.
pub(crate) type ReaderFactory = Arc<dyn Fn(&Config) -> Arc<dyn AzureReader> + Send + Sync>;

/// The full reconcile, with the sync engine's guard rails; with a ledger, the ledger's
/// provenance feeds the guard rails and the ledger is rebuilt from the result.
///
/// Each reconcile runs on a thread of its own with its own runtime: a sweep is long and heavy,
/// and the sync engine's future is not `Send` (its write stream borrows across awaits), so it
/// cannot be spawned on the server's runtime.
pub struct SyncReconciler(pub Arc<SyncEngine>);

pub struct SyncEngine {
    pub config: Config,
    pub azure: Arc<dyn AzureReader>,
    pub asm: Arc<dyn AsmApi>,
    pub ledger: Option<Arc<dyn Ledger>>,
    pub readers: ReaderFactory,
    /// The shared credential, for the status function's token probe.
    pub tokens: Option<Arc<dyn TokenSource>>,
}

impl SyncEngine {
    /// Over the live estate: `tokens` is the shared credential.
    pub fn live(
        config: Config,
        tokens: Arc<dyn TokenSource>,
        asm: Arc<dyn AsmApi>,
        ledger: Option<Arc<dyn Ledger>>,
    ) -> SyncEngine {
        let status_tokens = tokens.clone();
        // Resource Graph's quota is per user: the batches of a fanned-out run, on any instance,
        // share it through the ledger.
        let gate = ledger.clone().map(|ledger| {
            Arc::new(crate::adapters::azure::shared_quota::LedgerGraphQuota::new(ledger))
                as Arc<dyn crate::adapters::azure::quota::GraphQuotaGate>
        });
        let readers: ReaderFactory = Arc::new(move |config: &Config| {
            if config.azure.tenants.is_empty() {
                Arc::new(crate::adapters::azure::live_sharing_graph_quota(
                    config,
                    tokens.clone(),
                    crate::adapters::azure::arm::Tuning::default(),
                    gate.clone(),
                )) as Arc<dyn AzureReader>
            } else {
                // Each connection signs in as its own identity, which has a quota of its own.
                crate::adapters::azure::tenants::reader_from_config(config, tokens.clone(), &crate::config::ProcessEnv)
            }
        });
        SyncEngine {
            azure: readers(&config),
            config,
            asm,
            ledger,
            readers,
            tokens: Some(status_tokens),
        }
    }

    /// One subscription: the sweep is narrowed to it, and every other subscription is marked
    /// as not read, so no seed another subscription may contribute is deleted.
    async fn subscription(&self, subscription: &str, dry_run: bool) -> Result<ReconcileReport, WorkError> {
        let what = format!("resync of subscription {subscription}");
        self.narrowed(&[subscription.to_string()], &what, dry_run).await
    }

    /// A sweep narrowed to `subscriptions` (each within the configured scope), with an entry
    /// "every other subscription: not part of this {what}" in the completeness report.
    pub(super) async fn narrowed(
        &self,
        subscriptions: &[String],
        what: &str,
        dry_run: bool,
    ) -> Result<ReconcileReport, WorkError> {
        let azure = &self.config.azure;
        for subscription in subscriptions {
            let allowed = azure.subscriptions.is_empty()
                || azure.subscriptions.iter().any(|s| s.eq_ignore_ascii_case(subscription));
            let excluded = azure
                .exclude_subscriptions
                .iter()
                .any(|s| s.eq_ignore_ascii_case(subscription));
            if !allowed || excluded {
                return Err(outside_scope(subscription));
            }
        }
        let mut narrowed = self.config.clone();
        if !crate::config::tenants::narrow_to_subscriptions(&mut narrowed.azure, subscriptions) {
            let uncovered = subscriptions
                .iter()
                .find(|s| !self.config.azure.tenants.iter().any(|c| c.may_read(s)));
            return Err(outside_scope(uncovered.map(String::as_str).unwrap_or("(none)")));
        }
        let reader = (self.readers)(&narrowed);
        let others = IncompleteScope {
            subscription: "(every other subscription)".into(),
            check: None,
            why: Incomplete::Failed {
                message: format!("not part of this {what}"),
            },
        };
        self.run(&narrowed, reader.as_ref(), Some(others), dry_run).await
    }

    /// The whole estate.
    async fn all(&self, dry_run: bool) -> Result<ReconcileReport, WorkError> {
        self.run(&self.config, self.azure.as_ref(), None, dry_run).await
    }

    /// The one reconcile ([`crate::engine::reconcile`]) over a scope, with this engine's ledger.
    pub(super) async fn run(
        &self,
        config: &Config,
        reader: &dyn AzureReader,
        left_out: Option<IncompleteScope>,
        dry_run: bool,
    ) -> Result<ReconcileReport, WorkError> {
        crate::engine::reconcile::reconcile(Reconcile {
            config,
            azure: reader,
            asm: self.asm.as_ref(),
            ledger: self.ledger.as_deref(),
            options: SyncOptions {
                dry_run,
                ..SyncOptions::default()
            },
            left_out,
            progress: &NoSyncProgress,
        })
        .await
        .map_err(sync_error)
    }

    /// What one resource contributes, read now (a dry run of its apply).
    async fn resource(&self, id: &crate::domain::resource::ResourceId) -> Result<ResourcePreview, WorkError> {
        let resource = id.as_str().to_string();
        match self.azure.read_owner(id).await.map_err(azure_error)? {
            OwnerRead::Gone => Ok(ResourcePreview {
                resource,
                found: false,
                seeds: Vec::new(),
                warnings: None,
            }),
            OwnerRead::Found(resources) => {
                let extraction = crate::domain::extract::extract_resources(&resources, &self.config.azure.checks);
                Ok(ResourcePreview {
                    resource,
                    found: true,
                    seeds: extraction.seeds().keys().map(ReportedSeed::from).collect(),
                    warnings: Some(extraction.warnings.iter().map(ToString::to_string).collect()),
                })
            }
        }
    }
}

#[async_trait]
impl Reconciler for SyncReconciler {
    async fn reconcile(&self, scope: &Scope, dry_run: bool) -> Result<Reconciled, WorkError> {
        let engine = Arc::clone(&self.0);
        let trigger = crate::app::health::record::current_trigger();
        // A batch reports to its fanned-out run's record instead.
        let recorded = !matches!(scope, Scope::Resource(_) | Scope::Batch(_));
        let run = crate::app::health::record::begin(
            self.0.ledger.clone().filter(|_| recorded),
            trigger,
            scope.id().unwrap_or(scope.name()),
            dry_run,
        )
        .await;
        let scope = scope.clone();
        let span = tracing::Span::current();
        let (done, result) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("seedwatch-reconcile".into())
            .spawn(move || {
                let outcome = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime.block_on(engine.reconcile(&scope, dry_run).instrument(span)),
                    Err(e) => Err(WorkError::transient(format!(
                        "cannot start the reconcile's runtime: {e}"
                    ))),
                };
                let _ = done.send(outcome);
            })
            .map_err(|e| WorkError::transient(format!("cannot start the reconcile's thread: {e}")))?;
        let outcome = result
            .await
            .unwrap_or_else(|_| Err(WorkError::transient("the reconcile stopped without a result")));
        // The run history stores the summary as JSON.
        let summary = outcome.as_ref().map(|s| serde_json::to_value(s).unwrap_or_default());
        crate::app::health::record::end(run, summary.as_ref().map_err(|e| e.message())).await;
        outcome
    }

    fn status_source(&self) -> Option<crate::app::health::status::StatusSource> {
        Some(self.0.status_source())
    }

    async fn fanout(&self) -> Result<Option<Vec<Vec<String>>>, WorkError> {
        self.0.fanout_batches().await
    }

    async fn fanout_started(&self, batches: u32) -> Option<String> {
        self.start_fanout(batches).await
    }

    async fn batch_reported(&self, batch: &crate::app::ports::Batch, outcome: Result<&Reconciled, &str>) {
        self.report_batch(batch, outcome).await
    }
}

impl SyncEngine {
    /// Reconciles one scope (see [`Reconciler::reconcile`]).
    pub(crate) async fn reconcile(&self, scope: &Scope, dry_run: bool) -> Result<Reconciled, WorkError> {
        let report = match scope {
            Scope::All => self.all(dry_run).await?,
            Scope::Subscription(id) => self.subscription(id, dry_run).await?,
            Scope::Batch(batch) => self.batch(batch, dry_run).await?,
            Scope::Resource(id) if dry_run => return self.resource(id).await.map(Reconciled::Resource),
            Scope::Resource(_) => {
                return Err(WorkError::permanent(
                    "a resync of one resource goes through the apply path, not the reconcile",
                ));
            }
        };
        Ok(Reconciled::Report(Box::new(report)))
    }
}

/// Configuration problems (key, scan, credential) are permanent; outages are transient.
fn sync_error(e: SyncError) -> WorkError {
    WorkError::from_error(&e, e.is_transient())
}

/// The ledger's incremental apply path behind the [`ApplyPort`].
pub(crate) struct LedgerApply(pub Arc<crate::engine::apply::Applier>);

#[async_trait]
impl ApplyPort for LedgerApply {
    async fn apply(&self, change: &Change) -> Result<Applied, WorkError> {
        let subscription = change.id.subscription_id();
        if !self.0.azure.covers(subscription) {
            // Acknowledged, never read nor applied (not even from a body the event carries).
            tracing::warn!(resource = %change.id, subscription, "change in a subscription covered by no connection of azure.tenants: ignored");
            return Ok(Applied::Ignored {
                resource: change.id.as_str().to_string(),
                ignored: "subscription covered by no connection of azure.tenants",
            });
        }
        let request = ApplyRequest {
            resource: change.id.clone(),
            deleted: change.kind == ChangeKind::Deleted,
            body: change.body.as_ref().map(|resource| resource.to_json()),
            body_time_ms: change.time.as_deref().and_then(event_time_ms),
        };
        let outcome = match self.0.apply(&request).await {
            Ok(report) => {
                for kept in &report.kept {
                    tracing::warn!(resource = %change.id, seed = %kept.name, reason = %kept.reason, "seed kept in ASM");
                }
                Ok(Applied::Report(report))
            }
            Err(e) => Err(WorkError::from_error(&e, e.is_transient())),
        };
        let ledger = self.0.ledger.as_ref();
        match &outcome {
            Ok(_) => crate::app::health::record::applied(ledger, &change.id).await,
            Err(e) if e.is_transient() => {
                crate::app::health::record::retry_pending(ledger, &change.id, e.message()).await
            }
            Err(_) => {}
        }
        outcome
    }

    /// Records the failed change in the ledger (the latest failure of a resource wins), where
    /// the next reconcile reports and, once it covered it, clears it.
    async fn give_up(&self, change: &Change, cause: &str, attempts: u32) {
        let kind = match change.kind {
            ChangeKind::Changed => FailedChangeKind::Changed,
            ChangeKind::Deleted => FailedChangeKind::Deleted,
        };
        crate::app::health::record::gave_up(self.0.ledger.as_ref(), &change.id).await;
        let record = FailedChange::new(change.id.clone(), kind, cause, attempts, self.0.clock.now_ms());
        match self.0.ledger.put_failure(&record).await {
            Ok(_) => tracing::info!(resource = %change.id, attempts, "failed change recorded for the next reconcile"),
            Err(e) => tracing::error!(
                resource = %change.id,
                cause,
                ledger_error = %e,
                "the failed change could not be recorded in the ledger; the next full reconcile still covers it"
            ),
        }
    }
}

/// An event time (RFC 3339) as Unix milliseconds.
fn event_time_ms(text: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

pub(super) fn azure_error(e: AzureError) -> WorkError {
    WorkError::from_error(&e, e.is_transient())
}

impl SyncEngine {
    /// The clients the status function reads through (its own configuration and ledger).
    pub(crate) fn status_source(&self) -> crate::app::health::status::StatusSource {
        crate::app::health::status::StatusSource {
            config: self.config.clone(),
            ledger: self.ledger.clone().ok_or_else(|| "no ledger is configured".to_string()),
            asm: Some(self.asm.clone()),
            tokens: self.tokens.clone(),
        }
    }
}

fn outside_scope(subscription: &str) -> WorkError {
    WorkError::permanent(format!(
        "subscription {subscription} is outside the configured scope (azure.subscriptions / azure.exclude_subscriptions / azure.tenants)"
    ))
}
