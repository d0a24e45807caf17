//! The sweep itself: Resource Graph query chains (one per table and batch of subscriptions)
//! with the ARM reads of the children Resource Graph lacks, collected into a [`Part`] per
//! chain. A chain that fails is dropped whole (its scope goes to the completeness report), so
//! what a part keeps is decided by the caller: every resource ([`Vec<Resource>`], for
//! `AzureReader::sweep`) or only its extraction ([`ExtractedPart`], for
//! `AzureReader::sweep_extracted`: each row is extracted as its page arrives and its body
//! dropped, so memory grows with seeds, not with the estate).

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::catalog::{self, Source};
use super::graph::{self, Scope};
use super::live::{collapse, incomplete_from};
use super::reads::ChildRead;
use super::{AzureError, CompletenessReport, IncompleteScope, LiveAzure, SweepProgress};
use crate::domain::check::{EnabledChecks, ServiceCheck};
use crate::domain::extract::CollectedExtraction;
use crate::domain::resource::{Resource, ResourceId};

/// What a sweep keeps of the resources one query chain (or one child read) gave.
pub(super) trait Part: Send + Sized {
    fn push(&mut self, resource: Resource);
    /// Resources pushed.
    fn rows(&self) -> usize;
    /// Joins another part's resources to this one's.
    fn absorb(&mut self, other: Self);
    /// Room for `_rows` more resources (announced by Resource Graph).
    fn reserve(&mut self, _rows: usize) {}
}

impl Part for Vec<Resource> {
    fn push(&mut self, resource: Resource) {
        Vec::push(self, resource);
    }
    fn rows(&self) -> usize {
        self.len()
    }
    fn absorb(&mut self, other: Self) {
        self.extend(other);
    }
    fn reserve(&mut self, rows: usize) {
        if self.capacity() == 0 {
            // Capped so a bogus announced total cannot exhaust memory.
            self.reserve_exact(rows.min(2_000_000));
        }
    }
}

/// The extraction of resources as they arrive (`AzureReader::sweep_extracted`): each resource
/// is extracted when its page or companion read arrives and its body dropped; facts a later
/// part may state are resolved when every part is in ([`CollectedExtraction::finish`]).
pub type ExtractedPart = CollectedExtraction;

impl Part for CollectedExtraction {
    fn push(&mut self, resource: Resource) {
        CollectedExtraction::push(self, &resource);
    }
    fn rows(&self) -> usize {
        CollectedExtraction::rows(self)
    }
    fn absorb(&mut self, other: Self) {
        CollectedExtraction::absorb(self, other);
    }
}

#[derive(Debug, Clone)]
struct Job {
    source: Source,
    table: &'static str,
    query: Arc<String>,
    subscriptions: Vec<String>,
}

/// A chain's result: its part and the parents it asked children for.
type JobResult<P> = Result<(P, Vec<ResourceId>), AzureError>;

/// A child read's result, already collected into a part.
struct ChildPart<P> {
    parent: ResourceId,
    check: ServiceCheck,
    result: Result<P, AzureError>,
}

/// Whether a resource counts: CDN profiles are read only to find AFD custom domains.
fn kept(resource: &Resource) -> bool {
    catalog::lookup(&resource.arm_type).is_none_or(|t| !t.checks.is_empty())
}

/// The subscriptions left once those the scope resolution could not read are set aside.
fn readable(subscriptions: Vec<String>, report: &CompletenessReport) -> Vec<String> {
    let unreadable: HashSet<String> = report
        .incomplete
        .iter()
        .filter(|i| i.check.is_none())
        .map(|i| i.subscription.to_ascii_lowercase())
        .collect();
    subscriptions
        .into_iter()
        .filter(|s| !unreadable.contains(&s.to_ascii_lowercase()))
        .collect()
}

/// The largest part takes in the others (fewer moves).
fn merge<P: Part>(mut parts: Vec<P>, new_part: &(dyn Fn() -> P + Sync)) -> P {
    parts.sort_by_key(|p| std::cmp::Reverse(p.rows()));
    let mut parts = parts.into_iter();
    let mut all = parts.next().unwrap_or_else(new_part);
    for part in parts {
        all.absorb(part);
    }
    all
}

/// Where a finished query chain's outcome goes: its part and parents on success, its halves
/// back in the queue on a 403 (to find the subscriptions we may not read), its scope in the
/// completeness report on any other failure.
struct Settled<'a, P> {
    parts: &'a mut Vec<P>,
    parents: &'a mut HashSet<ResourceId>,
    jobs: &'a mut VecDeque<Job>,
    report: &'a mut CompletenessReport,
}

impl<P> Settled<'_, P> {
    fn take(self, job: Job, result: JobResult<P>, checks: &EnabledChecks) {
        match result {
            Ok((part, asked)) => {
                self.parts.push(part);
                self.parents.extend(asked);
            }
            Err(AzureError::Http { status: 403, .. }) if job.subscriptions.len() > 1 => {
                let mid = job.subscriptions.len() / 2;
                let (a, b) = job.subscriptions.split_at(mid);
                for half in [a, b] {
                    self.jobs.push_back(Job {
                        subscriptions: half.to_vec(),
                        ..job.clone()
                    });
                }
            }
            Err(e) => {
                tracing::warn!(table = job.table, subscriptions = job.subscriptions.len(), error = %e, "Resource Graph query failed");
                for sub in &job.subscriptions {
                    for check in catalog::checks_in(checks, job.source) {
                        self.report.incomplete.push(IncompleteScope {
                            subscription: sub.clone(),
                            check: Some(check),
                            why: incomplete_from(&e, sub),
                        });
                    }
                }
            }
        }
    }
}

impl LiveAzure {
    /// Sweeps the scope, collecting each chain's resources into a part made by `new_part`.
    pub(super) async fn sweep_into<P: Part>(
        &self,
        checks: &EnabledChecks,
        progress: &dyn SweepProgress,
        new_part: &(dyn Fn() -> P + Sync),
    ) -> Result<(P, CompletenessReport), AzureError> {
        let mut report = CompletenessReport::default();
        let subscriptions = self.resolve_scope(&mut report).await?;
        report.subscriptions = subscriptions.clone();
        progress.subscriptions_found(subscriptions.len());
        let mut jobs = self.jobs(checks, &readable(subscriptions, &report));

        let (child_tx, child_rx) = tokio::sync::mpsc::unbounded_channel::<ChildRead>();
        let children: Mutex<Vec<ChildPart<P>>> = Mutex::new(Vec::new());
        let mut parts: Vec<P> = Vec::new();
        let mut parents: HashSet<ResourceId> = HashSet::new();
        let graph_work = async {
            let child_tx = child_tx;
            let mut running = FuturesUnordered::new();
            loop {
                while running.len() < self.arm.tuning.concurrent_queries.max(1)
                    && let Some(job) = jobs.pop_front()
                {
                    running.push(self.run_job(job, checks, progress, &child_tx, new_part));
                }
                let Some((job, result)) = running.next().await else {
                    break;
                };
                let settled = Settled {
                    parts: &mut parts,
                    parents: &mut parents,
                    jobs: &mut jobs,
                    report: &mut report,
                };
                settled.take(job, result, checks);
            }
        };
        let child_work = async {
            let mut rx = child_rx;
            futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
                .for_each_concurrent(self.arm.tuning.concurrent_arm_reads.max(1), |read| async {
                    let part = self.collect_child(read, new_part).await;
                    if let Ok(mut all) = children.lock() {
                        all.push(part);
                    }
                })
                .await;
        };
        tokio::join!(graph_work, child_work);

        let mut all = merge(parts, new_part);
        self.join_children(
            &mut all,
            children.into_inner().unwrap_or_default(),
            &parents,
            &mut report,
        );
        collapse(&mut report, checks);
        Ok((all, report))
    }

    /// Reads one parent's children and collects them as they arrive: the bodies are dropped
    /// here.
    async fn collect_child<P: Part>(&self, read: ChildRead, new_part: &(dyn Fn() -> P + Sync)) -> ChildPart<P> {
        let outcome = self.read_child(read).await;
        let result = outcome.result.map(|found| {
            let mut part = new_part();
            for child in found.into_iter().filter(kept) {
                part.push(child);
            }
            part
        });
        ChildPart {
            parent: outcome.parent,
            check: outcome.check,
            result,
        }
    }

    /// Children count only for parents that ended up in the sweep (a batch split after a 403
    /// may have asked for some twice, or for a parent whose batch then failed); a parent's
    /// children are taken once. A failed child read marks its check incomplete for the
    /// parent's subscription.
    fn join_children<P: Part>(
        &self,
        all: &mut P,
        children: Vec<ChildPart<P>>,
        parents: &HashSet<ResourceId>,
        report: &mut CompletenessReport,
    ) {
        let mut taken: HashSet<(ResourceId, ServiceCheck)> = HashSet::new();
        for child in children {
            if !parents.contains(&child.parent) {
                continue;
            }
            match child.result {
                Ok(part) => {
                    if taken.insert((child.parent, child.check)) {
                        all.absorb(part);
                    }
                }
                Err(e) => {
                    let sub = child.parent.subscription_id().to_string();
                    let why = incomplete_from(&e, &sub);
                    if !report
                        .incomplete
                        .iter()
                        .any(|i| i.subscription.eq_ignore_ascii_case(&sub) && i.check == Some(child.check))
                    {
                        report.incomplete.push(IncompleteScope {
                            subscription: sub,
                            check: Some(child.check),
                            why,
                        });
                    }
                }
            }
        }
    }

    /// One query chain per table and batch of subscriptions.
    fn jobs(&self, checks: &EnabledChecks, readable: &[String]) -> VecDeque<Job> {
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
        jobs
    }

    /// One query chain; returns the job so the caller can split it after a 403.
    async fn run_job<'a, P: Part>(
        &'a self,
        job: Job,
        checks: &'a EnabledChecks,
        progress: &'a dyn SweepProgress,
        child_tx: &'a tokio::sync::mpsc::UnboundedSender<ChildRead>,
        new_part: &'a (dyn Fn() -> P + Sync),
    ) -> (Job, JobResult<P>) {
        let what = format!(
            "Resource Graph ({} over {} subscription{})",
            job.table,
            job.subscriptions.len(),
            if job.subscriptions.len() == 1 { "" } else { "s" }
        );
        let scope = Scope::Subscriptions(job.subscriptions.clone());
        let afd = checks.is_on(ServiceCheck::FrontDoorAfd);
        let storage = checks.is_on(ServiceCheck::StorageStaticWebsites);
        let mut part = new_part();
        let mut asked = Vec::new();
        let result = graph::query_pages(&self.arm, &scope, &job.query, &what, |rows, total| {
            progress.page_read(rows.len());
            if let Some(total) = total {
                part.reserve(total as usize);
            }
            for row in rows {
                match Resource::from_json(row) {
                    Ok(resource) => {
                        if afd
                            && resource.arm_type == "microsoft.cdn/profiles"
                            && catalog::is_front_door_profile(resource.kind.as_deref(), &resource.sku)
                        {
                            asked.push(resource.id.clone());
                            let _ = child_tx.send(ChildRead::AfdCustomDomains(resource.id.clone()));
                        } else if storage && resource.arm_type == "microsoft.storage/storageaccounts" {
                            asked.push(resource.id.clone());
                            let _ = child_tx.send(ChildRead::BlobServices(resource.id.clone()));
                        }
                        if kept(&resource) {
                            part.push(resource);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "skipping a Resource Graph row"),
                }
            }
        })
        .await;
        (job, result.map(|()| (part, asked)))
    }
}
