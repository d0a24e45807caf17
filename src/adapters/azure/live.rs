//! The live [`AzureReader`]: scope resolution, Resource Graph sweeps with ARM reads for the
//! children Resource Graph does not hold, and single-owner ARM reads.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use super::arm::{Arm, bucket_for};
use super::catalog::SUBSCRIPTIONS_API_VERSION;
use super::graph::{self, Scope};
use super::sweep::ExtractedPart;
use super::{
    AzureError, AzureReader, CompletenessReport, ExtractedSweep, Incomplete, IncompleteScope, OwnerRead, Sweep,
    SweepProgress,
};
use crate::config::AzureSettings;
use crate::domain::check::{EnabledChecks, ServiceCheck};
use crate::domain::resource::ResourceId;

/// Which subscriptions to read (from `azure.*` settings).
#[derive(Debug, Clone, Default)]
pub struct ScopeSettings {
    pub subscriptions: Vec<String>,
    pub exclude_subscriptions: Vec<String>,
    pub management_groups: Vec<String>,
}

impl ScopeSettings {
    pub(crate) fn from_settings(settings: &AzureSettings) -> ScopeSettings {
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
pub(crate) struct Subscription {
    pub(crate) id: String,
    state: String,
}

impl LiveAzure {
    pub(crate) fn new(arm: Arc<Arm>, scope: ScopeSettings) -> LiveAzure {
        LiveAzure { arm, scope }
    }

    /// The HTTP client, for its counters.
    pub fn arm(&self) -> &Arc<Arm> {
        &self.arm
    }

    /// The subscriptions this reader's scope covers, and what resolving them found (notes,
    /// configured subscriptions the identity cannot see): for the multi-tenant reader.
    pub(crate) async fn subscriptions_in_scope(&self) -> Result<(Vec<String>, CompletenessReport), AzureError> {
        let mut report = CompletenessReport::default();
        let subscriptions = self.resolve_scope(&mut report).await?;
        Ok((subscriptions, report))
    }

    /// `GET /subscriptions`, every page.
    async fn list_subscriptions(&self) -> Result<Vec<Subscription>, AzureError> {
        list_subscriptions(&self.arm).await
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
    pub(super) async fn resolve_scope(&self, report: &mut CompletenessReport) -> Result<Vec<String>, AzureError> {
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
}

#[async_trait]
impl AzureReader for LiveAzure {
    async fn sweep(&self, checks: &EnabledChecks, progress: &dyn SweepProgress) -> Result<Sweep, AzureError> {
        let (resources, report) = self.sweep_into(checks, progress, &Vec::new).await?;
        Ok(Sweep { resources, report })
    }

    async fn sweep_extracted(
        &self,
        checks: &EnabledChecks,
        progress: &dyn SweepProgress,
    ) -> Result<ExtractedSweep, AzureError> {
        let (part, report) = self
            .sweep_into(checks, progress, &|| ExtractedPart::new(checks))
            .await?;
        let (extraction, resources_read) = part.finish();
        Ok(ExtractedSweep {
            extraction,
            report,
            resources_read,
        })
    }

    async fn subscriptions_in_scope(&self) -> Result<Option<Vec<String>>, AzureError> {
        let mut report = CompletenessReport::default();
        let subscriptions = self.resolve_scope(&mut report).await?;
        Ok((!report.scope_unknown).then_some(subscriptions))
    }

    async fn read_owner(&self, owner: &ResourceId) -> Result<OwnerRead, AzureError> {
        self.read_one_owner(owner).await
    }
}

/// The message that tells an operator what to grant.
pub(crate) fn grant_reader(subscription: &str) -> String {
    format!("grant the Reader role on subscription {subscription} to the identity")
}

/// Why a scope is incomplete, from the error that stopped it.
pub(crate) fn incomplete_from(error: &AzureError, subscription: &str) -> Incomplete {
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
pub(super) fn collapse(report: &mut CompletenessReport, checks: &EnabledChecks) {
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

/// `GET /subscriptions`, every page (<https://learn.microsoft.com/rest/api/resources/subscriptions/list>):
/// what the sweep resolves its scope from, and what the doctor checks.
pub(crate) async fn list_subscriptions(arm: &Arm) -> Result<Vec<Subscription>, AzureError> {
    let what = "the subscription list (GET /subscriptions)";
    let mut url = arm.url(&format!("/subscriptions?api-version={SUBSCRIPTIONS_API_VERSION}"));
    let mut out = Vec::new();
    for _ in 0..10_000 {
        let reply = arm.get(&url, bucket_for("/subscriptions"), what).await?;
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
            Some(next) => url = arm.next_link(next, what)?,
            None => return Ok(out),
        }
    }
    Err(AzureError::BadResponse {
        what: what.into(),
        message: "more than 10,000 pages of nextLink".into(),
    })
}
