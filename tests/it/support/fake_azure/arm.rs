//! The fake's ARM GETs: resources, child lists (paged), the real 404 codes, api-version
//! checks, the read bucket and access faults.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::*;

pub(super) fn arm_get(shared: &Shared, path: &str, query: &HashMap<String, String>) -> Response {
    shared.counters.arm_gets.fetch_add(1, Ordering::Relaxed);
    let key = path.to_ascii_lowercase();
    let sub = key.split('/').nth(2).unwrap_or_default().to_string();
    let Some(api_version) = query.get("api-version") else {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    };
    if let Some(answer) = access_answer(shared, &sub) {
        return answer;
    }
    if let Some(answer) = fault_answer(shared, std::slice::from_ref(&sub), false) {
        return answer;
    }
    let failing = shared.settings.lock().unwrap().failing_gets.get(&key).cloned();
    if let Some((status, code)) = failing {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return arm_error(status, &code, "injected by the test");
    }
    let remaining = match shared
        .read_buckets
        .lock()
        .unwrap()
        .entry(sub.clone())
        .or_insert_with(ReadBucket::full)
        .take()
    {
        Ok(remaining) => remaining,
        Err(wait) => {
            shared.counters.throttled.fetch_add(1, Ordering::Relaxed);
            let mut r = throttled_answer(&sub, wait.as_secs_f64().ceil() as u64, 1);
            retry_after_headers(&mut r, wait);
            return r;
        }
    };
    let estate = shared.estate.read().unwrap();
    let arm_type = lower_type_of(path);
    if let Some(bad) = check_version(&arm_type, api_version) {
        return bad;
    }
    // ARM routes by the path's type (a scale-set instance address is served under
    // Microsoft.Compute with its own versions, though its body says publicIPAddresses).
    let mut response = if let Some(stored) = estate.resources.get(&key) {
        ([("content-type", "application/json")], stored.arm.to_string()).into_response()
    } else if let Some(account) = key.strip_suffix("/blobservices/default")
        && estate
            .resources
            .get(account)
            .is_some_and(|a| a.arm_type == "microsoft.storage/storageaccounts")
    {
        // Every general-purpose v2 account has a blob service; static website off unless
        // the estate loaded a `blobServices/default` saying otherwise.
        let body = json!({
            "id": path, "name": "default", "type": "Microsoft.Storage/storageAccounts/blobServices",
            "properties": {"staticWebsite": {"enabled": false}}
        });
        ([("content-type", "application/json")], body.to_string()).into_response()
    } else if let Some((parent, collection)) = key.rsplit_once('/')
        && (estate.resources.contains_key(parent))
    {
        let page_size = shared.settings.lock().unwrap().child_page_size;
        child_page(shared, &estate, path, parent, collection, query, page_size)
    } else {
        return not_found(&estate, &key, &arm_type);
    };
    response.headers_mut().insert(
        "x-ms-ratelimit-remaining-subscription-reads",
        HeaderValue::from_str(&remaining.to_string()).unwrap(),
    );
    response
}

/// 400 `NoRegisteredProviderFound` for an api-version the type does not serve.
fn check_version(arm_type: &str, api_version: &str) -> Option<Response> {
    let allowed = API_VERSIONS.iter().find(|(ty, _)| *ty == arm_type)?.1;
    if allowed.contains(&api_version) {
        return None;
    }
    Some(arm_error(
        StatusCode::BAD_REQUEST,
        "NoRegisteredProviderFound",
        &format!(
            "No registered resource provider found for location 'westeurope' and API version '{api_version}' for type '{arm_type}'. The supported api-versions are '{}'.",
            allowed.join(", ")
        ),
    ))
}

/// What ARM answers for a subscription the identity cannot read: 403 `AuthorizationFailed`
/// when it has no role, 404 `SubscriptionNotFound` when the subscription is gone or elsewhere,
/// or the 404 a test injected.
fn access_answer(shared: &Shared, sub: &str) -> Option<Response> {
    let faults = shared.faults.lock().unwrap();
    let f = faults.get(sub)?;
    if f.lost {
        return Some(arm_error(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            &format!("The subscription '{sub}' could not be found."),
        ));
    }
    if f.hidden {
        return Some(arm_error(
            StatusCode::FORBIDDEN,
            "AuthorizationFailed",
            &format!(
                "The client '44444444-4444-4444-4444-444444444444' with object id '44444444-4444-4444-4444-444444444444' does not have authorization to perform action 'read' over scope '/subscriptions/{sub}' or the scope is invalid."
            ),
        ));
    }
    let body = f.not_found_body.clone()?;
    Some((StatusCode::NOT_FOUND, [("content-type", "application/json")], body).into_response())
}

/// The 404 ARM gives for a missing `key`: `SubscriptionNotFound`, `ResourceGroupNotFound`,
/// `ParentResourceNotFound` (a child whose parent resource is missing) or `ResourceNotFound`
/// (https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-not-found).
fn not_found(estate: &Estate, key: &str, arm_type: &str) -> Response {
    let parts: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
    let sub = parts.get(1).copied().unwrap_or_default();
    if !estate.subscriptions.contains_key(sub) {
        return arm_error(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            &format!("The subscription '{sub}' could not be found."),
        );
    }
    if let Some(group) = resource_group_key(key)
        && !estate.resource_groups.contains(&group)
    {
        let rg = parts.get(3).copied().unwrap_or_default();
        return arm_error(
            StatusCode::NOT_FOUND,
            "ResourceGroupNotFound",
            &format!("Resource group '{rg}' could not be found."),
        );
    }
    // A nested resource: `.../providers/{ns}/{type}/{name}/{child}/{name}...`.
    let providers = parts.iter().rposition(|s| *s == "providers");
    if let Some(at) = providers
        && parts.len() > at + 4
    {
        let parent = format!("/{}", parts[..at + 4].join("/"));
        if !estate.resources.contains_key(&parent) {
            return arm_error(
                StatusCode::NOT_FOUND,
                "ParentResourceNotFound",
                &format!(
                    "Can not perform requested operation on nested resource. Parent resource '{}' not found.",
                    parts[at + 3]
                ),
            );
        }
    }
    let name = parts.last().copied().unwrap_or_default();
    arm_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        &format!(
            "The Resource '{arm_type}/{name}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        ),
    )
}

/// One page of the children of `parent` in `collection`, with a `nextLink` past `page_size`.
fn child_page(
    shared: &Shared,
    estate: &Estate,
    path: &str,
    parent: &str,
    collection: &str,
    query: &HashMap<String, String>,
    page_size: usize,
) -> Response {
    let skip: usize = query.get("$skiptoken").and_then(|s| s.parse().ok()).unwrap_or(0);
    let prefix = format!("{parent}/");
    let all: Vec<&Value> = estate
        .resources
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .filter(|(_, s)| s.parent.as_deref() == Some(parent) && s.arm_type.rsplit('/').next() == Some(collection))
        .map(|(_, s)| &s.arm)
        .collect();
    let value: Vec<&Value> = all.iter().skip(skip).take(page_size).copied().collect();
    let mut body = json!({"value": value});
    if skip + page_size < all.len() {
        let api_version = query.get("api-version").cloned().unwrap_or_default();
        let base = (shared.settings.lock().unwrap().next_link_base.clone()).unwrap_or_else(|| shared.base.clone());
        body["nextLink"] = Value::String(format!(
            "{base}{path}?api-version={api_version}&%24skiptoken={}",
            skip + page_size
        ));
    }
    ([("content-type", "application/json")], body.to_string()).into_response()
}
