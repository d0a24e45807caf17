#![allow(dead_code)]
//! A fake ARM + Resource Graph + managed-identity token server on 127.0.0.1:0, speaking the
//! wire format of azure-protocols.md sections 4 to 6:
//!
//! - `POST /providers/Microsoft.ResourceGraph/resources`: tables `resources`, `dnsresources`,
//!   `resourcecontainers`; `where type in~ (...)` / `type =~ '...'` filters; `$skipToken` paging
//!   with `$top`; lower-case `type`; `resultTruncated` as a string; `x-ms-user-quota-remaining`
//!   and `x-ms-user-quota-resets-after` on every response, 429 `RateLimiting` past the quota;
//! - `GET /subscriptions` with `nextLink`; `GET {id}?api-version=` (400 without or with a wrong
//!   api-version, 404 `ResourceNotFound`); `GET {parent}/{collection}` lists children (AFD
//!   custom domains, which Resource Graph does not hold); `x-ms-ratelimit-remaining-subscription-reads`;
//! - `GET /msi/token` (App Service managed identity: `X-IDENTITY-HEADER` required, `expires_on`
//!   a string) and `GET /metadata/identity/oauth2/token` (IMDS, `Metadata: true`);
//! - faults per subscription: 401, 403 `AuthorizationFailed`, 429 with `Retry-After`, 503,
//!   hidden from the subscription list; page latency; request counters; estate mutation.
//!
//! Types Resource Graph does not hold (`ARM_ONLY`) are served by ARM only; DNS record sets
//! only by `dnsresources`.
//!
//! Use: `let fake = FakeAzure::start().await; fake.load(estate);` then point
//! `azure.endpoints.resource_manager` at `fake.base_url()` and send `Bearer {FakeAzure::TOKEN}`
//! (or a token from the managed-identity endpoint).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// Types Resource Graph does not hold: served by ARM GET/list only.
pub const ARM_ONLY: &[&str] = &[
    "microsoft.cdn/profiles/customdomains",
    "microsoft.cdn/profiles/secrets",
    "microsoft.cdn/profiles/afdendpoints/routes",
    "microsoft.storage/storageaccounts/blobservices",
    "microsoft.web/sites/hostnamebindings",
    "microsoft.web/staticsites/customdomains",
    "microsoft.sql/servers/firewallrules",
];

/// api-versions the fake accepts per type (others: any version). From azure-resources.md.
const API_VERSIONS: &[(&str, &[&str])] = &[
    (
        "microsoft.network/publicipaddresses",
        &["2024-05-01", "2024-07-01", "2025-03-01"],
    ),
    ("microsoft.network/applicationgateways", &["2024-05-01", "2025-03-01"]),
    ("microsoft.network/frontdoors", &["2021-06-01"]),
    ("microsoft.cdn/profiles", &["2024-09-01", "2025-06-01"]),
    ("microsoft.cdn/profiles/afdendpoints", &["2024-09-01", "2025-06-01"]),
    ("microsoft.cdn/profiles/customdomains", &["2024-09-01", "2025-06-01"]),
    ("microsoft.cdn/profiles/endpoints", &["2024-09-01", "2025-06-01"]),
    ("microsoft.network/trafficmanagerprofiles", &["2022-04-01"]),
    ("microsoft.network/dnszones", &["2018-05-01"]),
    ("microsoft.network/dnszones/a", &["2018-05-01"]),
    ("microsoft.network/dnszones/aaaa", &["2018-05-01"]),
    ("microsoft.network/dnszones/cname", &["2018-05-01"]),
    ("microsoft.storage/storageaccounts", &["2023-05-01", "2025-08-01"]),
    ("microsoft.storage/storageaccounts/blobservices", &["2025-08-01"]),
    ("microsoft.web/sites", &["2024-04-01", "2024-11-01"]),
    ("microsoft.web/sites/slots", &["2024-04-01", "2024-11-01"]),
    ("microsoft.sql/servers", &["2023-08-01"]),
    ("microsoft.documentdb/databaseaccounts", &["2024-11-15"]),
    ("microsoft.cache/redis", &["2024-11-01"]),
];

/// Request counts by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Resource Graph POSTs (each page is one).
    pub graph_pages: u64,
    /// ARM GETs of a resource or a child collection.
    pub arm_gets: u64,
    /// `GET /subscriptions` pages.
    pub subscription_lists: u64,
    /// Managed-identity token requests (App Service and IMDS).
    pub token_requests: u64,
    /// 429 answers given.
    pub throttled: u64,
}

#[derive(Default)]
struct Counters {
    graph_pages: AtomicU64,
    arm_gets: AtomicU64,
    subscription_lists: AtomicU64,
    token_requests: AtomicU64,
    throttled: AtomicU64,
}

/// Faults injected for one subscription.
#[derive(Debug, Clone, Default)]
struct SubFaults {
    unauthorized: bool,
    forbidden: bool,
    hidden: bool,
    throttle_left: u32,
    throttle_retry_after: Duration,
    server_errors_left: u32,
    reads_remaining: Option<u64>,
}

struct Stored {
    sub: String,
    arm_type: String,
    parent: Option<String>,
    arm: Value,
    row: Arc<str>,
}

/// Materialised Resource Graph rows for one query and scope.
type Rows = Arc<Vec<Arc<str>>>;

#[derive(Default)]
struct Estate {
    resources: BTreeMap<String, Stored>,
    subscriptions: BTreeMap<String, (String, String)>,
    management_groups: HashMap<String, Vec<String>>,
    generation: u64,
    cache: HashMap<String, (u64, Rows)>,
}

struct Quota {
    per_window: u32,
    window: Duration,
    started: Instant,
    used: u32,
}

struct Settings {
    page_latency: Duration,
    subscription_page_size: usize,
    graph_throttle_left: u32,
    graph_throttle_retry_after: Duration,
}

struct Shared {
    base: String,
    identity_header: String,
    estate: RwLock<Estate>,
    faults: Mutex<HashMap<String, SubFaults>>,
    settings: Mutex<Settings>,
    quota: Mutex<Quota>,
    counters: Counters,
    tokens: Mutex<HashSet<String>>,
    token_clients: Mutex<Vec<String>>,
    health: Mutex<HealthWorld>,
}

/// The running fake. Dropping it stops the server.
pub struct FakeAzure {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeAzure {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeAzure {
    /// A token the fake always accepts.
    pub const TOKEN: &'static str = "fake-arm-token";

    /// Starts on 127.0.0.1 with a free port and an empty estate.
    pub async fn start() -> FakeAzure {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared {
            base: format!("http://{addr}"),
            identity_header: format!("hdr-{}", addr.port()),
            estate: RwLock::new(Estate::default()),
            faults: Mutex::new(HashMap::new()),
            settings: Mutex::new(Settings {
                page_latency: Duration::ZERO,
                subscription_page_size: 50,
                graph_throttle_left: 0,
                graph_throttle_retry_after: Duration::ZERO,
            }),
            quota: Mutex::new(Quota {
                per_window: 1_000_000,
                window: Duration::from_secs(5),
                started: Instant::now(),
                used: 0,
            }),
            counters: Counters::default(),
            tokens: Mutex::new(HashSet::from([FakeAzure::TOKEN.to_string()])),
            token_clients: Mutex::new(Vec::new()),
            health: Mutex::new(HealthWorld::default()),
        });
        let app = Router::new()
            .route("/msi/token", get(app_service_token))
            .route("/metadata/identity/oauth2/token", get(imds_token))
            .route("/metadata/instance", get(imds_instance))
            .fallback(dispatch)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeAzure { shared, task }
    }

    /// The ARM / Resource Graph base URL (`http://127.0.0.1:port`).
    pub fn base_url(&self) -> String {
        self.shared.base.clone()
    }

    /// `IDENTITY_ENDPOINT` for the App Service managed-identity protocol.
    pub fn identity_endpoint(&self) -> String {
        format!("{}/msi/token", self.shared.base)
    }

    /// `IDENTITY_HEADER`: the value the token endpoint requires in `X-IDENTITY-HEADER`.
    pub fn identity_header(&self) -> String {
        self.shared.identity_header.clone()
    }

    /// Replaces the estate with ARM objects (ARM or Resource Graph shape). Subscriptions are
    /// registered from the ids, state `Enabled`.
    pub fn load(&self, estate: Vec<Value>) {
        let mut e = self.shared.estate.write().unwrap();
        e.resources.clear();
        for item in estate {
            insert(&mut e, item);
        }
        e.generation += 1;
        e.cache.clear();
    }

    /// Adds or replaces one resource.
    pub fn upsert(&self, resource: Value) {
        let mut e = self.shared.estate.write().unwrap();
        insert(&mut e, resource);
        e.generation += 1;
    }

    /// Deletes a resource (any casing) and everything under it.
    pub fn delete(&self, id: &str) {
        let key = id.trim_end_matches('/').to_ascii_lowercase();
        let mut e = self.shared.estate.write().unwrap();
        let prefix = format!("{key}/");
        e.resources.retain(|k, _| *k != key && !k.starts_with(&prefix));
        e.generation += 1;
    }

    /// Registers a subscription (e.g. one with no resources, or `Disabled`).
    pub fn add_subscription(&self, id: &str, state: &str) {
        let mut e = self.shared.estate.write().unwrap();
        e.subscriptions
            .insert(id.to_ascii_lowercase(), (id.to_string(), state.to_string()));
        e.generation += 1;
    }

    /// A management group holding these subscriptions.
    pub fn add_management_group(&self, name: &str, subscriptions: &[&str]) {
        let mut e = self.shared.estate.write().unwrap();
        e.management_groups.insert(
            name.to_ascii_lowercase(),
            subscriptions.iter().map(|s| s.to_ascii_lowercase()).collect(),
        );
        e.generation += 1;
    }

    /// The subscription ids in the estate.
    pub fn subscriptions(&self) -> Vec<String> {
        self.shared
            .estate
            .read()
            .unwrap()
            .subscriptions
            .values()
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn fault(&self, sub: &str, f: impl FnOnce(&mut SubFaults)) {
        let mut faults = self.shared.faults.lock().unwrap();
        f(faults.entry(sub.to_ascii_lowercase()).or_default());
    }

    /// Every request touching `sub` gets 403 `AuthorizationFailed` (the identity lacks Reader).
    pub fn forbid(&self, sub: &str) {
        self.fault(sub, |f| f.forbidden = true);
    }

    /// Every request touching `sub` gets 401 `InvalidAuthenticationToken`.
    pub fn unauthorize(&self, sub: &str) {
        self.fault(sub, |f| f.unauthorized = true);
    }

    /// `GET /subscriptions` does not list `sub` (the identity has no role on it).
    pub fn hide_subscription(&self, sub: &str) {
        self.fault(sub, |f| f.hidden = true);
    }

    /// The next `times` requests touching `sub` get 429 with `Retry-After`.
    pub fn throttle(&self, sub: &str, times: u32, retry_after: Duration) {
        self.fault(sub, |f| {
            f.throttle_left = times;
            f.throttle_retry_after = retry_after;
        });
    }

    /// The next `times` requests touching `sub` get 503.
    pub fn fail_5xx(&self, sub: &str, times: u32) {
        self.fault(sub, |f| f.server_errors_left = times);
    }

    /// The value of `x-ms-ratelimit-remaining-subscription-reads` for ARM reads in `sub`.
    pub fn set_reads_remaining(&self, sub: &str, remaining: u64) {
        self.fault(sub, |f| f.reads_remaining = Some(remaining));
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.shared.faults.lock().unwrap().clear();
        self.shared.settings.lock().unwrap().graph_throttle_left = 0;
    }

    /// The next `times` Resource Graph requests get 429 `RateLimiting` with `Retry-After`.
    pub fn throttle_graph(&self, times: u32, retry_after: Duration) {
        let mut s = self.shared.settings.lock().unwrap();
        s.graph_throttle_left = times;
        s.graph_throttle_retry_after = retry_after;
    }

    /// Resource Graph quota: `per_window` queries per `window` (Azure: 15 per 5 s).
    pub fn set_graph_quota(&self, per_window: u32, window: Duration) {
        let mut q = self.shared.quota.lock().unwrap();
        *q = Quota {
            per_window,
            window,
            started: Instant::now(),
            used: 0,
        };
    }

    /// Latency added to every Resource Graph page.
    pub fn set_page_latency(&self, latency: Duration) {
        self.shared.settings.lock().unwrap().page_latency = latency;
    }

    /// Subscriptions per `GET /subscriptions` page.
    pub fn set_subscription_page_size(&self, size: usize) {
        self.shared.settings.lock().unwrap().subscription_page_size = size.max(1);
    }

    pub fn counts(&self) -> Counts {
        let c = &self.shared.counters;
        Counts {
            graph_pages: c.graph_pages.load(Ordering::Relaxed),
            arm_gets: c.arm_gets.load(Ordering::Relaxed),
            subscription_lists: c.subscription_lists.load(Ordering::Relaxed),
            token_requests: c.token_requests.load(Ordering::Relaxed),
            throttled: c.throttled.load(Ordering::Relaxed),
        }
    }

    pub fn reset_counts(&self) {
        let c = &self.shared.counters;
        for counter in [
            &c.graph_pages,
            &c.arm_gets,
            &c.subscription_lists,
            &c.token_requests,
            &c.throttled,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }

    /// The `client_id` / `object_id` / `msi_res_id` / `mi_res_id` each token request named
    /// ("" for system-assigned).
    pub fn token_clients(&self) -> Vec<String> {
        self.shared.token_clients.lock().unwrap().clone()
    }
}

fn lower_type_of(id: &str) -> String {
    let segments: Vec<&str> = id.split('/').filter(|s| !s.is_empty()).collect();
    let Some(pos) = segments.iter().rposition(|s| s.eq_ignore_ascii_case("providers")) else {
        return String::new();
    };
    let rest = &segments[pos + 1..];
    let mut parts = vec![rest.first().copied().unwrap_or_default().to_string()];
    parts.extend(rest.iter().skip(1).step_by(2).map(|s| s.to_string()));
    parts.join("/").to_ascii_lowercase()
}

fn insert(e: &mut Estate, mut item: Value) {
    let Some(id) = item
        .get("id")
        .and_then(Value::as_str)
        .map(|s| s.trim_end_matches('/').to_string())
    else {
        return;
    };
    let key = id.to_ascii_lowercase();
    let sub_original = id.split('/').nth(2).unwrap_or_default().to_string();
    let sub = sub_original.to_ascii_lowercase();
    let arm_type = item
        .get("type")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .unwrap_or_else(|| lower_type_of(&id));
    if item.get("type").is_none() {
        item["type"] = Value::String(arm_type.clone());
    }
    let parent = key.rsplitn(3, '/').nth(2).map(str::to_string);
    let mut row = item.clone();
    if let Some(map) = row.as_object_mut() {
        map.insert("type".into(), Value::String(arm_type.clone()));
        map.insert("subscriptionId".into(), Value::String(sub_original.clone()));
        map.insert(
            "tenantId".into(),
            Value::String("22222222-2222-2222-2222-222222222222".into()),
        );
        let rg = id.split('/').nth(4).unwrap_or_default().to_ascii_lowercase();
        map.insert("resourceGroup".into(), Value::String(rg));
        for column in ["kind", "location", "sku", "properties", "tags"] {
            map.entry(column).or_insert(Value::Null);
        }
        map.retain(|k, _| {
            matches!(
                k.as_str(),
                "id" | "name"
                    | "type"
                    | "kind"
                    | "location"
                    | "resourceGroup"
                    | "subscriptionId"
                    | "tenantId"
                    | "sku"
                    | "properties"
                    | "tags"
            )
        });
    }
    let row: Arc<str> = Arc::from(row.to_string());
    e.subscriptions
        .entry(sub.clone())
        .or_insert_with(|| (sub_original, "Enabled".to_string()));
    e.resources.insert(
        key,
        Stored {
            sub,
            arm_type,
            parent,
            arm: item,
            row,
        },
    );
}

fn arm_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message}});
    (
        status,
        [("content-type", "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

fn retry_after_headers(response: &mut Response, wait: Duration) {
    let secs = wait.as_secs_f64().ceil() as u64;
    let h = response.headers_mut();
    h.insert("retry-after", HeaderValue::from_str(&secs.to_string()).unwrap());
    h.insert(
        "retry-after-ms",
        HeaderValue::from_str(&wait.as_millis().to_string()).unwrap(),
    );
}

/// The fault answer for a request touching `subs`, if any.
fn fault_answer(shared: &Shared, subs: &[String], graph: bool) -> Option<Response> {
    let mut faults = shared.faults.lock().unwrap();
    for sub in subs {
        let Some(f) = faults.get_mut(sub) else { continue };
        if f.unauthorized {
            return Some(arm_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "The access token is invalid.",
            ));
        }
        if f.forbidden {
            let message = format!(
                "The client '44444444-4444-4444-4444-444444444444' with object id '44444444-4444-4444-4444-444444444444' does not have authorization to perform action 'Microsoft.ResourceGraph/resources/read' over scope '/subscriptions/{sub}' or the scope is invalid. If access was recently granted, please refresh your credentials."
            );
            return Some(arm_error(StatusCode::FORBIDDEN, "AuthorizationFailed", &message));
        }
        if f.throttle_left > 0 {
            f.throttle_left -= 1;
            shared.counters.throttled.fetch_add(1, Ordering::Relaxed);
            let secs = f.throttle_retry_after.as_secs_f64().ceil() as u64;
            let mut r = if graph {
                let body = json!({"error": {"code": "RateLimiting", "message": "Please provide below info when asking for support: timestamp = 2025-03-01T10:15:07.0000000Z, correlationId = 00000000-0000-0000-0000-000000000000.", "details": [{"code": "RateLimiting", "message": "Client application has been throttled and should not attempt to repeat the request until an amount of time has elapsed. Please see https://aka.ms/resourcegraph-throttling for help."}]}});
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("content-type", "application/json")],
                    body.to_string(),
                )
                    .into_response()
            } else {
                arm_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "SubscriptionRequestsThrottled",
                    &format!(
                        "Number of 'read' requests for subscription '{sub}' actor '44444444' exceeded. Please try again after '{secs}' seconds."
                    ),
                )
            };
            retry_after_headers(&mut r, f.throttle_retry_after);
            return Some(r);
        }
        if f.server_errors_left > 0 {
            f.server_errors_left -= 1;
            return Some(arm_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "The service is temporarily unavailable.",
            ));
        }
    }
    None
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(token) = value.strip_prefix("Bearer ") else {
        return false;
    };
    shared.tokens.lock().unwrap().contains(token)
}

fn issue_token(shared: &Shared, resource: &str, client: String) -> Response {
    shared.counters.token_requests.fetch_add(1, Ordering::Relaxed);
    shared.token_clients.lock().unwrap().push(client);
    let n = shared.counters.token_requests.load(Ordering::Relaxed);
    let token = jwt_shaped_token(n, resource);
    shared.tokens.lock().unwrap().insert(token.clone());
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let body = json!({
        "access_token": token,
        "expires_on": expires.to_string(),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": "33333333-3333-3333-3333-333333333333"
    });
    ([("content-type", "application/json")], body.to_string()).into_response()
}

fn user_assigned(q: &HashMap<String, String>) -> String {
    ["client_id", "object_id", "principal_id", "msi_res_id", "mi_res_id"]
        .iter()
        .find_map(|k| q.get(*k).map(|v| format!("{k}={v}")))
        .unwrap_or_default()
}

async fn app_service_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let header = headers.get("x-identity-header").and_then(|v| v.to_str().ok());
    if header != Some(shared.identity_header.as_str()) {
        return (StatusCode::UNAUTHORIZED, "missing or wrong X-IDENTITY-HEADER").into_response();
    }
    let (Some(resource), Some(_)) = (q.get("resource"), q.get("api-version")) else {
        return (StatusCode::BAD_REQUEST, "resource and api-version are required").into_response();
    };
    issue_token(&shared, resource, user_assigned(&q))
}

async fn imds_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if headers.get("metadata").and_then(|v| v.to_str().ok()) != Some("true") {
        return (StatusCode::BAD_REQUEST, "Required metadata header not specified").into_response();
    }
    let Some(resource) = q.get("resource") else {
        return (StatusCode::BAD_REQUEST, "resource is required").into_response();
    };
    issue_token(&shared, resource, user_assigned(&q))
}

async fn imds_instance(headers: HeaderMap) -> Response {
    if headers.get("metadata").and_then(|v| v.to_str().ok()) != Some("true") {
        return (StatusCode::BAD_REQUEST, "Required metadata header not specified").into_response();
    }
    (
        [("content-type", "application/json")],
        r#"{"compute":{"azEnvironment":"AzurePublicCloud"}}"#,
    )
        .into_response()
}

async fn dispatch(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_end_matches('/').to_string();
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let lower = path.to_ascii_lowercase();
    if !authorized(&shared, &headers) {
        return arm_error(
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing or invalid.",
        );
    }
    if let Some(answer) = health_answer(&shared, &method, &lower, &query).await {
        return answer;
    }
    if method == Method::POST && lower == "/providers/microsoft.resourcegraph/resources" {
        return graph(&shared, &query, &body).await;
    }
    if method != Method::GET {
        return arm_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "only GET is served");
    }
    if lower == "/subscriptions" {
        return list_subscriptions(&shared, &query);
    }
    arm_get(&shared, &path, &query)
}

fn list_subscriptions(shared: &Shared, query: &HashMap<String, String>) -> Response {
    shared.counters.subscription_lists.fetch_add(1, Ordering::Relaxed);
    if query.get("api-version").is_none() {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    }
    let page_size = shared.settings.lock().unwrap().subscription_page_size;
    let skip: usize = query.get("$skiptoken").and_then(|s| s.parse().ok()).unwrap_or(0);
    let faults = shared.faults.lock().unwrap().clone();
    let estate = shared.estate.read().unwrap();
    let visible: Vec<&(String, String)> = estate
        .subscriptions
        .iter()
        .filter(|(k, _)| !faults.get(*k).is_some_and(|f| f.hidden))
        .map(|(_, v)| v)
        .collect();
    let value: Vec<Value> = visible
        .iter()
        .skip(skip)
        .take(page_size)
        .map(|(id, state)| {
            json!({
                "id": format!("/subscriptions/{id}"),
                "subscriptionId": id,
                "tenantId": "22222222-2222-2222-2222-222222222222",
                "displayName": format!("Subscription {id}"),
                "state": state,
                "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "EnterpriseAgreement_2014-09-01", "spendingLimit": "Off"},
                "authorizationSource": "RoleBased"
            })
        })
        .collect();
    let mut body = json!({"value": value});
    if skip + page_size < visible.len() {
        body["nextLink"] = Value::String(format!(
            "{}/subscriptions?api-version=2022-12-01&%24skiptoken={}",
            shared.base,
            skip + page_size
        ));
    }
    ([("content-type", "application/json")], body.to_string()).into_response()
}

fn arm_get(shared: &Shared, path: &str, query: &HashMap<String, String>) -> Response {
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
    if let Some(answer) = fault_answer(shared, std::slice::from_ref(&sub), false) {
        return answer;
    }
    let remaining = shared
        .faults
        .lock()
        .unwrap()
        .get(&sub)
        .and_then(|f| f.reads_remaining)
        .unwrap_or(249);
    let estate = shared.estate.read().unwrap();
    let arm_type = lower_type_of(path);
    let check_version = |t: &str| -> Option<Response> {
        let allowed = API_VERSIONS.iter().find(|(ty, _)| *ty == t)?.1;
        if allowed.contains(&api_version.as_str()) {
            return None;
        }
        Some(arm_error(
            StatusCode::BAD_REQUEST,
            "NoRegisteredProviderFound",
            &format!(
                "No registered resource provider found for location 'westeurope' and API version '{api_version}' for type '{t}'. The supported api-versions are '{}'.",
                allowed.join(", ")
            ),
        ))
    };
    let mut response = if let Some(stored) = estate.resources.get(&key) {
        if let Some(bad) = check_version(&stored.arm_type) {
            return bad;
        }
        ([("content-type", "application/json")], stored.arm.to_string()).into_response()
    } else if let Some((parent, collection)) = key.rsplit_once('/')
        && (estate.resources.contains_key(parent))
    {
        if let Some(bad) = check_version(&arm_type) {
            return bad;
        }
        let value: Vec<&Value> = estate
            .resources
            .range(format!("{parent}/")..)
            .take_while(|(k, _)| k.starts_with(&format!("{parent}/")))
            .filter(|(_, s)| s.parent.as_deref() == Some(parent) && s.arm_type.rsplit('/').next() == Some(collection))
            .map(|(_, s)| &s.arm)
            .collect();
        (
            [("content-type", "application/json")],
            json!({"value": value}).to_string(),
        )
            .into_response()
    } else {
        let name = path.rsplit('/').next().unwrap_or_default();
        return arm_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            &format!(
                "The Resource '{arm_type}/{name}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            ),
        );
    };
    response.headers_mut().insert(
        "x-ms-ratelimit-remaining-subscription-reads",
        HeaderValue::from_str(&remaining.to_string()).unwrap(),
    );
    response
}

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

async fn graph(shared: &Arc<Shared>, query: &HashMap<String, String>, body: &Bytes) -> Response {
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
    let page: Vec<&str> = rows.iter().skip(skip).take(top).map(|r| &**r).collect();
    let mut text = String::with_capacity(page.iter().map(|r| r.len() + 1).sum::<usize>() + 200);
    text.push_str(&format!(
        "{{\"totalRecords\":{},\"count\":{},\"resultTruncated\":\"false\",\"facets\":[],",
        rows.len(),
        page.len()
    ));
    if skip + page.len() < rows.len() {
        text.push_str(&format!("\"$skipToken\":\"fake-skip:{}\",", skip + page.len()));
    }
    text.push_str("\"data\":[");
    text.push_str(&page.join(","));
    text.push_str("]}");
    with_quota(([("content-type", "application/json; charset=utf-8")], text).into_response())
}

/// A Standard, static IPv4 public IP address at `id` holding `ip`, as ARM and Resource Graph
/// return it; its name is the last segment of `id`.
pub fn public_ip(id: &str, ip: &str) -> Value {
    json!({
        "id": id,
        "name": id.rsplit('/').next().unwrap(),
        "type": "Microsoft.Network/publicIPAddresses",
        "location": "westeurope",
        "sku": {"name": "Standard", "tier": "Regional"},
        "tags": {},
        "properties": {
            "provisioningState": "Succeeded",
            "ipAddress": ip,
            "publicIPAllocationMethod": "Static",
            "publicIPAddressVersion": "IPv4"
        }
    })
}

/// A deterministic estate of `resources` resources spread over `subscriptions` subscriptions,
/// in a realistic mix of the policy's types (public IPs, DNS records, sites, storage, AFD, ...).
/// ARM-only children (AFD custom domains, blobServices) are included and count.
pub fn generate_estate(subscriptions: usize, resources: usize, seed: u64) -> Vec<Value> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let subs: Vec<String> = (0..subscriptions.max(1))
        .map(|i| format!("{:08x}-0000-4000-8000-{:012x}", seed as u32, i))
        .collect();
    let mut out = Vec::with_capacity(resources);
    let mut i = 0usize;
    while out.len() < resources {
        let sub = &subs[i % subs.len()];
        let rg = format!("/subscriptions/{sub}/resourceGroups/rg-{}", i % 50);
        let roll = next() % 100;
        let n = i;
        match roll {
            0..=34 => out.push(json!({
                "id": format!("{rg}/providers/Microsoft.Network/publicIPAddresses/pip-{n}"),
                "name": format!("pip-{n}"), "type": "Microsoft.Network/publicIPAddresses", "location": "westeurope",
                "sku": {"name": "Standard", "tier": "Regional"}, "tags": {},
                "properties": {"provisioningState": "Succeeded", "ipAddress": format!("20.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255),
                  "publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4",
                  "dnsSettings": {"domainNameLabel": format!("app{n}"), "fqdn": format!("app{n}.westeurope.cloudapp.azure.com")}}
            })),
            35..=54 => out.push(json!({
                "id": format!("{rg}/providers/Microsoft.Network/dnszones/zone{}.example.com/A/host{n}", n % 100),
                "name": format!("host{n}"), "type": "Microsoft.Network/dnszones/A",
                "properties": {"fqdn": format!("host{n}.zone{}.example.com.", n % 100), "TTL": 3600,
                  "ARecords": [{"ipv4Address": "203.0.113.10"}], "provisioningState": "Succeeded"}
            })),
            55..=64 => out.push(json!({
                "id": format!("{rg}/providers/Microsoft.Network/dnszones/zone{}.example.com/CNAME/www{n}", n % 100),
                "name": format!("www{n}"), "type": "Microsoft.Network/dnszones/CNAME",
                "properties": {"fqdn": format!("www{n}.zone{}.example.com.", n % 100), "TTL": 3600,
                  "CNAMERecord": {"cname": format!("app{n}.azurewebsites.net")}}
            })),
            65..=76 => out.push(json!({
                "id": format!("{rg}/providers/Microsoft.Web/sites/app{n}"),
                "name": format!("app{n}"), "type": "Microsoft.Web/sites", "kind": "app,linux", "location": "westeurope", "tags": {},
                "properties": {"state": "Running", "enabled": true, "publicNetworkAccess": "Enabled",
                  "defaultHostName": format!("app{n}.azurewebsites.net"),
                  "hostNames": [format!("app{n}.azurewebsites.net"), format!("www{n}.contoso.com")],
                  "enabledHostNames": [format!("app{n}.azurewebsites.net"), format!("app{n}.scm.azurewebsites.net")],
                  "siteConfig": {"linuxFxVersion": "DOCKER|nginx", "ipSecurityRestrictions": [{"ipAddress": "Any", "action": "Allow"}]}}
            })),
            77..=81 => {
                let account = format!("{rg}/providers/Microsoft.Storage/storageAccounts/st{n}");
                out.push(json!({
                    "id": account, "name": format!("st{n}"), "type": "Microsoft.Storage/storageAccounts", "kind": "StorageV2",
                    "location": "westeurope", "sku": {"name": "Standard_LRS", "tier": "Standard"}, "tags": {},
                    "properties": {"provisioningState": "Succeeded", "publicNetworkAccess": "Enabled",
                      "networkAcls": {"defaultAction": "Allow", "bypass": "AzureServices", "ipRules": [], "virtualNetworkRules": []},
                      "primaryEndpoints": {"blob": format!("https://st{n}.blob.core.windows.net/"), "web": format!("https://st{n}.z6.web.core.windows.net/")}}
                }));
                if n.is_multiple_of(2) && out.len() < resources {
                    out.push(json!({
                        "id": format!("{account}/blobServices/default"), "name": "default",
                        "type": "Microsoft.Storage/storageAccounts/blobServices",
                        "properties": {"staticWebsite": {"enabled": n.is_multiple_of(4), "indexDocument": "index.html"}}
                    }));
                }
            }
            82..=84 => {
                let profile = format!("{rg}/providers/Microsoft.Cdn/profiles/afd{n}");
                out.push(json!({
                    "id": profile, "name": format!("afd{n}"), "type": "Microsoft.Cdn/profiles", "kind": "frontdoor",
                    "location": "Global", "sku": {"name": "Standard_AzureFrontDoor"},
                    "properties": {"resourceState": "Active", "frontDoorId": "00000000-0000-0000-0000-000000000000"}
                }));
                if out.len() < resources {
                    out.push(json!({
                        "id": format!("{profile}/afdendpoints/web{n}"), "name": format!("web{n}"),
                        "type": "Microsoft.Cdn/profiles/afdendpoints", "location": "Global",
                        "properties": {"hostName": format!("web{n}-b2c3d4e5f6g7h8i9.z01.azurefd.net"), "enabledState": "Enabled"}
                    }));
                }
                if out.len() < resources {
                    out.push(json!({
                        "id": format!("{profile}/customdomains/www{n}"), "name": format!("www{n}"),
                        "type": "Microsoft.Cdn/profiles/customdomains",
                        "properties": {"hostName": format!("edge{n}.contoso.com"), "domainValidationState": "Approved"}
                    }));
                }
            }
            85..=88 => out.push(json!({
                "id": format!("{rg}/providers/Microsoft.Sql/servers/sql{n}"),
                "name": format!("sql{n}"), "type": "Microsoft.Sql/servers", "location": "westeurope",
                "properties": {"fullyQualifiedDomainName": format!("sql{n}.database.windows.net"), "publicNetworkAccess": "Enabled", "state": "Ready"}
            })),
            89..=92 => out.push(json!({
                "id": format!("{rg}/providers/Microsoft.KeyVault/vaults/kv{n}"),
                "name": format!("kv{n}"), "type": "Microsoft.KeyVault/vaults", "location": "westeurope",
                "properties": {"vaultUri": format!("https://kv{n}.vault.azure.net/"), "publicNetworkAccess": "Enabled"}
            })),
            93..=95 => out.push(json!({
                "id": format!("{rg}/providers/Microsoft.DocumentDB/databaseAccounts/cosmos{n}"),
                "name": format!("cosmos{n}"), "type": "Microsoft.DocumentDB/databaseAccounts", "kind": "GlobalDocumentDB", "location": "westeurope",
                "properties": {"documentEndpoint": format!("https://cosmos{n}.documents.azure.com:443/"), "publicNetworkAccess": "Enabled",
                  "locations": [{"locationName": "West Europe", "documentEndpoint": format!("https://cosmos{n}-westeurope.documents.azure.com:443/")}]}
            })),
            96..=97 => out.push(json!({
                "id": format!("{rg}/providers/Microsoft.Cache/Redis/redis{n}"),
                "name": format!("redis{n}"), "type": "Microsoft.Cache/Redis", "location": "westeurope",
                "properties": {"hostName": format!("redis{n}.redis.cache.windows.net"), "publicNetworkAccess": "Enabled", "port": 6379, "sslPort": 6380}
            })),
            _ => out.push(json!({
                "id": format!("{rg}/providers/Microsoft.Compute/virtualMachines/vm{n}"),
                "name": format!("vm{n}"), "type": "Microsoft.Compute/virtualMachines", "location": "westeurope",
                "properties": {"vmId": format!("{n}"), "hardwareProfile": {"vmSize": "Standard_B2s"}}
            })),
        }
        i += 1;
    }
    out
}

// ---- Health reads: role assignments, Event Grid system topics and subscriptions ----
//
// What `seedwatch check` reads through ARM with Reader. By default the identity holds Reader on
// every subscription of the estate, and each subscription has a system topic with one event
// subscription delivering to the app's `resource-events` function; the setters below take
// those away one subscription at a time. Tokens are JWT-shaped (an opaque first part, then
// base64url claims with `oid` and `appid`), as the identity endpoints issue them.

/// The identity's object id (the principal role assignments name).
pub const FAKE_OBJECT_ID: &str = "44444444-4444-4444-4444-444444444444";
/// The identity's client id (the token response's `client_id`, the token's `appid`).
pub const FAKE_CLIENT_ID: &str = "33333333-3333-3333-3333-333333333333";
const READER_ROLE_ID: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
const APP_FUNCTION_ID: &str = "/subscriptions/99999999-0000-4000-8000-000000000009/resourceGroups/rg-seedwatch/providers/Microsoft.Web/sites/seedwatch-app/functions/resource-events";

#[derive(Default)]
struct HealthWorld {
    without_reader: HashSet<String>,
    without_event_subscription: HashSet<String>,
    event_subscription_state: HashMap<String, String>,
    graph_gate: Option<tokio::sync::watch::Sender<bool>>,
}

fn jwt_shaped_token(n: u64, resource: &str) -> String {
    use base64::Engine as _;
    let claims = json!({"aud": resource, "oid": FAKE_OBJECT_ID, "appid": FAKE_CLIENT_ID, "tid": "22222222-2222-2222-2222-222222222222"});
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("fake-mi-token-{n}.{payload}.fake-signature")
}

impl FakeAzure {
    fn health(&self, f: impl FnOnce(&mut HealthWorld)) {
        f(&mut self.shared.health.lock().unwrap());
    }

    /// The identity holds no role assignment on `sub` (reads may still work: combine with
    /// [`FakeAzure::forbid`] for an identity without any role there).
    pub fn remove_reader(&self, sub: &str) {
        self.health(|h| {
            h.without_reader.insert(sub.to_ascii_lowercase());
        });
    }

    /// `sub` has its system topic but no event subscription to the app.
    pub fn remove_event_subscription(&self, sub: &str) {
        self.health(|h| {
            h.without_event_subscription.insert(sub.to_ascii_lowercase());
        });
    }

    /// The event subscription of `sub` reports this `provisioningState` (e.g. `Failed`).
    pub fn set_event_subscription_state(&self, sub: &str, state: &str) {
        self.health(|h| {
            h.event_subscription_state
                .insert(sub.to_ascii_lowercase(), state.to_string());
        });
    }

    /// Resource Graph requests wait until [`FakeAzure::release_graph`] (a sweep held open).
    pub fn hold_graph(&self) {
        self.health(|h| h.graph_gate = Some(tokio::sync::watch::channel(true).0));
    }

    pub fn release_graph(&self) {
        self.health(|h| {
            if let Some(gate) = &h.graph_gate {
                gate.send_replace(false);
            }
        });
    }
}

async fn health_answer(
    shared: &Shared,
    method: &Method,
    lower: &str,
    query: &HashMap<String, String>,
) -> Option<Response> {
    if *method == Method::POST && lower == "/providers/microsoft.resourcegraph/resources" {
        let gate = shared.health.lock().unwrap().graph_gate.as_ref().map(|g| g.subscribe());
        if let Some(mut gate) = gate {
            let _ = gate.wait_for(|held| !held).await;
        }
        return None;
    }
    if *method != Method::GET {
        return None;
    }
    let segments: Vec<&str> = lower.trim_start_matches('/').split('/').collect();
    let sub = match segments.as_slice() {
        [
            "subscriptions",
            sub,
            "providers",
            "microsoft.authorization",
            "roleassignments",
        ]
        | ["subscriptions", sub, "providers", "microsoft.eventgrid", "systemtopics"]
        | [
            "subscriptions",
            sub,
            "resourcegroups",
            "rg-seedwatch-events",
            "providers",
            "microsoft.eventgrid",
            "systemtopics",
            _,
            "eventsubscriptions",
        ] => sub.to_string(),
        _ => return None,
    };
    if query.get("api-version").is_none() {
        return Some(arm_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ));
    }
    if let Some(answer) = fault_answer(shared, std::slice::from_ref(&sub), false) {
        return Some(answer);
    }
    let Some(original) = shared
        .estate
        .read()
        .unwrap()
        .subscriptions
        .get(&sub)
        .map(|(id, _)| id.clone())
    else {
        return Some(arm_error(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            &format!("The subscription '{sub}' could not be found."),
        ));
    };
    let health = shared.health.lock().unwrap();
    let value = match segments[segments.len() - 1] {
        "roleassignments" => role_assignments(&health, &original, query),
        "systemtopics" => vec![system_topic(&original)],
        _ => event_subscriptions(&health, &original),
    };
    Some(
        (
            [("content-type", "application/json")],
            json!({"value": value}).to_string(),
        )
            .into_response(),
    )
}

fn topic_id(sub: &str) -> String {
    format!(
        "/subscriptions/{sub}/resourceGroups/rg-seedwatch-events/providers/Microsoft.EventGrid/systemTopics/seedwatch-{sub}"
    )
}

/// `$filter=atScope() and assignedTo('{objectId}')`: the principal's assignments at or above
/// the scope; another principal's filter gets none of ours.
fn role_assignments(health: &HealthWorld, sub: &str, query: &HashMap<String, String>) -> Vec<Value> {
    let filter = query.get("$filter").map(|f| f.to_ascii_lowercase()).unwrap_or_default();
    let for_us = filter.is_empty() || filter.contains(&format!("assignedto('{FAKE_OBJECT_ID}')"));
    if !for_us || health.without_reader.contains(&sub.to_ascii_lowercase()) {
        return Vec::new();
    }
    vec![json!({
        "id": format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments/5f1c8a60-0000-4000-8000-00000000000a"),
        "name": "5f1c8a60-0000-4000-8000-00000000000a",
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{READER_ROLE_ID}"),
            "principalId": FAKE_OBJECT_ID,
            "principalType": "ServicePrincipal",
            "scope": format!("/subscriptions/{sub}")
        }
    })]
}

fn system_topic(sub: &str) -> Value {
    json!({
        "id": topic_id(sub),
        "name": format!("seedwatch-{sub}"),
        "type": "Microsoft.EventGrid/systemTopics",
        "location": "global",
        "properties": {
            "source": format!("/subscriptions/{sub}"),
            "topicType": "Microsoft.Resources.Subscriptions",
            "provisioningState": "Succeeded",
            "metricResourceId": "00000000-0000-4000-8000-00000000000b"
        }
    })
}

fn event_subscriptions(health: &HealthWorld, sub: &str) -> Vec<Value> {
    let key = sub.to_ascii_lowercase();
    if health.without_event_subscription.contains(&key) {
        return Vec::new();
    }
    let state = health
        .event_subscription_state
        .get(&key)
        .cloned()
        .unwrap_or_else(|| "Succeeded".into());
    vec![json!({
        "id": format!("{}/eventSubscriptions/seedwatch-0", topic_id(sub)),
        "name": "seedwatch-0",
        "type": "Microsoft.EventGrid/systemTopics/eventSubscriptions",
        "properties": {
            "topic": format!("/subscriptions/{sub}"),
            "provisioningState": state,
            "destination": {
                "endpointType": "AzureFunction",
                "properties": {"resourceId": APP_FUNCTION_ID, "maxEventsPerBatch": 1, "preferredBatchSizeInKilobytes": 64}
            },
            "filter": {
                "includedEventTypes": ["Microsoft.Resources.ResourceWriteSuccess", "Microsoft.Resources.ResourceDeleteSuccess"],
                "advancedFilters": [{"operatorType": "StringIn", "key": "data.operationName", "values": ["Microsoft.Network/publicIPAddresses/write"]}],
                "enableAdvancedFilteringOnArrays": true
            },
            "eventDeliverySchema": "EventGridSchema",
            "retryPolicy": {"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440}
        }
    })]
}
