//! A stand-in for the Azure Functions host, as far as a custom handler can tell
//! (<https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers>): it starts the built `seedwatch serve` with
//! `FUNCTIONS_CUSTOMHANDLER_PORT` set to a free port, polls `GET /` every 25 ms until any HTTP
//! answer arrives, and POSTs invocations shaped as the host shapes them — `{"Data","Metadata"}`,
//! strings double-encoded, numbers stringified, `sys` metadata, the invocation-id headers, and
//! sometimes a chunked body. Responses are checked the way the host reads them.
//!
//! HTTP is spoken by hand over a TCP stream so the request framing (chunked or not) is exactly
//! what the test asks for.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// A running handler process.
pub struct HostEmulator {
    child: Child,
    pub port: u16,
    /// From spawning the process to the first answer to `GET /`.
    pub cold_start: Duration,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    /// The tasks reading stdout and stderr; they end when the process closes its streams.
    collectors: Vec<tokio::task::JoinHandle<()>>,
}

/// What the handler answered to one invocation.
#[derive(Debug, Clone)]
pub struct HostResponse {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub raw: Vec<u8>,
    pub body: Value,
}

impl HostResponse {
    /// The checks the host applies to every answer: JSON content type, a non-empty body that
    /// deserializes to `{"Outputs", "Logs", "ReturnValue"}`.
    pub fn assert_host_readable(&self) {
        let content_type = self.headers.get("content-type").cloned().unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "Content-Type {content_type:?} (status {})",
            self.status
        );
        assert!(!self.raw.is_empty(), "empty body (the host would hang)");
        let object = self.body.as_object().expect("body is a JSON object");
        assert!(object.contains_key("Outputs"), "no Outputs: {}", self.body);
        assert!(self.body["Logs"].is_array(), "Logs is not an array: {}", self.body);
        assert!(object.contains_key("ReturnValue"), "no ReturnValue: {}", self.body);
    }

    pub fn logs(&self) -> Vec<String> {
        self.body["Logs"]
            .as_array()
            .map(|a| a.iter().filter_map(|l| l.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    }

    pub fn logs_text(&self) -> String {
        self.logs().join("\n")
    }
}

/// What became of a delivery the emulator repeated until it succeeded or gave up.
#[derive(Debug)]
pub struct Redelivery {
    /// Every answer, first delivery first.
    pub responses: Vec<HostResponse>,
    /// The retries ran out (Service Bus: the message is dead-lettered; Event Grid: the event
    /// is dropped or dead-lettered).
    pub dead_lettered: bool,
}

impl Redelivery {
    pub fn deliveries(&self) -> usize {
        self.responses.len()
    }

    pub fn last(&self) -> &HostResponse {
        self.responses.last().expect("at least one delivery")
    }
}

/// A free port, found the way the host finds one (bind port 0, read it, let go).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

impl HostEmulator {
    /// Starts the built binary with `serve` and the given app settings, and waits until it is
    /// ready. Panics (failing the test) if it is not ready within 30 s, as the host gives up.
    pub async fn start(settings: &[(&str, &str)]) -> HostEmulator {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_seedwatch"));
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env("FUNCTIONS_HTTPWORKER_PORT", port.to_string())
            .env(
                "FUNCTIONS_CUSTOMHANDLER_WORKER_ID",
                "6f1c1a52-0000-4000-8000-000000000001",
            )
            .env("FUNCTIONS_WORKER_RUNTIME", "custom")
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in settings {
            command.env(k, v);
        }
        let started = Instant::now();
        let mut child = command.spawn().expect("spawn seedwatch serve");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let collectors = vec![
            collect_lines(child.stdout.take().expect("stdout"), Arc::clone(&stdout)),
            collect_lines(child.stderr.take().expect("stderr"), Arc::clone(&stderr)),
        ];
        loop {
            if probe(port).await {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "seedwatch serve exited before it was ready ({status}); stderr: {:?}",
                    stderr.lock().unwrap()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "Initializing HttpWorker timed out."
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        HostEmulator {
            child,
            port,
            cold_start: started.elapsed(),
            stdout,
            stderr,
            collectors,
        }
    }

    /// POSTs an invocation to `/{function}` with the host's headers; `chunked` sends the body
    /// with `Transfer-Encoding: chunked` instead of a `Content-Length`.
    pub async fn invoke(&self, function: &str, body: &Value, invocation_id: &str, chunked: bool) -> HostResponse {
        let text = serde_json::to_vec(body).expect("json");
        self.invoke_raw(function, &text, invocation_id, chunked).await
    }

    /// POSTs raw bytes as an invocation body.
    pub async fn invoke_raw(&self, function: &str, body: &[u8], invocation_id: &str, chunked: bool) -> HostResponse {
        let headers = [
            ("Content-Type", "application/json; charset=utf-8"),
            ("X-Azure-Functions-HostVersion", "4.1037.0.0"),
            ("X-Azure-Functions-InvocationId", invocation_id),
            ("User-Agent", "Azure-Functions-Host/4.1037.0.0"),
        ];
        let mut response = http_request(self.port, "POST", &format!("/{function}"), &headers, body, chunked).await;
        // The host keeps an invocation's `Logs` only when it succeeded; an operator sees a
        // failed invocation through the worker's own stdout/stderr lines, never its `Logs`.
        if !(200..300).contains(&response.status) && response.body["Logs"].is_array() {
            response.body["Logs"] = json!([]);
        }
        response
    }

    /// Delivers an Event Grid batch as Event Grid and the host do: one `resource-events`
    /// invocation holding the events, repeated while the answer is not 2xx, up to
    /// `max_attempts` (Event Grid's default is 30 over 24 hours,
    /// https://learn.microsoft.com/azure/event-grid/delivery-and-retry; the emulator does not
    /// wait between attempts).
    pub async fn deliver_event_grid(&self, events: &[Value], invocation: &str, max_attempts: u32) -> Redelivery {
        let body = event_invocation(&Value::Array(events.to_vec()));
        self.redeliver(max_attempts, |attempt| {
            ("resource-events", body.clone(), format!("{invocation}-try{attempt}"))
        })
        .await
    }

    /// Delivers a Service Bus message as the host does: `DeliveryCount` starts at 1 and grows
    /// with each abandoned delivery (a non-2xx answer); past `max_delivery_count` the message
    /// goes to the dead-letter queue
    /// (https://learn.microsoft.com/azure/service-bus-messaging/service-bus-dead-letter-queues).
    pub async fn deliver_message(&self, body_text: &str, message_id: &str, max_delivery_count: u32) -> Redelivery {
        self.redeliver(max_delivery_count, |delivery_count| {
            let invocation = servicebus_invocation(body_text, message_id, delivery_count);
            ("retry", invocation, format!("{message_id}-d{delivery_count}"))
        })
        .await
    }

    /// Invokes up to `max_attempts` times until an answer is 2xx; `attempt(n)` gives the
    /// function, the invocation and its id for the n-th attempt (from 1).
    async fn redeliver(&self, max_attempts: u32, attempt: impl Fn(u32) -> (&'static str, Value, String)) -> Redelivery {
        let mut responses = Vec::new();
        for n in 1..=max_attempts {
            let (function, body, id) = attempt(n);
            let response = self.invoke(function, &body, &id, false).await;
            let done = (200..300).contains(&response.status);
            responses.push(response);
            if done {
                return Redelivery {
                    responses,
                    dead_lettered: false,
                };
            }
        }
        Redelivery {
            responses,
            dead_lettered: true,
        }
    }

    pub async fn get(&self, path: &str) -> HostResponse {
        http_request(self.port, "GET", path, &[], b"", false).await
    }

    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Log lines (both streams) parsed as JSON; lines that are not JSON are returned as strings.
    pub fn log_records(&self) -> Vec<Value> {
        self.stdout_lines()
            .into_iter()
            .chain(self.stderr_lines())
            .map(|l| serde_json::from_str(&l).unwrap_or(Value::String(l)))
            .collect()
    }

    /// Waits until a log record satisfies `found` (the worker writes its lines asynchronously),
    /// failing after a generous 30 s rather than racing a fixed sleep.
    pub async fn wait_for_log(&self, what: &str, found: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            if let Some(record) = self.log_records().into_iter().find(|r| found(r)) {
                return record;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no log record {what} within 30 s: {:?}",
                self.log_records()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sends SIGTERM, as the host does when it stops the worker, and waits for the exit.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        self.stop().await
    }

    /// Terminates the process and returns everything it wrote: (stdout lines, stderr lines),
    /// read to the end of both streams.
    pub async fn terminate_and_collect_output(mut self) -> (Vec<String>, Vec<String>) {
        self.stop().await;
        for collector in std::mem::take(&mut self.collectors) {
            tokio::time::timeout(Duration::from_secs(10), collector)
                .await
                .expect("the output streams closed within 10 s of the exit")
                .expect("collector");
        }
        (self.stdout_lines(), self.stderr_lines())
    }

    async fn stop(&mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("exited within 10 s of SIGTERM")
            .expect("wait")
    }
}

fn collect_lines<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    stream: R,
    into: Arc<Mutex<Vec<String>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            into.lock().unwrap().push(line);
        }
    })
}

/// Readiness as the host sees it: any HTTP answer to `GET /`; a socket error means not ready.
async fn probe(port: u16) -> bool {
    let Ok(Ok(mut stream)) =
        tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(("127.0.0.1", port))).await
    else {
        return false;
    };
    let request = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    matches!(
        tokio::time::timeout(Duration::from_secs(1), stream.read_exact(&mut buf)).await,
        Ok(Ok(_)) if buf.starts_with(b"HTTP/1.1 ")
    )
}

/// One HTTP/1.1 request over a fresh connection, framed as asked.
pub async fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    chunked: bool,
) -> HostResponse {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let mut wire = Vec::new();
    if chunked {
        head.push_str("Transfer-Encoding: chunked\r\n\r\n");
        wire.extend_from_slice(head.as_bytes());
        // Uneven chunks, as a streaming serializer produces.
        for piece in body.chunks(97) {
            wire.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            wire.extend_from_slice(piece);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
    } else {
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        wire.extend_from_slice(head.as_bytes());
        wire.extend_from_slice(body);
    }
    stream.write_all(&wire).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut raw))
        .await
        .expect("the handler answered within 60 s")
        .expect("read");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> HostResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete HTTP response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        body = dechunk(&body);
    }
    let parsed = serde_json::from_slice(&body).unwrap_or(Value::Null);
    HostResponse {
        status,
        headers,
        raw: body,
        body: parsed,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 2 + size + 2..];
    }
}

// ---- Invocation payloads, shaped as the host shapes them (see the custom handler reference above) ----

/// The host's encoding of a string value: JSON text of the string, sent as a JSON string.
pub fn host_string(s: &str) -> Value {
    Value::String(serde_json::to_string(s).unwrap())
}

fn sys(function: &str) -> Value {
    json!({
        "MethodName": function,
        "UtcNow": "2025-03-01T10:15:07.1234567Z",
        "RandGuid": uuid::Uuid::new_v4().to_string(),
    })
}

/// A timer invocation (`TimerInfo` is an object; only `sys` in Metadata).
pub fn timer_invocation(past_due: bool) -> Value {
    json!({
        "Data": {
            "timer": {
                "Schedule": { "AdjustForDST": true },
                "ScheduleStatus": {
                    "Last": "2025-03-01T04:00:00.0012345+00:00",
                    "Next": "2025-03-01T10:00:00+00:00",
                    "LastUpdated": "2025-03-01T04:00:00.0012345+00:00"
                },
                "IsPastDue": past_due
            }
        },
        "Metadata": { "sys": sys("reconcile") }
    })
}

/// An Event Grid invocation: the event object as is, `Metadata.data` = its data.
pub fn event_invocation(event: &Value) -> Value {
    json!({
        "Data": { "event": event },
        "Metadata": { "data": event.get("data").cloned().unwrap_or(Value::Null), "sys": sys("resource-events") }
    })
}

/// A Service Bus invocation: the body (UTF-8 text) double-encoded, with the trigger metadata;
/// a JSON-object body's top-level properties are copied into Metadata as the host does.
pub fn servicebus_invocation(body_text: &str, message_id: &str, delivery_count: u32) -> Value {
    let mut metadata = json!({
        "MessageReceiver": {}, "MessageSession": {}, "MessageActions": {}, "SessionActions": {}, "ReceiveActions": {},
        "Client": { "FullyQualifiedNamespace": "mysbns.servicebus.windows.net", "IsClosed": false, "TransportType": 0, "Identifier": "mysbns-1" },
        "DeliveryCount": delivery_count.to_string(),
        "LockToken": host_string(&uuid::Uuid::new_v4().to_string()),
        "ExpiresAtUtc": "9999-12-31T23:59:59",
        "ExpiresAt": "9999-12-31T23:59:59+00:00",
        "EnqueuedTimeUtc": "2025-03-01T10:15:07",
        "EnqueuedTime": "2025-03-01T10:15:07+00:00",
        "MessageId": host_string(message_id),
        "ContentType": host_string("application/json"),
        "SequenceNumber": "42",
        "ApplicationProperties": { "kind": "retry" },
        "UserProperties": { "kind": "retry" },
        "sys": sys("retry"),
    });
    if let Ok(Value::Object(props)) = serde_json::from_str::<Value>(body_text) {
        for (k, v) in props {
            let encoded = match v {
                Value::Object(_) => v,
                Value::Array(_) => continue,
                Value::String(s) => host_string(&s),
                other => host_string(&other.to_string()),
            };
            metadata[k] = encoded;
        }
    }
    json!({ "Data": { "msg": host_string(body_text) }, "Metadata": metadata })
}

/// An HTTP-trigger invocation (not forwarded): `Body` is the raw body text, single-encoded,
/// and absent when the caller sent no Content-Length.
pub fn http_invocation(body_text: Option<&str>) -> Value {
    let length = body_text.map(|b| b.len()).unwrap_or(0).to_string();
    let mut req = json!({
        "Url": "https://seedwatch.azurewebsites.net/api/resync",
        "Method": "POST",
        "Query": {},
        "Headers": {
            "Content-Type": ["application/json"],
            "Content-Length": [length.clone()],
            "Host": ["seedwatch.azurewebsites.net"],
            "x-functions-key": ["not-a-real-key"]
        },
        "Params": {},
        "Identities": [{ "AuthenticationType": null, "IsAuthenticated": false, "Claims": [], "Name": null }]
    });
    if let Some(body) = body_text {
        req["Body"] = Value::String(body.to_string());
    }
    json!({
        "Data": { "req": req },
        "Metadata": {
            "Query": {},
            "Headers": { "Content-Type": "application/json", "Content-Length": length, "Host": "seedwatch.azurewebsites.net" },
            "sys": sys("resync")
        }
    })
}

/// A `Microsoft.Resources.*` event in the Event Grid schema
/// (<https://learn.microsoft.com/azure/event-grid/event-schema>).
/// A `Microsoft.Resources.*` event for `resource_id`, dated now (as Event Grid dates a change
/// when it happens); see [`dated`] for another time.
pub fn resources_event(event_type: &str, resource_id: &str) -> Value {
    let subscription = resource_id.split('/').nth(2).unwrap_or("0");
    let method = if event_type.contains("Delete") { "DELETE" } else { "PUT" };
    json!({
        "subject": resource_id,
        "eventType": event_type,
        "eventTime": rfc3339(time::OffsetDateTime::now_utc()),
        "id": uuid::Uuid::new_v4().to_string(),
        "data": {
            "authorization": { "scope": resource_id, "action": "Microsoft.Network/publicIPAddresses/write", "evidence": { "role": "Contributor" } },
            "claims": { "aud": "https://management.core.windows.net/", "appid": "33333333-3333-3333-3333-333333333333" },
            "correlationId": uuid::Uuid::new_v4().to_string(),
            "httpRequest": { "clientRequestId": "8e2f0d3b", "clientIpAddress": "203.0.113.10", "method": method, "url": format!("https://management.azure.com{resource_id}?api-version=2023-09-01") },
            "resourceProvider": "Microsoft.Network",
            "resourceUri": resource_id,
            "operationName": "Microsoft.Network/publicIPAddresses/write",
            "status": "Succeeded",
            "subscriptionId": subscription,
            "tenantId": "22222222-2222-2222-2222-222222222222"
        },
        "dataVersion": "2",
        "metadataVersion": "1",
        "topic": format!("/subscriptions/{subscription}")
    })
}

/// The same event in the CloudEvents 1.0 schema
/// (<https://learn.microsoft.com/azure/event-grid/cloud-event-schema>).
pub fn cloud_event(event_type: &str, resource_id: &str) -> Value {
    let grid = resources_event(event_type, resource_id);
    json!({
        "id": grid["id"],
        "source": grid["topic"],
        "specversion": "1.0",
        "type": event_type,
        "subject": resource_id,
        "time": grid["eventTime"],
        "data": grid["data"],
    })
}

/// The event re-dated `offset` from now (an Event Grid or CloudEvents event).
pub fn dated(mut event: Value, offset: time::Duration) -> Value {
    let at = rfc3339(time::OffsetDateTime::now_utc() + offset);
    let field = if event.get("specversion").is_some() {
        "time"
    } else {
        "eventTime"
    };
    event[field] = Value::String(at);
    event
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
