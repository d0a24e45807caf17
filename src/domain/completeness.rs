//! What a sweep read completely: the guard rail every delete consults. A scope absent from
//! [`CompletenessReport::incomplete`] was read completely; anything else keeps its seeds.

use crate::domain::check::ServiceCheck;

/// Why a (subscription, check) scope was not read completely.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Incomplete {
    Unauthorized { message: String },
    Forbidden { message: String },
    Throttled { message: String },
    Timeout { message: String },
    Failed { message: String },
}

/// For every (subscription, check): read fully or not, and why.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CompletenessReport {
    /// Subscriptions in scope of the sweep.
    pub subscriptions: Vec<String>,
    /// Scopes that were not read completely. A scope absent here was read completely.
    pub incomplete: Vec<IncompleteScope>,
    /// True when the list of subscriptions itself could not be read: nothing is complete.
    pub scope_unknown: bool,
    /// Messages for the operator (disabled subscriptions skipped, no subscription visible, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// With `azure.tenants`: each connection's tenant and the subscriptions read through it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<TenantScopes>,
}

/// One connection's part of a sweep (`azure.tenants`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TenantScopes {
    pub tenant: String,
    /// The subscriptions read through this connection.
    pub subscriptions: Vec<String>,
    /// Whether every scope of this connection was read completely.
    pub complete: bool,
    /// Why the connection's subscriptions could not even be listed (its token refused, ...):
    /// nothing of this tenant counts as read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IncompleteScope {
    pub subscription: String,
    /// `None` means every check of that subscription.
    pub check: Option<ServiceCheck>,
    #[serde(flatten)]
    pub why: Incomplete,
}

impl CompletenessReport {
    /// Whether `check` was read completely in `subscription` (case-insensitive id).
    pub fn is_complete(&self, subscription: &str, check: ServiceCheck) -> bool {
        if self.scope_unknown {
            return false;
        }
        let in_scope = self.subscriptions.iter().any(|s| s.eq_ignore_ascii_case(subscription));
        in_scope
            && !self
                .incomplete
                .iter()
                .any(|i| i.subscription.eq_ignore_ascii_case(subscription) && i.check.is_none_or(|c| c == check))
    }

    /// The tenant whose connection read `subscription` (with `azure.tenants`).
    pub fn tenant_of(&self, subscription: &str) -> Option<&str> {
        self.tenants
            .iter()
            .find(|t| t.subscriptions.iter().any(|s| s.eq_ignore_ascii_case(subscription)))
            .map(|t| t.tenant.as_str())
    }

    /// Whether every scope was read completely.
    pub fn is_fully_complete(&self) -> bool {
        !self.scope_unknown && self.incomplete.is_empty()
    }

    /// The report for people: one line when everything was read, else one line per scope
    /// that was not, with the reason and what to do.
    pub fn render_text(&self) -> String {
        let subs = self.subscriptions.len();
        let plural = if subs == 1 { "" } else { "s" };
        let mut out = String::from("Completeness: ");
        if self.scope_unknown {
            out.push_str("the subscriptions in scope could not be determined: nothing counts as read completely.\n");
        } else if self.incomplete.is_empty() {
            out.push_str(&format!(
                "{subs} subscription{plural}, every service check read completely.\n"
            ));
        } else {
            let affected: std::collections::BTreeSet<String> = self
                .incomplete
                .iter()
                .map(|i| i.subscription.to_ascii_lowercase())
                .collect();
            out.push_str(&format!(
                "{subs} subscription{plural}; {} not read completely:\n",
                affected.len()
            ));
            for entry in &self.incomplete {
                let check = entry
                    .check
                    .map_or("every check".to_string(), |c| c.toggle().to_string());
                let (reason, message) = match &entry.why {
                    Incomplete::Unauthorized { message } => ("unauthorized", message),
                    Incomplete::Forbidden { message } => ("forbidden", message),
                    Incomplete::Throttled { message } => ("throttled", message),
                    Incomplete::Timeout { message } => ("timeout", message),
                    Incomplete::Failed { message } => ("failed", message),
                };
                let tenant = self
                    .tenant_of(&entry.subscription)
                    .map_or(String::new(), |t| format!("tenant {t}, "));
                out.push_str(&format!(
                    "  {} ({tenant}{check}): {reason}: {message}\n",
                    entry.subscription
                ));
            }
        }
        for tenant in &self.tenants {
            let state = match &tenant.error {
                Some(error) => format!("could not be read: {error}"),
                None if tenant.complete => "read completely".to_string(),
                None => "not read completely".to_string(),
            };
            out.push_str(&format!(
                "  tenant {}: {} subscription(s), {state}\n",
                tenant.tenant,
                tenant.subscriptions.len()
            ));
        }
        for note in &self.notes {
            out.push_str(&format!("  note: {note}\n"));
        }
        out
    }
}
