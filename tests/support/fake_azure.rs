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
//! `azure.endpoints.resource_manager` at `fake.base_url()` and get tokens as production does:
//! `IDENTITY_ENDPOINT`, `IDENTITY_HEADER` and `AZURE_CLIENT_ID` (= [`FakeAzure::client_id`]).
//! Tokens are checked for audience and expiry (see `fake_azure_tokens.rs`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

#[path = "fake_azure_tokens.rs"]
mod tokens;
pub use tokens::CLIENT_ID;

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
    (
        "microsoft.compute/virtualmachinescalesets/virtualmachines/networkinterfaces/ipconfigurations/publicipaddresses",
        &["2017-03-30", "2018-10-01"],
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
    /// Token requests refused because they named an identity the app does not hold.
    pub token_refusals: u64,
}

#[derive(Default)]
struct Counters {
    graph_pages: AtomicU64,
    arm_gets: AtomicU64,
    subscription_lists: AtomicU64,
    token_requests: AtomicU64,
    throttled: AtomicU64,
    token_refusals: AtomicU64,
    tokens_minted: AtomicU64,
}

/// Faults injected for one subscription.
#[derive(Debug, Clone, Default)]
struct SubFaults {
    unauthorized: bool,
    forbidden: bool,
    hidden: bool,
    /// The identity lost the subscription (moved to another tenant, or cancelled): hidden from
    /// the list and 404 `SubscriptionNotFound` under it.
    lost: bool,
    /// Every GET under the subscription answers 404 with this body (an error code, or a
    /// garbled body).
    not_found_body: Option<String>,
    throttle_left: u32,
    /// `None`: a 429 without `Retry-After`.
    throttle_retry_after: Option<Duration>,
    throttle_answers: u32,
    server_errors_left: u32,
}

/// ARM's read token bucket for one subscription: 250 reads, refilled at 25 per second
/// (https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling).
struct ReadBucket {
    tokens: f64,
    at: Instant,
}

const ARM_READ_BUCKET: f64 = 250.0;
const ARM_READ_REFILL_PER_SECOND: f64 = 25.0;

impl ReadBucket {
    fn full() -> ReadBucket {
        ReadBucket {
            tokens: ARM_READ_BUCKET,
            at: Instant::now(),
        }
    }

    /// Takes one read: `Ok(remaining)` or `Err(wait)` until one is available.
    fn take(&mut self) -> Result<u64, Duration> {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * ARM_READ_REFILL_PER_SECOND;
        self.tokens = (self.tokens + refill).min(ARM_READ_BUCKET);
        self.at = now;
        if self.tokens < 1.0 {
            return Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / ARM_READ_REFILL_PER_SECOND,
            ));
        }
        self.tokens -= 1.0;
        Ok(self.tokens.floor() as u64)
    }
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
    /// `sub/rg`, lower-cased: resource groups exist until deleted themselves.
    resource_groups: HashSet<String>,
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
    /// Items per page of an ARM child list (`nextLink` past it).
    child_page_size: usize,
    /// KQL fragments Resource Graph refuses with 400 `InvalidQuery`.
    refused_kql: Vec<String>,
    /// Where `nextLink`s point (default: this fake), to test that a client follows them only
    /// to its own Resource Manager host.
    next_link_base: Option<String>,
    /// Rows after which a page is cut with `resultTruncated: true` and no `$skipToken`.
    truncate_after: Option<usize>,
    /// GETs of these ids (lower-cased) answer this status and error code.
    failing_gets: HashMap<String, (u16, String)>,
}

struct Shared {
    base: String,
    identity_header: String,
    estate: RwLock<Estate>,
    faults: Mutex<HashMap<String, SubFaults>>,
    settings: Mutex<Settings>,
    quota: Mutex<Quota>,
    counters: Counters,
    tokens: tokens::Tokens,
    token_clients: Mutex<Vec<String>>,
    read_buckets: Mutex<HashMap<String, ReadBucket>>,
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
                child_page_size: 100,
                refused_kql: Vec::new(),
                truncate_after: None,
                next_link_base: None,
                failing_gets: HashMap::new(),
            }),
            // Resource Graph's documented quota: 15 queries per 5 s per user.
            quota: Mutex::new(Quota {
                per_window: 15,
                window: Duration::from_secs(5),
                started: Instant::now(),
                used: 0,
            }),
            counters: Counters::default(),
            tokens: tokens::Tokens::default(),
            token_clients: Mutex::new(Vec::new()),
            read_buckets: Mutex::new(HashMap::new()),
        });
        let app = Router::new()
            .route("/msi/token", get(tokens::app_service_token))
            .route("/metadata/identity/oauth2/token", get(tokens::imds_token))
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

    /// `AZURE_CLIENT_ID`: the client id of the app's (only) user-assigned identity.
    pub fn client_id(&self) -> String {
        CLIENT_ID.to_string()
    }

    /// The managed-identity app settings the platform and the template give the app:
    /// `IDENTITY_ENDPOINT`, `IDENTITY_HEADER`, `AZURE_CLIENT_ID`.
    pub fn managed_identity_env(&self) -> Vec<(String, String)> {
        vec![
            ("IDENTITY_ENDPOINT".into(), self.identity_endpoint()),
            ("IDENTITY_HEADER".into(), self.identity_header()),
            ("AZURE_CLIENT_ID".into(), self.client_id()),
        ]
    }

    /// Gives the app a system-assigned identity too (requests naming no identity then succeed).
    pub fn add_system_assigned_identity(&self) {
        self.shared.tokens.identities.lock().unwrap().system_assigned = true;
    }

    /// Lifetime of the tokens the identity endpoints issue from now on (default one hour).
    pub fn set_token_lifetime(&self, seconds: u64) {
        *self.shared.tokens.lifetime_secs.lock().unwrap() = Some(seconds);
    }

    /// A token for `audience` minted directly, valid `lifetime_secs` from now (negative: stale),
    /// for tests that check what ARM does with a given token rather than how one is obtained.
    pub fn mint_token_for_test(&self, audience: &str, lifetime_secs: i64) -> String {
        tokens::mint(&self.shared, audience, lifetime_secs).0
    }

    /// A valid one-hour ARM token minted directly, for tests that do not run a credential
    /// (the Lambda, which never uses managed identity).
    pub fn arm_token_minted_for_test(&self) -> String {
        self.mint_token_for_test("https://management.azure.com/", 3600)
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

    /// Deletes a resource (any casing) and everything under it; deleting a resource group id
    /// deletes the group.
    pub fn delete(&self, id: &str) {
        let key = id.trim_end_matches('/').to_ascii_lowercase();
        let mut e = self.shared.estate.write().unwrap();
        let prefix = format!("{key}/");
        e.resources.retain(|k, _| *k != key && !k.starts_with(&prefix));
        if let Some(group) = resource_group_key(&key)
            && key.split('/').filter(|s| !s.is_empty()).count() == 4
        {
            e.resource_groups.remove(&group);
        }
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

    /// The identity has no role on `sub`: `GET /subscriptions` does not list it and GETs
    /// under it get 403 `AuthorizationFailed`, as ARM answers.
    pub fn hide_subscription(&self, sub: &str) {
        self.fault(sub, |f| f.hidden = true);
    }

    /// The identity lost `sub` (cancelled, or moved to another tenant): not listed, and GETs
    /// under it get 404 `SubscriptionNotFound`.
    pub fn lose_subscription(&self, sub: &str) {
        self.fault(sub, |f| f.lost = true);
    }

    /// Every GET under `sub` gets a 404 with the error `code` (`InvalidResourceType`,
    /// `NoRegisteredProviderFound`, ...), or with `body` verbatim when `code` is empty.
    pub fn answer_not_found(&self, sub: &str, code: &str, body: &str) {
        let body = if code.is_empty() {
            body.to_string()
        } else {
            json!({"error": {"code": code, "message": body}}).to_string()
        };
        self.fault(sub, |f| f.not_found_body = Some(body));
    }

    /// The next `times` requests touching `sub` get 429 with `Retry-After`, with the codes ARM
    /// uses in turn (`SubscriptionRequestsThrottled`, `TooManyRequests`,
    /// `ResourceRequestsThrottled`).
    pub fn throttle(&self, sub: &str, times: u32, retry_after: Duration) {
        self.fault(sub, |f| {
            f.throttle_left = times;
            f.throttle_retry_after = Some(retry_after);
        });
    }

    /// The next `times` requests touching `sub` get 429 with no `Retry-After` (some
    /// resource providers send none).
    pub fn throttle_without_retry_after(&self, sub: &str, times: u32) {
        self.fault(sub, |f| {
            f.throttle_left = times;
            f.throttle_retry_after = None;
        });
    }

    /// The next `times` requests touching `sub` get 503.
    pub fn fail_5xx(&self, sub: &str, times: u32) {
        self.fault(sub, |f| f.server_errors_left = times);
    }

    /// Empties `sub`'s ARM read bucket down to `remaining` reads (it refills at 25/s).
    pub fn set_reads_remaining(&self, sub: &str, remaining: u64) {
        self.shared.read_buckets.lock().unwrap().insert(
            sub.to_ascii_lowercase(),
            ReadBucket {
                tokens: remaining as f64,
                at: Instant::now(),
            },
        );
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.shared.faults.lock().unwrap().clear();
        let mut settings = self.shared.settings.lock().unwrap();
        settings.graph_throttle_left = 0;
        settings.failing_gets.clear();
    }

    /// The next `times` Resource Graph requests get 429 `RateLimiting` with `Retry-After`.
    pub fn throttle_graph(&self, times: u32, retry_after: Duration) {
        let mut s = self.shared.settings.lock().unwrap();
        s.graph_throttle_left = times;
        s.graph_throttle_retry_after = retry_after;
    }

    /// A Resource Graph quota far above Azure's (1,000,000 queries per 5 s), for tests that
    /// run many sweeps and do not test the quota.
    pub fn lax_graph_quota_for_test(&self) {
        self.set_graph_quota(1_000_000, Duration::from_secs(5));
    }

    /// Resource Graph refuses queries containing `fragment` with 400 `InvalidQuery`.
    pub fn refuse_kql(&self, fragment: &str) {
        self.shared
            .settings
            .lock()
            .unwrap()
            .refused_kql
            .push(fragment.to_ascii_lowercase());
    }

    /// Resource Graph cuts every result after `rows` rows with `resultTruncated: true` and no
    /// `$skipToken` (what it does for a query it cannot page, e.g. without a stable order).
    pub fn truncate_graph_results_after(&self, rows: usize) {
        self.shared.settings.lock().unwrap().truncate_after = Some(rows);
    }

    /// Every GET of `id` answers `status` with the error `code` (e.g. a storage account's
    /// `blobServices/default` answering 409 or 403), until [`FakeAzure::clear_faults`].
    pub fn fail_get(&self, id: &str, status: u16, code: &str) {
        let key = id.trim_end_matches('/').to_ascii_lowercase();
        self.shared
            .settings
            .lock()
            .unwrap()
            .failing_gets
            .insert(key, (status, code.to_string()));
    }

    /// `nextLink`s point at `base` (another server) instead of this fake.
    pub fn send_next_links_to(&self, base: &str) {
        self.shared.settings.lock().unwrap().next_link_base = Some(base.trim_end_matches('/').to_string());
    }

    /// Items per page of an ARM child list (default 100).
    pub fn set_child_page_size(&self, size: usize) {
        self.shared.settings.lock().unwrap().child_page_size = size.max(1);
    }

    /// Resource Graph quota: `per_window` queries per `window` (Azure's default: 15 per 5 s).
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
            token_refusals: c.token_refusals.load(Ordering::Relaxed),
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
            &c.token_refusals,
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
    if let Some(group) = resource_group_key(&key) {
        e.resource_groups.insert(group);
    }
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

/// `sub/rg` (lower-cased) for an id under a resource group.
fn resource_group_key(key: &str) -> Option<String> {
    let parts: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
    match parts.as_slice() {
        ["subscriptions", sub, "resourcegroups", rg, ..] => Some(format!("{sub}/{rg}")),
        _ => None,
    }
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

/// A 429 from ARM, with the documented codes in turn
/// (https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling).
fn throttled_answer(sub: &str, secs: u64, nth: u32) -> Response {
    let (code, message) = match nth % 3 {
        1 => (
            "SubscriptionRequestsThrottled",
            format!(
                "Number of 'read' requests for subscription '{sub}' actor '44444444' exceeded. Please try again after '{secs}' seconds."
            ),
        ),
        2 => (
            "TooManyRequests",
            "The request is being throttled as the limit has been reached for operation type - 'Read'.".to_string(),
        ),
        _ => (
            "ResourceRequestsThrottled",
            format!(
                "Number of requests for action 'Microsoft.Network/publicIPAddresses/read' exceeded the limit of '50' for time interval '00:05:00'. Please try again after '{secs}' seconds."
            ),
        ),
    };
    arm_error(StatusCode::TOO_MANY_REQUESTS, code, &message)
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
            f.throttle_answers += 1;
            shared.counters.throttled.fetch_add(1, Ordering::Relaxed);
            let secs = f.throttle_retry_after.unwrap_or_default().as_secs_f64().ceil() as u64;
            let mut r = if graph {
                let body = json!({"error": {"code": "RateLimiting", "message": "Please provide below info when asking for support: timestamp = 2025-03-01T10:15:07.0000000Z, correlationId = 00000000-0000-0000-0000-000000000000.", "details": [{"code": "RateLimiting", "message": "Client application has been throttled and should not attempt to repeat the request until an amount of time has elapsed. Please see https://aka.ms/resourcegraph-throttling for help."}]}});
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("content-type", "application/json")],
                    body.to_string(),
                )
                    .into_response()
            } else {
                throttled_answer(sub, secs, f.throttle_answers)
            };
            if let Some(wait) = f.throttle_retry_after {
                retry_after_headers(&mut r, wait);
            }
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
    if let Some(refused) = tokens::refuse_management_bearer(&shared, &headers) {
        return refused;
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
    let (page_size, link_base) = {
        let settings = shared.settings.lock().unwrap();
        let base = settings.next_link_base.clone().unwrap_or_else(|| shared.base.clone());
        (settings.subscription_page_size, base)
    };
    let skip: usize = query.get("$skiptoken").and_then(|s| s.parse().ok()).unwrap_or(0);
    let faults = shared.faults.lock().unwrap().clone();
    let estate = shared.estate.read().unwrap();
    let visible: Vec<&(String, String)> = estate
        .subscriptions
        .iter()
        .filter(|(k, _)| !faults.get(*k).is_some_and(|f| f.hidden || f.lost))
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
            "{link_base}/subscriptions?api-version=2022-12-01&%24skiptoken={}",
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
