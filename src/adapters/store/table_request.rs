//! One Table Storage request: dated, signed with the account key (Shared Key,
//! https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key) or carrying a
//! bearer token, and sent through [`crate::adapters::http::send_with_retry`].

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::Method;
use sha2::Sha256;

use crate::adapters::http::{Exchange, Retry};
use crate::adapters::store::table::{ACCEPT, API_VERSION, STORAGE_SCOPE, TableAuth, TableLedger};
use crate::domain::secret::Secret;
use crate::ledger::LedgerError;

/// One Table Storage request as [`crate::adapters::http::send_with_retry`] drives it.
pub(super) struct TableAttempt<'a> {
    pub(super) ledger: &'a TableLedger,
    pub(super) method: Method,
    pub(super) path: &'a str,
    pub(super) query: &'a str,
    pub(super) body: Option<&'a str>,
    pub(super) headers: &'a [(&'a str, &'a str)],
}

impl Exchange for TableAttempt<'_> {
    type Error = LedgerError;

    /// One attempt's request: dated, signed (or with a current token), the body again.
    async fn request(&self) -> Result<reqwest::RequestBuilder, LedgerError> {
        let (ledger, method) = (self.ledger, &self.method);
        let full = if self.query.is_empty() {
            format!("{}/{}", ledger.endpoint, self.path)
        } else {
            format!("{}/{}?{}", ledger.endpoint, self.path, self.query)
        };
        let url = url::Url::parse(&full).map_err(|e| LedgerError::Config(format!("bad Table Storage URL: {e}")))?;
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let content_type = if self.body.is_some() { "application/json" } else { "" };
        let mut request = ledger
            .http
            .request(method.clone(), url.clone())
            .header("x-ms-date", &date)
            .header("x-ms-version", API_VERSION)
            .header("Accept", ACCEPT)
            .header("DataServiceVersion", "3.0;NetFx")
            .header("MaxDataServiceVersion", "3.0;NetFx");
        for (name, value) in self.headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = self.body {
            request = request.header("Content-Type", content_type).body(body.to_string());
        }
        let authorization = match &ledger.auth {
            TableAuth::SharedKey { account, key } => {
                let string_to_sign = format!(
                    "{}\n\n{}\n{}\n/{}{}",
                    method.as_str(),
                    content_type,
                    date,
                    account,
                    url.path()
                );
                format!("SharedKey {account}:{}", sign(key, &string_to_sign)?)
            }
            TableAuth::Bearer(tokens) => {
                let token = tokens
                    .bearer(STORAGE_SCOPE)
                    .await
                    .map_err(|e| LedgerError::Credential(e.to_string()))?;
                format!("Bearer {}", token.expose())
            }
        };
        Ok(request.header("Authorization", authorization))
    }

    async fn retrying(&self, _why: Retry, attempt: u32, wait: Duration) {
        tracing::debug!(attempt, ?wait, "retrying a Table Storage request");
        tokio::time::sleep(wait).await;
    }
}

fn sign(key: &Secret, string_to_sign: &str) -> Result<String, LedgerError> {
    let engine = base64::engine::general_purpose::STANDARD;
    let key = engine
        .decode(key.expose().trim())
        .map_err(|_| LedgerError::Config("the storage account key is not valid base64".into()))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key)
        .map_err(|_| LedgerError::Config("the storage account key cannot be used for HMAC".into()))?;
    mac.update(string_to_sign.as_bytes());
    Ok(engine.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_key_signature_matches_the_documented_algorithm() {
        // HMAC-SHA256 over the string to sign with the decoded key, base64 encoded.
        let key = Secret::new(base64::engine::general_purpose::STANDARD.encode(b"key"));
        let sig = sign(&key, "GET\n\n\nSat, 01 Mar 2025 10:15:07 GMT\n/acct/acct/Tables").unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"GET\n\n\nSat, 01 Mar 2025 10:15:07 GMT\n/acct/acct/Tables");
        assert_eq!(
            sig,
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        );
        assert!(sign(&Secret::new("not base64!"), "x").is_err());
    }
}
