//! The embedded local ledger: one redb file. Every write is its own transaction, committed
//! durably before it returns, so a crash loses nothing that was acknowledged. Versions come
//! from one counter kept in the same file, so a deleted and re-created entity never reuses a
//! version a slow reader may still hold.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableTable, TableDefinition};

use crate::ledger::memory::{composite, parse_version, scan_bounds, scan_selects, split};
use crate::ledger::{Expect, Ledger, LedgerError, RawEntity, Scan, Version};

const ENTITIES: TableDefinition<&str, (u64, &str)> = TableDefinition::new("entities");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const VERSION_COUNTER: &str = "version";

pub struct LocalLedger {
    db: Arc<Database>,
    path: PathBuf,
}

impl LocalLedger {
    /// Opens (creating it and its directory if needed) the ledger file at `path`.
    pub fn open(path: &Path) -> Result<LocalLedger, LedgerError> {
        let err = |message: String| LedgerError::Local {
            path: path.display().to_string(),
            message,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create directory {}: {e}", dir.display())))?;
        }
        let db = Database::create(path).map_err(|e| err(format!("cannot open: {e}")))?;
        let tx = db.begin_write().map_err(|e| err(e.to_string()))?;
        tx.open_table(ENTITIES).map_err(|e| err(e.to_string()))?;
        tx.open_table(META).map_err(|e| err(e.to_string()))?;
        tx.commit().map_err(|e| err(e.to_string()))?;
        Ok(LocalLedger {
            db: Arc::new(db),
            path: path.to_path_buf(),
        })
    }

    /// Runs blocking redb work off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, LocalFailure> + Send + 'static,
    ) -> Result<T, LedgerError> {
        let db = self.db.clone();
        let path = self.path.display().to_string();
        match tokio::task::spawn_blocking(move || work(&db)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(LocalFailure::Conflict(key))) => Err(LedgerError::Conflict { key }),
            Ok(Err(LocalFailure::Store(message))) => Err(LedgerError::Local { path, message }),
            Err(join) => Err(LedgerError::Local {
                path,
                message: format!("ledger task failed: {join}"),
            }),
        }
    }
}

enum LocalFailure {
    Conflict(String),
    Store(String),
}

fn store<E: std::fmt::Display>(e: E) -> LocalFailure {
    LocalFailure::Store(e.to_string())
}

#[async_trait]
impl Ledger for LocalLedger {
    fn describe(&self) -> String {
        format!("local ledger {}", self.path.display())
    }

    async fn get_raw(&self, partition: &str, row: &str) -> Result<Option<(String, Version)>, LedgerError> {
        let key = composite(partition, row);
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(store)?;
            let table = tx.open_table(ENTITIES).map_err(store)?;
            let found = table.get(key.as_str()).map_err(store)?;
            Ok(found.map(|guard| {
                let (version, data) = guard.value();
                (data.to_string(), Version(version.to_string()))
            }))
        })
        .await
    }

    async fn put_raw(&self, partition: &str, row: &str, data: &str, expect: &Expect) -> Result<Version, LedgerError> {
        let key = composite(partition, row);
        let row = row.to_string();
        let data = data.to_string();
        let expect = expect.clone();
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(store)?;
            let version = {
                let mut table = tx.open_table(ENTITIES).map_err(store)?;
                let current = table.get(key.as_str()).map_err(store)?.map(|g| g.value().0);
                let ok = match &expect {
                    Expect::Any => true,
                    Expect::Absent => current.is_none(),
                    Expect::Version(v) => current.is_some() && current == parse_version(v),
                };
                if !ok {
                    return Err(LocalFailure::Conflict(row));
                }
                let mut meta = tx.open_table(META).map_err(store)?;
                let next = meta
                    .get(VERSION_COUNTER)
                    .map_err(store)?
                    .map(|g| g.value())
                    .unwrap_or(0)
                    + 1;
                meta.insert(VERSION_COUNTER, next).map_err(store)?;
                table.insert(key.as_str(), (next, data.as_str())).map_err(store)?;
                next
            };
            tx.commit().map_err(store)?;
            Ok(Version(version.to_string()))
        })
        .await
    }

    async fn delete_raw(&self, partition: &str, row: &str, version: Option<&Version>) -> Result<(), LedgerError> {
        let key = composite(partition, row);
        let row = row.to_string();
        let expected = version.map(parse_version);
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(store)?;
            {
                let mut table = tx.open_table(ENTITIES).map_err(store)?;
                let current = table.get(key.as_str()).map_err(store)?.map(|g| g.value().0);
                match (current, expected) {
                    (None, _) => return Ok(()),
                    (Some(c), Some(e)) if Some(c) != e => return Err(LocalFailure::Conflict(row)),
                    _ => {
                        table.remove(key.as_str()).map_err(store)?;
                    }
                }
            }
            tx.commit().map_err(store)?;
            Ok(())
        })
        .await
    }

    async fn scan_raw(&self, scan: &Scan) -> Result<Vec<RawEntity>, LedgerError> {
        let scan = scan.clone();
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(store)?;
            let table = tx.open_table(ENTITIES).map_err(store)?;
            let (from, to) = scan_bounds(&scan);
            let range = match &to {
                Some(to) => table.range(from.as_str()..to.as_str()).map_err(store)?,
                None => table.range(from.as_str()..).map_err(store)?,
            };
            let mut out = Vec::new();
            for item in range {
                let (key, value) = item.map_err(store)?;
                let (partition, row) = split(key.value());
                if scan_selects(&scan, &partition, &row) {
                    let (version, data) = value.value();
                    out.push(RawEntity {
                        partition,
                        row,
                        data: data.to_string(),
                        version: Version(version.to_string()),
                    });
                }
            }
            Ok(out)
        })
        .await
    }
}
