//! A fake ARM + Resource Graph + managed-identity token server on 127.0.0.1:0, speaking the
//! wire format of the Resource Graph, ARM and managed identity REST APIs
//! (<https://learn.microsoft.com/rest/api/azureresourcegraph/>,
//! <https://learn.microsoft.com/rest/api/resources/>):
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
//! Tokens are checked for audience and expiry (see `tokens.rs`).

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

mod arm;
mod estate;
mod graph;
mod tenancy;
mod tokens;
pub use estate::{generate_estate, public_ip};
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

/// api-versions the fake accepts per type (others: any version). From each type's ARM REST
/// reference (<https://learn.microsoft.com/rest/api/>).
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
    /// Resource Graph quota windows in which at least one query was counted.
    pub graph_windows: u64,
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
    graph_windows: AtomicU64,
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
    health: Mutex<HealthWorld>,
    read_buckets: Mutex<HashMap<String, ReadBucket>>,
    tenancy: Mutex<tenancy::Tenancy>,
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
        Self::start_with_page_latency(Duration::ZERO).await
    }

    /// As `start`, with `page_latency` added to every Resource Graph page (the sweep bench's
    /// model of a remote service; no test needs one).
    pub async fn start_with_page_latency(page_latency: Duration) -> FakeAzure {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared {
            base: format!("http://{addr}"),
            identity_header: format!("hdr-{}", addr.port()),
            estate: RwLock::new(Estate::default()),
            faults: Mutex::new(HashMap::new()),
            settings: Mutex::new(Settings {
                page_latency,
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
            health: Mutex::new(HealthWorld::default()),
            read_buckets: Mutex::new(HashMap::new()),
            tenancy: Mutex::new(tenancy::Tenancy::default()),
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

    /// A valid one-hour ARM token issued in `tenant`: it reads only that tenant's
    /// subscriptions and those delegated to it.
    pub fn arm_token_for_tenant_for_test(&self, tenant: &str) -> String {
        let token = self.arm_token_minted_for_test();
        let mut tenancy = self.shared.tenancy.lock().unwrap();
        tenancy.token_tenant.insert(token.clone(), tenant.to_string());
        token
    }

    /// Moves a subscription to another home tenant.
    pub fn place_subscription(&self, sub: &str, tenant: &str) {
        let mut tenancy = self.shared.tenancy.lock().unwrap();
        tenancy.home.insert(sub.to_ascii_lowercase(), tenant.to_string());
    }

    /// Delegates a subscription to a managing tenant (Azure Lighthouse).
    pub fn delegate_subscription(&self, sub: &str, managing_tenant: &str) {
        let mut tenancy = self.shared.tenancy.lock().unwrap();
        tenancy
            .delegated
            .insert(sub.to_ascii_lowercase(), managing_tenant.to_string());
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
            graph_windows: c.graph_windows.load(Ordering::Relaxed),
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
            &c.graph_windows,
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
    let viewer = tenancy::viewer(&shared, &headers);
    let touched = tenancy::subscriptions_touched(&lower, &body);
    if let Some(refused) = tenancy::refuse_other_tenant(&shared, viewer.as_deref(), &touched) {
        return refused;
    }
    if let Some(answer) = health_answer(&shared, &method, &lower, &query).await {
        return answer;
    }
    if method == Method::POST && lower == "/providers/microsoft.resourcegraph/resources" {
        return graph::graph(&shared, &query, &body).await;
    }
    if method != Method::GET {
        return arm_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "only GET is served");
    }
    if lower == "/subscriptions" {
        return list_subscriptions(&shared, &query, viewer.as_deref());
    }
    arm::arm_get(&shared, &path, &query)
}

fn list_subscriptions(shared: &Shared, query: &HashMap<String, String>, viewer: Option<&str>) -> Response {
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
    let tenancy = shared.tenancy.lock().unwrap();
    let visible: Vec<&(String, String)> = estate
        .subscriptions
        .iter()
        .filter(|(k, _)| !faults.get(*k).is_some_and(|f| f.hidden || f.lost))
        .filter(|(k, _)| tenancy.may_read(viewer, k))
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
                // A delegated subscription is listed under the managing tenant.
                "tenantId": viewer.map_or_else(|| tenancy.home_of(id), str::to_string),
                "homeTenantId": tenancy.home_of(id),
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

/// A JWT-shaped token: an opaque first part (`prefix`), then base64url claims, then a fake
/// signature.
fn jwt_shaped_token(prefix: &str, resource: &str) -> String {
    use base64::Engine as _;
    let claims = json!({"aud": resource, "oid": FAKE_OBJECT_ID, "appid": FAKE_CLIENT_ID, "tid": "22222222-2222-2222-2222-222222222222"});
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{prefix}.{payload}.fake-signature")
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
