use super::*;
use serde_json::{Value, json};

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

/// The status document as `seedwatch status --json` and the status function write it, pinned
/// byte for byte: field names, key order, `null`s and omitted fields are an interface.
mod pinned_json {
    use super::*;

    /// What reaches the CLI (written directly) and the status function (through the
    /// envelope's `Value`): the same bytes.
    fn document(inputs: &StatusInputs) -> String {
        let decision = decide(inputs);
        let document = StatusDocument::new(inputs, &decision);
        let direct = serde_json::to_string(&document).unwrap();
        let through_value = serde_json::to_value(&document).unwrap().to_string();
        assert_eq!(direct, through_value);
        direct
    }

    fn healthy() -> StatusInputs {
        let now = 100 * HOUR;
        let ok = done(
            now - HOUR,
            json!({"added": 3, "deleted": 1, "skipped": 2, "warnings": 4,
                   "seeds_by_check": {"check_public_ip_addresses": 3, "check_dns_zones": 7}}),
        );
        StatusInputs {
            last_event_ms: Some(now - 5_000),
            probes: vec![
                CheckLine::ok("config", "valid"),
                CheckLine::ok("ledger", "memory is readable"),
            ],
            ..inputs(vec![ok], now)
        }
    }

    fn degraded() -> StatusInputs {
        let now = 100 * HOUR;
        let mut tenants = done(
            now - 3 * HOUR,
            json!({"incomplete_scopes": 1, "tenants": [
                {"tenant": "t1", "subscriptions": ["a", "b"], "complete": true},
                {"tenant": "t2", "subscriptions": [], "complete": false}]}),
        );
        tenants.trigger = "resync".into();
        let failed = RunRecord::started("cli", "sub-1", now - 2 * HOUR).finished_failed("ASM said \"no\"", now - HOUR);
        let dead = RunRecord::started("timer", "all", now - 30 * HOUR);
        StatusInputs {
            pending_retries: vec![PendingRetry {
                resource: "/subscriptions/s/resourceGroups/rg".into(),
                since_ms: now - 2 * HOUR,
                cause: "throttled".into(),
            }],
            failed_changes: vec![FailedChangeView {
                resource: "/subscriptions/s/resourceGroups/rg/providers/x/y".into(),
                change: "changed".into(),
                cause: "403 → denied".into(),
                attempts: 5,
                failed_ms: now - 60_000,
            }],
            probes: vec![
                CheckLine::ok("config", "valid"),
                CheckLine::warning("asm.tag", "no seed carries the tag", "run `seedwatch sync`"),
            ],
            ..inputs(vec![dead, failed, tenants], now)
        }
    }

    #[test]
    fn a_healthy_status() {
        let inputs = healthy();
        assert_eq!(decide(&inputs).state, ConnectorState::Online);
        assert_eq!(
            document(&inputs),
            "{\"checked_at\":\"1970-01-05T04:00:00Z\",\"checks\":[{\"detail\":\"valid\",\"name\":\"config\",\"state\":\"ok\"},{\"detail\":\"memory is readable\",\"name\":\"ledger\",\"state\":\"ok\"}],\"failed_changes\":[],\"last_event_applied\":\"1970-01-05T03:59:55Z\",\"notes\":[\"last event applied at 1970-01-05T03:59:55Z\"],\"reasons\":[],\"retries_pending\":[],\"runs\":[{\"added\":3,\"complete\":true,\"deleted\":1,\"ended\":\"1970-01-05T03:00:01Z\",\"ended_ms\":356401000,\"error\":null,\"failed_writes\":0,\"incomplete_scopes\":0,\"kept_by_guard_rails\":2,\"result\":\"ok\",\"scope\":\"all\",\"seeds_by_check\":{\"check_dns_zones\":7,\"check_public_ip_addresses\":3},\"started\":\"1970-01-05T03:00:00Z\",\"started_ms\":356400000,\"trigger\":\"timer\",\"warnings\":4}],\"state\":\"online\"}"
        );
    }

    #[test]
    fn a_degraded_status_with_failures_retries_and_tenants() {
        let inputs = degraded();
        assert_eq!(decide(&inputs).state, ConnectorState::Degraded);
        assert_eq!(
            document(&inputs),
            "{\"checked_at\":\"1970-01-05T04:00:00Z\",\"checks\":[{\"detail\":\"valid\",\"name\":\"config\",\"state\":\"ok\"},{\"advice\":\"run `seedwatch sync`\",\"detail\":\"no seed carries the tag\",\"name\":\"asm.tag\",\"state\":\"warning\"}],\"failed_changes\":[{\"attempts\":5,\"cause\":\"403 → denied\",\"change\":\"changed\",\"failed_ms\":359940000,\"resource\":\"/subscriptions/s/resourceGroups/rg/providers/x/y\"}],\"last_event_applied\":null,\"notes\":[\"no resource event applied yet\"],\"reasons\":[{\"advice\":\"run `seedwatch check` to find the broken dependency\",\"reason\":\"the last reconcile failed: ASM said \\\"no\\\"\"},{\"advice\":\"the next complete reconcile repairs them; see the failed changes below for their causes\",\"reason\":\"1 changes failed after their last retry\"},{\"advice\":\"check that the retry function runs (Service Bus Data Receiver on the queue) and what keeps failing\",\"reason\":\"1 retries pending for more than an hour (oldest: /subscriptions/s/resourceGroups/rg since 1970-01-05T02:00:00Z: throttled)\"}],\"retries_pending\":[{\"cause\":\"throttled\",\"resource\":\"/subscriptions/s/resourceGroups/rg\",\"since_ms\":352800000}],\"runs\":[{\"added\":0,\"complete\":false,\"deleted\":0,\"ended_ms\":null,\"error\":null,\"failed_writes\":0,\"incomplete_scopes\":0,\"kept_by_guard_rails\":0,\"result\":\"running\",\"scope\":\"all\",\"seeds_by_check\":{},\"started\":\"1970-01-03T22:00:00Z\",\"started_ms\":252000000,\"trigger\":\"timer\",\"warnings\":0},{\"added\":0,\"complete\":false,\"deleted\":0,\"ended\":\"1970-01-05T03:00:00Z\",\"ended_ms\":356400000,\"error\":\"ASM said \\\"no\\\"\",\"failed_writes\":0,\"incomplete_scopes\":0,\"kept_by_guard_rails\":0,\"result\":\"failed\",\"scope\":\"sub-1\",\"seeds_by_check\":{},\"started\":\"1970-01-05T02:00:00Z\",\"started_ms\":352800000,\"trigger\":\"cli\",\"warnings\":0},{\"added\":0,\"complete\":false,\"deleted\":0,\"ended\":\"1970-01-05T01:00:01Z\",\"ended_ms\":349201000,\"error\":null,\"failed_writes\":0,\"incomplete_scopes\":1,\"kept_by_guard_rails\":0,\"result\":\"ok\",\"scope\":\"all\",\"seeds_by_check\":{},\"started\":\"1970-01-05T01:00:00Z\",\"started_ms\":349200000,\"tenants\":[{\"complete\":true,\"subscriptions\":2,\"tenant\":\"t1\"},{\"complete\":false,\"subscriptions\":0,\"tenant\":\"t2\"}],\"trigger\":\"resync\",\"warnings\":0}],\"state\":\"degraded\"}"
        );
    }

    #[test]
    fn an_offline_status_with_nothing_recorded() {
        let inputs = StatusInputs {
            probes: vec![CheckLine::failed("asm.key", "rejected (401)", "set API_KEY")],
            ..inputs(vec![], 100 * HOUR)
        };
        assert_eq!(
            document(&inputs),
            "{\"checked_at\":\"1970-01-05T04:00:00Z\",\"checks\":[{\"advice\":\"set API_KEY\",\"detail\":\"rejected (401)\",\"name\":\"asm.key\",\"state\":\"failed\"}],\"failed_changes\":[],\"last_event_applied\":null,\"notes\":[],\"reasons\":[{\"advice\":\"set API_KEY\",\"reason\":\"asm.key: rejected (401)\"}],\"retries_pending\":[],\"runs\":[],\"state\":\"offline\"}"
        );
    }
}
