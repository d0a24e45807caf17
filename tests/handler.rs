//! The Functions custom handler end to end: the built binary driven by a host emulator, the
//! retry queue against a fake Service Bus REST endpoint, and the event → retry → re-apply flow.

#[path = "support/fake_servicebus.rs"]
mod fake_servicebus;
#[path = "support/host_emulator.rs"]
mod host_emulator;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use fake_servicebus::{FakeAuth, FakeServiceBus};
use futures::FutureExt;
use host_emulator::*;
use serde_json::{Value, json};

use seedwatch::azure::StaticToken;
use seedwatch::config::Config;
use seedwatch::functions::events::{Change, ChangeKind};
use seedwatch::functions::ports::{Applier, Reconciler, Scope, WorkError};
use seedwatch::functions::runner::{Services, Tuning};
use seedwatch::functions::server::{AppState, ServicesFactory};
use seedwatch::queue::{QueueAuth, QueueError, QueueTarget, RetryJob, RetryQueue};
use seedwatch::secret::Secret;

const PIP: &str = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/publicIPAddresses/pip1";
const QUEUE: &str = "asm-retries";
const SAS_KEY: &str = "c2VlZHdhdGNoLXRlc3Qta2V5+/=";

fn config(yaml: Value) -> Config {
    Config::from_value(&yaml, "test", &HashMap::<String, String>::new()).unwrap()
}

/// Quick client retries so failure tests do not wait.
fn fast_config(service_bus: &str) -> Config {
    config(json!({
        "scan_id": "scan-1",
        "http": {"retry_count": 2, "retry_base_delay": "10ms", "retry_max_delay": "20ms", "timeout": "5s"},
        "azure": {"endpoints": {"service_bus": service_bus}},
        "retry": {"base_delay": "30s", "max_delay": "10m", "max_attempts": 3}
    }))
}

fn sas_connection(sb: &FakeServiceBus) -> String {
    format!(
        "Endpoint=sb://{}/;SharedAccessKeyName=send;SharedAccessKey={SAS_KEY}",
        sb.addr
    )
}

async fn sas_bus() -> FakeServiceBus {
    FakeServiceBus::start(
        QUEUE,
        FakeAuth::Sas {
            key_name: "send".into(),
            key: SAS_KEY.into(),
        },
    )
    .await
}

fn sas_queue(sb: &FakeServiceBus) -> RetryQueue {
    let cfg = fast_config(&sb.base_url());
    let env: HashMap<String, String> = [
        ("RETRY_QUEUE".to_string(), QUEUE.to_string()),
        ("ServiceBusConnection".to_string(), sas_connection(sb)),
    ]
    .into();
    RetryQueue::new(QueueTarget::from_env(&env, &cfg, None).unwrap(), &cfg)
}

fn apply_job(attempt: u32) -> RetryJob {
    RetryJob::Apply {
        resource_id: PIP.into(),
        change: ChangeKind::Changed,
        attempt,
        cause: Some("ASM answered 503".into()),
    }
}

// ---------------------------------------------------------------- the binary, as the host runs it

fn handler_settings(sb: Option<&FakeServiceBus>) -> Vec<(&'static str, String)> {
    let mut settings = vec![("LOG_LEVEL", "info".to_string())];
    match sb {
        Some(sb) => {
            settings.push((
                "CONNECTOR_CONFIG",
                format!(
                    "scan_id: scan-1\nazure:\n  endpoints:\n    service_bus: {}\n",
                    sb.base_url()
                ),
            ));
            settings.push(("RETRY_QUEUE", QUEUE.to_string()));
            settings.push(("ServiceBusConnection", sas_connection(sb)));
        }
        None => settings.push(("CONNECTOR_CONFIG", "scan_id: scan-1\n".to_string())),
    }
    settings
}

async fn start_handler(sb: Option<&FakeServiceBus>) -> HostEmulator {
    let settings = handler_settings(sb);
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    HostEmulator::start(&pairs).await
}

#[tokio::test]
async fn the_binary_answers_readiness_and_acknowledges_events_it_does_not_act_on() {
    let host = start_handler(None).await;
    eprintln!("cold start to first GET / answer: {:?}", host.cold_start);
    let ready = host.get("/").await;
    assert_eq!(ready.status, 200);

    let cases = [
        (resources_event("Microsoft.Resources.ResourceWriteFailure", PIP), false),
        (resources_event("Microsoft.Resources.ResourceDeleteCancel", PIP), true),
        (cloud_event("Microsoft.Resources.ResourceActionFailure", PIP), true),
        (cloud_event("Microsoft.Storage.BlobCreated", PIP), false),
        (
            json!({"id": "v1", "topic": "/subscriptions/1", "subject": "", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                   "eventTime": "2025-03-01T10:00:00Z", "data": {"validationCode": "512d38b6"}, "dataVersion": "1", "metadataVersion": "1"}),
            false,
        ),
    ];
    for (i, (event, chunked)) in cases.iter().enumerate() {
        let id = format!("inv-ack-{i}");
        let response = host
            .invoke("resource-events", &event_invocation(event), &id, *chunked)
            .await;
        response.assert_host_readable();
        assert_eq!(response.status, 200, "{}", response.body);
        assert!(
            response.logs_text().contains("acknowledged, not processed"),
            "{}",
            response.body
        );
    }
    // Every log line of an invocation carries its invocation id.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let records = host.log_records();
    let tagged: Vec<&Value> = records
        .iter()
        .filter(|r| r["span"]["invocation_id"] == json!("inv-ack-3"))
        .collect();
    assert!(!tagged.is_empty(), "no log line carries the invocation id: {records:?}");
    assert!(tagged.iter().all(|r| r["span"]["function"] == json!("resource-events")));
    // Info lines go to stdout, never to stderr (the host reads stderr lines as errors).
    assert!(host.stderr_lines().iter().all(|l| !l.contains("\"level\":\"INFO\"")));
}

#[tokio::test]
async fn malformed_invocations_get_a_clear_error_and_no_side_effects() {
    let sb = sas_bus().await;
    let host = start_handler(Some(&sb)).await;

    let bad_event_subject = resources_event("Microsoft.Resources.ResourceWriteSuccess", "not-an-arm-id");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("resource-events", b"{not json".to_vec(), "not JSON"),
        ("resource-events", b"[1,2]".to_vec(), "not a JSON object"),
        ("resource-events", b"{\"Metadata\":{}}".to_vec(), "no Data"),
        (
            "resource-events",
            json!({"Data": {"other": 1}}).to_string().into_bytes(),
            "\"event\"",
        ),
        (
            "resource-events",
            event_invocation(&json!("garbage")).to_string().into_bytes(),
            "not a JSON object",
        ),
        (
            "resource-events",
            event_invocation(&json!({"id": "1", "subject": PIP}))
                .to_string()
                .into_bytes(),
            "eventType",
        ),
        (
            "resource-events",
            event_invocation(&bad_event_subject).to_string().into_bytes(),
            "/subscriptions/",
        ),
        (
            "retry",
            servicebus_invocation("\"hello\"", "m1", 1).to_string().into_bytes(),
            "expected a JSON object",
        ),
        (
            "retry",
            servicebus_invocation("{\"kind\":\"explode\"}", "m2", 1)
                .to_string()
                .into_bytes(),
            "not a seedwatch job",
        ),
        (
            "retry",
            servicebus_invocation(
                "{\"kind\":\"apply\",\"resourceId\":\"nope\",\"change\":\"changed\",\"attempt\":1}",
                "m3",
                1,
            )
            .to_string()
            .into_bytes(),
            "resourceId",
        ),
        ("reconcile", b"".to_vec(), "not JSON"),
        ("no-such-function", b"{}".to_vec(), "no function"),
    ];
    for (i, (function, body, needle)) in cases.iter().enumerate() {
        let response = host
            .invoke_raw(function, body, &format!("inv-bad-{i}"), i % 2 == 0)
            .await;
        response.assert_host_readable();
        assert!(
            response.status >= 400 && response.status < 500,
            "{function} case {i}: {}",
            response.status
        );
        assert!(
            response.logs_text().contains(needle),
            "{function} case {i}: {}",
            response.body
        );
    }

    // A bad resync body is the caller's error: the invocation succeeds with res = 400.
    for (body, needle) in [
        (Some("{\"scope\":\"galaxy\"}"), "galaxy"),
        (Some("{\"scope\":\"resource\"}"), "id is required"),
        (Some("scope=all"), "not JSON"),
        (None, "Content-Length"),
    ] {
        let response = host
            .invoke("resync", &http_invocation(body), "inv-resync-bad", false)
            .await;
        response.assert_host_readable();
        assert_eq!(response.status, 200);
        let res = &response.body["Outputs"]["res"];
        assert_eq!(res["statusCode"], json!(400), "{}", response.body);
        assert_eq!(res["headers"]["Content-Type"], json!("application/json"));
        assert!(res["body"]["error"].as_str().unwrap_or("").contains(needle), "{res}");
    }
    assert_eq!(
        sb.requests(),
        0,
        "a malformed invocation sent something: {:?}",
        sb.journal()
    );
}

#[tokio::test]
async fn a_long_resync_is_accepted_and_queued_for_the_retry_function() {
    let sb = sas_bus().await;
    let host = start_handler(Some(&sb)).await;
    let response = host
        .invoke(
            "resync",
            &http_invocation(Some(
                "{\"scope\":\"subscription\",\"id\":\"11111111-1111-1111-1111-111111111111\"}",
            )),
            "inv-resync",
            true,
        )
        .await;
    response.assert_host_readable();
    let res = &response.body["Outputs"]["res"];
    assert_eq!(res["statusCode"], json!(202), "{}", response.body);
    assert_eq!(res["body"]["accepted"], json!(true));
    let sent = sb.delivered();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].message_id.as_deref(), res["body"]["messageId"].as_str());
    assert_eq!(sent[0].label.as_deref(), Some("resync"));
    assert!(sent[0].scheduled.is_none(), "a resync runs at once");
    assert_eq!(
        sent[0].body_json(),
        json!({"kind": "resync", "scope": "subscription", "id": "11111111-1111-1111-1111-111111111111", "attempt": 0})
    );
    // The queued job is readable by the retry function, as the host would deliver it.
    let delivery = servicebus_invocation(&sent[0].body_text(), sent[0].message_id.as_deref().unwrap(), 1);
    let response = host.invoke("retry", &delivery, "inv-retry-resync", false).await;
    response.assert_host_readable();
    assert!(response.status == 200 || response.status == 500, "{}", response.body);
    assert!(
        !response.logs_text().contains("not a seedwatch job"),
        "{}",
        response.body
    );
}

#[tokio::test]
async fn sigterm_stops_the_handler_gracefully() {
    let host = start_handler(None).await;
    let status = host.terminate().await;
    assert!(status.success(), "exit status {status}");
}

// ---------------------------------------------------------------- the retry queue client

#[tokio::test]
async fn retries_are_scheduled_in_the_future_with_a_fresh_message_id_each_time() {
    let sb = sas_bus().await;
    let queue = sas_queue(&sb);
    let before = SystemTime::now();
    let first = queue.schedule(&apply_job(1), Some("corr-1")).await.unwrap();
    let second = queue.schedule(&apply_job(1), Some("corr-1")).await.unwrap();
    assert_ne!(first.message_id, second.message_id);
    let sent = sb.delivered();
    assert_eq!(sent.len(), 2, "both delivered, none dropped as a duplicate");
    for message in &sent {
        let at = message.scheduled.expect("ScheduledEnqueueTimeUtc");
        // attempt 1 with base 30 s: between 15 s and 30 s from now (RFC 1123 drops sub-seconds).
        assert!(at >= before + Duration::from_secs(14), "{at:?}");
        assert!(at <= SystemTime::now() + Duration::from_secs(31), "{at:?}");
        assert_eq!(message.correlation_id.as_deref(), Some("corr-1"));
        assert_eq!(message.content_type.as_deref(), Some("application/json"));
        assert_eq!(message.body_json()["kind"], json!("apply"));
        assert_eq!(message.body_json()["resourceId"], json!(PIP));
    }
    let later = queue.schedule(&apply_job(3), None).await.unwrap();
    let delay = later.visible_at.unwrap().duration_since(SystemTime::now()).unwrap();
    assert!(
        delay >= Duration::from_secs(59) && delay <= Duration::from_secs(120),
        "{delay:?}"
    );
}

#[tokio::test]
async fn bearer_tokens_and_passing_failures_are_retried_permanent_ones_are_not() {
    let sb = FakeServiceBus::start(QUEUE, FakeAuth::Bearer("sb-token".into())).await;
    let cfg = fast_config(&sb.base_url());
    let target = |token: &str| QueueTarget {
        base_url: sb.base_url(),
        queue: QUEUE.into(),
        auth: QueueAuth::Bearer(Arc::new(StaticToken(Secret::new(token)))),
    };
    let queue = RetryQueue::new(target("sb-token"), &cfg);

    sb.inject(&[503, 429]);
    queue.send(&apply_job(1), None, None).await.unwrap();
    assert_eq!(sb.requests(), 3);
    assert_eq!(sb.delivered().len(), 1);

    sb.inject(&[503, 503, 503]);
    let err = queue.send(&apply_job(1), None, None).await.unwrap_err();
    assert!(matches!(err, QueueError::Refused { status: 503, .. }), "{err}");

    for (status, needle) in [
        (401, "Data Sender"),
        (403, "Data Sender"),
        (410, "RETRY_QUEUE"),
        (413, "too large"),
    ] {
        let before = sb.requests();
        sb.inject(&[status]);
        let err = queue.send(&apply_job(1), None, None).await.unwrap_err();
        assert!(
            matches!(err, QueueError::Refused { status: s, .. } if s == status),
            "{err}"
        );
        assert!(err.to_string().contains(needle), "{err}");
        assert_eq!(sb.requests(), before + 1, "{status} is not retried");
    }

    let wrong = RetryQueue::new(target("stale-token"), &cfg);
    let err = wrong.send(&apply_job(1), None, None).await.unwrap_err();
    assert!(matches!(err, QueueError::Refused { status: 401, .. }), "{err}");
    assert!(!err.to_string().contains("stale-token"));
}

#[tokio::test]
async fn the_fake_drops_a_reused_message_id_within_the_window() {
    let sb = sas_bus().await;
    let queue = sas_queue(&sb);
    // Two sends, then replay the first's exact broker properties by hand.
    queue.send(&apply_job(1), None, None).await.unwrap();
    let first = sb.journal()[0].clone();
    let client = reqwest::Client::new();
    let token = seedwatch::queue::sas_token(
        &format!("{}/{QUEUE}", sb.base_url()),
        "send",
        &Secret::new(SAS_KEY),
        4_000_000_000,
    );
    let resend = client
        .post(format!("{}/{QUEUE}/messages", sb.base_url()))
        .header("Authorization", token)
        .header("BrokerProperties", first.broker_properties.to_string())
        .body(first.body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resend.status().as_u16(), 201);
    assert!(resend.text().await.unwrap().is_empty());
    assert_eq!(sb.journal().len(), 2);
    assert_eq!(sb.delivered().len(), 1, "the duplicate was dropped");
}

// ---------------------------------------------------------------- event → retry → re-apply

/// A scripted apply path standing in for the ledger's until it is wired: records every call,
/// fails transiently while `asm_down` is set.
#[derive(Default)]
struct ScriptedApply {
    asm_down: AtomicBool,
    applied: Mutex<Vec<(String, ChangeKind)>>,
    calls: AtomicUsize,
    given_up: Mutex<Vec<String>>,
}

#[async_trait]
impl Applier for ScriptedApply {
    async fn apply(&self, change: &Change) -> Result<Value, WorkError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        if self.asm_down.load(Ordering::SeqCst) {
            return Err(WorkError::transient(
                "503 from ASM POST /v1/scans/scan-1/seeds: unavailable",
            ));
        }
        self.applied
            .lock()
            .unwrap()
            .push((change.id.as_str().to_string(), change.kind));
        Ok(json!({"added": 1}))
    }

    async fn give_up(&self, change: &Change, cause: &str) {
        self.given_up.lock().unwrap().push(format!("{} {cause}", change.id));
    }
}

#[async_trait]
impl Reconciler for ScriptedApply {
    async fn reconcile(&self, scope: &Scope, dry_run: bool) -> Result<Value, WorkError> {
        Ok(json!({"scope": scope.name(), "dry_run": dry_run}))
    }
}

struct InProcess {
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn in_process(engine: Arc<ScriptedApply>, sb: &FakeServiceBus, window: Duration) -> InProcess {
    let queue = Arc::new(sas_queue(sb));
    let factory: ServicesFactory = Arc::new(move || {
        let engine = Arc::clone(&engine);
        let queue = Arc::clone(&queue);
        async move {
            Ok(Services {
                applier: engine.clone(),
                reconciler: engine,
                queue: Some(queue),
                max_attempts: 3,
            })
        }
        .boxed()
    });
    let state = AppState::new(
        factory,
        Tuning {
            coalesce_window: window,
            concurrency: 8,
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(seedwatch::functions::server::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    InProcess { port, stop: Some(stop) }
}

async fn post(port: u16, function: &str, body: &Value) -> HostResponse {
    let headers = [
        ("Content-Type", "application/json; charset=utf-8"),
        ("X-Azure-Functions-InvocationId", "inv-in-process"),
    ];
    let response = http_request(
        port,
        "POST",
        &format!("/{function}"),
        &headers,
        body.to_string().as_bytes(),
        true,
    )
    .await;
    response.assert_host_readable();
    response
}

#[tokio::test]
async fn an_asm_outage_schedules_a_retry_and_the_retry_completes_the_work() {
    let sb = sas_bus().await;
    let engine = Arc::new(ScriptedApply::default());
    let server = in_process(Arc::clone(&engine), &sb, Duration::ZERO).await;

    engine.asm_down.store(true, Ordering::SeqCst);
    let event = resources_event("Microsoft.Resources.ResourceWriteSuccess", PIP);
    let before = SystemTime::now();
    let response = post(server.port, "resource-events", &event_invocation(&event)).await;
    assert_eq!(
        response.status, 200,
        "a scheduled retry is a success for Event Grid: {}",
        response.body
    );
    assert!(response.logs_text().contains("retry_scheduled"), "{}", response.body);
    let sent = sb.delivered();
    assert_eq!(sent.len(), 1);
    let retry = &sent[0];
    assert!(
        retry.scheduled.expect("scheduled") > before,
        "ScheduledEnqueueTimeUtc lies in the future"
    );
    assert_eq!(retry.body_json()["attempt"], json!(1));
    assert!(engine.applied.lock().unwrap().is_empty());

    // ASM is back; the retry function re-applies when the message becomes visible.
    engine.asm_down.store(false, Ordering::SeqCst);
    let delivery = servicebus_invocation(&retry.body_text(), retry.message_id.as_deref().unwrap(), 1);
    let response = post(server.port, "retry", &delivery).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        engine.applied.lock().unwrap().clone(),
        vec![(PIP.to_string(), ChangeKind::Changed)]
    );
    assert_eq!(sb.delivered().len(), 1, "no further retry");

    // Down again: each failed retry schedules the next attempt with a new MessageId, until
    // the last one, which gives up where the operator sees it.
    engine.asm_down.store(true, Ordering::SeqCst);
    let mut message = retry.clone();
    for attempt in 1..=3u32 {
        let delivery = servicebus_invocation(&message.body_text(), message.message_id.as_deref().unwrap(), 1);
        let response = post(server.port, "retry", &delivery).await;
        assert_eq!(response.status, 200, "{}", response.body);
        let delivered = sb.delivered();
        if attempt < 3 {
            let next = delivered.last().unwrap().clone();
            assert_eq!(next.body_json()["attempt"], json!(attempt + 1));
            assert_ne!(next.message_id, message.message_id);
            message = next;
        } else {
            assert_eq!(delivered.len(), 3, "no retry after the last attempt");
            assert!(response.logs_text().contains("not done"), "{}", response.body);
        }
    }
    let given_up = engine.given_up.lock().unwrap().clone();
    assert_eq!(given_up.len(), 1, "{given_up:?}");
    assert!(given_up[0].contains(PIP) && given_up[0].contains("503"), "{given_up:?}");
}

#[tokio::test]
async fn when_the_retry_cannot_be_queued_the_invocation_fails_so_event_grid_redelivers() {
    let sb = sas_bus().await;
    let engine = Arc::new(ScriptedApply::default());
    let server = in_process(Arc::clone(&engine), &sb, Duration::ZERO).await;
    engine.asm_down.store(true, Ordering::SeqCst);
    sb.inject(&[403]);
    let event = resources_event("Microsoft.Resources.ResourceDeleteSuccess", PIP);
    let response = post(server.port, "resource-events", &event_invocation(&event)).await;
    assert_eq!(response.status, 500, "{}", response.body);
    assert!(
        response.logs_text().contains("could not be queued"),
        "{}",
        response.body
    );
    assert!(sb.delivered().is_empty());
}

#[tokio::test]
async fn a_burst_of_events_for_one_resource_is_one_apply() {
    let sb = sas_bus().await;
    let engine = Arc::new(ScriptedApply::default());
    let server = in_process(Arc::clone(&engine), &sb, Duration::from_millis(200)).await;
    let mut invocations = Vec::new();
    for i in 0..40 {
        let event = if i % 2 == 0 {
            resources_event("Microsoft.Resources.ResourceWriteSuccess", PIP)
        } else {
            cloud_event(
                "Microsoft.Resources.ResourceWriteSuccess",
                &PIP.to_ascii_uppercase().replace("/SUBSCRIPTIONS/", "/subscriptions/"),
            )
        };
        let port = server.port;
        invocations.push(tokio::spawn(async move {
            post(port, "resource-events", &event_invocation(&event)).await
        }));
    }
    for invocation in invocations {
        assert_eq!(invocation.await.unwrap().status, 200);
    }
    assert_eq!(
        engine.calls.load(Ordering::SeqCst),
        1,
        "40 events for one resource, one apply"
    );
}

#[tokio::test]
async fn resync_of_one_resource_answers_with_the_result() {
    let sb = sas_bus().await;
    let engine = Arc::new(ScriptedApply::default());
    let server = in_process(Arc::clone(&engine), &sb, Duration::ZERO).await;
    let body = format!("{{\"scope\":\"resource\",\"id\":\"{PIP}\"}}");
    let response = post(server.port, "resync", &http_invocation(Some(&body))).await;
    let res = &response.body["Outputs"]["res"];
    assert_eq!(res["statusCode"], json!(200), "{}", response.body);
    assert_eq!(res["body"]["result"], json!({"added": 1}));
    let response = post(
        server.port,
        "resync",
        &http_invocation(Some("{\"scope\":\"all\",\"dry_run\":true}")),
    )
    .await;
    let res = &response.body["Outputs"]["res"];
    assert_eq!(res["statusCode"], json!(200), "{}", response.body);
    assert_eq!(res["body"]["summary"], json!({"scope": "all", "dry_run": true}));
    let response = post(server.port, "reconcile", &timer_invocation(true)).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(response.logs_text().contains("reconcile done"), "{}", response.body);
}
