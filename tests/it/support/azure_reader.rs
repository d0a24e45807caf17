//! The live reader over the fake Azure, for tests/it/azure*.rs: configuration, tuning, tokens as
//! production gets them, expected sweep results.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::fake_azure::{self, FakeAzure};
use seedwatch::adapters::azure::arm::Tuning;
use seedwatch::adapters::azure::{LiveAzure, TokenSource, credential, live_from_config};
use seedwatch::config::{Config, CredentialKind};
use serde_json::{Value, json};

pub fn config(fake: &FakeAzure, extra: Value) -> Config {
    let mut yaml = json!({
        "http": {"retry_count": 3, "retry_base_delay": "10ms", "retry_max_delay": "50ms", "timeout": "5s"},
        "azure": {"endpoints": {"resource_manager": fake.base_url()}}
    });
    if let (Some(azure), Some(more)) = (yaml["azure"].as_object_mut(), extra.as_object()) {
        for (k, v) in more {
            azure.insert(k.clone(), v.clone());
        }
    }
    Config::from_value(&yaml, "test", &HashMap::<String, String>::new()).unwrap()
}

pub fn tuning() -> Tuning {
    Tuning {
        page_size: 100,
        max_wait: Duration::from_secs(2),
        ..Tuning::default()
    }
}

/// Tokens as production gets them: `azure_identity`'s managed identity credential, asked for
/// the user-assigned identity `AZURE_CLIENT_ID` names. `azure_identity` picks the App Service
/// endpoint from the process environment, which a test cannot set safely, so this one speaks
/// IMDS, rewritten to the fake.
pub fn managed_identity_tokens(fake: &FakeAzure) -> Arc<dyn TokenSource> {
    let env: HashMap<String, String> = [("AZURE_CLIENT_ID".to_string(), fake.client_id())].into();
    let mut settings = config(fake, json!({})).azure;
    settings.credential = CredentialKind::ManagedIdentity;
    let transport = azure_core::http::Transport::new(Arc::new(Rewrite {
        to: url::Url::parse(&fake.base_url()).unwrap(),
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
    }));
    let options = credential::CredentialOptions {
        transport: Some(transport),
        ..Default::default()
    };
    credential::token_source(&settings, &env, options).unwrap()
}

pub fn reader(fake: &FakeAzure, extra: Value, tuning: Tuning) -> LiveAzure {
    live_from_config(&config(fake, extra), managed_identity_tokens(fake), tuning)
}

/// Ids the sweep should return for a generated estate: every type the checks read, ARM-only
/// children included, minus what no check reads (VMs) and what is read only to find children.
pub fn expected_ids(estate: &[Value], subs: &[&str]) -> Vec<String> {
    let mut ids: Vec<String> = estate
        .iter()
        .filter(|r| {
            let t = r["type"].as_str().unwrap().to_ascii_lowercase();
            t != "microsoft.compute/virtualmachines" && t != "microsoft.cdn/profiles"
        })
        .map(|r| r["id"].as_str().unwrap().to_ascii_lowercase())
        .filter(|id| {
            subs.iter()
                .any(|s| id.starts_with(&format!("/subscriptions/{}/", s.to_ascii_lowercase())))
        })
        .collect();
    // ARM answers `blobServices/default` for every account, loaded or not.
    let companions: Vec<String> = ids
        .iter()
        .filter(|id| id.contains("/providers/microsoft.storage/storageaccounts/") && !id.contains("/blobservices"))
        .map(|id| format!("{id}/blobservices/default"))
        .filter(|c| !ids.contains(c))
        .collect();
    ids.extend(companions);
    ids.sort();
    ids
}

pub fn swept_ids(sweep: &seedwatch::adapters::azure::Sweep) -> Vec<String> {
    let mut ids: Vec<String> = sweep.resources.iter().map(|r| r.id.key().to_string()).collect();
    ids.sort();
    ids
}

pub async fn started_with_lax_graph_quota(subs: usize, resources: usize) -> (FakeAzure, Vec<Value>, Vec<String>) {
    let fake = FakeAzure::start().await;
    // These tests run more Resource Graph queries than Azure's 15 per 5 s and do not test the
    // quota; `sweep_under_the_real_graph_quota_waits_for_the_reset` does.
    fake.lax_graph_quota_for_test();
    let estate = fake_azure::generate_estate(subs, resources, 7);
    fake.load(estate.clone());
    let subs = fake.subscriptions();
    (fake, estate, subs)
}

/// Sends `azure_identity`'s requests (IMDS at 169.254.169.254) to the fake instead.
#[derive(Debug)]
pub struct Rewrite {
    pub to: url::Url,
    pub client: reqwest::Client,
}

#[async_trait::async_trait]
impl azure_core::http::HttpClient for Rewrite {
    async fn execute_request(
        &self,
        request: &azure_core::http::Request,
    ) -> azure_core::Result<azure_core::http::AsyncRawResponse> {
        let mut request = request.clone();
        let url = request.url_mut();
        url.set_scheme(self.to.scheme()).unwrap();
        url.set_host(self.to.host_str()).unwrap();
        url.set_port(self.to.port()).unwrap();
        azure_core::http::HttpClient::execute_request(&self.client, &request).await
    }
}
