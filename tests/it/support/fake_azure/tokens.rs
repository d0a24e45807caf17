//! The fake's managed-identity token endpoints and bearer-token checks, as strict as Azure
//! (<https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference>,
//! <https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token>):
//!
//! - the App Service endpoint (`GET /msi/token`) requires `X-IDENTITY-HEADER`, `resource` and
//!   `api-version`; a request naming no identity asks for the system-assigned one, which an app
//!   with only user-assigned identities does not have: 400 "Unable to load the proper Managed
//!   Identity" (https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference);
//!   a `client_id` the app does not hold is refused the same way;
//! - IMDS (`GET /metadata/identity/oauth2/token`) requires `Metadata: true`; with no identity
//!   named it uses the system-assigned identity, or the only user-assigned one;
//! - each token is for one audience (`resource`) and expires (`expires_on`); ARM and Resource
//!   Graph refuse a token for another audience (401 `InvalidAuthenticationTokenAudience`) or a
//!   stale one (401 `ExpiredAuthenticationToken`).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{Shared, arm_error};

/// The client id of the user-assigned identity a fake app holds by default.
pub const CLIENT_ID: &str = "33333333-3333-3333-3333-333333333333";

/// How long an issued token is valid (one hour).
const TOKEN_LIFETIME_SECS: i64 = 3600;

/// The audiences ARM and Resource Graph accept.
const MANAGEMENT_AUDIENCES: &[&str] = &["https://management.azure.com", "https://management.core.windows.net"];

/// The identities assigned to the fake app.
pub struct Identities {
    pub system_assigned: bool,
    pub user_assigned: Vec<String>,
}

impl Default for Identities {
    /// What the template deploys: one user-assigned identity, no system-assigned one.
    fn default() -> Self {
        Identities {
            system_assigned: false,
            user_assigned: vec![CLIENT_ID.to_string()],
        }
    }
}

/// A token the fake issued: its audience and when it expires (Unix seconds).
#[derive(Clone)]
pub struct Issued {
    pub audience: String,
    pub expires_on: u64,
}

#[derive(Default)]
pub struct Tokens {
    pub issued: Mutex<HashMap<String, Issued>>,
    pub identities: Mutex<Identities>,
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn audience_of(resource: &str) -> String {
    resource
        .trim_end_matches('/')
        .trim_end_matches("/.default")
        .to_ascii_lowercase()
}

/// Records and returns a new token for `audience`, valid for `lifetime` seconds from now
/// (negative: already stale).
pub fn mint(shared: &Shared, audience: &str, lifetime: i64) -> (String, u64) {
    let n = shared.counters.tokens_minted.fetch_add(1, Ordering::Relaxed) + 1;
    let token = super::jwt_shaped_token(&format!("fake-mi-token-{n}-{}", shared.identity_header), audience);
    let expires_on = now_secs().saturating_add_signed(lifetime);
    shared.tokens.issued.lock().unwrap().insert(
        token.clone(),
        Issued {
            audience: audience_of(audience),
            expires_on,
        },
    );
    (token, expires_on)
}

fn refuse_identity() -> Response {
    // The App Service endpoint's answer for an identity the app does not hold.
    let body = json!({
        "statusCode": 400,
        "message": "Unable to load the proper Managed Identity.",
        "correlationId": "00000000-0000-0000-0000-000000000000"
    });
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The identity a token request names, if any (`client_id`, `object_id`/`principal_id`,
/// `msi_res_id`/`mi_res_id`), as `name=value`.
fn named_identity(q: &HashMap<String, String>) -> Option<(String, String)> {
    ["client_id", "object_id", "principal_id", "msi_res_id", "mi_res_id"]
        .iter()
        .find_map(|k| q.get(*k).map(|v| (k.to_string(), v.clone())))
}

/// Whether the app holds the identity named; `only_one_default`: IMDS's rule that a request
/// naming none gets the only user-assigned identity.
fn holds(shared: &Shared, named: &Option<(String, String)>, only_one_default: bool) -> bool {
    let ids = shared.tokens.identities.lock().unwrap();
    match named {
        None => ids.system_assigned || (only_one_default && ids.user_assigned.len() == 1),
        Some((key, value)) if key == "client_id" => ids.user_assigned.iter().any(|c| c.eq_ignore_ascii_case(value)),
        // Object ids and resource ids are not modelled: any names the one user-assigned identity.
        Some(_) => !ids.user_assigned.is_empty(),
    }
}

fn issue_token(shared: &Shared, resource: &str, named: Option<(String, String)>) -> Response {
    shared.counters.token_requests.fetch_add(1, Ordering::Relaxed);
    shared
        .token_clients
        .lock()
        .unwrap()
        .push(named.as_ref().map(|(k, v)| format!("{k}={v}")).unwrap_or_default());
    let (token, expires_on) = mint(shared, resource, TOKEN_LIFETIME_SECS);
    let client_id = match &named {
        Some((k, v)) if k == "client_id" => v.clone(),
        _ => CLIENT_ID.to_string(),
    };
    let body = json!({
        "access_token": token,
        "expires_on": expires_on.to_string(),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": client_id
    });
    ([("content-type", "application/json")], body.to_string()).into_response()
}

pub async fn app_service_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let header = headers.get("x-identity-header").and_then(|v| v.to_str().ok());
    if header != Some(shared.identity_header.as_str()) {
        return (StatusCode::UNAUTHORIZED, "missing or wrong X-IDENTITY-HEADER").into_response();
    }
    let (Some(resource), Some(_)) = (q.get("resource"), q.get("api-version")) else {
        return (StatusCode::BAD_REQUEST, "resource and api-version are required").into_response();
    };
    let named = named_identity(&q);
    if !holds(&shared, &named, false) {
        shared.counters.token_refusals.fetch_add(1, Ordering::Relaxed);
        return refuse_identity();
    }
    issue_token(&shared, resource, named)
}

pub async fn imds_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if headers.get("metadata").and_then(|v| v.to_str().ok()) != Some("true") {
        return (StatusCode::BAD_REQUEST, "Required metadata header not specified").into_response();
    }
    let Some(resource) = q.get("resource") else {
        return (StatusCode::BAD_REQUEST, "resource is required").into_response();
    };
    let named = named_identity(&q);
    if !holds(&shared, &named, true) {
        shared.counters.token_refusals.fetch_add(1, Ordering::Relaxed);
        let body = r#"{"error":"invalid_request","error_description":"Identity not found"}"#;
        return (StatusCode::BAD_REQUEST, [("content-type", "application/json")], body).into_response();
    }
    issue_token(&shared, resource, named)
}

/// ARM's and Resource Graph's bearer check: `Some` is the 401 ARM answers.
pub fn refuse_management_bearer(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    check_management_bearer(shared, headers).err()
}

#[allow(clippy::result_large_err)]
fn check_management_bearer(shared: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        return Err(arm_error(
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        ));
    };
    let Some(issued) = shared.tokens.issued.lock().unwrap().get(token).cloned() else {
        return Err(arm_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "The access token is invalid.",
        ));
    };
    if !MANAGEMENT_AUDIENCES.contains(&issued.audience.as_str()) {
        return Err(arm_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationTokenAudience",
            &format!(
                "The access token has been obtained for wrong audience or resource '{}'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.azure.com/'.",
                issued.audience
            ),
        ));
    }
    if issued.expires_on <= now_secs() {
        return Err(arm_error(
            StatusCode::UNAUTHORIZED,
            "ExpiredAuthenticationToken",
            "The access token expiry UTC time is earlier than current UTC time.",
        ));
    }
    Ok(())
}
