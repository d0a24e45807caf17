//! Resource Graph queries (azure-protocols.md section 4): whole rows, filtered by type only
//! (no seed logic in KQL), `$skipToken` paging, `objectArray` results.

use serde::Deserialize;
use serde_json::{Value, json};

use super::AzureError;
use super::arm::{Arm, Bucket};
use super::catalog::RESOURCE_GRAPH_API_VERSION;

/// The columns every sweep projects: the ARM envelope the extractors read.
pub const COLUMNS: &str =
    "id, name, type, kind, location, resourceGroup, subscriptionId, tenantId, sku, properties, tags";

/// What a query runs over.
#[derive(Debug, Clone)]
pub enum Scope {
    Subscriptions(Vec<String>),
    ManagementGroups(Vec<String>),
}

/// The KQL for whole rows of `types` from `table`. Types are lower-case constants from the
/// catalog, so quoting them is safe.
pub fn rows_query(table: &str, types: &[&str]) -> String {
    let list = types.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(",");
    format!("{table} | where type in~ ({list}) | project {COLUMNS} | order by id asc")
}

/// The subscriptions under management groups.
pub const SUBSCRIPTIONS_QUERY: &str = "resourcecontainers | where type =~ 'microsoft.resources/subscriptions' | project id, name, subscriptionId, properties | order by id asc";

#[derive(Debug, Deserialize)]
struct Page {
    #[serde(default)]
    data: Option<Value>,
    #[serde(rename = "$skipToken", default)]
    skip_token: Option<String>,
    #[serde(rename = "resultTruncated", default)]
    result_truncated: Option<Value>,
}

/// Runs `query` over `scope` and hands every page's rows to `on_page`, following `$skipToken`.
pub async fn query_pages(
    arm: &Arm,
    scope: &Scope,
    query: &str,
    what: &str,
    mut on_page: impl FnMut(Vec<Value>),
) -> Result<(), AzureError> {
    let url = arm.url(&format!(
        "/providers/Microsoft.ResourceGraph/resources?api-version={RESOURCE_GRAPH_API_VERSION}"
    ));
    let mut skip_token: Option<String> = None;
    loop {
        let mut options = json!({"$top": arm.tuning.page_size.clamp(1, 1000), "resultFormat": "objectArray"});
        if let Some(token) = &skip_token {
            options["$skipToken"] = Value::String(token.clone());
        }
        let mut body = json!({"query": query, "options": options});
        match scope {
            Scope::Subscriptions(subs) => body["subscriptions"] = json!(subs),
            Scope::ManagementGroups(groups) => body["managementGroups"] = json!(groups),
        }
        let reply = arm.post(&url, &body, Bucket::Graph, what).await?;
        if !reply.is_success() {
            return Err(reply.error(what));
        }
        let page: Page = serde_json::from_slice(&reply.body).map_err(|e| AzureError::BadResponse {
            what: what.to_string(),
            message: format!("not a Resource Graph page: {e}"),
        })?;
        let rows = match page.data {
            Some(Value::Array(rows)) => rows,
            Some(Value::Object(_)) => {
                return Err(AzureError::BadResponse {
                    what: what.to_string(),
                    message: "a table-format result came back where objectArray was asked for".into(),
                });
            }
            _ => {
                return Err(AzureError::BadResponse {
                    what: what.to_string(),
                    message: "no data array in the response".into(),
                });
            }
        };
        let truncated = match &page.result_truncated {
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
            Some(Value::Bool(b)) => *b,
            _ => false,
        };
        let next = page.skip_token.filter(|t| !t.is_empty());
        on_page(rows);
        match next {
            Some(token) => skip_token = Some(token),
            None if truncated => {
                return Err(AzureError::BadResponse {
                    what: what.to_string(),
                    message: "Resource Graph truncated the result and gave no $skipToken".into(),
                });
            }
            None => return Ok(()),
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
