//! The sweep of [`TenantsReader`]: resolve every connection's subscriptions, give each
//! subscription to the first connection that can see it (a subscription two connections can
//! read, e.g. one delegated through Azure Lighthouse, is read once and reported), sweep each
//! connection over its own subscriptions, and merge the reports with each tenant named.
//!
//! Each connection's sweep is kept whole ([`Sweep`], every body) or extracted page by page
//! ([`ExtractedSweep`], what the reconcile and the live `plan` use: no body outlives its page).
//! A cross-resource fact never spans connections (a record set's zone and a storage account's
//! `blobServices/default` are in the owner's own subscription), so extracting each connection's
//! sweep and joining them equals extracting the joined sweep.

use std::collections::HashMap;

use futures::future::BoxFuture;

use super::live::{LiveAzure, ScopeSettings};
use super::tenants::{Connection, TenantsReader, whole_tenant};
use super::{AzureError, CompletenessReport, ExtractedSweep, IncompleteScope, Sweep, SweepProgress, TenantScopes};
use crate::domain::check::EnabledChecks;

/// What a tenants sweep collects from each connection.
pub(super) trait TenantPart: Default + Send {
    fn report(&mut self) -> &mut CompletenessReport;
    /// Takes in another connection's resources (or their extraction); reports merge apart.
    fn join(&mut self, other: Self);
    /// One connection's sweep over the scope of `live`.
    fn read<'a>(
        live: &'a LiveAzure,
        checks: &'a EnabledChecks,
        progress: &'a dyn SweepProgress,
    ) -> BoxFuture<'a, Result<Self, AzureError>>;
}

impl TenantPart for Sweep {
    fn report(&mut self) -> &mut CompletenessReport {
        &mut self.report
    }
    fn join(&mut self, other: Self) {
        self.resources.extend(other.resources);
    }
    fn read<'a>(
        live: &'a LiveAzure,
        checks: &'a EnabledChecks,
        progress: &'a dyn SweepProgress,
    ) -> BoxFuture<'a, Result<Self, AzureError>> {
        Box::pin(super::AzureReader::sweep(live, checks, progress))
    }
}

impl TenantPart for ExtractedSweep {
    fn report(&mut self) -> &mut CompletenessReport {
        &mut self.report
    }
    fn join(&mut self, other: Self) {
        self.extraction.contributions.extend(other.extraction.contributions);
        self.extraction.warnings.extend(other.extraction.warnings);
        self.resources_read += other.resources_read;
    }
    fn read<'a>(
        live: &'a LiveAzure,
        checks: &'a EnabledChecks,
        progress: &'a dyn SweepProgress,
    ) -> BoxFuture<'a, Result<Self, AzureError>> {
        Box::pin(super::AzureReader::sweep_extracted(live, checks, progress))
    }
}

/// What resolving one connection's scope gave.
struct Resolved {
    in_scope: Vec<String>,
    /// In scope (listed in the configuration) but not visible to the connection's identity.
    unseen: Vec<String>,
    report: CompletenessReport,
}

pub(super) async fn sweep<S: TenantPart>(
    reader: &TenantsReader,
    checks: &EnabledChecks,
    progress: &dyn SweepProgress,
) -> Result<S, AzureError> {
    let connections = reader.connections();
    let mut resolved: Vec<Result<Resolved, String>> = Vec::new();
    for conn in connections {
        resolved.push(match conn.reader() {
            Ok(live) => resolve(live).await,
            Err(e) => Err(e.to_string()),
        });
    }
    let (reads_it, notes) = assign(connections, &resolved);
    let mut out = S::default();
    for (i, (conn, r)) in connections.iter().zip(resolved).enumerate() {
        let r = match r {
            Ok(r) if !r.report.scope_unknown => r,
            Ok(r) => {
                let why = r.report.notes.join("; ");
                unreadable_tenant(&mut out, &conn.tenant, why);
                continue;
            }
            Err(e) => {
                unreadable_tenant(&mut out, &conn.tenant, e);
                continue;
            }
        };
        // Its own subscriptions, and those it lists that nobody can see (reported unread).
        let mine: Vec<String> = r
            .in_scope
            .iter()
            .filter(|s| reads_it.get(&s.to_ascii_lowercase()).is_none_or(|first| *first == i))
            .cloned()
            .collect();
        match sweep_own::<S>(conn, mine, &r.report.notes, checks, progress).await {
            Ok(part) => merge(&mut out, part, &conn.tenant),
            Err(e) => unreadable_tenant(&mut out, &conn.tenant, e),
        }
    }
    out.report().notes.extend(notes);
    Ok(out)
}

/// The first connection that sees a subscription reads it; a subscription seen by a later one
/// too gets a note.
fn assign(connections: &[Connection], resolved: &[Result<Resolved, String>]) -> (HashMap<String, usize>, Vec<String>) {
    let mut reads_it: HashMap<String, usize> = HashMap::new();
    let mut notes = Vec::new();
    for (i, r) in resolved.iter().enumerate() {
        let Ok(r) = r else { continue };
        for sub in r.in_scope.iter().filter(|s| !contains(&r.unseen, s)) {
            match reads_it.get(&sub.to_ascii_lowercase()) {
                Some(first) => notes.push(format!(
                    "subscription {sub} is visible to tenant {} and tenant {}: read through tenant {}",
                    connections[*first].tenant, connections[i].tenant, connections[*first].tenant
                )),
                None => {
                    reads_it.insert(sub.to_ascii_lowercase(), i);
                }
            }
        }
    }
    (reads_it, notes)
}

/// One connection's sweep over exactly `mine`, with the notes its scope resolution made.
async fn sweep_own<S: TenantPart>(
    conn: &Connection,
    mine: Vec<String>,
    notes: &[String],
    checks: &EnabledChecks,
    progress: &dyn SweepProgress,
) -> Result<S, String> {
    let mut part = if mine.is_empty() {
        // An empty list would mean "every subscription": nothing to read here.
        S::default()
    } else {
        let live = conn.reader().map_err(str::to_string)?;
        let own = LiveAzure::new(
            live.arm().clone(),
            ScopeSettings {
                subscriptions: mine,
                ..Default::default()
            },
        );
        S::read(&own, checks, progress).await.map_err(|e| e.to_string())?
    };
    let report = part.report();
    for note in notes {
        if !report.notes.contains(note) {
            report.notes.push(note.clone());
        }
    }
    Ok(part)
}

/// Merges one connection's sweep into the whole.
fn merge<S: TenantPart>(into: &mut S, mut part: S, tenant: &str) {
    let report = std::mem::take(part.report());
    let complete = report.is_fully_complete();
    into.join(part);
    let into = into.report();
    into.subscriptions.extend(report.subscriptions.iter().cloned());
    into.incomplete.extend(report.incomplete);
    for note in report.notes {
        let note = format!("tenant {tenant}: {note}");
        if !into.notes.contains(&note) {
            into.notes.push(note);
        }
    }
    into.tenants.push(TenantScopes {
        tenant: tenant.to_string(),
        subscriptions: report.subscriptions,
        complete,
        error: None,
    });
}

async fn resolve(live: &LiveAzure) -> Result<Resolved, String> {
    let (in_scope, report) = live.subscriptions_in_scope().await.map_err(|e| e.to_string())?;
    let unseen = report
        .incomplete
        .iter()
        .filter(|i: &&IncompleteScope| i.check.is_none())
        .map(|i| i.subscription.clone())
        .collect();
    Ok(Resolved {
        in_scope,
        unseen,
        report,
    })
}

/// A tenant whose subscriptions could not be listed: nothing of it counts as read, so the
/// reconcile keeps every seed its subscriptions contributed (their subscriptions are not in
/// the report's scope) and, without provenance, deletes nothing at all.
fn unreadable_tenant<S: TenantPart>(out: &mut S, tenant: &str, why: String) {
    tracing::warn!(tenant, error = %why, "a tenant's subscriptions could not be read");
    let report = out.report();
    report.incomplete.push(whole_tenant(tenant, why.clone()));
    report.tenants.push(TenantScopes {
        tenant: tenant.to_string(),
        subscriptions: Vec::new(),
        complete: false,
        error: Some(why),
    });
}

fn contains(list: &[String], s: &str) -> bool {
    list.iter().any(|x| x.eq_ignore_ascii_case(s))
}
