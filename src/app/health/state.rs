//! The connector's state (pure): online, degraded, offline, pending or refreshing, with the
//! reasons and what to do, from the run history, the failed changes, the pending retries and
//! the read-only probes (token, ASM key, ledger).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::report::{CheckLine, LineState};
use crate::ledger::history::{PendingRetry, RunRecord, RunResult, TenantRun};

/// A run still marked running after this long has died without recording its end.
pub(crate) const STALE_RUNNING: Duration = Duration::from_secs(60 * 60);
/// Retries pending longer than this degrade the connector.
pub(crate) const RETRY_PATIENCE: Duration = Duration::from_secs(60 * 60);
/// The reconcile period when `RECONCILE_SCHEDULE` is unset or not understood (the template's
/// default, `0 0 */6 * * *`).
pub(crate) const DEFAULT_PERIOD: Duration = Duration::from_secs(6 * 60 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ConnectorState {
    Online,
    Degraded,
    Offline,
    Pending,
    Refreshing,
}

impl ConnectorState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ConnectorState::Online => "online",
            ConnectorState::Degraded => "degraded",
            ConnectorState::Offline => "offline",
            ConnectorState::Pending => "pending",
            ConnectorState::Refreshing => "refreshing",
        }
    }

    /// `seedwatch status`'s exit code: 0 online or refreshing, 1 pending or degraded, 2 offline.
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            ConnectorState::Online | ConnectorState::Refreshing => 0,
            ConnectorState::Pending | ConnectorState::Degraded => 1,
            ConnectorState::Offline => 2,
        }
    }
}

/// Why the state is what it is, and what to do about it. (Fields in the document's key order.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Reason {
    pub advice: String,
    pub reason: String,
}

fn reason(reason: impl Into<String>, advice: impl Into<String>) -> Reason {
    Reason {
        reason: reason.into(),
        advice: advice.into(),
    }
}

/// A failed change as the status shows it. (Fields in the document's key order.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct FailedChangeView {
    pub attempts: u32,
    pub cause: String,
    pub change: String,
    pub failed_ms: i64,
    pub resource: String,
}

/// Everything the state is decided from.
#[derive(Debug, Clone, Default)]
pub(crate) struct StatusInputs {
    /// Newest first.
    pub runs: Vec<RunRecord>,
    pub last_event_ms: Option<i64>,
    pub pending_retries: Vec<PendingRetry>,
    pub failed_changes: Vec<FailedChangeView>,
    /// The read-only probes: configuration, token, ASM key and scan, ledger read.
    pub probes: Vec<CheckLine>,
    pub now_ms: i64,
    pub period: Option<Duration>,
}

/// The decided state with its reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Decision {
    pub state: ConnectorState,
    pub reasons: Vec<Reason>,
    /// Facts that change nothing but an operator wants to know (no event applied yet, ...).
    pub notes: Vec<String>,
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Decides the state: offline first (a broken dependency or no reconcile for twice the
/// schedule), then refreshing, pending, degraded, online.
pub(crate) fn decide(inputs: &StatusInputs) -> Decision {
    let mut notes = Vec::new();
    let offline: Vec<Reason> = inputs
        .probes
        .iter()
        .filter(|p| p.state == LineState::Failed)
        .map(|p| {
            reason(
                format!("{}: {}", p.name, p.detail),
                p.advice.clone().unwrap_or_default(),
            )
        })
        .collect();
    if !offline.is_empty() {
        return Decision {
            state: ConnectorState::Offline,
            reasons: offline,
            notes,
        };
    }
    let running = inputs
        .runs
        .iter()
        .find(|r| r.result == RunResult::Running && inputs.now_ms - r.started_ms < ms(STALE_RUNNING));
    let finished = inputs.runs.iter().find(|r| r.result != RunResult::Running);
    if let Some(run) = running {
        let why = format!(
            "a {} reconcile of {} is running since {}",
            run.trigger,
            run.scope,
            rfc3339(run.started_ms)
        );
        return Decision {
            state: ConnectorState::Refreshing,
            reasons: vec![reason(why, "wait for it to finish; the page refreshes the state")],
            notes,
        };
    }
    let Some(last) = finished else {
        return Decision {
            state: ConnectorState::Pending,
            reasons: vec![reason(
                "no reconcile has finished yet",
                "wait for the reconcile timer, or press \"refresh now\" (POST /api/resync {\"scope\":\"all\"})",
            )],
            notes,
        };
    };
    let period = inputs.period.unwrap_or(DEFAULT_PERIOD);
    let last_end = last.ended_ms.unwrap_or(last.started_ms);
    if inputs.now_ms - last_end > 2 * ms(period) {
        return Decision {
            state: ConnectorState::Offline,
            reasons: vec![reason(
                format!(
                    "no reconcile since {} (more than twice the schedule of {})",
                    rfc3339(last_end),
                    humanize(period)
                ),
                "check that the Function App is running and its reconcile timer fires (Application Insights, `az functionapp show`)",
            )],
            notes,
        };
    }
    let degraded = degraded_reasons(inputs, last);
    match inputs.last_event_ms {
        Some(at) => notes.push(format!("last event applied at {}", rfc3339(at))),
        None => notes.push("no resource event applied yet".into()),
    }
    Decision {
        state: if degraded.is_empty() {
            ConnectorState::Online
        } else {
            ConnectorState::Degraded
        },
        reasons: degraded,
        notes,
    }
}

fn degraded_reasons(inputs: &StatusInputs, last: &RunRecord) -> Vec<Reason> {
    let mut out = Vec::new();
    if last.result == RunResult::Failed {
        let cause = last
            .error
            .clone()
            .unwrap_or_else(|| format!("{} writes failed", last.failed_writes));
        out.push(reason(
            format!("the last reconcile failed: {cause}"),
            "run `seedwatch check` to find the broken dependency",
        ));
    }
    if last.result == RunResult::Ok && !last.complete {
        out.push(reason(
            format!("the last reconcile left {} scopes incomplete", last.incomplete_scopes),
            "run `seedwatch check`: it lists the subscriptions without Reader and the command that grants it",
        ));
    }
    if !inputs.failed_changes.is_empty() {
        out.push(reason(
            format!("{} changes failed after their last retry", inputs.failed_changes.len()),
            "the next complete reconcile repairs them; see the failed changes below for their causes",
        ));
    }
    let old: Vec<&PendingRetry> = inputs
        .pending_retries
        .iter()
        .filter(|p| inputs.now_ms - p.since_ms > ms(RETRY_PATIENCE))
        .collect();
    if let Some(oldest) = old.first() {
        out.push(reason(
            format!(
                "{} retries pending for more than an hour (oldest: {} since {}: {})",
                old.len(),
                oldest.resource,
                rfc3339(oldest.since_ms),
                oldest.cause
            ),
            "check that the retry function runs (Service Bus Data Receiver on the queue) and what keeps failing",
        ));
    }
    out
}

/// Unix milliseconds as RFC 3339 UTC.
pub(crate) fn rfc3339(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

fn humanize(d: Duration) -> String {
    let secs = d.as_secs();
    if secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs.is_multiple_of(60) {
        format!("{}min", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// The period of an NCRONTAB schedule (`{second} {minute} {hour} {day} {month} {dow}`), for
/// the common shapes: `*/N` in the minute or hour field, or a list of hours. `None` when the
/// shape is not one of those (the caller then assumes [`DEFAULT_PERIOD`]).
pub(crate) fn ncrontab_period(schedule: &str) -> Option<Duration> {
    let fields: Vec<&str> = schedule.split_whitespace().collect();
    let [_, minute, hour, day, month, dow] = fields.as_slice() else {
        return None;
    };
    if ![day, month, dow].iter().all(|f| **f == "*") {
        return None;
    }
    let step = |f: &str| {
        f.strip_prefix("*/")
            .and_then(|n| n.parse::<u64>().ok())
            .filter(|n| *n > 0)
    };
    if let Some(n) = step(minute) {
        return (*hour == "*").then(|| Duration::from_secs(n * 60));
    }
    minute.parse::<u64>().ok()?;
    if let Some(n) = step(hour) {
        return Some(Duration::from_secs(n * 3600));
    }
    if *hour == "*" {
        return Some(Duration::from_secs(3600));
    }
    let hours: Option<Vec<u64>> = hour.split(',').map(|h| h.parse().ok()).collect();
    let count = hours?.len() as u64;
    (count > 0).then(|| Duration::from_secs(24 * 3600 / count))
}

/// The status as one document (`seedwatch status --json` and the status function), serialised
/// at the edge. Every object's keys are declared in alphabetical order, as the document has
/// always been written (the `runs` and `retries_pending` items are views of the ledger's records
/// for that reason); the pinning tests hold it byte for byte.
#[derive(Debug, Serialize)]
pub(crate) struct StatusDocument<'a> {
    checked_at: String,
    checks: &'a [CheckLine],
    failed_changes: &'a [FailedChangeView],
    last_event_applied: Option<String>,
    notes: &'a [String],
    reasons: &'a [Reason],
    retries_pending: Vec<RetryView<'a>>,
    runs: Vec<RunView<'a>>,
    state: ConnectorState,
}

impl<'a> StatusDocument<'a> {
    pub(crate) fn new(inputs: &'a StatusInputs, decision: &'a Decision) -> StatusDocument<'a> {
        StatusDocument {
            checked_at: rfc3339(inputs.now_ms),
            checks: &inputs.probes,
            failed_changes: &inputs.failed_changes,
            last_event_applied: inputs.last_event_ms.map(rfc3339),
            notes: &decision.notes,
            reasons: &decision.reasons,
            retries_pending: inputs.pending_retries.iter().map(RetryView::new).collect(),
            runs: inputs.runs.iter().map(RunView::new).collect(),
            state: decision.state,
        }
    }
}

/// A [`PendingRetry`] in the document.
#[derive(Debug, Serialize)]
struct RetryView<'a> {
    cause: &'a str,
    resource: &'a str,
    since_ms: i64,
}

impl<'a> RetryView<'a> {
    fn new(retry: &'a PendingRetry) -> RetryView<'a> {
        let PendingRetry {
            resource,
            since_ms,
            cause,
        } = retry;
        RetryView {
            cause,
            resource,
            since_ms: *since_ms,
        }
    }
}

/// A [`RunRecord`] in the document: every field of the record (the destructuring below names
/// them all, so a new one must be placed here), with its times also as RFC 3339.
#[derive(Debug, Serialize)]
struct RunView<'a> {
    added: u64,
    complete: bool,
    deleted: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended: Option<String>,
    ended_ms: Option<i64>,
    error: Option<&'a str>,
    failed_writes: u64,
    incomplete_scopes: u64,
    kept_by_guard_rails: u64,
    result: RunResult,
    scope: &'a str,
    seeds_by_check: &'a BTreeMap<String, u64>,
    started: String,
    started_ms: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tenants: Vec<TenantView<'a>>,
    trigger: &'a str,
    warnings: u64,
}

impl<'a> RunView<'a> {
    fn new(run: &'a RunRecord) -> RunView<'a> {
        let RunRecord {
            trigger,
            scope,
            started_ms,
            ended_ms,
            result,
            added,
            deleted,
            kept_by_guard_rails,
            warnings,
            failed_writes,
            complete,
            incomplete_scopes,
            error,
            seeds_by_check,
            tenants,
        } = run;
        RunView {
            added: *added,
            complete: *complete,
            deleted: *deleted,
            ended: ended_ms.map(rfc3339),
            ended_ms: *ended_ms,
            error: error.as_deref(),
            failed_writes: *failed_writes,
            incomplete_scopes: *incomplete_scopes,
            kept_by_guard_rails: *kept_by_guard_rails,
            result: *result,
            scope,
            seeds_by_check,
            started: rfc3339(*started_ms),
            started_ms: *started_ms,
            tenants: tenants.iter().map(TenantView::new).collect(),
            trigger,
            warnings: *warnings,
        }
    }
}

/// A [`TenantRun`] in the document.
#[derive(Debug, Serialize)]
struct TenantView<'a> {
    complete: bool,
    subscriptions: u64,
    tenant: &'a str,
}

impl<'a> TenantView<'a> {
    fn new(run: &'a TenantRun) -> TenantView<'a> {
        let TenantRun {
            tenant,
            subscriptions,
            complete,
        } = run;
        TenantView {
            complete: *complete,
            subscriptions: *subscriptions,
            tenant,
        }
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
