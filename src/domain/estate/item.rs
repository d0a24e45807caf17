//! One array item of an estate file, parsed with only the members a resource is read from.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::EstateSink;

/// One array item as JSON, keeping of an object only the members [`crate::domain::resource::Resource::from_json`] reads
/// (the rest, such as `systemData` or `tenantId`, is skipped without being built).
pub(super) struct Item(pub(super) Value);

/// The members of an item that [`crate::domain::resource::Resource::from_json`] reads.
const RESOURCE_KEYS: [&str; 8] = ["id", "type", "name", "kind", "location", "properties", "sku", "tags"];

/// Reads one [`Item`], asking the sink whether the body of its type is needed.
pub(super) struct ItemSeed<'s, S> {
    pub(super) sink: &'s S,
}

impl<'de, S: EstateSink> DeserializeSeed<'de> for ItemSeed<'_, S> {
    type Value = Item;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Item, D::Error> {
        deserializer.deserialize_any(ItemVisitor { sink: self.sink })
    }
}

struct ItemVisitor<'s, S> {
    sink: &'s S,
}

const BODY_KEYS: [&str; 3] = ["properties", "sku", "tags"];
const DETAIL_KEYS: [&str; 4] = ["kind", "location", "sku", "tags"];

/// A member name: one of [`RESOURCE_KEYS`], or `None` for any other (not allocated).
struct ResourceKey(Option<&'static str>);

impl<'de> serde::Deserialize<'de> for ResourceKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ResourceKey, D::Error> {
        deserializer.deserialize_str(ResourceKeyVisitor)
    }
}

struct ResourceKeyVisitor;

impl Visitor<'_> for ResourceKeyVisitor {
    type Value = ResourceKey;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<ResourceKey, E> {
        Ok(ResourceKey(RESOURCE_KEYS.iter().copied().find(|key| *key == name)))
    }
}

impl<'de, S: EstateSink> Visitor<'de> for ItemVisitor<'_, S> {
    type Value = Item;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an Azure resource")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Item, A::Error> {
        let mut kept = serde_json::Map::new();
        // Whether the body is needed, once a usable `type` has been read (members usually come
        // in the order id, name, type, ..., properties).
        let mut needs_body: Option<bool> = None;
        let needs_details = self.sink.needs_envelope_details();
        while let Some(key) = map.next_key::<ResourceKey>()? {
            match key.0 {
                Some(name) if !needs_details && DETAIL_KEYS.contains(&name) => {
                    map.next_value::<IgnoredAny>()?;
                }
                Some(name) if BODY_KEYS.contains(&name) && needs_body == Some(false) => {
                    map.next_value::<IgnoredAny>()?;
                }
                Some(name) => {
                    let value = map.next_value::<Value>()?;
                    if name == "type" {
                        needs_body = match &value {
                            Value::String(t) if !t.trim().is_empty() => {
                                Some(self.sink.needs_body(&t.trim().to_ascii_lowercase()))
                            }
                            _ => Some(true),
                        };
                    }
                    kept.insert(name.to_string(), value);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Item(Value::Object(kept)))
    }

    // Anything else is not a resource; only its kind matters (`Resource::from_json` says so).
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Item, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Item(Value::Array(Vec::new())))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Item, E> {
        Ok(Item(Value::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Item, E> {
        Ok(Item(Value::from(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Item, E> {
        Ok(Item(Value::from(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Item, E> {
        Ok(Item(Value::from(v)))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Item, E> {
        Ok(Item(Value::String(String::new())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Item, E> {
        Ok(Item(Value::Null))
    }
}
