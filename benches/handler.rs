//! The Functions handler under a burst, and its cold start.
//!
//! 1. Cold start: spawns the built `seedwatch serve` (as the host does, port in
//!    `FUNCTIONS_CUSTOMHANDLER_PORT`) and measures the time to the first answer to `GET /`,
//!    polling every millisecond (the host polls every 25 ms). Goal: under 50 ms.
//! 2. Burst: 10,000 Event Grid invocations for 1,000 resources (10 each, shuffled), sent with
//!    256 connections in flight to the handler's routes served in this process. Each apply does
//!    one real HTTP GET against a fake ARM (5 ms latency) that counts reads. Reports events/s,
//!    p50/p99 latency per invocation, ARM reads (goal: one per distinct resource per burst
//!    window) and peak memory (VmHWM of this process, which holds the handler, the fake ARM
//!    and the client).
//!
//! Run with `cargo bench --bench handler`. `HANDLER_BENCH_EVENTS` / `HANDLER_BENCH_RESOURCES`
//! change the burst size.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::{FutureExt, StreamExt};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

use seedwatch::functions::events::Change;
use seedwatch::functions::ports::{Applier, Reconciler, Scope, WorkError};
use seedwatch::functions::runner::{Services, Tuning};
use seedwatch::functions::server::{AppState, ServicesFactory};

const ARM_LATENCY: Duration = Duration::from_millis(5);

fn main() {
    let events: usize = env_or("HANDLER_BENCH_EVENTS", 10_000);
    let resources: usize = env_or("HANDLER_BENCH_RESOURCES", 1_000);
    cold_start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for window in [Duration::from_millis(250), Duration::ZERO] {
        runtime.block_on(burst(events, resources, window));
    }
    println!("peak memory (VmHWM, whole bench process): {} MB", peak_rss_mb());
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
impl Applier for ArmReadingApply {
    async fn apply(&self, change: &Change) -> Result<Value, WorkError> {
        let url = format!("{}{}?api-version=2023-09-01", self.arm, change.id.as_str());
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| WorkError::transient(e.to_string()))?;
        let body: Value = response.json().await.map_err(|e| WorkError::transient(e.to_string()))?;
        Ok(json!({"read": body["id"]}))
    }
}

#[async_trait]
impl Reconciler for ArmReadingApply {
    async fn reconcile(&self, _scope: &Scope, _dry_run: bool) -> Result<Value, WorkError> {
        Ok(Value::Null)
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

async fn burst(events: usize, resources: usize, window: Duration) {
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
            })
        }
        .boxed()
    });
    let state = AppState::new(
        factory,
        Tuning {
            coalesce_window: window,
            ..Tuning::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handler = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(seedwatch::functions::server::serve(listener, state, async move {
        let _ = stopped.await;
    }));

    let mut order: Vec<usize> = (0..events).map(|i| i % resources).collect();
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(42));
    let bodies: Vec<Vec<u8>> = order.iter().map(|r| invocation(*r)).collect();
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap();
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(bodies.into_iter().enumerate())
        .map(|(i, body)| {
            let client = client.clone();
            let url = format!("{handler}/resource-events");
            async move {
                let t = Instant::now();
                let response = client
                    .post(url)
                    .header("Content-Type", "application/json; charset=utf-8")
                    .header("X-Azure-Functions-InvocationId", format!("bench-{i}"))
                    .body(body)
                    .send()
                    .await
                    .expect("invocation");
                assert_eq!(response.status().as_u16(), 200);
                let _ = response.bytes().await;
                t.elapsed()
            }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let _ = stop.send(());
    let _ = server.await;
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "burst {events} events / {resources} resources, coalesce window {} ms: {:.0} events/s, \
         p50 {:.1} ms, p99 {:.1} ms, ARM reads {} ({:.2} per resource)",
        window.as_millis(),
        events as f64 / elapsed.as_secs_f64(),
        ms(pct(0.50)),
        ms(pct(0.99)),
        reads.load(Ordering::Relaxed),
        reads.load(Ordering::Relaxed) as f64 / resources as f64
    );
}

/// An Event Grid invocation as the host sends it, for resource number `n`.
fn invocation(n: usize) -> Vec<u8> {
    let id = format!(
        "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg{}/providers/Microsoft.Network/publicIPAddresses/pip{n}",
        n % 20
    );
    let event = json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "topic": "/subscriptions/11111111-1111-1111-1111-111111111111",
        "subject": id,
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": "2025-03-01T10:15:07.6117357Z",
        "data": {"resourceUri": id, "operationName": "Microsoft.Network/publicIPAddresses/write", "status": "Succeeded"},
        "dataVersion": "2",
        "metadataVersion": "1"
    });
    let body = json!({
        "Data": {"event": event},
        "Metadata": {"data": event["data"], "sys": {"MethodName": "resource-events", "UtcNow": "2025-03-01T10:15:08.0000001Z", "RandGuid": "x"}}
    });
    serde_json::to_vec(&body).unwrap()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn peak_rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
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
