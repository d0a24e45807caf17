use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use super::*;
use crate::domain::check::ServiceCheck;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn load_yaml(yaml: &str, extra_env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut vars = env(extra_env);
    vars.insert("CONNECTOR_CONFIG".into(), yaml.into());
    Config::load(
        &LoadOptions {
            file: None,
            require_file: true,
        },
        &vars,
    )
}

const HEXIOSEC_CONFIG: &str = r#"
scan_id: "0b7c5a52-1111-4c3e-9a2f-2b7d7f1e2c44"
seed_tag: cloud_connector
delete_stale_seeds: true
http:
  retry_count: 4
  retry_base_delay: 1s
  retry_max_delay: 5s
aws:
  enabled: false
  default_region: eu-west-2
  services:
    check_ec2: true
gcp:
  enabled: false
  projects: ["projects/123"]
azure:
  enabled: true
  services:
    check_public_ip_addresses: true
    check_application_gateways: true
    check_application_gateway_certificates: true
    check_front_door_classic: true
    check_front_door_afd: true
    check_traffic_manager: true
    check_dns_zones: true
    check_dns_records: false
    check_storage_static_websites: true
    check_cdn_endpoints: true
    check_app_services: true
    check_sql_servers: true
    check_cosmos_db: true
    check_redis_cache: true
"#;

#[test]
fn a_hexiosec_config_loads_unchanged() {
    let config = load_yaml(HEXIOSEC_CONFIG, &[]).unwrap();
    assert_eq!(config.scan_id.as_deref(), Some("0b7c5a52-1111-4c3e-9a2f-2b7d7f1e2c44"));
    assert_eq!(config.seed_tag, "cloud_connector");
    assert!(config.delete_stale_seeds);
    assert_eq!(config.http.retry_count, 4);
    assert_eq!(config.http.retry_max_delay, Duration::from_secs(5));
    assert!(!config.azure.checks.is_on(ServiceCheck::DnsRecords));
    assert!(
        config.azure.checks.is_on(ServiceCheck::Aks),
        "checks it does not mention are on"
    );
    // The disabled aws and gcp blocks are named as ignored; neither shares the tag.
    assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
    assert!(
        config.warnings[0].contains("aws block is ignored"),
        "{:?}",
        config.warnings
    );
    assert!(
        config.warnings[1].contains("gcp block is ignored"),
        "{:?}",
        config.warnings
    );
    assert!(!config.sync.shared_tag);
    assert_eq!(config.sync.graph_lag, crate::config::DEFAULT_GRAPH_LAG);
    assert_eq!(config.origin, "CONNECTOR_CONFIG");
}

#[test]
fn an_enabled_aws_or_gcp_block_means_the_tag_is_shared() {
    for block in ["aws", "gcp"] {
        let yaml = HEXIOSEC_CONFIG.replace(
            &format!("{block}:\n  enabled: false"),
            &format!("{block}:\n  enabled: true"),
        );
        let config = load_yaml(&yaml, &[]).unwrap();
        assert!(config.sync.shared_tag, "{block}");
        assert!(
            config
                .warnings
                .iter()
                .any(|w| w.contains(&format!("the {block} block is ignored")) && w.contains("came from Azure")),
            "{:?}",
            config.warnings
        );
    }
    let config = load_yaml("sync:\n  shared_tag: true\n  graph_lag: 90s\n", &[]).unwrap();
    assert!(config.sync.shared_tag);
    assert_eq!(config.sync.graph_lag, Duration::from_secs(90));
    assert_eq!((config.sync.fanout_threshold, config.sync.fanout_batch), (50, 20));
    let config = load_yaml("sync:\n  fanout_threshold: 10\n  fanout_batch: 5\n", &[]).unwrap();
    assert_eq!((config.sync.fanout_threshold, config.sync.fanout_batch), (10, 5));
    assert!(load_yaml("sync:\n  fanout_batch: lots\n", &[]).is_err());
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let err = load_yaml("sync:\n  graph_lag: soon\n", &[]).unwrap_err();
    assert!(err.to_string().contains("sync.graph_lag"), "{err}");
}

#[test]
fn defaults_without_any_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("config.yml");
    // An explicit file that does not exist is an error; the implicit default is optional for plan.
    let err = Config::load(
        &LoadOptions {
            file: Some(missing.clone()),
            require_file: false,
        },
        &env(&[]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("config.yml"), "{err}");
    let config = Config::from_value(&Value::Null, "defaults", &env(&[])).unwrap();
    assert_eq!(config.seed_tag, DEFAULT_SEED_TAG);
    assert!(!config.delete_stale_seeds);
    assert_eq!(config.asm.base_url, DEFAULT_ASM_BASE_URL);
    assert_eq!(config.sync.max_delete_fraction, 0.25);
    assert_eq!(config.azure.resource_manager, "https://management.azure.com");
    assert_eq!(config.azure.checks.enabled().count(), ServiceCheck::ALL.len());
}

#[test]
fn env_overrides_win() {
    let config = load_yaml(
        HEXIOSEC_CONFIG,
        &[
            ("SCAN_ID", "env-scan"),
            ("SEED_TAG", "env-tag"),
            ("DELETE_STALE_SEEDS", "false"),
            ("API_KEY", "k-123"),
        ],
    )
    .unwrap();
    assert_eq!(config.scan_id.as_deref(), Some("env-scan"));
    assert_eq!(config.seed_tag, "env-tag");
    assert!(!config.delete_stale_seeds);
    assert_eq!(config.require_api_key().unwrap().expose(), "k-123");
    assert!(!format!("{config:?}").contains("k-123"));
}

#[test]
fn unknown_keys_are_warned_about() {
    let config = load_yaml("scan_id: x\nfoo: 1\nazure:\n  services:\n    check_lambda: true\n  endpoints:\n    resource_manager: http://127.0.0.1:9/\n", &[]).unwrap();
    assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
    assert!(config.warnings.iter().any(|w| w.contains("foo")));
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("azure.services.check_lambda"))
    );
    assert_eq!(config.azure.resource_manager, "http://127.0.0.1:9");
}

#[test]
fn invalid_values_name_key_value_and_origin() {
    let cases = [
        ("delete_stale_seeds: maybe", "delete_stale_seeds", "maybe"),
        ("http:\n  retry_count: -3", "http.retry_count", "-3"),
        ("http:\n  retry_base_delay: soon", "http.retry_base_delay", "soon"),
        ("azure:\n  services:\n    check_aks: 7", "azure.services.check_aks", "7"),
        ("azure:\n  cloud: mars", "azure.cloud", "mars"),
        ("azure:\n  credential: password", "azure.credential", "password"),
        ("sync:\n  max_delete_fraction: 3", "sync.max_delete_fraction", "3"),
        ("asm:\n  base_url: ftp://x", "asm.base_url", "ftp://x"),
        ("ledger:\n  kind: disk", "ledger.kind", "disk"),
        ("azure:\n  subscriptions: abc", "azure.subscriptions", "abc"),
    ];
    for (yaml, key, value) in cases {
        let err = load_yaml(yaml, &[]).unwrap_err().to_string();
        assert!(
            err.contains(key) && err.contains(value) && err.contains("CONNECTOR_CONFIG"),
            "{yaml:?} gave {err}"
        );
    }
    let err = load_yaml("scan_id: x", &[("DELETE_STALE_SEEDS", "perhaps")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("DELETE_STALE_SEEDS") && err.contains("perhaps"), "{err}");
}

#[test]
fn plain_http_is_refused_except_to_loopback() {
    let keys = [
        "asm:\n  base_url: {}",
        "azure:\n  endpoints:\n    resource_manager: {}",
        "azure:\n  endpoints:\n    service_bus: {}",
    ];
    for template in keys {
        let key = if template.starts_with("asm") {
            "asm.base_url"
        } else if template.contains("resource_manager") {
            "azure.endpoints.resource_manager"
        } else {
            "azure.endpoints.service_bus"
        };
        for remote in [
            "http://asm.example.com/api",
            "http://10.0.0.5:8080",
            "http://[2001:db8::1]/",
            "http://localhost.example.com",
        ] {
            let err = load_yaml(&template.replace("{}", remote), &[]).unwrap_err().to_string();
            assert!(
                err.contains(key) && err.contains(remote) && err.contains("loopback"),
                "{remote} for {key} gave {err}"
            );
        }
        for local in [
            "http://127.0.0.1:9/api",
            "http://127.1.2.3",
            "http://[::1]:8080",
            "http://localhost:7071",
            "https://proxy.example.com",
        ] {
            assert!(
                load_yaml(&template.replace("{}", local), &[]).is_ok(),
                "{local} for {key}"
            );
        }
    }
}

#[test]
fn broken_yaml_and_empty_env_are_errors() {
    assert!(matches!(
        load_yaml("scan_id: [unclosed", &[]),
        Err(ConfigError::Yaml { .. })
    ));
    assert!(load_yaml("   ", &[]).is_err());
    assert!(load_yaml("- just\n- a list\n", &[]).is_err());
}

#[test]
fn azure_disabled_turns_every_check_off() {
    let config = load_yaml("azure:\n  enabled: false\n", &[]).unwrap();
    assert_eq!(config.azure.checks.enabled().count(), 0);
    assert_eq!(config.warnings.len(), 1);
}

#[test]
fn file_loading_reports_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yml");
    std::fs::write(&path, "http:\n  retry_count: lots\n").unwrap();
    let err = Config::load(
        &LoadOptions {
            file: Some(path.clone()),
            require_file: true,
        },
        &env(&[]),
    )
    .unwrap_err();
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
}

#[test]
fn the_example_config_loads_without_warnings() {
    let text = include_str!("../../examples/config.yml");
    let config = load_yaml(text, &[]).unwrap();
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert_eq!(config.azure.checks.enabled().count(), ServiceCheck::ALL.len());
    assert_eq!(config.retry.max_delay, Duration::from_secs(3600));
}

#[test]
fn event_coalescing_has_defaults_and_takes_zero() {
    let config = load_yaml("scan_id: x\n", &[]).unwrap();
    assert_eq!(config.events.coalesce_window, Duration::from_secs(1));
    assert_eq!(config.events.concurrency, 32);
    assert_eq!(config.events.clock_skew, Duration::from_secs(2));
    let config = load_yaml(
        "scan_id: x\nevents:\n  coalesce_window: 0\n  concurrency: 8\n  clock_skew: 500ms\n",
        &[],
    )
    .unwrap();
    assert_eq!(config.events.coalesce_window, Duration::ZERO);
    assert_eq!(config.events.concurrency, 8);
    assert_eq!(config.events.clock_skew, Duration::from_millis(500));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    // A zero retry delay still means the default there.
    let config = load_yaml("scan_id: x\nretry:\n  base_delay: 0\n", &[]).unwrap();
    assert_eq!(config.retry.base_delay, Duration::from_secs(30));
}

#[test]
fn a_coalescing_window_too_long_for_the_host_is_refused() {
    let err = load_yaml("scan_id: x\nevents:\n  coalesce_window: 5m\n", &[]).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("events.coalesce_window") && text.contains("30s"),
        "{text}"
    );
    let err = load_yaml("scan_id: x\nevents:\n  clock_skew: soon\n", &[]).unwrap_err();
    assert!(err.to_string().contains("events.clock_skew"), "{err}");
}

#[test]
fn the_event_deadline_defaults_inside_event_grids_wait_and_refuses_more() {
    let config = load_yaml("scan_id: x\n", &[]).unwrap();
    assert_eq!(config.events.deadline, Duration::from_secs(20));
    let config = load_yaml("scan_id: x\nevents:\n  deadline: 250ms\n", &[]).unwrap();
    assert_eq!(config.events.deadline, Duration::from_millis(250));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let err = load_yaml("scan_id: x\nevents:\n  deadline: 40s\n", &[]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("events.deadline") && text.contains("25s"), "{text}");
}

#[test]
fn the_authority_host_comes_from_the_key_then_the_environment_then_the_cloud() {
    let default = load_yaml("scan_id: s\n", &[]).unwrap();
    assert_eq!(default.azure.authority, "https://login.microsoftonline.com");
    let china = load_yaml("azure:\n  cloud: china\n", &[]).unwrap();
    assert_eq!(china.azure.authority, "https://login.chinacloudapi.cn");
    // An explicit cloud does not hide AZURE_AUTHORITY_HOST.
    let from_env = load_yaml(
        "azure:\n  cloud: usgovernment\n",
        &[("AZURE_AUTHORITY_HOST", "https://login.example.test/")],
    )
    .unwrap();
    assert_eq!(from_env.azure.authority, "https://login.example.test");
    let from_key = load_yaml(
        "azure:\n  endpoints:\n    authority: https://127.0.0.1:8443\n",
        &[("AZURE_AUTHORITY_HOST", "https://login.example.test")],
    )
    .unwrap();
    assert_eq!(from_key.azure.authority, "https://127.0.0.1:8443");
    assert!(from_key.warnings.is_empty(), "{:?}", from_key.warnings);
}

#[test]
fn a_bad_authority_host_names_where_it_came_from() {
    let err = load_yaml("azure:\n  endpoints:\n    authority: http://login.example.test\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("azure.endpoints.authority") && err.contains("https://"),
        "{err}"
    );
    let err = load_yaml(
        "scan_id: s\n",
        &[("AZURE_AUTHORITY_HOST", "https://login.example.test/tenant")],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("AZURE_AUTHORITY_HOST") && err.contains("environment"),
        "{err}"
    );
}

#[test]
fn client_certificate_is_a_credential_kind() {
    let config = load_yaml("azure:\n  credential: client_certificate\n", &[]).unwrap();
    assert_eq!(config.azure.credential, CredentialKind::ClientCertificate);
    let err = load_yaml("azure:\n  credential: certificate\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("client_certificate"), "{err}");
}

#[test]
fn an_unknown_nested_key_is_reported_with_its_full_path() {
    let yaml = "azure:\n  endpoints:\n    resource_managr: https://management.azure.com\n  tenants:\n    - tenant_id: contoso.onmicrosoft.com\n      credential: azure_cli\n      tenant: typo\naws:\n  enabled: false\n  default_region: eu-west-2\n";
    let config = load_yaml(yaml, &[]).unwrap();
    assert_eq!(
        config.warnings,
        [
            "CONNECTOR_CONFIG: unknown key azure.endpoints.resource_managr is ignored",
            "CONNECTOR_CONFIG: the aws block is ignored (seedwatch reads Azure only)",
            "CONNECTOR_CONFIG: unknown key azure.tenants[0].tenant is ignored",
        ]
    );
}

#[test]
fn a_wrong_type_is_reported_with_its_path() {
    let cases = [
        (
            "sync:\n  max_delete_fraction: [1]\n",
            "CONNECTOR_CONFIG: sync.max_delete_fraction = [1]: expected a number from 0 to 1",
        ),
        (
            "azure:\n  endpoints:\n    authority: {host: x}\n",
            "CONNECTOR_CONFIG: azure.endpoints.authority = {\"host\":\"x\"}: expected a string",
        ),
        (
            "azure:\n  tenants:\n    - tenant_id: a\n      credential: azure_cli\n    - tenant_id: b\n      credential: azure_cli\n      subscriptions: s1\n",
            "CONNECTOR_CONFIG: azure.tenants[1].subscriptions = \"s1\": expected a list of strings",
        ),
        (
            "azure:\n  tenants:\n    - just-a-name\n",
            "CONNECTOR_CONFIG: azure.tenants[0] = \"just-a-name\": expected a mapping with tenant_id and credential",
        ),
    ];
    for (yaml, message) in cases {
        let err = load_yaml(yaml, &[]).unwrap_err().to_string();
        assert_eq!(err, message, "{yaml:?}");
    }
}

#[test]
fn a_section_that_is_not_a_mapping_is_refused_with_its_path() {
    let err = load_yaml("events: 5s\n", &[]).unwrap_err().to_string();
    assert_eq!(err, "CONNECTOR_CONFIG: events = \"5s\": expected a mapping of keys");
    let err = load_yaml("azure:\n  services: [check_aks]\n", &[])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "CONNECTOR_CONFIG: azure.services = [\"check_aks\"]: expected a mapping of keys"
    );
    // An empty section is every default, as an absent one.
    let config = load_yaml("events:\nazure:\n  services:\n", &[]).unwrap();
    assert_eq!(config.events, EventSettings::default());
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}
