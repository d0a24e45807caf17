//! The shape of `config.yml`: one struct per section, each key an optional leaf. The derive is
//! the list of known keys: a key no struct names is reported by the loader (`serde_ignored`).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use super::tenants::RawTenant;
use super::types::{Cloud, CredentialKind, LedgerKind};
use super::values::{AuthorityUrl, BaseUrl, Count, Flag, Fraction, Seconds, SeedTypes, Text, TextList, section};
use crate::domain::check::ServiceCheck;

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawConfig {
    pub scan_id: Option<Text>,
    pub seed_tag: Option<Text>,
    pub delete_stale_seeds: Option<Flag>,
    #[serde(deserialize_with = "section")]
    pub http: RawHttp,
    #[serde(deserialize_with = "section")]
    pub azure: RawAzure,
    /// The Hexiosec connector's AWS block, kept for compatibility; seedwatch reads only whether
    /// it is enabled.
    pub aws: Option<OtherConnector>,
    /// The Hexiosec connector's GCP block, as `aws`.
    pub gcp: Option<OtherConnector>,
    #[serde(deserialize_with = "section")]
    pub asm: RawAsm,
    #[serde(deserialize_with = "section")]
    pub sync: RawSync,
    #[serde(deserialize_with = "section")]
    pub ledger: RawLedger,
    #[serde(deserialize_with = "section")]
    pub events: RawEvents,
    #[serde(deserialize_with = "section")]
    pub retry: RawRetry,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawHttp {
    pub retry_count: Option<Count>,
    pub retry_base_delay: Option<Seconds>,
    pub retry_max_delay: Option<Seconds>,
    pub timeout: Option<Seconds>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawAzure {
    pub enabled: Option<Flag>,
    pub credential: Option<CredentialKind>,
    pub managed_identity_client_id: Option<Text>,
    pub cloud: Option<Cloud>,
    #[serde(deserialize_with = "section")]
    pub endpoints: RawEndpoints,
    pub subscriptions: Option<TextList>,
    pub exclude_subscriptions: Option<TextList>,
    pub management_groups: Option<TextList>,
    #[serde(deserialize_with = "super::tenants::list")]
    pub tenants: Option<Vec<RawTenant>>,
    #[serde(deserialize_with = "section")]
    pub services: ServiceToggles,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawEndpoints {
    pub resource_manager: Option<BaseUrl>,
    pub service_bus: Option<BaseUrl>,
    pub authority: Option<AuthorityUrl>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawAsm {
    pub base_url: Option<BaseUrl>,
    pub seed_types: Option<SeedTypes>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawSync {
    pub max_delete_fraction: Option<Fraction>,
    pub shared_tag: Option<Flag>,
    pub graph_lag: Option<Seconds>,
    pub fanout_threshold: Option<Count>,
    pub fanout_batch: Option<Count>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawLedger {
    pub kind: Option<LedgerKind>,
    pub path: Option<Text>,
    pub table: Option<Text>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawEvents {
    pub coalesce_window: Option<Seconds>,
    pub concurrency: Option<Count>,
    pub clock_skew: Option<Seconds>,
    pub deadline: Option<Seconds>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawRetry {
    pub base_delay: Option<Seconds>,
    pub max_delay: Option<Seconds>,
    pub max_attempts: Option<Count>,
}

/// `azure.services`: the `check_*` toggles given, in the file's order. The known toggles are
/// [`ServiceCheck::ALL`]'s; another key is skipped as ignored, so the loader reports it.
#[derive(Default)]
pub(super) struct ServiceToggles(pub Vec<(ServiceCheck, bool)>);

impl<'de> Deserialize<'de> for ServiceToggles {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Toggles;
        impl<'de> Visitor<'de> for Toggles {
            type Value = ServiceToggles;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of check_* toggles")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ServiceToggles, A::Error> {
                let mut toggles = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    match ServiceCheck::from_toggle(&key) {
                        Some(check) => {
                            if let Some(Flag(on)) = map.next_value::<Option<Flag>>()? {
                                toggles.push((check, on));
                            }
                        }
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(ServiceToggles(toggles))
            }
        }
        deserializer.deserialize_map(Toggles)
    }
}

/// A Hexiosec `aws` or `gcp` block: seedwatch reads Azure only, so it takes just `enabled`
/// (another connector may tag seeds with the same `seed_tag`) and no other key is reported.
/// A block that is not a mapping is present but not enabled.
#[derive(Default)]
pub(super) struct OtherConnector {
    pub enabled: bool,
}

impl<'de> Deserialize<'de> for OtherConnector {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Block;
        impl<'de> Visitor<'de> for Block {
            type Value = OtherConnector;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a connector block")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OtherConnector, A::Error> {
                let mut block = OtherConnector::default();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "enabled" {
                        block.enabled = map.next_value::<Option<Flag>>()?.is_some_and(|Flag(on)| on);
                    } else {
                        // Read, not skipped: the loader reports only skipped keys.
                        map.next_value::<Value>()?;
                    }
                }
                Ok(block)
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<OtherConnector, A::Error> {
                Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(OtherConnector::default())
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<OtherConnector, E> {
                Ok(OtherConnector::default())
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<OtherConnector, E> {
                Ok(OtherConnector::default())
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<OtherConnector, E> {
                Ok(OtherConnector::default())
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<OtherConnector, E> {
                Ok(OtherConnector::default())
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<OtherConnector, E> {
                Ok(OtherConnector::default())
            }
        }
        deserializer.deserialize_any(Block)
    }
}
