//! The live Azure reader against a local fake ARM + Resource Graph + managed-identity server.

use crate::support::{azure_reader, cli, fake_azure};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_reader::*;
use fake_azure::FakeAzure;
use seedwatch::adapters::azure::arm::Tuning;
use seedwatch::adapters::azure::{
    AzureError, AzureReader, Incomplete, NoProgress, OwnerRead, credential, live_from_config,
};
use seedwatch::config::CredentialKind;
use seedwatch::domain::check::{EnabledChecks, ServiceCheck};
use seedwatch::domain::resource::ResourceId;
use serde_json::json;

#[tokio::test]
async fn sweep_pages_through_every_table_and_lists_arm_children() {
    let (fake, estate, subs) = started_with_lax_graph_quota(3, 1500).await;
    let live = reader(&fake, json!({}), tuning());
    let sweep = live.sweep(&EnabledChecks::all(), &NoProgress).await.unwrap();
    let all: Vec<&str> = subs.iter().map(String::as_str).collect();
    assert_eq!(swept_ids(&sweep), expected_ids(&estate, &all));
    assert!(sweep.report.is_fully_complete(), "{:?}", sweep.report);
    assert_eq!(sweep.report.subscriptions.len(), 3);
    for r in &sweep.resources {
        assert_eq!(r.arm_type, r.arm_type.to_ascii_lowercase());
    }
    // ARM children keep the ids ARM gives them.
    let domain = sweep
        .resources
        .iter()
        .find(|r| r.arm_type == "microsoft.cdn/profiles/customdomains")
        .expect("an AFD custom domain");
    assert!(domain.id.as_str().contains("/providers/Microsoft.Cdn/profiles/"));
    let blob = sweep
        .resources
        .iter()
        .find(|r| r.arm_type == "microsoft.storage/storageaccounts/blobservices")
        .expect("a blobServices companion");
    assert!(blob.properties["staticWebsite"]["enabled"].is_boolean());

    // Pages: one chain per table (3 subscriptions fit one batch), 100 rows a page.
    let in_table = |dns: bool| {
        estate
            .iter()
            .filter(|r| {
                let t = r["type"].as_str().unwrap().to_ascii_lowercase();
                let is_dns = t.starts_with("microsoft.network/dnszones/");
                let arm_only = t.ends_with("/customdomains") || t.ends_with("/blobservices");
                t != "microsoft.compute/virtualmachines" && !arm_only && is_dns == dns
            })
            .count() as u64
    };
    // computeresources (VM scale set instance IPs) has no rows here: one empty page.
    let pages = in_table(false).div_ceil(100) + in_table(true).div_ceil(100) + 1;
    let counts = fake.counts();
    assert_eq!(counts.graph_pages, pages);
    let profiles = estate.iter().filter(|r| r["type"] == "Microsoft.Cdn/profiles").count() as u64;
    let accounts = estate
        .iter()
        .filter(|r| r["type"] == "Microsoft.Storage/storageAccounts")
        .count() as u64;
    assert_eq!(counts.arm_gets, profiles + accounts);
    assert_eq!(counts.subscription_lists, 1);
    assert_eq!(
        live.arm()
            .counters
            .graph_pages
            .load(std::sync::atomic::Ordering::Relaxed),
        pages
    );
}

#[tokio::test]
async fn toggles_narrow_the_query() {
    let (fake, estate, subs) = started_with_lax_graph_quota(2, 600).await;
    let mut checks = EnabledChecks::none();
    checks.set(ServiceCheck::PublicIpAddresses, true);
    let live = reader(&fake, json!({}), tuning());
    let sweep = live.sweep(&checks, &NoProgress).await.unwrap();
    let pips = estate
        .iter()
        .filter(|r| r["type"] == "Microsoft.Network/publicIPAddresses")
        .count();
    assert_eq!(sweep.resources.len(), pips);
    assert!(
        sweep
            .resources
            .iter()
            .all(|r| r.arm_type == "microsoft.network/publicipaddresses")
    );
    assert_eq!(
        fake.counts().arm_gets,
        0,
        "no children read when AFD and storage are off"
    );
    assert!(sweep.report.is_complete(&subs[0], ServiceCheck::PublicIpAddresses));
}

#[tokio::test]
async fn a_forbidden_subscription_leaves_the_others_complete() {
    let (fake, estate, subs) = started_with_lax_graph_quota(5, 500).await;
    fake.forbid(&subs[3]);
    let live = reader(&fake, json!({}), tuning());
    let sweep = live.sweep(&EnabledChecks::all(), &NoProgress).await.unwrap();
    let readable: Vec<&str> = subs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, s)| s.as_str())
        .collect();
    assert_eq!(swept_ids(&sweep), expected_ids(&estate, &readable));
    for check in ServiceCheck::ALL {
        assert!(!sweep.report.is_complete(&subs[3], *check));
        for sub in &readable {
            assert!(sweep.report.is_complete(sub, *check), "{sub} {check}");
        }
    }
    assert_eq!(sweep.report.incomplete.len(), 1, "{:?}", sweep.report.incomplete);
    let entry = &sweep.report.incomplete[0];
    assert!(entry.subscription.eq_ignore_ascii_case(&subs[3]));
    assert_eq!(entry.check, None);
    let Incomplete::Forbidden { message } = &entry.why else {
        panic!("expected Forbidden, got {:?}", entry.why)
    };
    assert!(message.contains(&format!(
        "grant the Reader role on subscription {} to the identity",
        subs[3]
    )));
    assert!(message.contains("AuthorizationFailed"), "{message}");
    let json = serde_json::to_value(&sweep.report).unwrap();
    assert_eq!(json["incomplete"][0]["reason"], "forbidden");
}

#[tokio::test]
async fn unauthorized_and_server_errors() {
    let (fake, _, subs) = started_with_lax_graph_quota(3, 300).await;
    fake.unauthorize(&subs[0]);
    fake.fail_5xx(&subs[1], 2);
    let live = reader(&fake, json!({"subscriptions": [subs[0].clone()]}), tuning());
    let sweep = live.sweep(&EnabledChecks::all(), &NoProgress).await.unwrap();
    assert!(matches!(
        sweep.report.incomplete[0].why,
        Incomplete::Unauthorized { .. }
    ));
    let live = reader(&fake, json!({"subscriptions": [subs[1].clone()]}), tuning());
    let sweep = live.sweep(&EnabledChecks::all(), &NoProgress).await.unwrap();
    assert!(sweep.report.is_fully_complete(), "5xx is retried: {:?}", sweep.report);
    assert!(!sweep.resources.is_empty());
}

#[tokio::test]
async fn throttling_slows_the_sweep_down_instead_of_failing_it() {
    let (fake, estate, subs) = started_with_lax_graph_quota(2, 800).await;
    fake.throttle_graph(3, Duration::from_millis(150));
    fake.throttle(&subs[0], 4, Duration::from_millis(100));
    let live = reader(&fake, json!({}), tuning());
    let started = Instant::now();
    let sweep = live.sweep(&EnabledChecks::all(), &NoProgress).await.unwrap();
    let all: Vec<&str> = subs.iter().map(String::as_str).collect();
    assert!(sweep.report.is_fully_complete(), "{:?}", sweep.report);
    assert_eq!(swept_ids(&sweep), expected_ids(&estate, &all));
    assert!(fake.counts().throttled >= 7);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "waited for Retry-After"
    );
}

#[tokio::test]
async fn a_subscription_throttled_out_is_reported() {
    let (fake, _, subs) = started_with_lax_graph_quota(2, 300).await;
    fake.throttle(&subs[1], 1000, Duration::from_millis(5));
    let live = reader(
        &fake,
        json!({}),
        Tuning {
            subscriptions_per_query: 1,
            max_throttle_retries: 3,
            ..tuning()
        },
    );
    let sweep = live.sweep(&EnabledChecks::all(), &NoProgress).await.unwrap();
    assert!(sweep.report.is_complete(&subs[0], ServiceCheck::AppServices));
    let entry = sweep
        .report
        .incomplete
        .iter()
        .find(|i| i.subscription.eq_ignore_ascii_case(&subs[1]))
        .unwrap();
    assert!(matches!(entry.why, Incomplete::Throttled { .. }), "{:?}", entry.why);
}

#[tokio::test]
async fn the_quota_is_respected_before_it_runs_out() {
    let (fake, _, _) = started_with_lax_graph_quota(1, 1000).await;
    fake.set_graph_quota(3, Duration::from_millis(300));
    let mut checks = EnabledChecks::none();
    checks.set(ServiceCheck::PublicIpAddresses, true);
    let live = reader(
        &fake,
        json!({}),
        Tuning {
            page_size: 50,
            concurrent_queries: 1,
            ..tuning()
        },
    );
    let started = Instant::now();
    let sweep = live.sweep(&checks, &NoProgress).await.unwrap();
    assert!(sweep.report.is_fully_complete());
    let pages = fake.counts().graph_pages;
    assert!(pages >= 6, "{pages}");
    assert_eq!(fake.counts().throttled, 0, "paced by x-ms-user-quota-* without a 429");
    assert!(started.elapsed() >= Duration::from_millis(300));
}

/// Two query chains under a quota of 6 per window: the budget counts the query still in flight,
/// so each window is spent whole (a hold at "fewer left than chains we may run" would leave
/// some of each window unused) and no query is sent past it.
#[tokio::test]
async fn concurrent_chains_spend_each_quota_window_whole_without_a_429() {
    let (fake, estate, _) = started_with_lax_graph_quota(2, 600).await;
    let page_size = 4;
    let pips = estate
        .iter()
        .filter(|r| r["type"] == "Microsoft.Network/publicIPAddresses")
        .count() as u64;
    assert!(
        pips >= 12 * page_size,
        "pages enough for several windows: {pips} public IPs"
    );
    let per_window = 6;
    fake.set_graph_quota(per_window, Duration::from_millis(600));
    let mut checks = EnabledChecks::none();
    checks.set(ServiceCheck::PublicIpAddresses, true);
    let live = reader(
        &fake,
        json!({}),
        Tuning {
            page_size: page_size as u32,
            subscriptions_per_query: 1,
            ..tuning()
        },
    );
    let sweep = live.sweep(&checks, &NoProgress).await.unwrap();
    assert!(sweep.report.is_fully_complete(), "{:?}", sweep.report);
    let counts = fake.counts();
    let pages = counts.graph_pages;
    assert!(pages >= pips / page_size, "{pages} pages for {pips} public IPs");
    assert_eq!(counts.throttled, 0, "no query past the quota");
    assert_eq!(
        counts.graph_windows,
        pages.div_ceil(u64::from(per_window)),
        "{pages} pages in whole windows of {per_window}"
    );
}

#[tokio::test]
async fn scope_lists_subscriptions_applies_allow_and_deny_lists() {
    let (fake, _, subs) = started_with_lax_graph_quota(4, 200).await;
    fake.set_subscription_page_size(1);
    fake.add_subscription("99999999-0000-0000-0000-000000000000", "Disabled");
    let live = reader(
        &fake,
        json!({"exclude_subscriptions": [subs[2].to_uppercase()]}),
        tuning(),
    );
    let sweep = live.sweep(&EnabledChecks::all(), &NoProgress).await.unwrap();
    assert_eq!(sweep.report.subscriptions.len(), 3);
    assert!(!sweep.report.subscriptions.contains(&subs[2]));
    assert!(sweep.report.notes.iter().any(|n| n.contains("Disabled")));
    assert_eq!(fake.counts().subscription_lists, 5, "nextLink followed");
    assert!(
        sweep
            .resources
            .iter()
            .all(|r| !r.id.subscription_id().eq_ignore_ascii_case(&subs[2]))
    );

    // A configured subscription the identity cannot see.
    fake.hide_subscription(&subs[1]);
    let live = reader(
        &fake,
        json!({"subscriptions": [subs[0].clone(), subs[1].clone()]}),
        tuning(),
    );
    let sweep = live.sweep(&EnabledChecks::all(), &NoProgress).await.unwrap();
    assert!(sweep.report.is_complete(&subs[0], ServiceCheck::DnsRecords));
    assert!(!sweep.report.is_complete(&subs[1], ServiceCheck::DnsRecords));
    let Incomplete::Forbidden { message } = &sweep.report.incomplete[0].why else {
        panic!("{:?}", sweep.report)
    };
    assert!(message.contains(&format!("grant the Reader role on subscription {}", subs[1])));
}

#[tokio::test]
async fn management_groups_scope_the_sweep() {
    let (fake, estate, subs) = started_with_lax_graph_quota(3, 300).await;
    fake.add_management_group("mg-prod", &[&subs[0], &subs[2]]);
    let live = reader(&fake, json!({"management_groups": ["mg-prod"]}), tuning());
    let sweep = live.sweep(&EnabledChecks::all(), &NoProgress).await.unwrap();
    assert_eq!(sweep.report.subscriptions.len(), 2);
    assert_eq!(swept_ids(&sweep), expected_ids(&estate, &[&subs[0], &subs[2]]));
    assert_eq!(fake.counts().subscription_lists, 0);
}

#[tokio::test]
async fn no_visible_subscription_means_scope_unknown() {
    let fake = FakeAzure::start().await;
    let live = reader(&fake, json!({}), tuning());
    let sweep = live.sweep(&EnabledChecks::all(), &NoProgress).await.unwrap();
    assert!(sweep.report.scope_unknown);
    assert!(!sweep.report.is_fully_complete());
    assert!(sweep.report.notes[0].contains("Reader"));
}

#[tokio::test]
async fn read_owner_uses_the_type_api_version_and_companions() {
    let fake = FakeAzure::start().await;
    let sub = "11111111-1111-1111-1111-111111111111";
    let rg = format!("/subscriptions/{sub}/resourceGroups/rg-web");
    let account = format!("{rg}/providers/Microsoft.Storage/storageAccounts/stweb");
    let bare = format!("{rg}/providers/Microsoft.Storage/storageAccounts/stbare");
    let pip = format!("{rg}/providers/Microsoft.Network/publicIPAddresses/pip1");
    fake.load(vec![
        json!({"id": account, "name": "stweb", "type": "Microsoft.Storage/storageAccounts", "properties": {"primaryEndpoints": {"web": "https://stweb.z6.web.core.windows.net/"}}}),
        json!({"id": format!("{account}/blobServices/default"), "name": "default", "type": "Microsoft.Storage/storageAccounts/blobServices", "properties": {"staticWebsite": {"enabled": true}}}),
        json!({"id": bare, "name": "stbare", "type": "Microsoft.Storage/storageAccounts", "properties": {}}),
        json!({"id": pip, "name": "pip1", "type": "Microsoft.Network/publicIPAddresses", "properties": {"ipAddress": "198.51.100.7"}}),
    ]);
    let live = reader(&fake, json!({}), tuning());
    let id = |s: &str| ResourceId::parse(s).unwrap();

    let OwnerRead::Found(found) = live.read_owner(&id(&pip.to_lowercase())).await.unwrap() else {
        panic!("pip found")
    };
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].properties["ipAddress"], "198.51.100.7");

    let OwnerRead::Found(found) = live.read_owner(&id(&account)).await.unwrap() else {
        panic!("account found")
    };
    assert_eq!(found.len(), 2);
    assert_eq!(found[1].arm_type, "microsoft.storage/storageaccounts/blobservices");

    let OwnerRead::Found(found) = live.read_owner(&id(&bare)).await.unwrap() else {
        panic!("bare account found")
    };
    assert_eq!(found.len(), 2, "ARM serves blobServices/default of every account");
    assert_eq!(found[1].properties["staticWebsite"]["enabled"], false);

    fake.delete(&pip);
    assert!(matches!(live.read_owner(&id(&pip)).await.unwrap(), OwnerRead::Gone));

    let vm = id(&format!("{rg}/providers/Microsoft.Compute/virtualMachines/vm1"));
    assert!(matches!(
        live.read_owner(&vm).await,
        Err(AzureError::UnknownType { .. })
    ));

    fake.forbid(sub);
    match live.read_owner(&id(&account)).await {
        Err(AzureError::Http {
            status: 403, message, ..
        }) => assert!(message.contains("AuthorizationFailed")),
        other => panic!("expected 403, got {other:?}"),
    }
    fake.clear_faults();
    fake.throttle(sub, 2, Duration::from_millis(20));
    assert!(matches!(
        live.read_owner(&id(&bare)).await.unwrap(),
        OwnerRead::Found(_)
    ));
}

#[tokio::test]
async fn estate_changes_at_runtime_are_seen() {
    let (fake, _, subs) = started_with_lax_graph_quota(1, 50).await;
    let live = reader(&fake, json!({}), tuning());
    let before = live
        .sweep(&EnabledChecks::all(), &NoProgress)
        .await
        .unwrap()
        .resources
        .len();
    let id = format!(
        "/subscriptions/{}/resourceGroups/rg-new/providers/Microsoft.Sql/servers/newsql",
        subs[0]
    );
    fake.upsert(json!({"id": id, "name": "newsql", "type": "Microsoft.Sql/servers", "properties": {"fullyQualifiedDomainName": "newsql.database.windows.net"}}));
    let after = live.sweep(&EnabledChecks::all(), &NoProgress).await.unwrap();
    assert_eq!(after.resources.len(), before + 1);
    fake.delete(&id);
    assert_eq!(
        live.sweep(&EnabledChecks::all(), &NoProgress)
            .await
            .unwrap()
            .resources
            .len(),
        before
    );
}

#[tokio::test]
async fn the_real_managed_identity_credential_gets_its_token_from_the_fake() {
    let (fake, _, subs) = started_with_lax_graph_quota(1, 100).await;
    let mut settings = config(
        &fake,
        json!({"managed_identity_client_id": "33333333-3333-3333-3333-333333333333"}),
    )
    .azure;
    settings.credential = CredentialKind::ManagedIdentity;
    let transport = azure_core::http::Transport::new(Arc::new(Rewrite {
        to: url::Url::parse(&fake.base_url()).unwrap(),
        client: reqwest::Client::new(),
    }));
    let tokens = credential::token_source(
        &settings,
        &HashMap::<String, String>::new(),
        credential::CredentialOptions {
            transport: Some(transport),
            ..Default::default()
        },
    )
    .unwrap();
    let scope = settings.cloud.management_scope();
    let token = tokens.bearer(scope).await.unwrap();
    assert!(token.expose().starts_with("fake-mi-token-"));
    // Cached: a second request does not reach the endpoint.
    let again = tokens.bearer(scope).await.unwrap();
    assert_eq!(token, again);
    assert_eq!(fake.counts().token_requests, 1);
    assert_eq!(
        fake.token_clients(),
        vec!["client_id=33333333-3333-3333-3333-333333333333".to_string()]
    );

    let mut config = config(&fake, json!({}));
    config.azure = settings;
    let live = live_from_config(&config, tokens, tuning());
    let sweep = live.sweep(&EnabledChecks::all(), &NoProgress).await.unwrap();
    assert!(sweep.report.is_complete(&subs[0], ServiceCheck::PublicIpAddresses));
    assert!(!sweep.resources.is_empty());
}

/// Answers every token request with IMDS's "identity not assigned" 400.
#[derive(Debug)]
struct NotAssigned;

#[async_trait::async_trait]
impl azure_core::http::HttpClient for NotAssigned {
    async fn execute_request(
        &self,
        _request: &azure_core::http::Request,
    ) -> azure_core::Result<azure_core::http::AsyncRawResponse> {
        let body = r#"{"error":"invalid_request","error_description":"Identity not found"}"#;
        Ok(azure_core::http::AsyncRawResponse::from_bytes(
            azure_core::http::StatusCode::BadRequest,
            azure_core::http::headers::Headers::new(),
            bytes::Bytes::from_static(body.as_bytes()),
        ))
    }
}

#[tokio::test]
async fn a_failed_token_request_is_an_error_naming_the_credential() {
    let fake = FakeAzure::start().await;
    let mut settings = config(&fake, json!({})).azure;
    settings.credential = CredentialKind::ManagedIdentity;
    let opts = credential::CredentialOptions {
        transport: Some(azure_core::http::Transport::new(Arc::new(NotAssigned))),
        ..Default::default()
    };
    let tokens = credential::token_source(&settings, &HashMap::<String, String>::new(), opts).unwrap();
    let err = tokens.bearer(settings.cloud.management_scope()).await.unwrap_err();
    assert!(matches!(err, AzureError::Credential(_)));
    let text = err.to_string();
    assert!(text.contains("managed identity"), "{text}");
    assert!(text.contains("https://management.azure.com/.default"), "{text}");
}

/// Runs the built `seedwatch` in an empty directory with only the given environment (the
/// managed identity comes from the fake's `IDENTITY_ENDPOINT`).
async fn seedwatch(args: &[&str], env: Vec<(String, String)>) -> cli::Run {
    let dir = tempfile::tempdir().unwrap();
    cli::run(args, dir.path(), env).await
}

fn live_env(fake: &FakeAzure) -> Vec<(String, String)> {
    let yaml = format!(
        "azure:\n  endpoints:\n    resource_manager: {}\nhttp:\n  retry_base_delay: 10ms\n  retry_max_delay: 50ms\n",
        fake.base_url()
    );
    let mut env = vec![("CONNECTOR_CONFIG".into(), yaml)];
    env.extend(fake.managed_identity_env());
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_against_the_fake_gives_the_same_seeds_as_plan_with_the_estate_file() {
    let fake = FakeAzure::start().await;
    fake.load(cli::estate_items(cli::EXAMPLE_ESTATE));
    let env = live_env(&fake);

    let live = seedwatch(&["plan", "--json"], env.clone()).await.ok().json();
    let file = seedwatch(&["plan", "--json", "--estate", cli::EXAMPLE_ESTATE], env.clone())
        .await
        .ok()
        .json();

    assert!(file["seeds"].as_array().unwrap().len() > 20);
    assert_eq!(live["seeds"], file["seeds"]);
    assert_eq!(live["completeness"]["incomplete"], json!([]));
    assert_eq!(live["completeness"]["scope_unknown"], false);
    assert!(
        fake.counts().token_requests >= 1,
        "the managed identity endpoint issued the token"
    );

    // The table, with the completeness line.
    let run = seedwatch(&["plan"], env).await;
    let text = &run.ok().stdout;
    assert!(
        text.contains("Completeness: 1 subscription, every service check read completely."),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_names_the_role_to_grant_and_exits_1_when_a_subscription_is_forbidden() {
    let (fake, _, subs) = started_with_lax_graph_quota(2, 100).await;
    fake.forbid(&subs[1]);
    let out = seedwatch(&["plan"], live_env(&fake)).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    let text = &out.stdout;
    assert!(
        text.contains(&format!(
            "grant the Reader role on subscription {} to the identity",
            subs[1]
        )),
        "{text}"
    );

    // No credential at all: a clear error naming it, exit 2.
    let yaml = format!(
        "azure:\n  credential: client_secret\n  endpoints:\n    resource_manager: {}\n",
        fake.base_url()
    );
    let out = seedwatch(&["plan"], vec![("CONNECTOR_CONFIG".into(), yaml)]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    let err = &out.stderr;
    assert!(
        err.contains("client secret") && err.contains("AZURE_TENANT_ID"),
        "{err}"
    );
}
