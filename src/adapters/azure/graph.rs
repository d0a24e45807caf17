//! Resource Graph queries (https://learn.microsoft.com/rest/api/azureresourcegraph/resourcegraph/resources/resources):
//! whole rows, filtered by type only
//! (no seed logic in KQL), `$skipToken` paging, `objectArray` results.

use serde::Deserialize;
use serde_json::{Value, json};

use super::AzureError;
use super::arm::{Arm, Bucket};
use super::catalog::RESOURCE_GRAPH_API_VERSION;

/// The columns every sweep projects: the ARM envelope the extractors read.
pub(crate) const COLUMNS: &str =
    "id, name, type, kind, location, resourceGroup, subscriptionId, tenantId, sku, properties, tags";

/// What a query runs over.
#[derive(Debug, Clone)]
pub(crate) enum Scope {
    Subscriptions(Vec<String>),
    ManagementGroups(Vec<String>),
}

/// The KQL for whole rows of `types` from `table`. Types are lower-case constants from the
/// catalog, so quoting them is safe.
pub(crate) fn rows_query(table: &str, types: &[&str]) -> String {
    let list = types.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(",");
    format!("{table} | where type in~ ({list}) | project {COLUMNS} | order by id asc")
}

/// The subscriptions under management groups.
pub(crate) const SUBSCRIPTIONS_QUERY: &str = "resourcecontainers | where type =~ 'microsoft.resources/subscriptions' | project id, name, subscriptionId, properties | order by id asc";

/// A page's envelope, read first and cheaply (the rows are skipped) so the next page can be
/// requested while this one's rows are parsed.
#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(default)]
    data: Option<serde::de::IgnoredAny>,
    #[serde(rename = "$skipToken", default)]
    skip_token: Option<String>,
    #[serde(rename = "resultTruncated", default)]
    result_truncated: Option<Value>,
    #[serde(rename = "totalRecords", default)]
    total_records: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Rows {
    #[serde(default)]
    data: Option<Value>,
}

fn bad(what: &str, message: impl Into<String>) -> AzureError {
    AzureError::BadResponse {
        what: what.to_string(),
        message: message.into(),
    }
}

fn request_body(arm: &Arm, scope: &Scope, query: &str, skip_token: Option<&str>) -> Value {
    let mut options = json!({"$top": arm.tuning.page_size.clamp(1, 1000), "resultFormat": "objectArray"});
    if let Some(token) = skip_token {
        options["$skipToken"] = Value::String(token.to_string());
    }
    let mut body = json!({"query": query, "options": options});
    match scope {
        Scope::Subscriptions(subs) => body["subscriptions"] = json!(subs),
        Scope::ManagementGroups(groups) => body["managementGroups"] = json!(groups),
    }
    body
}

pub(crate) fn parse_rows(body: &[u8], what: &str) -> Result<Vec<Value>, AzureError> {
    let rows: Rows = serde_json::from_slice(body).map_err(|e| bad(what, format!("not a Resource Graph page: {e}")))?;
    match rows.data {
        Some(Value::Array(rows)) => Ok(rows),
        Some(Value::Object(_)) => Err(bad(
            what,
            "a table-format result came back where objectArray was asked for",
        )),
        _ => Err(bad(what, "no data array in the response")),
    }
}

/// Runs `query` over `scope` and hands every page's rows to `on_page` with the total row count
/// Resource Graph announced, following `$skipToken`. The next page is requested before the
/// current one's rows are parsed, so parsing overlaps the service's latency.
pub(crate) async fn query_pages(
    arm: &Arm,
    scope: &Scope,
    query: &str,
    what: &str,
    mut on_page: impl FnMut(Vec<Value>, Option<u64>),
) -> Result<(), AzureError> {
    let url = arm.url(&format!(
        "/providers/Microsoft.ResourceGraph/resources?api-version={RESOURCE_GRAPH_API_VERSION}"
    ));
    let mut reply = arm
        .post(&url, &request_body(arm, scope, query, None), Bucket::Graph, what)
        .await?;
    loop {
        if !reply.is_success() {
            return Err(reply.error(what));
        }
        let envelope: Envelope =
            serde_json::from_slice(&reply.body).map_err(|e| bad(what, format!("not a Resource Graph page: {e}")))?;
        if envelope.data.is_none() {
            return Err(bad(what, "no data array in the response"));
        }
        let truncated = match &envelope.result_truncated {
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
            Some(Value::Bool(b)) => *b,
            _ => false,
        };
        let total = envelope.total_records;
        match envelope.skip_token.filter(|t| !t.is_empty()) {
            Some(token) => {
                let next_body = request_body(arm, scope, query, Some(&token));
                let (next, rows) = tokio::join!(arm.post(&url, &next_body, Bucket::Graph, what), async {
                    parse_rows(&reply.body, what)
                });
                on_page(rows?, total);
                reply = next?;
            }
            None if truncated => {
                return Err(bad(what, "Resource Graph truncated the result and gave no $skipToken"));
            }
            None => {
                on_page(parse_rows(&reply.body, what)?, total);
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_shape() {
        let q = rows_query("resources", &["microsoft.web/sites", "microsoft.sql/servers"]);
        assert_eq!(
            q,
            "resources | where type in~ ('microsoft.web/sites','microsoft.sql/servers') | project id, name, type, kind, location, resourceGroup, subscriptionId, tenantId, sku, properties, tags | order by id asc"
        );
    }
}
