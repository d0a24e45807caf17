//! Extraction at estate scale: reads, parses and extracts a generated 100,000-resource estate
//! file and reports wall time and peak memory.
//!
//! `cargo bench --bench extract` generates the file in a temporary directory from the
//! resources of `examples/estate.json` (every service, positive and negative cases, realistic
//! sizes: App Gateways with certificates, DNS records, storage companions), each copy renamed so
//! every resource and host name is distinct. The measurement runs in a child process so its
//! peak memory (VmHWM) covers reading, parsing, extraction and the plan, not the generation.
//! Set `SEEDWATCH_BENCH_RESOURCES` to change the count.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use seedwatch::adapters::estate_file::read_estate_file_for_extraction;
use seedwatch::domain::check::EnabledChecks;
use seedwatch::domain::extract::extract_resources;
use seedwatch::domain::plan::Plan;
use serde_json::Value;

const CHILD_ENV: &str = "SEEDWATCH_BENCH_ESTATE";
const DEFAULT_RESOURCES: usize = 100_000;

fn main() {
    if let Ok(file) = std::env::var(CHILD_ENV) {
        measure(Path::new(&file));
        return;
    }
    let count = std::env::var("SEEDWATCH_BENCH_RESOURCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_RESOURCES);
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("estate.json");
    let started = Instant::now();
    let bytes = generate(&file, count);
    println!(
        "generated {count} resources, {:.1} MB, in {:.2} s",
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let status = Command::new(std::env::current_exe().expect("own path"))
        .env(CHILD_ENV, &file)
        .status()
        .expect("run the measurement");
    assert!(status.success(), "measurement failed");
}

/// Writes `count` resources cloned from the example estate, renamed per copy.
fn generate(file: &Path, count: usize) -> u64 {
    let example: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/estate.json");
    let text = std::fs::read_to_string(&example).expect("examples/estate.json");
    let value: Value = serde_json::from_str(&text).expect("example estate is JSON");
    let templates: Vec<String> = value["data"]
        .as_array()
        .expect("example estate has a data array")
        .iter()
        .map(|r| serde_json::to_string(r).expect("serialise"))
        .collect();
    let mut out = std::io::BufWriter::new(std::fs::File::create(file).expect("create estate file"));
    write!(out, "{{\"count\": {count}, \"data\": [").expect("write");
    for i in 0..count {
        let copy = i / templates.len();
        let template = &templates[i % templates.len()];
        // Distinct resource ids, names and host names per copy; the subscription changes every
        // 2,000 resources as in a real tenant.
        // Addresses vary per copy too (public first octets 20..=69).
        let (a, b) = (20 + copy % 50, (copy / 50) % 256);
        let renamed = template
            .replace("contoso", &format!("contoso{copy}"))
            .replace("203.0.113.", &format!("{a}.{b}.113."))
            .replace("198.51.100.", &format!("{a}.{b}.100."))
            .replace("192.0.2.", &format!("{a}.{b}.2."))
            .replace("2001:0DB8:", &format!("2001:{:04x}:", copy % 0x10000))
            .replace("2001:db8:", &format!("2001:{:04x}:", copy % 0x10000))
            .replace(
                "8f3c2a1e-5b7d-4e9a-9c61-2d4f7a0b3e15",
                &format!("8f3c2a1e-5b7d-4e9a-9c61-{:012}", i / 2_000),
            );
        if i > 0 {
            out.write_all(b",\n").expect("write");
        }
        out.write_all(renamed.as_bytes()).expect("write");
    }
    out.write_all(b"]}\n").expect("write");
    out.flush().expect("flush");
    std::fs::metadata(file).expect("estate file").len()
}

fn measure(file: &Path) {
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let estate = read_estate_file_for_extraction(file).expect("read estate");
    let read = started.elapsed();
    let rss_read = memory_kb("VmRSS:");
    let extraction = extract_resources(&estate.resources, &EnabledChecks::all());
    let extracted = started.elapsed();
    let rss_extracted = memory_kb("VmRSS:");
    // As `seedwatch plan` does: the resources are not needed once their seeds are extracted.
    let resources = estate.resources.len();
    drop(estate.resources);
    let plan = Plan::new(&extraction, estate.warnings, resources);
    let mut json = Vec::new();
    plan.write_json(&mut json).expect("plan JSON");
    let total = started.elapsed();
    let cpu = cpu_seconds().zip(cpu_before).map(|(after, before)| after - before);
    let mb = |kb: Option<u64>| kb.map_or("unavailable".to_string(), |kb| format!("{:.1} MB", kb as f64 / 1024.0));
    println!("resources read:      {resources}");
    println!("contributions:       {}", extraction.contributions.len());
    println!("distinct seeds:      {}", plan.seeds.len());
    println!("warnings:            {}", plan.warnings.len());
    println!("plan JSON:           {:.1} MB", json.len() as f64 / 1e6);
    println!(
        "read + parse:        {:.3} s (RSS after: {})",
        read.as_secs_f64(),
        mb(rss_read)
    );
    println!(
        "extraction:          {:.3} s (RSS after: {})",
        (extracted - read).as_secs_f64(),
        mb(rss_extracted)
    );
    println!("plan + JSON:         {:.3} s", (total - extracted).as_secs_f64());
    println!("total wall time:     {:.3} s", total.as_secs_f64());
    match cpu {
        Some(cpu) => println!("total CPU time:      {cpu:.3} s (user + system)"),
        None => println!("total CPU time:      unavailable"),
    }
    println!("peak memory (VmHWM): {}", mb(memory_kb("VmHWM:")));
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!(
            "load average:        {}",
            load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
        );
    }
}

/// A `/proc/self/status` memory line (`VmHWM:`, `VmRSS:`) in kB.
fn memory_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// User plus system CPU time of this process, from `/proc/self/stat` (clock ticks of 1/100 s).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the whole line are utime and stime; `after_name` starts at field 3.
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / 100.0)
}
