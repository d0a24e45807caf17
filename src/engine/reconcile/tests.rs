//! The summary's field names are an interface (the handler's answers, run history, logs): they
//! are the ones the handler reported before the reconcile was typed.

use std::collections::BTreeSet;

use super::{BatchPosition, ReconcileReport};
use crate::domain::reconcile::Plan;
use crate::engine::rebuild::RebuildReport;
use crate::engine::sync::SyncReport;
use crate::ledger::failures::FailedChanges;

fn sync_report(dry_run: bool) -> SyncReport {
    SyncReport {
        scan_id: "scan".into(),
        seed_tag: "tag".into(),
        dry_run,
        resources_read: 3,
        subscriptions: 2,
        desired: 1,
        planned_add: Vec::new(),
        planned_delete: Vec::new(),
        plan: Plan::default(),
        added: Vec::new(),
        deleted: Vec::new(),
        kept: 1,
        skipped: Vec::new(),
        failed: Vec::new(),
        warnings: vec!["w".into()],
        incomplete_scopes: Vec::new(),
        tenants: Vec::new(),
        writes: Vec::new(),
        extraction: Default::default(),
        listed: Vec::new(),
        listed_at_ms: 0,
        completeness: Default::default(),
    }
}

fn keys(report: &ReconcileReport) -> BTreeSet<String> {
    let value = serde_json::to_value(report).unwrap();
    value.as_object().unwrap().keys().cloned().collect()
}

const COUNTS: [&str; 12] = [
    "dry_run",
    "resources_read",
    "subscriptions",
    "desired",
    "added",
    "deleted",
    "kept",
    "skipped",
    "failed",
    "warnings",
    "incomplete_scopes",
    "seeds_by_check",
];

fn expected(extra: &[&str]) -> BTreeSet<String> {
    COUNTS.iter().chain(extra).map(|k| k.to_string()).collect()
}

#[test]
fn a_real_run_with_a_ledger_reports_counts_rebuild_and_failed_changes() {
    let report = ReconcileReport {
        report: sync_report(false),
        rebuild: Some(RebuildReport::default()),
        ledger_warnings: vec!["ledger provenance unavailable: x".into()],
        failed_changes: Some(FailedChanges::default()),
        batch: None,
    };
    assert_eq!(
        keys(&report),
        expected(&["ledger", "failed_changes", "ledger_warnings"])
    );
    let value = serde_json::to_value(&report).unwrap();
    assert_eq!(value["warnings"], 1);
    assert_eq!(
        value["failed_changes"],
        serde_json::json!({"count": 0, "cleared": 0, "entries": []})
    );
}

#[test]
fn a_dry_run_without_a_ledger_lists_the_planned_writes_and_skips() {
    let report = ReconcileReport {
        report: sync_report(true),
        rebuild: None,
        ledger_warnings: Vec::new(),
        failed_changes: None,
        batch: None,
    };
    assert_eq!(
        keys(&report),
        expected(&["planned_add", "planned_delete", "skipped_deletes"])
    );
}

#[test]
fn a_batch_does_not_count_its_own_narrowing_as_incomplete() {
    let mut sync = sync_report(false);
    sync.incomplete_scopes = vec![crate::adapters::azure::IncompleteScope {
        subscription: "(every other subscription)".into(),
        check: None,
        why: crate::adapters::azure::Incomplete::Failed {
            message: "not part of this batch".into(),
        },
    }];
    let report = ReconcileReport {
        report: sync,
        rebuild: None,
        ledger_warnings: Vec::new(),
        failed_changes: None,
        batch: Some(BatchPosition { index: 1, count: 4 }),
    };
    let value = serde_json::to_value(&report).unwrap();
    assert_eq!(value["incomplete_scopes"], 0);
    assert_eq!(value["batch"], serde_json::json!({"index": 1, "of": 4}));
}
