//! A fake Hexiosec ASM API on 127.0.0.1 (the Hexiosec ASM REST API the connector uses), for tests.
//!
//! Wire format: `x-hexiosec-api-key` checked on every request before anything else, scripted
//! faults included (wrong or missing → 401; only an outage, which takes the whole service down,
//! answers first);
//! `GET /api/auth` → `{"authenticated": true}`; `GET /api/v1/scans/{id}` → the scan or 404;
//! `GET /api/v1/scans/{id}/seeds?expand=tags` → a JSON array of `{id, name, type, tags}`;
//! `POST /api/v1/scans/{id}/seeds` with `{name, type, tags}` (type case-insensitive) → 201 with
//! the created seed, or 400 `{"code", "message"}` for a duplicate, a value that is not of its
//! type (`INVALID_SEED`: a domain name sent as `ipv4`...), a type the plan does not include
//! (`SEED_TYPE_NOT_IN_PLAN`) or the plan's seed limit; `DELETE /api/v1/scans/{id}/seeds/{seedId}` → 204, or 404.
//!
//! The plan: ranges (`iprange`) are "not included in all plans" (docs "Seeds and IPs"), so by
//! default the fake's plan refuses them, the strictest plan the documentation describes; IPv6,
//! a documented seed type, is accepted (the Hexiosec connector's "not currently supported" is
//! that connector skipping IPv6, not the API refusing it). A test that needs ranges says so
//! with [`FakeAsm::plan_with_ranges`]; [`FakeAsm::set_plan_seed_types`] models any plan.
//!
//! Faults: scripted per route ([`FakeAsm::fail_next`]: 429 with `Retry-After`, any status,
//! dropped connections, delays, 400 with or without `code`), persistent rejections of a name,
//! an outage switch (every request 503) and a latency applied *after* the work is done (the
//! server applied the write, the client may never hear back). Every write is journaled.
//!
//! ```ignore
//! let asm = FakeAsm::start("key").await;
//! asm.add_scan("scan-1");
//! asm.insert_seed("scan-1", "manual.example.org", "domain", &["manual"]);
//! asm.fail_next(Route::Add, 2, Fault::TooManyRequests { retry_after: Some("1".into()) });
//! // point asm.base_url at asm.base_url() ...
//! assert_eq!(asm.applied_writes("scan-1"), 3);
//! ```

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

/// The route a request went to, for scripting faults and counting requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// Matches every request.
    Any,
    Auth,
    Scan,
    List,
    Add,
    Delete,
    /// Matches adds and deletes.
    Writes,
    Unknown,
}

impl Route {
    fn matches(self, actual: Route) -> bool {
        self == Route::Any || self == actual || (self == Route::Writes && matches!(actual, Route::Add | Route::Delete))
    }
}

/// A scripted fault for the next matching requests.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 429, with `Retry-After` set to this text (seconds or an HTTP date) when given.
    TooManyRequests { retry_after: Option<String> },
    /// Any status with a small JSON body (500, 502, 503, 501...).
    Status(u16),
    /// Close the connection without answering.
    Drop,
    /// Answer normally after this delay (the work is done after the delay too).
    Delay(Duration),
    /// 400 with this body: `{"code": ..., "message": ...}`, or only the message without a code.
    BadRequest { code: Option<String>, message: String },
}

/// The shape of the seed listing, to test client tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListShape {
    /// `[{...}]` with tags as strings (the documented shape).
    Array,
    /// `{"data": [...]}`.
    DataWrapper,
    /// `{"seeds": [...]}`.
    SeedsWrapper,
    /// `[{...}]` with tags as `{"id", "name"}` objects.
    TagObjects,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeSeed {
    pub id: String,
    pub name: String,
    /// The type as the seed was created (`domain`, `ipv4`...), lower case.
    pub kind: String,
    pub tags: Vec<String>,
}

/// One write request as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub scan: String,
    /// `POST` or `DELETE`.
    pub method: String,
    /// The seed name (adds) or seed id (deletes); empty when a fault answered before parsing.
    pub target: String,
    pub status: u16,
}

impl JournalEntry {
    /// Whether the write changed the scan.
    pub fn applied(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Default)]
struct State {
    key: String,
    scans: HashMap<String, Vec<FakeSeed>>,
    faults: VecDeque<(Route, usize, Fault)>,
    rejected: HashMap<String, Option<String>>,
    outage: bool,
    /// `GET /auth` answers `{"authenticated": false}` (a key the API knows but does not accept).
    not_authenticated: bool,
    latency: Duration,
    seed_limit: Option<usize>,
    list_shape: Option<ListShape>,
    /// Seed types the plan includes (lower case); see the module documentation.
    plan_types: Vec<String>,
    journal: Vec<JournalEntry>,
    requests: Vec<(Route, u16)>,
    seen: Vec<Route>,
    next_id: u64,
}

impl State {
    /// Takes one use of the first scripted fault matching `route`.
    fn take_fault(&mut self, route: Route) -> Option<Fault> {
        let index = self.faults.iter().position(|(r, _, _)| r.matches(route))?;
        let entry = self.faults.get_mut(index)?;
        entry.1 -= 1;
        let fault = entry.2.clone();
        if entry.1 == 0 {
            self.faults.remove(index);
        }
        Some(fault)
    }
}

type Shared = Arc<Mutex<State>>;

/// The running fake. Stops when dropped.
pub struct FakeAsm {
    addr: SocketAddr,
    state: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeAsm {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeAsm {
    /// Starts the fake on 127.0.0.1 with a free port; `key` is the only API key it accepts.
    pub async fn start(key: &str) -> FakeAsm {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake ASM");
        let addr = listener.local_addr().expect("fake ASM address");
        let state: Shared = Arc::new(Mutex::new(State {
            key: key.to_string(),
            plan_types: ["domain", "ipv4", "ipv6"].map(str::to_string).to_vec(),
            ..State::default()
        }));
        let shared = state.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let state = state.clone();
                        async move { handle(state, req.map(Body::new)).await }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        FakeAsm { addr, state, server }
    }

    /// The API root to configure as `asm.base_url`: `http://127.0.0.1:PORT/api`.
    pub fn base_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut state = self.state.lock().expect("fake ASM state");
        f(&mut state)
    }

    /// Creates an empty scan.
    pub fn add_scan(&self, scan: &str) {
        self.with(|s| {
            s.scans.entry(scan.to_string()).or_default();
        });
    }

    /// Puts a seed in a scan as if added earlier (by hand or by a connector); returns its id.
    pub fn insert_seed(&self, scan: &str, name: &str, kind: &str, tags: &[&str]) -> String {
        self.with(|s| {
            s.next_id += 1;
            let id = format!("seed-{:04}-{}", s.next_id, uuid::Uuid::new_v4());
            s.scans.entry(scan.to_string()).or_default().push(FakeSeed {
                id: id.clone(),
                name: name.to_string(),
                kind: kind.to_string(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
            });
            id
        })
    }

    pub fn seeds(&self, scan: &str) -> Vec<FakeSeed> {
        self.with(|s| s.scans.get(scan).cloned().unwrap_or_default())
    }

    pub fn seed_names(&self, scan: &str) -> BTreeSet<String> {
        self.seeds(scan).into_iter().map(|s| s.name).collect()
    }

    /// Names of the seeds carrying `tag`.
    pub fn tagged_names(&self, scan: &str, tag: &str) -> BTreeSet<String> {
        self.seeds(scan)
            .into_iter()
            .filter(|s| s.tags.iter().any(|t| t == tag))
            .map(|s| s.name)
            .collect()
    }

    /// The next `times` requests matching `route` get `fault` (faults queue in order).
    pub fn fail_next(&self, route: Route, times: usize, fault: Fault) {
        if times > 0 {
            self.with(|s| s.faults.push_back((route, times, fault)));
        }
    }

    /// Every add of `name` gets a 400, with this `code` or (None) without one.
    pub fn reject_name(&self, name: &str, code: Option<&str>) {
        self.with(|s| {
            s.rejected.insert(name.to_ascii_lowercase(), code.map(str::to_string));
        });
    }

    /// While on, every request gets 503.
    pub fn set_outage(&self, on: bool) {
        self.with(|s| s.outage = on);
    }

    /// `GET /auth` with the right key answers 200 `{"authenticated": false}`.
    pub fn set_not_authenticated(&self, on: bool) {
        self.with(|s| s.not_authenticated = on);
    }

    /// Every answer is held back this long, after the work is done.
    pub fn set_latency(&self, latency: Duration) {
        self.with(|s| s.latency = latency);
    }

    /// The plan's seed limit per scan: adds beyond it get 400 `SEED_LIMIT_REACHED`.
    pub fn set_seed_limit(&self, limit: Option<usize>) {
        self.with(|s| s.seed_limit = limit);
    }

    /// A plan that includes IP ranges (not every plan does; the default plan refuses them).
    pub fn plan_with_ranges(&self) {
        self.set_plan_seed_types(&["domain", "ipv4", "ipv6", "iprange"]);
    }

    /// The seed types the plan includes; adds of another type get 400 `SEED_TYPE_NOT_IN_PLAN`.
    pub fn set_plan_seed_types(&self, types: &[&str]) {
        self.with(|s| s.plan_types = types.iter().map(|t| t.to_ascii_lowercase()).collect());
    }

    pub fn set_list_shape(&self, shape: ListShape) {
        self.with(|s| s.list_shape = Some(shape));
    }

    /// Every write request seen, in order.
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.with(|s| s.journal.clone())
    }

    pub fn clear_journal(&self) {
        self.with(|s| {
            s.journal.clear();
            s.requests.clear();
            s.seen.clear();
        });
    }

    /// Writes that changed `scan` (each one re-runs a real scan).
    pub fn applied_writes(&self, scan: &str) -> usize {
        self.journal().iter().filter(|e| e.scan == scan && e.applied()).count()
    }

    /// Applied adds and deletes of `scan`.
    pub fn applied(&self, scan: &str, method: &str) -> usize {
        self.journal()
            .iter()
            .filter(|e| e.scan == scan && e.method == method && e.applied())
            .count()
    }

    /// Write requests of any outcome (faults included).
    pub fn write_attempts(&self) -> usize {
        self.journal().len()
    }

    /// Requests that reached the fake on `route` (dropped and abandoned ones included).
    pub fn requests(&self, route: Route) -> usize {
        self.with(|s| s.seen.iter().filter(|r| route.matches(**r)).count())
    }

    /// Statuses answered on `route`, in order (0 for a dropped connection; a request the client
    /// gave up on before the answer is missing).
    pub fn statuses(&self, route: Route) -> Vec<u16> {
        self.with(|s| {
            s.requests
                .iter()
                .filter(|(r, _)| route.matches(*r))
                .map(|(_, status)| *status)
                .collect()
        })
    }
}

/// Path pieces after `/api`: the route, the scan id and the seed id.
fn classify(method: &Method, path: &str) -> (Route, Option<String>, Option<String>) {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().to_string();
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["api", "auth"]) => (Route::Auth, None, None),
        ("GET", ["api", "v1", "scans", scan]) => (Route::Scan, Some(decode(scan)), None),
        ("GET", ["api", "v1", "scans", scan, "seeds"]) => (Route::List, Some(decode(scan)), None),
        ("POST", ["api", "v1", "scans", scan, "seeds"]) => (Route::Add, Some(decode(scan)), None),
        ("DELETE", ["api", "v1", "scans", scan, "seeds", seed]) => {
            (Route::Delete, Some(decode(scan)), Some(decode(seed)))
        }
        _ => (Route::Unknown, None, None),
    }
}

fn json_response(status: StatusCode, body: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

async fn handle(state: Shared, req: Request<Body>) -> Result<Response<Body>, std::io::Error> {
    let (route, scan, seed_id) = classify(req.method(), req.uri().path());
    let method = req.method().to_string();
    let (fault, outage, latency, key_ok) = {
        let mut s = state.lock().expect("fake ASM state");
        s.seen.push(route);
        let key_ok = req
            .headers()
            .get("x-hexiosec-api-key")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|k| k == s.key);
        // A fault is used up only by a request that passes the key check.
        let fault = (key_ok && !s.outage).then(|| s.take_fault(route));
        (fault, s.outage, s.latency, key_ok)
    };
    let record = |status: u16| {
        let mut s = state.lock().expect("fake ASM state");
        s.requests.push((route, status));
        if matches!(route, Route::Add | Route::Delete)
            && !(200..300).contains(&status)
            && status != 400
            && status != 404
        {
            // Writes answered by a fault or an outage; handled writes journal themselves.
            s.journal.push(JournalEntry {
                scan: scan.clone().unwrap_or_default(),
                method: method.clone(),
                target: seed_id.clone().unwrap_or_default(),
                status,
            });
        }
    };
    if outage {
        record(503);
        return Ok(json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"message": "Service Unavailable"}),
        ));
    }
    // The key first, as the service does: a request with a wrong key never reaches a fault
    // (and does not use one up).
    if !key_ok {
        record(401);
        return Ok(json_response(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Unauthorized"}),
        ));
    }
    let fault = fault.and_then(|fault| fault);
    match fault {
        Some(Fault::Drop) => {
            record(0);
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "fault: drop",
            ));
        }
        Some(Fault::TooManyRequests { retry_after }) => {
            record(429);
            let mut response = json_response(StatusCode::TOO_MANY_REQUESTS, json!({"message": "Too Many Requests"}));
            if let Some(value) = retry_after
                && let Ok(value) = value.parse()
            {
                response.headers_mut().insert("retry-after", value);
            }
            return Ok(response);
        }
        Some(Fault::Status(status)) => {
            record(status);
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Ok(json_response(
                status,
                json!({"message": status.canonical_reason().unwrap_or("error")}),
            ));
        }
        Some(Fault::BadRequest { code, message }) => {
            record(400);
            let body = match code {
                Some(code) => json!({"code": code, "message": message}),
                None => json!({"message": message}),
            };
            if route == Route::Add || route == Route::Delete {
                let mut s = state.lock().expect("fake ASM state");
                s.journal.push(JournalEntry {
                    scan: scan.clone().unwrap_or_default(),
                    method: method.clone(),
                    target: seed_id.clone().unwrap_or_default(),
                    status: 400,
                });
            }
            return Ok(json_response(StatusCode::BAD_REQUEST, body));
        }
        Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
        None => {}
    }
    let query = req.uri().query().unwrap_or("").to_string();
    let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
    let response = {
        let mut s = state.lock().expect("fake ASM state");
        let response = answer(
            &mut s,
            route,
            scan.as_deref(),
            seed_id.as_deref(),
            &method,
            &query,
            &body,
        );
        s.requests.push((route, response.status().as_u16()));
        response
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    Ok(response)
}

fn answer(
    s: &mut State,
    route: Route,
    scan: Option<&str>,
    seed_id: Option<&str>,
    method: &str,
    query: &str,
    body: &[u8],
) -> Response<Body> {
    let not_found = |what: &str| json_response(StatusCode::NOT_FOUND, json!({"message": format!("{what} not found")}));
    let scan_id = scan.unwrap_or_default().to_string();
    if route == Route::Auth {
        if s.not_authenticated {
            return json_response(StatusCode::OK, json!({"authenticated": false}));
        }
        return json_response(
            StatusCode::OK,
            json!({"authenticated": true, "user": {"id": "fake-user"}}),
        );
    }
    if route == Route::Unknown {
        return not_found("route");
    }
    let shape = s.list_shape.unwrap_or(ListShape::Array);
    let limit = s.seed_limit;
    let rejected = s.rejected.clone();
    let plan_types = s.plan_types.clone();
    s.next_id += 1;
    let next_id = s.next_id;
    let Some(seeds) = s.scans.get_mut(&scan_id) else {
        if matches!(route, Route::Add | Route::Delete) {
            s.journal.push(JournalEntry {
                scan: scan_id.clone(),
                method: method.to_string(),
                target: seed_id.unwrap_or_default().to_string(),
                status: 404,
            });
        }
        return not_found("scan");
    };
    match route {
        Route::Scan => json_response(
            StatusCode::OK,
            json!({"id": scan_id, "name": "Fake scan", "type": "continuous_own"}),
        ),
        Route::List => {
            let expand_tags = query.split('&').any(|p| p == "expand=tags");
            let items: Vec<Value> = seeds
                .iter()
                .map(|seed| {
                    let mut item = json!({"id": seed.id, "name": seed.name, "type": seed.kind});
                    if expand_tags {
                        item["tags"] = match shape {
                            ListShape::TagObjects => seed
                                .tags
                                .iter()
                                .map(|t| json!({"id": format!("tag-{t}"), "name": t}))
                                .collect(),
                            _ => json!(seed.tags),
                        };
                    }
                    item
                })
                .collect();
            let body = match shape {
                ListShape::DataWrapper => json!({"data": items, "total": items.len()}),
                ListShape::SeedsWrapper => json!({"seeds": items}),
                _ => Value::Array(items),
            };
            json_response(StatusCode::OK, body)
        }
        Route::Add => {
            let (status, response, target) = add(seeds, body, &rejected, &plan_types, limit, next_id);
            s.journal.push(JournalEntry {
                scan: scan_id,
                method: method.to_string(),
                target,
                status: status.as_u16(),
            });
            json_response(status, response)
        }
        Route::Delete => {
            let id = seed_id.unwrap_or_default();
            let before = seeds.len();
            seeds.retain(|seed| seed.id != id);
            let status = if seeds.len() < before {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::NOT_FOUND
            };
            s.journal.push(JournalEntry {
                scan: scan_id,
                method: method.to_string(),
                target: id.to_string(),
                status: status.as_u16(),
            });
            if status == StatusCode::NO_CONTENT {
                Response::builder()
                    .status(StatusCode::NO_CONTENT)
                    .body(Body::empty())
                    .unwrap_or_default()
            } else {
                not_found("seed")
            }
        }
        Route::Any | Route::Writes | Route::Auth | Route::Unknown => not_found("route"),
    }
}

fn add(
    seeds: &mut Vec<FakeSeed>,
    body: &[u8],
    rejected: &HashMap<String, Option<String>>,
    plan_types: &[String],
    limit: Option<usize>,
    next_id: u64,
) -> (StatusCode, Value, String) {
    let bad = |code: &str, message: String| (StatusCode::BAD_REQUEST, json!({"code": code, "message": message}));
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        let (s, v) = bad("INVALID_REQUEST", "body is not JSON".into());
        return (s, v, String::new());
    };
    let name = request.get("name").and_then(Value::as_str).unwrap_or("").to_string();
    let kind = request
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    let tags: Vec<String> = match request.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(tags)) => tags.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Some(_) => {
            let (s, v) = bad("INVALID_TAGS", "tags must be a list of strings".into());
            return (s, v, name);
        }
    };
    let result = if name.trim().is_empty() || name.contains(char::is_whitespace) {
        Err(bad("INVALID_SEED_NAME", format!("{name:?} is not a valid seed")))
    } else if !matches!(kind.as_str(), "domain" | "ipv4" | "ipv6" | "iprange") {
        Err(bad("INVALID_SEED_TYPE", format!("{kind:?} is not a seed type")))
    } else if !value_is_of_type(&name, &kind) {
        Err(bad("INVALID_SEED", format!("{name:?} is not a valid {kind} seed")))
    } else if !plan_types.contains(&kind) {
        Err(bad(
            "SEED_TYPE_NOT_IN_PLAN",
            format!("{kind} seeds are not included in this plan"),
        ))
    } else if let Some(code) = rejected.get(&name.to_ascii_lowercase()) {
        Err(match code {
            Some(code) => bad(code, format!("seed {name} was rejected")),
            None => (
                StatusCode::BAD_REQUEST,
                json!({"message": format!("seed {name} was rejected")}),
            ),
        })
    } else if seeds.iter().any(|s| s.name.eq_ignore_ascii_case(&name)) {
        Err(bad(
            "SEED_ALREADY_EXISTS",
            format!("Seed {name} already exists in this scan"),
        ))
    } else if limit.is_some_and(|limit| seeds.len() >= limit) {
        Err(bad("SEED_LIMIT_REACHED", "the plan's seed limit is reached".into()))
    } else {
        Ok(())
    };
    if let Err((status, value)) = result {
        return (status, value, name);
    }
    let seed = FakeSeed {
        id: format!("seed-{next_id:04}-{}", uuid::Uuid::new_v4()),
        name: name.clone(),
        kind: kind.clone(),
        tags: tags.clone(),
    };
    seeds.push(seed.clone());
    (
        StatusCode::CREATED,
        json!({"id": seed.id, "name": seed.name, "type": seed.kind, "tags": seed.tags}),
        name,
    )
}

/// Whether `name` is a value of seed type `kind`: an IPv4 or IPv6 address, a range (CIDR or
/// `a.b.c.d-a.b.c.e`), or a domain name (letters, digits, hyphens, dots; not an address).
fn value_is_of_type(name: &str, kind: &str) -> bool {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    match kind {
        "ipv4" => name.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => name.parse::<Ipv6Addr>().is_ok(),
        "iprange" => match name.split_once('/') {
            Some((ip, len)) => {
                let max = match ip.parse::<IpAddr>() {
                    Ok(IpAddr::V4(_)) => 32,
                    Ok(IpAddr::V6(_)) => 128,
                    Err(_) => return false,
                };
                len.parse::<u8>().is_ok_and(|len| len <= max)
            }
            None => name
                .split_once('-')
                .is_some_and(|(a, b)| a.parse::<Ipv4Addr>().is_ok() && b.parse::<Ipv4Addr>().is_ok()),
        },
        "domain" => {
            name.parse::<IpAddr>().is_err()
                && name.contains('.')
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'*')
                })
        }
        _ => false,
    }
}
