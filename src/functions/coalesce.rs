//! Coalescing bursts of changes for one resource into one apply (so one ARM read).
//!
//! Event Grid fans a burst out as parallel invocations, often several for the same resource (a
//! deployment writes a resource, its tags, its diagnostic settings...). Per resource key there is
//! at most one apply running and at most one waiting:
//! - a change that finds an apply *waiting* (not yet started) joins it: one read serves both;
//! - a change that finds an apply *running* starts the waiting follow-up: the running read may
//!   predate the change, so one more read is needed, but only one however many join it.
//!
//! A waiting apply starts after `window` (letting the rest of a burst join) and when one of the
//! `concurrency` permits is free. Every caller gets the outcome of the apply that covered its
//! change. The apply runs in its own task, so a caller that goes away does not cancel it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tokio::sync::{Semaphore, oneshot};
use tracing::Instrument;

use super::events::Change;

/// The work run for one (merged) change.
pub type Work<O> = Arc<dyn Fn(Change) -> BoxFuture<'static, O> + Send + Sync>;

type Outcome<O> = Shared<BoxFuture<'static, Option<O>>>;

struct Batch<O: Clone> {
    change: Change,
    /// The span of the invocation that opened the batch, so the apply's log lines carry its
    /// invocation id.
    span: tracing::Span,
    done: oneshot::Sender<O>,
    outcome: Outcome<O>,
}

struct Slot<O: Clone> {
    waiting: Option<Batch<O>>,
}

pub struct Coalescer<O: Clone + Send + Sync + 'static> {
    slots: Mutex<HashMap<String, Slot<O>>>,
    work: Work<O>,
    window: Duration,
    permits: Arc<Semaphore>,
    submitted: AtomicU64,
    runs: AtomicU64,
}

/// The apply's task went away without an outcome (it panicked or the runtime shut down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the apply for this resource stopped without a result")]
pub struct Lost;

impl<O: Clone + Send + Sync + 'static> Coalescer<O> {
    pub fn new(work: Work<O>, window: Duration, concurrency: usize) -> Arc<Coalescer<O>> {
        Arc::new(Coalescer {
            slots: Mutex::new(HashMap::new()),
            work,
            window,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            submitted: AtomicU64::new(0),
            runs: AtomicU64::new(0),
        })
    }

    /// Submits a change and waits for the outcome of the apply that covers it.
    pub async fn submit(self: &Arc<Self>, change: Change) -> Result<O, Lost> {
        self.submitted.fetch_add(1, Ordering::Relaxed);
        let key = change.key();
        let outcome = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            match slots.get_mut(&key) {
                Some(Slot { waiting: Some(batch) }) => {
                    batch.change.merge(change);
                    batch.outcome.clone()
                }
                Some(slot) => {
                    // An apply is running; its driver picks this follow-up up when it ends.
                    let (batch, outcome) = new_batch(change);
                    slot.waiting = Some(batch);
                    outcome
                }
                None => {
                    let (batch, outcome) = new_batch(change);
                    slots.insert(key.clone(), Slot { waiting: Some(batch) });
                    let me = Arc::clone(self);
                    tokio::spawn(async move { me.drive(key).await });
                    outcome
                }
            }
        };
        outcome.await.ok_or(Lost)
    }

    /// Runs the waiting batches of one key until none is left, then frees the key.
    async fn drive(self: Arc<Self>, key: String) {
        loop {
            if !self.window.is_zero() {
                tokio::time::sleep(self.window).await;
            }
            let Ok(_permit) = Arc::clone(&self.permits).acquire_owned().await else {
                return;
            };
            let batch = {
                let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
                match slots.get_mut(&key).and_then(|slot| slot.waiting.take()) {
                    Some(batch) => batch,
                    None => {
                        slots.remove(&key);
                        return;
                    }
                }
            };
            self.runs.fetch_add(1, Ordering::Relaxed);
            // A panicking apply must not leave the key without a driver: its callers get `Lost`
            // and the loop goes on with whatever is waiting.
            let run = std::panic::AssertUnwindSafe((self.work)(batch.change).instrument(batch.span)).catch_unwind();
            if let Ok(result) = run.await {
                let _ = batch.done.send(result);
            }
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            if slots.get(&key).is_none_or(|slot| slot.waiting.is_none()) {
                slots.remove(&key);
                return;
            }
        }
    }

    /// Changes submitted so far.
    pub fn submitted(&self) -> u64 {
        self.submitted.load(Ordering::Relaxed)
    }

    /// Applies run so far (each is one read of the resource).
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
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
mod tests {
    use super::*;
    use crate::functions::events::ChangeKind;
    use crate::resource::ResourceId;
    use std::sync::atomic::AtomicUsize;

    fn change(name: &str, kind: ChangeKind) -> Change {
        Change {
            id: ResourceId::parse(&format!(
                "/subscriptions/1/resourceGroups/rg/providers/Microsoft.Web/sites/{name}"
            ))
            .unwrap(),
            kind,
            body: None,
            time: None,
        }
    }

    fn counting(delay: Duration) -> (Work<ChangeKind>, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        let work: Work<ChangeKind> = Arc::new(move |ch: Change| {
            c.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(delay).await;
                ch.kind
            }
            .boxed()
        });
        (work, calls)
    }

    #[tokio::test]
    async fn a_burst_for_one_resource_is_one_apply() {
        let (work, calls) = counting(Duration::from_millis(5));
        let co = Coalescer::new(work, Duration::from_millis(50), 4);
        let futs: Vec<_> = (0..20)
            .map(|_| {
                let co = Arc::clone(&co);
                tokio::spawn(async move { co.submit(change("a", ChangeKind::Changed)).await })
            })
            .collect();
        for f in futs {
            assert_eq!(f.await.unwrap(), Ok(ChangeKind::Changed));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!((co.submitted(), co.runs()), (20, 1));
    }

    #[tokio::test]
    async fn a_change_during_an_apply_gets_exactly_one_follow_up() {
        let (work, calls) = counting(Duration::from_millis(100));
        let co = Coalescer::new(work, Duration::ZERO, 4);
        let first = {
            let co = Arc::clone(&co);
            tokio::spawn(async move { co.submit(change("a", ChangeKind::Deleted)).await })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        let later: Vec<_> = (0..5)
            .map(|_| {
                let co = Arc::clone(&co);
                tokio::spawn(async move { co.submit(change("a", ChangeKind::Deleted)).await })
            })
            .collect();
        assert_eq!(first.await.unwrap(), Ok(ChangeKind::Deleted));
        for f in later {
            assert_eq!(f.await.unwrap(), Ok(ChangeKind::Deleted));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // The key is freed: a new change is a new apply.
        assert_eq!(
            co.submit(change("a", ChangeKind::Changed)).await,
            Ok(ChangeKind::Changed)
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn different_resources_do_not_wait_for_each_other() {
        let (work, calls) = counting(Duration::from_millis(1));
        let co = Coalescer::new(work, Duration::ZERO, 8);
        let futs: Vec<_> = (0..10)
            .map(|i| {
                let co = Arc::clone(&co);
                tokio::spawn(async move { co.submit(change(&format!("s{i}"), ChangeKind::Changed)).await })
            })
            .collect();
        for f in futs {
            assert!(f.await.unwrap().is_ok());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 10);
    }
}
