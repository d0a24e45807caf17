use super::*;
use serde_json::json;

fn resource(value: serde_json::Value) -> Resource {
    Resource::from_json(value).unwrap()
}

#[test]
fn every_registered_type_is_lower_case_and_unique() {
    let mut seen = std::collections::HashSet::new();
    for extractor in registry() {
        assert_eq!(extractor.arm_type, extractor.arm_type.to_ascii_lowercase());
        assert!(seen.insert(extractor.arm_type), "{} twice", extractor.arm_type);
        assert!(!extractor.checks.is_empty());
    }
    for check in ServiceCheck::ALL {
        assert!(
            registry().iter().any(|e| e.checks.contains(check)),
            "no extractor serves {check}"
        );
    }
}

#[test]
fn owner_and_companion_types() {
    assert!(is_owner_type("Microsoft.Network/publicIPAddresses"));
    assert!(is_owner_type("microsoft.network/dnszones/cname"));
    assert!(!is_owner_type("microsoft.network/dnszones/txt"));
    assert!(!is_owner_type("microsoft.network/privatednszones"));
    assert!(!is_owner_type("microsoft.storage/storageaccounts/blobservices"));
    assert!(is_companion_type("Microsoft.Storage/storageAccounts/blobServices"));
    let blob = ResourceId::parse(
        "/subscriptions/1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st1/blobServices/default",
    )
    .unwrap();
    assert_eq!(
        companion_owner(&blob).unwrap().key(),
        "/subscriptions/1/resourcegroups/rg/providers/microsoft.storage/storageaccounts/st1"
    );
    let web = ResourceId::parse(
        "/subscriptions/1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st1/blobServices/default/containers/$web",
    )
    .unwrap();
    assert_eq!(companion_owner(&web), companion_owner(&blob));
    let account = blob.parent().unwrap();
    assert_eq!(companion_owner(&account), None);
    let record =
        ResourceId::parse("/subscriptions/1/resourceGroups/rg/providers/Microsoft.Network/dnszones/contoso.com/A/www")
            .unwrap();
    assert_eq!(companion_owner(&record), None);
}

#[test]
fn seeds_collapse_duplicates_and_sort_sources() {
    let a = resource(json!({
        "id": "/subscriptions/1/resourceGroups/rg/providers/Microsoft.Web/sites/b",
        "type": "Microsoft.Web/sites",
        "properties": {"hostNames": ["www.contoso.com", "WWW.contoso.com."]}
    }));
    let b = resource(json!({
        "id": "/subscriptions/1/resourceGroups/rg/providers/Microsoft.Web/sites/a",
        "type": "Microsoft.Web/sites",
        "properties": {"hostNames": ["www.contoso.com"]}
    }));
    let extraction = extract_resources(&[a, b], &EnabledChecks::all());
    assert_eq!(extraction.contributions.len(), 3);
    let seeds = extraction.seeds();
    assert_eq!(seeds.len(), 1);
    let sources: Vec<&str> = seeds.values().next().unwrap().iter().map(|s| s.name()).collect();
    assert_eq!(sources, ["a", "b"]);
}

#[test]
fn toggles_switch_checks_off() {
    let gateway = resource(json!({
        "id": "/subscriptions/1/resourceGroups/rg/providers/Microsoft.Network/applicationGateways/agw",
        "type": "microsoft.network/applicationgateways",
        "properties": {
            "frontendIPConfigurations": [{"name": "pub", "properties": {"publicIPAddress": {"id": "x"}}}],
            "httpListeners": [{"properties": {"hostName": "www.contoso.com",
                "frontendIPConfiguration": {"id": "/x/frontendIPConfigurations/pub"}}}]
        }
    }));
    let mut checks = EnabledChecks::all();
    checks.set(ServiceCheck::ApplicationGateways, false);
    assert!(
        extract_resources(std::slice::from_ref(&gateway), &checks)
            .contributions
            .is_empty()
    );
    let all = extract_resources(&[gateway], &EnabledChecks::all());
    assert_eq!(all.contributions.len(), 1);
    assert_eq!(all.contributions[0].check, ServiceCheck::ApplicationGateways);
    assert_eq!(
        all.contributions[0].path,
        "properties.httpListeners[0].properties.hostName"
    );
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// Property names the extractors read, so random bodies reach their code paths.
    const KEYS: &[&str] = &[
        "hostName",
        "hostNames",
        "fqdn",
        "ipAddress",
        "properties",
        "frontendIPConfigurations",
        "publicIPAddress",
        "httpListeners",
        "frontendIPConfiguration",
        "id",
        "name",
        "sslCertificates",
        "publicCertData",
        "dnsSettings",
        "customDomains",
        "configuration",
        "ingress",
        "external",
        "type",
        "ip",
        "locations",
        "documentEndpoint",
        "zoneType",
        "staticWebsite",
        "enabled",
        "primaryEndpoints",
        "web",
        "customDomain",
        "subnetId",
        "network",
        "delegatedSubnetResourceId",
        "publicNetworkAccess",
        "apiServerAccessProfile",
        "enablePrivateCluster",
        "virtualNetworkType",
        "gatewayUrl",
        "hostnameConfigurations",
        "publicIPAddresses",
        "defaultHostname",
        "vaultUri",
        "loginServer",
        "fullyQualifiedDomainName",
        "ipPrefix",
        "cidr",
        "commissionedState",
        "frontendEndpoints",
        "dnsConfig",
        "domainName",
    ];

    fn text() -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            "\\PC{0,24}",
            "[a-z0-9*?_-]{1,10}(\\.[a-z0-9-]{1,10}){0,3}\\.?",
            "https?://[a-z0-9.-]{1,20}(:[0-9]{1,5})?/?",
            "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}(/[0-9]{1,2})?",
            Just("Public".to_string()),
            Just("Disabled".to_string()),
            Just("Commissioned".to_string()),
            Just("MIIB".to_string()),
        ]
        .prop_map(serde_json::Value::from)
    }

    fn body() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            text(),
        ];
        leaf.prop_recursive(5, 96, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
                proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..6).prop_map(|entries| {
                    serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                }),
            ]
        })
    }

    /// Any body, for every registered type: no panic, every seed is already normalised and
    /// every warning names the resource.
    #[test]
    fn random_bodies_never_panic_and_only_yield_normalised_seeds() {
        let reached = crate::test_util::Reached::new("random_bodies_never_panic_and_only_yield_normalised_seeds");
        proptest!(ProptestConfig::with_cases(256), |(properties in body(), index in 0usize..64)| {
            reached.case();
            let extractors = registry();
            let extractor = &extractors[index % extractors.len()];
            // A child type (`microsoft.network/dnszones/a`) needs a name after each type segment.
            let (namespace, types) = extractor.arm_type.split_once('/').unwrap_or((extractor.arm_type, "t"));
            let path: Vec<String> = types.split('/').map(|t| format!("{t}/x")).collect();
            let id = format!("/subscriptions/1/resourceGroups/rg/providers/{namespace}/{}", path.join("/"));
            let resource = Resource {
                id: ResourceId::parse(&id).unwrap(),
                arm_type: extractor.arm_type.to_string(),
                name: "x".into(),
                kind: None,
                location: None,
                properties,
                sku: serde_json::Value::Null,
                tags: serde_json::Value::Null,
            };
            let extraction = extract_resources(std::slice::from_ref(&resource), &EnabledChecks::all());
            if !extraction.contributions.is_empty() || !extraction.warnings.is_empty() {
                reached.hit();
            }
            for c in &extraction.contributions {
                prop_assert_eq!(Seed::from_stored(c.seed.name(), c.seed.kind()), Ok(c.seed.clone()));
                prop_assert!(extractor.checks.contains(&c.check));
                prop_assert_eq!(&c.owner, &resource.id);
            }
            for w in &extraction.warnings {
                prop_assert_eq!(w.resource.as_str(), id.as_str());
            }
        });
        reached.check(0.3);
    }
}
