//! An in-process ledger: unit tests, the simulation and benchmarks. Same semantics as the
//! durable backends (versions, conditions, scans), nothing survives the process.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::ledger::{Expect, Ledger, LedgerError, RawEntity, Scan, Version};

/// Entities keyed by `partition \u{1} row`, so map order is (partition, row) order.
#[derive(Default)]
pub struct MemoryLedger {
    entities: Mutex<BTreeMap<String, (u64, String)>>,
    counter: Mutex<u64>,
}

impl MemoryLedger {
    pub fn new() -> MemoryLedger {
        MemoryLedger::default()
    }

    fn next_version(&self) -> u64 {
        let mut counter = self.counter.lock().unwrap_or_else(|e| e.into_inner());
        *counter += 1;
        *counter
    }
}

pub(crate) const SEP: char = '\u{1}';

pub(crate) fn composite(partition: &str, row: &str) -> String {
    format!("{partition}{SEP}{row}")
}

pub(crate) fn split(key: &str) -> (String, String) {
    match key.split_once(SEP) {
        Some((p, r)) => (p.to_string(), r.to_string()),
        None => (key.to_string(), String::new()),
    }
}

/// The composite-key range `[from, to)` a scan covers, and a check for partition prefixes.
pub(crate) fn scan_bounds(scan: &Scan) -> (String, Option<String>) {
    match (&scan.partitions, &scan.rows) {
        (crate::ledger::Partitions::Exact(p), Some((from, to))) => (composite(p, from), Some(composite(p, to))),
        (crate::ledger::Partitions::Exact(p), None) => (format!("{p}{SEP}"), Some(format!("{p}\u{2}"))),
        (crate::ledger::Partitions::Prefix(p), _) => (p.clone(), crate::ledger::keys::prefix_end(p)),
    }
}

pub(crate) fn scan_selects(scan: &Scan, partition: &str, row: &str) -> bool {
    let partition_ok = match &scan.partitions {
        crate::ledger::Partitions::Exact(p) => p == partition,
        crate::ledger::Partitions::Prefix(p) => partition.starts_with(p.as_str()),
    };
    partition_ok
        && scan
            .rows
            .as_ref()
            .is_none_or(|(from, to)| row >= from.as_str() && row < to.as_str())
}

pub(crate) fn parse_version(version: &Version) -> Option<u64> {
    version.0.parse().ok()
}

#[async_trait]
impl Ledger for MemoryLedger {
    fn describe(&self) -> String {
        "in-memory ledger".into()
    }

    async fn get_raw(&self, partition: &str, row: &str) -> Result<Option<(String, Version)>, LedgerError> {
        let map = self.entities.lock().unwrap_or_else(|e| e.into_inner());
        Ok(map
            .get(&composite(partition, row))
            .map(|(v, data)| (data.clone(), Version(v.to_string()))))
    }

    async fn put_raw(&self, partition: &str, row: &str, data: &str, expect: &Expect) -> Result<Version, LedgerError> {
        let key = composite(partition, row);
        let version = self.next_version();
        let mut map = self.entities.lock().unwrap_or_else(|e| e.into_inner());
        let current = map.get(&key).map(|(v, _)| *v);
        let ok = match expect {
            Expect::Any => true,
            Expect::Absent => current.is_none(),
            Expect::Version(v) => current.is_some() && current == parse_version(v),
        };
        if !ok {
            return Err(LedgerError::Conflict { key: row.to_string() });
        }
        map.insert(key, (version, data.to_string()));
        Ok(Version(version.to_string()))
    }

    async fn delete_raw(&self, partition: &str, row: &str, version: Option<&Version>) -> Result<(), LedgerError> {
        let key = composite(partition, row);
        let mut map = self.entities.lock().unwrap_or_else(|e| e.into_inner());
        match (map.get(&key), version) {
            (None, _) => Ok(()),
            (Some((current, _)), Some(v)) if Some(*current) != parse_version(v) => {
                Err(LedgerError::Conflict { key: row.to_string() })
            }
            _ => {
                map.remove(&key);
                Ok(())
            }
        }
    }

    async fn scan_raw(&self, scan: &Scan) -> Result<Vec<RawEntity>, LedgerError> {
        let map = self.entities.lock().unwrap_or_else(|e| e.into_inner());
        let (from, to) = scan_bounds(scan);
        let range: Box<dyn Iterator<Item = (&String, &(u64, String))>> = match to {
            Some(to) => Box::new(map.range(from..to)),
            None => Box::new(map.range(from..)),
        };
        Ok(range
            .filter_map(|(key, (v, data))| {
                let (partition, row) = split(key);
                scan_selects(scan, &partition, &row).then(|| RawEntity {
                    partition,
                    row,
                    data: data.clone(),
                    version: Version(v.to_string()),
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::resource::ResourceId;
    use crate::ledger::{Expect, Ledger, ops};

    fn owner(subscription: &str, name: &str) -> crate::ledger::OwnerRecord {
        let id = ResourceId::parse(&format!(
            "/subscriptions/{subscription}/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/{name}"
        ))
        .unwrap();
        ops::next_record(&id, None, Vec::new(), false, 1)
    }

    /// A narrowed rebuild reads the owners of its subscriptions only, in any case spelling.
    #[tokio::test]
    async fn owners_are_read_by_subscription() {
        let ledger = MemoryLedger::new();
        for (sub, name) in [("AAA", "a1"), ("aaa", "a2"), ("bbb", "b1"), ("ccc", "c1")] {
            ledger.put_owner(&owner(sub, name), &Expect::Absent).await.unwrap();
        }
        let names = |records: Vec<crate::ledger::Versioned<crate::ledger::OwnerRecord>>| {
            let mut names: Vec<String> = records.iter().map(|r| r.value.id.name().to_string()).collect();
            names.sort();
            names
        };
        let (some, bad) = ledger
            .owners_readable_in(&["Aaa".into(), "ccc".into(), "aaa".into()])
            .await
            .unwrap();
        assert!(bad.is_empty());
        assert_eq!(names(some), ["a1", "a2", "c1"]);
        let (all, _) = ledger.all_owners_readable().await.unwrap();
        assert_eq!(names(all), ["a1", "a2", "b1", "c1"]);
        let (none, _) = ledger.owners_readable_in(&[]).await.unwrap();
        assert!(none.is_empty());
    }
}
