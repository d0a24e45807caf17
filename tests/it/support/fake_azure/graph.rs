//! The fake's Resource Graph: tables, type filters, `$skipToken` paging, the per-user quota
//! (15 queries per 5 s by default), `resultTruncated`, refused KQL and throttling.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::*;

/// `resources | where type in~ ('a','b') | ...` → ("resources", ["a", "b"]).
fn parse_query(query: &str) -> (String, Vec<String>) {
    let table = query.split('|').next().unwrap_or_default().trim().to_ascii_lowercase();
    let lower = query.to_ascii_lowercase();
    let mut types = Vec::new();
    if let Some(start) = lower.find("type in~ (").or_else(|| lower.find("type in~(")) {
        let rest = &lower[start..];
        let open = rest.find('(').unwrap_or(0);
        let close = rest.find(')').unwrap_or(rest.len());
        for item in rest[open + 1..close].split(',') {
            types.push(item.trim().trim_matches(|c| c == '\'' || c == '"').to_string());
        }
    } else if let Some(start) = lower.find("type =~ '") {
        let rest = &lower[start + "type =~ '".len()..];
        types.push(rest.split('\'').next().unwrap_or_default().to_string());
    }
    (table, types)
}

fn table_of(arm_type: &str) -> Option<&'static str> {
    if ARM_ONLY.contains(&arm_type) {
        return None;
    }
    let dns = ["microsoft.network/dnszones/", "microsoft.network/privatednszones/"];
    if dns.iter().any(|p| arm_type.starts_with(p)) {
        Some("dnsresources")
    } else if arm_type.starts_with("microsoft.compute/virtualmachinescalesets/") {
        Some("computeresources")
    } else {
        Some("resources")
    }
}

fn quota_headers(shared: &Shared) -> (bool, u32, String) {
    let mut q = shared.quota.lock().unwrap();
    let now = Instant::now();
    if now.duration_since(q.started) >= q.window {
        q.started = now;
        q.used = 0;
    }
    let left_in_window = q.window.saturating_sub(now.duration_since(q.started));
    let over = q.used >= q.per_window;
    if !over {
        if q.used == 0 {
            shared.counters.graph_windows.fetch_add(1, Ordering::Relaxed);
        }
        q.used += 1;
    }
    let remaining = q.per_window.saturating_sub(q.used);
    let secs = left_in_window.as_secs();
    let millis = left_in_window.subsec_millis();
    let resets = if q.window < Duration::from_secs(1) || millis > 0 && secs == 0 {
        format!("00:00:00.{millis:03}")
    } else {
        format!(
            "{:02}:{:02}:{:02}",
            secs / 3600,
            (secs / 60) % 60,
            secs % 60 + u64::from(millis > 0)
        )
    };
    (over, remaining, resets)
}

pub(super) async fn graph(shared: &Arc<Shared>, query: &HashMap<String, String>, body: &Bytes) -> Response {
    shared.counters.graph_pages.fetch_add(1, Ordering::Relaxed);
    let latency = shared.settings.lock().unwrap().page_latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if query.get("api-version").is_none() {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    }
    let (over, remaining, resets) = quota_headers(shared);
    let with_quota = |mut r: Response| {
        let h = r.headers_mut();
        h.insert(
            "x-ms-user-quota-remaining",
            HeaderValue::from_str(&remaining.to_string()).unwrap(),
        );
        h.insert("x-ms-user-quota-resets-after", HeaderValue::from_str(&resets).unwrap());
        r
    };
    if over {
        shared.counters.throttled.fetch_add(1, Ordering::Relaxed);
        let body = json!({"error": {"code": "RateLimiting", "message": "Please provide below info when asking for support: timestamp = 2025-03-01T10:15:07.0000000Z, correlationId = 00000000-0000-0000-0000-000000000000.", "details": [{"code": "RateLimiting", "message": "Client application has been throttled and should not attempt to repeat the request until an amount of time has elapsed."}]}});
        return with_quota(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("content-type", "application/json")],
                body.to_string(),
            )
                .into_response(),
        );
    }
    {
        let mut s = shared.settings.lock().unwrap();
        if s.graph_throttle_left > 0 {
            s.graph_throttle_left -= 1;
            shared.counters.throttled.fetch_add(1, Ordering::Relaxed);
            let body = json!({"error": {"code": "RateLimiting", "message": "Please provide below info when asking for support.", "details": [{"code": "RateLimiting", "message": "Client application has been throttled."}]}});
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                [("content-type", "application/json")],
                body.to_string(),
            )
                .into_response();
            retry_after_headers(&mut r, s.graph_throttle_retry_after);
            return with_quota(r);
        }
    }
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => {
            return with_quota(arm_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "The request content was invalid.",
            ));
        }
    };
    let Some(kql) = request.get("query").and_then(Value::as_str) else {
        return with_quota(arm_error(StatusCode::BAD_REQUEST, "BadRequest", "query is required"));
    };
    let refused = {
        let lower = kql.to_ascii_lowercase();
        let settings = shared.settings.lock().unwrap();
        settings.refused_kql.iter().any(|f| lower.contains(f.as_str()))
    };
    if refused {
        let body = json!({"error": {"code": "InvalidQuery", "message": "Query validation error", "details": [{"code": "ParserFailure", "message": "Parser failure", "line": 1, "characterPositionInLine": 11, "token": "<EOF>"}]}});
        return with_quota(
            (
                StatusCode::BAD_REQUEST,
                [("content-type", "application/json")],
                body.to_string(),
            )
                .into_response(),
        );
    }
    let options = request.get("options").cloned().unwrap_or(Value::Null);
    if options.get("resultFormat").and_then(Value::as_str) == Some("table") {
        return with_quota(arm_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the fake serves objectArray only",
        ));
    }
    let top = options
        .get("$top")
        .and_then(Value::as_u64)
        .unwrap_or(100)
        .clamp(1, 1000) as usize;
    let skip: usize = options
        .get("$skipToken")
        .and_then(Value::as_str)
        .and_then(|t| t.strip_prefix("fake-skip:"))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let (table, types) = parse_query(kql);
    let scope: Vec<String> = {
        let estate = shared.estate.read().unwrap();
        let hidden: HashSet<String> = shared
            .faults
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, f)| f.hidden)
            .map(|(k, _)| k.clone())
            .collect();
        if let Some(subs) = request.get("subscriptions").and_then(Value::as_array) {
            subs.iter()
                .filter_map(Value::as_str)
                .map(str::to_ascii_lowercase)
                .collect()
        } else if let Some(groups) = request.get("managementGroups").and_then(Value::as_array) {
            groups
                .iter()
                .filter_map(Value::as_str)
                .flat_map(|g| {
                    estate
                        .management_groups
                        .get(&g.to_ascii_lowercase())
                        .cloned()
                        .unwrap_or_default()
                })
                .collect()
        } else {
            estate
                .subscriptions
                .keys()
                .filter(|k| !hidden.contains(*k))
                .cloned()
                .collect()
        }
    };
    if let Some(answer) = fault_answer(shared, &scope, true) {
        return with_quota(answer);
    }
    let rows = {
        let cache_key = format!("{table}|{}|{}", types.join(","), scope.join(","));
        let estate = shared.estate.read().unwrap();
        match estate.cache.get(&cache_key) {
            Some((generation, rows)) if *generation == estate.generation => rows.clone(),
            _ => {
                let scope_set: HashSet<&str> = scope.iter().map(String::as_str).collect();
                let rows: Vec<Arc<str>> = if table == "resourcecontainers" {
                    estate
                        .subscriptions
                        .iter()
                        .filter(|(k, _)| scope_set.contains(k.as_str()))
                        .map(|(_, (id, state))| {
                            Arc::from(
                                json!({"id": format!("/subscriptions/{id}"), "name": id, "type": "microsoft.resources/subscriptions", "subscriptionId": id, "properties": {"state": state}})
                                    .to_string(),
                            )
                        })
                        .collect()
                } else {
                    estate
                        .resources
                        .values()
                        .filter(|s| scope_set.contains(s.sub.as_str()))
                        .filter(|s| table_of(&s.arm_type) == Some(table.as_str()))
                        .filter(|s| types.is_empty() || types.contains(&s.arm_type))
                        .map(|s| s.row.clone())
                        .collect()
                };
                let rows = Arc::new(rows);
                drop(estate);
                let mut estate = shared.estate.write().unwrap();
                let generation = estate.generation;
                estate.cache.insert(cache_key, (generation, rows.clone()));
                rows
            }
        }
    };
    let cut = shared
        .settings
        .lock()
        .unwrap()
        .truncate_after
        .filter(|n| *n < rows.len());
    let page: Vec<&str> = match cut {
        Some(n) => rows.iter().take(n.min(top)).map(|r| &**r).collect(),
        None => rows.iter().skip(skip).take(top).map(|r| &**r).collect(),
    };
    let mut text = String::with_capacity(page.iter().map(|r| r.len() + 1).sum::<usize>() + 200);
    text.push_str(&format!(
        "{{\"totalRecords\":{},\"count\":{},\"resultTruncated\":\"{}\",\"facets\":[],",
        rows.len(),
        page.len(),
        cut.is_some()
    ));
    if cut.is_none() && skip + page.len() < rows.len() {
        text.push_str(&format!("\"$skipToken\":\"fake-skip:{}\",", skip + page.len()));
    }
    text.push_str("\"data\":[");
    text.push_str(&page.join(","));
    text.push_str("]}");
    with_quota(([("content-type", "application/json; charset=utf-8")], text).into_response())
}
