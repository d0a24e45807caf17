//! Lambda function URL requests and responses (payload format 2.0), through `aws_lambda_events`'
//! types. Pure: a JSON payload in, a request out; a status and a JSON body in, the response
//! object Lambda turns into HTTP out.

use std::collections::HashMap;

use aws_lambda_events::event::lambda_function_urls::{LambdaFunctionUrlRequest, LambdaFunctionUrlResponse};
use aws_lambda_events::http::{HeaderMap, HeaderName, HeaderValue};
use base64::Engine as _;
use serde_json::Value;

/// One HTTP request that came through the function URL, decoded.
#[derive(Debug, Clone)]
pub(crate) struct UrlRequest {
    /// Upper case (`POST`).
    pub method: String,
    /// The path without the query string (`/`, `/resync`).
    pub path: String,
    headers: HeaderMap,
    query: HashMap<String, String>,
    /// The body as sent (base64 already undone).
    pub body: Vec<u8>,
}

/// Whether a Lambda payload is a function URL request (it has `requestContext.http`).
pub(crate) fn is_function_url(payload: &Value) -> bool {
    payload
        .get("requestContext")
        .and_then(|c| c.get("http"))
        .is_some_and(Value::is_object)
}

impl UrlRequest {
    /// Decodes a function URL payload; the error names the field that is wrong.
    pub(crate) fn from_payload(payload: &Value) -> Result<UrlRequest, String> {
        let request: LambdaFunctionUrlRequest = serde_path_to_error::deserialize(payload)
            .map_err(|e| format!("function URL request: {}: {}", e.path(), e.inner()))?;
        let method = request
            .request_context
            .http
            .method
            .as_deref()
            .map(|m| m.trim().to_ascii_uppercase())
            .filter(|m| !m.is_empty())
            .ok_or("function URL request: requestContext.http.method is missing")?;
        let path = request
            .raw_path
            .clone()
            .or_else(|| request.request_context.http.path.clone())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".to_string());
        let body = match request.body {
            None => Vec::new(),
            Some(text) if request.is_base64_encoded => base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|e| {
                    format!("function URL request: body: isBase64Encoded is true but it is not base64: {e}")
                })?,
            Some(text) => text.into_bytes(),
        };
        Ok(UrlRequest {
            method,
            path,
            headers: request.headers,
            query: request.query_string_parameters,
            body,
        })
    }

    /// A header's value (names compare case-insensitively; Lambda joins repeated headers with
    /// commas).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
    }

    /// A query string parameter, as Lambda decoded it.
    pub(crate) fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }
}

/// A response for the function URL.
#[derive(Debug, Clone)]
pub(crate) struct UrlResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Value>,
}

impl UrlResponse {
    /// A JSON answer (`Content-Type: application/json`).
    pub(crate) fn json(status: u16, body: Value) -> UrlResponse {
        UrlResponse {
            status,
            headers: Vec::new(),
            body: Some(body),
        }
    }

    /// An answer without a body.
    pub(crate) fn empty(status: u16) -> UrlResponse {
        UrlResponse {
            status,
            headers: Vec::new(),
            body: None,
        }
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> UrlResponse {
        self.headers.push((name, value.into()));
        self
    }

    /// The response object Lambda expects back from a function URL invocation.
    pub(crate) fn into_payload(self) -> Value {
        let mut response = LambdaFunctionUrlResponse::default();
        response.status_code = i64::from(self.status);
        if let Some(body) = &self.body {
            response
                .headers
                .insert("content-type", HeaderValue::from_static("application/json"));
            response.body = Some(body.to_string());
        }
        for (name, value) in self.headers {
            // Header values are ours (fixed names, origins echoed after checking): a value that
            // cannot be a header is dropped rather than failing the answer.
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers.insert(HeaderName::from_static(name), value);
            }
        }
        serde_json::to_value(&response).unwrap_or_else(|_| serde_json::json!({"statusCode": 500}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload(method: &str, body: Option<&str>, base64: bool) -> Value {
        json!({
            "version": "2.0", "routeKey": "$default", "rawPath": "/resync", "rawQueryString": "code=abc",
            "headers": {"Content-Type": "application/json", "aeg-event-type": "Notification"},
            "queryStringParameters": {"code": "abc"},
            "requestContext": {"accountId": "anonymous", "apiId": "x", "domainName": "x.lambda-url.eu-west-1.on.aws",
                "domainPrefix": "x", "http": {"method": method, "path": "/resync", "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9", "userAgent": "curl"}, "requestId": "r1", "routeKey": "$default",
                "stage": "$default", "time": "01/Mar/2025:10:15:07 +0000", "timeEpoch": 1740824107000_i64},
            "body": body, "isBase64Encoded": base64
        })
    }

    #[test]
    fn decodes_method_path_headers_query_and_body() {
        let p = payload("post", Some("{\"scope\":\"all\"}"), false);
        assert!(is_function_url(&p));
        let r = UrlRequest::from_payload(&p).unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/resync"));
        assert_eq!(r.header("AEG-EVENT-TYPE"), Some("Notification"));
        assert_eq!(r.query("code"), Some("abc"));
        assert_eq!(r.body, b"{\"scope\":\"all\"}");
        let encoded = base64::engine::general_purpose::STANDARD.encode("[1]");
        let r = UrlRequest::from_payload(&payload("POST", Some(&encoded), true)).unwrap();
        assert_eq!(r.body, b"[1]");
        assert!(
            UrlRequest::from_payload(&payload("POST", None, false))
                .unwrap()
                .body
                .is_empty()
        );
    }

    #[test]
    fn bad_requests_name_the_problem() {
        let err = UrlRequest::from_payload(&payload("POST", Some("%%%"), true)).unwrap_err();
        assert!(err.contains("base64"), "{err}");
        let mut p = payload("POST", None, false);
        p["requestContext"]["http"]["method"] = json!(5);
        let err = UrlRequest::from_payload(&p).unwrap_err();
        assert!(err.contains("requestContext.http.method"), "{err}");
        assert!(!is_function_url(&json!({"source": "aws.events"})));
    }

    #[test]
    fn responses_are_what_a_function_url_expects() {
        let v = UrlResponse::json(200, json!({"validationResponse": "c"})).into_payload();
        assert_eq!(v["statusCode"], 200);
        assert_eq!(v["headers"]["content-type"], "application/json");
        assert_eq!(v["isBase64Encoded"], false);
        let body: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
        assert_eq!(body, json!({"validationResponse": "c"}));
        let v = UrlResponse::empty(200)
            .with_header("webhook-allowed-origin", "eventgrid.azure.net")
            .into_payload();
        assert_eq!(v["headers"]["webhook-allowed-origin"], "eventgrid.azure.net");
        assert!(v["body"].is_null());
    }
}
