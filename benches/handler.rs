//! The Functions handler under a burst, and its cold start.
//!
//! 1. Cold start: spawns the built `seedwatch serve` (as the host does, port in
//!    `FUNCTIONS_CUSTOMHANDLER_PORT`) and measures the time to the first answer to `GET /`,
//!    polling every millisecond (the host polls every 25 ms). Goal: under 50 ms.
//! 2. Burst through the running binary: `seedwatch serve` started as the host starts it, with
//!    the whole real path behind it (apply engine, local redb ledger, live ARM client) against
//!    the test fakes (ARM + managed identity, ASM) running in this process, default `events.*`
//!    settings (1 s window). 10,000 Event Grid invocations for 1,000 public IPs (10 each),
//!    all in flight at once (Event Grid pushes a burst concurrently), each event dated when it is sent (as Event Grid dates a change when it
//!    happens), in two orders: *clustered* (a resource's events arrive together, as a
//!    deployment's do) and *uniform* (shuffled across the whole burst, the worst case). Then
//!    the uniform burst is *delivered again* (Event Grid redelivering), a few seconds later.
//!    Reports events/s, p50/p99 latency per invocation, ARM reads counted by the fake, and the
//!    handler's peak memory (VmHWM). The goal is one ARM read per distinct resource per burst
//!    window. Two references: the floor (every resource with an event needs at least one read,
//!    a true lower bound), and a *greedy-window reference* computed from the client's send
//!    times: per resource, the windows a coalescer would open if it held each resource's first
//!    waiting event exactly one window. The reference is not a lower bound (send times are not
//!    the server's arrival times, and seedwatch's coalescer also answers an event with a read
//!    already running when the event is dated `clock_skew` before that read started), so reads
//!    can come in under it.
//! 3. The handler layer alone (in process, an apply that makes one 5 ms ARM GET), uniform
//!    order, at most 4,000 in flight, with the coalescing window at 1 s and at 0, to show what
//!    the window buys.
//!
//! Run with `cargo bench --bench handler`. `HANDLER_BENCH_EVENTS`, `HANDLER_BENCH_RESOURCES`,
//! `HANDLER_BENCH_SUBSCRIPTIONS` and `HANDLER_BENCH_IN_FLIGHT` change the burst.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::{FutureExt, StreamExt};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

use seedwatch::app::ports::{Applied, ApplyPort, Reconciled, Reconciler, ResourcePreview, Scope, WorkError};
use seedwatch::app::runner::Services;
use seedwatch::config::EventSettings;
use seedwatch::domain::change::Change;
use seedwatch::transport::functions::server::{AppState, ServicesFactory};

const ARM_LATENCY: Duration = Duration::from_millis(5);

// The fakes of the integration tests (tests/it/support/); a bench drives only part of each,
// so what it leaves unused is not a warning here.
#[allow(dead_code, unused_imports)]
#[path = "../tests/it/support/fake_asm.rs"]
mod fake_asm;
#[allow(dead_code, unused_imports)]
#[path = "../tests/it/support/fake_azure/mod.rs"]
mod fake_azure;

fn main() {
    let events: usize = env_or("HANDLER_BENCH_EVENTS", 10_000);
    let resources: usize = env_or("HANDLER_BENCH_RESOURCES", 1_000);
    let in_flight: usize = env_or("HANDLER_BENCH_IN_FLIGHT", 10_000);
    cold_start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let burst = Burst {
        events,
        resources,
        in_flight,
    };
    for clustered in [true, false] {
        runtime.block_on(binary_burst(burst, clustered));
    }
    // Client and server share this process's open-file limit here.
    let in_process = Burst {
        in_flight: in_flight.min(4_000),
        ..burst
    };
    for window in [Duration::from_secs(1), Duration::ZERO] {
        runtime.block_on(in_process_burst(in_process, window));
    }
}

#[derive(Clone, Copy)]
struct Burst {
    events: usize,
    resources: usize,
    in_flight: usize,
}

/// The default `events.coalesce_window` and `events.clock_skew` (the binary runs with them).
const WINDOW: Duration = Duration::from_secs(1);
const CLOCK_SKEW: Duration = Duration::from_secs(2);

/// The burst's resources are spread over this many subscriptions (`HANDLER_BENCH_SUBSCRIPTIONS`,
/// default 8): ARM's read bucket is per subscription (250 reads, refilled at 25/s, enforced by
/// the fake), so 1,000 resources in one subscription would measure the bucket, not the handler.
fn subscriptions() -> usize {
    std::env::var("HANDLER_BENCH_SUBSCRIPTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8usize)
        .max(1)
}

fn subscription(n: usize) -> String {
    format!("11111111-1111-1111-1111-{:012}", n % subscriptions())
}

fn pip_id(n: usize) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/rg{}/providers/Microsoft.Network/publicIPAddresses/pip{n}",
        subscription(n),
        n % 20
    )
}

/// The order events are sent in: resource numbers, each `events / resources` times.
fn order(events: usize, resources: usize, clustered: bool) -> Vec<usize> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut order: Vec<usize> = (0..events).map(|i| i % resources).collect();
    if clustered {
        // Resource-major, then shuffled within blocks of 500 events (about 50 resources).
        order.sort_unstable();
        for block in order.chunks_mut(500) {
            block.shuffle(&mut rng);
        }
    } else {
        order.shuffle(&mut rng);
    }
    order
}

async fn binary_burst(burst: Burst, clustered: bool) {
    let Burst { events, resources, .. } = burst;
    let azure = fake_azure::FakeAzure::start().await;
    for n in 0..subscriptions() {
        azure.add_subscription(&subscription(n), "Enabled");
    }
    azure.load(
        (0..resources)
            .map(|n| {
                json!({
                    "id": pip_id(n), "name": format!("pip{n}"), "type": "Microsoft.Network/publicIPAddresses",
                    "location": "westeurope", "tags": {},
                    "properties": {"ipAddress": format!("198.51.{}.{}", 100 + n / 250, n % 250 + 1), "publicIPAllocationMethod": "Static"}
                })
            })
            .collect(),
    );
    let asm = fake_asm::FakeAsm::start("bench-key").await;
    asm.add_scan("bench-scan");
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "scan_id: bench-scan\nhttp:\n  timeout: 10s\nasm:\n  base_url: {}\n\
         azure:\n  credential: managed_identity\n  endpoints:\n    resource_manager: {}\n\
         ledger:\n  kind: local\n  path: {}\n",
        asm.base_url(),
        azure.base_url(),
        dir.path().join("ledger.redb").display()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_seedwatch"))
        .arg("serve")
        .env_clear()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("CONNECTOR_CONFIG", yaml)
        .env("API_KEY", "bench-key")
        .env("IDENTITY_ENDPOINT", azure.identity_endpoint())
        .env("IDENTITY_HEADER", azure.identity_header())
        .env("AZURE_CLIENT_ID", azure.client_id())
        .env("LOG_LEVEL", "warn")
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn seedwatch serve");
    while !ready(port) {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let handler = format!("http://127.0.0.1:{port}");
    let name = if clustered { "clustered" } else { "uniform" };
    let sent = send_all(&handler, burst, Sends::Fresh(order(events, resources, clustered))).await;
    let reads = azure.counts().arm_gets;
    report(&format!("binary, {name}"), burst, &sent, reads, Some(WINDOW));
    println!("    ASM seeds after the burst: {}", asm.seed_names("bench-scan").len());
    if !clustered {
        // Event Grid delivering the same burst again: every event is older than the reads made.
        tokio::time::sleep(CLOCK_SKEW + WINDOW).await;
        let again = send_all(&handler, burst, Sends::Again(sent.bodies.clone())).await;
        let more = azure.counts().arm_gets - reads;
        report(&format!("binary, {name}, delivered again"), burst, &again, more, None);
    }
    let peak = child_peak_rss_mb(child.id());
    println!("    handler peak memory {peak} MB");
    let _ = child.kill();
    let _ = child.wait();
}

enum Sends {
    /// New events for these resources, dated when sent.
    Fresh(Vec<usize>),
    /// The same invocations once more.
    Again(Vec<(usize, Vec<u8>)>),
}

struct Sent {
    elapsed: Duration,
    latencies: Vec<Duration>,
    failures: usize,
    /// Per event: the resource and when it was sent (from the start of the burst).
    sent_at: Vec<(usize, Duration)>,
    bodies: Vec<(usize, Vec<u8>)>,
}

/// Sends every invocation with `in_flight` at once.
async fn send_all(handler: &str, burst: Burst, sends: Sends) -> Sent {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(burst.in_flight)
        .build()
        .unwrap();
    let items: Vec<(usize, Option<Vec<u8>>)> = match sends {
        Sends::Fresh(order) => order.into_iter().map(|r| (r, None)).collect(),
        Sends::Again(bodies) => bodies.into_iter().map(|(r, b)| (r, Some(b))).collect(),
    };
    let started = Instant::now();
    let results: Vec<(usize, Duration, Duration, u16, Vec<u8>)> = futures::stream::iter(items.into_iter().enumerate())
        .map(|(i, (resource, body))| {
            let client = client.clone();
            let url = format!("{handler}/resource-events");
            async move {
                let body = body.unwrap_or_else(|| invocation(&pip_id(resource), time::OffsetDateTime::now_utc()));
                let t = Instant::now();
                let response = client
                    .post(url)
                    .header("Content-Type", "application/json; charset=utf-8")
                    .header("X-Azure-Functions-InvocationId", format!("bench-{i}"))
                    .body(body.clone())
                    .send()
                    .await
                    .expect("invocation");
                let status = response.status().as_u16();
                let _ = response.bytes().await;
                (resource, t - started, t.elapsed(), status, body)
            }
        })
        .buffer_unordered(burst.in_flight)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let failures = results.iter().filter(|r| r.3 != 200).count();
    let mut sent = Sent {
        elapsed,
        latencies: Vec::with_capacity(results.len()),
        failures,
        sent_at: Vec::with_capacity(results.len()),
        bodies: Vec::with_capacity(results.len()),
    };
    for (resource, at, latency, _, body) in results {
        sent.latencies.push(latency);
        sent.sent_at.push((resource, at));
        sent.bodies.push((resource, body));
    }
    sent
}

/// The greedy-window reference: per resource, the windows opened by holding each first waiting
/// event (by the client's send time) exactly `window`. A reference, not a bound (see the top).
fn greedy_window_reads(sent_at: &[(usize, Duration)], window: Duration) -> usize {
    let mut by_resource: std::collections::HashMap<usize, Vec<Duration>> = std::collections::HashMap::new();
    for (resource, at) in sent_at {
        by_resource.entry(*resource).or_default().push(*at);
    }
    by_resource
        .into_values()
        .map(|mut times| {
            times.sort();
            let mut windows = 0;
            let mut open: Option<Duration> = None;
            for t in times {
                if open.is_none_or(|start| t >= start + window) {
                    windows += 1;
                    open = Some(t);
                }
            }
            windows
        })
        .sum()
}

fn report(name: &str, burst: Burst, sent: &Sent, reads: u64, window: Option<Duration>) {
    let mut latencies = sent.latencies.clone();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let bound = window
        .map(|w| {
            let greedy = greedy_window_reads(&sent.sent_at, w);
            format!(
                ", greedy-window reference {greedy} (reads / reference {:.2})",
                reads as f64 / greedy as f64
            )
        })
        .unwrap_or_default();
    println!(
        "{name}: {} events / {} resources, {} in flight, sent over {:.1} s: {:.0} events/s, p50 {:.1} ms, p99 {:.1} ms, \
         non-200 answers {}, ARM reads {reads} ({:.2} per resource: reads / floor){bound}",
        burst.events,
        burst.resources,
        burst.in_flight,
        sent.elapsed.as_secs_f64(),
        burst.events as f64 / sent.elapsed.as_secs_f64(),
        ms(pct(0.50)),
        ms(pct(0.99)),
        sent.failures,
        reads as f64 / burst.resources as f64,
    );
}

fn child_peak_rss_mb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn cold_start() {
    let mut samples = Vec::new();
    for _ in 0..20 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let started = Instant::now();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_seedwatch"))
            .arg("serve")
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env("CONNECTOR_CONFIG", "scan_id: bench\n")
            .env("LOG_LEVEL", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn seedwatch serve");
        loop {
            if ready(port) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "not ready in 30 s");
            std::thread::sleep(Duration::from_millis(1));
        }
        samples.push(started.elapsed());
        let _ = child.kill();
        let _ = child.wait();
    }
    samples.sort();
    println!(
        "cold start to first GET / answer: p50 {:.1} ms, max {:.1} ms (20 starts)",
        ms(samples[samples.len() / 2]),
        ms(*samples.last().unwrap())
    );
}

fn ready(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream
        .write_all(format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    stream.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1")
}

/// An apply that reads the resource from the fake ARM once, as the real apply path does.
struct ArmReadingApply {
    client: reqwest::Client,
    arm: String,
}

#[async_trait]
impl ApplyPort for ArmReadingApply {
    async fn apply(&self, change: &Change) -> Result<Applied, WorkError> {
        let url = format!("{}{}?api-version=2023-09-01", self.arm, change.id.as_str());
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| WorkError::transient(e.to_string()))?;
        let body: Value = response.json().await.map_err(|e| WorkError::transient(e.to_string()))?;
        Ok(Applied::Report(seedwatch::engine::apply::ApplyReport {
            resource: body["id"].as_str().unwrap_or_default().to_string(),
            arm_reads: 1,
            ..Default::default()
        }))
    }
}

#[async_trait]
impl Reconciler for ArmReadingApply {
    async fn reconcile(&self, _scope: &Scope, _dry_run: bool) -> Result<Reconciled, WorkError> {
        Ok(Reconciled::Resource(ResourcePreview {
            resource: String::new(),
            found: false,
            seeds: Vec::new(),
            warnings: None,
        }))
    }
}

async fn fake_arm(reads: Arc<AtomicU64>) -> String {
    use axum::extract::{Path, State};
    let app = axum::Router::new()
        .route(
            "/{*path}",
            axum::routing::get(
                |State(reads): State<Arc<AtomicU64>>, Path(path): Path<String>| async move {
                    reads.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(ARM_LATENCY).await;
                    axum::Json(json!({"id": format!("/{path}"), "properties": {"ipAddress": "198.51.100.7"}}))
                },
            ),
        )
        .with_state(reads);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

async fn in_process_burst(burst: Burst, window: Duration) {
    let reads = Arc::new(AtomicU64::new(0));
    let arm = fake_arm(Arc::clone(&reads)).await;
    let engine = Arc::new(ArmReadingApply {
        client: reqwest::Client::new(),
        arm,
    });
    let factory: ServicesFactory = Arc::new(move || {
        let engine = Arc::clone(&engine);
        async move {
            Ok(Services {
                applier: engine.clone(),
                reconciler: engine,
                queue: None,
                max_attempts: 3,
                events: EventSettings {
                    coalesce_window: window,
                    ..EventSettings::default()
                },
            })
        }
        .boxed()
    });
    let state = AppState::new(factory);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handler = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(seedwatch::transport::functions::server::serve(
        listener,
        state,
        async move {
            let _ = stopped.await;
        },
    ));
    let sent = send_all(
        &handler,
        burst,
        Sends::Fresh(order(burst.events, burst.resources, false)),
    )
    .await;
    let _ = stop.send(());
    let _ = server.await;
    report(
        &format!("in process, uniform, window {} ms", window.as_millis()),
        burst,
        &sent,
        reads.load(Ordering::Relaxed),
        (!window.is_zero()).then_some(window),
    );
}

/// An Event Grid invocation as the host sends it, for resource `id`.
fn invocation(id: &str, at: time::OffsetDateTime) -> Vec<u8> {
    let at = at.format(&time::format_description::well_known::Rfc3339).unwrap();
    let event = json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "topic": id.split("/resourceGroups/").next().unwrap_or_default(),
        "subject": id,
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": at,
        "data": {"resourceUri": id, "operationName": "Microsoft.Network/publicIPAddresses/write", "status": "Succeeded"},
        "dataVersion": "2",
        "metadataVersion": "1"
    });
    let body = json!({
        "Data": {"event": event},
        "Metadata": {"data": event["data"], "sys": {"MethodName": "resource-events", "UtcNow": at, "RandGuid": "x"}}
    });
    serde_json::to_vec(&body).unwrap()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
