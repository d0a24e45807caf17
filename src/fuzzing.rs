//! One entry point per decoder of outside data, for the fuzz targets (`fuzz/`) and the property
//! tests (`tests/it/fuzz.rs`): each takes raw bytes, runs the same code the service runs on them
//! and answers `Ok` with what was decoded or `Err` with the reject's message. None may panic.
//!
//! Not an API: the functions follow the decoders wherever they move.

use std::collections::HashMap;

use base64::Engine;
use serde_json::Value;

use crate::adapters::azure::arm::{Reply, error_message, parse_timespan};
use crate::config::{Config, LoadOptions};
use crate::domain::check::EnabledChecks;
use crate::domain::resource::{Resource, ResourceId};
use crate::transport::events::{Disposition, ResourceEvent, event_values};
use crate::transport::functions::envelope::{Invocation, decode_object};
use crate::transport::functions::server::bindings;
use crate::transport::resync::parse_request;

/// What one input decoded to: how many items were accepted, and the message of every item that
/// was rejected while the rest went on (an event of a batch, an estate item, a certificate).
#[derive(Debug, Default)]
pub struct Decoded {
    pub accepted: usize,
    pub rejects: Vec<String>,
}

impl Decoded {
    fn reject(&mut self, message: impl ToString) {
        self.rejects.push(message.to_string());
    }
}

/// The names of the targets, as `fuzz/` and `scripts/fuzz.sh` know them.
pub const TARGETS: &[&str] = &[
    "envelope",
    "events",
    "resync",
    "retry_message",
    "arm_answer",
    "graph_page",
    "asm_answer",
    "table_entity",
    "estate",
    "config",
    "cert_text",
    "cert_der",
    "resource_id",
];

/// Runs the target named `name` (one of [`TARGETS`]).
pub fn run(name: &str, bytes: &[u8]) -> Result<Decoded, String> {
    match name {
        "envelope" => envelope(bytes),
        "events" => events(bytes),
        "resync" => resync(bytes),
        "retry_message" => retry_message(bytes),
        "arm_answer" => arm_answer(bytes),
        "graph_page" => graph_page(bytes),
        "asm_answer" => asm_answer(bytes),
        "table_entity" => table_entity(bytes),
        "estate" => estate(bytes),
        "config" => config(bytes),
        "cert_text" => cert_text(bytes),
        "cert_der" => cert_der(bytes),
        "resource_id" => resource_id(bytes),
        other => Err(format!("no fuzz target named {other:?}")),
    }
}

fn json(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))
}

fn text(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))
}

/// An Event Grid invocation as the host posts it: the envelope, then each event of the `event`
/// input, then what each asks of the apply path.
pub fn envelope(bytes: &[u8]) -> Result<Decoded, String> {
    let invocation = Invocation::parse(bytes).map_err(|e| e.to_string())?;
    // The metadata every function reads (delivery count, message id) must not trip anything.
    for name in ["MessageId", "DeliveryCount", "sys"] {
        let _ = invocation.metadata_text(name);
    }
    for name in [bindings::REQUEST, bindings::MESSAGE] {
        if let Err(e) = invocation.input_object(name) {
            let _ = e.to_string();
        }
    }
    let raw = invocation
        .raw_input(bindings::EVENT)
        .ok_or_else(|| "no \"event\" input".to_string())?;
    dispositions(raw)
}

/// The `event` input alone (Event Grid, CloudEvents or Resource Notifications, one or a batch).
pub fn events(bytes: &[u8]) -> Result<Decoded, String> {
    dispositions(&json(bytes)?)
}

fn dispositions(input: &Value) -> Result<Decoded, String> {
    let mut decoded = Decoded::default();
    for value in event_values(input) {
        let disposition = ResourceEvent::parse(&value).and_then(|event| event.disposition());
        match disposition {
            Ok(Disposition::Apply(change)) => {
                let _ = (change.owner(), change.key(), change.time_ms());
                decoded.accepted += 1;
            }
            Ok(Disposition::Ignore { reason }) => decoded.reject(reason),
            Err(e) => decoded.reject(e),
        }
    }
    Ok(decoded)
}

/// The `resync` HTTP invocation: the envelope, the `req` binding, the body's fields.
pub fn resync(bytes: &[u8]) -> Result<Decoded, String> {
    let invocation = Invocation::parse(bytes).map_err(|e| e.to_string())?;
    let request = invocation.input_object(bindings::REQUEST).map_err(|e| e.to_string())?;
    parse_request(&request)?;
    Ok(Decoded {
        accepted: 1,
        rejects: Vec::new(),
    })
}

/// A Service Bus retry message body (as the `msg` input carries it: an object, or a string or
/// base64 holding one).
pub fn retry_message(bytes: &[u8]) -> Result<Decoded, String> {
    let value = json(bytes)?;
    let object = decode_object(&value).ok_or_else(|| "the message is not a JSON object".to_string())?;
    let job: crate::adapters::servicebus::RetryJob =
        serde_json::from_value(Value::Object(object)).map_err(|e| format!("not a seedwatch job: {e}"))?;
    let _ = job.label();
    Ok(Decoded {
        accepted: 1,
        rejects: Vec::new(),
    })
}

/// An ARM answer: a resource (GET), a page of children (`value`, `nextLink`), or an error
/// envelope; the resources found go through extraction, as an apply does with them.
pub fn arm_answer(bytes: &[u8]) -> Result<Decoded, String> {
    let message = error_message(bytes);
    if message.trim().is_empty() {
        return Err("error_message gave an empty message".into());
    }
    let _ = parse_timespan(&String::from_utf8_lossy(bytes));
    let reply = Reply {
        status: 200,
        headers: Default::default(),
        body: bytes::Bytes::copy_from_slice(bytes),
    };
    let value = reply.json("fuzz").map_err(|e| e.to_string())?;
    let items = match value.get("value").and_then(Value::as_array) {
        Some(items) => items.clone(),
        None => vec![value],
    };
    extract_all(items)
}

/// A Resource Graph page (`objectArray` rows), each row a resource, through extraction.
pub fn graph_page(bytes: &[u8]) -> Result<Decoded, String> {
    let rows = crate::adapters::azure::graph::parse_rows(bytes, "fuzz").map_err(|e| e.to_string())?;
    extract_all(rows)
}

fn extract_all(items: Vec<Value>) -> Result<Decoded, String> {
    let mut decoded = Decoded::default();
    let mut resources = Vec::new();
    for item in items {
        match Resource::from_json(item) {
            Ok(resource) => resources.push(resource),
            Err(e) => decoded.reject(e),
        }
    }
    let extraction = crate::domain::extract::extract_resources(&resources, &EnabledChecks::all());
    decoded.accepted = extraction.contributions.len();
    for warning in &extraction.warnings {
        decoded.reject(&warning.message);
    }
    Ok(decoded)
}

/// An ASM seed listing, every seed normalised as a reconcile does.
pub fn asm_answer(bytes: &[u8]) -> Result<Decoded, String> {
    let seeds = crate::adapters::asm::client::parse_seed_list(bytes).map_err(|e| e.to_string())?;
    let mut decoded = Decoded::default();
    for seed in &seeds {
        match seed.normalised() {
            Some(_) => decoded.accepted += 1,
            None => decoded.reject(format!("seed {:?} does not normalise", seed.name)),
        }
    }
    Ok(decoded)
}

/// A Table Storage entity: its chunked `D0..Dn` data, decoded as each record type the ledger
/// keeps (only one of them fits a real entity; the others must reject it cleanly).
pub fn table_entity(bytes: &[u8]) -> Result<Decoded, String> {
    let Value::Object(entity) = json(bytes)? else {
        return Err("entity is not a JSON object".into());
    };
    let data = crate::adapters::store::table::TableLedger::entity_data(&entity, "fuzz").map_err(|e| e.to_string())?;
    let mut decoded = Decoded::default();
    let mut count = |result: Result<(), String>| match result {
        Ok(()) => decoded.accepted += 1,
        Err(e) => decoded.reject(e),
    };
    count(record::<crate::ledger::SeedRecord>(&data));
    count(record::<crate::ledger::OwnerRecord>(&data));
    count(record::<crate::ledger::FailedChange>(&data));
    Ok(decoded)
}

fn record<T: serde::de::DeserializeOwned>(data: &str) -> Result<(), String> {
    let de = &mut serde_json::Deserializer::from_str(data);
    serde_path_to_error::deserialize::<_, T>(de)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// An estate file (`az graph query` output, JSON, UTF-8 or UTF-16), through extraction.
pub fn estate(bytes: &[u8]) -> Result<Decoded, String> {
    let estate = crate::domain::estate::parse_estate(bytes, "fuzz.json").map_err(|e| e.to_string())?;
    let mut decoded = Decoded::default();
    for warning in &estate.warnings {
        decoded.reject(&warning.message);
    }
    let extraction = crate::domain::extract::extract_resources(&estate.resources, &EnabledChecks::all());
    decoded.accepted = extraction.contributions.len();
    for warning in &extraction.warnings {
        decoded.reject(&warning.message);
    }
    Ok(decoded)
}

/// `config.yml`, given as `CONNECTOR_CONFIG` (the same parse as the file) with no other setting.
pub fn config(bytes: &[u8]) -> Result<Decoded, String> {
    let text = text(bytes)?;
    let env = HashMap::from([(crate::config::env::CONNECTOR_CONFIG.to_string(), text.to_string())]);
    let options = LoadOptions {
        file: None,
        require_file: false,
    };
    Config::load(&options, &env).map_err(|e| e.to_string())?;
    Ok(Decoded {
        accepted: 1,
        rejects: Vec::new(),
    })
}

/// An App Gateway's `publicCertData` as text (base64 PKCS#7 or DER, or PEM).
pub fn cert_text(bytes: &[u8]) -> Result<Decoded, String> {
    certificates(text(bytes)?)
}

/// Raw DER (a certificate or a PKCS#7 bundle), as `publicCertData` carries it in base64.
pub fn cert_der(bytes: &[u8]) -> Result<Decoded, String> {
    certificates(&base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn certificates(text: &str) -> Result<Decoded, String> {
    let names = crate::domain::extract::certificate_names(text).map_err(|e| e.to_string())?;
    Ok(Decoded {
        accepted: names.names.len(),
        rejects: names.errors.iter().map(ToString::to_string).collect(),
    })
}

/// A resource id, and what the service derives from one (type, parent chain, owner).
pub fn resource_id(bytes: &[u8]) -> Result<Decoded, String> {
    let id = ResourceId::parse(text(bytes)?).map_err(|e| e.to_string())?;
    let _ = (
        id.key(),
        id.subscription_id(),
        id.resource_group(),
        id.name(),
        id.arm_type(),
    );
    let _ = id.without_extension();
    let mut parent = id.parent();
    let mut depth = 0;
    while let Some(p) = parent {
        depth += 1;
        if depth > 10_000 {
            return Err("a parent chain longer than the id".into());
        }
        let _ = id.is_within(&p);
        parent = p.parent();
    }
    let _ = crate::domain::owner::owner_of(&id);
    Ok(Decoded {
        accepted: 1,
        rejects: Vec::new(),
    })
}

/// Checks the properties every target must keep: an `Err` and every per-item reject has a
/// non-empty message. The fuzz targets and the property tests call this after [`run`].
pub fn check(result: &Result<Decoded, String>) -> Result<(), String> {
    let empty = |m: &String| m.trim().is_empty();
    match result {
        Err(message) if empty(message) => Err("a reject with an empty message".into()),
        Ok(decoded) if decoded.rejects.iter().any(empty) => Err("an item rejected with an empty message".into()),
        _ => Ok(()),
    }
}
