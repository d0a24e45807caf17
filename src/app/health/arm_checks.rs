//! The doctor's checks through ARM with Reader: the subscriptions in scope, whether the
//! identity holds Reader in each, and whether an Event Grid system topic's event subscription
//! delivers each subscription's resource events to this app. The reads themselves, and their
//! wire formats, are `adapters::azure::access`'s.

use super::probes::Identity;
use super::report::CheckLine;
use crate::adapters::azure::AzureError;
use crate::adapters::azure::access::{self, EventSubscription};
use crate::adapters::azure::arm::Arm;
use crate::config::Config;

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

/// The configured subscriptions, or every subscription the identity can list, less the
/// excluded ones.
pub(crate) async fn subscriptions_in_scope(arm: &Arm, config: &Config) -> Result<Vec<String>, AzureError> {
    let azure = &config.azure;
    let mut subs = if azure.subscriptions.is_empty() {
        access::subscription_ids(arm).await?
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
    match access::role_definition_ids(arm, subscription, object_id).await {
        Ok(roles) => {
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

/// The subscription's Event Grid system topic and an event subscription to this app's
/// `resource-events` function: missing, failed to provision, or present with its filters.
pub(crate) async fn event_grid_line(arm: &Arm, subscription: &str) -> CheckLine {
    let name = format!("event-grid.{subscription}");
    let deploy =
        "deploy the Event Grid subscription (infra/main.bicep with deployEventSubscriptions=true, scripts/deploy.sh)";
    let found: Vec<EventSubscription> = match access::subscription_event_deliveries(arm, subscription).await {
        Ok(subs) => subs.into_iter().filter(delivers_here).collect(),
        Err(e) => return CheckLine::failed(name, e.to_string(), "grant Reader on the subscription"),
    };
    let Some(first) = found.first() else {
        return CheckLine::failed(
            name,
            "no Event Grid subscription delivers this subscription's events to resource-events",
            deploy,
        );
    };
    let described: Vec<String> = found.iter().map(describe).collect();
    let state = |s: &EventSubscription| s.provisioning_state.clone().unwrap_or_default();
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

/// Whether `sub` delivers to this app's [`EVENTS_FUNCTION`] (an Azure Function destination
/// or a WebHook to it).
fn delivers_here(sub: &EventSubscription) -> bool {
    let lower = |text: &Option<String>| text.as_deref().unwrap_or("").to_ascii_lowercase();
    let function = format!("/functions/{EVENTS_FUNCTION}");
    lower(&sub.destination_resource_id).ends_with(&function) || lower(&sub.endpoint_base_url).contains(EVENTS_FUNCTION)
}

fn describe(sub: &EventSubscription) -> String {
    let text = |t: &Option<String>| t.as_deref().unwrap_or("?").to_string();
    format!(
        "{} ({}, {}): event types [{}], {} advanced filters",
        text(&sub.name),
        text(&sub.endpoint_type),
        text(&sub.provisioning_state),
        if sub.included_event_types.is_empty() {
            "all".to_string()
        } else {
            sub.included_event_types.join(", ")
        },
        sub.advanced_filters
    )
}
