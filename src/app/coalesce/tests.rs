//! Paused time: sleeps advance only when every task waits, so "while the first apply runs" is
//! exact. Event dates are relative to the wall clock, which the reads compare them with.

use super::*;
use crate::domain::change::ChangeKind;
use crate::domain::resource::ResourceId;

const SITES: &str = "/subscriptions/1/resourceGroups/rg/providers/Microsoft.Web/sites";

fn change(name: &str, kind: ChangeKind) -> Change {
    Change {
        id: ResourceId::parse(&format!("{SITES}/{name}")).unwrap(),
        kind,
        body: None,
        time: None,
    }
}

/// A change its event dates `offset_ms` from now.
fn dated(name: &str, kind: ChangeKind, offset_ms: i64) -> Change {
    let at = time::OffsetDateTime::now_utc() + time::Duration::milliseconds(offset_ms);
    Change {
        time: Some(at.format(&time::format_description::well_known::Rfc3339).unwrap()),
        ..change(name, kind)
    }
}

fn settings(window_ms: u64, concurrency: u32) -> EventSettings {
    EventSettings {
        coalesce_window: Duration::from_millis(window_ms),
        concurrency,
        clock_skew: Duration::from_millis(500),
        ..EventSettings::default()
    }
}

/// Work that records the changes it was given and answers their kind after `delay`.
fn counting(delay: Duration) -> (Work<ChangeKind>, Arc<Mutex<Vec<Change>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let work: Work<ChangeKind> = Arc::new(move |ch: Change| {
        s.lock().unwrap().push(ch.clone());
        async move {
            tokio::time::sleep(delay).await;
            ch.kind
        }
        .boxed()
    });
    (work, seen)
}

fn always(_: &ChangeKind) -> bool {
    true
}

fn spawn_submit(co: &Arc<Coalescer<ChangeKind>>, c: Change) -> tokio::task::JoinHandle<Result<ChangeKind, Lost>> {
    let co = Arc::clone(co);
    tokio::spawn(async move { co.submit(c).await })
}

#[tokio::test(start_paused = true)]
async fn a_burst_for_one_resource_is_one_apply() {
    let (work, seen) = counting(Duration::from_millis(5));
    let co = Coalescer::new(work, always, &settings(50, 4));
    let futs: Vec<_> = (0..20)
        .map(|_| spawn_submit(&co, change("a", ChangeKind::Changed)))
        .collect();
    for f in futs {
        assert_eq!(f.await.unwrap(), Ok(ChangeKind::Changed));
    }
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert_eq!((co.submitted(), co.runs()), (20, 1));
}

#[tokio::test(start_paused = true)]
async fn changes_to_an_owner_and_its_children_are_one_read_of_the_owner() {
    let (work, seen) = counting(Duration::from_millis(1));
    let co = Coalescer::new(work, always, &settings(50, 4));
    let futs: Vec<_> = [
        "a",
        "a/config/web",
        "a/hostNameBindings/www.example.com",
        "a/providers/Microsoft.Insights/diagnosticSettings/d",
    ]
    .into_iter()
    .map(|name| spawn_submit(&co, change(name, ChangeKind::Changed)))
    .collect();
    for f in futs {
        assert_eq!(f.await.unwrap(), Ok(ChangeKind::Changed));
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].id.as_str(), format!("{SITES}/a"));
}

type Submitted = tokio::task::JoinHandle<Result<ChangeKind, Lost>>;

/// A coalescer whose apply takes 100 ms, with the apply of a `kind` change to "a" running.
async fn with_a_read_running(kind: ChangeKind) -> (Arc<Coalescer<ChangeKind>>, Arc<Mutex<Vec<Change>>>, Submitted) {
    let (work, seen) = counting(Duration::from_millis(100));
    let co = Coalescer::new(work, always, &settings(0, 4));
    let first = spawn_submit(&co, change("a", kind));
    tokio::time::sleep(Duration::from_millis(30)).await;
    (co, seen, first)
}

async fn outcomes(submitted: Vec<Submitted>) -> Vec<ChangeKind> {
    let mut out = Vec::new();
    for s in submitted {
        out.push(s.await.unwrap().unwrap());
    }
    out
}

#[tokio::test(start_paused = true)]
async fn a_change_during_an_apply_gets_exactly_one_follow_up() {
    let (co, seen, first) = with_a_read_running(ChangeKind::Deleted).await;
    // Undated, or dated after the read began: the read may predate them.
    let mut later: Vec<_> = (0..3)
        .map(|_| spawn_submit(&co, change("a", ChangeKind::Deleted)))
        .collect();
    later.push(spawn_submit(&co, dated("a", ChangeKind::Changed, 0)));
    assert_eq!(outcomes(vec![first]).await, [ChangeKind::Deleted]);
    assert_eq!(outcomes(later).await, [ChangeKind::Deleted; 4]);
    assert_eq!(seen.lock().unwrap().len(), 2);
    // The key is free again: a new change is a new apply.
    assert_eq!(
        co.submit(change("a", ChangeKind::Changed)).await,
        Ok(ChangeKind::Changed)
    );
    assert_eq!(seen.lock().unwrap().len(), 3);
    assert_eq!(co.covered(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_change_dated_before_the_running_read_is_covered_by_it() {
    let (co, seen, first) = with_a_read_running(ChangeKind::Changed).await;
    // Happened two seconds ago, delivered late: the read that started just now saw it.
    let late = spawn_submit(&co, dated("a", ChangeKind::Changed, -2000));
    // Within the allowed clock skew of the read's start: not trusted.
    let recent = spawn_submit(&co, dated("a", ChangeKind::Changed, -100));
    assert_eq!(outcomes(vec![first, late, recent]).await, [ChangeKind::Changed; 3]);
    let reads = seen.lock().unwrap().len();
    assert_eq!(reads, 2, "one read plus the follow-up for the recent change");
    assert_eq!(co.covered(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_delete_is_covered_only_by_the_apply_of_a_delete() {
    let (co, seen, first) = with_a_read_running(ChangeKind::Changed).await;
    let delete = spawn_submit(&co, dated("a", ChangeKind::Deleted, -5000));
    assert_eq!(
        outcomes(vec![first, delete]).await,
        [ChangeKind::Changed, ChangeKind::Deleted]
    );
    assert_eq!(seen.lock().unwrap().len(), 2);
    // The last read was a delete's: an older delete and an older change are both covered.
    for kind in [ChangeKind::Deleted, ChangeKind::Changed] {
        assert_eq!(co.submit(dated("a", kind, -5000)).await, Ok(ChangeKind::Deleted));
    }
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert_eq!(co.covered(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_finished_read_answers_later_deliveries_of_older_changes() {
    let (work, seen) = counting(Duration::from_millis(1));
    let co = Coalescer::new(work, always, &settings(0, 4));
    assert_eq!(
        co.submit(change("a", ChangeKind::Changed)).await,
        Ok(ChangeKind::Changed)
    );
    // A redelivery of a change from before that read: no second read.
    assert_eq!(
        co.submit(dated("a", ChangeKind::Changed, -60_000)).await,
        Ok(ChangeKind::Changed)
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
    // A change after it: read again.
    assert_eq!(
        co.submit(dated("a", ChangeKind::Changed, 0)).await,
        Ok(ChangeKind::Changed)
    );
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn outcomes_that_are_not_reusable_and_body_applies_cover_nothing() {
    let (work, seen) = counting(Duration::from_millis(1));
    let co = Coalescer::new(work, |kind: &ChangeKind| *kind == ChangeKind::Deleted, &settings(0, 4));
    assert_eq!(
        co.submit(change("a", ChangeKind::Changed)).await,
        Ok(ChangeKind::Changed)
    );
    assert_eq!(
        co.submit(dated("a", ChangeKind::Changed, -60_000)).await,
        Ok(ChangeKind::Changed)
    );
    assert_eq!(seen.lock().unwrap().len(), 2, "a failure is not handed on");

    let (work, seen) = counting(Duration::from_millis(1));
    let co = Coalescer::new(work, always, &settings(0, 4));
    let body =
        crate::domain::resource::Resource::from_json(serde_json::json!({"id": format!("{SITES}/b"), "properties": {}}))
            .unwrap();
    let with_body = Change {
        body: Some(Box::new(body)),
        ..dated("b", ChangeKind::Changed, -1000)
    };
    assert_eq!(co.submit(with_body).await, Ok(ChangeKind::Changed));
    assert_eq!(
        co.submit(dated("b", ChangeKind::Changed, -60_000)).await,
        Ok(ChangeKind::Changed)
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "an apply from a body made no read to cover with"
    );
}

#[tokio::test(start_paused = true)]
async fn different_resources_do_not_wait_for_each_other() {
    let (work, seen) = counting(Duration::from_millis(1));
    let co = Coalescer::new(work, always, &settings(0, 8));
    let futs: Vec<_> = (0..10)
        .map(|i| spawn_submit(&co, change(&format!("s{i}"), ChangeKind::Changed)))
        .collect();
    for f in futs {
        assert!(f.await.unwrap().is_ok());
    }
    assert_eq!(seen.lock().unwrap().len(), 10);
}
