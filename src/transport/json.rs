//! Reading JSON values as the hosts send them (the Functions host encodes strings, numbers and
//! booleans as JSON text inside a string, and binary payloads as base64), shared by every
//! transport. See <https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers>.

use base64::Engine as _;
use serde_json::{Map, Value};

/// Undoes the host's encoding of one value: an object, array, number, boolean or null is used
/// as is; a string holding JSON text is parsed, and parsed once more when that text was itself a
/// JSON string (`"\"abc\""` → `abc`, `"\"{\\\"a\\\":1}\""` → `{"a":1}`). A string that is not
/// JSON text is a plain string.
pub(crate) fn decode_value(raw: &Value) -> Value {
    let Value::String(text) = raw else {
        return raw.clone();
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::String(inner)) => match serde_json::from_str::<Value>(&inner) {
            Ok(value @ (Value::Object(_) | Value::Array(_))) => value,
            _ => Value::String(inner),
        },
        Ok(value) => value,
        Err(_) => Value::String(text.clone()),
    }
}

/// A value that must be a JSON object: the object, its JSON text (singly or doubly encoded), or
/// base64 of that text (a binding with `dataType: binary`).
pub(crate) fn decode_object(raw: &Value) -> Option<Map<String, Value>> {
    match decode_value(raw) {
        Value::Object(map) => Some(map),
        Value::String(text) => {
            let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim()).ok()?;
            match serde_json::from_slice::<Value>(&bytes).ok()? {
                Value::Object(map) => Some(map),
                Value::String(inner) => match serde_json::from_str::<Value>(&inner).ok()? {
                    Value::Object(map) => Some(map),
                    _ => None,
                },
                _ => None,
            }
        }
        _ => None,
    }
}

/// A short description of a value for error messages (never the whole value: it may be large).
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(_) => "a number".into(),
        Value::String(s) => format!("a string of {} characters", s.chars().count()),
        Value::Array(items) => format!("an array of {} items", items.len()),
        Value::Object(_) => "an object".into(),
    }
}
