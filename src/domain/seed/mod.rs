//! The seed model: what ASM scans from, and the one place values from Azure become seeds.
//!
//! A [`Seed`] can only be built through [`Seed::from_host_value`] or [`Seed::from_range`], so
//! every seed in the program is already normalised (parse, don't validate). Normalisation
//! follows the seed policy: URL to host, lower case, one trailing dot and one leading `*.`
//! stripped, IDN to punycode, canonical IPs, shared Microsoft parents refused.

mod listed;
mod shared;
mod special;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use listed::AsmSeed;
pub use shared::is_shared_parent;

/// The four ASM seed types, spelled as the ASM API spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeedKind {
    Domain,
    Ipv4,
    Ipv6,
    #[serde(rename = "iprange")]
    IpRange,
}

impl SeedKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SeedKind::Domain => "domain",
            SeedKind::Ipv4 => "ipv4",
            SeedKind::Ipv6 => "ipv6",
            SeedKind::IpRange => "iprange",
        }
    }

    /// Parses an ASM `type` value; ASM and the Hexiosec SDK disagree on case (`Domain`, `IPv4`).
    pub(crate) fn parse_loose(value: &str) -> Option<SeedKind> {
        match value.to_ascii_lowercase().as_str() {
            "domain" => Some(SeedKind::Domain),
            "ipv4" => Some(SeedKind::Ipv4),
            "ipv6" => Some(SeedKind::Ipv6),
            "iprange" => Some(SeedKind::IpRange),
            _ => None,
        }
    }
}

impl fmt::Display for SeedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A normalised seed. Ordered by name first, so listings read alphabetically. The name is a
/// boxed `str` (no spare capacity): a sweep of a large estate holds millions of seeds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seed {
    name: Box<str>,
    kind: SeedKind,
}

/// Why a value was not turned into a seed. The text is shown to users in warnings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeedError {
    #[error("empty value")]
    Empty,
    #[error("{0:?} is not a valid DNS name or IP address")]
    Invalid(String),
    #[error("{0:?} is a shared Microsoft name, not one the organisation owns")]
    SharedParent(String),
    #[error("{0:?} needs at least two labels")]
    SingleLabel(String),
    #[error("{0:?} is not a public address")]
    NotPublic(String),
    #[error("{0:?} is not a valid CIDR range")]
    InvalidRange(String),
}

/// Longest value we even try to normalise; anything longer cannot be a host name or URL we seed.
const MAX_INPUT_LEN: usize = 2048;

impl Seed {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> SeedKind {
        self.kind
    }

    /// Normalises a host name, URL or IP address found in a resource.
    pub fn from_host_value(raw: &str) -> Result<Seed, SeedError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(SeedError::Empty);
        }
        if trimmed.len() > MAX_INPUT_LEN || trimmed.chars().any(char::is_control) {
            return Err(SeedError::Invalid(shorten(trimmed)));
        }
        if let Ok(ip) = IpAddr::from_str(trimmed.trim_start_matches('[').trim_end_matches(']')) {
            return Seed::from_ip(ip, trimmed);
        }
        let host = host_part(trimmed).ok_or_else(|| SeedError::Invalid(shorten(trimmed)))?;
        if let Ok(ip) = IpAddr::from_str(host.trim_start_matches('[').trim_end_matches(']')) {
            return Seed::from_ip(ip, trimmed);
        }
        let mut host = host.as_str();
        host = host.strip_suffix('.').unwrap_or(host);
        host = host.strip_prefix("*.").unwrap_or(host);
        if host.is_empty() {
            return Err(SeedError::Invalid(shorten(trimmed)));
        }
        let ascii = idna::domain_to_ascii(host).map_err(|_| SeedError::Invalid(shorten(trimmed)))?;
        if !is_valid_dns_name(&ascii) {
            return Err(SeedError::Invalid(shorten(trimmed)));
        }
        if !ascii.contains('.') {
            return Err(SeedError::SingleLabel(ascii));
        }
        if is_shared_parent(&ascii) {
            return Err(SeedError::SharedParent(ascii));
        }
        Ok(Seed {
            name: ascii.into_boxed_str(),
            kind: SeedKind::Domain,
        })
    }

    /// Normalises a CIDR block (public IP prefix, custom IP prefix) to its network address.
    pub fn from_range(raw: &str) -> Result<Seed, SeedError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(SeedError::Empty);
        }
        let net = ipnet::IpNet::from_str(trimmed)
            .map_err(|_| SeedError::InvalidRange(shorten(trimmed)))?
            .trunc();
        if !special::is_public_net(net) {
            return Err(SeedError::NotPublic(shorten(trimmed)));
        }
        Ok(Seed {
            name: net.to_string().into_boxed_str(),
            kind: SeedKind::IpRange,
        })
    }

    /// Rebuilds a seed from a stored or ASM-listed name and type, normalising again so that
    /// names written by hand in another spelling compare equal.
    pub(crate) fn from_stored(name: &str, kind: SeedKind) -> Result<Seed, SeedError> {
        match kind {
            SeedKind::IpRange => Seed::from_range(name),
            _ => Seed::from_host_value(name),
        }
    }

    fn from_ip(ip: IpAddr, raw: &str) -> Result<Seed, SeedError> {
        // `::ffff:a.b.c.d` names the IPv4 host a.b.c.d; seed it in the form ASM scans.
        let ip = ip.to_canonical();
        if !special::is_public_ip(ip) {
            return Err(SeedError::NotPublic(shorten(raw)));
        }
        let kind = match ip {
            IpAddr::V4(_) => SeedKind::Ipv4,
            IpAddr::V6(_) => SeedKind::Ipv6,
        };
        Ok(Seed {
            name: ip.to_string().into_boxed_str(),
            kind,
        })
    }
}

impl fmt::Display for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Takes the host out of a URL (`https://x.example:443/path`) or a `host:port`/`host/path` value.
fn host_part(value: &str) -> Option<String> {
    if value.contains("://") {
        let url = url::Url::parse(value).ok()?;
        return url.host_str().map(str::to_string);
    }
    // Without a scheme, `?`, `#`, `@` and backslashes are not URL syntax but wildcard or junk
    // characters (`app??.contoso.com` is an App Gateway wildcard): cutting the value at them
    // would seed a different name.
    if value.contains(['?', '#', '@', '\\']) {
        return None;
    }
    if value.contains([':', '/']) {
        let url = url::Url::parse(&format!("http://{value}")).ok()?;
        return url.host_str().map(str::to_string);
    }
    Some(value.to_string())
}

/// LDH host name check after IDNA: labels of 1..=63 letters, digits and inner hyphens, at most
/// 253 characters, and a top-level label that is not all digits.
fn is_valid_dns_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = name.split('.').collect();
    let label_ok = |label: &&str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if !labels.iter().all(label_ok) {
        return false;
    }
    labels
        .last()
        .is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()))
}

fn shorten(value: &str) -> String {
    const LIMIT: usize = 120;
    if value.chars().count() <= LIMIT {
        value.to_string()
    } else {
        let mut short: String = value.chars().take(LIMIT).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests;
