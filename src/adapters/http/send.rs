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
