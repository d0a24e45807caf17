//! A fake Service Bus REST data plane (<https://learn.microsoft.com/rest/api/servicebus/>): `POST /{queue}/messages`
//! answers 201 with an empty body; `BrokerProperties` is parsed (an unparsable one, or a
//! `ScheduledEnqueueTimeUtc` that is not RFC 1123, is a 400); duplicate detection drops a
//! message whose `MessageId` was seen within the window (still 201), scheduled messages
//! included; every accepted send is journaled. As strict as the service:
//! - auth is a SAS token checked against the key, or an Entra ID bearer token whose audience
//!   must be `https://servicebus.azure.net` and whose identity must hold a role that may send
//!   (Azure Service Bus Data Sender or Owner); anything else is 401
//!   (https://learn.microsoft.com/azure/service-bus-messaging/authenticate-application);
//! - a message larger than 256 KB (Standard tier, body and properties) is 413
//!   `MessageSizeExceeded` (https://learn.microsoft.com/azure/service-bus-messaging/service-bus-quotas);
//! - injected failures (401/403/410/413/429/500/503) are answered after auth, as the service
//!   does, and 429/503 carry `Retry-After: 10` (the service's busy back-off); tests that need
//!   speed cap the client's wait with `http.retry_max_delay`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// One message the fake accepted (or dropped as a duplicate).
#[derive(Debug, Clone)]
pub struct Journaled {
    pub message_id: Option<String>,
    pub scheduled: Option<SystemTime>,
    pub label: Option<String>,
    pub correlation_id: Option<String>,
    pub broker_properties: Value,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// Dropped by duplicate detection (the sender still got 201).
    pub duplicate: bool,
}

impl Journaled {
    pub fn body_json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
}

/// What an Entra ID token stands for, as the service reads it from the token's claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The `aud` claim: the resource the token was requested for.
    pub audience: String,
    /// The Service Bus data roles the token's identity holds on the namespace.
    pub roles: Vec<String>,
}

/// Looks a bearer token up: `None` for a token no issuer knows.
pub type TokenVerifier = Arc<dyn Fn(&str) -> Option<Grant> + Send + Sync>;

/// The audience every Service Bus token must carry.
pub const AUDIENCE: &str = "https://servicebus.azure.net";
pub const DATA_SENDER: &str = "Azure Service Bus Data Sender";
pub const DATA_OWNER: &str = "Azure Service Bus Data Owner";
pub const DATA_RECEIVER: &str = "Azure Service Bus Data Receiver";

/// Standard tier's message size limit.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// How the fake checks `Authorization`.
#[derive(Clone)]
pub enum FakeAuth {
    Entra(TokenVerifier),
    Sas { key_name: String, key: String },
}

impl FakeAuth {
    /// One bearer token, issued for `audience` to an identity holding `roles`.
    pub fn token(token: &str, audience: &str, roles: &[&str]) -> FakeAuth {
        let token = token.to_string();
        let grant = Grant {
            audience: audience.to_string(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        };
        FakeAuth::Entra(Arc::new(move |given| (given == token).then(|| grant.clone())))
    }
}

/// The queue's duplicate detection history window (the service's default, ten minutes).
const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

struct Inner {
    queues: Vec<String>,
    auth: FakeAuth,
    journal: Vec<Journaled>,
    seen: HashMap<String, SystemTime>,
    inject: VecDeque<u16>,
    requests: usize,
    entity: EntityRead,
}

#[derive(Clone)]
pub struct FakeServiceBus {
    inner: Arc<Mutex<Inner>>,
    pub addr: SocketAddr,
}

impl FakeServiceBus {
    /// Starts on 127.0.0.1:0 with one queue.
    pub async fn start(queue: &str, auth: FakeAuth) -> FakeServiceBus {
        let inner = Arc::new(Mutex::new(Inner {
            queues: vec![queue.to_string()],
            auth,
            journal: Vec::new(),
            seen: HashMap::new(),
            inject: VecDeque::new(),
            requests: 0,
            entity: EntityRead::default(),
        }));
        let app = Router::new()
            .route("/{queue}/messages", post(send))
            .route("/{queue}", axum::routing::get(get_entity))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeServiceBus { inner, addr }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next sends get these statuses, in order, before normal service resumes.
    pub fn inject(&self, statuses: &[u16]) {
        self.inner.lock().unwrap().inject.extend(statuses.iter().copied());
    }

    /// Every send that got a 201, duplicates included (flagged).
    pub fn journal(&self) -> Vec<Journaled> {
        self.inner.lock().unwrap().journal.clone()
    }

    /// The messages a receiver would get (duplicates dropped).
    pub fn delivered(&self) -> Vec<Journaled> {
        self.journal().into_iter().filter(|m| !m.duplicate).collect()
    }

    /// Requests received, failed ones included.
    pub fn requests(&self) -> usize {
        self.inner.lock().unwrap().requests
    }
}

async fn send(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(queue): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = inner.lock().unwrap();
    inner.requests += 1;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let entity_url = format!(
        "{}/{}",
        header("host").map(|h| format!("http://{h}")).unwrap_or_default(),
        queue
    );
    if let Err(why) = check_auth(&inner.auth, header("authorization").as_deref(), &entity_url) {
        return error(StatusCode::UNAUTHORIZED, &why);
    }
    if let Some(status) = inner.inject.pop_front() {
        let mut response = error(StatusCode::from_u16(status).unwrap(), "injected failure");
        if status == 429 || status == 503 {
            response.headers_mut().insert("retry-after", "10".parse().unwrap());
        }
        return response;
    }
    let size = body.len() + header("brokerproperties").map_or(0, |b| b.len());
    if size > MAX_MESSAGE_BYTES {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("MessageSizeExceeded: the message ({size} bytes) exceeds the limit ({MAX_MESSAGE_BYTES} bytes)"),
        );
    }
    if !inner.queues.iter().any(|q| q.eq_ignore_ascii_case(&queue)) {
        return error(StatusCode::GONE, "The messaging entity does not exist");
    }
    let broker = match header("brokerproperties") {
        None => Value::Object(Default::default()),
        Some(text) => match serde_json::from_str::<Value>(&text) {
            Ok(v @ Value::Object(_)) => v,
            _ => return error(StatusCode::BAD_REQUEST, "BrokerProperties is not a JSON object"),
        },
    };
    let scheduled = match broker.get("ScheduledEnqueueTimeUtc") {
        None => None,
        Some(Value::String(s)) => match httpdate::parse_http_date(s) {
            Ok(t) if s.ends_with(" GMT") => Some(t),
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "ScheduledEnqueueTimeUtc is not an RFC 1123 date",
                );
            }
        },
        Some(_) => return error(StatusCode::BAD_REQUEST, "ScheduledEnqueueTimeUtc is not a string"),
    };
    let message_id = broker.get("MessageId").and_then(Value::as_str).map(str::to_string);
    let now = SystemTime::now();
    let duplicate = match &message_id {
        Some(id) => {
            let dup = inner
                .seen
                .get(id)
                .is_some_and(|at| now.duration_since(*at).unwrap_or_default() < DUPLICATE_WINDOW);
            if !dup {
                inner.seen.insert(id.clone(), now);
            }
            dup
        }
        None => false,
    };
    let entry = Journaled {
        message_id,
        scheduled,
        label: broker.get("Label").and_then(Value::as_str).map(str::to_string),
        correlation_id: broker.get("CorrelationId").and_then(Value::as_str).map(str::to_string),
        broker_properties: broker,
        content_type: header("content-type"),
        body: body.to_vec(),
        duplicate,
    };
    inner.journal.push(entry);
    (
        StatusCode::CREATED,
        [("content-type", "application/xml; charset=utf-8")],
        "",
    )
        .into_response()
}

fn error(status: StatusCode, detail: &str) -> Response {
    (
        status,
        [("content-type", "application/xml; charset=utf-8")],
        format!(
            "<Error><Code>{}</Code><Detail>{detail}</Detail></Error>",
            status.as_u16()
        ),
    )
        .into_response()
}

/// Checks a bearer token, or recomputes a SAS signature: HMAC-SHA256 over
/// `sr + "\n" + se` keyed with the UTF-8 key, `sr` covering the entity URL, `se` in the future.
fn check_auth(auth: &FakeAuth, header: Option<&str>, entity_url: &str) -> Result<(), String> {
    let header = header.ok_or("no Authorization header")?;
    match auth {
        FakeAuth::Entra(verify) => {
            let token = header.strip_prefix("Bearer ").ok_or("not a Bearer token")?;
            let grant = verify(token).ok_or("InvalidSignature: the token is not valid")?;
            if grant.audience.trim_end_matches('/') != AUDIENCE {
                return Err(format!(
                    "InvalidAudience: the token's audience {} is not {AUDIENCE}",
                    grant.audience
                ));
            }
            if !grant.roles.iter().any(|r| r == DATA_SENDER || r == DATA_OWNER) {
                return Err("Unauthorized access. 'Send' claim(s) are required to perform this operation.".into());
            }
            Ok(())
        }
        FakeAuth::Sas { key_name, key } => {
            let rest = header
                .strip_prefix("SharedAccessSignature ")
                .ok_or("not a SharedAccessSignature")?;
            let fields: HashMap<&str, &str> = rest.split('&').filter_map(|p| p.split_once('=')).collect();
            let (sr, sig, se, skn) = match (fields.get("sr"), fields.get("sig"), fields.get("se"), fields.get("skn")) {
                (Some(a), Some(b), Some(c), Some(d)) => (*a, *b, *c, *d),
                _ => return Err("SAS token lacks sr, sig, se or skn".into()),
            };
            if skn != key_name {
                return Err("unknown key name".into());
            }
            let decoded_sr = percent_encoding::percent_decode_str(sr).decode_utf8_lossy().to_string();
            if !decoded_sr.eq_ignore_ascii_case(entity_url) {
                return Err(format!("sr {decoded_sr} does not cover {entity_url}"));
            }
            let expiry: u64 = se.parse().map_err(|_| "se is not a number")?;
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
            if expiry <= now {
                return Err("SAS token expired".into());
            }
            let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
            mac.update(format!("{sr}\n{se}").as_bytes());
            let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
            let given = percent_encoding::percent_decode_str(sig)
                .decode_utf8_lossy()
                .to_string();
            if given == expected {
                Ok(())
            } else {
                Err("signature mismatch".into())
            }
        }
    }
}

// ---- Entity reads (the queue's description with its counts) ----
//
// `GET /{queue}?api-version=…` answers the Atom entry with `CountDetails`. Reading it needs the
// Manage claim: the Sender role (what seedwatch holds) gets 401, as from Service Bus, unless a
// test grants Manage by name.

#[derive(Debug, Clone, Default)]
struct EntityRead {
    /// `Some(dead-letter count)` once Manage is granted.
    manage_with_dead_letters: Option<u64>,
}

impl FakeServiceBus {
    /// The credential may read the queue's description (Manage), which holds `dead_letters`
    /// dead-lettered messages.
    pub fn grant_manage_with_dead_letters(&self, dead_letters: u64) {
        self.inner.lock().unwrap().entity.manage_with_dead_letters = Some(dead_letters);
    }
}

async fn get_entity(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(queue): Path<String>,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let inner = inner.lock().unwrap();
    if !inner.queues.contains(&queue) {
        return error(StatusCode::NOT_FOUND, "The messaging entity could not be found.");
    }
    if !query.contains_key("api-version") {
        return error(StatusCode::BAD_REQUEST, "api-version is required");
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let entity_url = format!(
        "{}/{queue}",
        header("host").map(|h| format!("http://{h}")).unwrap_or_default()
    );
    if let Err(why) = check_auth(&inner.auth, header("authorization").as_deref(), &entity_url) {
        return error(StatusCode::UNAUTHORIZED, &why);
    }
    let Some(dead_letters) = inner.entity.manage_with_dead_letters else {
        return error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized access. 'Manage,EntityRead' claim(s) are required to perform this operation.",
        );
    };
    let body = format!(
        "<entry xmlns=\"http://www.w3.org/2005/Atom\"><title type=\"text\">{queue}</title><content type=\"application/xml\">\
<QueueDescription xmlns=\"http://schemas.microsoft.com/netservices/2010/10/servicebus/connect\" xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\">\
<CountDetails xmlns:d2p1=\"http://schemas.microsoft.com/netservices/2011/06/servicebus\"><d2p1:ActiveMessageCount>0</d2p1:ActiveMessageCount>\
<d2p1:DeadLetterMessageCount>{dead_letters}</d2p1:DeadLetterMessageCount><d2p1:ScheduledMessageCount>0</d2p1:ScheduledMessageCount>\
</CountDetails></QueueDescription></content></entry>"
    );
    (
        [("content-type", "application/atom+xml;type=entry;charset=utf-8")],
        body,
    )
        .into_response()
}
