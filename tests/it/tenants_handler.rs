//! The handler with `azure.tenants`: an event from a covered subscription is read through its
//! connection; one from a subscription no connection covers is acknowledged and logged, never
//! read and never applied (not even from a body the event carries).

use crate::support::{fake_azure, handler_world, host_emulator};

use handler_world::*;
use host_emulator::*;
use serde_json::json;

const WRITE: &str = "Microsoft.Resources.ResourceWriteSuccess";
const HOME_TENANT: &str = "11111111-aaaa-4aaa-8aaa-111111111111";

fn other_pip_id() -> String {
    format!("/subscriptions/{OTHER_SUB}/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/elsewhere")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_from_a_subscription_no_connection_covers_is_acknowledged_and_never_read() {
    let world = World::start().await;
    world.azure.add_subscription(OTHER_SUB, "Enabled");
    world.azure.load(vec![
        pip(1, "203.0.113.21"),
        fake_azure::public_ip(&other_pip_id(), "203.0.113.99"),
    ]);
    let tenants = format!(
        "azure:\n  tenants:\n    - tenant_id: {HOME_TENANT}\n      credential: default\n      subscriptions: [{SUB}]\n"
    );
    let settings: Vec<(&str, String)> = world
        .settings()
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                if k == "CONNECTOR_CONFIG" {
                    v.replacen("azure:\n", &tenants, 1)
                } else {
                    v
                },
            )
        })
        .collect();
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let host = HostEmulator::start(&pairs).await;

    // Covered: read through the connection, seed added.
    let response = event(&host, WRITE, &pip_id(1), "inv-covered").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(world.asm.tagged_names(SCAN, TAG).contains("203.0.113.21"));

    // Not covered: acknowledged, nothing read, nothing written.
    world.azure.reset_counts();
    let writes = world.asm.journal().len();
    let response = event(&host, WRITE, &other_pip_id(), "inv-uncovered").await;
    assert_eq!(response.status, 200, "{}", response.body);
    // A Resource Notifications event carries the body: still not applied.
    let notification = json!({
        "id": "rn-1", "topic": format!("/subscriptions/{OTHER_SUB}"), "subject": other_pip_id(),
        "eventType": "Microsoft.ResourceNotifications.Resources.CreatedOrUpdated",
        "eventTime": "2099-03-01T10:15:07.8418063Z", "dataVersion": "1", "metadataVersion": "1",
        "data": {"resourceInfo": fake_azure::public_ip(&other_pip_id(), "203.0.113.99"), "apiVersion": "2023-09-01",
                 "operationalInfo": {"resourceEventTime": "2099-03-01T10:15:07.8418063Z"}}
    });
    let response = host
        .invoke("resource-events", &event_invocation(&notification), "inv-rn", false)
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(world.azure.counts().arm_gets, 0, "nothing read");
    assert_eq!(world.asm.journal().len(), writes, "nothing written");
    assert!(!world.asm.tagged_names(SCAN, TAG).contains("203.0.113.99"));
    // The log line arrives through the process's output: wait for it (generous deadline).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let logged = loop {
        let text = [host.stdout_lines(), host.stderr_lines()].concat().join("\n");
        if text.contains("covered by no connection") || std::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(logged.contains("covered by no connection"), "logged: {logged}");
    assert!(world.bus.delivered().is_empty(), "no retry queued");
}
