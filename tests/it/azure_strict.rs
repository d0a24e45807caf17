//! What the strict fake Azure refuses and how the reader copes: tokens that name the identity,
//! fit their audience and expire; Resource Graph's real quota, refused and truncated queries;
//! ARM's read bucket, 429s without `Retry-After`, paged child lists, continuation links to
//! another host, api-versions per path.

use crate::support::{azure_reader, fake_azure};

use std::time::Duration;

use azure_reader::*;
use fake_azure::FakeAzure;
use seedwatch::adapters::azure::arm::Tuning;
use seedwatch::adapters::azure::{AzureReader, NoProgress, OwnerRead};
use seedwatch::domain::check::{EnabledChecks, ServiceCheck};
use seedwatch::domain::resource::ResourceId;
use serde_json::{Value, json};

/// A plain HTTP client to the loopback fake (no proxy).
fn loopback_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

#[tokio::test]
async fn the_token_endpoint_refuses_an_app_with_only_a_user_assigned_identity_a_request_naming_none() {
    let fake = FakeAzure::start().await;
    let client = loopback_client();
    let ask = |query: &'static str| {
        client
            .get(format!("{}?{query}", fake.identity_endpoint()))
            .header("X-IDENTITY-HEADER", fake.identity_header())
            .send()
    };
    let none = ask("resource=https://management.azure.com&api-version=2019-08-01")
        .await
        .unwrap();
    assert_eq!(none.status(), 400);
    assert!(
        none.text()
            .await
            .unwrap()
            .contains("Unable to load the proper Managed Identity")
    );
    let other = ask(
        "resource=https://management.azure.com&api-version=2019-08-01&client_id=99999999-9999-9999-9999-999999999999",
    )
    .await
    .unwrap();
    assert_eq!(other.status(), 400);
    let named = client
        .get(format!(
            "{}?resource=https://management.azure.com&api-version=2019-08-01&client_id={}",
            fake.identity_endpoint(),
            fake.client_id()
        ))
        .header("X-IDENTITY-HEADER", fake.identity_header())
        .send()
        .await
        .unwrap();
    assert_eq!(named.status(), 200);
    assert_eq!(fake.counts().token_refusals, 2);
}

#[tokio::test]
async fn arm_refuses_tokens_for_another_audience_stale_or_unknown() {
    let fake = FakeAzure::start().await;
    fake.add_subscription("11111111-1111-1111-1111-111111111111", "Enabled");
    let client = loopback_client();
    let list = |token: String| {
        client
            .get(format!("{}/subscriptions?api-version=2022-12-01", fake.base_url()))
            .bearer_auth(token)
            .send()
    };
    let code = |body: String| serde_json::from_str::<Value>(&body).unwrap()["error"]["code"].clone();
    let good = list(fake.arm_token_minted_for_test()).await.unwrap();
    assert_eq!(good.status(), 200);
    let storage = list(fake.mint_token_for_test("https://storage.azure.com/", 3600))
        .await
        .unwrap();
    assert_eq!(storage.status(), 401);
    assert_eq!(
        code(storage.text().await.unwrap()),
        "InvalidAuthenticationTokenAudience"
    );
    let stale = list(fake.mint_token_for_test("https://management.azure.com/", -60))
        .await
        .unwrap();
    assert_eq!(stale.status(), 401);
    assert_eq!(code(stale.text().await.unwrap()), "ExpiredAuthenticationToken");
    let unknown = list("fake-arm-token".to_string()).await.unwrap();
    assert_eq!(unknown.status(), 401);
    assert_eq!(code(unknown.text().await.unwrap()), "InvalidAuthenticationToken");
}

#[tokio::test]
async fn sweep_under_the_real_graph_quota_waits_for_the_reset() {
    // Azure's default: 15 queries per 5 s per user. This sweep needs 21 pages.
    let fake = FakeAzure::start().await;
    let sub = "11111111-1111-1111-1111-111111111111";
    let estate: Vec<Value> = (0..1000)
        .map(|n| {
            fake_azure::public_ip(
                &format!("/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/p{n}"),
                &format!("20.0.{}.{}", n / 250, n % 250),
            )
        })
        .collect();
    fake.load(estate);
    let mut checks = EnabledChecks::none();
    checks.set(ServiceCheck::PublicIpAddresses, true);
    let live = reader(
        &fake,
        json!({}),
        Tuning {
            page_size: 50,
            max_wait: Duration::from_secs(10),
            ..Tuning::default()
        },
    );
    let sweep = live.sweep(&checks, &NoProgress).await.unwrap();
    assert!(sweep.report.is_fully_complete(), "{:?}", sweep.report);
    assert_eq!(sweep.resources.len(), 1000);
    assert!(fake.counts().graph_pages > 15, "the sweep needed more than one window");
    assert_eq!(fake.counts().throttled, 0, "paced by x-ms-user-quota-*, no 429");
}

#[tokio::test]
async fn arm_reads_slow_down_as_the_read_bucket_empties() {
    let fake = FakeAzure::start().await;
    let sub = "11111111-1111-1111-1111-111111111111";
    let ids: Vec<String> = (0..30)
        .map(|n| format!("/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/p{n}"))
        .collect();
    fake.load(
        ids.iter()
            .enumerate()
            .map(|(n, id)| fake_azure::public_ip(id, &format!("20.1.0.{n}")))
            .collect(),
    );
    // Nearly empty: 3 reads left, refilling at 25 per second as ARM's bucket does.
    fake.set_reads_remaining(sub, 3);
    let live = reader(&fake, json!({}), tuning());
    for id in &ids {
        let read = live.read_owner(&ResourceId::parse(id).unwrap()).await.unwrap();
        assert!(matches!(read, OwnerRead::Found(_)));
    }
    assert_eq!(
        fake.counts().throttled,
        0,
        "paced by x-ms-ratelimit-remaining-subscription-reads"
    );
}

#[tokio::test]
async fn a_429_without_retry_after_is_retried_with_backoff() {
    let (fake, _, subs) = started_with_lax_graph_quota(1, 20).await;
    let id = format!(
        "/subscriptions/{}/resourceGroups/rg-x/providers/Microsoft.Network/publicIPAddresses/px",
        subs[0]
    );
    fake.upsert(fake_azure::public_ip(&id, "20.2.0.1"));
    fake.throttle_without_retry_after(&subs[0], 3);
    let live = reader(&fake, json!({}), tuning());
    let read = live.read_owner(&ResourceId::parse(&id).unwrap()).await.unwrap();
    assert!(matches!(read, OwnerRead::Found(_)));
    assert_eq!(fake.counts().throttled, 3);
}

#[tokio::test]
async fn refused_or_truncated_graph_queries_leave_their_checks_incomplete() {
    let (fake, _, subs) = started_with_lax_graph_quota(1, 300).await;
    fake.refuse_kql("dnsresources");
    let live = reader(&fake, json!({}), tuning());
    let sweep = live.sweep(&EnabledChecks::all(), &NoProgress).await.unwrap();
    assert!(!sweep.report.is_complete(&subs[0], ServiceCheck::DnsRecords));
    assert!(sweep.report.is_complete(&subs[0], ServiceCheck::PublicIpAddresses));
    let text = sweep.report.render_text();
    assert!(text.contains("InvalidQuery"), "{text}");

    let (fake, _, subs) = started_with_lax_graph_quota(1, 300).await;
    fake.truncate_graph_results_after(10);
    let live = reader(&fake, json!({}), tuning());
    let sweep = live.sweep(&EnabledChecks::all(), &NoProgress).await.unwrap();
    assert!(!sweep.report.is_complete(&subs[0], ServiceCheck::PublicIpAddresses));
    assert!(
        sweep.report.render_text().contains("truncated"),
        "{}",
        sweep.report.render_text()
    );
}

#[tokio::test]
async fn long_child_lists_are_followed_through_next_link() {
    let fake = FakeAzure::start().await;
    let rg = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg";
    let profile = format!("{rg}/providers/Microsoft.Cdn/profiles/afd1");
    let mut estate = vec![json!({"id": profile, "name": "afd1", "type": "Microsoft.Cdn/profiles",
        "kind": "frontdoor", "sku": {"name": "Standard_AzureFrontDoor"}, "properties": {}})];
    for n in 0..5 {
        estate.push(
            json!({"id": format!("{profile}/customDomains/d{n}"), "name": format!("d{n}"),
            "type": "Microsoft.Cdn/profiles/customDomains",
            "properties": {"hostName": format!("d{n}.contoso.com"), "domainValidationState": "Approved"}}),
        );
    }
    fake.load(estate);
    fake.set_child_page_size(2);
    let mut checks = EnabledChecks::none();
    checks.set(ServiceCheck::FrontDoorAfd, true);
    let sweep = reader(&fake, json!({}), tuning())
        .sweep(&checks, &NoProgress)
        .await
        .unwrap();
    let domains = sweep
        .resources
        .iter()
        .filter(|r| r.arm_type == "microsoft.cdn/profiles/customdomains")
        .count();
    assert_eq!(domains, 5);
    assert!(sweep.report.is_fully_complete());
}

#[tokio::test]
async fn a_next_link_to_another_host_is_not_followed_and_names_the_host() {
    let (fake, _, _) = started_with_lax_graph_quota(3, 30).await;
    let elsewhere = FakeAzure::start().await;
    fake.set_subscription_page_size(1);
    fake.send_next_links_to(&elsewhere.base_url().replace("127.0.0.1", "localhost"));
    let live = reader(&fake, json!({}), tuning());
    let err = live
        .sweep(&EnabledChecks::all(), &NoProgress)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("localhost") && err.contains("not followed"), "{err}");
    assert_eq!(fake.counts().subscription_lists, 1);
}

#[tokio::test]
async fn a_scale_set_instance_address_is_read_with_the_version_its_path_serves() {
    let fake = FakeAzure::start().await;
    let id = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/vmss1/virtualMachines/0/networkInterfaces/nic1/ipConfigurations/ipc1/publicIPAddresses/pub1";
    fake.load(vec![fake_azure::public_ip(id, "20.3.0.1")]);
    let live = reader(&fake, json!({}), tuning());
    let read = live.read_owner(&ResourceId::parse(id).unwrap()).await.unwrap();
    let OwnerRead::Found(found) = read else { panic!("found") };
    assert_eq!(found[0].properties["ipAddress"], "20.3.0.1");
}
