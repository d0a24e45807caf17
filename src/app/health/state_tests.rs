use super::*;
use serde_json::json;

const HOUR: i64 = 3_600_000;

fn done(started: i64, summary: Value) -> RunRecord {
    RunRecord::started("timer", "all", started).finished_ok(&summary, started + 1_000)
}

fn inputs(runs: Vec<RunRecord>, now_ms: i64) -> StatusInputs {
    StatusInputs {
        runs,
        now_ms,
        period: Some(Duration::from_secs(6 * 3600)),
        ..StatusInputs::default()
    }
}

#[test]
fn each_state_from_its_inputs() {
    let now = 100 * HOUR;
    assert_eq!(decide(&inputs(vec![], now)).state, ConnectorState::Pending);

    let ok = done(now - HOUR, json!({"added": 1}));
    let online = decide(&inputs(vec![ok.clone()], now));
    assert_eq!(online.state, ConnectorState::Online, "{online:?}");
    assert!(online.notes.iter().any(|n| n.contains("no resource event")));

    let running = RunRecord::started("resync", "all", now - 1_000);
    assert_eq!(
        decide(&inputs(vec![running.clone(), ok.clone()], now)).state,
        ConnectorState::Refreshing
    );
    // A run that died without recording its end no longer counts as running.
    let dead = RunRecord::started("timer", "all", now - 2 * HOUR);
    assert_eq!(
        decide(&inputs(vec![dead, ok.clone()], now)).state,
        ConnectorState::Online
    );

    let incomplete = done(now - HOUR, json!({"incomplete_scopes": 2}));
    let degraded = decide(&inputs(vec![incomplete], now));
    assert_eq!(degraded.state, ConnectorState::Degraded);
    assert!(degraded.reasons[0].advice.contains("seedwatch check"));

    let stale = done(now - 13 * HOUR, json!({}));
    let offline = decide(&inputs(vec![stale], now));
    assert_eq!(offline.state, ConnectorState::Offline);
    assert!(
        offline.reasons[0].reason.contains("twice the schedule of 6h"),
        "{offline:?}"
    );
    // Within twice the schedule it is still fine.
    assert_eq!(
        decide(&inputs(vec![done(now - 11 * HOUR, json!({}))], now)).state,
        ConnectorState::Online
    );

    let mut broken = inputs(vec![ok.clone()], now);
    broken
        .probes
        .push(CheckLine::failed("asm.key", "rejected (401)", "set API_KEY"));
    let decision = decide(&broken);
    assert_eq!(decision.state, ConnectorState::Offline);
    assert_eq!(decision.reasons[0].advice, "set API_KEY");
}

#[test]
fn retries_degrade_only_after_an_hour_and_failed_changes_at_once() {
    let now = 100 * HOUR;
    let ok = done(now - HOUR, json!({}));
    let retry = |since| PendingRetry {
        resource: "/subscriptions/s/resourceGroups/rg".into(),
        since_ms: since,
        cause: "throttled".into(),
    };
    let mut recent = inputs(vec![ok.clone()], now);
    recent.pending_retries.push(retry(now - HOUR / 2));
    assert_eq!(decide(&recent).state, ConnectorState::Online);
    let mut old = inputs(vec![ok.clone()], now);
    old.pending_retries.push(retry(now - 2 * HOUR));
    assert_eq!(decide(&old).state, ConnectorState::Degraded);
    let mut failed = inputs(vec![ok], now);
    failed.failed_changes.push(FailedChangeView {
        resource: "/subscriptions/s/resourceGroups/rg".into(),
        change: "changed".into(),
        cause: "403".into(),
        attempts: 5,
        failed_ms: now,
    });
    assert_eq!(decide(&failed).state, ConnectorState::Degraded);
}

#[test]
fn schedule_periods() {
    let h = |n: u64| Some(Duration::from_secs(n * 3600));
    assert_eq!(ncrontab_period("0 0 */6 * * *"), h(6));
    assert_eq!(ncrontab_period("0 */15 * * * *"), Some(Duration::from_secs(900)));
    assert_eq!(ncrontab_period("0 30 * * * *"), h(1));
    assert_eq!(ncrontab_period("0 0 2 * * *"), h(24));
    assert_eq!(ncrontab_period("0 0 2,14 * * *"), h(12));
    assert_eq!(ncrontab_period("0 0 2 * * 1"), None);
    assert_eq!(ncrontab_period("01:00:00"), None);
}
