//! The exposure rule shared by every service: `publicNetworkAccess` (or
//! `network.publicNetworkAccess`) equal to `Disabled` means the resource yields no seeds.
//! `Enabled`, `SecuredByPerimeter` (filtered, like IP rules) and an absent value count as
//! reachable. Private-only variants are decided in each service's extractor.

use serde_json::Value;

use super::emit::str_is;

/// Whether public network access is switched off for the resource.
pub(crate) fn public_access_disabled(properties: &Value) -> bool {
    str_is(properties, &["publicNetworkAccess"], "Disabled")
        || str_is(properties, &["network", "publicNetworkAccess"], "Disabled")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_disabled_hides_a_resource() {
        assert!(public_access_disabled(&json!({"publicNetworkAccess": "Disabled"})));
        assert!(public_access_disabled(&json!({"publicNetworkAccess": "disabled"})));
        assert!(public_access_disabled(
            &json!({"network": {"publicNetworkAccess": "DISABLED"}})
        ));
        assert!(!public_access_disabled(&json!({"publicNetworkAccess": "Enabled"})));
        assert!(!public_access_disabled(
            &json!({"publicNetworkAccess": "SecuredByPerimeter"})
        ));
        assert!(!public_access_disabled(&json!({"publicNetworkAccess": null})));
        assert!(!public_access_disabled(&json!({})));
        assert!(!public_access_disabled(&json!({"publicNetworkAccess": 3})));
    }
}
