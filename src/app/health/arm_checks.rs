//! The doctor's reads through ARM with Reader: the subscriptions in scope, the identity's role
//! assignments in each (is Reader held?), and the Event Grid system topic and event
//! subscription that deliver each subscription's resource events to this app.
//!
//! Role assignments: <https://learn.microsoft.com/rest/api/authorization/role-assignments/list-for-scope>.
//! System topics and their event subscriptions:
//! <https://learn.microsoft.com/rest/api/eventgrid/controlplane/system-topics/list-by-subscription>,
//! <https://learn.microsoft.com/rest/api/eventgrid/controlplane/system-topic-event-subscriptions/list-by-system-topic>.

use serde_json::Value;

use super::probes::Identity;
use super::report::CheckLine;
use crate::adapters::azure::AzureError;
use crate::adapters::azure::arm::{Arm, Bucket};
use crate::config::Config;

pub(crate) const ROLE_ASSIGNMENTS_API_VERSION: &str = "2022-04-01";
pub(crate) const EVENT_GRID_API_VERSION: &str = "2022-06-15";
/// The built-in Reader role's definition id (the same in every tenant).
pub(crate) const READER_ROLE_ID: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
/// The function Event Grid must deliver to.
pub(crate) const EVENTS_FUNCTION: &str = "resource-events";

/// The command that grants Reader on one subscription.
pub(crate) fn grant_reader_command(identity: &Identity, subscription: &str) -> String {
    format!(
        "az role assignment create --assignee {} --role Reader --scope /subscriptions/{subscription}",
        identity.assignee()
    )
}

/// Every value of a list, following `nextLink`.
async fn list(arm: &Arm, path: &str, bucket: Bucket, what: &str) -> Result<Vec<Value>, AzureError> {
    let mut url = arm.url(path);
    let mut out = Vec::new();
    for _ in 0..100 {
        let reply = arm.get(&url, bucket.clone(), what).await?;
        if !reply.is_success() {
            return Err(reply.error(what));
        }
        let page = reply.json(what)?;
        if let Some(items) = page.get("value").and_then(Value::as_array) {
            out.extend(items.iter().cloned());
        }
        match page.get("nextLink").and_then(Value::as_str) {
            Some(next) if !next.is_empty() => url = arm.url(next),
            _ => break,
        }
    }
    Ok(out)
}

/// The configured subscriptions, or every subscription the identity can list, less the
/// excluded ones.
pub(crate) async fn subscriptions_in_scope(arm: &Arm, config: &Config) -> Result<Vec<String>, AzureError> {
    let azure = &config.azure;
    let mut subs = if azure.subscriptions.is_empty() {
        let path = format!(
            "/subscriptions?api-version={}",
            crate::adapters::azure::catalog::SUBSCRIPTIONS_API_VERSION
        );
        list(arm, &path, Bucket::Arm(String::new()), "the subscription list")
            .await?
            .iter()
            .filter_map(|s| s.get("subscriptionId").and_then(Value::as_str).map(str::to_string))
            .collect()
    } else {
        azure.subscriptions.clone()
    };
    subs.retain(|s| !azure.exclude_subscriptions.iter().any(|x| x.eq_ignore_ascii_case(s)));
    Ok(subs)
}

/// One line per subscription: readable, and Reader held by the identity.
pub(crate) async fn subscription_line(arm: &Arm, subscription: &str, identity: &Identity) -> CheckLine {
    let name = format!("subscription.{subscription}");
    let grant = grant_reader_command(identity, subscription);
    let Some(object_id) = &identity.object_id else {
        return CheckLine::warning(
            name,
            "cannot tell which role assignments are the identity's: its token carries no object id",
            format!("check that the identity holds Reader, or grant it: {grant}"),
        );
    };
    let path = format!(
        "/subscriptions/{subscription}/providers/Microsoft.Authorization/roleAssignments?api-version={ROLE_ASSIGNMENTS_API_VERSION}&$filter={}",
        urlencode(&format!("atScope() and assignedTo('{object_id}')"))
    );
    let bucket = Bucket::Arm(subscription.to_ascii_lowercase());
    match list(arm, &path, bucket, "the role assignments").await {
        Ok(assignments) => {
            let roles: Vec<String> = assignments
                .iter()
                .filter_map(|a| a.pointer("/properties/roleDefinitionId").and_then(Value::as_str))
                .map(|id| id.rsplit('/').next().unwrap_or(id).to_ascii_lowercase())
                .collect();
            if roles.iter().any(|r| r == READER_ROLE_ID) {
                CheckLine::ok(name, "readable; the identity holds Reader")
            } else {
                CheckLine::warning(
                    name,
                    format!(
                        "readable, but the identity holds no Reader assignment here (roles: {})",
                        roles.join(", ")
                    ),
                    grant,
                )
            }
        }
        Err(AzureError::Http { status: 403, .. }) => CheckLine::failed(
            name,
            "not readable: 403 AuthorizationFailed (the identity lacks Reader)",
            grant,
        ),
        Err(AzureError::Http {
            status: 401, message, ..
        }) => CheckLine::failed(
            name,
            format!("Azure refused the token (401): {message}"),
            "check the credential and that the identity belongs to this subscription's tenant",
        ),
        Err(e) => CheckLine::failed(
            name,
            e.to_string(),
            "check that Resource Manager is reachable; try again",
        ),
    }
}

fn urlencode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The subscription's Event Grid system topic and an event subscription to this app's
/// `resource-events` function: missing, failed to provision, or present with its filters.
pub(crate) async fn event_grid_line(arm: &Arm, subscription: &str) -> CheckLine {
    let name = format!("event-grid.{subscription}");
    let deploy =
        "deploy the Event Grid subscription (infra/main.bicep with deployEventSubscriptions=true, scripts/deploy.sh)";
    let bucket = Bucket::Arm(subscription.to_ascii_lowercase());
    let path = format!(
        "/subscriptions/{subscription}/providers/Microsoft.EventGrid/systemTopics?api-version={EVENT_GRID_API_VERSION}"
    );
    let topics = match list(arm, &path, bucket.clone(), "the Event Grid system topics").await {
        Ok(topics) => topics,
        Err(e) => {
            return CheckLine::failed(
                name,
                format!("cannot read the system topics: {e}"),
                "grant Reader on the subscription",
            );
        }
    };
    let source = format!("/subscriptions/{subscription}");
    let mut found = Vec::new();
    for topic in topics.iter().filter(|t| subscription_topic(t, &source)) {
        let Some(id) = topic.get("id").and_then(Value::as_str) else {
            continue;
        };
        let path = format!("{id}/eventSubscriptions?api-version={EVENT_GRID_API_VERSION}");
        match list(arm, &path, bucket.clone(), "the event subscriptions").await {
            Ok(subs) => found.extend(subs.into_iter().filter(delivers_here)),
            Err(e) => {
                return CheckLine::failed(
                    name,
                    format!("cannot read the event subscriptions of {id}: {e}"),
                    "grant Reader on the subscription",
                );
            }
        }
    }
    let Some(first) = found.first() else {
        return CheckLine::failed(
            name,
            "no Event Grid subscription delivers this subscription's events to resource-events",
            deploy,
        );
    };
    let described: Vec<String> = found.iter().map(describe).collect();
    let state = |s: &Value| {
        s.pointer("/properties/provisioningState")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    if found.iter().all(|s| !state(s).eq_ignore_ascii_case("Succeeded")) {
        return CheckLine::failed(
            name,
            format!(
                "event subscription not active (provisioningState {}): {}",
                state(first),
                described.join("; ")
            ),
            deploy,
        );
    }
    CheckLine::ok(name, described.join("; "))
}

fn subscription_topic(topic: &Value, source: &str) -> bool {
    let text = |p: &str| topic.pointer(p).and_then(Value::as_str).unwrap_or("");
    text("/properties/topicType").eq_ignore_ascii_case("Microsoft.Resources.Subscriptions")
        && text("/properties/source")
            .trim_end_matches('/')
            .eq_ignore_ascii_case(source)
}

fn delivers_here(sub: &Value) -> bool {
    let destination = sub.pointer("/properties/destination").cloned().unwrap_or(Value::Null);
    let text = |p: &str| {
        destination
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let function = format!("/functions/{EVENTS_FUNCTION}");
    text("/properties/resourceId").ends_with(&function) || text("/properties/endpointBaseUrl").contains(EVENTS_FUNCTION)
}

fn describe(sub: &Value) -> String {
    let text = |p: &str| sub.pointer(p).and_then(Value::as_str).unwrap_or("?").to_string();
    let types: Vec<&str> = sub
        .pointer("/properties/filter/includedEventTypes")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let advanced = sub
        .pointer("/properties/filter/advancedFilters")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    format!(
        "{} ({}, {}): event types [{}], {advanced} advanced filters",
        text("/name"),
        text("/properties/destination/endpointType"),
        text("/properties/provisioningState"),
        if types.is_empty() {
            "all".to_string()
        } else {
            types.join(", ")
        }
    )
}
