//! Resource events from Event Grid: the Event Grid schema and CloudEvents 1.0, from the
//! `Microsoft.Resources.Subscriptions` and `Microsoft.ResourceNotifications.Resources` system
//! topics (<https://learn.microsoft.com/azure/event-grid/event-schema-resource-groups>,
//! <https://learn.microsoft.com/azure/event-grid/event-schema-resource-notifications>). Pure: turns one event object into what to do about it.

use serde_json::{Map, Value};

use crate::domain::change::{Change, ChangeKind, EventRef};
use crate::domain::resource::{Resource, ResourceId};
use crate::transport::json::{decode_object, decode_value, describe};

/// Which envelope an event came in: it names the type and time fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventSchema {
    EventGrid,
    CloudEvents,
}

/// The fields seedwatch reads from one event, whichever schema it came in.
#[derive(Debug, Clone)]
pub(crate) struct ResourceEvent {
    pub id: String,
    pub event_type: String,
    pub subject: String,
    /// `eventTime` / `time` as sent (RFC 3339), used to order resource bodies.
    pub time: Option<String>,
    pub data: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EventError {
    #[error("event is not a JSON object (got {0})")]
    NotAnObject(String),
    #[error("event has no {0} (neither Event Grid nor CloudEvents 1.0 shaped)")]
    MissingField(&'static str),
    #[error("event {event_id}: {message}")]
    BadResource { event_id: String, message: String },
}

/// The `resourceInfo` object of a Resource Notifications event, when it holds a full body.
type ResourceInfo<'a> = Option<&'a Map<String, Value>>;

/// What to do with one event.
#[derive(Debug, Clone)]
pub(crate) enum Disposition {
    Apply(Change),
    /// Acknowledged and logged, not processed (Failure/Cancel events, other types, events
    /// about something that is not an ARM resource).
    Ignore {
        reason: String,
    },
}

const WRITE_SUCCESS: &str = "Microsoft.Resources.ResourceWriteSuccess";
const DELETE_SUCCESS: &str = "Microsoft.Resources.ResourceDeleteSuccess";
const ACTION_SUCCESS: &str = "Microsoft.Resources.ResourceActionSuccess";
const NOTIFICATION_UPSERT: &str = "Microsoft.ResourceNotifications.Resources.CreatedOrUpdated";
const NOTIFICATION_DELETED: &str = "Microsoft.ResourceNotifications.Resources.Deleted";

impl ResourceEvent {
    /// The event's identity, for the logs of what is done about it.
    pub(crate) fn reference(&self) -> EventRef {
        EventRef {
            id: self.id.clone(),
            event_type: self.event_type.clone(),
        }
    }

    /// Reads one event object, in either schema. `data` may itself arrive JSON-encoded.
    pub(crate) fn parse(raw: &Value) -> Result<ResourceEvent, EventError> {
        let Some(map) = decode_object(raw) else {
            return Err(EventError::NotAnObject(describe(raw)));
        };
        // Fields inside the event object are plain JSON (only the object itself may arrive
        // encoded), so a string field is used as it is.
        let text = |name: &str| match map.get(name) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let schema = if map.contains_key("specversion") || (map.contains_key("type") && !map.contains_key("eventType"))
        {
            EventSchema::CloudEvents
        } else {
            EventSchema::EventGrid
        };
        let (type_field, time_field) = match schema {
            EventSchema::EventGrid => ("eventType", "eventTime"),
            EventSchema::CloudEvents => ("type", "time"),
        };
        let event_type = text(type_field).ok_or(EventError::MissingField("eventType/type"))?;
        let id = text("id").ok_or(EventError::MissingField("id"))?;
        let data = match map.get("data") {
            Some(v) => decode_object(v).unwrap_or_default(),
            None => Map::new(),
        };
        Ok(ResourceEvent {
            id,
            event_type,
            subject: text("subject").unwrap_or_default(),
            time: text(time_field),
            data,
        })
    }

    /// What this event asks of the apply path.
    pub(crate) fn disposition(&self) -> Result<Disposition, EventError> {
        let t = self.event_type.as_str();
        let is = |name: &str| t.eq_ignore_ascii_case(name);
        if is(WRITE_SUCCESS) || is(ACTION_SUCCESS) {
            let id = self.resources_id()?;
            return Ok(self.change(id, ChangeKind::Changed, None));
        }
        if is(DELETE_SUCCESS) {
            let id = self.resources_id()?;
            return Ok(self.change(id, ChangeKind::Deleted, None));
        }
        if is(NOTIFICATION_UPSERT) {
            let (id, info) = self.notification_id()?;
            let body = info.and_then(|info| Resource::from_json(Value::Object(info.clone())).ok().map(Box::new));
            return Ok(self.change(id, ChangeKind::Changed, body));
        }
        if is(NOTIFICATION_DELETED) {
            let (id, _) = self.notification_id()?;
            return Ok(self.change(id, ChangeKind::Deleted, None));
        }
        let reason =
            if t.starts_with("Microsoft.Resources.Resource") && (t.ends_with("Failure") || t.ends_with("Cancel")) {
                format!("{t}: the operation did not succeed, nothing changed")
            } else {
                format!("{t}: not an event seedwatch acts on")
            };
        Ok(Disposition::Ignore { reason })
    }

    fn change(&self, id: ResourceId, kind: ChangeKind, body: Option<Box<Resource>>) -> Disposition {
        // A change to an extension resource (diagnostic settings, locks, role assignments on a
        // resource) is at most a change of the resource it extends, never its deletion.
        let base = id.without_extension();
        let (kind, body) = if base.key() == id.key() {
            (kind, body)
        } else {
            (ChangeKind::Changed, None)
        };
        Disposition::Apply(Change {
            id: base,
            kind,
            body,
            time: self.time.clone(),
        })
    }

    /// `data.resourceUri`, else the subject.
    fn resources_id(&self) -> Result<ResourceId, EventError> {
        let raw = match self.data.get("resourceUri") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.as_str(),
            _ => self.subject.as_str(),
        };
        self.parse_id(raw)
    }

    /// `data.resourceInfo.id`, else the subject; with the resource body when present.
    fn notification_id(&self) -> Result<(ResourceId, ResourceInfo<'_>), EventError> {
        let info = self.data.get("resourceInfo").and_then(Value::as_object);
        let raw = match info.and_then(|i| i.get("id")) {
            Some(Value::String(s)) if !s.trim().is_empty() => s.as_str(),
            _ => self.subject.as_str(),
        };
        let id = self.parse_id(raw)?;
        // Only a body with properties is a full resource; the Deleted shape has id/name/type only.
        let info = info.filter(|i| i.get("properties").is_some_and(Value::is_object));
        Ok((id, info))
    }

    fn parse_id(&self, raw: &str) -> Result<ResourceId, EventError> {
        if raw.trim().is_empty() {
            return Err(EventError::BadResource {
                event_id: self.id.clone(),
                message: "no subject or resource id".into(),
            });
        }
        ResourceId::parse(raw).map_err(|e| EventError::BadResource {
            event_id: self.id.clone(),
            message: e.to_string(),
        })
    }
}

/// A delivery's events, read: the changes to apply, and what became of the others, in
/// delivery order.
#[derive(Debug, Default)]
pub(crate) struct SortedEvents {
    pub total: usize,
    pub changes: Vec<(EventRef, Change)>,
    pub notes: Vec<EventNote>,
}

/// An event acknowledged without being processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EventNote {
    /// Not one seedwatch acts on (a failure or cancel event, another type, ...).
    Ignored { id: String, reason: String },
    /// It cannot be read (no id or type, an id that is not an ARM resource id).
    Unreadable { id: String, error: String },
}

/// Reads a delivery's events, logging each one not processed. An event that cannot be read is
/// acknowledged and logged with its id rather than failing the delivery: Event Grid answers a
/// failure by redelivering the whole batch (up to 30 times over 24 hours), good events
/// included, while redelivery can never make a bad event readable
/// (<https://learn.microsoft.com/azure/event-grid/delivery-and-retry>).
pub(crate) fn sort_events<'a>(events: impl IntoIterator<Item = &'a Value>) -> SortedEvents {
    let mut sorted = SortedEvents::default();
    for value in events {
        sorted.total += 1;
        let read = ResourceEvent::parse(value).and_then(|event| event.disposition().map(|d| (event, d)));
        match read {
            Err(e) => {
                let id = unreadable_event_id(value);
                tracing::error!(event_id = id, error = %e, "event acknowledged, not processed: it cannot be read");
                sorted.notes.push(EventNote::Unreadable {
                    id,
                    error: e.to_string(),
                });
            }
            Ok((event, Disposition::Ignore { reason })) => {
                tracing::info!(event_id = %event.id, event_type = %event.event_type, reason, "event acknowledged, not processed");
                sorted.notes.push(EventNote::Ignored { id: event.id, reason });
            }
            Ok((event, Disposition::Apply(change))) => sorted.changes.push((event.reference(), change)),
        }
    }
    sorted
}

/// The id of an event that did not parse, for the log line; `(no id)` when it has none.
fn unreadable_event_id(value: &Value) -> String {
    let id = decode_object(value).and_then(|map| match map.get("id") {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.chars().take(200).collect()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    });
    id.unwrap_or_else(|| "(no id)".to_string())
}

/// Event objects in one invocation's `event` input: normally one object; an array is accepted
/// too (a batch binding or a hand-made invocation).
pub(crate) fn event_values(input: &Value) -> Vec<Value> {
    match decode_value(input) {
        Value::Array(items) => items,
        other => vec![other],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PIP: &str = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/publicIPAddresses/pip1";

    fn grid(event_type: &str, subject: &str) -> Value {
        json!({
            "id": "5a0e2b2e", "topic": "/subscriptions/11111111-1111-1111-1111-111111111111",
            "subject": subject, "eventType": event_type, "eventTime": "2025-03-01T10:15:07.6117357Z",
            "data": {"resourceUri": subject, "operationName": "Microsoft.Network/publicIPAddresses/write", "status": "Succeeded"},
            "dataVersion": "2", "metadataVersion": "1"
        })
    }

    fn apply(v: &Value) -> Change {
        match ResourceEvent::parse(v).unwrap().disposition().unwrap() {
            Disposition::Apply(c) => c,
            Disposition::Ignore { reason } => panic!("ignored: {reason}"),
        }
    }

    #[test]
    fn success_events_apply() {
        let c = apply(&grid(WRITE_SUCCESS, PIP));
        assert_eq!((c.id.as_str(), c.kind), (PIP, ChangeKind::Changed));
        assert!(c.body.is_none());
        assert_eq!(apply(&grid(DELETE_SUCCESS, PIP)).kind, ChangeKind::Deleted);
        assert_eq!(apply(&grid(ACTION_SUCCESS, PIP)).kind, ChangeKind::Changed);
    }

    #[test]
    fn cloud_events_apply_too() {
        let ce = json!({
            "id": "1", "source": "/subscriptions/1111", "specversion": "1.0",
            "type": "Microsoft.Resources.ResourceDeleteSuccess", "subject": PIP, "time": "2025-03-01T10:15:07Z",
            "data": "{\"resourceUri\":\"/subscriptions/1111/resourceGroups/rg/providers/Microsoft.Web/sites/app\"}"
        });
        let event = ResourceEvent::parse(&ce).unwrap();
        // Read as CloudEvents: its `type` and `time` fields, not Event Grid's.
        assert_eq!(event.event_type, "Microsoft.Resources.ResourceDeleteSuccess");
        assert_eq!(event.time.as_deref(), Some("2025-03-01T10:15:07Z"));
        let c = apply(&ce);
        assert_eq!(
            c.id.as_str(),
            "/subscriptions/1111/resourceGroups/rg/providers/Microsoft.Web/sites/app"
        );
        assert_eq!(c.kind, ChangeKind::Deleted);
    }

    #[test]
    fn notifications_carry_the_body() {
        let ev = json!({
            "id": "4eef", "topic": "/subscriptions/1111", "subject": PIP,
            "eventType": NOTIFICATION_UPSERT, "eventTime": "2025-03-01T10:15:07Z",
            "data": {"resourceInfo": {"id": PIP, "name": "pip1", "type": "Microsoft.Network/publicIPAddresses",
                     "location": "westeurope", "tags": {"env": "prod"},
                     "properties": {"ipAddress": "198.51.100.7"}}, "apiVersion": "2023-09-01"}
        });
        let c = apply(&ev);
        let body = c.body.expect("body");
        assert_eq!(body.properties["ipAddress"], json!("198.51.100.7"));
        assert_eq!(body.arm_type, "microsoft.network/publicipaddresses");
        let mut deleted = ev.clone();
        deleted["eventType"] = json!(NOTIFICATION_DELETED);
        deleted["data"] = json!({"resourceInfo": {"id": PIP, "name": "pip1", "type": "x"}});
        let c = apply(&deleted);
        assert_eq!(c.kind, ChangeKind::Deleted);
        assert!(c.body.is_none());
    }

    #[test]
    fn failures_cancels_and_unknown_types_are_ignored() {
        for t in [
            "Microsoft.Resources.ResourceWriteFailure",
            "Microsoft.Resources.ResourceDeleteCancel",
            "Microsoft.Storage.BlobCreated",
            "Microsoft.EventGrid.SubscriptionValidationEvent",
        ] {
            let d = ResourceEvent::parse(&grid(t, PIP)).unwrap().disposition().unwrap();
            assert!(matches!(d, Disposition::Ignore { .. }), "{t}");
        }
    }

    #[test]
    fn extension_deletes_are_changes_of_the_extended_resource() {
        let ext = format!("{PIP}/providers/Microsoft.Insights/diagnosticSettings/d1");
        let c = apply(&grid(DELETE_SUCCESS, &ext));
        assert_eq!(c.id.as_str(), PIP);
        assert_eq!(c.kind, ChangeKind::Changed);
    }

    #[test]
    fn malformed_events_are_errors() {
        assert!(matches!(
            ResourceEvent::parse(&json!(5)),
            Err(EventError::NotAnObject(_))
        ));
        assert_eq!(
            ResourceEvent::parse(&json!({"id": "1"})).unwrap_err(),
            EventError::MissingField("eventType/type")
        );
        let bad = ResourceEvent::parse(&grid(WRITE_SUCCESS, "not-an-id")).unwrap();
        assert!(matches!(bad.disposition(), Err(EventError::BadResource { .. })));
    }

    #[test]
    fn merging_prefers_a_re_read_when_in_doubt() {
        let id = ResourceId::parse(PIP).unwrap();
        let body = Box::new(Resource::from_json(json!({"id": PIP, "properties": {}})).unwrap());
        let mk = |kind, body: Option<Box<Resource>>, time: &str| Change {
            id: id.clone(),
            kind,
            body,
            time: Some(time.into()),
        };
        let mut c = mk(ChangeKind::Deleted, None, "1");
        c.merge(mk(ChangeKind::Deleted, None, "2"));
        assert_eq!(c.kind, ChangeKind::Deleted);
        c.merge(mk(ChangeKind::Changed, Some(body.clone()), "3"));
        assert_eq!(
            c.kind,
            ChangeKind::Deleted,
            "a delete among them wins: its apply reads too"
        );
        assert!(c.body.is_none());
        let mut c = mk(ChangeKind::Changed, Some(body.clone()), "3");
        c.merge(mk(ChangeKind::Deleted, None, "2"));
        assert_eq!(c.kind, ChangeKind::Deleted);
        assert!(c.body.is_none());
        let mut c = mk(ChangeKind::Changed, Some(body.clone()), "2025-03-01T10:00:07.5Z");
        c.merge(mk(ChangeKind::Changed, Some(body.clone()), "2025-03-01T10:00:07Z"));
        assert_eq!(c.time.as_deref(), Some("2025-03-01T10:00:07.5Z"));
        c.merge(mk(ChangeKind::Changed, Some(body.clone()), "2025-03-01T11:00:00Z"));
        assert_eq!(c.time.as_deref(), Some("2025-03-01T11:00:00Z"));
        assert!(c.body.is_some());
        c.merge(mk(ChangeKind::Changed, None, "2025-03-01T12:00:00Z"));
        assert!(c.body.is_none());
    }

    #[test]
    fn changes_to_one_owner_share_a_key_and_merge_into_a_read_of_the_owner() {
        let site = "/subscriptions/1/resourceGroups/rg/providers/Microsoft.Web/sites/a";
        let mk = |id: &str, kind| Change {
            id: ResourceId::parse(id).unwrap(),
            kind,
            body: None,
            time: Some("2025-03-01T10:00:07Z".into()),
        };
        let config = mk(&format!("{site}/config/web"), ChangeKind::Changed);
        let binding = mk(&format!("{site}/hostNameBindings/www.example.com"), ChangeKind::Deleted);
        let diagnostics = mk(
            &format!("{site}/providers/Microsoft.Insights/diagnosticSettings/d"),
            ChangeKind::Changed,
        );
        let key = mk(site, ChangeKind::Changed).key();
        assert_eq!(key, site.to_ascii_lowercase());
        for c in [&config, &binding, &diagnostics] {
            assert_eq!(c.key(), key, "{}", c.id);
        }
        assert_ne!(mk(&format!("{site}/slots/staging"), ChangeKind::Changed).key(), key);

        // A child's delete is a re-read of the owner; the owner's own delete wins.
        let mut merged = config.clone();
        merged.merge(binding.clone());
        assert_eq!((merged.id.as_str(), merged.kind), (site, ChangeKind::Changed));
        assert!(merged.time.is_none());
        let mut merged = binding;
        merged.merge(mk(site, ChangeKind::Deleted));
        assert_eq!((merged.id.as_str(), merged.kind), (site, ChangeKind::Deleted));
        let mut merged = mk(site, ChangeKind::Deleted);
        merged.merge(diagnostics);
        assert_eq!((merged.id.as_str(), merged.kind), (site, ChangeKind::Deleted));
    }

    #[test]
    fn an_event_time_reads_as_unix_milliseconds() {
        let c = Change {
            id: ResourceId::parse(PIP).unwrap(),
            kind: ChangeKind::Changed,
            body: None,
            time: Some("1970-01-01T00:00:01.5Z".into()),
        };
        assert_eq!(c.time_ms(), Some(1500));
        assert_eq!(
            Change {
                time: Some("yesterday".into()),
                ..c.clone()
            }
            .time_ms(),
            None
        );
        assert_eq!(Change { time: None, ..c }.time_ms(), None);
    }
}
