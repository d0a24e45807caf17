//! A token cache for credentials that have none of their own (the Azure CLI).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential};

/// Caches tokens per scope until 5 minutes before expiry, for credentials that do not (the
/// Azure CLI runs a process per call). One refresh at a time.
#[derive(Debug)]
pub struct CachedToken {
    inner: Arc<dyn TokenCredential>,
    cache: tokio::sync::Mutex<HashMap<String, AccessToken>>,
}

impl CachedToken {
    pub(crate) fn new(inner: Arc<dyn TokenCredential>) -> CachedToken {
        CachedToken {
            inner,
            cache: tokio::sync::Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl TokenCredential for CachedToken {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<azure_core::credentials::TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let key = scopes.join(" ");
        let mut cache = self.cache.lock().await;
        let fresh_until = time::OffsetDateTime::now_utc() + time::Duration::minutes(5);
        if let Some(token) = cache.get(&key)
            && token.expires_on > fresh_until
        {
            return Ok(token.clone());
        }
        let token = self.inner.get_token(scopes, options).await?;
        cache.insert(key, token.clone());
        Ok(token)
    }
}
