//! The deployed app's identity, end to end: `seedwatch serve` started with exactly the app
//! settings `infra/` sets (read from the Bicep, each given a test value) plus what the platform
//! sets (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`), against an App Service token endpoint that,
//! like Azure's, refuses a request naming no identity when the app has only a user-assigned one.

use crate::support::{fake_asm, fake_azure, fake_servicebus, host_emulator, template};

use std::collections::BTreeSet;

use fake_asm::FakeAsm;
use fake_azure::FakeAzure;
use fake_servicebus::{FakeAuth, FakeServiceBus};
use host_emulator::{HostEmulator, event_invocation, resources_event};

const KEY: &str = "identity-test-key";
const SCAN: &str = "scan-identity";
const TAG: &str = "cloud-connector";
const QUEUE: &str = "asm-retries";
const PIP: &str = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/publicIPAddresses/pip1";

/// A test value for every app setting the template sets; a setting this does not know (and
/// that is not a plain literal) fails the test, so a new setting is looked at here.
fn test_value(name: &str, expression: &str, azure: &FakeAzure, config: &str, bus: &FakeServiceBus) -> String {
    let account = "https://stseedwatch.{}.core.windows.net/";
    match name {
        "CONNECTOR_CONFIG" => config.to_string(),
        "API_KEY" => KEY.to_string(),
        "AZURE_CLIENT_ID" | "AzureWebJobsStorage__clientId" | "ServiceBusConnection__clientId" => {
            assert_eq!(expression, "identity.properties.clientId", "{name}");
            azure.client_id()
        }
        "ServiceBusConnection__fullyQualifiedNamespace" => bus.addr.to_string(),
        "RETRY_QUEUE" => QUEUE.to_string(),
        "SCAN_ID" => SCAN.to_string(),
        "SEED_TAG" => TAG.to_string(),
        "DELETE_STALE_SEEDS" => "true".to_string(),
        "LOG_LEVEL" => "info".to_string(),
        "RECONCILE_SCHEDULE" => "0 0 */6 * * *".to_string(),
        "AzureWebJobsStorage__accountName" => "stseedwatch".to_string(),
        "AzureWebJobsStorage__blobServiceUri" => account.replace("{}", "blob"),
        "AzureWebJobsStorage__queueServiceUri" => account.replace("{}", "queue"),
        "AzureWebJobsStorage__tableServiceUri" => account.replace("{}", "table"),
        "APPLICATIONINSIGHTS_CONNECTION_STRING" => {
            "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://127.0.0.1:1/".to_string()
        }
        "WEBSITE_RUN_FROM_PACKAGE" => "https://stseedwatch.blob.core.windows.net/deploy/seedwatch.zip".to_string(),
        "WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID" => {
            "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-seedwatch/providers/Microsoft.ManagedIdentity/userAssignedIdentities/seedwatch".to_string()
        }
        _ => template::literal(expression)
            .unwrap_or_else(|| panic!("the template sets {name} = {expression}: give it a test value here"))
            .to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_the_template_settings_gets_a_token_for_its_user_assigned_identity() {
    let azure = FakeAzure::start().await;
    azure.load(vec![fake_azure::public_ip(PIP, "203.0.113.40")]);
    let asm = FakeAsm::start(KEY).await;
    asm.add_scan(SCAN);
    let bus = FakeServiceBus::start(
        QUEUE,
        FakeAuth::token(
            "never-used",
            "https://servicebus.azure.net",
            &[fake_servicebus::DATA_SENDER],
        ),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    // The Key Vault secret CONNECTOR_CONFIG: a Hexiosec config.yml (no
    // azure.managed_identity_client_id) with the endpoints pointed at the fakes.
    let config = format!(
        "scan_id: {SCAN}\nseed_tag: {TAG}\n\
         http:\n  retry_count: 1\n  retry_base_delay: 10ms\n  retry_max_delay: 20ms\n  timeout: 5s\n\
         asm:\n  base_url: {}\n\
         azure:\n  endpoints:\n    resource_manager: {}\n    service_bus: {}\n\
         ledger:\n  kind: local\n  path: {}\n",
        asm.base_url(),
        azure.base_url(),
        bus.base_url(),
        dir.path().join("ledger.redb").display()
    );
    let mut settings: Vec<(String, String)> = template::template_app_settings()
        .iter()
        .map(|(name, expression)| (name.clone(), test_value(name, expression, &azure, &config, &bus)))
        .collect();
    // Set by the platform, not the template.
    settings.push(("IDENTITY_ENDPOINT".into(), azure.identity_endpoint()));
    settings.push(("IDENTITY_HEADER".into(), azure.identity_header()));
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let host = HostEmulator::start(&pairs).await;

    let event = resources_event("Microsoft.Resources.ResourceWriteSuccess", PIP);
    let response = host
        .invoke("resource-events", &event_invocation(&event), "inv-identity-1", false)
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        azure.counts().token_refusals,
        0,
        "the token endpoint refused a request: {:?}",
        azure.token_clients()
    );
    assert!(
        azure
            .token_clients()
            .contains(&format!("client_id={}", azure.client_id())),
        "{:?}",
        azure.token_clients()
    );
    assert_eq!(azure.counts().arm_gets, 1, "the ARM read went through with the token");
    assert_eq!(
        asm.tagged_names(SCAN, TAG),
        BTreeSet::from(["203.0.113.40".to_string()])
    );
    // The start-up log says which identity is used.
    let stdout = host.stdout_lines().join("\n");
    assert!(
        host.stdout_lines()
            .iter()
            .any(|l| l.contains(&azure.client_id()) && l.contains("AZURE_CLIENT_ID")),
        "{stdout}"
    );
}
