use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::adapters::azure::StaticToken;
use crate::adapters::azure::arm::Tuning;
use crate::adapters::http::RetryPolicy;
use crate::domain::secret::Secret;

fn page<T: DeserializeOwned + Default>(value: Value) -> Page<T> {
    lenient_object(value)
}

#[test]
fn a_page_without_value_or_of_another_shape_is_empty() {
    for body in [
        json!({}),
        json!({"value": "x"}),
        json!({"value": null}),
        json!([[{}], "/next"]),
        json!("x"),
    ] {
        let p: Page<RoleAssignmentWire> = page(body.clone());
        assert!(p.value.is_empty() && p.next_link.is_none(), "{body}");
    }
    let p: Page<RoleAssignmentWire> = page(json!({"value": [], "nextLink": 7}));
    assert!(p.next_link.is_none());
}

#[test]
fn a_field_of_the_wrong_type_is_absent_not_an_error() {
    let p: Page<RoleAssignmentWire> = page(json!({"value": [
        {"properties": {"roleDefinitionId": "/x/roleDefinitions/ABC"}},
        {"properties": "odd"},
        {"properties": {"roleDefinitionId": {"id": 1}}},
        {}
    ]}));
    let roles: Vec<Option<String>> = p.value.into_iter().map(|a| a.properties.role_definition_id).collect();
    assert_eq!(roles, [Some("/x/roleDefinitions/ABC".into()), None, None, None]);
}

#[test]
fn topics_match_by_type_and_source_leniently() {
    let p: Page<SystemTopicWire> = page(json!({"value": [
        {"id": "/t/1", "properties": {"topicType": "microsoft.resources.subscriptions", "source": "/SUBSCRIPTIONS/s1/"}},
        {"id": "/t/2", "properties": {"topicType": "Microsoft.Storage.StorageAccounts", "source": "/subscriptions/s1"}},
        {"id": "/t/3", "properties": {"topicType": 1, "source": "/subscriptions/s1"}},
        {"id": 4, "properties": {"topicType": "Microsoft.Resources.Subscriptions", "source": "/subscriptions/s1"}}
    ]}));
    let matching: Vec<Option<&str>> = p
        .value
        .iter()
        .filter(|t| t.is_subscription_topic("/subscriptions/s1"))
        .map(|t| t.id.as_deref())
        .collect();
    assert_eq!(matching, [Some("/t/1"), None]);
}

#[test]
fn event_subscriptions_read_every_field_and_tolerate_odd_ones() {
    let p: Page<EventSubscriptionWire> = page(json!({"value": [
        {"name": "seedwatch", "properties": {
            "provisioningState": "Succeeded",
            "destination": {"endpointType": "AzureFunction", "properties": {"resourceId": "/sites/app/functions/resource-events"}},
            "filter": {"includedEventTypes": ["A", 3, "B"], "advancedFilters": [{}, {}]}
        }},
        {"name": 1, "properties": {
            "provisioningState": null,
            "destination": {"endpointType": ["x"], "properties": {"endpointBaseUrl": "https://h/api/resource-events"}},
            "filter": {"includedEventTypes": "A", "advancedFilters": {"n": 1}}
        }},
        {"properties": {"destination": "odd", "filter": 2}}
    ]}));
    let subs: Vec<EventSubscription> = p.value.into_iter().map(EventSubscriptionWire::typed).collect();
    assert_eq!(
        subs[0],
        EventSubscription {
            name: Some("seedwatch".into()),
            provisioning_state: Some("Succeeded".into()),
            endpoint_type: Some("AzureFunction".into()),
            destination_resource_id: Some("/sites/app/functions/resource-events".into()),
            endpoint_base_url: None,
            included_event_types: vec!["A".into(), "B".into()],
            advanced_filters: 2,
        }
    );
    assert_eq!(
        subs[1],
        EventSubscription {
            endpoint_base_url: Some("https://h/api/resource-events".into()),
            ..EventSubscription::default()
        }
    );
    assert_eq!(subs[2], EventSubscription::default());
}

/// A fake list endpoint: `/subscriptions` answers page `n` of `pages` with a `nextLink` to page
/// `n + 1` (`pages == 0`: a `nextLink` on every page), absolute as ARM sends it, on `link_host`
/// (`None`: this server).
async fn serve_pages(pages: usize) -> (String, Arc<AtomicUsize>) {
    serve_pages_linking(pages, None).await
}

async fn serve_pages_linking(pages: usize, link_host: Option<&str>) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let link_base = link_host.map_or(base.clone(), str::to_string);
    let app = axum::Router::new().route(
        "/subscriptions",
        axum::routing::get(move |uri: axum::http::Uri| {
            let counter = counter.clone();
            let link_base = link_base.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let n: usize = uri
                    .query()
                    .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("page=")))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                let mut body = json!({"value": [{"subscriptionId": format!("s{n}")}, {"subscriptionId": false}]});
                if pages == 0 || n < pages {
                    body["nextLink"] = json!(format!("{link_base}/subscriptions?api-version=1&page={}", n + 1));
                }
                axum::Json(body)
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, hits)
}

fn arm(base: &str) -> Arm {
    Arm::new(
        reqwest::Client::new(),
        base,
        "https://management.azure.com/.default",
        Arc::new(StaticToken(Secret::new("t"))),
        RetryPolicy {
            count: 0,
            base: Duration::from_millis(1),
            max: Duration::from_millis(1),
        },
        Tuning::default(),
    )
}

#[tokio::test]
async fn next_links_are_followed() {
    let (base, hits) = serve_pages(3).await;
    let ids = subscription_ids(&arm(&base)).await.unwrap();
    assert_eq!(ids, ["s1", "s2", "s3"]);
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

/// The request carries the bearer token: a `nextLink` to another host is an error, not a
/// request.
#[tokio::test]
async fn next_links_to_another_host_are_not_followed() {
    let (base, hits) = serve_pages_linking(3, Some("http://elsewhere.example")).await;
    let err = subscription_ids(&arm(&base)).await.unwrap_err().to_string();
    assert!(
        err.contains("elsewhere.example") && err.contains("not followed"),
        "{err}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

/// A list that never ends is an error past the cap, not a partial answer.
#[tokio::test]
async fn a_list_past_its_page_cap_is_an_error() {
    let (base, hits) = serve_pages(0).await;
    let arm = arm(&base);
    let first = arm.url("/subscriptions?api-version=1&page=1");
    let Err(err) = list::<RoleAssignmentWire>(&arm, first, Bucket::Arm(String::new()), "the list").await else {
        panic!("a list without end answered");
    };
    let err = err.to_string();
    assert!(err.contains("more than 100 pages"), "{err}");
    assert_eq!(hits.load(Ordering::SeqCst), MAX_PAGES);
}
