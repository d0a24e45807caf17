#![cfg(feature = "lambda")]
//! The Lambda entry point, driven at the `service_fn` layer: realistic Lambda payloads (fixtures
//! in `tests/fixtures/lambda/`: an EventBridge scheduled-rule event, the Scheduler input, function
//! URL requests in payload format 2.0 carrying Event Grid deliveries and resyncs) are handed to
//! the handler as `LambdaEvent::new(payload, Context::default())`, with the fake ASM and fake
//! Service Bus behind the engines.
//!
//! The engines here are a stand-in until the ledger's apply path and the sync engine are wired
//! into `cli::serve::build_services`: changes that carry the resource body (Resource
//! Notifications) are extracted with the real extractor registry and written through the real
//! ASM client; every call is recorded.

#[path = "support/fake_asm.rs"]
mod fake_asm;
#[path = "support/fake_servicebus.rs"]
mod fake_servicebus;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use fake_asm::FakeAsm;
use fake_servicebus::{FakeAuth, FakeServiceBus};
use futures::FutureExt;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

use seedwatch::asm::client::AsmClient;
use seedwatch::asm::{AddOutcome, AsmApi, AsmError};
use seedwatch::config::Config;
use seedwatch::extract::extract_resources;
use seedwatch::functions::events::{Change, ChangeKind};
use seedwatch::functions::ports::{Applier, Reconciler, Scope, WorkError};
use seedwatch::functions::runner::{Services, Tuning};
use seedwatch::functions::server::{AppState, ServicesFactory};
use seedwatch::lambda::handler::LambdaApp;
use seedwatch::lambda::webhook::WebhookSecret;
use seedwatch::queue::{QueueTarget, RetryQueue};
use seedwatch::secret::Secret;

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

fn config(asm: &FakeAsm, service_bus: &str) -> Config {
    let yaml = json!({
        "scan_id": SCAN,
        "http": {"retry_count": 1, "retry_base_delay": "10ms", "retry_max_delay": "20ms", "timeout": "5s"},
        "asm": {"base_url": asm.base_url()},
        "azure": {"endpoints": {"service_bus": service_bus}},
        "retry": {"base_delay": "30s", "max_delay": "10m", "max_attempts": 3}
    });
    Config::from_value(&yaml, "test", &HashMap::<String, String>::new()).unwrap()
}

/// The stand-in engines (see the module comment).
struct Engine {
    asm: AsmClient,
    config: Config,
    applied: Mutex<Vec<(String, ChangeKind)>>,
    reconciles: Mutex<Vec<(Scope, bool)>>,
    reconcile_error: Mutex<Option<WorkError>>,
}

impl Engine {
    fn new(config: Config) -> Engine {
        let asm = AsmClient::from_config(&config).unwrap();
        Engine {
            asm,
            config,
            applied: Mutex::new(Vec::new()),
            reconciles: Mutex::new(Vec::new()),
            reconcile_error: Mutex::new(None),
        }
    }

    fn calls(&self) -> usize {
        self.applied.lock().unwrap().len() + self.reconciles.lock().unwrap().len()
    }
}

fn work_error(e: AsmError) -> WorkError {
    match &e {
        AsmError::Transport { .. } => WorkError::transient(e.to_string()),
        AsmError::Http { status, .. } if *status == 429 || *status >= 500 => WorkError::transient(e.to_string()),
        _ => WorkError::permanent(e.to_string()),
    }
}

#[async_trait]
impl Applier for Engine {
    async fn apply(&self, change: &Change) -> Result<Value, WorkError> {
        self.applied
            .lock()
            .unwrap()
            .push((change.id.as_str().to_string(), change.kind));
        let Some(body) = &change.body else {
            return Ok(json!({"read": false}));
        };
        let extraction = extract_resources(std::slice::from_ref(body.as_ref()), &self.config.azure.checks);
        let mut added = Vec::new();
        for seed in extraction.seeds().into_keys() {
            match self.asm.add_seed(&seed, &[TAG.to_string()]).await.map_err(work_error)? {
                AddOutcome::Added | AddOutcome::AlreadyExists => added.push(seed.name().to_string()),
                AddOutcome::Rejected { code, message } => {
                    return Err(WorkError::permanent(format!("{code}: {message}")));
                }
            }
        }
        Ok(json!({"added": added}))
    }
}

#[async_trait]
impl Reconciler for Engine {
    async fn reconcile(&self, scope: &Scope, dry_run: bool) -> Result<Value, WorkError> {
        self.reconciles.lock().unwrap().push((scope.clone(), dry_run));
        if let Some(e) = self.reconcile_error.lock().unwrap().clone() {
            return Err(e);
        }
        Ok(json!({"scope": scope.name(), "dry_run": dry_run, "added": 0, "deleted": 0}))
    }
}

struct Harness {
    app: LambdaApp,
    engine: Arc<Engine>,
    asm: FakeAsm,
    bus: FakeServiceBus,
    /// How many times the engines were built (a refused request must not even build them).
    builds: Arc<AtomicUsize>,
}

async fn harness_with(secret: Result<WebhookSecret, String>) -> Harness {
    let asm = FakeAsm::start(KEY).await;
    asm.add_scan(SCAN);
    let bus = FakeServiceBus::start(
        QUEUE,
        FakeAuth::Sas {
            key_name: "send".into(),
            key: SAS_KEY.into(),
        },
    )
    .await;
    let mut config = config(&asm, &bus.base_url());
    config.api_key = Some(Secret::new(KEY));
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
    let queue = Arc::new(RetryQueue::new(
        QueueTarget::from_env(&env, &config, None).unwrap(),
        &config,
    ));
    let engine = Arc::new(Engine::new(config));
    let builds = Arc::new(AtomicUsize::new(0));
    let factory: ServicesFactory = {
        let (engine, builds) = (Arc::clone(&engine), Arc::clone(&builds));
        Arc::new(move || {
            builds.fetch_add(1, Ordering::SeqCst);
            let (engine, queue) = (Arc::clone(&engine), Arc::clone(&queue));
            async move {
                Ok(Services {
                    applier: engine.clone(),
                    reconciler: engine,
                    queue: Some(queue),
                    max_attempts: 3,
                })
            }
            .boxed()
        })
    };
    let tuning = Tuning {
        coalesce_window: Duration::from_millis(5),
        concurrency: 8,
    };
    let app = LambdaApp::new(AppState::new(factory, tuning), secret);
    Harness {
        app,
        engine,
        asm,
        bus,
        builds,
    }
}

async fn harness() -> Harness {
    harness_with(WebhookSecret::new(SECRET)).await
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
}

fn pip(n: u32) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Network/publicIPAddresses/pip{n}")
}

#[tokio::test]
async fn a_scheduled_event_runs_the_full_reconcile() {
    let h = harness().await;
    for name in ["schedule-rule.json", "scheduler-input.json"] {
        let answer = h.invoke(fixture(name)).await.unwrap();
        assert_eq!(answer["outcome"], "done", "{name}: {answer}");
        assert_eq!(answer["summary"]["scope"], "all");
    }
    assert_eq!(
        *h.engine.reconciles.lock().unwrap(),
        vec![(Scope::All, false), (Scope::All, false)]
    );
    assert!(h.engine.applied.lock().unwrap().is_empty());

    // A permanent failure is an invocation error (it shows in the function's error metrics).
    *h.engine.reconcile_error.lock().unwrap() = Some(WorkError::permanent("scan scan-1 was not found in ASM"));
    let err = h.invoke(fixture("schedule-rule.json")).await.unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");

    // A passing failure schedules a resync job through Service Bus instead.
    *h.engine.reconcile_error.lock().unwrap() = Some(WorkError::transient("ARM answered 429"));
    let answer = h.invoke(fixture("schedule-rule.json")).await.unwrap();
    assert_eq!(answer["outcome"], "retry_scheduled", "{answer}");
    let sent = h.bus.delivered();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body_json()["scope"], "all", "{}", sent[0].body_text());
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
    assert_eq!(h.engine.calls(), 0);
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

    let tagged = h.asm.tagged_names(SCAN, TAG);
    assert!(
        tagged.contains("198.51.100.7") && tagged.contains("198.51.100.8"),
        "{tagged:?}"
    );
    let mut applied = h.engine.applied.lock().unwrap().clone();
    applied.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        applied,
        vec![
            (pip(1), ChangeKind::Changed),
            (pip(2), ChangeKind::Changed),
            (pip(3), ChangeKind::Deleted)
        ]
    );

    // A CloudEvent, base64-encoded by the function URL, goes the same way.
    let (status, _, body) = h.http(fixture("url-cloudevent.json")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["outcome"], "applied", "{body}");
    assert_eq!(h.engine.applied.lock().unwrap().len(), 4);
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
    assert_eq!(h.engine.calls(), 0);
    assert_eq!(h.builds.load(Ordering::SeqCst), 0);
    assert!(h.bus.journal().is_empty());
}

#[tokio::test]
async fn without_a_configured_secret_every_request_is_refused() {
    let h = harness_with(Err("WEBHOOK_SECRET is not set".into())).await;
    let (status, _, body) = h.http(fixture("url-events.json")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"].as_str().unwrap().contains("WEBHOOK_SECRET"));
    assert_eq!(h.engine.calls(), 0);
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
    assert_eq!(body["summary"]["scope"], "subscription");
    assert_eq!(
        *h.engine.reconciles.lock().unwrap(),
        vec![(Scope::Subscription(SUB.into()), false)]
    );

    let (status, _, body) = h.http(fixture("url-resync-bad-body.json")).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("\"planet\""), "{body}");
    assert_eq!(h.engine.reconciles.lock().unwrap().len(), 1);

    // A dry run of one resource, then the resource itself through the apply path.
    let mut payload = fixture("url-resync.json");
    payload["body"] = json!(json!({"scope": "all", "dry_run": true}).to_string());
    let (status, _, body) = h.http(payload.clone()).await;
    assert_eq!(
        (status, body["summary"]["dry_run"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    payload["body"] = json!(json!({"scope": "resource", "id": pip(1)}).to_string());
    let (status, _, body) = h.http(payload).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        h.engine.applied.lock().unwrap().as_slice(),
        &[(pip(1), ChangeKind::Changed)]
    );
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

#[tokio::test]
async fn malformed_requests_are_400_and_unknown_routes_404() {
    let h = harness().await;
    let mut payload = fixture("url-events.json");
    payload["body"] = json!("{not json");
    let (status, _, body) = h.http(payload.clone()).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("not JSON"), "{body}");

    // One unreadable event among good ones: the good ones are applied, the answer is 200.
    let mut events: Value = serde_json::from_str(fixture("url-events.json")["body"].as_str().unwrap()).unwrap();
    events
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "x", "eventType": "Microsoft.Resources.ResourceWriteSuccess", "subject": "not-an-id"}));
    payload["body"] = json!(events.to_string());
    let (status, _, body) = h.http(payload.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rejected"].as_array().unwrap().len(), 1);
    assert_eq!(h.engine.applied.lock().unwrap().len(), 3);

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
