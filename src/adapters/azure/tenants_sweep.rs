//! The sweep of [`TenantsReader`]: resolve every connection's subscriptions, give each
//! subscription to the first connection that can see it (a subscription two connections can
//! read, e.g. one delegated through Azure Lighthouse, is read once and reported), sweep each
//! connection over its own subscriptions, and merge the reports with each tenant named.

use std::collections::HashMap;

use super::live::{LiveAzure, ScopeSettings};
use super::tenants::{Connection, TenantsReader, merge, whole_tenant};
use super::{AzureError, CompletenessReport, IncompleteScope, Sweep, SweepProgress, TenantScopes};
use crate::domain::check::EnabledChecks;

/// What resolving one connection's scope gave.
struct Resolved {
    in_scope: Vec<String>,
    /// In scope (listed in the configuration) but not visible to the connection's identity.
    unseen: Vec<String>,
    report: CompletenessReport,
}

pub(super) async fn sweep(
    reader: &TenantsReader,
    checks: &EnabledChecks,
    progress: &dyn SweepProgress,
) -> Result<Sweep, AzureError> {
    let connections = reader.connections();
    let mut resolved: Vec<Result<Resolved, String>> = Vec::new();
    for conn in connections {
        resolved.push(match conn.reader() {
            Ok(live) => resolve(live).await,
            Err(e) => Err(e.to_string()),
        });
    }
    let (reads_it, notes) = assign(connections, &resolved);
    let mut out = Sweep::default();
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
        match sweep_own(conn, mine, &r.report.notes, checks, progress).await {
            Ok(part) => merge(&mut out, part, &conn.tenant),
            Err(e) => unreadable_tenant(&mut out, &conn.tenant, e),
        }
    }
    out.report.notes.extend(notes);
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
async fn sweep_own(
    conn: &Connection,
    mine: Vec<String>,
    notes: &[String],
    checks: &EnabledChecks,
    progress: &dyn SweepProgress,
) -> Result<Sweep, String> {
    let mut part = if mine.is_empty() {
        // An empty list would mean "every subscription": nothing to read here.
        Sweep::default()
    } else {
        let live = conn.reader().map_err(str::to_string)?;
        let own = LiveAzure::new(
            live.arm().clone(),
            ScopeSettings {
                subscriptions: mine,
                ..Default::default()
            },
        );
        super::AzureReader::sweep(&own, checks, progress)
            .await
            .map_err(|e| e.to_string())?
    };
    for note in notes {
        if !part.report.notes.contains(note) {
            part.report.notes.push(note.clone());
        }
    }
    Ok(part)
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
fn unreadable_tenant(out: &mut Sweep, tenant: &str, why: String) {
    tracing::warn!(tenant, error = %why, "a tenant's subscriptions could not be read");
    out.report.incomplete.push(whole_tenant(tenant, why.clone()));
    out.report.tenants.push(TenantScopes {
        tenant: tenant.to_string(),
        subscriptions: Vec::new(),
        complete: false,
        error: Some(why),
    });
}

fn contains(list: &[String], s: &str) -> bool {
    list.iter().any(|x| x.eq_ignore_ascii_case(s))
}
