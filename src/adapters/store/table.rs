//! Azure Table Storage over its REST API
//! (https://learn.microsoft.com/rest/api/storageservices/table-service-rest-api), with Shared Key
//! signing (connection strings, Azurite) or Entra ID bearer tokens (identity-based storage).
//!
//! Each ledger record is one entity: `PartitionKey`, `RowKey`, the record's JSON split over
//! string properties `D0..Dn` (a string property holds at most 64 KiB) and `Chunks`. Writes are
//! conditional on the entity's ETag (`If-Match`), inserts fail on an existing entity; both
//! surface as [`LedgerError::Conflict`]. Queries follow continuation headers to the end, also
//! across empty pages.

use std::sync::Arc;

use async_trait::async_trait;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde_json::{Map, Value};

use crate::adapters::azure::TokenSource;
use crate::adapters::http::{Answer, RetryPolicy, RetryRules, SendError, send_with_retry};
use crate::adapters::store::table_failure::failure;
use crate::adapters::store::table_request::TableAttempt;
use crate::domain::secret::Secret;
use crate::ledger::{Expect, Ledger, LedgerError, Partitions, RawEntity, Scan, Version};

/// The storage data-plane token scope
/// (https://learn.microsoft.com/rest/api/storageservices/authorize-with-azure-active-directory).
pub(crate) const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";
pub(super) const API_VERSION: &str = "2019-02-02";
pub(super) const ACCEPT: &str = "application/json;odata=minimalmetadata";
/// Characters per data property: 16,000 UTF-16 code points at most 64,000 bytes.
const CHUNK_CHARS: usize = 16_000;
/// Query literal and parameter encoding: everything but unreserved characters.
const QUERY_SET: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// How requests are authorised.
#[derive(Clone)]
pub enum TableAuth {
    /// Shared Key: account name and base64 account key (connection strings, Azurite).
    SharedKey { account: String, key: Secret },
    /// Entra ID: a bearer token for [`STORAGE_SCOPE`].
    Bearer(Arc<dyn TokenSource>),
}

impl std::fmt::Debug for TableAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TableAuth::SharedKey { account, .. } => write!(f, "SharedKey({account})"),
            TableAuth::Bearer(_) => f.write_str("Bearer"),
        }
    }
}

/// A ledger in one table.
pub struct TableLedger {
    pub(super) http: reqwest::Client,
    /// The table service endpoint, without a trailing slash (`http://127.0.0.1:10002/devstoreaccount1`).
    pub(super) endpoint: String,
    table: String,
    pub(super) auth: TableAuth,
    retry: RetryPolicy,
    /// Entities per query page (`$top`); Table Storage caps pages at 1000 anyway.
    page_size: Option<u32>,
}

impl TableLedger {
    /// Connects and creates the table if it does not exist yet.
    pub async fn connect(
        http: reqwest::Client,
        endpoint: &str,
        table: &str,
        auth: TableAuth,
        retry: RetryPolicy,
    ) -> Result<TableLedger, LedgerError> {
        if !is_valid_table_name(table) {
            return Err(LedgerError::Config(format!(
                "ledger.table = {table:?}: a table name is 3-63 letters and digits, starting with a letter"
            )));
        }
        let ledger = TableLedger {
            http,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            table: table.to_string(),
            auth,
            retry,
            page_size: None,
        };
        ledger.create_table().await?;
        Ok(ledger)
    }

    /// Sets `$top` for queries (tests use small pages to exercise continuation).
    pub fn with_page_size(mut self, size: u32) -> TableLedger {
        self.page_size = Some(size.clamp(1, 1000));
        self
    }

    /// The account key an answer might echo, when requests are signed with one.
    fn secret(&self) -> Option<&Secret> {
        match &self.auth {
            TableAuth::SharedKey { key, .. } => Some(key),
            TableAuth::Bearer(_) => None,
        }
    }

    async fn create_table(&self) -> Result<(), LedgerError> {
        let body = serde_json::json!({ "TableName": self.table }).to_string();
        let answer = self
            .send(
                Method::POST,
                "Tables",
                "",
                Some(body),
                &[("Prefer", "return-no-content")],
            )
            .await?;
        if is_success(&answer) {
            return Ok(());
        }
        let failure = failure(&answer, &self.describe(), self.secret());
        match failure {
            LedgerError::Http { status: 409, .. } => Ok(()),
            other => Err(other),
        }
    }

    fn entity_path(&self, partition: &str, row: &str) -> String {
        format!(
            "{}(PartitionKey='{}',RowKey='{}')",
            self.table,
            quote_key(partition),
            quote_key(row)
        )
    }

    /// Sends one request, retrying transport failures and retryable statuses.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &str,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, LedgerError> {
        let rules = RetryRules {
            policy: self.retry,
            retry_after_ceiling: self.retry.max,
            throttle_budget: None,
        };
        let attempt = TableAttempt {
            ledger: self,
            method,
            path,
            query,
            body: body.as_deref(),
            headers,
        };
        match send_with_retry(&rules, &attempt).await {
            Ok(answer) | Err(SendError::Throttled(answer)) => Ok(answer),
            Err(SendError::Request(e)) => Err(e),
            Err(SendError::Transport { error, .. }) => Err(LedgerError::Transport {
                backend: self.describe(),
                message: error.without_url().to_string(),
            }),
        }
    }

    /// Parses an entity's data properties back into the record text.
    pub(crate) fn entity_data(entity: &Map<String, Value>, row: &str) -> Result<String, LedgerError> {
        let chunks = entity.get("Chunks").and_then(Value::as_u64).unwrap_or(1);
        let mut data = String::new();
        for i in 0..chunks {
            match entity.get(&format!("D{i}")) {
                Some(Value::String(part)) => data.push_str(part),
                _ => {
                    return Err(LedgerError::Corrupt {
                        key: row.to_string(),
                        message: format!("property D{i} is missing"),
                    });
                }
            }
        }
        Ok(data)
    }

    fn entity_body(partition: &str, row: &str, data: &str) -> String {
        let mut entity = Map::new();
        entity.insert("PartitionKey".into(), Value::String(partition.into()));
        entity.insert("RowKey".into(), Value::String(row.into()));
        let chars: Vec<char> = data.chars().collect();
        let chunks: Vec<String> = if chars.is_empty() {
            vec![String::new()]
        } else {
            chars.chunks(CHUNK_CHARS).map(|c| c.iter().collect()).collect()
        };
        entity.insert("Chunks".into(), Value::from(chunks.len() as u64));
        for (i, chunk) in chunks.into_iter().enumerate() {
            entity.insert(format!("D{i}"), Value::String(chunk));
        }
        Value::Object(entity).to_string()
    }

    fn filter(&self, scan: &Scan) -> String {
        let literal = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let mut clauses = match &scan.partitions {
            Partitions::Exact(p) => vec![format!("PartitionKey eq {}", literal(p))],
            Partitions::Prefix(p) => {
                let mut c = vec![format!("PartitionKey ge {}", literal(p))];
                if let Some(end) = crate::ledger::keys::prefix_end(p) {
                    c.push(format!("PartitionKey lt {}", literal(&end)));
                }
                c
            }
        };
        if let Some((from, to)) = &scan.rows {
            clauses.push(format!("RowKey ge {}", literal(from)));
            clauses.push(format!("RowKey lt {}", literal(to)));
        }
        clauses.join(" and ")
    }
}

fn is_success(answer: &Answer) -> bool {
    (200..300).contains(&answer.status)
}

pub(super) fn header(answer: &Answer, name: &str) -> Option<String> {
    answer
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn etag(answer: &Answer, what: &str) -> Result<Version, LedgerError> {
    header(answer, "etag").map(Version).ok_or_else(|| LedgerError::Corrupt {
        key: what.to_string(),
        message: "the response carries no ETag".into(),
    })
}

fn conflict_or(error: LedgerError, key: &str) -> LedgerError {
    match error {
        LedgerError::Http { status: 409 | 412, .. } => LedgerError::Conflict { key: key.to_string() },
        other => other,
    }
}

/// A key inside `(PartitionKey='…')`: single quotes doubled, then URL-encoded.
fn quote_key(key: &str) -> String {
    utf8_percent_encode(&key.replace('\'', "''"), QUERY_SET).to_string()
}

/// Table names: 3-63 alphanumeric characters, starting with a letter.
pub(crate) fn is_valid_table_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
}

#[async_trait]
impl Ledger for TableLedger {
    fn describe(&self) -> String {
        format!("Table Storage {}/{}", self.endpoint, self.table)
    }

    async fn get_raw(&self, partition: &str, row: &str) -> Result<Option<(String, Version)>, LedgerError> {
        let path = self.entity_path(partition, row);
        let answer = self.send(Method::GET, &path, "", None, &[]).await?;
        match answer.status {
            200 => {
                let version = etag(&answer, row)?;
                let entity: Map<String, Value> =
                    serde_json::from_slice(&answer.body).map_err(|e| LedgerError::Corrupt {
                        key: row.to_string(),
                        message: format!("entity is not a JSON object: {e}"),
                    })?;
                Ok(Some((Self::entity_data(&entity, row)?, version)))
            }
            404 => {
                let error = failure(&answer, &self.describe(), self.secret());
                match &error {
                    LedgerError::Http { code, .. } if code == "TableNotFound" => Err(error),
                    _ => Ok(None),
                }
            }
            _ => Err(failure(&answer, &self.describe(), self.secret())),
        }
    }

    async fn put_raw(&self, partition: &str, row: &str, data: &str, expect: &Expect) -> Result<Version, LedgerError> {
        let body = Self::entity_body(partition, row, data);
        let answer = match expect {
            Expect::Absent => {
                let table = self.table.clone();
                self.send(Method::POST, &table, "", Some(body), &[("Prefer", "return-no-content")])
                    .await?
            }
            Expect::Version(version) => {
                let path = self.entity_path(partition, row);
                self.send(Method::PUT, &path, "", Some(body), &[("If-Match", version.0.as_str())])
                    .await?
            }
            Expect::Any => {
                let path = self.entity_path(partition, row);
                self.send(Method::PUT, &path, "", Some(body), &[]).await?
            }
        };
        if is_success(&answer) {
            return etag(&answer, row);
        }
        let error = failure(&answer, &self.describe(), self.secret());
        Err(match (&error, expect) {
            // Replacing an entity someone deleted meanwhile: a conflict too.
            (LedgerError::Http { status: 404, code, .. }, Expect::Version(_)) if code != "TableNotFound" => {
                LedgerError::Conflict { key: row.to_string() }
            }
            _ => conflict_or(error, row),
        })
    }

    async fn delete_raw(&self, partition: &str, row: &str, version: Option<&Version>) -> Result<(), LedgerError> {
        let path = self.entity_path(partition, row);
        let if_match = version.map(|v| v.0.as_str()).unwrap_or("*");
        let answer = self
            .send(Method::DELETE, &path, "", None, &[("If-Match", if_match)])
            .await?;
        if is_success(&answer) {
            return Ok(());
        }
        match failure(&answer, &self.describe(), self.secret()) {
            LedgerError::Http { status: 404, code, .. } if code != "TableNotFound" => Ok(()),
            other => Err(conflict_or(other, row)),
        }
    }

    async fn scan_raw(&self, scan: &Scan) -> Result<Vec<RawEntity>, LedgerError> {
        let filter = utf8_percent_encode(&self.filter(scan), QUERY_SET).to_string();
        let base_query = match self.page_size {
            Some(top) => format!("$filter={filter}&$top={top}"),
            None => format!("$filter={filter}"),
        };
        let path = format!("{}()", self.table);
        let mut out = Vec::new();
        let mut next: Option<(String, Option<String>)> = None;
        loop {
            let mut query = base_query.clone();
            if let Some((partition, row)) = &next {
                query.push_str(&format!(
                    "&NextPartitionKey={}",
                    utf8_percent_encode(partition, QUERY_SET)
                ));
                if let Some(row) = row {
                    query.push_str(&format!("&NextRowKey={}", utf8_percent_encode(row, QUERY_SET)));
                }
            }
            let answer = self.send(Method::GET, &path, &query, None, &[]).await?;
            if !is_success(&answer) {
                return Err(failure(&answer, &self.describe(), self.secret()));
            }
            let next_partition = header(&answer, "x-ms-continuation-NextPartitionKey");
            let next_row = header(&answer, "x-ms-continuation-NextRowKey");
            let page: Value = serde_json::from_slice(&answer.body).map_err(|e| LedgerError::Corrupt {
                key: self.table.clone(),
                message: format!("query page is not JSON: {e}"),
            })?;
            let Some(items) = page["value"].as_array() else {
                return Err(LedgerError::Corrupt {
                    key: self.table.clone(),
                    message: "query page has no \"value\" array".into(),
                });
            };
            for item in items {
                let Some(entity) = item.as_object() else { continue };
                let text = |name: &str| entity.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
                let row = text("RowKey");
                out.push(RawEntity {
                    partition: text("PartitionKey"),
                    data: Self::entity_data(entity, &row)?,
                    version: Version(text("odata.etag")),
                    row,
                });
            }
            match next_partition {
                Some(partition) => next = Some((partition, next_row)),
                None => return Ok(out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_checked() {
        assert!(is_valid_table_name("seedwatch"));
        assert!(!is_valid_table_name("ab"));
        assert!(!is_valid_table_name("1abc"));
        assert!(!is_valid_table_name("seed-watch"));
    }

    #[test]
    fn big_records_are_split_and_joined() {
        let data = "é".repeat(CHUNK_CHARS * 2 + 5);
        let body: Map<String, Value> = serde_json::from_str(&TableLedger::entity_body("p", "r", &data)).unwrap();
        assert_eq!(body["Chunks"], 3);
        assert_eq!(TableLedger::entity_data(&body, "r").unwrap(), data);
    }
}
