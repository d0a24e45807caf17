//! Coalescing bursts of changes for one owner into one apply (so one ARM read).
//!
//! Event Grid fans a burst out as parallel invocations, often several for the same owner (a
//! deployment writes a site, its config, its host name bindings, its tags...). Per owner key
//! ([`Change::key`]) there is at most one apply running and at most one waiting:
//! - a change that finds an apply *waiting* (not yet started) joins it: one read serves both;
//! - a change dated (by its event) at least `clock_skew` before the read of the *running*
//!   apply, or of the last one to succeed, started is already covered by that read: it takes
//!   that apply's outcome and costs nothing (late deliveries, Event Grid's redeliveries);
//! - any other change starts the waiting follow-up: the read may predate the change, so one
//!   more read is needed, but only one however many join it.
//!
//! A waiting apply starts `window` after its first change (letting the rest of a burst join)
//! and when one of the `concurrency` permits is free. Every caller gets the outcome of the
//! apply that covered its change. The apply runs in its own task, so a caller that goes away
//! does not cancel it.
//!
//! "Read started" is taken when the apply starts, before it reads the ledger or ARM, and only
//! for changes without an event body (an apply that uses a body rests on the body's time, not
//! on a read). A covered change must also not need more than the read gives: a delete is
//! covered only by the apply of a delete, which re-checks what was below the resource.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tokio::sync::{Semaphore, oneshot};
use tracing::Instrument;

use crate::config::EventSettings;
use crate::domain::change::{Change, ChangeKind};
use crate::domain::clock::now_ms;

/// The work run for one (merged) change.
pub(crate) type Work<O> = Arc<dyn Fn(Change) -> BoxFuture<'static, O> + Send + Sync>;

/// Whether an outcome may be handed to a later change the same read covered (a success or a
/// scheduled retry; not a failure the caller must see for itself).
pub(crate) type Reusable<O> = fn(&O) -> bool;

/// How long a finished read is remembered for changes it covers.
const REMEMBER: Duration = Duration::from_secs(600);
/// Submissions between two sweeps of forgotten reads.
const PRUNE_EVERY: u64 = 4096;

type Outcome<O> = Shared<BoxFuture<'static, Option<O>>>;

struct Batch<O: Clone> {
    change: Change,
    /// The span of the invocation that opened the batch, so the apply's log lines carry its
    /// invocation id.
    span: tracing::Span,
    done: oneshot::Sender<O>,
    outcome: Outcome<O>,
}

/// A read: when it started and whether it was the apply of a delete.
#[derive(Clone, Copy)]
struct Read {
    started_ms: i64,
    deleted: bool,
}

impl Read {
    fn covers(&self, change: &Change, skew_ms: i64) -> bool {
        let Some(at) = change.time_ms() else {
            return false;
        };
        (change.kind == ChangeKind::Changed || self.deleted) && at.saturating_add(skew_ms) <= self.started_ms
    }
}

struct Running<O> {
    /// `None` when the apply does not rest on a read made at its start (it used a body).
    read: Option<Read>,
    outcome: Outcome<O>,
}

struct Finished<O> {
    read: Read,
    outcome: O,
    at: Instant,
}

struct Slot<O: Clone> {
    waiting: Option<Batch<O>>,
    running: Option<Running<O>>,
    last: Option<Finished<O>>,
    /// A task is driving this key's batches.
    driven: bool,
}

impl<O: Clone> Slot<O> {
    fn new() -> Slot<O> {
        Slot {
            waiting: None,
            running: None,
            last: None,
            driven: false,
        }
    }

    fn forgotten(&self) -> bool {
        !self.driven && self.last.as_ref().is_none_or(|f| f.at.elapsed() >= REMEMBER)
    }
}

pub(crate) struct Coalescer<O: Clone + Send + Sync + 'static> {
    slots: Mutex<HashMap<String, Slot<O>>>,
    work: Work<O>,
    reusable: Reusable<O>,
    window: Duration,
    skew_ms: i64,
    permits: Arc<Semaphore>,
    submitted: AtomicU64,
    runs: AtomicU64,
    covered: AtomicU64,
}

/// The apply's task went away without an outcome (it panicked or the runtime shut down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the apply for this resource stopped without a result")]
pub(crate) struct Lost;

enum Wait<O> {
    On(Outcome<O>),
    Ready(O),
}

impl<O: Clone + Send + Sync + 'static> Coalescer<O> {
    /// Coalesces over `events.coalesce_window`, runs at most `events.concurrency` at once and
    /// allows `events.clock_skew` between an event's time and ours.
    pub(crate) fn new(work: Work<O>, reusable: Reusable<O>, settings: &EventSettings) -> Arc<Coalescer<O>> {
        Arc::new(Coalescer {
            slots: Mutex::new(HashMap::new()),
            work,
            reusable,
            window: settings.coalesce_window,
            skew_ms: i64::try_from(settings.clock_skew.as_millis()).unwrap_or(i64::MAX),
            permits: Arc::new(Semaphore::new(
                usize::try_from(settings.concurrency).unwrap_or(usize::MAX).max(1),
            )),
            submitted: AtomicU64::new(0),
            runs: AtomicU64::new(0),
            covered: AtomicU64::new(0),
        })
    }

    /// Submits a change and waits for the outcome of the apply that covers it.
    pub(crate) async fn submit(self: &Arc<Self>, change: Change) -> Result<O, Lost> {
        let submitted = self.submitted.fetch_add(1, Ordering::Relaxed) + 1;
        let key = change.key();
        let wait = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            if submitted.is_multiple_of(PRUNE_EVERY) {
                slots.retain(|_, slot| !slot.forgotten());
            }
            let slot = slots.entry(key.clone()).or_insert_with(Slot::new);
            self.place(slot, change, key)
        };
        match wait {
            Wait::On(outcome) => outcome.await.ok_or(Lost),
            Wait::Ready(outcome) => Ok(outcome),
        }
    }

    /// Joins, reuses or opens a batch for `change` (under the lock).
    fn place(self: &Arc<Self>, slot: &mut Slot<O>, change: Change, key: String) -> Wait<O> {
        if let Some(batch) = &mut slot.waiting {
            batch.change.merge(change);
            return Wait::On(batch.outcome.clone());
        }
        if let Some(running) = &slot.running
            && running.read.is_some_and(|read| read.covers(&change, self.skew_ms))
        {
            self.covered.fetch_add(1, Ordering::Relaxed);
            return Wait::On(running.outcome.clone());
        }
        if let Some(last) = &slot.last
            && last.at.elapsed() < REMEMBER
            && last.read.covers(&change, self.skew_ms)
        {
            self.covered.fetch_add(1, Ordering::Relaxed);
            return Wait::Ready(last.outcome.clone());
        }
        let (batch, outcome) = new_batch(change);
        slot.waiting = Some(batch);
        if !slot.driven {
            slot.driven = true;
            let me = Arc::clone(self);
            tokio::spawn(async move { me.drive(key).await });
        }
        Wait::On(outcome)
    }

    /// Runs the waiting batches of one key until none is left.
    async fn drive(self: Arc<Self>, key: String) {
        loop {
            if !self.window.is_zero() {
                tokio::time::sleep(self.window).await;
            }
            let Ok(_permit) = Arc::clone(&self.permits).acquire_owned().await else {
                return;
            };
            let (batch, read) = {
                let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
                let Some(slot) = slots.get_mut(&key) else {
                    return;
                };
                let Some(batch) = slot.waiting.take() else {
                    slot.driven = false;
                    return;
                };
                let read = batch.change.body.is_none().then(|| Read {
                    started_ms: now_ms(),
                    deleted: batch.change.kind == ChangeKind::Deleted,
                });
                slot.running = Some(Running {
                    read,
                    outcome: batch.outcome.clone(),
                });
                (batch, read)
            };
            self.runs.fetch_add(1, Ordering::Relaxed);
            // A panicking apply must not leave the key without a driver: its callers get `Lost`
            // and the loop goes on with whatever is waiting.
            let run = std::panic::AssertUnwindSafe((self.work)(batch.change).instrument(batch.span)).catch_unwind();
            let result = run.await.ok();
            if let Some(result) = &result {
                let _ = batch.done.send(result.clone());
            }
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            let Some(slot) = slots.get_mut(&key) else {
                return;
            };
            slot.running = None;
            if let (Some(read), Some(outcome)) = (read, result)
                && (self.reusable)(&outcome)
            {
                slot.last = Some(Finished {
                    read,
                    outcome,
                    at: Instant::now(),
                });
            }
            if slot.waiting.is_none() {
                slot.driven = false;
                return;
            }
        }
    }

    /// Changes submitted so far.
    #[cfg(test)]
    pub(crate) fn submitted(&self) -> u64 {
        self.submitted.load(Ordering::Relaxed)
    }

    /// Applies run so far (each is one read of the resource).
    #[cfg(test)]
    pub(crate) fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// Changes answered by a read that had already started when they arrived.
    #[cfg(test)]
    pub(crate) fn covered(&self) -> u64 {
        self.covered.load(Ordering::Relaxed)
    }
}

fn new_batch<O: Clone + Send + Sync + 'static>(change: Change) -> (Batch<O>, Outcome<O>) {
    let (done, rx) = oneshot::channel::<O>();
    let outcome: Outcome<O> = rx.map(Result::ok).boxed().shared();
    (
        Batch {
            change,
            span: tracing::Span::current(),
            done,
            outcome: outcome.clone(),
        },
        outcome,
    )
}

#[cfg(test)]
mod tests;
