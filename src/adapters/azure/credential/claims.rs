//! Who an access token stands for, from its JWT payload (the claims), for the doctor to show.
//! Nothing is verified: the token is only read, never trusted. Read leniently, as
//! `Value::as_str` would: a claim that is missing or not a string is absent, a payload that is
//! not a JSON object has no claims, and a token that is not a JWT has none at all.

use base64::Engine as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// The identity claims the doctor reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct TokenClaims {
    /// The identity's object (principal) id.
    #[serde(deserialize_with = "text")]
    pub(crate) oid: Option<String>,
    /// The client (application) id in v1 tokens.
    #[serde(deserialize_with = "text")]
    pub(crate) appid: Option<String>,
    /// The client (application) id in v2 tokens.
    #[serde(deserialize_with = "text")]
    pub(crate) azp: Option<String>,
}

impl TokenClaims {
    /// The client id: `appid`, else `azp`.
    pub(crate) fn client_id(&self) -> Option<&str> {
        self.appid.as_deref().or(self.azp.as_deref())
    }
}

/// The claims of `token`, if it is a JWT whose payload is JSON.
pub(crate) fn token_claims(token: &str) -> Option<TokenClaims> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    // Through `Value` first: a repeated claim keeps its last value instead of failing.
    match serde_json::from_slice::<Value>(&bytes).ok()? {
        object @ Value::Object(_) => Some(TokenClaims::deserialize(object).unwrap_or_default()),
        _ => Some(TokenClaims::default()),
    }
}

/// A string, or `None` for anything else.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        let encode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", encode(r#"{"alg":"none"}"#), encode(payload))
    }

    #[test]
    fn the_identity_claims_of_a_token() {
        let claims = token_claims(&jwt(r#"{"oid":"o","appid":"a","azp":"z","tid":"t"}"#)).unwrap();
        assert_eq!(claims.oid.as_deref(), Some("o"));
        assert_eq!(claims.client_id(), Some("a"));
        let v2 = token_claims(&jwt(r#"{"azp":"z"}"#)).unwrap();
        assert_eq!(v2.client_id(), Some("z"));
        // Padded base64 is accepted too.
        let padded = format!(
            "x.{}==.y",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("{\"oid\":\"o\"}")
        );
        assert_eq!(token_claims(&padded).unwrap().oid.as_deref(), Some("o"));
    }

    #[test]
    fn claims_are_read_leniently() {
        let odd = token_claims(&jwt(r#"{"oid":7,"appid":null,"azp":["z"],"oid2":"x"}"#)).unwrap();
        assert_eq!(odd, TokenClaims::default());
        let repeated = token_claims(&jwt(r#"{"oid":"first","oid":"last"}"#)).unwrap();
        assert_eq!(repeated.oid.as_deref(), Some("last"));
        assert_eq!(token_claims(&jwt("[1,2]")), Some(TokenClaims::default()));
        assert_eq!(token_claims(&jwt("not json")), None);
        assert_eq!(token_claims("opaque-token"), None);
        assert_eq!(token_claims("a.!!!.c"), None);
    }
}
