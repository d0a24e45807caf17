//! The world a handler test runs in: fake Azure (ARM, Resource Graph, managed identity), fake
//! ASM, fake Service Bus and a ledger directory, the built binary started on it through the
//! host emulator, and the invocations the tests make most.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::fake_servicebus::{self, FakeAuth, FakeServiceBus};
use super::host_emulator::*;
use super::{fake_asm, fake_azure};
use seedwatch::adapters::servicebus::{QueueTarget, RetryJob, RetryQueue};
use seedwatch::config::Config;
use seedwatch::domain::change::ChangeKind;

pub const PIP: &str = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/publicIPAddresses/pip1";
pub const QUEUE: &str = "asm-retries";
pub const SAS_KEY: &str = "c2VlZHdhdGNoLXRlc3Qta2V5+/=";

pub fn config(yaml: Value) -> Config {
    Config::from_value(&yaml, "test", &HashMap::<String, String>::new()).unwrap()
}

/// Quick client retries so failure tests do not wait.
pub fn fast_config(service_bus: &str) -> Config {
    config(json!({
        "scan_id": "scan-1",
        "http": {"retry_count": 2, "retry_base_delay": "10ms", "retry_max_delay": "20ms", "timeout": "5s"},
        "azure": {"endpoints": {"service_bus": service_bus}},
        "retry": {"base_delay": "30s", "max_delay": "10m", "max_attempts": 3}
    }))
}

pub fn sas_connection(sb: &FakeServiceBus) -> String {
    format!(
        "Endpoint=sb://{}/;SharedAccessKeyName=send;SharedAccessKey={SAS_KEY}",
        sb.addr
    )
}

pub async fn sas_bus() -> FakeServiceBus {
    FakeServiceBus::start(
        QUEUE,
        FakeAuth::Sas {
            key_name: "send".into(),
            key: SAS_KEY.into(),
        },
    )
    .await
}

pub fn sas_queue(sb: &FakeServiceBus) -> RetryQueue {
    let cfg = fast_config(&sb.base_url());
    let env: HashMap<String, String> = [
        ("RETRY_QUEUE".to_string(), QUEUE.to_string()),
        ("ServiceBusConnection".to_string(), sas_connection(sb)),
    ]
    .into();
    RetryQueue::new(QueueTarget::from_env(&env, &cfg, None).unwrap(), &cfg)
}

pub fn apply_job(attempt: u32) -> RetryJob {
    RetryJob::Apply {
        resource_id: PIP.into(),
        change: ChangeKind::Changed,
        attempt,
        cause: Some("ASM answered 503".into()),
    }
}

// ---------------------------------------------------------------- the binary, as the host runs it

pub const API_KEY: &str = "asm-key-for-tests-never-printed";
pub const SCAN: &str = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
pub const TAG: &str = "cloud-connector";
pub const SUB: &str = "11111111-1111-1111-1111-111111111111";
/// A second subscription, for scoping.
pub const OTHER_SUB: &str = "22222222-2222-2222-2222-222222222222";

/// Fake Azure (ARM, Resource Graph, managed identity), fake ASM, fake Service Bus and a ledger
/// directory: everything the handler talks to.
pub struct World {
    pub azure: fake_azure::FakeAzure,
    pub asm: fake_asm::FakeAsm,
    pub bus: FakeServiceBus,
    pub dir: tempfile::TempDir,
}

impl World {
    pub async fn start() -> World {
        let azure = fake_azure::FakeAzure::start().await;
        // Many sweeps per test, none about Resource Graph's quota (tests/it/azure_strict.rs has those).
        azure.lax_graph_quota_for_test();
        azure.add_subscription(SUB, "Enabled");
        let asm = fake_asm::FakeAsm::start(API_KEY).await;
        asm.add_scan(SCAN);
        World {
            azure,
            asm,
            bus: sas_bus().await,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn settings(&self) -> Vec<(&'static str, String)> {
        self.settings_with("")
    }

    /// The app settings, with `extra_yaml` (whole top-level blocks) added to the configuration.
    ///
    /// A laxer world than the default: these estates hold a seed or two, so the deletion
    /// breaker (`sync.max_delete_fraction`) is opened fully for the deletes the tests make.
    pub fn settings_with(&self, extra_yaml: &str) -> Vec<(&'static str, String)> {
        let yaml = format!(
            "scan_id: {SCAN}\nseed_tag: {TAG}\ndelete_stale_seeds: true\n\
             sync:\n  max_delete_fraction: 1.0\n\
             http:\n  retry_count: 1\n  retry_base_delay: 10ms\n  retry_max_delay: 20ms\n  timeout: 2s\n\
             asm:\n  base_url: {}\n\
             azure:\n  credential: managed_identity\n  endpoints:\n    resource_manager: {}\n    service_bus: {}\n\
             ledger:\n  kind: local\n  path: {}\n\
             retry:\n  base_delay: 30s\n  max_delay: 10m\n  max_attempts: 3\n",
            self.asm.base_url(),
            self.azure.base_url(),
            self.bus.base_url(),
            self.dir.path().join("ledger.redb").display()
        ) + extra_yaml;
        vec![
            ("LOG_LEVEL", "info".to_string()),
            ("CONNECTOR_CONFIG", yaml),
            ("API_KEY", API_KEY.to_string()),
            ("IDENTITY_ENDPOINT", self.azure.identity_endpoint()),
            ("IDENTITY_HEADER", self.azure.identity_header()),
            ("AZURE_CLIENT_ID", self.azure.client_id()),
            ("RETRY_QUEUE", QUEUE.to_string()),
            ("ServiceBusConnection", sas_connection(&self.bus)),
        ]
    }

    pub async fn handler(&self) -> HostEmulator {
        self.handler_with("").await
    }

    /// The handler started with `extra_yaml` added to its configuration.
    pub async fn handler_with(&self, extra_yaml: &str) -> HostEmulator {
        let settings = self.settings_with(extra_yaml);
        let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        HostEmulator::start(&pairs).await
    }

    /// A world whose Azure estate is `estate`, and the handler started on it.
    pub async fn serving(estate: Vec<Value>) -> (World, HostEmulator) {
        let world = World::start().await;
        world.azure.load(estate);
        let host = world.handler().await;
        (world, host)
    }
}

pub fn pip(n: usize, ip: &str) -> Value {
    fake_azure::public_ip(&pip_id(n), ip)
}

pub fn pip_id(n: usize) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg-{n}/providers/Microsoft.Network/publicIPAddresses/pip-{n}")
}

/// The HTTP response a `resync` invocation returns through its `res` output binding.
pub fn http_answer(response: &HostResponse) -> &Value {
    &response.body["Outputs"]["res"]
}

/// A `resync` invocation carrying this request body, as the host forwards an HTTP call.
pub async fn resync(host: &HostEmulator, body: &str, invocation: &str, chunked: bool) -> HostResponse {
    let response = host
        .invoke("resync", &http_invocation(Some(body)), invocation, chunked)
        .await;
    response.assert_host_readable();
    response
}

/// The `retry` invocation the host makes for a message the handler queued (first delivery).
pub fn delivery_of(message: &fake_servicebus::Journaled) -> Value {
    servicebus_invocation(&message.body_text(), message.message_id.as_deref().unwrap(), 1)
}

/// A subscription resync as an operator starts it: accepted and queued (202), then run by the
/// retry function as the host delivers the queued message. Returns the retry's response.
pub async fn resync_subscription(
    world: &World,
    host: &HostEmulator,
    subscription: &str,
    invocation: &str,
) -> HostResponse {
    let body = format!("{{\"scope\":\"subscription\",\"id\":\"{subscription}\"}}");
    let response = resync(host, &body, invocation, false).await;
    assert_eq!(http_answer(&response)["statusCode"], json!(202), "{}", response.body);
    let queued = world.bus.delivered().last().unwrap().clone();
    let response = host
        .invoke("retry", &delivery_of(&queued), &format!("{invocation}-run"), false)
        .await;
    response.assert_host_readable();
    assert_eq!(response.status, 200, "{}", response.body);
    response
}

/// The last allowed attempt of `job` (a retry message) arrives while ASM is down: the handler
/// gives the change up and records it. ASM is left down.
pub async fn give_up(world: &World, host: &HostEmulator, job: Value, invocation: &str) -> HostResponse {
    world.asm.set_outage(true);
    let message = servicebus_invocation(&job.to_string(), &format!("msg-{invocation}"), 1);
    let response = host.invoke("retry", &message, invocation, false).await;
    response.assert_host_readable();
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(response.logs_text().contains("not done"), "{}", response.body);
    response
}

/// The timer's `reconcile` invocation, on schedule.
pub async fn timer_reconcile(host: &HostEmulator, invocation: &str) -> HostResponse {
    let response = host
        .invoke("reconcile", &timer_invocation(false), invocation, false)
        .await;
    response.assert_host_readable();
    response
}

pub async fn event(host: &HostEmulator, event_type: &str, id: &str, invocation: &str) -> HostResponse {
    let response = host
        .invoke(
            "resource-events",
            &event_invocation(&resources_event(event_type, id)),
            invocation,
            true,
        )
        .await;
    response.assert_host_readable();
    response
}

/// Delivers every `(event, chunked)` to `resource-events` at once, as the host runs a burst of
/// invocations concurrently, and checks each was answered 200.
pub async fn deliver_at_once(host: Arc<HostEmulator>, events: Vec<(Value, bool)>, invocation_prefix: &str) {
    let invocations: Vec<_> = events
        .into_iter()
        .enumerate()
        .map(|(i, (event, chunked))| {
            let host = Arc::clone(&host);
            let invocation = format!("{invocation_prefix}-{i}");
            tokio::spawn(async move {
                host.invoke("resource-events", &event_invocation(&event), &invocation, chunked)
                    .await
            })
        })
        .collect();
    for invocation in invocations {
        let response = invocation.await.unwrap();
        response.assert_host_readable();
        assert_eq!(response.status, 200, "{}", response.body);
    }
}

pub const WRITE: &str = "Microsoft.Resources.ResourceWriteSuccess";
pub const DELETE: &str = "Microsoft.Resources.ResourceDeleteSuccess";

/// A pass-through in front of the fake App Service token endpoint that remembers which
/// audience (`resource`) and identity (`client_id`) each token was issued for, so the fake
/// Service Bus can check a bearer token's audience as the service reads it from the token.
#[derive(Clone)]
pub struct IdentityRelay {
    pub url: String,
    issued: IssuedTokens,
}

/// Token → (audience, client id) it was issued for.
type IssuedTokens = Arc<std::sync::Mutex<HashMap<String, (String, Option<String>)>>>;

impl IdentityRelay {
    pub async fn start(identity_endpoint: String) -> IdentityRelay {
        use axum::extract::{RawQuery, State};
        type Issued = IssuedTokens;
        let issued: Issued = Arc::default();
        async fn relay(
            State((target, issued)): State<(String, Issued)>,
            headers: axum::http::HeaderMap,
            RawQuery(query): RawQuery,
        ) -> axum::response::Response {
            use axum::response::IntoResponse;
            let query = query.unwrap_or_default();
            let mut request = reqwest::Client::new().get(format!("{target}?{query}"));
            if let Some(h) = headers.get("x-identity-header").and_then(|v| v.to_str().ok()) {
                request = request.header("X-IDENTITY-HEADER", h);
            }
            let Ok(answer) = request.send().await else {
                return axum::http::StatusCode::BAD_GATEWAY.into_response();
            };
            let status = answer.status().as_u16();
            let text = answer.text().await.unwrap_or_default();
            let fields: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
            if let Ok(token) = serde_json::from_str::<Value>(&text)
                && let Some(access) = token["access_token"].as_str()
            {
                let resource = fields.get("resource").cloned().unwrap_or_default();
                issued
                    .lock()
                    .unwrap()
                    .insert(access.to_string(), (resource, fields.get("client_id").cloned()));
            }
            let status = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
            (status, [("content-type", "application/json")], text).into_response()
        }
        let app = axum::Router::new()
            .route("/msi/token", axum::routing::get(relay))
            .with_state((identity_endpoint, Arc::clone(&issued)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/msi/token", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        IdentityRelay { url, issued }
    }

    /// The `(audience, client_id)` of every token issued through the relay.
    pub fn issued(&self) -> Vec<(String, Option<String>)> {
        self.issued.lock().unwrap().values().cloned().collect()
    }

    /// A Service Bus token check: tokens issued through the relay, with the audience they
    /// were requested for, held by an identity with `roles` (the template's role assignment).
    pub fn verifier(&self, roles: &[&str]) -> fake_servicebus::TokenVerifier {
        let issued = Arc::clone(&self.issued);
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        Arc::new(move |token| {
            let (audience, _) = issued.lock().unwrap().get(token).cloned()?;
            Some(fake_servicebus::Grant {
                audience,
                roles: roles.clone(),
            })
        })
    }
}
