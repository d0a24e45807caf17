//! The one place extractors hand values over: it normalises them into seeds, keeps provenance,
//! honours the service-check toggles and turns every unusable value into a warning.

use serde_json::Value;

use super::{Contribution, Extraction, PropertyPath, Warning};
use crate::domain::check::{EnabledChecks, ServiceCheck};
use crate::domain::resource::ResourceId;
use crate::domain::seed::{Seed, SeedError, SeedKind};

/// Collects the contributions and warnings of one owner resource.
pub(crate) struct Emitter<'a> {
    owner: &'a ResourceId,
    checks: &'a EnabledChecks,
    out: &'a mut Extraction,
}

/// What a value is expected to become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// A host name or URL (a domain seed); an IP is accepted too.
    Host,
    /// A host name only: IP addresses are refused (certificate names).
    DomainOnly,
    /// An IPv4 or IPv6 address.
    Ip,
    /// A CIDR range.
    Range,
}

impl<'a> Emitter<'a> {
    pub(crate) fn new(owner: &'a ResourceId, checks: &'a EnabledChecks, out: &'a mut Extraction) -> Self {
        Emitter { owner, checks, out }
    }

    pub(crate) fn is_on(&self, check: ServiceCheck) -> bool {
        self.checks.is_on(check)
    }

    /// Emits the string at `value` (found at `path`). Missing, null and empty values are skipped
    /// silently (Azure leaves unset fields out or null); any other JSON type is a warning.
    pub(crate) fn value(&mut self, check: ServiceCheck, want: Want, path: &str, value: Option<&Value>) {
        if !self.is_on(check) {
            return;
        }
        match value {
            None | Some(Value::Null) => {}
            Some(Value::String(text)) => self.text(check, want, path, text),
            Some(other) => self.warn(path, format!("expected a string, found {}", describe(other))),
        }
    }

    /// Emits every string of the array at `value`; each bad entry is its own warning.
    pub(crate) fn list(&mut self, check: ServiceCheck, want: Want, path: &str, value: Option<&Value>) {
        if !self.is_on(check) {
            return;
        }
        match value {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    self.value(check, want, &item_path, Some(item));
                }
            }
            Some(other) => self.warn(path, format!("expected a list of strings, found {}", describe(other))),
        }
    }

    /// The items of the array at `value` (found at `path`); anything but an array or nothing is
    /// a warning and yields no items.
    pub(crate) fn array<'v>(&mut self, path: &str, value: Option<&'v Value>) -> &'v [Value] {
        match value {
            Some(Value::Array(items)) => items.as_slice(),
            None | Some(Value::Null) => &[],
            Some(other) => {
                self.warn(path, format!("expected a list, found {}", describe(other)));
                &[]
            }
        }
    }

    /// Normalises one raw string and records it, or records why it was not a seed.
    pub(crate) fn text(&mut self, check: ServiceCheck, want: Want, path: &str, raw: &str) {
        if !self.is_on(check) || raw.trim().is_empty() {
            return;
        }
        let parsed = match want {
            Want::Range => Seed::from_range(raw),
            _ => Seed::from_host_value(raw),
        };
        let seed = match parsed {
            Ok(seed) => seed,
            Err(SeedError::Empty) => return,
            Err(SeedError::SharedParent(name)) => {
                // Expected and harmless (a shared regional endpoint): not worth a warning.
                tracing::debug!(resource = %self.owner, path, name, "shared Microsoft name not seeded");
                return;
            }
            Err(e) => {
                self.warn(path, e.to_string());
                return;
            }
        };
        let fits = match want {
            Want::Host | Want::Range => true,
            Want::DomainOnly => seed.kind() == SeedKind::Domain,
            Want::Ip => matches!(seed.kind(), SeedKind::Ipv4 | SeedKind::Ipv6),
        };
        if !fits {
            let expected = if want == Want::Ip {
                "an IP address"
            } else {
                "a host name"
            };
            self.warn(path, format!("{:?} is not {expected}", seed.name()));
            return;
        }
        self.out.contributions.push(Contribution {
            seed,
            owner: self.owner.clone(),
            check,
            path: PropertyPath::new(path),
        });
    }

    pub(crate) fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.out.warnings.push(Warning {
            resource: self.owner.as_str().to_string(),
            path: path.to_string(),
            message: message.into(),
        });
    }
}

/// A short description of a JSON value for warnings (never the whole value: it may be huge).
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(_) => "a string".into(),
        Value::Array(a) => format!("a list of {} items", a.len()),
        Value::Object(_) => "an object".into(),
    }
}

/// The member `name` of an object, matched exactly first and then ignoring ASCII case (ARM,
/// Resource Graph and older api-versions disagree: `defaultHostname`/`defaultHostName`).
pub(crate) fn field<'v>(value: &'v Value, name: &str) -> Option<&'v Value> {
    let map = value.as_object()?;
    if let Some(found) = map.get(name) {
        return Some(found);
    }
    map.iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Walks a dotted path of object members (`["dnsSettings", "fqdn"]`).
pub(crate) fn at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(value, |current, name| field(current, name))
}

/// The string at `path`, if it is one.
pub(crate) fn str_at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v str> {
    at(value, path).and_then(Value::as_str)
}

/// Whether the string at `path` equals `expected`, ignoring ASCII case.
pub(crate) fn str_is(value: &Value, path: &[&str], expected: &str) -> bool {
    str_at(value, path).is_some_and(|s| s.trim().eq_ignore_ascii_case(expected))
}

/// Whether the value at `path` is `true` (a JSON boolean or the string `"true"`).
pub(crate) fn is_true(value: &Value, path: &[&str]) -> bool {
    match at(value, path) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Whether the value at `path` is set: a non-empty string or a non-null object or array.
pub(crate) fn is_set(value: &Value, path: &[&str]) -> bool {
    match at(value, path) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}
