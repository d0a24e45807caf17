//! Reading an exported estate: Azure resources as JSON, in any of the shapes Azure tools print.
//!
//! Accepted top levels: a JSON array of ARM resource objects, an object with a `data` array
//! (`az graph query`, Resource Graph REST) or an object with a `value` array (an ARM list).
//! The file is streamed through a buffered reader and each item is handed to an [`EstateSink`]
//! as soon as it is parsed, so memory does not grow with the file: what grows is only what the
//! sink keeps. A bad item becomes a warning naming `estate[index]`; a file that
//! is not JSON, or JSON of another shape, is an error naming the file, line and column.

mod item;
mod text;

use std::cell::Cell;
use std::fmt;
use std::io::{BufReader, Read};
use std::rc::Rc;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::domain::extract::{Warning, is_companion_type, is_owner_type};
use crate::domain::resource::Resource;
use item::{Item, ItemSeed};
use text::{BadUtf16, ContentTracker, Utf16Reader};

/// The resources read from an estate file, and the items that could not be used.
#[derive(Debug, Clone, Default)]
pub struct Estate {
    pub resources: Vec<Resource>,
    pub warnings: Vec<Warning>,
    /// How many items the file listed (resources plus rejected items).
    pub items: usize,
}

/// Why an estate file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum EstateError {
    #[error("{file}: cannot read the estate file: {message}")]
    Read { file: String, message: String },
    #[error("{file}: line {line}, column {column}: {message}")]
    Json {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: {message}")]
    Shape { file: String, message: String },
}

const EXPECTED: &str = "a JSON array of Azure resources, or an object with a \"data\" array (az graph query) or a \"value\" array (ARM list)";

/// Receives the items of an estate file as they are parsed, in file order.
pub(crate) trait EstateSink {
    /// Item `index` of the array, read as a resource.
    fn resource(&mut self, index: usize, resource: Resource);
    /// An item that could not be used (the warning names `estate[index]`).
    fn rejected(&mut self, warning: Warning);
    /// Whether resources of `arm_type` (lower case) need their `properties`, `sku` and `tags`;
    /// when not, those members are skipped while parsing, without being built.
    fn needs_body(&self, _arm_type: &str) -> bool {
        true
    }
    /// Whether resources need `kind`, `location`, `sku` and `tags` (extraction reads none of
    /// them); when not, they are skipped while parsing.
    fn needs_envelope_details(&self) -> bool {
        true
    }
}

impl EstateSink for Estate {
    fn resource(&mut self, _: usize, resource: Resource) {
        self.resources.push(resource);
    }
    fn rejected(&mut self, warning: Warning) {
        self.warnings.push(warning);
    }
}

/// Keeps resources of types that neither own seeds nor are companions (virtual machines,
/// disks, NICs: most of a real estate) with their envelope only.
struct ExtractionInputs(Estate);

impl EstateSink for ExtractionInputs {
    fn resource(&mut self, _: usize, mut resource: Resource) {
        if !is_owner_type(&resource.arm_type) && !is_companion_type(&resource.arm_type) {
            resource.properties = Value::Null;
            resource.sku = Value::Null;
            resource.tags = Value::Null;
        }
        self.0.resources.push(resource);
    }
    fn rejected(&mut self, warning: Warning) {
        self.0.warnings.push(warning);
    }
    fn needs_body(&self, arm_type: &str) -> bool {
        is_owner_type(arm_type) || is_companion_type(arm_type)
    }
}

/// Reads and parses an estate, keeping every resource whole; `file` names the source in errors.
pub(crate) fn read_estate(input: impl Read, file: &str) -> Result<Estate, EstateError> {
    let mut estate = Estate::default();
    estate.items = stream_estate(input, file, &mut estate)?;
    Ok(estate)
}

/// Reads an estate for extraction only: resources of types that neither own seeds nor are
/// companions keep their envelope but not their body.
pub(crate) fn read_estate_for_extraction(input: impl Read, file: &str) -> Result<Estate, EstateError> {
    let mut inputs = ExtractionInputs(Estate::default());
    inputs.0.items = stream_estate(input, file, &mut inputs)?;
    Ok(inputs.0)
}

/// Parses estate JSON held in memory; `file` names the source in errors.
pub(crate) fn parse_estate(bytes: &[u8], file: &str) -> Result<Estate, EstateError> {
    read_estate(bytes, file)
}

/// Streams estate JSON from any reader into `sink`, one item at a time, through a buffered
/// reader: memory does not grow with the input. A UTF-8 byte-order mark is skipped, UTF-16 with
/// a mark is transcoded on the fly; `file` names the source in errors. Returns how many items
/// the input listed. Opening files is the caller's business (`adapters::estate_file`): the
/// domain does no I/O of its own.
pub(crate) fn stream_estate(
    mut input: impl Read,
    file: &str,
    sink: &mut impl EstateSink,
) -> Result<usize, EstateError> {
    let read_error = |e: std::io::Error| EstateError::Read {
        file: file.to_string(),
        message: e.to_string(),
    };
    let mut head = [0u8; 3];
    let mut filled = 0;
    while filled < head.len() {
        match input.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(e)),
        }
    }
    let head = &head[..filled];
    let text: Box<dyn Read + '_> = if head.starts_with(b"\xEF\xBB\xBF") {
        Box::new(input)
    } else if head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF") {
        // PowerShell's `>` writes UTF-16 with a byte-order mark.
        let little = head[0] == 0xFF;
        Box::new(Utf16Reader::new(head[2..].chain(input), little))
    } else {
        Box::new(head.chain(input))
    };
    let seen_content = Rc::new(Cell::new(false));
    let tracked = ContentTracker {
        inner: text,
        seen_content: Rc::clone(&seen_content),
    };
    let mut deserializer = serde_json::Deserializer::from_reader(BufReader::with_capacity(1 << 16, tracked));
    let parsed = EstateSeed { sink }
        .deserialize(&mut deserializer)
        .and_then(|items| deserializer.end().map(|()| items));
    parsed.map_err(|e| {
        if e.is_io() {
            let io = std::io::Error::from(e);
            if io.get_ref().is_some_and(|inner| inner.is::<BadUtf16>()) {
                return EstateError::Shape {
                    file: file.to_string(),
                    message: BadUtf16.to_string(),
                };
            }
            return read_error(io);
        }
        if !seen_content.get() {
            return EstateError::Shape {
                file: file.to_string(),
                message: format!("the file is empty; expected {EXPECTED}"),
            };
        }
        EstateError::Json {
            file: file.to_string(),
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        }
    })
}

/// serde_json appends " at line L column C"; the error already says where.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

/// The top level: an array, or an object holding `data` or `value`. Its value is how many
/// items the array listed.
struct EstateSeed<'s, S> {
    sink: &'s mut S,
}

impl<'de, S: EstateSink> DeserializeSeed<'de> for EstateSeed<'_, S> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_any(TopVisitor { sink: self.sink })
    }
}

struct TopVisitor<'s, S> {
    sink: &'s mut S,
}

impl<'de, S: EstateSink> Visitor<'de> for TopVisitor<'_, S> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<usize, A::Error> {
        read_items(seq, self.sink)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        let mut found: Option<usize> = None;
        let mut keys = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if (key == "data" || key == "value") && found.is_none() {
                found = Some(map.next_value_seed(ItemsSeed {
                    key: key.clone(),
                    sink: &mut *self.sink,
                })?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
            if keys.len() < 8 {
                keys.push(key);
            }
        }
        found.ok_or_else(|| {
            de::Error::custom(format!(
                "expected {EXPECTED}; found an object with neither (its keys: {})",
                if keys.is_empty() {
                    "none".to_string()
                } else {
                    keys.join(", ")
                }
            ))
        })
    }
}

/// The array under `data` or `value`.
struct ItemsSeed<'s, S> {
    key: String,
    sink: &'s mut S,
}

impl<'de, S: EstateSink> DeserializeSeed<'de> for ItemsSeed<'_, S> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_any(ItemsVisitor {
            key: self.key,
            sink: self.sink,
        })
    }
}

struct ItemsVisitor<'s, S> {
    key: String,
    sink: &'s mut S,
}

impl<'de, S: EstateSink> Visitor<'de> for ItemsVisitor<'_, S> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "\"{}\" to be an array of Azure resources", self.key)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<usize, A::Error> {
        read_items(seq, self.sink)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value::<IgnoredAny>()?;
        }
        Err(de::Error::custom(format!(
            "\"{}\" is an object, not an array of resources (a Resource Graph table result? query with resultFormat objectArray, as `az graph query` does)",
            self.key
        )))
    }
}

/// Hands each item to `sink` as soon as it is parsed; its JSON is dropped right after.
fn read_items<'de, A: SeqAccess<'de>, S: EstateSink>(mut seq: A, sink: &mut S) -> Result<usize, A::Error> {
    let mut items = 0;
    while let Some(Item(item)) = seq.next_element_seed(ItemSeed { sink: &*sink })? {
        let index = items;
        items += 1;
        // Only a bad `type` leaves a usable id to name in the warning; read it only then.
        let id = match item.get("type") {
            None | Some(Value::Null | Value::String(_)) => None,
            Some(_) => item
                .get("id")
                .and_then(Value::as_str)
                .map(|id| id.chars().take(200).collect::<String>()),
        };
        match Resource::from_json(item) {
            Ok(resource) => sink.resource(index, resource),
            Err(error) => sink.rejected(Warning {
                resource: format!("estate[{index}]"),
                path: String::new(),
                message: match id {
                    Some(id) if !matches!(error, crate::domain::resource::ResourceError::BadId(_)) => {
                        format!("{error} (id {id:?}); item skipped")
                    }
                    _ => format!("{error}; item skipped"),
                },
            }),
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIP: &str = r#"{"id": "/subscriptions/1/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/p", "type": "Microsoft.Network/publicIPAddresses", "properties": {"ipAddress": "20.1.2.3"}}"#;

    #[test]
    fn reads_all_three_shapes() {
        for text in [
            format!("[{PIP}]"),
            format!(r#"{{"count": 1, "data": [{PIP}], "skip_token": null, "total_records": 1}}"#),
            format!(r#"{{"value": [{PIP}], "nextLink": null}}"#),
            format!("\u{feff}[{PIP}]"),
        ] {
            let estate = parse_estate(text.as_bytes(), "e.json").unwrap();
            assert_eq!(estate.resources.len(), 1, "{text}");
            assert_eq!(estate.items, 1);
            assert!(estate.warnings.is_empty());
        }
    }

    #[test]
    fn reading_for_extraction_drops_bodies_extraction_ignores() {
        let vm = r#"{"id": "/subscriptions/1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm", "type": "microsoft.compute/virtualmachines", "properties": {"vmId": "x"}, "tags": {"a": "b"}}"#;
        let blob = r#"{"id": "/subscriptions/1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st/blobServices/default", "properties": {"staticWebsite": {"enabled": true}}}"#;
        let text = format!("[{PIP}, {vm}, {blob}]");
        let whole = read_estate(text.as_bytes(), "e.json").unwrap();
        assert!(whole.resources.iter().all(|r| !r.properties.is_null()));
        let lean = read_estate_for_extraction(text.as_bytes(), "e.json").unwrap();
        assert_eq!(lean.resources.len(), 3);
        assert!(!lean.resources[0].properties.is_null());
        assert!(lean.resources[1].properties.is_null() && lean.resources[1].tags.is_null());
        assert!(!lean.resources[2].properties.is_null());
    }

    #[test]
    fn utf16_files_are_transcoded() {
        let text = format!("[{PIP}]");
        let mut bytes = vec![0xFF, 0xFE];
        for unit in text.encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        assert_eq!(parse_estate(&bytes, "e.json").unwrap().resources.len(), 1);
    }

    #[test]
    fn bad_items_are_warnings_naming_their_index() {
        let text = format!(
            r#"[{PIP}, 5, {{"name": "no id"}}, {{"id": "/nope"}}, {{"id": "/subscriptions/1/resourceGroups/x", "type": 7}}]"#
        );
        let estate = parse_estate(text.as_bytes(), "e.json").unwrap();
        assert_eq!(estate.resources.len(), 1);
        assert_eq!(estate.items, 5);
        let names: Vec<&str> = estate.warnings.iter().map(|w| w.resource.as_str()).collect();
        assert_eq!(names, ["estate[1]", "estate[2]", "estate[3]", "estate[4]"]);
        assert!(estate.warnings[3].message.contains("type"));
        assert!(
            estate.warnings[3].message.contains("/subscriptions/1/resourceGroups/x"),
            "{:?}",
            estate.warnings[3]
        );
    }

    #[test]
    fn malformed_files_are_errors_with_positions() {
        let cases: &[(&[u8], &str)] = &[
            (b"[\n {\"id\": }", "line 2"),
            (b"42", "expected a JSON array"),
            (b"{\"foo\": 1}", "neither"),
            (b"{\"data\": {\"columns\": [], \"rows\": []}}", "objectArray"),
            (b"{\"value\": 3}", "array of Azure resources"),
            (b"   ", "empty"),
            (b"[\"\xff\xfe\"]", "line 1"),
            (b"[] trailing", "trailing"),
        ];
        for (bytes, expected) in cases {
            let error = parse_estate(bytes, "estate.json").unwrap_err().to_string();
            assert!(error.starts_with("estate.json: "), "{error}");
            assert!(error.contains(expected), "{error:?} should mention {expected:?}");
        }
    }
}
