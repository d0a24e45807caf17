//! Tenants in the fake: which tenant a token was issued in, which tenant each subscription
//! lives in, and Azure Lighthouse delegations. ARM answers a token from another tenant with
//! 401 `InvalidAuthenticationTokenTenant`; `GET /subscriptions` lists a delegated subscription
//! to the managing tenant with `tenantId` the managing tenant and `homeTenantId` its own
//! (https://learn.microsoft.com/rest/api/resources/subscriptions/list). By default (no
//! tenant recorded) every token sees every subscription, as before.

use std::collections::HashMap;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::{Shared, arm_error};

/// The tenant every subscription lives in unless placed elsewhere.
pub const HOME_TENANT: &str = "22222222-2222-2222-2222-222222222222";

#[derive(Default)]
pub struct Tenancy {
    /// token → tenant it was issued in.
    pub token_tenant: HashMap<String, String>,
    /// subscription (lower case) → its home tenant.
    pub home: HashMap<String, String>,
    /// subscription (lower case) → the tenant it is delegated to.
    pub delegated: HashMap<String, String>,
}

impl Tenancy {
    pub fn home_of(&self, sub: &str) -> String {
        self.home
            .get(&sub.to_ascii_lowercase())
            .cloned()
            .unwrap_or_else(|| HOME_TENANT.to_string())
    }

    /// Whether a token of `viewer` may read `sub` (home tenant, or delegated to it).
    pub fn may_read(&self, viewer: Option<&str>, sub: &str) -> bool {
        let Some(viewer) = viewer else { return true };
        self.home_of(sub).eq_ignore_ascii_case(viewer)
            || self
                .delegated
                .get(&sub.to_ascii_lowercase())
                .is_some_and(|t| t.eq_ignore_ascii_case(viewer))
    }
}

/// The tenant of the request's token, when one was recorded.
pub fn viewer(shared: &Shared, headers: &HeaderMap) -> Option<String> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))?;
    shared.tenancy.lock().unwrap().token_tenant.get(token).cloned()
}

/// ARM's answer to a token from the wrong tenant for any of `subs`.
pub fn refuse_other_tenant(shared: &Shared, viewer: Option<&str>, subs: &[String]) -> Option<Response> {
    let tenancy = shared.tenancy.lock().unwrap();
    let sub = subs.iter().find(|s| !tenancy.may_read(viewer, s))?;
    let message = format!(
        "The access token is from the wrong issuer 'https://sts.windows.net/{}/'. It must match the tenant 'https://sts.windows.net/{}/' associated with this subscription. Please use the authority (URL) 'https://login.windows.net/{}' to get the token.",
        viewer.unwrap_or_default(),
        tenancy.home_of(sub),
        tenancy.home_of(sub)
    );
    Some(arm_error(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationTokenTenant",
        &message,
    ))
}

/// The subscriptions a request touches: the `subscriptions` of a Resource Graph body, or the
/// subscription of an ARM path.
pub fn subscriptions_touched(lower_path: &str, body: &[u8]) -> Vec<String> {
    if lower_path == "/providers/microsoft.resourcegraph/resources" {
        let parsed: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        return parsed
            .get("subscriptions")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
    }
    lower_path
        .strip_prefix("/subscriptions/")
        .and_then(|rest| rest.split('/').next())
        .filter(|s| !s.is_empty())
        .map(|s| vec![s.to_string()])
        .unwrap_or_default()
}
