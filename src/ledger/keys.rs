//! Entity keys. Table Storage keys must not contain `/`, `\`, `#`, `?` or control characters
//! and are at most 1 KiB of UTF-16, i.e. 512 characters (Azurite answers 400 `InvalidInput` from
//! 513 on), while resource ids are full of `/` and compare case-insensitively.
//!
//! Encoding: the lower-cased text, with every byte outside `[a-z0-9.-]` written as `_XX`
//! (upper-case hex). The result uses only URL-unreserved characters (nothing to quote in a
//! request path or a filter), and encoding is a homomorphism of concatenation, so "every owner
//! below `/x`" is the row range `[enc(/x/), enc(/x/) with its last character bumped)`. Encoded
//! ids longer than [`MAX_PLAIN`] keep their first [`MAX_PLAIN`] characters and append `~` plus a
//! hash (`~` never appears otherwise); prefix scans still find them, and readers filter on the id
//! stored inside the record.

use sha2::{Digest, Sha256};

use crate::domain::resource::ResourceId;
use crate::domain::seed::Seed;
use crate::ledger::{Partitions, Scan};

/// Encoded keys up to this length are stored as they are; longer ones become this many
/// characters, `~` and a 32-character hash: 473 at most, inside Table Storage's 512.
pub(crate) const MAX_PLAIN: usize = 440;

/// Owner partitions: `o-` plus the encoded subscription id.
pub(crate) const OWNER_PARTITION_PREFIX: &str = "o-";
/// Every seed lives in this partition.
pub const SEED_PARTITION: &str = "s";
/// Every failed change lives in this partition. Distinct from [`SEED_PARTITION`], and no owner
/// partition can equal it or start with it (those all start with [`OWNER_PARTITION_PREFIX`]).
pub(crate) const FAILURE_PARTITION: &str = "f";
/// The incremental path's deletion breaker: one entity (see [`crate::ledger::breaker`]).
pub(crate) const BREAKER_PARTITION: &str = "b";

/// Encodes text for use in a key (see the module docs).
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    for byte in text.to_ascii_lowercase().bytes() {
        if byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'.' || byte == b'-' {
            out.push(byte as char);
        } else {
            out.push('_');
            out.push_str(&format!("{byte:02X}"));
        }
    }
    out
}

/// A key for arbitrary text: [`escape`], shortened with a hash when too long.
pub(crate) fn key_for(text: &str) -> String {
    let escaped = escape(text);
    if escaped.len() <= MAX_PLAIN {
        return escaped;
    }
    let digest = Sha256::digest(text.to_ascii_lowercase().as_bytes());
    let hash: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{}~{hash}", &escaped[..MAX_PLAIN])
}

/// The smallest string greater than every string that starts with `prefix`, if the last
/// character can be bumped (key characters are all below `~`).
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    let last = *prefix.as_bytes().last()?;
    if last >= b'~' {
        return None;
    }
    let mut end = prefix[..prefix.len() - 1].to_string();
    end.push((last + 1) as char);
    Some(end)
}

fn owner_partition(id: &ResourceId) -> String {
    owner_partition_of(id.subscription_id())
}

/// The partition holding the owners of one subscription.
fn owner_partition_of(subscription: &str) -> String {
    format!("{OWNER_PARTITION_PREFIX}{}", escape(subscription))
}

/// (partition, row) of an owner record.
pub fn owner_key(id: &ResourceId) -> (String, String) {
    (owner_partition(id), key_for(&id.key()))
}

/// (partition, row) of a seed record.
pub(crate) fn seed_key(seed: &Seed) -> (String, String) {
    (
        SEED_PARTITION.to_string(),
        key_for(&format!("{}:{}", seed.kind().as_str(), seed.name())),
    )
}

/// (partition, row) of a failed change: the row is the resource id, encoded like an owner's.
pub(crate) fn failure_key(id: &ResourceId) -> (String, String) {
    (FAILURE_PARTITION.to_string(), key_for(&id.key()))
}

/// (partition, row) of the deletion breaker's one entity.
pub(crate) fn breaker_key() -> (String, String) {
    (BREAKER_PARTITION.to_string(), "deletes".to_string())
}

/// The owner records of `prefix` and below: one row range in the prefix's subscription.
pub(crate) fn owners_within_scan(prefix: &ResourceId) -> Scan {
    let partitions = Partitions::Exact(owner_partition(prefix));
    let (_, own) = owner_key(prefix);
    // The range starts at the prefix itself, so it includes its own record; everything below it
    // shares the encoded prefix (cut to MAX_PLAIN for long ids).
    let start: String = own.chars().take(MAX_PLAIN).collect::<String>();
    let start = start.split('~').next().unwrap_or_default().to_string();
    let rows = if prefix.key().matches('/').count() <= 2 {
        None // a subscription: its whole partition
    } else {
        prefix_end(&start).map(|end| (start, end))
    };
    Scan { partitions, rows }
}

pub(crate) fn all_owners_scan() -> Scan {
    Scan {
        partitions: Partitions::Prefix(OWNER_PARTITION_PREFIX.into()),
        rows: None,
    }
}

/// The owners of one subscription (one partition).
pub(crate) fn owners_scan(subscription: &str) -> Scan {
    Scan {
        partitions: Partitions::Exact(owner_partition_of(subscription)),
        rows: None,
    }
}

pub(crate) fn all_seeds_scan() -> Scan {
    Scan {
        partitions: Partitions::Exact(SEED_PARTITION.into()),
        rows: None,
    }
}

pub(crate) fn all_failures_scan() -> Scan {
    Scan {
        partitions: Partitions::Exact(FAILURE_PARTITION.into()),
        rows: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The longest key Table Storage accepts, in characters.
    const MAX_KEY: usize = 512;

    /// Whether a key is one the encoder could produce (for validation in tests).
    fn is_safe_key(key: &str) -> bool {
        !key.is_empty()
            && key.len() <= MAX_KEY
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~'))
    }

    fn id(s: &str) -> ResourceId {
        ResourceId::parse(s).unwrap()
    }

    #[test]
    fn keys_are_safe_and_case_insensitive() {
        let a = id("/subscriptions/AB/resourceGroups/RG/providers/Microsoft.Network/dnszones/x.com/A/*.eu");
        let b = id("/subscriptions/ab/resourcegroups/rg/providers/microsoft.network/dnsZones/X.COM/a/*.EU");
        assert_eq!(owner_key(&a), owner_key(&b));
        let (p, r) = owner_key(&a);
        assert!(is_safe_key(&p) && is_safe_key(&r), "{p} {r}");
        assert!(!r.contains('/'));
        let seed = Seed::from_range("20.1.0.0/24").unwrap();
        let (_, r) = seed_key(&seed);
        assert!(is_safe_key(&r), "{r}");
    }

    #[test]
    fn prefix_ranges_select_exactly_the_subtree() {
        let rg = id("/subscriptions/s/resourceGroups/rg");
        let scan = owners_within_scan(&rg);
        let (from, to) = scan.rows.clone().unwrap();
        let inside = owner_key(&id(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/p",
        ))
        .1;
        let itself = owner_key(&rg).1;
        let sibling = owner_key(&id(
            "/subscriptions/s/resourceGroups/rg2/providers/Microsoft.Network/publicIPAddresses/p",
        ))
        .1;
        let within = |k: &str| k >= from.as_str() && k < to.as_str();
        assert!(within(&inside));
        assert!(within(&itself));
        // `rg2` starts with `rg`, so the range over-selects it; `owners_within` filters on the id.
        assert!(within(&sibling));
        let sibling_id = id("/subscriptions/s/resourceGroups/rg2/providers/Microsoft.Network/publicIPAddresses/p");
        assert!(!sibling_id.is_within(&rg));
    }

    #[test]
    fn long_ids_are_hashed_but_still_in_their_prefix_range() {
        let long_name = "n".repeat(1500);
        let long = id(&format!(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/{long_name}"
        ));
        let (_, row) = owner_key(&long);
        assert!(row.len() <= MAX_KEY && is_safe_key(&row), "{}", row.len());
        assert_eq!(row.len(), MAX_PLAIN + 1 + 32, "cut, `~`, hash");
        let (from, to) = owners_within_scan(&id("/subscriptions/s/resourceGroups/rg"))
            .rows
            .unwrap();
        assert!(row.as_str() >= from.as_str() && row.as_str() < to.as_str());
        let other = id(&format!(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/{long_name}x"
        ));
        assert_ne!(owner_key(&other).1, row);
    }

    #[test]
    fn failure_keys_are_safe_and_apart_from_owners_and_seeds() {
        let a = id("/subscriptions/F/resourceGroups/RG/providers/Microsoft.Network/publicIPAddresses/P");
        let b = id("/subscriptions/f/resourcegroups/rg/providers/microsoft.network/publicipaddresses/p");
        let (partition, row) = failure_key(&a);
        assert_eq!((partition.clone(), row.clone()), failure_key(&b));
        assert!(is_safe_key(&partition) && is_safe_key(&row), "{partition} {row}");
        assert_eq!(row, owner_key(&a).1, "the same row encoding as owners");
        // No owner partition (even of a subscription named `f`) and no seed lands in it, and
        // neither the owner scan nor the seed scan selects it.
        assert_ne!(owner_key(&a).0, partition);
        assert!(!partition.starts_with(OWNER_PARTITION_PREFIX));
        assert_ne!(partition, SEED_PARTITION);
        let selects = |scan: &Scan, p: &str| match &scan.partitions {
            Partitions::Exact(x) => x == p,
            Partitions::Prefix(x) => p.starts_with(x.as_str()),
        };
        assert!(!selects(&all_owners_scan(), &partition));
        assert!(!selects(&all_seeds_scan(), &partition));
        assert!(!selects(&all_failures_scan(), &owner_key(&a).0));
        assert!(!selects(&all_failures_scan(), SEED_PARTITION));
        let long = id(&format!(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/{}",
            "n".repeat(1500)
        ));
        let (_, row) = failure_key(&long);
        assert!(row.len() <= MAX_KEY && is_safe_key(&row) && row.contains('~'));
    }

    #[test]
    fn prefix_end_bumps_the_last_character() {
        assert_eq!(prefix_end("ab_2F").as_deref(), Some("ab_2G"));
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("a~"), None);
    }
}
