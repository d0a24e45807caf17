//! Azure resources as seedwatch sees them: an id, a lower-cased type and the untyped JSON body.
//!
//! Resource ids and types differ in casing between ARM, Resource Graph and Event Grid, so every
//! comparison goes through [`ResourceId::key`] (lower case) while the original spelling is kept
//! for display.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An ARM resource id. Equality, ordering and hashing ignore case.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResourceId {
    original: String,
    key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceIdError {
    #[error("resource id {0:?} does not start with /subscriptions/")]
    NotArm(String),
    #[error("resource id contains control characters")]
    ControlCharacters,
    #[error("resource id is longer than 4096 characters")]
    TooLong,
}

impl ResourceId {
    pub fn parse(raw: &str) -> Result<ResourceId, ResourceIdError> {
        if raw.len() > 4096 {
            return Err(ResourceIdError::TooLong);
        }
        if raw.chars().any(char::is_control) {
            return Err(ResourceIdError::ControlCharacters);
        }
        let trimmed = raw.trim().trim_end_matches('/');
        let lower = trimmed.to_ascii_lowercase();
        if !lower.starts_with("/subscriptions/") || lower.len() <= "/subscriptions/".len() {
            return Err(ResourceIdError::NotArm(raw.chars().take(200).collect()));
        }
        Ok(ResourceId {
            original: trimmed.to_string(),
            key: lower,
        })
    }

    /// The id as Azure spelled it.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// The lower-cased id used for every comparison.
    pub fn key(&self) -> &str {
        &self.key
    }

    fn segments(&self) -> Vec<&str> {
        self.original.split('/').filter(|s| !s.is_empty()).collect()
    }

    pub fn subscription_id(&self) -> &str {
        self.original.split('/').nth(2).unwrap_or_default()
    }

    pub fn resource_group(&self) -> Option<&str> {
        let segments = self.segments();
        match segments.as_slice() {
            [_, _, rg, name, ..] if rg.eq_ignore_ascii_case("resourcegroups") => Some(name),
            _ => None,
        }
    }

    /// The id with extension resources cut off (`…/sites/x/providers/Microsoft.Insights/…`
    /// becomes `…/sites/x`), since their changes belong to the resource they extend.
    pub fn without_extension(&self) -> ResourceId {
        let mut found = 0;
        let mut cut = None;
        let mut offset = 0;
        for part in self.key.split_inclusive('/') {
            if part == "providers/" {
                found += 1;
                if found == 2 {
                    cut = Some(offset - 1);
                    break;
                }
            }
            offset += part.len();
        }
        match cut {
            Some(at) => ResourceId {
                original: self.original[..at].to_string(),
                key: self.key[..at].to_string(),
            },
            None => self.clone(),
        }
    }

    /// The ARM type, lower case (`microsoft.network/dnszones/a`); `microsoft.resources/subscriptions`
    /// and `microsoft.resources/resourcegroups` for the containers.
    pub fn arm_type(&self) -> String {
        let segments: Vec<&str> = self.key.split('/').filter(|s| !s.is_empty()).collect();
        let Some(pos) = segments.iter().position(|s| *s == "providers") else {
            return if segments.len() >= 4 {
                "microsoft.resources/resourcegroups".into()
            } else {
                "microsoft.resources/subscriptions".into()
            };
        };
        let rest = &segments[pos + 1..];
        let Some(namespace) = rest.first() else {
            return "microsoft.resources/subscriptions".into();
        };
        let mut parts = vec![namespace.to_string()];
        parts.extend(rest[1..].iter().step_by(2).map(|s| s.to_string()));
        parts.join("/")
    }

    /// The resource's own name: the last segment.
    pub fn name(&self) -> &str {
        self.original.rsplit('/').next().unwrap_or_default()
    }

    /// The immediate parent: the id with its last `/{type}/{name}` pair removed. `None` for a
    /// subscription.
    pub fn parent(&self) -> Option<ResourceId> {
        let segments = self.segments();
        if segments.len() <= 2 {
            return None;
        }
        let providers_at = segments.iter().position(|s| s.eq_ignore_ascii_case("providers"));
        let keep = match providers_at {
            // `/subscriptions/s/resourceGroups/rg/providers/NS/type/name` -> resource group.
            Some(p) if segments.len() <= p + 4 => p,
            Some(_) => segments.len() - 2,
            None => segments.len() - 2,
        };
        let joined = format!("/{}", segments[..keep].join("/"));
        ResourceId::parse(&joined).ok()
    }

    /// Whether `self` is `other` or lies below it.
    pub fn is_within(&self, other: &ResourceId) -> bool {
        self.key == other.key
            || (self.key.starts_with(&other.key) && self.key.as_bytes().get(other.key.len()) == Some(&b'/'))
    }
}

impl PartialEq for ResourceId {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for ResourceId {}
impl Hash for ResourceId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}
impl PartialOrd for ResourceId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ResourceId {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}
impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}
impl fmt::Debug for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.original)
    }
}
impl TryFrom<String> for ResourceId {
    type Error = ResourceIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ResourceId::parse(&value)
    }
}
impl From<ResourceId> for String {
    fn from(value: ResourceId) -> String {
        value.original
    }
}

/// One Azure resource: the ARM envelope fields seedwatch reads, with the body kept as JSON.
#[derive(Debug, Clone)]
pub struct Resource {
    pub id: ResourceId,
    /// Lower-cased ARM type (`microsoft.network/publicipaddresses`).
    pub arm_type: String,
    pub name: String,
    pub kind: Option<String>,
    pub location: Option<String>,
    /// `properties`, or `Value::Null` when the resource has none.
    pub properties: Value,
    pub sku: Value,
    pub tags: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    #[error("not a JSON object")]
    NotAnObject,
    #[error("missing string field \"id\"")]
    MissingId,
    #[error("bad id: {0}")]
    BadId(#[from] ResourceIdError),
    #[error("field \"type\" is not a string")]
    BadType,
}

impl Resource {
    /// Reads one ARM or Resource Graph object. The type falls back to the one the id implies.
    pub fn from_json(value: Value) -> Result<Resource, ResourceError> {
        let Value::Object(mut map) = value else {
            return Err(ResourceError::NotAnObject);
        };
        let id = match map.get("id") {
            Some(Value::String(s)) => ResourceId::parse(s)?,
            _ => return Err(ResourceError::MissingId),
        };
        let arm_type = match map.get("type") {
            Some(Value::String(t)) if !t.trim().is_empty() => t.trim().to_ascii_lowercase(),
            None | Some(Value::Null) | Some(Value::String(_)) => id.arm_type(),
            Some(_) => return Err(ResourceError::BadType),
        };
        let name = match map.get("name") {
            Some(Value::String(n)) => n.clone(),
            _ => id.name().to_string(),
        };
        let text = |v: Option<Value>| match v {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        Ok(Resource {
            id,
            arm_type,
            name,
            kind: text(map.remove("kind")),
            location: text(map.remove("location")),
            properties: map.remove("properties").unwrap_or(Value::Null),
            sku: map.remove("sku").unwrap_or(Value::Null),
            tags: map.remove("tags").unwrap_or(Value::Null),
        })
    }

    /// The resource back as ARM-shaped JSON (used by fakes, exports and the ledger's snapshots).
    pub fn to_json(&self) -> Value {
        let mut map = serde_json::Map::new();
        map.insert("id".into(), Value::String(self.id.as_str().to_string()));
        map.insert("name".into(), Value::String(self.name.clone()));
        map.insert("type".into(), Value::String(self.arm_type.clone()));
        if let Some(kind) = &self.kind {
            map.insert("kind".into(), Value::String(kind.clone()));
        }
        if let Some(location) = &self.location {
            map.insert("location".into(), Value::String(location.clone()));
        }
        map.insert(
            "subscriptionId".into(),
            Value::String(self.id.subscription_id().to_string()),
        );
        if let Some(rg) = self.id.resource_group() {
            map.insert("resourceGroup".into(), Value::String(rg.to_ascii_lowercase()));
        }
        map.insert("sku".into(), self.sku.clone());
        map.insert("tags".into(), self.tags.clone());
        map.insert("properties".into(), self.properties.clone());
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIP: &str = "/subscriptions/1111/resourceGroups/rg-web/providers/Microsoft.Network/publicIPAddresses/pip1";

    #[test]
    fn ids_compare_case_insensitively() {
        let a = ResourceId::parse(PIP).unwrap();
        let b = ResourceId::parse(&PIP.to_ascii_lowercase()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), PIP);
        assert_eq!(a.arm_type(), "microsoft.network/publicipaddresses");
        assert_eq!(a.subscription_id(), "1111");
        assert_eq!(a.resource_group(), Some("rg-web"));
        assert_eq!(a.name(), "pip1");
    }

    #[test]
    fn parents_walk_up_to_the_subscription() {
        let record = ResourceId::parse(
            "/subscriptions/1111/resourceGroups/rg-dns/providers/Microsoft.Network/dnszones/contoso.com/A/www.eu",
        )
        .unwrap();
        assert_eq!(record.arm_type(), "microsoft.network/dnszones/a");
        let zone = record.parent().unwrap();
        assert_eq!(zone.arm_type(), "microsoft.network/dnszones");
        assert_eq!(zone.name(), "contoso.com");
        let rg = zone.parent().unwrap();
        assert_eq!(rg.key(), "/subscriptions/1111/resourcegroups/rg-dns");
        assert_eq!(rg.arm_type(), "microsoft.resources/resourcegroups");
        let sub = rg.parent().unwrap();
        assert_eq!(sub.key(), "/subscriptions/1111");
        assert_eq!(sub.parent(), None);
        assert!(record.is_within(&rg));
        assert!(!rg.is_within(&record));
        let other_rg = ResourceId::parse("/subscriptions/1111/resourceGroups/rg-dns2").unwrap();
        assert!(!record.is_within(&other_rg));
    }

    #[test]
    fn extension_resources_are_cut() {
        let id = ResourceId::parse(
            "/subscriptions/1111/resourceGroups/rg/providers/Microsoft.Web/sites/app/providers/Microsoft.Insights/diagnosticSettings/d",
        )
        .unwrap();
        assert_eq!(
            id.without_extension().key(),
            "/subscriptions/1111/resourcegroups/rg/providers/microsoft.web/sites/app"
        );
    }

    #[test]
    fn bad_resources_are_errors_not_panics() {
        assert_eq!(
            Resource::from_json(serde_json::json!([1])).unwrap_err(),
            ResourceError::NotAnObject
        );
        assert_eq!(
            Resource::from_json(serde_json::json!({"type": "x"})).unwrap_err(),
            ResourceError::MissingId
        );
        assert!(Resource::from_json(serde_json::json!({"id": 5})).is_err());
        assert!(Resource::from_json(serde_json::json!({"id": "/nope"})).is_err());
        assert!(Resource::from_json(serde_json::json!({"id": PIP, "type": 7})).is_err());
        let r = Resource::from_json(serde_json::json!({"id": PIP})).unwrap();
        assert_eq!(r.arm_type, "microsoft.network/publicipaddresses");
        assert!(r.properties.is_null());
    }
}
