//! The deletion guards on the handler's event path, through the built binary as the Functions
//! host runs it: `delete_stale_seeds: false` keeps a deleted resource's seed, and the event
//! deletion breaker (`sync.max_delete_fraction`) keeps the seeds past its fraction for the
//! reconcile. Each kept seed is logged `seed kept in ASM` with its reason.

use crate::support::{handler_world, host_emulator};

use handler_world::*;
use host_emulator::*;
use serde_json::Value;

/// The world's app settings with one line of its configuration replaced.
async fn handler_where(world: &World, line: &str, replacement: &str) -> HostEmulator {
    let mut settings = world.settings();
    let config = settings
        .iter_mut()
        .find(|(name, _)| *name == "CONNECTOR_CONFIG")
        .expect("CONNECTOR_CONFIG");
    assert!(config.1.contains(line), "{line:?} is not in {}", config.1);
    config.1 = config.1.replace(line, replacement);
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    HostEmulator::start(&pairs).await
}

fn asm_deletes(world: &World) -> usize {
    world.asm.journal().iter().filter(|e| e.method == "DELETE").count()
}

/// Log records saying a seed was kept, for `resource`, whose reason mentions `why`.
fn kept_lines(host: &HostEmulator, resource: &str, why: &str) -> Vec<Value> {
    host.log_records()
        .into_iter()
        .filter(|r| {
            let text = r.to_string();
            text.contains("seed kept in ASM") && text.contains(resource) && text.contains(why)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_delete_stale_seeds_false_a_delete_event_sends_no_asm_delete_and_logs_the_kept_seed() {
    let world = World::start().await;
    world.azure.load(vec![pip(1, "203.0.113.31")]);
    let host = handler_where(&world, "delete_stale_seeds: true", "delete_stale_seeds: false").await;
    let response = event(&host, WRITE, &pip_id(1), "inv-write").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(world.asm.tagged_names(SCAN, TAG), ["203.0.113.31".to_string()].into());

    world.azure.delete(&pip_id(1));
    let response = event(&host, DELETE, &pip_id(1), "inv-delete").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(asm_deletes(&world), 0, "{:?}", world.asm.journal());
    assert_eq!(world.asm.tagged_names(SCAN, TAG), ["203.0.113.31".to_string()].into());
    host.wait_for_log("saying the seed was kept", |r| {
        let text = r.to_string();
        text.contains("seed kept in ASM") && text.contains("delete_stale_seeds is false")
    })
    .await;
    assert_eq!(
        kept_lines(&host, &pip_id(1), "delete_stale_seeds").len(),
        1,
        "{:?}",
        host.log_records()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_deletion_breaker_keeps_the_seeds_past_its_fraction_and_logs_them() {
    let world = World::start().await;
    let estate: Vec<Value> = (1..=4).map(|n| pip(n, &format!("203.0.113.4{n}"))).collect();
    world.azure.load(estate);
    // A quarter of 4 tagged seeds: one delete by events an hour.
    let host = handler_where(&world, "max_delete_fraction: 1.0", "max_delete_fraction: 0.25").await;
    for n in 1..=4 {
        let response = event(&host, WRITE, &pip_id(n), &format!("inv-write-{n}")).await;
        assert_eq!(response.status, 200, "{}", response.body);
    }
    assert_eq!(world.asm.tagged_names(SCAN, TAG).len(), 4);

    for n in 1..=2 {
        world.azure.delete(&pip_id(n));
        let response = event(&host, DELETE, &pip_id(n), &format!("inv-delete-{n}")).await;
        assert_eq!(response.status, 200, "{}", response.body);
    }
    assert_eq!(asm_deletes(&world), 1, "{:?}", world.asm.journal());
    let tagged = world.asm.tagged_names(SCAN, TAG);
    assert!(
        !tagged.contains("203.0.113.41") && tagged.contains("203.0.113.42"),
        "{tagged:?}"
    );
    host.wait_for_log("saying the breaker kept the seed", |r| {
        let text = r.to_string();
        text.contains("seed kept in ASM") && text.contains("deletion breaker")
    })
    .await;
    assert_eq!(
        kept_lines(&host, &pip_id(2), "max_delete_fraction").len(),
        1,
        "{:?}",
        host.log_records()
    );
    assert!(kept_lines(&host, &pip_id(1), "seed kept").is_empty());
}

/// A delete event whose ARM read answers a 404 that does not say the resource is gone
/// (`InvalidResourceType`, e.g. a provider's outage) deletes nothing: the change is retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_that_does_not_say_gone_deletes_nothing_and_queues_a_retry() {
    let (world, host) = World::serving(vec![pip(1, "203.0.113.51")]).await;
    let response = event(&host, WRITE, &pip_id(1), "inv-write").await;
    assert_eq!(response.status, 200, "{}", response.body);

    world.azure.answer_not_found(
        SUB,
        "InvalidResourceType",
        "The resource type could not be found in the namespace 'Microsoft.Network'.",
    );
    let response = event(&host, DELETE, &pip_id(1), "inv-delete").await;
    assert_eq!(response.status, 200, "the retry was queued: {}", response.body);
    assert_eq!(asm_deletes(&world), 0, "{:?}", world.asm.journal());
    assert_eq!(world.asm.tagged_names(SCAN, TAG), ["203.0.113.51".to_string()].into());
    assert_eq!(world.bus.delivered().len(), 1, "one retry queued");
}
