//! Event Grid delivery semantics and request limits of the custom handler: unreadable events
//! are acknowledged (a non-2xx makes Event Grid redeliver the whole batch), an invocation
//! answers within `events.deadline` and queues what is unfinished, oversized bodies get 413
//! and a body that trickles in is cut off.

use crate::support::{fake_servicebus, handler_world, host_emulator};

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use handler_world::*;
use host_emulator::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use seedwatch::app::build::BuildError;
use seedwatch::transport::functions::limits::Limits;
use seedwatch::transport::functions::server::{AppState, ServicesFactory, router};

/// Event Grid's retry budget for one delivery (30 attempts over 24 hours).
const EVENT_GRID_ATTEMPTS: u32 = 30;

#[tokio::test]
async fn a_delivery_with_unreadable_events_is_acknowledged_once_and_its_good_events_applied() {
    let (world, host) = World::serving(vec![pip(1, "203.0.113.11"), pip(2, "203.0.113.12")]).await;
    let hostile = format!("{}?api-version=2020-01-01#x", pip_id(2));
    let mut bad_id = resources_event(WRITE, &hostile);
    bad_id["id"] = json!("evt-bad-id");
    let mut dot_dot = resources_event(WRITE, &format!("{}/../../x", pip_id(2)));
    dot_dot["id"] = json!("evt-dot-dot");
    let no_type = json!({"id": "evt-no-type", "subject": pip_id(2)});
    let batch = [
        resources_event(WRITE, &pip_id(1)),
        bad_id,
        json!("garbage"),
        no_type,
        dot_dot,
    ];
    let delivery = host.deliver_event_grid(&batch, "inv-mixed", EVENT_GRID_ATTEMPTS).await;
    assert_eq!(
        (delivery.deliveries(), delivery.dead_lettered),
        (1, false),
        "one delivery, acknowledged: {:?}",
        delivery.last().body
    );
    delivery.last().assert_host_readable();
    assert_eq!(world.asm.tagged_names(SCAN, TAG), ["203.0.113.11".to_string()].into());
    assert_eq!(world.azure.counts().arm_gets, 1, "only the good event read ARM");
    // The operator sees each unreadable event by its id, with what was wrong.
    for (event_id, says) in [
        ("evt-bad-id", "'?'"),
        ("evt-no-type", "eventType"),
        ("(no id)", "not a JSON object"),
        ("evt-dot-dot", "\"..\""),
    ] {
        host.wait_for_log(&format!("for {event_id}"), |r| {
            r["event_id"] == json!(event_id)
                && r["level"] == json!("ERROR")
                && r["error"].as_str().is_some_and(|e| e.contains(says))
        })
        .await;
    }
}

#[tokio::test]
async fn an_invocation_answers_by_events_deadline_and_queues_the_unfinished_change() {
    let world = World::start().await;
    world.azure.load(vec![pip(3, "203.0.113.33")]);
    // ARM throttles the read and asks for a minute's wait: the apply cannot finish soon.
    world.azure.throttle(SUB, 1, Duration::from_secs(60));
    let host = world
        .handler_with("events:\n  coalesce_window: 0\n  deadline: 300ms\n")
        .await;
    let event = resources_event(WRITE, &pip_id(3));
    let event_id = event["id"].as_str().unwrap().to_string();
    let delivery = host.deliver_event_grid(&[event], "inv-slow", EVENT_GRID_ATTEMPTS).await;
    assert_eq!((delivery.deliveries(), delivery.dead_lettered), (1, false));
    let response = delivery.last();
    assert!(
        response.logs_text().contains("retry_scheduled") && response.logs_text().contains("events.deadline"),
        "{}",
        response.body
    );
    let queued = world.bus.delivered();
    assert_eq!(queued.len(), 1, "{queued:?}");
    let job = queued[0].body_json();
    assert_eq!(
        (job["kind"].clone(), job["resourceId"].clone(), job["change"].clone()),
        (json!("apply"), json!(pip_id(3)), json!("changed")),
        "{job}"
    );
    assert_eq!(queued[0].correlation_id.as_deref(), Some(event_id.as_str()));
    assert!(
        queued[0].scheduled.is_some(),
        "the retry leaves the running apply time to finish"
    );
}

/// A raw request: `head` then `body`, then whatever the server answers (status line).
async fn raw_status(port: u16, head: String, body: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer and close before taking the whole body.
    let _ = stream.write_all(body).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn an_oversized_body_gets_413_whether_declared_or_chunked() {
    let (world, host) = World::serving(vec![]).await;
    let declared = format!(
        "POST /resource-events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        30 * 1024 * 1024
    );
    let status = raw_status(host.port, declared, &[b' '; 64 * 1024]).await;
    assert!(status.contains(" 413 "), "{status}");

    // Chunked: no length up front, refused once the limit is crossed.
    let chunk = vec![b' '; 1024 * 1024];
    let mut body = Vec::new();
    for _ in 0..(Limits::default().max_body / chunk.len() + 2) {
        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(&chunk);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let chunked =
        "POST /resource-events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let status = raw_status(host.port, chunked.to_string(), &body).await;
    assert!(status.contains(" 413 "), "{status}");
    assert_eq!(world.bus.requests(), 0);
    assert!(host.get("/").await.status == 200, "still serving");
}

/// Services that are never built: the requests below are refused before any work.
fn no_services() -> ServicesFactory {
    Arc::new(|| async { Err::<_, BuildError>(BuildError::Configuration("not needed".into())) }.boxed())
}

#[tokio::test(start_paused = true)]
async fn a_body_that_trickles_in_is_cut_off_at_the_read_timeout() {
    use tower::ServiceExt;
    let limits = Limits::default();
    // A sender that sent one byte and then nothing more (paused time runs the clock forward).
    let first = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"{"))]);
    let body = axum::body::Body::from_stream(futures::StreamExt::chain(first, futures::stream::pending()));
    let request = axum::http::Request::post("/resource-events")
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let started = tokio::time::Instant::now();
    let response = router(AppState::with_limits(no_services(), limits))
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), 408);
    assert_eq!(
        started.elapsed(),
        limits.body_read_timeout,
        "cut off at the timeout, not before"
    );
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(answer["Logs"].to_string().contains("did not arrive"), "{answer}");
}

#[tokio::test]
async fn the_deployed_path_queues_retries_with_a_managed_identity_token_for_service_bus() {
    let world = World::start().await;
    world.azure.load(vec![pip(4, "203.0.113.44")]);
    let relay = IdentityRelay::start(world.azure.identity_endpoint()).await;
    let bus = fake_servicebus::FakeServiceBus::start(
        QUEUE,
        fake_servicebus::FakeAuth::Entra(relay.verifier(&[fake_servicebus::DATA_SENDER])),
    )
    .await;
    // The app settings the template sets for identity-based Service Bus (no connection
    // string), the token endpoint the platform sets, and the user-assigned identity's client id.
    let client_id = "33333333-3333-3333-3333-333333333333";
    let settings: Vec<(&str, String)> = world
        .settings()
        .into_iter()
        .filter(|(k, _)| *k != "ServiceBusConnection")
        .map(|(k, v)| match k {
            "IDENTITY_ENDPOINT" => (k, relay.url.clone()),
            "CONNECTOR_CONFIG" => (
                k,
                v.replace(&world.bus.base_url(), &bus.base_url()).replace(
                    "credential: managed_identity\n",
                    &format!("credential: managed_identity\n  managed_identity_client_id: {client_id}\n"),
                ),
            ),
            _ => (k, v),
        })
        .chain([
            (
                "ServiceBusConnection__fullyQualifiedNamespace",
                "mysbns.servicebus.windows.net".to_string(),
            ),
            ("AZURE_CLIENT_ID", client_id.to_string()),
        ])
        .collect();
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let host = HostEmulator::start(&pairs).await;

    // ASM is down: the change is queued for a retry, through Service Bus with a bearer token.
    world.asm.set_outage(true);
    let response = event(&host, WRITE, &pip_id(4), "inv-mi").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(response.logs_text().contains("retry_scheduled"), "{}", response.body);
    let queued = bus.delivered();
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0].body_json()["resourceId"], json!(pip_id(4)));
    let service_bus_tokens: Vec<_> = relay
        .issued()
        .into_iter()
        .filter(|(audience, _)| audience.starts_with(fake_servicebus::AUDIENCE))
        .collect();
    assert!(!service_bus_tokens.is_empty(), "{:?}", relay.issued());
    assert!(
        service_bus_tokens
            .iter()
            .all(|(_, client)| client.as_deref() == Some(client_id)),
        "tokens are requested for the user-assigned identity: {service_bus_tokens:?}"
    );

    // The retry runs as the host delivers it and completes once ASM is back.
    world.asm.set_outage(false);
    let run = host
        .deliver_message(&queued[0].body_text(), queued[0].message_id.as_deref().unwrap(), 5)
        .await;
    assert_eq!(
        (run.deliveries(), run.dead_lettered),
        (1, false),
        "{:?}",
        run.last().body
    );
    assert_eq!(world.asm.tagged_names(SCAN, TAG), ["203.0.113.44".to_string()].into());
}

#[tokio::test]
async fn a_retry_that_keeps_failing_is_redelivered_then_dead_lettered() {
    let (world, host) = World::serving(vec![pip(5, "203.0.113.55")]).await;
    // ASM is down and the next retry cannot be queued: every delivery fails (500), so Service
    // Bus delivers the message again with a higher DeliveryCount until it dead-letters it.
    world.asm.set_outage(true);
    world.bus.inject(&[403; 5]);
    let job = json!({"kind": "apply", "resourceId": pip_id(5), "change": "changed", "attempt": 1});
    let run = host.deliver_message(&job.to_string(), "msg-stuck", 5).await;
    assert_eq!((run.deliveries(), run.dead_lettered), (5, true));
    assert!(run.responses.iter().all(|r| r.status == 500));
    host.wait_for_log("of delivery 5", |r| r["delivery_count"] == json!("5"))
        .await;
    let counts: Vec<Value> = host
        .log_records()
        .into_iter()
        .filter(|r| r["message"] == json!("queued job received"))
        .map(|r| r["delivery_count"].clone())
        .collect();
    assert_eq!(counts, ["1", "2", "3", "4", "5"].map(|c| json!(c)));
}

#[tokio::test]
async fn headers_that_trickle_in_are_cut_off_too() {
    let limits = Limits {
        body_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = AppState::with_limits(no_services(), limits);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(seedwatch::transport::functions::server::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    // Half a request head, and then nothing: the server must close the connection on its own.
    stream
        .write_all(b"POST /resource-events HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut answer)).await;
    assert!(closed.is_ok(), "the connection was still open after 60 s");
    assert!(!String::from_utf8_lossy(&answer).contains(" 200 "), "{answer:?}");
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
