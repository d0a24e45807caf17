//! The Lambda entry point, driven at the `service_fn` layer: realistic Lambda payloads (fixtures
//! in `tests/fixtures/lambda/`: an EventBridge scheduled-rule event, the Scheduler input, function
//! URL requests in payload format 2.0 carrying Event Grid deliveries and resyncs) are handed to
//! the handler as `LambdaEvent::new(payload, Context::default())`, with the fake ASM and fake
//! Service Bus behind the engines.
//!
//! The engines are the real ones, assembled by `cli::serve::services_with_azure` exactly as the
//! Functions handler's: the ledger's apply path and the ledger-aware sync engine, over a fake
//! ARM / Resource Graph (with the fake's fixed token: `azure_identity` cannot be pointed at a
//! fake in-process), the fake ASM, the fake Service Bus (SAS) and a local ledger in a temporary
//! directory.

use crate::support::{fake_asm, fake_azure, fake_servicebus};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use fake_asm::FakeAsm;
use fake_azure::FakeAzure;
use fake_servicebus::{FakeAuth, FakeServiceBus};
use futures::FutureExt;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

use seedwatch::adapters::azure::{AzureReader, StaticToken, TokenSource, live_from_config};
use seedwatch::config::Config;
use seedwatch::domain::secret::Secret;
use seedwatch::transport::functions::server::{AppState, ServicesFactory};
use seedwatch::transport::lambda::handler::LambdaApp;
use seedwatch::transport::lambda::webhook::WebhookSecret;

/// The secret the fixtures carry (a test value, in `?code=` or `x-seedwatch-secret`).
const SECRET: &str = "fixture-secret-7c1e4a9b2d6f8e30";
const SUB: &str = "11111111-1111-1111-1111-111111111111";
const SCAN: &str = "scan-1";
const KEY: &str = "asm-test-key";
const TAG: &str = "cloud-connector";
const QUEUE: &str = "asm-retries";
const SAS_KEY: &str = "c2VlZHdhdGNoLXRlc3Qta2V5+/=";

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/lambda/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn config(asm: &FakeAsm, azure: &FakeAzure, bus: &FakeServiceBus, ledger: &std::path::Path) -> Config {
    let yaml = json!({
        "scan_id": SCAN,
        "seed_tag": TAG,
        "delete_stale_seeds": true,
        // Laxer than the default: these estates hold two seeds, so the deletion breaker is open.
        "sync": {"max_delete_fraction": 1.0},
        "http": {"retry_count": 1, "retry_base_delay": "10ms", "retry_max_delay": "20ms", "timeout": "5s"},
        "asm": {"base_url": asm.base_url()},
        "azure": {"credential": "client_secret", "endpoints": {"resource_manager": azure.base_url(), "service_bus": bus.base_url()}},
        "ledger": {"kind": "local", "path": ledger.display().to_string()},
        "retry": {"base_delay": "30s", "max_delay": "10m", "max_attempts": 3}
    });
    let mut config = Config::from_value(&yaml, "test", &HashMap::<String, String>::new()).unwrap();
    config.api_key = Some(Secret::new(KEY));
    config
}

fn pip_body(n: u32, ip: &str) -> Value {
    json!({
        "id": pip(n), "name": format!("pip{n}"), "type": "Microsoft.Network/publicIPAddresses",
        "location": "westeurope", "sku": {"name": "Standard", "tier": "Regional"}, "tags": {"env": "prod"},
        "properties": {"provisioningState": "Succeeded", "ipAddress": ip, "publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4"}
    })
}

struct Harness {
    app: LambdaApp,
    azure: FakeAzure,
    asm: FakeAsm,
    bus: FakeServiceBus,
    _ledger: tempfile::TempDir,
    /// How many times the engines were built (a refused request must not even build them).
    builds: Arc<AtomicUsize>,
}

/// The estate behind the fake ARM: the two public IPs the fixtures' events are about.
async fn harness_with(secret: Result<WebhookSecret, String>, scan_exists: bool) -> Harness {
    let azure = FakeAzure::start().await;
    azure.add_subscription(SUB, "Enabled");
    azure.load(vec![pip_body(1, "198.51.100.7"), pip_body(2, "198.51.100.8")]);
    let asm = FakeAsm::start(KEY).await;
    if scan_exists {
        asm.add_scan(SCAN);
    }
    let bus = FakeServiceBus::start(
        QUEUE,
        FakeAuth::Sas {
            key_name: "send".into(),
            key: SAS_KEY.into(),
        },
    )
    .await;
    let ledger = tempfile::tempdir().unwrap();
    let config = config(&asm, &azure, &bus, &ledger.path().join("ledger.redb"));
    let env: HashMap<String, String> = [
        ("RETRY_QUEUE".to_string(), QUEUE.to_string()),
        (
            "ServiceBusConnection".to_string(),
            format!(
                "Endpoint=sb://{}/;SharedAccessKeyName=send;SharedAccessKey={SAS_KEY}",
                bus.addr
            ),
        ),
    ]
    .into();
    let builds = Arc::new(AtomicUsize::new(0));
    // The Lambda never uses managed identity (its credential is a client secret or workload
    // identity, not served by the fake): a token minted by the fake stands in for it.
    let arm_token = azure.arm_token_minted_for_test();
    let factory: ServicesFactory = {
        let builds = Arc::clone(&builds);
        Arc::new(move || {
            let arm_token = arm_token.clone();
            builds.fetch_add(1, Ordering::SeqCst);
            let (config, env) = (config.clone(), env.clone());
            async move {
                let tokens: Arc<dyn TokenSource> = Arc::new(StaticToken(Secret::new(arm_token.clone())));
                let reader: Arc<dyn AzureReader> =
                    Arc::new(live_from_config(&config, tokens.clone(), Default::default()));
                let mut services =
                    seedwatch::transport::cli::serve::services_with_azure(config, &env, (reader, tokens)).await?;
                services.events = seedwatch::transport::lambda::tuning(services.events.clone());
                Ok(services)
            }
            .boxed()
        })
    };
    let app = LambdaApp::new(AppState::new(factory), secret);
    Harness {
        app,
        azure,
        asm,
        bus,
        _ledger: ledger,
        builds,
    }
}

async fn harness() -> Harness {
    harness_with(WebhookSecret::new(SECRET), true).await
}

impl Harness {
    async fn invoke(&self, payload: Value) -> Result<Value, lambda_runtime::Error> {
        self.app.handle(LambdaEvent::new(payload, Context::default())).await
    }

    /// A function URL invocation: the response object, and its body parsed.
    async fn http(&self, payload: Value) -> (u16, Value, Value) {
        let response = self
            .invoke(payload)
            .await
            .expect("a function URL request always gets an answer");
        let status = response["statusCode"].as_u64().unwrap() as u16;
        let body = match response["body"].as_str() {
            Some(text) => serde_json::from_str(text).unwrap(),
            None => Value::Null,
        };
        (status, response, body)
    }

    fn tagged(&self) -> std::collections::BTreeSet<String> {
        self.asm.tagged_names(SCAN, TAG)
    }
}

fn pip(n: u32) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Network/publicIPAddresses/pip{n}")
}

#[tokio::test]
async fn a_scheduled_event_runs_the_full_reconcile() {
    let h = harness().await;
    let answer = h.invoke(fixture("schedule-rule.json")).await.unwrap();
    assert_eq!(answer["outcome"], "done", "{answer}");
    let expected: std::collections::BTreeSet<String> = ["198.51.100.7", "198.51.100.8"].map(String::from).into();
    assert_eq!(h.tagged(), expected);
    assert!(
        h.azure.counts().graph_pages > 0,
        "the reconcile sweeps through Resource Graph"
    );

    // The Scheduler's input runs it too; nothing changed, so nothing is written.
    let writes = h.asm.write_attempts();
    let answer = h.invoke(fixture("scheduler-input.json")).await.unwrap();
    assert_eq!(answer["outcome"], "done", "{answer}");
    assert_eq!(h.asm.write_attempts(), writes);

    // A passing failure (ASM down) schedules a resync job through Service Bus.
    h.asm.set_outage(true);
    let answer = h.invoke(fixture("schedule-rule.json")).await.unwrap();
    assert_eq!(answer["outcome"], "retry_scheduled", "{answer}");
    let sent = h.bus.delivered();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body_json()["scope"], "all", "{}", sent[0].body_text());
}

#[tokio::test]
async fn a_reconcile_that_cannot_succeed_is_an_invocation_error() {
    let h = harness_with(WebhookSecret::new(SECRET), false).await;
    let err = h.invoke(fixture("schedule-rule.json")).await.unwrap_err();
    assert!(err.to_string().contains(SCAN), "{err}");
    assert!(h.bus.journal().is_empty(), "a permanent failure is not retried");
}

#[tokio::test]
async fn the_validation_handshake_is_answered_as_event_grid_expects() {
    let h = harness().await;
    let (status, response, body) = h.http(fixture("url-validation.json")).await;
    assert_eq!(status, 200);
    assert_eq!(response["headers"]["content-type"], "application/json");
    assert_eq!(
        body,
        json!({"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"})
    );
    assert_eq!(h.builds.load(Ordering::SeqCst), 0, "the handshake needs no engine");

    // Without the header, the validation event alone is enough.
    let mut payload = fixture("url-validation.json");
    payload["headers"].as_object_mut().unwrap().remove("aeg-event-type");
    let (status, _, body) = h.http(payload).await;
    assert_eq!(
        (status, body["validationResponse"].as_str()),
        (200, Some("512d38b6-c7b8-40c8-89fe-f46f9e9622b6"))
    );

    // The CloudEvents abuse-protection handshake.
    let (status, response, _) = h.http(fixture("url-cloudevents-handshake.json")).await;
    assert_eq!(status, 200);
    assert_eq!(response["headers"]["webhook-allowed-origin"], "eventgrid.azure.net");
    assert!(h.asm.journal().is_empty());
    assert_eq!(h.azure.counts().arm_gets, 0);
}

#[tokio::test]
async fn a_batch_of_resource_events_is_applied_and_the_seeds_reach_asm() {
    let h = harness().await;
    let (status, _, body) = h.http(fixture("url-events.json")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["events"], 3);
    let outcomes: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, vec!["applied"; 3], "{body}");
    let expected: std::collections::BTreeSet<String> = ["198.51.100.7", "198.51.100.8"].map(String::from).into();
    assert_eq!(h.tagged(), expected);

    // The same delivery again (Event Grid delivers at least once) writes nothing more.
    let writes = h.asm.write_attempts();
    let (status, _, _) = h.http(fixture("url-events.json")).await;
    assert_eq!(status, 200);
    assert_eq!(h.asm.write_attempts(), writes);

    // pip1 deleted, as a CloudEvent the function URL base64-encoded: its seed goes.
    h.azure.delete(&pip(1));
    let mut payload = fixture("url-cloudevent.json");
    let body_text = String::from_utf8(
        base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            payload["body"].as_str().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let mut event: Value = serde_json::from_str(&body_text).unwrap();
    event["type"] = json!("Microsoft.ResourceNotifications.Resources.Deleted");
    event["data"] =
        json!({"resourceInfo": {"id": pip(1), "name": "pip1", "type": "Microsoft.Network/publicIPAddresses"}});
    payload["body"] = json!(base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        event.to_string()
    ));
    let (status, _, body) = h.http(payload).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["outcome"], "applied", "{body}");
    let expected: std::collections::BTreeSet<String> = ["198.51.100.8"].map(String::from).into();
    assert_eq!(h.tagged(), expected);
}

#[tokio::test]
async fn a_wrong_or_missing_secret_is_401_and_nothing_is_applied() {
    let h = harness().await;
    for name in ["url-events-wrong-secret.json", "url-events-no-secret.json"] {
        let (status, _, body) = h.http(fixture(name)).await;
        assert_eq!(status, 401, "{name}: {body}");
        assert!(!body.to_string().contains(SECRET));
    }
    // The handshakes need the secret too.
    let mut validation = fixture("url-validation.json");
    validation["queryStringParameters"]["code"] = json!("guess");
    assert_eq!(h.http(validation).await.0, 401);

    assert!(h.asm.journal().is_empty(), "{:?}", h.asm.journal());
    assert_eq!(h.asm.write_attempts(), 0);
    let counts = h.azure.counts();
    assert_eq!((counts.arm_gets, counts.graph_pages), (0, 0));
    assert_eq!(h.builds.load(Ordering::SeqCst), 0);
    assert!(h.bus.journal().is_empty());
}

#[tokio::test]
async fn without_a_configured_secret_every_request_is_refused() {
    let h = harness_with(Err("WEBHOOK_SECRET is not set".into()), true).await;
    let (status, _, body) = h.http(fixture("url-events.json")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"].as_str().unwrap().contains("WEBHOOK_SECRET"));
    assert!(h.asm.journal().is_empty());
    // Scheduled reconciles do not depend on it.
    assert_eq!(
        h.invoke(fixture("schedule-rule.json")).await.unwrap()["outcome"],
        "done"
    );
}

#[tokio::test]
async fn a_resync_request_runs_the_reconcile_of_its_scope() {
    let h = harness().await;
    let (status, _, body) = h.http(fixture("url-resync.json")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "subscription");
    assert_eq!(body["id"], SUB);
    assert!(body.get("summary").is_some(), "{body}");
    let expected: std::collections::BTreeSet<String> = ["198.51.100.7", "198.51.100.8"].map(String::from).into();
    assert_eq!(h.tagged(), expected);

    let writes = h.asm.write_attempts();
    let (status, _, body) = h.http(fixture("url-resync-bad-body.json")).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("\"planet\""), "{body}");

    // A dry run writes nothing; a resource resync reads that one resource.
    h.azure.upsert(pip_body(1, "198.51.100.70"));
    let mut payload = fixture("url-resync.json");
    payload["body"] = json!(json!({"scope": "all", "dry_run": true}).to_string());
    let (status, _, body) = h.http(payload.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(h.asm.write_attempts(), writes);
    let gets = h.azure.counts().arm_gets;
    payload["body"] = json!(json!({"scope": "resource", "id": pip(1)}).to_string());
    let (status, _, body) = h.http(payload).await;
    assert_eq!(status, 200, "{body}");
    assert!(h.azure.counts().arm_gets > gets);
    assert!(h.tagged().contains("198.51.100.70"), "{:?}", h.tagged());
    assert!(!h.tagged().contains("198.51.100.7"), "{:?}", h.tagged());
}

#[tokio::test]
async fn an_asm_outage_schedules_retries_and_a_queue_outage_makes_event_grid_redeliver() {
    let h = harness().await;
    h.asm.set_outage(true);
    let before = SystemTime::now();
    let (status, _, body) = h.http(fixture("url-events.json")).await;
    assert_eq!(status, 200, "a scheduled retry is a success for Event Grid: {body}");
    let retried: Vec<&Value> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "retry_scheduled")
        .collect();
    assert_eq!(retried.len(), 2, "{body}");
    let sent = h.bus.delivered();
    assert_eq!(sent.len(), 2);
    for message in &sent {
        assert!(message.scheduled.unwrap() > before + Duration::from_secs(10));
        assert_eq!(message.body_json()["attempt"], 1, "{}", message.body_text());
    }

    // Service Bus down too: the retry cannot be queued, so the answer is 500 and Event Grid
    // delivers the batch again.
    h.bus.inject(&[503; 16]);
    let (status, _, body) = h.http(fixture("url-events.json")).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["outcome"] == "failed")
    );
}

/// Log lines written while the returned guard lives (this thread's default subscriber; the
/// tests run on a current-thread runtime, so the handler's lines land here).
fn capture_logs() -> (Arc<std::sync::Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    let buffer = Arc::new(std::sync::Mutex::new(Vec::new()));
    let writer = Arc::clone(&buffer);
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || LogSink(Arc::clone(&writer)))
        .finish();
    (buffer, tracing::subscriber::set_default(subscriber))
}

struct LogSink(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// As on the Functions path: a delivery whose every event is unreadable is acknowledged (200;
/// Event Grid redelivering could never make it readable), and each event is logged by id.
#[tokio::test]
async fn a_delivery_of_only_unreadable_events_is_acknowledged_and_logged_by_event_id() {
    let h = harness().await;
    let mut payload = fixture("url-events.json");
    let events = json!([
        {"id": "evt-not-an-id", "eventType": "Microsoft.Resources.ResourceWriteSuccess", "subject": "not-an-id"},
        {"id": "evt-no-type", "subject": pip(1)},
    ]);
    payload["body"] = json!(events.to_string());
    let (logs, guard) = capture_logs();
    let (status, _, body) = h.http(payload).await;
    drop(guard);
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> = body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["evt-not-an-id", "evt-no-type"], "{body}");
    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    for id in ids {
        assert!(
            logs.lines().any(|l| l.contains(id) && l.contains("cannot be read")),
            "{id} is not logged: {logs}"
        );
    }
    assert!(h.asm.journal().is_empty());
    assert_eq!(h.azure.counts().arm_gets, 0);
}

#[tokio::test]
async fn malformed_requests_are_400_and_unknown_routes_404() {
    let h = harness().await;
    let mut payload = fixture("url-events.json");
    payload["body"] = json!("{not json");
    let (status, _, body) = h.http(payload.clone()).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("not JSON"), "{body}");
    assert!(h.asm.journal().is_empty());

    // One unreadable event among good ones: the good ones are applied, the answer is 200.
    let mut events: Value = serde_json::from_str(fixture("url-events.json")["body"].as_str().unwrap()).unwrap();
    events
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "x", "eventType": "Microsoft.Resources.ResourceWriteSuccess", "subject": "not-an-id"}));
    // An id that would change the ARM URL it is spliced into is unreadable too.
    let hostile =
        format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/p?api-version=1");
    events
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "y", "eventType": "Microsoft.Resources.ResourceWriteSuccess", "subject": hostile}));
    payload["body"] = json!(events.to_string());
    let (status, _, body) = h.http(payload.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rejected"].as_array().unwrap().len(), 2, "{body}");
    assert_eq!(body["rejected"][1]["id"], json!("y"), "{body}");
    assert!(h.tagged().contains("198.51.100.7"));

    payload["rawPath"] = json!("/admin");
    assert_eq!(h.http(payload.clone()).await.0, 404);
    payload["rawPath"] = json!("/resync");
    payload["requestContext"]["http"]["method"] = json!("GET");
    assert_eq!(h.http(payload).await.0, 405);

    let ignored = h
        .invoke(json!({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2"}))
        .await
        .unwrap();
    assert!(ignored["ignored"].as_str().unwrap().contains("not a schedule"));
}

// ---------------------------------------------------------------- the binary under a Lambda runtime

/// A fake Lambda Runtime API (the interface `lambda_runtime` polls): `GET
/// /2018-06-01/runtime/invocation/next` hands out queued events with the runtime's headers;
/// `POST .../invocation/{id}/response` and `.../{id}/error` (and `/runtime/init/error`) are
/// recorded.
mod runtime_api {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use serde_json::Value;

    #[derive(Default)]
    struct Inner {
        events: VecDeque<(String, Value)>,
        results: Vec<(String, &'static str, Value)>,
    }

    #[derive(Clone, Default)]
    pub struct FakeRuntime {
        inner: Arc<Mutex<Inner>>,
        pub port: u16,
    }

    impl FakeRuntime {
        pub async fn start() -> FakeRuntime {
            let mut runtime = FakeRuntime::default();
            let app = Router::new()
                .route("/2018-06-01/runtime/invocation/next", get(next))
                .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
                .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
                .route("/2018-06-01/runtime/init/error", post(init_error))
                .with_state(runtime.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            runtime.port = listener.local_addr().unwrap().port();
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            runtime
        }

        pub fn push(&self, request_id: &str, event: Value) {
            self.inner
                .lock()
                .unwrap()
                .events
                .push_back((request_id.to_string(), event));
        }

        /// Waits until `count` results were posted back.
        pub async fn results(&self, count: usize) -> Vec<(String, &'static str, Value)> {
            for _ in 0..600 {
                let results = self.inner.lock().unwrap().results.clone();
                if results.len() >= count {
                    return results;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("the function posted {:?}", self.inner.lock().unwrap().results);
        }

        fn record(&self, id: String, kind: &'static str, body: &[u8]) {
            let value = serde_json::from_slice(body).unwrap_or(Value::Null);
            self.inner.lock().unwrap().results.push((id, kind, value));
        }
    }

    async fn next(State(runtime): State<FakeRuntime>) -> Response {
        loop {
            let event = runtime.inner.lock().unwrap().events.pop_front();
            if let Some((id, event)) = event {
                let deadline = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis()
                    + 900_000;
                return (
                    StatusCode::OK,
                    [
                        ("content-type", "application/json".to_string()),
                        ("lambda-runtime-aws-request-id", id),
                        ("lambda-runtime-deadline-ms", deadline.to_string()),
                        (
                            "lambda-runtime-invoked-function-arn",
                            "arn:aws:lambda:eu-west-1:123456789012:function:seedwatch".to_string(),
                        ),
                        (
                            "lambda-runtime-trace-id",
                            "Root=1-67c2dd00-0a1b2c3d4e5f60718293a4b5;Sampled=0".to_string(),
                        ),
                    ],
                    event.to_string(),
                )
                    .into_response();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn response(State(runtime): State<FakeRuntime>, Path(id): Path<String>, body: Bytes) -> StatusCode {
        runtime.record(id, "response", &body);
        StatusCode::ACCEPTED
    }

    async fn error(State(runtime): State<FakeRuntime>, Path(id): Path<String>, body: Bytes) -> StatusCode {
        runtime.record(id, "error", &body);
        StatusCode::ACCEPTED
    }

    async fn init_error(State(runtime): State<FakeRuntime>, body: Bytes) -> StatusCode {
        runtime.record("init".into(), "error", &body);
        StatusCode::ACCEPTED
    }
}

#[tokio::test]
async fn the_binary_serves_invocations_from_the_lambda_runtime_api() {
    let runtime = runtime_api::FakeRuntime::start().await;
    runtime.push("req-validation", fixture("url-validation.json"));
    runtime.push("req-wrong-secret", fixture("url-events-wrong-secret.json"));
    runtime.push("req-schedule", fixture("schedule-rule.json"));
    // As Lambda starts it: the runtime's variables, the function's settings, no Azure credential.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_seedwatch-lambda"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{}", runtime.port))
        .env("AWS_LAMBDA_FUNCTION_NAME", "seedwatch")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/seedwatch")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2025/03/01/[$LATEST]0123456789abcdef")
        .env("WEBHOOK_SECRET", SECRET)
        .env("CONNECTOR_CONFIG", format!("scan_id: {SCAN}\n"))
        .env("API_KEY", KEY)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let results = runtime.results(3).await;
    let _ = child.kill().await;

    let by_id = |id: &str| results.iter().find(|(rid, _, _)| rid == id).cloned().unwrap();
    let (_, kind, validation) = by_id("req-validation");
    assert_eq!(kind, "response");
    assert_eq!(validation["statusCode"], 200);
    let body: Value = serde_json::from_str(validation["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"})
    );
    let (_, kind, refused) = by_id("req-wrong-secret");
    assert_eq!((kind, refused["statusCode"].as_u64()), ("response", Some(401)));
    // Under Lambda, `auto` without a client secret or federated token refuses to start the engines
    // (no managed identity, no IMDS probe), and the scheduled reconcile fails saying so.
    let (_, kind, failed) = by_id("req-schedule");
    assert_eq!(kind, "error", "{failed}");
    let message = failed["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains("AZURE_CLIENT_SECRET") && message.contains("no managed identity"),
        "{failed}"
    );
}
