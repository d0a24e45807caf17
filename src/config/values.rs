//! The leaf values of `config.yml` and how each is read: the Hexiosec connector's leniency
//! (booleans as `yes` or `on`, numbers as strings, Go durations) and errors that show the value
//! and say what was expected. The key path is added by the loader (`serde_path_to_error`).
//!
//! Each leaf is read from the JSON form of its YAML value, so an error shows the value as today;
//! a null value is an absent key (the fields are `Option`s).

use std::collections::BTreeSet;
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::duration::parse_duration;
use super::types::{Cloud, CredentialKind, LedgerKind};
use crate::domain::seed::SeedKind;

/// Separates the shown value from the expectation in a deserializer error's text. The value is
/// shown as JSON or Rust-quoted, where a raw control character never appears.
const SEPARATOR: char = '\u{1f}';

/// A value refused: how to show it, and what was expected.
pub(super) struct Rejection {
    pub value: String,
    pub expected: &'static str,
}

fn rejection(value: &Value, expected: &'static str) -> Rejection {
    Rejection {
        value: show(value),
        expected,
    }
}

/// The deserializer error carrying a refused value; [`split_rejection`] takes it apart.
pub(super) fn reject<E: de::Error>(value: &str, expected: &str) -> E {
    E::custom(format_args!("{value}{SEPARATOR}{expected}"))
}

/// The shown value and the expectation of an error made by [`reject`]; `None` for serde's own.
pub(super) fn split_rejection(text: &str) -> Option<(&str, &str)> {
    text.split_once(SEPARATOR)
}

/// A short rendering of a value for error messages.
pub(super) fn show(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        let mut short: String = text.chars().take(80).collect();
        short.push('…');
        short
    } else {
        text
    }
}

/// A text value quoted for an error message.
pub(super) fn quoted(text: &str) -> String {
    format!("{text:?}")
}

pub(super) fn parse_bool_text(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Implements `Deserialize` for leaves with a `read(Value) -> Result<Self, Rejection>`.
macro_rules! read_from_json {
    ($($leaf:ty),* $(,)?) => {$(
        impl<'de> ::serde::Deserialize<'de> for $leaf {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = <::serde_json::Value as ::serde::Deserialize>::deserialize(deserializer)?;
                <$leaf>::read(value).map_err(|r| $crate::config::values::reject(&r.value, r.expected))
            }
        }
    )*};
}
pub(super) use read_from_json;

read_from_json!(Flag, Text, TextList, NonEmptyText, Count, Seconds, Fraction);
read_from_json!(BaseUrl, AuthorityUrl, SeedTypes, Cloud, CredentialKind, LedgerKind);

/// `true` or `false`, or the words the Hexiosec connector takes (`yes`, `on`, `1`, ...).
pub(super) struct Flag(pub bool);

impl Flag {
    fn read(value: Value) -> Result<Flag, Rejection> {
        let flag = match &value {
            Value::Bool(b) => Some(*b),
            Value::String(s) => parse_bool_text(s),
            _ => None,
        };
        flag.map(Flag)
            .ok_or_else(|| rejection(&value, "expected true or false"))
    }
}

/// A string, trimmed; a number is taken as its text.
pub(super) struct Text(pub String);

impl Text {
    fn read(value: Value) -> Result<Text, Rejection> {
        match value {
            Value::String(s) => Ok(Text(s.trim().to_string())),
            Value::Number(n) => Ok(Text(n.to_string())),
            other => Err(rejection(&other, "expected a string")),
        }
    }
}

/// A list of non-empty strings, each trimmed.
pub(super) struct TextList(pub Vec<String>);

impl TextList {
    fn read(value: Value) -> Result<TextList, Rejection> {
        let Value::Array(items) = value else {
            return Err(rejection(&value, "expected a list of strings"));
        };
        items
            .into_iter()
            .map(|item| match item {
                Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                other => Err(rejection(&other, "expected a list of non-empty strings")),
            })
            .collect::<Result<_, _>>()
            .map(TextList)
    }
}

/// A string that is not blank, trimmed.
pub(super) struct NonEmptyText(pub String);

impl NonEmptyText {
    pub(super) fn read(value: Value) -> Result<NonEmptyText, Rejection> {
        match value {
            Value::String(s) if !s.trim().is_empty() => Ok(NonEmptyText(s.trim().to_string())),
            other => Err(rejection(&other, "expected a non-empty string")),
        }
    }
}

/// A whole number from 0 to 1000 (0 means the default, as in the Hexiosec connector).
pub(super) struct Count(u32);

impl Count {
    fn read(value: Value) -> Result<Count, Rejection> {
        let n = match &value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if n <= 1000 => Ok(Count(n as u32)),
            _ => Err(rejection(&value, "expected a whole number from 0 to 1000")),
        }
    }

    /// The number, or `default` when absent or 0.
    pub(super) fn nonzero_or(count: Option<Count>, default: u32) -> u32 {
        match count {
            Some(Count(n)) if n > 0 => n,
            _ => default,
        }
    }
}

/// A Go-style duration (`500ms`, `1s`, `1m30s`) or a number of seconds.
pub(super) struct Seconds(Duration);

impl Seconds {
    fn read(value: Value) -> Result<Seconds, Rejection> {
        let parsed = match &value {
            Value::String(s) => parse_duration(s),
            Value::Number(n) => n
                .as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1e9)
                .map(Duration::from_secs_f64),
            _ => None,
        };
        parsed
            .map(Seconds)
            .ok_or_else(|| rejection(&value, "expected a duration such as 500ms, 1s or 2m30s"))
    }

    /// The duration, or `default` when absent or 0.
    pub(super) fn or_default(duration: Option<Seconds>, default: Duration) -> Duration {
        match duration {
            Some(Seconds(d)) if !d.is_zero() => d,
            _ => default,
        }
    }

    /// The duration (0 is a value of its own: no wait at all), or `default` when absent.
    pub(super) fn or_absent(duration: Option<Seconds>, default: Duration) -> Duration {
        duration.map_or(default, |Seconds(d)| d)
    }
}

/// A number from 0 to 1.
pub(super) struct Fraction(pub f64);

impl Fraction {
    fn read(value: Value) -> Result<Fraction, Rejection> {
        match value
            .as_f64()
            .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
        {
            Some(f) if (0.0..=1.0).contains(&f) => Ok(Fraction(f)),
            _ => Err(rejection(&value, "expected a number from 0 to 1")),
        }
    }
}

/// A base URL: https, or http to a loopback address; no query; without its trailing slash.
pub(super) struct BaseUrl(pub String);

impl BaseUrl {
    fn read(value: Value) -> Result<BaseUrl, Rejection> {
        let Text(raw) = Text::read(value)?;
        super::url::check_base_url(&raw)
            .map(BaseUrl)
            .map_err(|expected| Rejection {
                value: quoted(&raw),
                expected,
            })
    }
}

/// An Entra ID authority host (`https://`, a host and nothing after it).
pub(super) struct AuthorityUrl(pub String);

impl AuthorityUrl {
    fn read(value: Value) -> Result<AuthorityUrl, Rejection> {
        let Text(raw) = Text::read(value)?;
        check_authority_url(&raw)
            .map(AuthorityUrl)
            .map_err(|expected| Rejection {
                value: quoted(&raw),
                expected,
            })
    }
}

/// An Entra ID authority host: `https://` (Entra ID and the Azure SDKs refuse anything else), a
/// host and nothing after it; the trailing slash is dropped.
pub(super) fn check_authority_url(raw: &str) -> Result<String, &'static str> {
    match url::Url::parse(raw) {
        Ok(url)
            if url.scheme() == "https"
                && url.host().is_some()
                && matches!(url.path(), "" | "/")
                && url.query().is_none()
                && url.fragment().is_none() =>
        {
            Ok(raw.trim_end_matches('/').to_string())
        }
        _ => Err("expected an https:// authority host such as https://login.microsoftonline.com"),
    }
}

/// `asm.seed_types`: ASM seed type names (any case), at least one.
pub(super) struct SeedTypes(pub BTreeSet<SeedKind>);

impl SeedTypes {
    fn read(value: Value) -> Result<SeedTypes, Rejection> {
        let TextList(names) = TextList::read(value)?;
        if names.is_empty() {
            return Err(Rejection {
                value: quoted("[]"),
                expected: "expected at least one of domain, ipv4, ipv6, iprange",
            });
        }
        names
            .iter()
            .map(|name| {
                SeedKind::parse_loose(name).ok_or_else(|| Rejection {
                    value: quoted(name),
                    expected: "expected seed types among domain, ipv4, ipv6, iprange",
                })
            })
            .collect::<Result<_, _>>()
            .map(SeedTypes)
    }
}

/// A name among `names`, refused with `expected` otherwise.
fn one_of<T: Copy>(value: Value, names: &[(&str, T)], expected: &'static str) -> Result<T, Rejection> {
    let Text(name) = Text::read(value)?;
    names
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, kind)| *kind)
        .ok_or(Rejection {
            value: quoted(&name),
            expected,
        })
}

impl Cloud {
    fn read(value: Value) -> Result<Cloud, Rejection> {
        let names = [
            ("public", Cloud::Public),
            ("usgovernment", Cloud::UsGovernment),
            ("china", Cloud::China),
        ];
        one_of(value, &names, "expected public, usgovernment or china")
    }
}

impl CredentialKind {
    fn read(value: Value) -> Result<CredentialKind, Rejection> {
        let names = [
            ("auto", CredentialKind::Auto),
            ("managed_identity", CredentialKind::ManagedIdentity),
            ("workload_identity", CredentialKind::WorkloadIdentity),
            ("client_secret", CredentialKind::ClientSecret),
            ("client_certificate", CredentialKind::ClientCertificate),
            ("azure_cli", CredentialKind::AzureCli),
        ];
        let expected =
            "expected auto, managed_identity, workload_identity, client_secret, client_certificate or azure_cli";
        one_of(value, &names, expected)
    }
}

impl LedgerKind {
    fn read(value: Value) -> Result<LedgerKind, Rejection> {
        let names = [
            ("auto", LedgerKind::Auto),
            ("table", LedgerKind::Table),
            ("local", LedgerKind::Local),
        ];
        one_of(value, &names, "expected auto, table or local")
    }
}

/// Reads a mapping (or a list) into `T` and refuses any other shape with an error showing the
/// value; null is `None` when `null_is_absent`.
pub(super) struct Shaped<T> {
    pub want_map: bool,
    pub expected: &'static str,
    pub null_is_absent: bool,
    marker: PhantomData<T>,
}

impl<T> Shaped<T> {
    pub(super) fn map(expected: &'static str, null_is_absent: bool) -> Shaped<T> {
        Shaped {
            want_map: true,
            expected,
            null_is_absent,
            marker: PhantomData,
        }
    }

    pub(super) fn list(expected: &'static str, null_is_absent: bool) -> Shaped<T> {
        Shaped {
            want_map: false,
            ..Shaped::map(expected, null_is_absent)
        }
    }

    fn refuse<E: de::Error>(&self, value: &Value) -> Result<Option<T>, E> {
        Err(reject(&show(value), self.expected))
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Shaped<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expected)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<T>, A::Error> {
        let inner = MapAccessDeserializer::new(map);
        if self.want_map {
            return T::deserialize(inner).map(Some);
        }
        self.refuse(&Value::deserialize(inner)?)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<T>, A::Error> {
        let inner = SeqAccessDeserializer::new(seq);
        if !self.want_map {
            return T::deserialize(inner).map(Some);
        }
        self.refuse(&Value::deserialize(inner)?)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        if self.null_is_absent {
            Ok(None)
        } else {
            self.refuse(&Value::Null)
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        self.visit_unit()
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Option<T>, E> {
        self.refuse(&Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<T>, E> {
        self.refuse(&Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<T>, E> {
        self.refuse(&Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<T>, E> {
        self.refuse(&Value::from(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<T>, E> {
        self.refuse(&Value::from(v))
    }
}

/// A section of keys (`http`, `azure.endpoints`, ...): a mapping; null or absent is every
/// default.
pub(super) fn section<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    let found = deserializer.deserialize_any(Shaped::<T>::map("expected a mapping of keys", true))?;
    Ok(found.unwrap_or_default())
}
