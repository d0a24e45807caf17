//! Sweeps a fake estate (default 100,000 resources in 20 subscriptions, 20 ms per Resource Graph
//! page) and reports wall time against the lower bound (pages x page latency), peak memory
//! (VmHWM) and request counts.
//!
//! The fake runs in a child process (this binary again, with `SEEDWATCH_BENCH_FAKE` set) so the
//! peak memory measured is the sweep's own.
//!
//! `cargo bench --bench sweep` (env: `SWEEP_RESOURCES`, `SWEEP_SUBSCRIPTIONS`, `SWEEP_PAGE_MS`,
//! `SWEEP_NO_ARM_CHILDREN` to read Resource Graph alone).

#[path = "../tests/support/fake_azure.rs"]
mod fake_azure;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use seedwatch::azure::arm::Tuning;
use seedwatch::azure::{AzureReader, NoProgress, StaticToken, TokenSource, live_from_config};
use seedwatch::check::EnabledChecks;
use seedwatch::config::Config;
use seedwatch::secret::Secret;

const FAKE_ENV: &str = "SEEDWATCH_BENCH_FAKE";

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Child mode: serve the generated estate until stdin closes.
fn serve_fake(resources: usize, subscriptions: usize, page_latency: Duration) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let fake = fake_azure::FakeAzure::start().await;
        fake.load(fake_azure::generate_estate(subscriptions, resources, 42));
        fake.set_page_latency(page_latency);
        // As before Resource Graph's real quota (15 queries per 5 s) came to the fake.
        fake.lax_graph_quota_for_test();
        println!("{}", fake.base_url());
        println!("{}", fake.arm_token_minted_for_test());
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

    let yaml = serde_json::json!({"azure": {"endpoints": {"resource_manager": base}}});
    let config =
        Config::from_value(&yaml, "bench", &std::collections::HashMap::<String, String>::new()).expect("config");
    let tokens: Arc<dyn TokenSource> = Arc::new(StaticToken(Secret::new(token)));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let baseline_mb = peak_rss_mb();
    let (elapsed, sweep, live) = runtime.block_on(async {
        let live = live_from_config(&config, tokens, Tuning::default());
        let started = Instant::now();
        let mut checks = EnabledChecks::all();
        if std::env::var_os("SWEEP_NO_ARM_CHILDREN").is_some() {
            // Resource Graph alone: no AFD custom domain or blobServices reads.
            checks.set(seedwatch::check::ServiceCheck::FrontDoorAfd, false);
            checks.set(seedwatch::check::ServiceCheck::StorageStaticWebsites, false);
        }
        let sweep = live.sweep(&checks, &NoProgress).await.expect("sweep");
        (started.elapsed(), sweep, live)
    });
    let peak_mb = peak_rss_mb();
    let pages = live.arm().counters.graph_pages.load(Ordering::Relaxed);
    let arm = live.arm().counters.arm_requests.load(Ordering::Relaxed);
    let throttled = live.arm().counters.throttled.load(Ordering::Relaxed);
    let bound = page_latency * pages as u32;
    drop(child.stdin.take());
    let _ = child.wait();

    println!(
        "sweep bench: {resources} resources in {subscriptions} subscriptions, {page_latency:?} per Resource Graph page"
    );
    println!(
        "  read {} resources, fully complete: {}",
        sweep.resources.len(),
        sweep.report.is_fully_complete()
    );
    println!("  wall time {:.3} s", elapsed.as_secs_f64());
    println!(
        "  lower bound (pages x page latency) {:.3} s -> {:.2}x",
        bound.as_secs_f64(),
        elapsed.as_secs_f64() / bound.as_secs_f64().max(f64::EPSILON)
    );
    println!(
        "  requests: {pages} Resource Graph pages, {arm} ARM GETs (subscription list, AFD custom domains, blobServices), {throttled} throttled"
    );
    println!("  peak memory (VmHWM) {peak_mb:.0} MB (before the sweep {baseline_mb:.0} MB)");
}
