//! The Functions custom handler end to end: the built binary driven by a host emulator, the
//! retry queue against a fake Service Bus REST endpoint, and the event → retry → re-apply flow.

use crate::support::{cli, fake_asm, fake_servicebus, handler_world, host_emulator};

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fake_servicebus::{FakeAuth, FakeServiceBus};
use handler_world::*;
use host_emulator::*;
use serde_json::{Value, json};

use seedwatch::adapters::azure::StaticToken;
use seedwatch::adapters::servicebus::{QueueAuth, QueueError, QueueTarget, RetryJob, RetryQueue};
use seedwatch::domain::change::ChangeKind;
use seedwatch::domain::secret::Secret;

#[tokio::test]
async fn the_binary_answers_readiness_and_acknowledges_events_it_does_not_act_on() {
    let (_world, host) = World::serving(vec![]).await;
    eprintln!("cold start to first GET / answer: {:?}", host.cold_start);
    let ready = host.get("/").await;
    assert_eq!(ready.status, 200);

    let cases = [
        (resources_event("Microsoft.Resources.ResourceWriteFailure", PIP), false),
        (resources_event("Microsoft.Resources.ResourceDeleteCancel", PIP), true),
        (cloud_event("Microsoft.Resources.ResourceActionFailure", PIP), true),
        (cloud_event("Microsoft.Storage.BlobCreated", PIP), false),
        (
            json!({"id": "v1", "topic": "/subscriptions/1", "subject": "", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                   "eventTime": "2025-03-01T10:00:00Z", "data": {"validationCode": "512d38b6"}, "dataVersion": "1", "metadataVersion": "1"}),
            false,
        ),
    ];
    for (i, (event, chunked)) in cases.iter().enumerate() {
        let id = format!("inv-ack-{i}");
        let response = host
            .invoke("resource-events", &event_invocation(event), &id, *chunked)
            .await;
        response.assert_host_readable();
        assert_eq!(response.status, 200, "{}", response.body);
        assert!(
            response.logs_text().contains("acknowledged, not processed"),
            "{}",
            response.body
        );
    }
    // Every log line of an invocation carries its invocation id.
    host.wait_for_log("of inv-ack-3", |r| r["span"]["invocation_id"] == json!("inv-ack-3"))
        .await;
    let records = host.log_records();
    let tagged: Vec<&Value> = records
        .iter()
        .filter(|r| r["span"]["invocation_id"] == json!("inv-ack-3"))
        .collect();
    assert!(!tagged.is_empty(), "no log line carries the invocation id: {records:?}");
    assert!(tagged.iter().all(|r| r["span"]["function"] == json!("resource-events")));
    // Info lines go to stdout, never to stderr (the host reads stderr lines as errors).
    assert!(host.stderr_lines().iter().all(|l| !l.contains("\"level\":\"INFO\"")));
}

#[tokio::test]
async fn malformed_invocations_get_a_clear_error_and_no_side_effects() {
    let (world, host) = World::serving(vec![]).await;
    let sb = &world.bus;

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("resource-events", b"{not json".to_vec(), "not JSON"),
        ("resource-events", b"[1,2]".to_vec(), "not a JSON object"),
        ("resource-events", b"{\"Metadata\":{}}".to_vec(), "no Data"),
        (
            "resource-events",
            json!({"Data": {"other": 1}}).to_string().into_bytes(),
            "\"event\"",
        ),
        (
            "retry",
            servicebus_invocation("\"hello\"", "m1", 1).to_string().into_bytes(),
            "expected a JSON object",
        ),
        (
            "retry",
            servicebus_invocation("{\"kind\":\"explode\"}", "m2", 1)
                .to_string()
                .into_bytes(),
            "not a seedwatch job",
        ),
        (
            "retry",
            servicebus_invocation(
                "{\"kind\":\"apply\",\"resourceId\":\"nope\",\"change\":\"changed\",\"attempt\":1}",
                "m3",
                1,
            )
            .to_string()
            .into_bytes(),
            "resourceId",
        ),
        ("reconcile", b"".to_vec(), "not JSON"),
        ("no-such-function", b"{}".to_vec(), "no function"),
    ];
    for (i, (function, body, needle)) in cases.iter().enumerate() {
        let response = host
            .invoke_raw(function, body, &format!("inv-bad-{i}"), i % 2 == 0)
            .await;
        response.assert_host_readable();
        assert!(
            response.status >= 400 && response.status < 500,
            "{function} case {i}: {}",
            response.status
        );
        // The host drops a failed invocation's Logs: the operator reads the worker's own
        // warning line, tagged with the invocation id.
        assert_eq!(response.logs(), Vec::<String>::new(), "{function} case {i}");
        let invocation = json!(format!("inv-bad-{i}"));
        host.wait_for_log(&format!("naming {needle:?} for {function} case {i}"), |r| {
            r["span"]["invocation_id"] == invocation && r["error"].as_str().is_some_and(|e| e.contains(needle))
        })
        .await;
    }

    // A bad resync body is the caller's error: the invocation succeeds with res = 400.
    for (body, needle) in [
        (Some("{\"scope\":\"galaxy\"}"), "galaxy"),
        (Some("{\"scope\":\"resource\"}"), "id is required"),
        // An id that would change the ARM URL it is spliced into, named in the answer.
        (
            Some("{\"scope\":\"resource\",\"id\":\"/subscriptions/1/resourceGroups/rg/providers/A.B/c/d%2F..?x\"}"),
            "/subscriptions/1/resourceGroups/rg/providers/A.B/c/d%2F..?x",
        ),
        (Some("scope=all"), "not JSON"),
        (None, "Content-Length"),
    ] {
        let response = host
            .invoke("resync", &http_invocation(body), "inv-resync-bad", false)
            .await;
        response.assert_host_readable();
        assert_eq!(response.status, 200);
        let res = http_answer(&response);
        assert_eq!(res["statusCode"], json!(400), "{}", response.body);
        assert_eq!(res["headers"]["Content-Type"], json!("application/json"));
        assert!(res["body"]["error"].as_str().unwrap_or("").contains(needle), "{res}");
    }
    assert_eq!(
        sb.requests(),
        0,
        "a malformed invocation sent something: {:?}",
        sb.journal()
    );
}

#[tokio::test]
async fn a_long_resync_is_accepted_and_queued_for_the_retry_function() {
    let (world, host) = World::serving(vec![pip(1, "203.0.113.11")]).await;
    let sb = &world.bus;
    let body = "{\"scope\":\"subscription\",\"id\":\"11111111-1111-1111-1111-111111111111\"}";
    let response = resync(&host, body, "inv-resync", true).await;
    let res = http_answer(&response);
    assert_eq!(res["statusCode"], json!(202), "{}", response.body);
    assert_eq!(res["body"]["accepted"], json!(true));
    let sent = sb.delivered();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].message_id.as_deref(), res["body"]["messageId"].as_str());
    assert_eq!(sent[0].label.as_deref(), Some("resync"));
    assert!(sent[0].scheduled.is_none(), "a resync runs at once");
    assert_eq!(
        sent[0].body_json(),
        json!({"kind": "resync", "scope": "subscription", "id": "11111111-1111-1111-1111-111111111111", "attempt": 0})
    );
    // The queued job is readable by the retry function, as the host would deliver it.
    let response = host
        .invoke("retry", &delivery_of(&sent[0]), "inv-retry-resync", false)
        .await;
    response.assert_host_readable();
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(response.logs_text().contains("done"), "{}", response.body);
    assert_eq!(
        world.asm.tagged_names(SCAN, TAG),
        ["203.0.113.11".to_string()].into(),
        "the queued resync reconciled the subscription"
    );
}

#[tokio::test]
async fn sigterm_stops_the_handler_gracefully() {
    let (_world, host) = World::serving(vec![]).await;
    let status = host.terminate().await;
    assert!(status.success(), "exit status {status}");
}

// ---------------------------------------------------------------- events end to end

#[tokio::test]
async fn write_and_delete_events_put_and_remove_seeds_and_duplicates_change_nothing() {
    let (world, host) = World::serving(vec![pip(1, "203.0.113.21"), pip(2, "203.0.113.22")]).await;

    let response = event(&host, WRITE, &pip_id(1), "inv-write-1").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(world.asm.tagged_names(SCAN, TAG), ["203.0.113.21".to_string()].into());
    assert_eq!(world.azure.counts().arm_gets, 1, "one ARM read for one event");
    let writes = world.asm.journal().len();

    // The same event again (Event Grid delivers at least once): nothing changes in ASM.
    let response = event(&host, WRITE, &pip_id(1), "inv-write-1-again").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(world.asm.journal().len(), writes, "a duplicate event wrote to ASM");

    // A Resource Notifications event carries the body: no ARM read is needed for it.
    let arm_before = world.azure.counts().arm_gets;
    let notification = json!({
        "id": "rn-1", "topic": format!("/subscriptions/{SUB}"), "subject": pip_id(2),
        "eventType": "Microsoft.ResourceNotifications.Resources.CreatedOrUpdated",
        "eventTime": "2099-03-01T10:15:07.8418063Z", "dataVersion": "1", "metadataVersion": "1",
        "data": {"resourceInfo": pip(2, "203.0.113.22"), "apiVersion": "2023-09-01",
                 "operationalInfo": {"resourceEventTime": "2099-03-01T10:15:07.8418063Z"}}
    });
    let response = host
        .invoke("resource-events", &event_invocation(&notification), "inv-rn", false)
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(world.asm.tagged_names(SCAN, TAG).contains("203.0.113.22"));
    assert_eq!(
        world.azure.counts().arm_gets,
        arm_before,
        "the notification's body was used"
    );

    // The resource is deleted in Azure, then its delete event arrives.
    world.azure.delete(&pip_id(1));
    let response = event(&host, DELETE, &pip_id(1), "inv-delete-1").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(world.asm.tagged_names(SCAN, TAG), ["203.0.113.22".to_string()].into());
    assert_eq!(world.bus.requests(), 0, "nothing needed a retry");
}

#[tokio::test]
async fn an_asm_outage_schedules_a_retry_that_the_retry_function_completes() {
    let (world, host) = World::serving(vec![pip(3, "203.0.113.33")]).await;

    world.asm.set_outage(true);
    let before = SystemTime::now();
    let response = event(&host, WRITE, &pip_id(3), "inv-outage").await;
    assert_eq!(response.status, 200, "the event is acknowledged: {}", response.body);
    assert!(response.logs_text().contains("retry_scheduled"), "{}", response.body);
    let sent = world.bus.delivered();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let retry = sent[0].clone();
    assert!(retry.scheduled.expect("scheduled") > before + Duration::from_secs(10));
    assert_eq!(retry.body_json()["attempt"], json!(1));
    assert_eq!(retry.body_json()["resourceId"], json!(pip_id(3)));

    // The message becomes visible; ASM is back; the retry function completes the work.
    world.asm.set_outage(false);
    let delivery = delivery_of(&retry);
    let response = host.invoke("retry", &delivery, "inv-retry", true).await;
    response.assert_host_readable();
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(world.asm.tagged_names(SCAN, TAG), ["203.0.113.33".to_string()].into());
    assert_eq!(world.bus.delivered().len(), 1, "no further retry");

    // Still down on a retry: the next attempt gets a new MessageId, later.
    world.asm.set_outage(true);
    world.azure.upsert(pip(3, "203.0.113.34"));
    let response = host.invoke("retry", &delivery, "inv-retry-again", false).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let next = world.bus.delivered().last().unwrap().clone();
    assert_ne!(next.message_id, retry.message_id);
    assert_eq!(next.body_json()["attempt"], json!(2));
    assert!(next.scheduled.unwrap() > retry.scheduled.unwrap());
}

#[tokio::test]
async fn the_timer_reconciles_the_estate() {
    let (world, host) = World::serving(vec![pip(4, "203.0.113.44"), pip(5, "203.0.113.45")]).await;
    let response = host
        .invoke("reconcile", &timer_invocation(true), "inv-timer", false)
        .await;
    response.assert_host_readable();
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        world.asm.tagged_names(SCAN, TAG),
        ["203.0.113.44".to_string(), "203.0.113.45".to_string()].into()
    );
    host.wait_for_log("with IsPastDue", |r| r["is_past_due"] == json!(true))
        .await;
    // An event after the reconcile finds the ledger rebuilt: nothing to write.
    let writes = world.asm.journal().len();
    let response = event(&host, WRITE, &pip_id(4), "inv-after-timer").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(world.asm.journal().len(), writes);
}

// ---------------------------------------------------------------- the retry queue client

#[tokio::test]
async fn retries_are_scheduled_in_the_future_with_a_fresh_message_id_each_time() {
    let sb = sas_bus().await;
    let queue = sas_queue(&sb);
    let before = SystemTime::now();
    let first = queue.schedule(&apply_job(1), Some("corr-1")).await.unwrap();
    let second = queue.schedule(&apply_job(1), Some("corr-1")).await.unwrap();
    assert_ne!(first.message_id, second.message_id);
    let sent = sb.delivered();
    assert_eq!(sent.len(), 2, "both delivered, none dropped as a duplicate");
    for message in &sent {
        let at = message.scheduled.expect("ScheduledEnqueueTimeUtc");
        // attempt 1 with base 30 s: between 15 s and 30 s from now (RFC 1123 drops sub-seconds).
        assert!(at >= before + Duration::from_secs(14), "{at:?}");
        assert!(at <= SystemTime::now() + Duration::from_secs(31), "{at:?}");
        assert_eq!(message.correlation_id.as_deref(), Some("corr-1"));
        assert_eq!(message.content_type.as_deref(), Some("application/json"));
        assert_eq!(message.body_json()["kind"], json!("apply"));
        assert_eq!(message.body_json()["resourceId"], json!(PIP));
    }
    let later = queue.schedule(&apply_job(3), None).await.unwrap();
    let delay = later.visible_at.unwrap().duration_since(SystemTime::now()).unwrap();
    assert!(
        delay >= Duration::from_secs(59) && delay <= Duration::from_secs(120),
        "{delay:?}"
    );
}

#[tokio::test]
async fn bearer_tokens_and_passing_failures_are_retried_permanent_ones_are_not() {
    let sb = FakeServiceBus::start(
        QUEUE,
        FakeAuth::token("sb-token", fake_servicebus::AUDIENCE, &[fake_servicebus::DATA_SENDER]),
    )
    .await;
    let cfg = fast_config(&sb.base_url());
    let target = |token: &str| QueueTarget {
        base_url: sb.base_url(),
        queue: QUEUE.into(),
        auth: QueueAuth::Bearer(Arc::new(StaticToken(Secret::new(token)))),
    };
    let queue = RetryQueue::new(target("sb-token"), &cfg);

    sb.inject(&[503, 429]);
    queue.send(&apply_job(1), None, None).await.unwrap();
    assert_eq!(sb.requests(), 3);
    assert_eq!(sb.delivered().len(), 1);

    sb.inject(&[503, 503, 503]);
    let err = queue.send(&apply_job(1), None, None).await.unwrap_err();
    assert!(matches!(err, QueueError::Refused { status: 503, .. }), "{err}");

    for (status, needle) in [
        (401, "Data Sender"),
        (403, "Data Sender"),
        (410, "RETRY_QUEUE"),
        (413, "too large"),
    ] {
        let before = sb.requests();
        sb.inject(&[status]);
        let err = queue.send(&apply_job(1), None, None).await.unwrap_err();
        assert!(
            matches!(err, QueueError::Refused { status: s, .. } if s == status),
            "{err}"
        );
        assert!(err.to_string().contains(needle), "{err}");
        assert_eq!(sb.requests(), before + 1, "{status} is not retried");
    }

    let wrong = RetryQueue::new(target("stale-token"), &cfg);
    let err = wrong.send(&apply_job(1), None, None).await.unwrap_err();
    assert!(matches!(err, QueueError::Refused { status: 401, .. }), "{err}");
    assert!(!err.to_string().contains("stale-token"));
}

#[tokio::test]
async fn the_fake_bus_refuses_a_token_for_another_audience_or_without_the_sender_role() {
    let cfg = fast_config("http://127.0.0.1:9");
    for (audience, roles, says) in [
        (
            "https://management.azure.com/",
            vec![fake_servicebus::DATA_SENDER],
            "InvalidAudience",
        ),
        (
            fake_servicebus::AUDIENCE,
            vec![fake_servicebus::DATA_RECEIVER],
            "'Send' claim",
        ),
    ] {
        let sb = FakeServiceBus::start(QUEUE, FakeAuth::token("t", audience, &roles)).await;
        // Faults come after auth, as the service answers them: the 503 is never reached.
        sb.inject(&[503]);
        let target = QueueTarget {
            base_url: sb.base_url(),
            queue: QUEUE.into(),
            auth: QueueAuth::Bearer(Arc::new(StaticToken(Secret::new("t")))),
        };
        let err = RetryQueue::new(target, &cfg)
            .send(&apply_job(1), None, None)
            .await
            .unwrap_err();
        assert!(matches!(err, QueueError::Refused { status: 401, .. }), "{err}");
        assert!(err.to_string().contains(says), "{err}");
        assert_eq!(sb.requests(), 1, "a 401 is not retried");
    }
}

#[tokio::test]
async fn a_message_over_256_kb_is_refused_with_413() {
    let sb = sas_bus().await;
    let queue = sas_queue(&sb);
    let job = RetryJob::Apply {
        resource_id: PIP.into(),
        change: ChangeKind::Changed,
        attempt: 1,
        cause: Some("x".repeat(fake_servicebus::MAX_MESSAGE_BYTES)),
    };
    let err = queue.send(&job, None, None).await.unwrap_err();
    assert!(matches!(err, QueueError::Refused { status: 413, .. }), "{err}");
    assert!(sb.delivered().is_empty());
}

#[tokio::test]
async fn the_fake_drops_a_reused_message_id_within_the_window() {
    let sb = sas_bus().await;
    let queue = sas_queue(&sb);
    // Two sends, then replay the first's exact broker properties by hand.
    queue.send(&apply_job(1), None, None).await.unwrap();
    let first = sb.journal()[0].clone();
    let client = reqwest::Client::new();
    let token = seedwatch::adapters::servicebus::sas_token(
        &format!("{}/{QUEUE}", sb.base_url()),
        "send",
        &Secret::new(SAS_KEY),
        4_000_000_000,
    );
    let resend = client
        .post(format!("{}/{QUEUE}/messages", sb.base_url()))
        .header("Authorization", token)
        .header("BrokerProperties", first.broker_properties.to_string())
        .body(first.body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resend.status().as_u16(), 201);
    assert!(resend.text().await.unwrap().is_empty());
    assert_eq!(sb.journal().len(), 2);
    assert_eq!(sb.delivered().len(), 1, "the duplicate was dropped");
}

// ---------------------------------------------------------------- more flows through the binary

#[tokio::test]
async fn the_last_retry_gives_up_visibly_and_an_unqueueable_retry_fails_the_invocation() {
    let (world, host) = World::serving(vec![pip(6, "203.0.113.66")]).await;

    // Attempt 3 of 3 fails: no further message, an error line with the resource and the cause.
    let job = json!({"kind": "apply", "resourceId": pip_id(6), "change": "changed", "attempt": 3, "cause": "earlier"});
    give_up(&world, &host, job, "inv-last").await;
    assert_eq!(world.bus.requests(), 0);
    host.wait_for_log("saying the change was not applied", |r| {
        r["message"] == json!("seedwatch: change not applied")
    })
    .await;
    let gave_up: Vec<String> = host
        .stderr_lines()
        .into_iter()
        .filter(|l| l.contains("seedwatch: change not applied"))
        .collect();
    assert_eq!(gave_up.len(), 1, "{:?}", host.stderr_lines());
    assert!(
        gave_up[0].contains(&pip_id(6)) && gave_up[0].contains("503"),
        "{}",
        gave_up[0]
    );

    // The retry cannot be queued (403 from Service Bus): the invocation fails, so Event Grid
    // delivers the event again.
    world.bus.inject(&[403]);
    let response = event(&host, DELETE, &pip_id(6), "inv-unqueued").await;
    assert_eq!(response.status, 500, "{}", response.body);
    host.wait_for_log("saying the retry could not be queued", |r| {
        r["span"]["invocation_id"] == json!("inv-unqueued")
            && r["level"] == json!("ERROR")
            && r.to_string().contains("could not be queued")
    })
    .await;
    assert!(world.bus.delivered().is_empty());
}

#[tokio::test]
async fn a_burst_of_events_for_one_resource_is_one_arm_read() {
    let (world, host) = World::serving(vec![pip(7, "203.0.113.77")]).await;
    // The changes happened before the burst arrives (Event Grid delivers seconds after a
    // change), so every event, however late the loaded machine runs it, is dated before the
    // one read started and is answered by it: the count does not depend on timing.
    let events = (0..40)
        .map(|i| {
            let event = if i % 2 == 0 {
                resources_event(WRITE, &pip_id(7))
            } else {
                cloud_event(
                    WRITE,
                    &pip_id(7)
                        .to_ascii_uppercase()
                        .replace("/SUBSCRIPTIONS/", "/subscriptions/"),
                )
            };
            (dated(event, -time::Duration::seconds(10)), i % 3 == 0)
        })
        .collect();
    deliver_at_once(Arc::new(host), events, "inv-burst").await;
    assert_eq!(
        world.azure.counts().arm_gets,
        1,
        "40 events for one resource, one ARM read"
    );
    assert_eq!(world.asm.tagged_names(SCAN, TAG), ["203.0.113.77".to_string()].into());
}

#[tokio::test]
async fn a_subscription_resync_never_deletes_what_other_subscriptions_contribute() {
    let world = World::start().await;
    world.azure.add_subscription(OTHER_SUB, "Enabled");
    let mut other = pip(9, "203.0.113.99");
    other["id"] = json!(pip_id(9).replace(SUB, OTHER_SUB));
    let mut estate: Vec<Value> = (1..=4).map(|n| pip(n, &format!("203.0.113.9{n}"))).collect();
    estate.push(other);
    world.azure.load(estate);
    // Seeds seedwatch added earlier, this subscription's and the other's; the ledger is new.
    // One stale seed in five stays under the deletion breaker, so only the scope protects it.
    for n in 1..=4 {
        world.asm.insert_seed(SCAN, &format!("203.0.113.9{n}"), "ipv4", &[TAG]);
    }
    world.asm.insert_seed(SCAN, "203.0.113.99", "ipv4", &[TAG]);
    let host = world.handler().await;
    let response = resync_subscription(&world, &host, SUB, "inv-sub").await;
    assert_eq!(world.bus.delivered().len(), 1, "one resync job queued");
    assert!(
        world.asm.tagged_names(SCAN, TAG).contains("203.0.113.99"),
        "the other subscription's seed survives a resync of this one: {}",
        response.body
    );
    assert_eq!(world.asm.tagged_names(SCAN, TAG).len(), 5);
}

#[tokio::test]
async fn resync_answers_for_one_resource_and_for_a_dry_run() {
    let (world, host) = World::serving(vec![pip(8, "203.0.113.88")]).await;
    let dry = resync(&host, "{\"scope\":\"all\",\"dry_run\":true}", "inv-dry", false).await;
    let res = http_answer(&dry);
    assert_eq!(res["statusCode"], json!(200), "{}", dry.body);
    assert_eq!(
        res["body"]["summary"]["planned_add"][0]["name"],
        json!("203.0.113.88"),
        "{res}"
    );
    assert!(world.asm.journal().is_empty(), "a dry run writes nothing");

    let body = format!("{{\"scope\":\"resource\",\"id\":\"{}\"}}", pip_id(8));
    let one = resync(&host, &body, "inv-one", true).await;
    let res = http_answer(&one);
    assert_eq!(res["statusCode"], json!(200), "{}", one.body);
    assert_eq!(
        res["body"]["result"]["added"][0]["name"],
        json!("203.0.113.88"),
        "{res}"
    );
    assert_eq!(world.asm.tagged_names(SCAN, TAG), ["203.0.113.88".to_string()].into());
}

// ---------------------------------------------------------------- failed changes and the reconcile

/// The JSON summary a `reconcile` invocation logs as `reconcile done: {...}`.
fn reconcile_summary(response: &HostResponse) -> Value {
    let line = response
        .logs()
        .into_iter()
        .find_map(|l| l.strip_prefix("reconcile done: ").map(str::to_string))
        .unwrap_or_else(|| panic!("no summary in {}", response.body));
    serde_json::from_str(&line).unwrap()
}

#[tokio::test]
async fn a_change_that_gave_up_is_reported_by_the_next_reconcile_which_clears_it() {
    let (world, host) = World::serving(vec![pip(10, "203.0.113.100")]).await;

    // The last retry fails while ASM is down: the change is dropped and recorded.
    let job = json!({"kind": "apply", "resourceId": pip_id(10), "change": "changed", "attempt": 3, "cause": "earlier"});
    give_up(&world, &host, job, "inv-give-up").await;
    world.asm.set_outage(false);

    // A resync of another subscription reports it but does not cover it.
    world.azure.add_subscription(OTHER_SUB, "Enabled");
    let response = resync_subscription(&world, &host, OTHER_SUB, "inv-other-sub").await;
    let summary: Value = response
        .logs()
        .into_iter()
        .find_map(|l| {
            l.split_once(" done: ")
                .map(|(_, json)| serde_json::from_str(json).unwrap())
        })
        .unwrap_or_else(|| panic!("no summary in {}", response.body));
    assert_eq!(summary["failed_changes"]["count"], json!(1), "{summary}");
    assert_eq!(summary["failed_changes"]["cleared"], json!(0), "{summary}");
    assert_eq!(summary["failed_changes"]["entries"][0]["cleared"], json!(false));

    // A dry run shows it and clears nothing.
    let dry = resync(&host, "{\"scope\":\"all\",\"dry_run\":true}", "inv-dry-failed", false).await;
    let failed = &http_answer(&dry)["body"]["summary"]["failed_changes"];
    assert_eq!(failed["count"], json!(1), "{}", dry.body);
    assert_eq!(failed["cleared"], json!(0), "{}", dry.body);

    // The timer's reconcile names it (resource, change, cause, attempts), covers it and clears it.
    let response = timer_reconcile(&host, "inv-timer-failed").await;
    assert_eq!(response.status, 200, "{}", response.body);
    let summary = reconcile_summary(&response);
    let failed = &summary["failed_changes"];
    assert_eq!(failed["count"], json!(1), "{summary}");
    let entry = &failed["entries"][0];
    assert_eq!(entry["resource"], json!(pip_id(10)), "{summary}");
    assert_eq!(entry["change"], json!("changed"));
    assert_eq!(entry["attempts"], json!(4), "three retries after the first attempt");
    assert!(entry["cause"].as_str().unwrap().contains("503"), "{summary}");
    assert!(entry["failed_at"].as_str().unwrap().ends_with('Z'), "{summary}");
    assert_eq!(failed["cleared"], json!(1), "{summary}");
    assert_eq!(entry["cleared"], json!(true));
    assert_eq!(world.asm.tagged_names(SCAN, TAG), ["203.0.113.100".to_string()].into());
    host.wait_for_log("warning of the change given up earlier", |r| {
        r.to_string().contains("gave up earlier")
    })
    .await;
    let warned = host
        .stderr_lines()
        .into_iter()
        .any(|l| l.contains("gave up earlier") && l.contains(&pip_id(10)) && l.contains("503"));
    assert!(
        warned,
        "the reconcile warns with the resource and the cause: {:?}",
        host.stderr_lines()
    );

    // The next reconcile no longer sees it.
    let summary = reconcile_summary(&timer_reconcile(&host, "inv-timer-after").await);
    assert_eq!(summary["failed_changes"]["count"], json!(0), "{summary}");
    assert_eq!(summary["failed_changes"]["entries"], json!([]));
}

#[tokio::test]
async fn a_reconcile_that_cannot_write_keeps_the_failed_change() {
    let (world, host) = World::serving(vec![pip(11, "203.0.113.111")]).await;
    let job = json!({"kind": "apply", "resourceId": pip_id(11), "change": "changed", "attempt": 3});
    give_up(&world, &host, job, "inv-give-up-2").await;

    // ASM accepts the key and scan checks but its writes fail: the add is not applied, so the
    // failed change is not covered yet.
    world.asm.set_outage(false);
    // Two 503s: the client's first attempt and its one retry (`http.retry_count: 1`).
    world
        .asm
        .fail_next(fake_asm::Route::Add, 2, fake_asm::Fault::Status(503));
    let summary = reconcile_summary(&timer_reconcile(&host, "inv-timer-partial").await);
    assert_eq!(summary["failed"], json!(1), "{summary}");
    assert_eq!(summary["failed_changes"]["count"], json!(1), "{summary}");
    assert_eq!(summary["failed_changes"]["cleared"], json!(0), "{summary}");

    let summary = reconcile_summary(&timer_reconcile(&host, "inv-timer-ok").await);
    assert_eq!(summary["failed_changes"]["cleared"], json!(1), "{summary}");
    assert!(world.asm.tagged_names(SCAN, TAG).contains("203.0.113.111"));
}

/// `seedwatch sync` with the handler's settings and ledger, which must exit 0; its stdout (the
/// handler must have stopped: the local ledger file is opened by one process at a time).
async fn cli_sync(world: &World, args: &[&str]) -> String {
    let env = world.settings().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let run = cli::run(&[&["sync"], args].concat(), world.dir.path(), env).await;
    run.ok().stdout.clone()
}

#[tokio::test]
async fn seedwatch_sync_shows_the_operator_what_the_handler_gave_up_on() {
    let (world, host) = World::serving(vec![pip(12, "203.0.113.122")]).await;
    let job = json!({"kind": "apply", "resourceId": pip_id(12), "change": "deleted", "attempt": 3});
    give_up(&world, &host, job, "inv-give-up-3").await;
    assert!(host.terminate().await.success());
    world.asm.set_outage(false);

    // A dry run lists it and keeps it.
    let text = cli_sync(&world, &["--dry-run"]).await;
    assert!(
        text.contains("Changes the handler gave up on (1; a dry run clears none):"),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| l.contains(&pip_id(12)))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.trim_start().starts_with("deleted ") && line.contains("503") && line.contains("4 attempts"),
        "{line}"
    );

    // A real run reports it in its JSON and clears it; the next run no longer shows it.
    let report: Value = serde_json::from_str(&cli_sync(&world, &["--json"]).await).unwrap();
    assert_eq!(report["failed_changes"]["count"], json!(1), "{report}");
    assert_eq!(report["failed_changes"]["cleared"], json!(1), "{report}");
    assert_eq!(report["failed_changes"]["entries"][0]["resource"], json!(pip_id(12)));
    assert_eq!(report["failed_changes"]["entries"][0]["change"], json!("deleted"));
    assert_eq!(world.asm.tagged_names(SCAN, TAG), ["203.0.113.122".to_string()].into());
    let text = cli_sync(&world, &[]).await;
    assert!(!text.contains("gave up on"), "{text}");
}

fn site(name: &str, host: &str) -> Value {
    json!({
        "id": site_id(name), "name": name, "type": "Microsoft.Web/sites", "kind": "app,linux",
        "location": "westeurope", "tags": {},
        "properties": {"state": "Running", "enabled": true, "publicNetworkAccess": "Enabled",
          "defaultHostName": format!("{name}.azurewebsites.net"),
          "hostNames": [format!("{name}.azurewebsites.net"), host],
          "enabledHostNames": [format!("{name}.azurewebsites.net"), host]}
    })
}

fn site_id(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg-web/providers/Microsoft.Web/sites/{name}")
}

#[tokio::test]
async fn a_deployment_burst_for_a_site_and_its_children_is_one_read_of_the_site() {
    let (world, host) = World::serving(vec![site("shop", "www.shop.example"), site("blog", "blog.example")]).await;
    let host = Arc::new(host);

    // What one read of a site costs against this fake (the site and its child lists).
    let response = event(&host, WRITE, &site_id("blog"), "inv-blog").await;
    assert_eq!(response.status, 200, "{}", response.body);
    let one_read = world.azure.counts().arm_gets;
    assert!(one_read >= 1);

    let shop = site_id("shop");
    let subjects = [
        shop.clone(),
        format!("{shop}/config/web"),
        format!("{shop}/hostNameBindings/www.shop.example"),
        format!("{shop}/providers/Microsoft.Insights/diagnosticSettings/to-logs"),
    ];
    // Dated before the burst arrives, as in the burst test above: no timing in the count.
    let events = (0..16)
        .map(|i| {
            let event = resources_event(WRITE, &subjects[i % subjects.len()]);
            (dated(event, -time::Duration::seconds(10)), true)
        })
        .collect();
    deliver_at_once(host, events, "inv-deploy").await;
    assert_eq!(
        world.azure.counts().arm_gets,
        2 * one_read,
        "16 events for a site and its children, one read of the site"
    );
    let names = world.asm.tagged_names(SCAN, TAG);
    assert!(
        names.contains("www.shop.example") && names.contains("blog.example"),
        "{names:?}"
    );
}

#[tokio::test]
async fn an_event_dated_before_a_read_is_answered_by_it_and_a_later_one_reads_again() {
    let (world, host) = World::serving(vec![pip(3, "203.0.113.31")]).await;
    let invoke = |event: Value, id: &'static str| {
        let host = &host;
        async move {
            let response = host
                .invoke("resource-events", &event_invocation(&event), id, true)
                .await;
            response.assert_host_readable();
            assert_eq!(response.status, 200, "{}", response.body);
            response
        }
    };
    invoke(resources_event(WRITE, &pip_id(3)), "inv-now").await;
    assert_eq!(world.azure.counts().arm_gets, 1);
    assert_eq!(world.asm.tagged_names(SCAN, TAG), ["203.0.113.31".to_string()].into());

    // A late delivery (or Event Grid redelivering) of a change from a minute ago: the read
    // just made already saw it.
    let late = invoke(
        dated(resources_event(WRITE, &pip_id(3)), -time::Duration::minutes(1)),
        "inv-late",
    )
    .await;
    assert_eq!(world.azure.counts().arm_gets, 1, "{}", late.body);
    assert!(late.body.to_string().contains("applied"), "{}", late.body);

    // A new change, dated after that read: read again and applied.
    world.azure.upsert(pip(3, "203.0.113.32"));
    invoke(resources_event(WRITE, &pip_id(3)), "inv-changed").await;
    assert_eq!(world.azure.counts().arm_gets, 2);
    assert_eq!(world.asm.tagged_names(SCAN, TAG), ["203.0.113.32".to_string()].into());

    // A delete dated before the last read is still read: only a delete's apply covers a delete.
    world.azure.delete(&pip_id(3));
    invoke(
        dated(resources_event(DELETE, &pip_id(3)), -time::Duration::minutes(1)),
        "inv-delete",
    )
    .await;
    assert_eq!(world.azure.counts().arm_gets, 3);
    assert!(world.asm.tagged_names(SCAN, TAG).is_empty());
}
