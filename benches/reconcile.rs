//! Reconcile at scale: 100,000 desired seeds against 100,000 seeds in ASM (90% overlap, a mix
//! of spellings, tagged and untagged), with stale deletion on and an incomplete sweep so every
//! guard rail runs. Prints wall time per reconcile and the process's peak memory.
//!
//! Run: `cargo bench --bench reconcile`

use std::collections::BTreeSet;
use std::time::Instant;

use seedwatch::adapters::asm::AsmSeed;
use seedwatch::adapters::azure::{CompletenessReport, Incomplete, IncompleteScope};
use seedwatch::domain::reconcile::{Inputs, Provenance, Rules, Scope, reconcile};
use seedwatch::domain::seed::{Seed, SeedKind};

const SEEDS: usize = 100_000;

fn name(i: usize) -> String {
    format!("host{i}.region{}.contoso.com", i % 97)
}

fn main() {
    let desired: BTreeSet<Seed> = (0..SEEDS)
        .map(|i| Seed::from_host_value(&name(i)).expect("valid name"))
        .collect();
    // ASM holds 90% of them (every other one spelled in upper case with a trailing dot) plus
    // 10% stale ones; two thirds tagged.
    let asm: Vec<AsmSeed> = (SEEDS / 10..SEEDS + SEEDS / 10)
        .map(|i| AsmSeed {
            id: format!("id-{i}"),
            name: if i % 2 == 0 {
                name(i)
            } else {
                format!("{}.", name(i).to_uppercase())
            },
            kind: Some(SeedKind::Domain),
            tags: if i % 3 == 0 {
                vec!["manual".into()]
            } else {
                vec!["cloud-connector".into()]
            },
        })
        .collect();
    let subs: Vec<String> = (0..20).map(|i| format!("sub-{i}")).collect();
    let report = CompletenessReport {
        subscriptions: subs.clone(),
        incomplete: vec![IncompleteScope {
            subscription: subs[3].clone(),
            check: None,
            why: Incomplete::Forbidden {
                message: "no Reader".into(),
            },
        }],
        scope_unknown: false,
        ..Default::default()
    };
    let provenance: Provenance = (SEEDS..SEEDS + SEEDS / 10)
        .map(|i| {
            let seed = Seed::from_host_value(&name(i)).expect("valid name");
            let scope = Scope {
                subscription: subs[i % 20].clone(),
                check: seedwatch::domain::check::ServiceCheck::DnsRecords,
            };
            (seed, vec![scope])
        })
        .collect();
    let rules = Rules {
        seed_tag: "cloud-connector".into(),
        delete_stale: true,
        max_delete_fraction: 0.25,
        force_deletes: false,
        shared_tag: false,
    };

    let runs = 5;
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let started = Instant::now();
        let plan = reconcile(Inputs {
            desired: &desired,
            asm: &asm,
            completeness: &report,
            provenance: Some(&provenance),
            rules: &rules,
        });
        times.push(started.elapsed());
        last = Some(plan);
    }
    times.sort();
    let plan = last.expect("at least one run");
    println!(
        "reconcile {SEEDS} desired vs {} in ASM: median {:?}, min {:?} ({} adds, {} deletes, {} kept, {} skipped)",
        asm.len(),
        times[runs / 2],
        times[0],
        plan.add.len(),
        plan.delete.len(),
        plan.kept,
        plan.skipped.len()
    );
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM")).map(|l| l.to_string()))
        .unwrap_or_else(|| "VmHWM: unknown".into());
    println!(
        "peak memory (whole process, inputs included): {}",
        peak.trim_start_matches("VmHWM:").trim()
    );
}
