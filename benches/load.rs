//! A load test of `seedwatch serve` through its HTTP port, as hostile as a network can be to it
//! and bounded in count and time (loopback only).
//!
//! The built binary runs as the host starts it, with the whole real path behind it (apply
//! engine, local redb ledger, live ARM client, the retry queue) against the test fakes (ARM +
//! managed identity, ASM, Service Bus) in this process. 10,000 invocations, at most 1,000
//! connections open at once, one connection per invocation, in a shuffled mix of:
//! - valid Event Grid invocations for 1,000 public IPs;
//! - malformed bodies (not JSON, no `Data`, unreadable events);
//! - 30 MiB bodies (a declared `Content-Length`; the client streams until the server answers);
//! - slow senders: a declared 1,000-byte body sent one byte a second.
//!
//! Reports, per kind, the answers by status, the p50/p99 latency of valid invocations, the
//! handler's peak memory (VmHWM), and whether every valid event was applied (its address is a
//! seed in ASM) or queued (a retry message names it). Exits non-zero when a valid invocation
//! was not answered 200, an oversized body was not refused with 413, a slow sender was not cut
//! off, or a valid event was lost.
//!
//! Run with `cargo bench --bench load`. `LOAD_INVOCATIONS` and `LOAD_CONNECTIONS` change the
//! size.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// The fakes of the integration tests (tests/it/support/); a bench drives only part of each,
// so what it leaves unused is not a warning here.
#[allow(dead_code, unused_imports)]
#[path = "../tests/it/support/fake_asm.rs"]
mod fake_asm;
#[allow(dead_code, unused_imports)]
#[path = "../tests/it/support/fake_azure/mod.rs"]
mod fake_azure;
#[allow(dead_code, unused_imports)]
#[path = "../tests/it/support/fake_servicebus.rs"]
mod fake_servicebus;

const SUB: &str = "11111111-1111-1111-1111-111111111111";
const RESOURCES: usize = 1_000;
const QUEUE: &str = "asm-retries";
const SAS_KEY: &str = "c2VlZHdhdGNoLWxvYWQta2V5";
/// The whole run must finish within this, or the bench fails.
const RUN_LIMIT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Valid,
    Malformed,
    Oversized,
    SlowSender,
}

struct Outcome {
    kind: Kind,
    resource: Option<usize>,
    /// `None`: the connection closed without an answer.
    status: Option<u16>,
    latency: Duration,
}

fn main() {
    let invocations: usize = env_or("LOAD_INVOCATIONS", 10_000);
    let connections: usize = env_or("LOAD_CONNECTIONS", 1_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let ok = runtime.block_on(run(invocations, connections));
    if !ok {
        std::process::exit(1);
    }
}

/// The mix: 2% oversized, 3% slow senders, 15% malformed, the rest valid.
fn plan(invocations: usize) -> Vec<(Kind, usize)> {
    let oversized = invocations / 50;
    let slow = invocations * 3 / 100;
    let malformed = invocations * 15 / 100;
    let valid = invocations - oversized - slow - malformed;
    let mut plan: Vec<(Kind, usize)> = (0..valid).map(|i| (Kind::Valid, i % RESOURCES)).collect();
    plan.extend((0..malformed).map(|i| (Kind::Malformed, i)));
    plan.extend((0..oversized).map(|i| (Kind::Oversized, i)));
    plan.extend((0..slow).map(|i| (Kind::SlowSender, i)));
    plan.shuffle(&mut rand::rngs::StdRng::seed_from_u64(7));
    plan
}

async fn run(invocations: usize, connections: usize) -> bool {
    let azure = fake_azure::FakeAzure::start().await;
    azure.add_subscription(SUB, "Enabled");
    azure.load(
        (0..RESOURCES)
            .map(|n| fake_azure::public_ip(&pip_id(n), &ip(n)))
            .collect(),
    );
    let asm = fake_asm::FakeAsm::start("load-key").await;
    asm.add_scan("load-scan");
    let bus = fake_servicebus::FakeServiceBus::start(
        QUEUE,
        fake_servicebus::FakeAuth::Sas {
            key_name: "send".into(),
            key: SAS_KEY.into(),
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = start_handler(&azure, &asm, &bus, dir.path());
    let plan = plan(invocations);
    println!(
        "load: {invocations} invocations over at most {connections} connections at once \
         (valid {}, malformed {}, 30 MiB {}, slow senders {})",
        plan.iter().filter(|p| p.0 == Kind::Valid).count(),
        plan.iter().filter(|p| p.0 == Kind::Malformed).count(),
        plan.iter().filter(|p| p.0 == Kind::Oversized).count(),
        plan.iter().filter(|p| p.0 == Kind::SlowSender).count(),
    );
    let started = Instant::now();
    let outcomes: Vec<Outcome> = tokio::time::timeout(
        RUN_LIMIT,
        futures::stream::iter(plan)
            .map(|(kind, n)| one(port, kind, n))
            .buffer_unordered(connections)
            .collect(),
    )
    .await
    .expect("the load run finished within its time limit");
    let elapsed = started.elapsed();
    let peak = peak_rss_mb(child.id());
    let ok = report(&outcomes, elapsed, peak, &asm, &bus);
    let _ = child.kill();
    let _ = child.wait();
    ok
}

fn start_handler(
    azure: &fake_azure::FakeAzure,
    asm: &fake_asm::FakeAsm,
    bus: &fake_servicebus::FakeServiceBus,
    dir: &std::path::Path,
) -> (std::process::Child, u16) {
    let yaml = format!(
        "scan_id: load-scan\nhttp:\n  timeout: 10s\nasm:\n  base_url: {}\n\
         azure:\n  credential: managed_identity\n  endpoints:\n    resource_manager: {}\n    service_bus: {}\n\
         ledger:\n  kind: local\n  path: {}\n",
        asm.base_url(),
        azure.base_url(),
        bus.base_url(),
        dir.join("ledger.redb").display()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_seedwatch"))
        .arg("serve")
        .env_clear()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("CONNECTOR_CONFIG", yaml)
        .env("API_KEY", "load-key")
        .env("IDENTITY_ENDPOINT", azure.identity_endpoint())
        .env("IDENTITY_HEADER", azure.identity_header())
        .env("AZURE_CLIENT_ID", azure.client_id())
        .env("RETRY_QUEUE", QUEUE)
        .env(
            "ServiceBusConnection",
            format!(
                "Endpoint=sb://{}/;SharedAccessKeyName=send;SharedAccessKey={SAS_KEY}",
                bus.addr
            ),
        )
        .env("LOG_LEVEL", "error")
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn seedwatch serve");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "not ready in 30 s");
        std::thread::sleep(Duration::from_millis(25));
    }
    (child, port)
}

fn pip_id(n: usize) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg{}/providers/Microsoft.Network/publicIPAddresses/pip{n}",
        n % 20
    )
}

fn ip(n: usize) -> String {
    format!("198.51.{}.{}", 100 + n / 250, n % 250 + 1)
}

fn head(length: usize) -> String {
    format!(
        "POST /resource-events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json; charset=utf-8\r\n\
         X-Azure-Functions-InvocationId: load\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    )
}

fn valid_body(n: usize) -> Vec<u8> {
    let event = json!({
        "id": uuid::Uuid::new_v4().to_string(), "topic": format!("/subscriptions/{SUB}"), "subject": pip_id(n),
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap(),
        "data": {"resourceUri": pip_id(n), "status": "Succeeded"}, "dataVersion": "2", "metadataVersion": "1"
    });
    serde_json::to_vec(&json!({"Data": {"event": event}, "Metadata": {}})).unwrap()
}

fn malformed_body(n: usize) -> Vec<u8> {
    match n % 3 {
        0 => b"{not json".to_vec(),
        1 => br#"{"Metadata":{}}"#.to_vec(),
        _ => serde_json::to_vec(
            &json!({"Data": {"event": {"id": format!("bad-{n}"), "subject": "/subscriptions/x/../y?z"}}}),
        )
        .unwrap(),
    }
}

/// One invocation on its own connection.
async fn one(port: u16, kind: Kind, n: usize) -> Outcome {
    let started = Instant::now();
    let status = match kind {
        Kind::Valid => exchange(port, &valid_body(n)).await,
        Kind::Malformed => exchange(port, &malformed_body(n)).await,
        Kind::Oversized => oversized(port).await,
        Kind::SlowSender => slow_sender(port).await,
    };
    Outcome {
        kind,
        resource: (kind == Kind::Valid).then_some(n),
        status,
        latency: started.elapsed(),
    }
}

async fn exchange(port: u16, body: &[u8]) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let mut wire = head(body.len()).into_bytes();
    wire.extend_from_slice(body);
    stream.write_all(&wire).await.ok()?;
    read_status(&mut stream).await
}

/// A declared 30 MiB body, streamed in 1 MiB writes until the server answers or closes.
async fn oversized(port: u16) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    stream.write_all(head(30 * 1024 * 1024).as_bytes()).await.ok()?;
    let chunk = vec![b' '; 1024 * 1024];
    for _ in 0..30 {
        if stream.write_all(&chunk).await.is_err() {
            break;
        }
    }
    read_status(&mut stream).await
}

/// A declared 1,000-byte body sent one byte a second, until the server gives up on it.
async fn slow_sender(port: u16) -> Option<u16> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(head(1_000).as_bytes()).await.ok()?;
    let dribble = async move {
        for _ in 0..1_000 {
            if writer.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        std::future::pending::<()>().await;
    };
    let mut answer = Vec::new();
    tokio::select! {
        _ = dribble => None,
        _ = reader.read_to_end(&mut answer) => status_of(&answer),
    }
}

async fn read_status(stream: &mut TcpStream) -> Option<u16> {
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    status_of(&answer)
}

fn status_of(answer: &[u8]) -> Option<u16> {
    let line = answer.split(|b| *b == b'\r').next()?;
    std::str::from_utf8(line).ok()?.split(' ').nth(1)?.parse().ok()
}

fn report(
    outcomes: &[Outcome],
    elapsed: Duration,
    peak_mb: u64,
    asm: &fake_asm::FakeAsm,
    bus: &fake_servicebus::FakeServiceBus,
) -> bool {
    let mut by_kind: BTreeMap<Kind, BTreeMap<String, usize>> = BTreeMap::new();
    for o in outcomes {
        let status = o.status.map_or("no answer".to_string(), |s| s.to_string());
        *by_kind.entry(o.kind).or_default().entry(status).or_default() += 1;
    }
    let mut valid: Vec<Duration> = outcomes
        .iter()
        .filter(|o| o.kind == Kind::Valid)
        .map(|o| o.latency)
        .collect();
    valid.sort();
    let pct = |p: f64| valid[((valid.len() as f64 * p) as usize).min(valid.len().saturating_sub(1))];
    let slow: Vec<Duration> = outcomes
        .iter()
        .filter(|o| o.kind == Kind::SlowSender)
        .map(|o| o.latency)
        .collect();
    let slow_max = slow.iter().max().copied().unwrap_or_default();
    println!(
        "load: finished in {:.1} s; handler peak memory (VmHWM) {peak_mb} MB",
        elapsed.as_secs_f64()
    );
    for (kind, statuses) in &by_kind {
        println!("    {kind:?}: {statuses:?}");
    }
    println!(
        "    valid invocations: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; slow senders cut off after at most {:.1} s",
        ms(pct(0.5)),
        ms(pct(0.99)),
        ms(pct(1.0)),
        slow_max.as_secs_f64()
    );
    // Nothing lost: every resource a valid event named is a seed in ASM or named by a retry.
    let seeds = asm.seed_names("load-scan");
    let queued: BTreeSet<String> = bus
        .delivered()
        .iter()
        .filter_map(|m| m.body_json()["resourceId"].as_str().map(str::to_ascii_lowercase))
        .collect();
    let wanted: BTreeSet<usize> = outcomes.iter().filter_map(|o| o.resource).collect();
    let lost: Vec<usize> = wanted
        .iter()
        .copied()
        .filter(|n| !seeds.contains(&ip(*n)) && !queued.contains(&pip_id(*n).to_ascii_lowercase()))
        .collect();
    println!(
        "    valid events for {} resources: {} applied, {} queued for retry, {} lost",
        wanted.len(),
        wanted.iter().filter(|n| seeds.contains(&ip(**n))).count(),
        queued.len(),
        lost.len()
    );
    // A server that answers and closes while the client still sends resets the connection
    // (TCP RST), and the client may lose the answer: "no answer" is a refusal too.
    let only = |kind: Kind, statuses: &[&str]| {
        by_kind
            .get(&kind)
            .is_none_or(|s| s.keys().all(|k| statuses.contains(&k.as_str())))
    };
    let checks = [
        ("every valid invocation answered 200", only(Kind::Valid, &["200"])),
        (
            "every 30 MiB body refused (413, or reset while sending)",
            only(Kind::Oversized, &["413", "no answer"]),
        ),
        (
            "every slow sender cut off (408, or reset)",
            only(Kind::SlowSender, &["408", "no answer"]),
        ),
        ("slow senders cut off within 30 s", slow_max < Duration::from_secs(30)),
        ("no valid event lost", lost.is_empty()),
    ];
    let mut ok = true;
    for (what, held) in checks {
        println!("    {}: {what}", if held { "ok" } else { "FAILED" });
        ok &= held;
    }
    ok
}

fn peak_rss_mb(pid: u32) -> u64 {
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
