//! Sweeps a fake estate (default 100,000 resources in 20 subscriptions, 20 ms per Resource Graph
//! page) under Resource Graph's documented quota (15 queries per 5 s per user) and reports wall
//! time against a true lower bound, peak memory (VmHWM) and request counts.
//!
//! The bound is the largest of what no client can beat, computed from the estate (rows per
//! table), not from what the sweep did:
//! - the critical path: a table's pages are one `$skipToken` chain, each page waiting for the
//!   previous one, so the longest chain takes `pages x page latency`;
//! - the chains in flight: all pages over `concurrent_queries` chains;
//! - the Resource Graph quota: N queries need `ceil(N / 15) - 1` further 5 s windows
//!   (<https://learn.microsoft.com/azure/governance/resource-graph/concepts/guidance-for-throttled-requests>);
//! - ARM's read bucket per subscription (250 reads, refilled at 25/s,
//!   <https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling>):
//!   reads past 250 in a subscription wait for the refill. The fake enforces this bucket too.
//!
//! The fake runs in a child process (this binary again, with `SEEDWATCH_BENCH_FAKE` set) so the
//! peak memory measured is the sweep's own.
//!
//! The sweep is the reconcile's (`AzureReader::sweep_extracted`: each page extracted as it
//! arrives, no body kept); `SWEEP_KEEP_BODIES=1` measures `AzureReader::sweep` (every resource's
//! body kept) for comparison. The rows per table for the bound come from the fake (it knows the
//! estate), so the parent never holds the estate.
//!
//! `cargo bench --bench sweep` (env: `SWEEP_RESOURCES`, `SWEEP_SUBSCRIPTIONS`, `SWEEP_PAGE_MS`,
//! `SWEEP_NO_ARM_CHILDREN` to read Resource Graph alone, `SWEEP_GRAPH_QUOTA=off` for a fake
//! without the Resource Graph quota).

// The fakes of the integration tests (tests/it/support/); a bench drives only part of each,
// so what it leaves unused is not a warning here.
#[allow(dead_code, unused_imports)]
#[path = "../tests/it/support/fake_azure/mod.rs"]
mod fake_azure;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use seedwatch::adapters::azure::arm::Tuning;
use seedwatch::adapters::azure::catalog::{self, Source};
use seedwatch::adapters::azure::{AzureReader, NoProgress, StaticToken, TokenSource, live_from_config};
use seedwatch::config::Config;
use seedwatch::domain::check::EnabledChecks;
use seedwatch::domain::secret::Secret;

const FAKE_ENV: &str = "SEEDWATCH_BENCH_FAKE";

/// Resource Graph's documented default quota: 15 queries per 5 s window per user.
const GRAPH_QUOTA: u32 = 15;
const GRAPH_WINDOW: Duration = Duration::from_secs(5);
/// ARM's read token bucket per subscription and principal.
const ARM_READ_BUCKET: u64 = 250;
const ARM_READ_REFILL_PER_SECOND: u64 = 25;

fn quota_on() -> bool {
    std::env::var("SWEEP_GRAPH_QUOTA").map_or(true, |v| v != "off")
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Child mode: serve the generated estate until stdin closes.
fn serve_fake(resources: usize, subscriptions: usize, page_latency: Duration) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let fake = fake_azure::FakeAzure::start_with_page_latency(page_latency).await;
        let estate = fake_azure::generate_estate(subscriptions, resources, 42);
        let rows = rows_per_table(&estate);
        fake.load(estate);
        if quota_on() {
            fake.set_graph_quota(GRAPH_QUOTA, GRAPH_WINDOW);
        } else {
            // Named for what it relaxes: no Resource Graph quota at all.
            fake.set_graph_quota(u32::MAX, GRAPH_WINDOW);
        }
        println!("{}", fake.base_url());
        println!("{}", fake.arm_token_minted_for_test());
        println!("{}", serde_json::to_string(&rows).expect("rows"));
        std::io::stdout().flush().expect("flush");
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await
        .expect("stdin");
        let c = fake.counts();
        eprintln!(
            "fake: graph pages {}, ARM GETs {}, subscription lists {}, 429s {}",
            c.graph_pages, c.arm_gets, c.subscription_lists, c.throttled
        );
    });
}

/// The checks the sweep runs; the parent sweeps with them and the child counts the rows they
/// select.
fn bench_checks() -> EnabledChecks {
    let mut checks = EnabledChecks::all();
    if std::env::var_os("SWEEP_NO_ARM_CHILDREN").is_some() {
        // Resource Graph alone: no AFD custom domain or blobServices reads.
        checks.set(seedwatch::domain::check::ServiceCheck::FrontDoorAfd, false);
        checks.set(seedwatch::domain::check::ServiceCheck::StorageStaticWebsites, false);
    }
    checks
}

/// Rows per Resource Graph table that the sweep's queries select (what the bound's pages come
/// from): only the types the enabled checks ask each table for.
fn rows_per_table(estate: &[serde_json::Value]) -> BTreeMap<&'static str, u64> {
    let checks = bench_checks();
    let tables = [
        (Source::Resources, "resources"),
        (Source::DnsResources, "dnsresources"),
        (Source::ComputeResources, "computeresources"),
    ];
    let queried: Vec<(&'static str, Vec<&'static str>)> = tables
        .into_iter()
        .map(|(source, table)| (table, catalog::graph_types(&checks, source)))
        .collect();
    let mut rows: BTreeMap<&'static str, u64> = BTreeMap::new();
    for resource in estate {
        let arm_type = resource["type"].as_str().unwrap_or_default().to_ascii_lowercase();
        if let Some((table, _)) = queried.iter().find(|(_, types)| types.contains(&arm_type.as_str())) {
            *rows.entry(table).or_default() += 1;
        }
    }
    rows
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let resources = env_number("SWEEP_RESOURCES", 100_000) as usize;
    let subscriptions = env_number("SWEEP_SUBSCRIPTIONS", 20) as usize;
    let page_latency = Duration::from_millis(env_number("SWEEP_PAGE_MS", 20));
    if std::env::var_os(FAKE_ENV).is_some() {
        serve_fake(resources, subscriptions, page_latency);
        return;
    }
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .env(FAKE_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the fake");
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    stdout.read_line(&mut line).expect("fake base url");
    let base = line.trim().to_string();
    let mut token = String::new();
    stdout.read_line(&mut token).expect("fake token");
    let token = token.trim().to_string();
    let mut rows_line = String::new();
    stdout.read_line(&mut rows_line).expect("fake rows per table");
    let rows: BTreeMap<String, u64> = serde_json::from_str(rows_line.trim()).expect("rows per table");

    let yaml = serde_json::json!({"azure": {"endpoints": {"resource_manager": base}}});
    let config =
        Config::from_value(&yaml, "bench", &std::collections::HashMap::<String, String>::new()).expect("config");
    let tokens: Arc<dyn TokenSource> = Arc::new(StaticToken(Secret::new(token)));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let baseline_mb = peak_rss_mb();
    let keep_bodies = std::env::var_os("SWEEP_KEEP_BODIES").is_some();
    let (elapsed, read, complete, live) = runtime.block_on(async {
        let live = live_from_config(&config, tokens, Tuning::default());
        let started = Instant::now();
        let checks = bench_checks();
        let (read, complete) = if keep_bodies {
            let sweep = live.sweep(&checks, &NoProgress).await.expect("sweep");
            (sweep.resources.len(), sweep.report.is_fully_complete())
        } else {
            let sweep = live.sweep_extracted(&checks, &NoProgress).await.expect("sweep");
            println!(
                "  kept: {} contributions, {} warnings",
                sweep.extraction.contributions.len(),
                sweep.extraction.warnings.len()
            );
            (sweep.resources_read, sweep.report.is_fully_complete())
        };
        (started.elapsed(), read, complete, live)
    });
    let peak_mb = peak_rss_mb();
    let pages = live.arm().counters.graph_pages.load(Ordering::Relaxed);
    let arm = live.arm().counters.arm_requests.load(Ordering::Relaxed);
    let throttled = live.arm().counters.throttled.load(Ordering::Relaxed);
    drop(child.stdin.take());
    let _ = child.wait();
    let bound = Bound::of(&rows, page_latency, subscriptions, arm);

    println!(
        "sweep bench: {resources} resources in {subscriptions} subscriptions, {page_latency:?} per Resource Graph page, Resource Graph quota {}",
        if quota_on() { "on (15 per 5 s)" } else { "off" }
    );
    println!(
        "  read {read} resources ({}), fully complete: {complete}",
        if keep_bodies {
            "bodies kept: AzureReader::sweep"
        } else {
            "extracted page by page: AzureReader::sweep_extracted"
        }
    );
    println!("  wall time {:.3} s", elapsed.as_secs_f64());
    bound.print(elapsed);
    println!(
        "  requests: {pages} Resource Graph pages, {arm} ARM GETs (subscription list, AFD custom domains, blobServices), {throttled} throttled"
    );
    println!("  peak memory (VmHWM) {peak_mb:.0} MB (before the sweep {baseline_mb:.0} MB)");
}

/// The lower bound's terms, from the rows each Resource Graph table holds.
struct Bound {
    pages_per_table: BTreeMap<String, u64>,
    critical_path: Duration,
    chains: Duration,
    graph_quota: Duration,
    arm_buckets: Duration,
}

impl Bound {
    fn of(rows: &BTreeMap<String, u64>, page_latency: Duration, subscriptions: usize, arm_reads: u64) -> Bound {
        let tuning = Tuning::default();
        let page = u64::from(tuning.page_size);
        let pages_per_table: BTreeMap<String, u64> =
            rows.iter().map(|(t, n)| (t.clone(), n.div_ceil(page).max(1))).collect();
        let total: u64 = pages_per_table.values().sum();
        let longest = pages_per_table.values().copied().max().unwrap_or(0);
        let in_flight = tuning.concurrent_queries.max(1) as u64;
        let windows = total.div_ceil(u64::from(GRAPH_QUOTA)).saturating_sub(1);
        // Reads spread over the subscriptions: the busiest holds at least the average, and the
        // wait grows with the count, so the average gives a bound.
        let per_subscription = arm_reads / subscriptions.max(1) as u64;
        let over_bucket = per_subscription.saturating_sub(ARM_READ_BUCKET);
        Bound {
            critical_path: page_latency * longest as u32,
            chains: page_latency * total.div_ceil(in_flight) as u32,
            graph_quota: if quota_on() {
                GRAPH_WINDOW * windows as u32 + page_latency
            } else {
                Duration::ZERO
            },
            arm_buckets: Duration::from_secs_f64(over_bucket as f64 / ARM_READ_REFILL_PER_SECOND as f64),
            pages_per_table,
        }
    }

    fn print(&self, elapsed: Duration) {
        let terms = [
            ("critical path (longest table's pages x latency)", self.critical_path),
            ("all pages over the chains in flight", self.chains),
            ("Resource Graph quota (15 per 5 s)", self.graph_quota),
            ("ARM read bucket", self.arm_buckets),
        ];
        println!(
            "  pages per table, at least (rows read / page size): {:?}",
            self.pages_per_table
        );
        for (name, value) in terms {
            println!("    {name}: {:.3} s", value.as_secs_f64());
        }
        // The fake enforces every term (Resource Graph's quota unless turned off, and ARM's read
        // bucket), so the bound is the largest of them.
        let bound = terms.iter().map(|(_, v)| *v).max().unwrap_or_default();
        println!(
            "  lower bound {:.3} s -> wall time / bound {:.2}x",
            bound.as_secs_f64(),
            elapsed.as_secs_f64() / bound.as_secs_f64().max(f64::EPSILON),
        );
    }
}
