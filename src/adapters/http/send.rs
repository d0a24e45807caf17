//! The one send-with-retry every REST client uses (ARM and Resource Graph, ASM, Table Storage,
//! Service Bus). The retry rules are values ([`RetryRules`]); what a client does around each
//! attempt (a fresh token or signature, pacing, logging, counting) is its [`Exchange`].
//!
//! An attempt is retried when it fails in transit (connect, timeout, a body cut short) or is
//! answered with a retryable status ([`is_retryable_status`]), at most `http.retry_count`
//! times, after the server's `Retry-After` / `Retry-After-Ms` (capped) or else the
//! exponential backoff of `http.retry_base_delay` .. `http.retry_max_delay`. Each attempt is
//! bounded by the client's own timeout (`http.timeout`, see [`super::try_client`]). Every
//! attempt re-sends the whole request, body included: the request is built afresh each time.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::HeaderMap;

use super::{RetryPolicy, is_retryable_status, retry_after};

/// A response read to its end: the caller interprets its status.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// How one client retries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryRules {
    /// Retries after the first attempt and their backoff (`http.retry_*`).
    pub policy: RetryPolicy,
    /// The longest server-asked wait honoured, so a hostile or broken `Retry-After` cannot park
    /// a run for hours.
    pub retry_after_ceiling: Duration,
    /// `Some(n)`: a 429 draws on a budget of its own, `n` retries, instead of `policy.count`;
    /// it waits for `Retry-After`, else [`Exchange::throttle_hint`], else the backoff (all
    /// capped at the ceiling), and past the budget the send ends in [`SendError::Throttled`]
    /// (ARM and Resource Graph, whose quotas refill). `None`: a 429 is one more retryable
    /// status.
    pub throttle_budget: Option<u32>,
}

/// Why another attempt follows.
#[derive(Debug)]
pub(crate) enum Retry {
    /// A retryable status, counted against `policy.count`.
    Status(u16),
    /// A 429 under [`RetryRules::throttle_budget`].
    Throttled,
    /// The attempt failed in transit; the error is handed over for the client to log in its
    /// own words (and without its secrets).
    Transport(reqwest::Error),
}

/// Why a send gave up.
#[derive(Debug)]
pub(crate) enum SendError<E> {
    /// Building an attempt's request failed (a token, a signature): never retried.
    Request(E),
    /// The last attempt failed in transit; `attempts` were made in all.
    Transport { error: reqwest::Error, attempts: u32 },
    /// More 429s than [`RetryRules::throttle_budget`] allows; the last 429 is kept.
    Throttled(Answer),
}

/// What one client does around the attempts of a send.
pub(crate) trait Exchange: Sync {
    type Error: Send;

    /// The request for the next attempt, built afresh (a current token, date or signature, the
    /// body again). An error ends the send as [`SendError::Request`].
    fn request(&self) -> impl Future<Output = Result<reqwest::RequestBuilder, Self::Error>> + Send;

    /// Every answer's status and headers, before its body is read (ARM paces from them).
    fn observe(&self, _status: u16, _headers: &HeaderMap) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// A throttled answer's wait when it sent no `Retry-After` (Resource Graph's quota reset).
    fn throttle_hint(&self, _headers: &HeaderMap) -> Option<Duration> {
        None
    }

    /// Waits `wait` before retry number `retry` (0-based, per budget). The default sleeps; a
    /// client overrides it to log or count, or to hold a shared pacer instead of sleeping.
    fn retrying(&self, _why: Retry, _retry: u32, wait: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(wait)
    }
}

/// Sends the exchange's request until an attempt is answered with a status that is not
/// retried or the retries run out; returns that answer whatever its status.
pub(crate) async fn send_with_retry<X: Exchange>(
    rules: &RetryRules,
    exchange: &X,
) -> Result<Answer, SendError<X::Error>> {
    let mut failures = 0u32;
    let mut throttles = 0u32;
    loop {
        let request = exchange.request().await.map_err(SendError::Request)?;
        let answer = match attempt(request, exchange).await {
            Ok(answer) => answer,
            Err(error) => {
                if failures >= rules.policy.count {
                    let attempts = failures + throttles + 1;
                    return Err(SendError::Transport { error, attempts });
                }
                let wait = rules.policy.backoff(failures);
                exchange.retrying(Retry::Transport(error), failures, wait).await;
                failures += 1;
                continue;
            }
        };
        if answer.status == 429
            && let Some(budget) = rules.throttle_budget
        {
            if throttles >= budget {
                return Err(SendError::Throttled(answer));
            }
            let wait = retry_after(&answer.headers)
                .or_else(|| exchange.throttle_hint(&answer.headers))
                .unwrap_or_else(|| rules.policy.backoff(throttles))
                .min(rules.retry_after_ceiling);
            exchange.retrying(Retry::Throttled, throttles, wait).await;
            throttles += 1;
            continue;
        }
        if is_retryable_status(answer.status) && failures < rules.policy.count {
            let asked = retry_after(&answer.headers);
            let wait = rules.policy.delay(failures, asked, rules.retry_after_ceiling);
            exchange.retrying(Retry::Status(answer.status), failures, wait).await;
            failures += 1;
            continue;
        }
        return Ok(answer);
    }
}

/// One attempt: send, show the exchange the headers, read the body to its end.
async fn attempt<X: Exchange>(request: reqwest::RequestBuilder, exchange: &X) -> Result<Answer, reqwest::Error> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    exchange.observe(status, &headers).await;
    let body = response.bytes().await?;
    Ok(Answer { status, headers, body })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::extract::State;
    use axum::http::StatusCode;

    use super::*;

    /// A server that answers each request with the next status of `script` (the last one
    /// repeated) and keeps every request body.
    #[derive(Clone)]
    struct Script {
        statuses: Arc<Vec<(u16, Option<&'static str>)>>,
        bodies: Arc<Mutex<Vec<String>>>,
    }

    async fn answer(State(script): State<Script>, body: String) -> axum::response::Response {
        let seen = {
            let mut bodies = script.bodies.lock().unwrap();
            bodies.push(body);
            bodies.len()
        };
        let (status, retry_after) = script.statuses[(seen - 1).min(script.statuses.len() - 1)];
        let mut response = axum::response::Response::new(axum::body::Body::from("answer"));
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        if let Some(value) = retry_after {
            response.headers_mut().insert("retry-after", value.parse().unwrap());
        }
        response
    }

    async fn serve(statuses: Vec<(u16, Option<&'static str>)>) -> (String, Script) {
        let script = Script {
            statuses: Arc::new(statuses),
            bodies: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/x", axum::routing::post(answer))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/x", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (url, script)
    }

    /// Posts `body` to `url`, records each retry and its wait instead of sleeping, and hints
    /// `hint` for a throttled answer.
    struct Probe {
        url: String,
        body: &'static str,
        hint: Option<Duration>,
        refuse: bool,
        retries: Mutex<Vec<(String, u32, Duration)>>,
    }

    impl Probe {
        fn new(url: &str) -> Probe {
            Probe {
                url: url.to_string(),
                body: "the body",
                hint: None,
                refuse: false,
                retries: Mutex::default(),
            }
        }

        fn retries(&self) -> Vec<(String, u32, Duration)> {
            self.retries.lock().unwrap().clone()
        }
    }

    impl Exchange for Probe {
        type Error = &'static str;

        async fn request(&self) -> Result<reqwest::RequestBuilder, &'static str> {
            if self.refuse {
                return Err("no token");
            }
            Ok(reqwest::Client::new().post(&self.url).body(self.body))
        }

        fn throttle_hint(&self, _headers: &HeaderMap) -> Option<Duration> {
            self.hint
        }

        async fn retrying(&self, why: Retry, retry: u32, wait: Duration) {
            let why = match why {
                Retry::Status(status) => format!("status {status}"),
                Retry::Throttled => "throttled".to_string(),
                Retry::Transport(_) => "transport".to_string(),
            };
            self.retries.lock().unwrap().push((why, retry, wait));
        }
    }

    fn rules(count: u32, throttle_budget: Option<u32>) -> RetryRules {
        RetryRules {
            policy: RetryPolicy {
                count,
                base: Duration::from_secs(1),
                max: Duration::from_secs(4),
            },
            retry_after_ceiling: Duration::from_secs(10),
            throttle_budget,
        }
    }

    #[tokio::test]
    async fn retryable_statuses_are_retried_with_the_whole_body_after_retry_after() {
        let (url, script) = serve(vec![(503, Some("3")), (500, Some("600")), (502, None), (201, None)]).await;
        let probe = Probe::new(&url);
        let answer = send_with_retry(&rules(3, None), &probe).await.unwrap();
        assert_eq!((answer.status, &answer.body[..]), (201, &b"answer"[..]));
        assert_eq!(*script.bodies.lock().unwrap(), vec!["the body"; 4]);
        let secs = |s| Duration::from_secs(s);
        assert_eq!(
            probe.retries(),
            vec![
                ("status 503".into(), 0, secs(3)),
                ("status 500".into(), 1, secs(10)),
                ("status 502".into(), 2, secs(4)),
            ],
            "Retry-After, capped at the ceiling, else the backoff"
        );
    }

    #[tokio::test]
    async fn the_last_retryable_answer_is_returned_and_other_statuses_at_once() {
        let (url, _) = serve(vec![(503, None)]).await;
        let probe = Probe::new(&url);
        let answer = send_with_retry(&rules(2, None), &probe).await.unwrap();
        assert_eq!((answer.status, probe.retries().len()), (503, 2));
        let (url, _) = serve(vec![(404, None), (200, None)]).await;
        let probe = Probe::new(&url);
        let answer = send_with_retry(&rules(2, None), &probe).await.unwrap();
        assert_eq!((answer.status, probe.retries().len()), (404, 0));
    }

    #[tokio::test]
    async fn a_throttle_budget_counts_429s_apart_and_ends_in_throttled() {
        let (url, script) = serve(vec![(429, Some("30")), (429, None), (500, None), (429, None)]).await;
        let mut probe = Probe::new(&url);
        probe.hint = Some(Duration::from_secs(2));
        let result = send_with_retry(&rules(1, Some(2)), &probe).await;
        assert!(matches!(result, Err(SendError::Throttled(Answer { status: 429, .. }))));
        assert_eq!(script.bodies.lock().unwrap().len(), 4);
        let secs = |s| Duration::from_secs(s);
        assert_eq!(
            probe.retries(),
            vec![
                ("throttled".into(), 0, secs(10)),
                ("throttled".into(), 1, secs(2)),
                ("status 500".into(), 0, secs(1)),
            ],
            "Retry-After (capped), else the hint; the 500 draws on the other count"
        );
        let (url, _) = serve(vec![(429, None)]).await;
        let probe = Probe::new(&url);
        let answer = send_with_retry(&rules(1, None), &probe).await.unwrap();
        assert_eq!(
            (answer.status, probe.retries().len()),
            (429, 1),
            "no budget: one more status"
        );
    }

    #[tokio::test]
    async fn transport_failures_are_retried_then_returned_with_the_attempts() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/x", closed.local_addr().unwrap());
        drop(closed);
        let probe = Probe::new(&url);
        match send_with_retry(&rules(2, None), &probe).await {
            Err(SendError::Transport { attempts, .. }) => assert_eq!(attempts, 3),
            other => panic!("expected a transport failure, got {other:?}"),
        }
        let waits: Vec<_> = probe.retries().into_iter().map(|(why, _, wait)| (why, wait)).collect();
        assert_eq!(
            waits,
            vec![
                ("transport".into(), Duration::from_secs(1)),
                ("transport".into(), Duration::from_secs(2))
            ]
        );
    }

    #[tokio::test]
    async fn a_request_that_cannot_be_built_is_not_retried() {
        let mut probe = Probe::new("http://127.0.0.1:1/x");
        probe.refuse = true;
        assert!(matches!(
            send_with_retry(&rules(3, Some(3)), &probe).await,
            Err(SendError::Request("no token"))
        ));
        assert!(probe.retries().is_empty());
    }
}
