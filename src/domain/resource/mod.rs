//! Azure resources as seedwatch sees them: an id, a lower-cased type and the untyped JSON body.
//!
//! Resource ids and types differ in casing between ARM, Resource Graph and Event Grid, so every
//! comparison ignores ASCII case ([`ResourceId::key`] is the lower-cased id) while the original
//! spelling is kept for display.

mod grammar;
mod id;

use serde_json::Value;

pub use id::{MAX_ID_LEN, ResourceId, ResourceIdError};

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
mod tests;
