//! The custom-handler invocation envelope: `{"Data": {...}, "Metadata": {...}}` in, and
//! `{"Outputs": {...}, "Logs": [...], "ReturnValue": ...}` out.
//!
//! The host encodes values in several shapes
//! (<https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers>): objects stay objects,
//! but strings, numbers and booleans are serialized to JSON text and then sent as a JSON string,
//! so a string arrives double-encoded (`"\"abc\""`) and a JSON message body arrives as a string
//! holding a string holding the JSON. Binary payloads arrive as base64. [`decode_value`] accepts
//! every one of those shapes so the routes only see the value that was meant.

use serde::Serialize;
use serde_json::{Map, Value};

pub(crate) use crate::transport::json::{decode_object, decode_value, describe};

/// Why an invocation body could not be used. The message names what was wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EnvelopeError {
    #[error("invocation body is not JSON: {0}")]
    NotJson(String),
    #[error("invocation body is not a JSON object with Data and Metadata")]
    NotAnObject,
    #[error("invocation body has no Data object")]
    MissingData,
    #[error("invocation Data has no input named {0:?}")]
    MissingInput(String),
    #[error("input {name:?}: {message}")]
    BadInput { name: String, message: String },
}

/// A decoded invocation request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Invocation {
    pub data: Map<String, Value>,
    pub metadata: Map<String, Value>,
}

impl Invocation {
    /// Reads the request body the host sent. Key names are matched case-insensitively, as the
    /// host's own binding data is.
    pub(crate) fn parse(body: &[u8]) -> Result<Invocation, EnvelopeError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| EnvelopeError::NotJson(e.to_string()))?;
        let Value::Object(mut root) = value else {
            return Err(EnvelopeError::NotAnObject);
        };
        let data = match take_key(&mut root, "Data") {
            Some(Value::Object(map)) => map,
            Some(other) => match decode_value(&other) {
                Value::Object(map) => map,
                _ => return Err(EnvelopeError::MissingData),
            },
            None => return Err(EnvelopeError::MissingData),
        };
        let metadata = match take_key(&mut root, "Metadata") {
            Some(Value::Object(map)) => map,
            Some(other) => match decode_value(&other) {
                Value::Object(map) => map,
                _ => Map::new(),
            },
            None => Map::new(),
        };
        Ok(Invocation { data, metadata })
    }

    /// The raw value of an input binding, as sent.
    pub(crate) fn raw_input(&self, name: &str) -> Option<&Value> {
        get_key(&self.data, name)
    }

    /// An input binding's value with the host's string encoding undone.
    pub(crate) fn input(&self, name: &str) -> Result<Value, EnvelopeError> {
        let raw = self
            .raw_input(name)
            .ok_or_else(|| EnvelopeError::MissingInput(name.to_string()))?;
        Ok(decode_value(raw))
    }

    /// An input binding that must be a JSON object (a message body, an event). Accepts the
    /// object itself, its JSON text singly or doubly encoded, and base64 of that text.
    pub(crate) fn input_object(&self, name: &str) -> Result<Map<String, Value>, EnvelopeError> {
        let raw = self
            .raw_input(name)
            .ok_or_else(|| EnvelopeError::MissingInput(name.to_string()))?;
        match decode_object(raw) {
            Some(map) => Ok(map),
            None => Err(EnvelopeError::BadInput {
                name: name.to_string(),
                message: format!("expected a JSON object, got {}", describe(raw)),
            }),
        }
    }

    /// A metadata value with the host's string encoding undone.
    pub(crate) fn metadata(&self, name: &str) -> Option<Value> {
        get_key(&self.metadata, name).map(decode_value)
    }

    /// A metadata value as text (`MessageId`, `DeliveryCount`).
    pub(crate) fn metadata_text(&self, name: &str) -> Option<String> {
        match self.metadata(name)? {
            Value::String(s) => Some(s),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }
}

fn take_key(map: &mut Map<String, Value>, name: &str) -> Option<Value> {
    if let Some(v) = map.remove(name) {
        return Some(v);
    }
    let key = map.keys().find(|k| k.eq_ignore_ascii_case(name))?.clone();
    map.remove(&key)
}

fn get_key<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name)
        .or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

/// What the handler answers: the host reads `Outputs` (keyed by output binding name), turns each
/// `Logs` line into an invocation log, and uses `ReturnValue` for a `$return` binding.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct InvocationResponse {
    #[serde(rename = "Outputs")]
    pub outputs: Map<String, Value>,
    #[serde(rename = "Logs")]
    pub logs: Vec<String>,
    #[serde(rename = "ReturnValue")]
    pub return_value: Value,
}

impl InvocationResponse {
    pub(crate) fn new() -> InvocationResponse {
        InvocationResponse::default()
    }

    pub(crate) fn log(&mut self, line: impl Into<String>) {
        self.logs.push(line.into());
    }

    pub(crate) fn output(&mut self, name: &str, value: Value) {
        self.outputs.insert(name.to_string(), value);
    }
}

/// The value of an `http` output binding: status, JSON content type, and a JSON body.
pub(crate) fn http_output(status: u16, body: Value) -> Value {
    serde_json::json!({
        "statusCode": status,
        "headers": { "Content-Type": "application/json" },
        "body": body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use serde_json::json;

    #[test]
    fn every_string_shape_decodes_to_the_meant_value() {
        let object = json!({"resourceId": "/subscriptions/1/x", "attempt": 2});
        let text = object.to_string();
        let single = Value::String(text.clone());
        let double = Value::String(serde_json::to_string(&text).unwrap());
        let base64 = Value::String(base64::engine::general_purpose::STANDARD.encode(text.as_bytes()));
        for shape in [&object, &single, &double, &base64] {
            assert_eq!(decode_object(shape), object.as_object().cloned(), "{shape}");
        }
        assert_eq!(decode_value(&json!("\"abc\"")), json!("abc"));
        assert_eq!(decode_value(&json!("1")), json!(1));
        assert_eq!(decode_value(&json!("true")), json!(true));
        assert_eq!(decode_value(&json!("plain words")), json!("plain words"));
        assert_eq!(decode_value(&json!(7)), json!(7));
        assert_eq!(decode_object(&json!("not an object")), None);
        assert_eq!(decode_object(&json!("\"abc\"")), None);
        assert_eq!(decode_object(&json!([1, 2])), None);
    }

    #[test]
    fn envelope_keys_are_case_insensitive_and_metadata_is_decoded() {
        let body = json!({
            "data": {"msg": "\"{\\\"a\\\":1}\""},
            "Metadata": {"MessageId": "\"retry-1\"", "DeliveryCount": "3", "sys": {"MethodName": "retry"}}
        });
        let inv = Invocation::parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            inv.input_object("MSG").unwrap(),
            json!({"a": 1}).as_object().cloned().unwrap()
        );
        assert_eq!(inv.metadata_text("MessageId").as_deref(), Some("retry-1"));
        assert_eq!(inv.metadata_text("DeliveryCount").as_deref(), Some("3"));
        assert_eq!(inv.metadata_text("Missing"), None);
    }

    #[test]
    fn bad_envelopes_say_what_is_wrong() {
        assert!(matches!(Invocation::parse(b"{"), Err(EnvelopeError::NotJson(_))));
        assert_eq!(Invocation::parse(b"[1]").unwrap_err(), EnvelopeError::NotAnObject);
        assert_eq!(Invocation::parse(b"{}").unwrap_err(), EnvelopeError::MissingData);
        let inv = Invocation::parse(br#"{"Data":{"msg":"\"abc\""}}"#).unwrap();
        assert_eq!(
            inv.input_object("event").unwrap_err(),
            EnvelopeError::MissingInput("event".into())
        );
        let err = inv.input_object("msg").unwrap_err().to_string();
        assert!(err.contains("msg") && err.contains("expected a JSON object"), "{err}");
    }

    #[test]
    fn responses_have_the_three_keys() {
        let mut r = InvocationResponse::new();
        r.log("done");
        r.output("res", http_output(202, json!({"accepted": true})));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["Logs"], json!(["done"]));
        assert_eq!(v["ReturnValue"], Value::Null);
        assert_eq!(v["Outputs"]["res"]["statusCode"], json!(202));
    }
}
