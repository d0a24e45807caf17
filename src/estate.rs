//! Reading an exported estate: Azure resources as JSON, in any of the shapes Azure tools print.
//!
//! Accepted top levels: a JSON array of ARM resource objects, an object with a `data` array
//! (`az graph query`, Resource Graph REST) or an object with a `value` array (an ARM list).
//! Items are converted one at a time while the file is parsed, so the raw JSON of the whole
//! estate is never held twice. A bad item becomes a warning naming `estate[index]`; a file that
//! is not JSON, or JSON of another shape, is an error naming the file, line and column.

use std::fmt;
use std::path::Path;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::extract::{Warning, is_companion_type, is_owner_type};
use crate::resource::Resource;

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

/// Reads and parses an estate file, keeping every resource whole.
pub fn read_estate(path: &Path) -> Result<Estate, EstateError> {
    read(path, Keep::Everything)
}

/// Reads an estate file for extraction only: resources of types that neither own seeds nor
/// are companions (virtual machines, disks, NICs: most of a real estate) keep their envelope
/// but not their body, so a large estate fits in far less memory.
pub fn read_estate_for_extraction(path: &Path) -> Result<Estate, EstateError> {
    read(path, Keep::ExtractionInputs)
}

/// Parses estate JSON; `file` names the source in errors.
pub fn parse_estate(bytes: &[u8], file: &str) -> Result<Estate, EstateError> {
    parse(bytes, file, Keep::Everything)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    Everything,
    ExtractionInputs,
}

fn read(path: &Path, keep: Keep) -> Result<Estate, EstateError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| EstateError::Read {
        file: file.clone(),
        message: e.to_string(),
    })?;
    parse(&bytes, &file, keep)
}

fn parse(bytes: &[u8], file: &str, keep: Keep) -> Result<Estate, EstateError> {
    let transcoded;
    let text: &[u8] = if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        rest
    } else if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        // PowerShell's `>` writes UTF-16 with a byte-order mark.
        transcoded = utf16_to_utf8(bytes).ok_or_else(|| EstateError::Shape {
            file: file.to_string(),
            message: "the file looks like UTF-16 but is not valid UTF-16; save it as UTF-8".into(),
        })?;
        transcoded.as_bytes()
    } else {
        bytes
    };
    if text.iter().all(u8::is_ascii_whitespace) {
        return Err(EstateError::Shape {
            file: file.to_string(),
            message: format!("the file is empty; expected {EXPECTED}"),
        });
    }
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    let estate = EstateSeed { keep }
        .deserialize(&mut deserializer)
        .and_then(|estate| deserializer.end().map(|()| estate))
        .map_err(|e| EstateError::Json {
            file: file.to_string(),
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        })?;
    Ok(estate)
}

fn utf16_to_utf8(bytes: &[u8]) -> Option<String> {
    let little = bytes.starts_with(b"\xFF\xFE");
    let body = &bytes[2..];
    if !body.len().is_multiple_of(2) {
        return None;
    }
    let units: Vec<u16> = body
        .chunks_exact(2)
        .map(|c| {
            if little {
                u16::from_le_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], c[1]])
            }
        })
        .collect();
    String::from_utf16(&units).ok()
}

/// serde_json appends " at line L column C"; the error already says where.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

/// The top level: an array, or an object holding `data` or `value`.
struct EstateSeed {
    keep: Keep,
}

impl<'de> DeserializeSeed<'de> for EstateSeed {
    type Value = Estate;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Estate, D::Error> {
        deserializer.deserialize_any(TopVisitor { keep: self.keep })
    }
}

struct TopVisitor {
    keep: Keep,
}

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Estate;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Estate, A::Error> {
        read_items(seq, self.keep)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Estate, A::Error> {
        let mut found: Option<Estate> = None;
        let mut keys = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if (key == "data" || key == "value") && found.is_none() {
                found = Some(map.next_value_seed(ItemsSeed {
                    key: key.clone(),
                    keep: self.keep,
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
struct ItemsSeed {
    key: String,
    keep: Keep,
}

impl<'de> DeserializeSeed<'de> for ItemsSeed {
    type Value = Estate;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Estate, D::Error> {
        deserializer.deserialize_any(ItemsVisitor {
            key: self.key,
            keep: self.keep,
        })
    }
}

struct ItemsVisitor {
    key: String,
    keep: Keep,
}

impl<'de> Visitor<'de> for ItemsVisitor {
    type Value = Estate;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "\"{}\" to be an array of Azure resources", self.key)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Estate, A::Error> {
        read_items(seq, self.keep)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Estate, A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value::<IgnoredAny>()?;
        }
        Err(de::Error::custom(format!(
            "\"{}\" is an object, not an array of resources (a Resource Graph table result? query with resultFormat objectArray, as `az graph query` does)",
            self.key
        )))
    }
}

fn read_items<'de, A: SeqAccess<'de>>(mut seq: A, keep: Keep) -> Result<Estate, A::Error> {
    let mut estate = Estate::default();
    if let Some(hint) = seq.size_hint() {
        estate.resources.reserve(hint);
    }
    while let Some(item) = seq.next_element::<Value>()? {
        let index = estate.items;
        estate.items += 1;
        // Only a bad `type` leaves a usable id to name in the warning; read it only then.
        let id = match item.get("type") {
            None | Some(Value::Null | Value::String(_)) => None,
            Some(_) => item
                .get("id")
                .and_then(Value::as_str)
                .map(|id| id.chars().take(200).collect::<String>()),
        };
        match Resource::from_json(item) {
            Ok(mut resource) => {
                if keep == Keep::ExtractionInputs
                    && !is_owner_type(&resource.arm_type)
                    && !is_companion_type(&resource.arm_type)
                {
                    resource.properties = Value::Null;
                    resource.sku = Value::Null;
                    resource.tags = Value::Null;
                }
                estate.resources.push(resource);
            }
            Err(error) => estate.warnings.push(Warning {
                resource: format!("estate[{index}]"),
                path: String::new(),
                message: match id {
                    Some(id) if !matches!(error, crate::resource::ResourceError::BadId(_)) => {
                        format!("{error} (id {id:?}); item skipped")
                    }
                    _ => format!("{error}; item skipped"),
                },
            }),
        }
    }
    Ok(estate)
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
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("e.json");
        let vm = r#"{"id": "/subscriptions/1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm", "type": "microsoft.compute/virtualmachines", "properties": {"vmId": "x"}, "tags": {"a": "b"}}"#;
        let blob = r#"{"id": "/subscriptions/1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st/blobServices/default", "properties": {"staticWebsite": {"enabled": true}}}"#;
        std::fs::write(&file, format!("[{PIP}, {vm}, {blob}]")).unwrap();
        let whole = read_estate(&file).unwrap();
        assert!(whole.resources.iter().all(|r| !r.properties.is_null()));
        let lean = read_estate_for_extraction(&file).unwrap();
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
