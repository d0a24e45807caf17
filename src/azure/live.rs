//! The live [`AzureReader`]: scope resolution, Resource Graph sweeps with ARM reads for the
//! children Resource Graph does not hold, and single-owner ARM reads.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde_json::Value;

use super::arm::{Arm, bucket_for};
use super::catalog::{self, SUBSCRIPTIONS_API_VERSION, Source};
use super::graph::{self, Scope};
use super::reads::{ChildOutcome, ChildRead};
use super::{
    AzureError, AzureReader, CompletenessReport, Incomplete, IncompleteScope, OwnerRead, Sweep, SweepProgress,
};
use crate::check::{EnabledChecks, ServiceCheck};
use crate::config::AzureSettings;
use crate::resource::{Resource, ResourceId};

/// Which subscriptions to read (from `azure.*` settings).
#[derive(Debug, Clone, Default)]
pub struct ScopeSettings {
    pub subscriptions: Vec<String>,
    pub exclude_subscriptions: Vec<String>,
    pub management_groups: Vec<String>,
}

impl ScopeSettings {
    pub fn from_settings(settings: &AzureSettings) -> ScopeSettings {
        ScopeSettings {
            subscriptions: settings.subscriptions.clone(),
            exclude_subscriptions: settings.exclude_subscriptions.clone(),
            management_groups: settings.management_groups.clone(),
        }
    }
}

/// Reads the estate through ARM and Resource Graph.
pub struct LiveAzure {
    pub(super) arm: Arc<Arm>,
    scope: ScopeSettings,
}

/// A subscription as `GET /subscriptions` (or Resource Graph) lists it.
#[derive(Debug, Clone)]
struct Subscription {
    id: String,
    state: String,
}

impl LiveAzure {
    pub fn new(arm: Arc<Arm>, scope: ScopeSettings) -> LiveAzure {
        LiveAzure { arm, scope }
    }

    /// The HTTP client, for its counters.
    pub fn arm(&self) -> &Arc<Arm> {
        &self.arm
    }

    /// The subscriptions this reader's scope covers, and what resolving them found (notes,
    /// configured subscriptions the identity cannot see): for the multi-tenant reader.
    pub async fn subscriptions_in_scope(&self) -> Result<(Vec<String>, CompletenessReport), AzureError> {
        let mut report = CompletenessReport::default();
        let subscriptions = self.resolve_scope(&mut report).await?;
        Ok((subscriptions, report))
    }

    /// `GET /subscriptions`, every page.
    async fn list_subscriptions(&self) -> Result<Vec<Subscription>, AzureError> {
        let what = "the subscription list (GET /subscriptions)";
        let mut url = self
            .arm
            .url(&format!("/subscriptions?api-version={SUBSCRIPTIONS_API_VERSION}"));
        let mut out = Vec::new();
        for _ in 0..10_000 {
            let reply = self.arm.get(&url, bucket_for("/subscriptions"), what).await?;
            if !reply.is_success() {
                return Err(reply.error(what));
            }
            let page = reply.json(what)?;
            for item in page.get("value").and_then(Value::as_array).into_iter().flatten() {
                let id = item.get("subscriptionId").and_then(Value::as_str).or_else(|| {
                    item.get("id")
                        .and_then(Value::as_str)
                        .and_then(|i| i.rsplit('/').next())
                });
                if let Some(id) = id.filter(|s| !s.is_empty()) {
                    out.push(Subscription {
                        id: id.to_string(),
                        state: item
                            .get("state")
                            .and_then(Value::as_str)
                            .unwrap_or("Enabled")
                            .to_string(),
                    });
                }
            }
            match page.get("nextLink").and_then(Value::as_str).filter(|l| !l.is_empty()) {
                Some(next) => url = self.arm.next_link(next, what)?,
                None => return Ok(out),
            }
        }
        Err(AzureError::BadResponse {
            what: what.into(),
            message: "more than 10,000 pages of nextLink".into(),
        })
    }

    /// Subscriptions under the configured management groups, through Resource Graph.
    async fn management_group_subscriptions(&self) -> Result<Vec<Subscription>, AzureError> {
        let scope = Scope::ManagementGroups(self.scope.management_groups.clone());
        let mut out = Vec::new();
        graph::query_pages(
            &self.arm,
            &scope,
            graph::SUBSCRIPTIONS_QUERY,
            "the subscriptions of the management groups",
            |rows, _| {
                for row in rows {
                    if let Some(id) = row.get("subscriptionId").and_then(Value::as_str) {
                        let state = row
                            .pointer("/properties/state")
                            .and_then(Value::as_str)
                            .unwrap_or("Enabled")
                            .to_string();
                        out.push(Subscription {
                            id: id.to_string(),
                            state,
                        });
                    }
                }
            },
        )
        .await?;
        Ok(out)
    }

    /// The subscriptions in scope, with the allow and deny lists applied; subscriptions the
    /// allow list names but the identity cannot see go to the report.
    async fn resolve_scope(&self, report: &mut CompletenessReport) -> Result<Vec<String>, AzureError> {
        let listed = if self.scope.management_groups.is_empty() {
            self.list_subscriptions().await
        } else {
            self.management_group_subscriptions().await
        };
        let excluded = |id: &str| {
            self.scope
                .exclude_subscriptions
                .iter()
                .any(|x| x.eq_ignore_ascii_case(id))
        };
        let usable = |s: &Subscription| !matches!(s.state.to_ascii_lowercase().as_str(), "disabled" | "deleted");
        let mut in_scope: Vec<String> = Vec::new();
        if self.scope.subscriptions.is_empty() {
            let listed = listed?;
            for s in &listed {
                if !usable(s) {
                    report
                        .notes
                        .push(format!("subscription {} is {} and is not read", s.id, s.state));
                } else if !excluded(&s.id) && !in_scope.iter().any(|x| x.eq_ignore_ascii_case(&s.id)) {
                    in_scope.push(s.id.clone());
                }
            }
            if listed.is_empty() {
                report.scope_unknown = true;
                report.notes.push(
                    "the identity can see no subscription: grant the Reader role on each subscription (or a \
                     management group) to the identity"
                        .into(),
                );
            }
            return Ok(in_scope);
        }
        let listed = match listed {
            Ok(listed) => Some(listed),
            Err(e) => {
                report.notes.push(format!(
                    "could not list subscriptions ({e}); reading the configured ones"
                ));
                None
            }
        };
        for wanted in &self.scope.subscriptions {
            if excluded(wanted) || in_scope.iter().any(|x| x.eq_ignore_ascii_case(wanted)) {
                continue;
            }
            let seen = listed
                .as_ref()
                .map(|l| l.iter().find(|s| s.id.eq_ignore_ascii_case(wanted)));
            match seen {
                Some(Some(s)) if !usable(s) => {
                    report
                        .notes
                        .push(format!("subscription {} is {} and is not read", s.id, s.state));
                }
                Some(Some(s)) => in_scope.push(s.id.clone()),
                Some(None) => {
                    in_scope.push(wanted.clone());
                    report.incomplete.push(IncompleteScope {
                        subscription: wanted.clone(),
                        check: None,
                        why: Incomplete::Forbidden {
                            message: format!(
                                "subscription {wanted} is not visible to the identity (no role on it): {}",
                                grant_reader(wanted)
                            ),
                        },
                    });
                }
                None => in_scope.push(wanted.clone()),
            }
        }
        Ok(in_scope)
    }

    async fn run_sweep(&self, checks: &EnabledChecks, progress: &dyn SweepProgress) -> Result<Sweep, AzureError> {
        let mut report = CompletenessReport::default();
        let subscriptions = self.resolve_scope(&mut report).await?;
        report.subscriptions = subscriptions.clone();
        progress.subscriptions_found(subscriptions.len());
        let unreadable: HashSet<String> = report
            .incomplete
            .iter()
            .filter(|i| i.check.is_none())
            .map(|i| i.subscription.to_ascii_lowercase())
            .collect();
        let readable: Vec<String> = subscriptions
            .into_iter()
            .filter(|s| !unreadable.contains(&s.to_ascii_lowercase()))
            .collect();

        let mut jobs = VecDeque::new();
        for source in [Source::Resources, Source::DnsResources, Source::ComputeResources] {
            let types = catalog::graph_types(checks, source);
            if types.is_empty() {
                continue;
            }
            let table = match source {
                Source::DnsResources => "dnsresources",
                Source::ComputeResources => "computeresources",
                _ => "resources",
            };
            let query = Arc::new(graph::rows_query(table, &types));
            for batch in readable.chunks(self.arm.tuning.subscriptions_per_query.max(1)) {
                jobs.push_back(Job {
                    source,
                    table,
                    query: query.clone(),
                    subscriptions: batch.to_vec(),
                });
            }
        }

        let (child_tx, child_rx) = tokio::sync::mpsc::unbounded_channel::<ChildRead>();
        let children: Mutex<Vec<ChildOutcome>> = Mutex::new(Vec::new());
        let mut parts: Vec<Vec<Resource>> = Vec::new();
        let graph_work = async {
            let child_tx = child_tx;
            let mut running = FuturesUnordered::new();
            loop {
                while running.len() < self.arm.tuning.concurrent_queries.max(1)
                    && let Some(job) = jobs.pop_front()
                {
                    running.push(self.run_job(job, checks, progress, &child_tx));
                }
                let Some((job, result)) = running.next().await else {
                    break;
                };
                match result {
                    Ok(rows) => parts.push(rows),
                    Err(AzureError::Http { status: 403, .. }) if job.subscriptions.len() > 1 => {
                        // Find the subscription(s) we may not read by halving the batch.
                        let mid = job.subscriptions.len() / 2;
                        let (a, b) = job.subscriptions.split_at(mid);
                        for half in [a, b] {
                            jobs.push_back(Job {
                                subscriptions: half.to_vec(),
                                ..job.clone()
                            });
                        }
                    }
                    Err(e) => {
                        tracing::warn!(table = job.table, subscriptions = job.subscriptions.len(), error = %e, "Resource Graph query failed");
                        for sub in &job.subscriptions {
                            for check in catalog::checks_in(checks, job.source) {
                                report.incomplete.push(IncompleteScope {
                                    subscription: sub.clone(),
                                    check: Some(check),
                                    why: incomplete_from(&e, sub),
                                });
                            }
                        }
                    }
                }
            }
        };
        let child_work = async {
            let mut rx = child_rx;
            futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
                .for_each_concurrent(self.arm.tuning.concurrent_arm_reads.max(1), |read| async {
                    let outcome = self.read_child(read).await;
                    if let Ok(mut all) = children.lock() {
                        all.push(outcome);
                    }
                })
                .await;
        };
        tokio::join!(graph_work, child_work);

        // Children count only for parents that ended up in the sweep (a batch split after a
        // 403 may have asked for some twice, or for a parent whose batch then failed).
        // The largest part grows once to the exact size; the others move into it.
        parts.sort_by_key(|p| std::cmp::Reverse(p.len()));
        let total: usize = parts.iter().map(Vec::len).sum();
        let mut parts = parts.into_iter();
        let mut resources = parts.next().unwrap_or_default();
        let child_count: usize = children
            .lock()
            .map(|all| all.iter().map(|c| c.result.as_ref().map_or(0, Vec::len)).sum())
            .unwrap_or(0);
        resources.reserve_exact(total - resources.len() + child_count);
        for part in parts {
            resources.extend(part);
        }
        let with_children: HashSet<ResourceId> = children
            .lock()
            .map(|all| all.iter().map(|c| c.parent.clone()).collect())
            .unwrap_or_default();
        let parents: HashSet<ResourceId> = resources
            .iter()
            .filter(|r| with_children.contains(&r.id))
            .map(|r| r.id.clone())
            .collect();
        drop(with_children);
        let mut seen_children: HashSet<ResourceId> = HashSet::new();
        for outcome in children.into_inner().unwrap_or_default() {
            if !parents.contains(&outcome.parent) {
                continue;
            }
            match outcome.result {
                Ok(found) => {
                    for child in found {
                        if seen_children.insert(child.id.clone()) {
                            resources.push(child);
                        }
                    }
                }
                Err(e) => {
                    let sub = outcome.parent.subscription_id().to_string();
                    let why = incomplete_from(&e, &sub);
                    if !report
                        .incomplete
                        .iter()
                        .any(|i| i.subscription.eq_ignore_ascii_case(&sub) && i.check == Some(outcome.check))
                    {
                        report.incomplete.push(IncompleteScope {
                            subscription: sub,
                            check: Some(outcome.check),
                            why,
                        });
                    }
                }
            }
        }
        // CDN profiles were read only to find AFD custom domains.
        resources.retain(|r| catalog::lookup(&r.arm_type).is_none_or(|t| !t.checks.is_empty()));
        collapse(&mut report, checks);
        Ok(Sweep { resources, report })
    }

    /// One query chain; returns the job so the caller can split it after a 403.
    async fn run_job<'a>(
        &'a self,
        job: Job,
        checks: &'a EnabledChecks,
        progress: &'a dyn SweepProgress,
        child_tx: &'a tokio::sync::mpsc::UnboundedSender<ChildRead>,
    ) -> (Job, Result<Vec<Resource>, AzureError>) {
        let what = format!(
            "Resource Graph ({} over {} subscription{})",
            job.table,
            job.subscriptions.len(),
            if job.subscriptions.len() == 1 { "" } else { "s" }
        );
        let scope = Scope::Subscriptions(job.subscriptions.clone());
        let afd = checks.is_on(ServiceCheck::FrontDoorAfd);
        let storage = checks.is_on(ServiceCheck::StorageStaticWebsites);
        let mut rows_out = Vec::new();
        let result = graph::query_pages(&self.arm, &scope, &job.query, &what, |rows, total| {
            progress.page_read(rows.len());
            if rows_out.capacity() == 0
                && let Some(total) = total
            {
                // Announced by Resource Graph; capped so a bogus value cannot exhaust memory.
                rows_out.reserve_exact((total as usize).min(2_000_000));
            }
            for row in rows {
                match Resource::from_json(row) {
                    Ok(resource) => {
                        if afd
                            && resource.arm_type == "microsoft.cdn/profiles"
                            && catalog::is_front_door_profile(resource.kind.as_deref(), &resource.sku)
                        {
                            let _ = child_tx.send(ChildRead::AfdCustomDomains(resource.id.clone()));
                        } else if storage && resource.arm_type == "microsoft.storage/storageaccounts" {
                            let _ = child_tx.send(ChildRead::BlobServices(resource.id.clone()));
                        }
                        rows_out.push(resource);
                    }
                    Err(e) => tracing::warn!(error = %e, "skipping a Resource Graph row"),
                }
            }
        })
        .await;
        (job, result.map(|()| rows_out))
    }
}

#[async_trait]
impl AzureReader for LiveAzure {
    async fn sweep(&self, checks: &EnabledChecks, progress: &dyn SweepProgress) -> Result<Sweep, AzureError> {
        self.run_sweep(checks, progress).await
    }

    async fn read_owner(&self, owner: &ResourceId) -> Result<OwnerRead, AzureError> {
        self.read_one_owner(owner).await
    }
}

#[derive(Debug, Clone)]
struct Job {
    source: Source,
    table: &'static str,
    query: Arc<String>,
    subscriptions: Vec<String>,
}

/// The message that tells an operator what to grant.
pub fn grant_reader(subscription: &str) -> String {
    format!("grant the Reader role on subscription {subscription} to the identity")
}

/// Why a scope is incomplete, from the error that stopped it.
pub fn incomplete_from(error: &AzureError, subscription: &str) -> Incomplete {
    match error {
        AzureError::Http {
            status: 401, message, ..
        } => Incomplete::Unauthorized {
            message: format!("Azure rejected the token ({message}); check the credential"),
        },
        AzureError::Http {
            status: 403, message, ..
        } => Incomplete::Forbidden {
            message: format!(
                "the identity may not read subscription {subscription} ({message}): {}",
                grant_reader(subscription)
            ),
        },
        AzureError::Throttled { what } => Incomplete::Throttled {
            message: format!("still throttled after retries reading {what}"),
        },
        AzureError::Timeout { what } => Incomplete::Timeout {
            message: format!("timed out reading {what}"),
        },
        AzureError::Credential(message) => Incomplete::Unauthorized {
            message: format!("no token: {message}"),
        },
        other => Incomplete::Failed {
            message: other.to_string(),
        },
    }
}

/// One entry per subscription when every enabled check of it failed for the same reason.
fn collapse(report: &mut CompletenessReport, checks: &EnabledChecks) {
    let enabled: Vec<ServiceCheck> = checks.enabled().collect();
    let mut by_sub: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, entry) in report.incomplete.iter().enumerate() {
        by_sub
            .entry(entry.subscription.to_ascii_lowercase())
            .or_default()
            .push(i);
    }
    let mut drop = HashSet::new();
    let mut add = Vec::new();
    for indexes in by_sub.values() {
        let entries: Vec<&IncompleteScope> = indexes.iter().map(|i| &report.incomplete[*i]).collect();
        if entries.iter().any(|e| e.check.is_none()) || enabled.is_empty() {
            continue;
        }
        let first = entries[0];
        let same_reason = entries
            .iter()
            .all(|e| std::mem::discriminant(&e.why) == std::mem::discriminant(&first.why));
        let covers_all = enabled.iter().all(|c| entries.iter().any(|e| e.check == Some(*c)));
        if same_reason && covers_all {
            drop.extend(indexes.iter().copied());
            add.push(IncompleteScope {
                subscription: first.subscription.clone(),
                check: None,
                why: first.why.clone(),
            });
        }
    }
    let mut index = 0;
    report.incomplete.retain(|_| {
        let keep = !drop.contains(&index);
        index += 1;
        keep
    });
    report.incomplete.extend(add);
    report.incomplete.sort_by(|a, b| {
        a.subscription
            .to_ascii_lowercase()
            .cmp(&b.subscription.to_ascii_lowercase())
            .then(a.check.cmp(&b.check))
    });
}
