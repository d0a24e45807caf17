//! What the doctor reads through ARM about access and event delivery, typed: the subscriptions
//! the identity can list, the role definitions assigned to it in a subscription, and the Event
//! Grid event subscriptions on a subscription's system topic.
//!
//! Subscriptions: <https://learn.microsoft.com/rest/api/resources/subscriptions/list>.
//! Role assignments: <https://learn.microsoft.com/rest/api/authorization/role-assignments/list-for-scope>.
//! System topics and their event subscriptions:
//! <https://learn.microsoft.com/rest/api/eventgrid/controlplane/system-topics/list-by-subscription>,
//! <https://learn.microsoft.com/rest/api/eventgrid/controlplane/system-topic-event-subscriptions/list-by-system-topic>.
//!
//! The wire is read leniently, as `Value::as_str` and `Value::as_array` would: a missing field,
//! or one of another type, is absent (never an error); a page without `value` is empty; an item
//! that is not an object has every field absent.

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer};
use serde_json::Value;

use super::AzureError;
use super::arm::{Arm, Bucket};

pub(crate) const ROLE_ASSIGNMENTS_API_VERSION: &str = "2022-04-01";
pub(crate) const EVENT_GRID_API_VERSION: &str = "2022-06-15";
/// Pages of one list followed through `nextLink`, at most.
const MAX_PAGES: usize = 100;

/// An Event Grid event subscription as the doctor describes it (`None`: absent or not text).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EventSubscription {
    pub(crate) name: Option<String>,
    pub(crate) provisioning_state: Option<String>,
    /// `properties.destination.endpointType` (`AzureFunction`, `WebHook`, ...).
    pub(crate) endpoint_type: Option<String>,
    /// `properties.destination.properties.resourceId` (an Azure Function destination).
    pub(crate) destination_resource_id: Option<String>,
    /// `properties.destination.properties.endpointBaseUrl` (a WebHook destination).
    pub(crate) endpoint_base_url: Option<String>,
    /// `properties.filter.includedEventTypes` (empty: every type).
    pub(crate) included_event_types: Vec<String>,
    /// How many `properties.filter.advancedFilters` there are.
    pub(crate) advanced_filters: usize,
}

/// Which read of [`subscription_event_deliveries`] failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EventGridReadError {
    #[error("cannot read the system topics: {0}")]
    Topics(AzureError),
    #[error("cannot read the event subscriptions of {topic}: {error}")]
    EventSubscriptions { topic: String, error: AzureError },
}

/// Every subscription the identity can list, as the sweep lists them
/// ([`super::live::list_subscriptions`]).
pub(crate) async fn subscription_ids(arm: &Arm) -> Result<Vec<String>, AzureError> {
    let subscriptions = super::live::list_subscriptions(arm).await?;
    Ok(subscriptions.into_iter().map(|s| s.id).collect())
}

/// The role definitions assigned to `object_id` at the subscription's scope: the last segment
/// of each `properties.roleDefinitionId`, lower-cased.
pub(crate) async fn role_definition_ids(
    arm: &Arm,
    subscription: &str,
    object_id: &str,
) -> Result<Vec<String>, AzureError> {
    let path = format!(
        "/subscriptions/{subscription}/providers/Microsoft.Authorization/roleAssignments?api-version={ROLE_ASSIGNMENTS_API_VERSION}&$filter={}",
        urlencode(&format!("atScope() and assignedTo('{object_id}')"))
    );
    let bucket = Bucket::Arm(subscription.to_ascii_lowercase());
    let assignments: Vec<RoleAssignmentWire> = list(arm, arm.url(&path), bucket, "the role assignments").await?;
    Ok(assignments
        .into_iter()
        .filter_map(|a| a.properties.role_definition_id)
        .map(|id| id.rsplit('/').next().unwrap_or(&id).to_ascii_lowercase())
        .collect())
}

/// The event subscriptions of the subscription's system topics (type
/// `Microsoft.Resources.Subscriptions`, source the subscription), in the order read.
pub(crate) async fn subscription_event_deliveries(
    arm: &Arm,
    subscription: &str,
) -> Result<Vec<EventSubscription>, EventGridReadError> {
    let bucket = Bucket::Arm(subscription.to_ascii_lowercase());
    let path = format!(
        "/subscriptions/{subscription}/providers/Microsoft.EventGrid/systemTopics?api-version={EVENT_GRID_API_VERSION}"
    );
    let topics: Vec<SystemTopicWire> = list(arm, arm.url(&path), bucket.clone(), "the Event Grid system topics")
        .await
        .map_err(EventGridReadError::Topics)?;
    let source = format!("/subscriptions/{subscription}");
    let mut found = Vec::new();
    for topic in topics.iter().filter(|t| t.is_subscription_topic(&source)) {
        let Some(id) = &topic.id else {
            continue;
        };
        // The topic's id came in an answer: each segment is encoded, so no character of it can
        // move the request (and its token) elsewhere.
        let url = arm.resource_url(id, &["eventSubscriptions"], EVENT_GRID_API_VERSION);
        let subs: Vec<EventSubscriptionWire> = list(arm, url, bucket.clone(), "the event subscriptions")
            .await
            .map_err(|error| EventGridReadError::EventSubscriptions {
                topic: id.clone(),
                error,
            })?;
        found.extend(subs.into_iter().map(EventSubscriptionWire::typed));
    }
    Ok(found)
}

fn urlencode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Every item of a list, following `nextLink` (more than [`MAX_PAGES`] pages is an error).
async fn list<T: DeserializeOwned + Default>(
    arm: &Arm,
    mut url: String,
    bucket: Bucket,
    what: &str,
) -> Result<Vec<T>, AzureError> {
    let mut out = Vec::new();
    for _ in 0..MAX_PAGES {
        let reply = arm.get(&url, bucket.clone(), what).await?;
        if !reply.is_success() {
            return Err(reply.error(what));
        }
        let page: Page<T> = lenient_object(reply.json(what)?);
        out.extend(page.value);
        match page.next_link {
            // ARM's links are absolute; followed only to the configured host (`Arm::next_link`).
            Some(next) if !next.is_empty() => url = arm.next_link(&next, what)?,
            _ => return Ok(out),
        }
    }
    // A partial list would make the doctor report on some of it as if it were all.
    Err(AzureError::BadResponse {
        what: what.into(),
        message: format!("more than {MAX_PAGES} pages of nextLink"),
    })
}

// The wire types. Every field is lenient (see the module's doc).

#[derive(Deserialize)]
#[serde(bound = "T: DeserializeOwned + Default")]
struct Page<T> {
    #[serde(default, deserialize_with = "objects")]
    value: Vec<T>,
    #[serde(default, rename = "nextLink", deserialize_with = "text")]
    next_link: Option<String>,
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Page {
            value: Vec::new(),
            next_link: None,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RoleAssignmentWire {
    #[serde(deserialize_with = "object")]
    properties: RoleAssignmentProperties,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RoleAssignmentProperties {
    #[serde(deserialize_with = "text")]
    role_definition_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SystemTopicWire {
    #[serde(deserialize_with = "text")]
    id: Option<String>,
    #[serde(deserialize_with = "object")]
    properties: SystemTopicProperties,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct SystemTopicProperties {
    #[serde(deserialize_with = "text")]
    topic_type: Option<String>,
    #[serde(deserialize_with = "text")]
    source: Option<String>,
}

impl SystemTopicWire {
    /// A subscription's topic whose source is `source` (`/subscriptions/{id}`, any case, a
    /// trailing `/` allowed).
    fn is_subscription_topic(&self, source: &str) -> bool {
        let properties = &self.properties;
        properties
            .topic_type
            .as_deref()
            .unwrap_or("")
            .eq_ignore_ascii_case("Microsoft.Resources.Subscriptions")
            && properties
                .source
                .as_deref()
                .unwrap_or("")
                .trim_end_matches('/')
                .eq_ignore_ascii_case(source)
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct EventSubscriptionWire {
    #[serde(deserialize_with = "text")]
    name: Option<String>,
    #[serde(deserialize_with = "object")]
    properties: EventSubscriptionProperties,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct EventSubscriptionProperties {
    #[serde(deserialize_with = "text")]
    provisioning_state: Option<String>,
    #[serde(deserialize_with = "object")]
    destination: DestinationWire,
    #[serde(deserialize_with = "object")]
    filter: FilterWire,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct DestinationWire {
    #[serde(deserialize_with = "text")]
    endpoint_type: Option<String>,
    #[serde(deserialize_with = "object")]
    properties: DestinationProperties,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct DestinationProperties {
    #[serde(deserialize_with = "text")]
    resource_id: Option<String>,
    #[serde(deserialize_with = "text")]
    endpoint_base_url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct FilterWire {
    #[serde(deserialize_with = "texts")]
    included_event_types: Vec<String>,
    #[serde(deserialize_with = "count")]
    advanced_filters: usize,
}

impl EventSubscriptionWire {
    fn typed(self) -> EventSubscription {
        let EventSubscriptionProperties {
            provisioning_state,
            destination,
            filter,
        } = self.properties;
        EventSubscription {
            name: self.name,
            provisioning_state,
            endpoint_type: destination.endpoint_type,
            destination_resource_id: destination.properties.resource_id,
            endpoint_base_url: destination.properties.endpoint_base_url,
            included_event_types: filter.included_event_types,
            advanced_filters: filter.advanced_filters,
        }
    }
}

// The lenient leaves: each reads whatever JSON is there and keeps it only if it has the
// expected shape, so a field of another type is absent instead of failing the whole page.

/// `T` from an object; anything else (or an object that does not decode) is `T::default()`.
/// Only objects: a derived struct would otherwise accept an array positionally.
fn lenient_object<T: DeserializeOwned + Default>(value: Value) -> T {
    if value.is_object() {
        T::deserialize(value).unwrap_or_default()
    } else {
        T::default()
    }
}

fn object<'de, D: Deserializer<'de>, T: DeserializeOwned + Default>(d: D) -> Result<T, D::Error> {
    Ok(lenient_object(Value::deserialize(d)?))
}

/// A string, or `None` for anything else (as `Value::as_str`).
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        _ => None,
    })
}

/// The items of an array, each through [`lenient_object`]; anything else is empty.
fn objects<'de, D: Deserializer<'de>, T: DeserializeOwned + Default>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items.into_iter().map(lenient_object).collect(),
        _ => Vec::new(),
    })
}

/// The strings of an array (other items skipped); anything else is empty.
fn texts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    })
}

/// The length of an array; anything else is 0.
fn count<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items.len(),
        _ => 0,
    })
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
