//! Extraction per service check: realistic resources (shapes from the Azure resource catalogue)
//! with their expected seeds, their exposure negatives, certificates and bad input.

use base64::Engine;
use seedwatch::domain::check::{EnabledChecks, ServiceCheck};
use seedwatch::domain::extract::{Extraction, extract_resources};
use seedwatch::domain::resource::Resource;
use serde_json::{Value, json};

const SUB: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups";
const BUNDLE: &str = include_str!("../fixtures/certs/leaf-and-ca.p7b.b64");
const DER: &str = include_str!("../fixtures/certs/leaf.der.b64");
const PEM: &str = include_str!("../fixtures/certs/leaf.pem");

fn resource(rg: &str, path: &str, arm_type: &str, properties: Value) -> Resource {
    Resource::from_json(json!({
        "id": format!("{SUB}/{rg}/providers/{path}"),
        "type": arm_type,
        "properties": properties,
    }))
    .unwrap()
}

fn extract(resources: &[Resource]) -> Extraction {
    extract_resources(resources, &EnabledChecks::all())
}

/// `name kind` strings of the extracted seeds, sorted.
fn seeds(resources: &[Resource]) -> Vec<String> {
    let mut out: Vec<String> = extract(resources)
        .seeds()
        .keys()
        .map(|s| format!("{} {}", s.name(), s.kind()))
        .collect();
    out.sort();
    out
}

fn seeds_of(r: Resource) -> Vec<String> {
    seeds(&[r])
}

fn sorted(items: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

// ---------- Public IPs and prefixes ----------

fn pip(properties: Value) -> Resource {
    resource(
        "rg-web",
        "Microsoft.Network/publicIPAddresses/pip-agw-prod",
        "microsoft.network/publicipaddresses",
        properties,
    )
}

#[test]
fn public_ip_yields_address_and_dns_label_never_reverse_fqdn() {
    let r = pip(json!({
        "provisioningState": "Succeeded", "ipAddress": "203.0.113.10", "publicIPAddressVersion": "IPv4",
        "publicIPAllocationMethod": "Static",
        "dnsSettings": {"domainNameLabel": "contoso-agw", "fqdn": "contoso-agw.westeurope.cloudapp.azure.com",
                        "reverseFqdn": "www.contoso.com."}
    }));
    assert_eq!(
        seeds_of(r.clone()),
        sorted(&["203.0.113.10 ipv4", "contoso-agw.westeurope.cloudapp.azure.com domain"])
    );
    let extraction = extract(&[r]);
    let paths: Vec<&str> = extraction.contributions.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, ["properties.ipAddress", "properties.dnsSettings.fqdn"]);
    assert!(
        extraction
            .contributions
            .iter()
            .all(|c| c.check == ServiceCheck::PublicIpAddresses && c.owner.name() == "pip-agw-prod")
    );
}

#[test]
fn public_ipv6_is_canonical_and_unallocated_ip_keeps_its_label() {
    assert_eq!(
        seeds_of(pip(
            json!({"ipAddress": "2603:1020:0200:0000:0000:0000:0000:0005", "publicIPAddressVersion": "IPv6"})
        )),
        ["2603:1020:200::5 ipv6"]
    );
    assert_eq!(
        seeds_of(pip(json!({"publicIPAllocationMethod": "Dynamic",
            "dnsSettings": {"fqdn": "devbox.westeurope.cloudapp.azure.com"}}))),
        ["devbox.westeurope.cloudapp.azure.com domain"]
    );
    assert!(seeds_of(pip(json!({"publicIPAllocationMethod": "Dynamic", "ipAddress": ""}))).is_empty());
}

#[test]
fn public_ip_with_a_name_where_an_address_belongs_is_a_warning() {
    let extraction = extract(&[pip(json!({"ipAddress": "www.contoso.com"}))]);
    assert!(extraction.contributions.is_empty());
    assert_eq!(extraction.warnings.len(), 1);
    assert_eq!(extraction.warnings[0].path, "properties.ipAddress");
    let private = extract(&[pip(json!({"ipAddress": "10.0.0.4"}))]);
    assert!(private.contributions.is_empty());
    assert!(private.warnings[0].message.contains("not a public address"));
}

#[test]
fn special_purpose_addresses_and_ranges_are_warnings_like_rfc_1918() {
    for address in ["::ffff:10.0.0.1", "100.64.0.1", "0.0.0.1", "240.0.0.1", "198.18.0.1"] {
        let extraction = extract(&[pip(json!({"ipAddress": address}))]);
        assert!(extraction.contributions.is_empty(), "{address}");
        assert_eq!(extraction.warnings.len(), 1, "{address}");
        assert!(
            extraction.warnings[0].message.contains("not a public address"),
            "{address}"
        );
        assert!(extraction.warnings[0].message.contains(address), "{address}");
    }
    for cidr in ["172.0.0.0/8", "128.0.0.0/1", "100.64.0.0/10"] {
        let prefix = resource(
            "rg-net",
            "Microsoft.Network/publicIPPrefixes/ippre-wide",
            "microsoft.network/publicipprefixes",
            json!({"ipPrefix": cidr, "publicIPAddressVersion": "IPv4"}),
        );
        let extraction = extract(&[prefix]);
        assert!(extraction.contributions.is_empty(), "{cidr}");
        assert_eq!(extraction.warnings.len(), 1, "{cidr}");
        assert!(
            extraction.warnings[0].message.contains("not a public address"),
            "{cidr}"
        );
    }
}

#[test]
fn prefixes_are_ranges_and_custom_prefixes_only_when_commissioned() {
    let prefix = resource(
        "rg-net",
        "Microsoft.Network/publicIPPrefixes/ippre-egress",
        "microsoft.network/publicipprefixes",
        json!({"prefixLength": 28, "ipPrefix": "198.51.100.16/28", "publicIPAddressVersion": "IPv4"}),
    );
    assert_eq!(seeds_of(prefix), ["198.51.100.16/28 iprange"]);
    let custom = |state: &str| {
        resource(
            "rg-net",
            "Microsoft.Network/customIpPrefixes/byoip",
            "microsoft.network/customipprefixes",
            json!({"cidr": "192.0.2.0/24", "commissionedState": state}),
        )
    };
    assert_eq!(seeds_of(custom("Commissioned")), ["192.0.2.0/24 iprange"]);
    for state in [
        "Provisioned",
        "Commissioning",
        "Decommissioning",
        "Decommissioned",
        "Deprovisioned",
    ] {
        assert!(seeds_of(custom(state)).is_empty(), "{state}");
    }
    let v6 = resource(
        "rg-net",
        "Microsoft.Network/publicIPPrefixes/ippre-v6",
        "microsoft.network/publicipprefixes",
        json!({"ipPrefix": "2001:db8:1234::/124"}),
    );
    assert_eq!(seeds_of(v6), ["2001:db8:1234::/124 iprange"]);
}

// ---------- Application Gateways ----------

fn gateway(frontends: Value, listeners: Value, certificates: Value) -> Resource {
    resource(
        "rg-web",
        "Microsoft.Network/applicationGateways/agw-prod",
        "microsoft.network/applicationgateways",
        json!({
            "provisioningState": "Succeeded", "operationalState": "Stopped",
            "frontendIPConfigurations": frontends,
            "httpListeners": listeners,
            "sslCertificates": certificates,
        }),
    )
}

fn public_and_private_frontends() -> Value {
    json!([
        {"name": "appGwPublicFrontendIp", "id": "…/applicationGateways/agw-prod/frontendIPConfigurations/appGwPublicFrontendIp",
         "properties": {"publicIPAddress": {"id": "/subscriptions/0/resourceGroups/rg-web/providers/Microsoft.Network/publicIPAddresses/pip-agw-prod"}}},
        {"name": "appGwPrivateFrontendIp", "id": "…/frontendIPConfigurations/appGwPrivateFrontendIp",
         "properties": {"privateIPAddress": "10.10.0.10", "privateIPAllocationMethod": "Static"}}
    ])
}

fn listener(frontend: &str, host: Value) -> Value {
    let mut properties = json!({"protocol": "Https",
        "frontendIPConfiguration": {"id": format!("…/frontendIPConfigurations/{frontend}")}});
    if let Value::Object(extra) = host {
        properties.as_object_mut().unwrap().extend(extra);
    }
    json!({"name": "l", "properties": properties})
}

#[test]
fn gateway_listener_host_names_on_public_frontends_only() {
    let r = gateway(
        public_and_private_frontends(),
        json!([
            listener("appGwPublicFrontendIp", json!({"hostName": "www.contoso.com"})),
            listener(
                "APPGWPUBLICFRONTENDIP",
                json!({"hostNames": ["api.contoso.com", "*.apps.contoso.com"]})
            ),
            listener(
                "appGwPrivateFrontendIp",
                json!({"hostName": "intranet.contoso.com", "hostNames": ["hr.contoso.com"]})
            ),
            listener("appGwPublicFrontendIp", json!({})),
        ]),
        json!([]),
    );
    let extraction = extract(std::slice::from_ref(&r));
    let mut paths: Vec<&str> = extraction.contributions.iter().map(|c| c.path.as_str()).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "properties.httpListeners[0].properties.hostName",
            "properties.httpListeners[1].properties.hostNames[0]",
            "properties.httpListeners[1].properties.hostNames[1]",
        ]
    );
    assert_eq!(
        seeds_of(r),
        sorted(&[
            "www.contoso.com domain",
            "api.contoso.com domain",
            "apps.contoso.com domain"
        ])
    );
}

#[test]
fn gateway_with_private_frontend_only_yields_nothing_even_from_certificates() {
    let r = gateway(
        json!([{"name": "private", "properties": {"privateIPAddress": "10.20.0.10"}}]),
        json!([listener("private", json!({"hostName": "hr.contoso.com"}))]),
        json!([{"name": "c", "properties": {"publicCertData": BUNDLE}}]),
    );
    let extraction = extract(&[r]);
    assert!(extraction.contributions.is_empty());
    assert!(extraction.warnings.is_empty());
}

#[test]
fn gateway_certificate_names_come_from_the_pkcs7_leaf_not_the_ca() {
    let r = gateway(
        public_and_private_frontends(),
        json!([]),
        json!([
            {"name": "contoso-gateway", "properties": {"provisioningState": "Succeeded", "publicCertData": BUNDLE}},
            {"name": "kv-cert", "properties": {"keyVaultSecretId": "https://kv-web.vault.azure.net/secrets/api-contoso-com/"}}
        ]),
    );
    let extraction = extract(std::slice::from_ref(&r));
    assert!(extraction.warnings.is_empty(), "{:?}", extraction.warnings);
    assert!(
        extraction
            .contributions
            .iter()
            .all(|c| c.check == ServiceCheck::ApplicationGatewayCertificates
                && c.path == "properties.sslCertificates[0].properties.publicCertData")
    );
    assert_eq!(
        seeds_of(r),
        sorted(&[
            "gateway.contoso.com domain",
            "checkout.contoso.com domain",
            "shop.contoso.com domain"
        ])
    );
}

#[test]
fn gateway_certificates_in_der_and_pem_and_one_bad_among_good() {
    let pem_b64 = base64::engine::general_purpose::STANDARD.encode(PEM);
    let r = gateway(
        public_and_private_frontends(),
        json!([]),
        json!([
            {"name": "der", "properties": {"publicCertData": DER}},
            {"name": "garbage", "properties": {"publicCertData": "bm90IGEgY2VydGlmaWNhdGU="}},
            {"name": "not-base64", "properties": {"publicCertData": "%%%"}},
            {"name": "pem", "properties": {"publicCertData": pem_b64}},
            {"name": "number", "properties": {"publicCertData": 12}},
        ]),
    );
    let extraction = extract(std::slice::from_ref(&r));
    let warned: Vec<&str> = extraction.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        warned,
        [
            "properties.sslCertificates[1].properties.publicCertData",
            "properties.sslCertificates[2].properties.publicCertData",
            "properties.sslCertificates[4].properties.publicCertData",
        ]
    );
    assert_eq!(
        seeds_of(r),
        sorted(&[
            "legacy.contoso.com domain",
            "pem.contoso.com domain",
            "alt.contoso.com domain"
        ])
    );
}

/// A certs-only SignedData built by hand: one good certificate and one that is a SEQUENCE but
/// not a certificate. The good one must still count.
#[test]
fn a_bad_certificate_inside_a_bundle_costs_only_itself() {
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else if len < 0x100 {
            out.extend([0x81, len as u8]);
        } else {
            out.extend([0x82, (len >> 8) as u8, len as u8]);
        }
        out.extend_from_slice(content);
        out
    }
    let good = base64::engine::general_purpose::STANDARD.decode(DER.trim()).unwrap();
    let bad = tlv(0x30, &tlv(0x02, &[1]));
    let signed_data_oid = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
    let data_oid = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
    let mut certs = good.clone();
    certs.extend(&bad);
    let mut signed = tlv(0x02, &[1]);
    signed.extend(tlv(0x31, &[]));
    signed.extend(tlv(0x30, &data_oid));
    signed.extend(tlv(0xa0, &certs));
    signed.extend(tlv(0x31, &[]));
    let mut content_info = signed_data_oid.to_vec();
    content_info.extend(tlv(0xa0, &tlv(0x30, &signed)));
    let blob = tlv(0x30, &content_info);
    let data = base64::engine::general_purpose::STANDARD.encode(blob);

    let names = seedwatch::domain::extract::certificate_names(&data).unwrap();
    assert_eq!(names.names, ["legacy.contoso.com"]);
    assert_eq!(names.errors.len(), 1);

    let r = gateway(
        public_and_private_frontends(),
        json!([]),
        json!([{"name": "mixed", "properties": {"publicCertData": data}}]),
    );
    let extraction = extract(std::slice::from_ref(&r));
    assert_eq!(extraction.warnings.len(), 1);
    assert!(
        extraction.warnings[0].message.contains("certificate 1"),
        "{:?}",
        extraction.warnings
    );
    assert_eq!(seeds_of(r), ["legacy.contoso.com domain"]);
}

// ---------- Front Door, AFD, CDN, Traffic Manager ----------

#[test]
fn front_door_classic_frontends() {
    let r = resource(
        "rg-edge",
        "Microsoft.Network/frontdoors/fd-contoso",
        "microsoft.network/frontdoors",
        json!({"enabledState": "Disabled", "cname": "fd-contoso.azurefd.net", "frontendEndpoints": [
            {"name": "a", "properties": {"hostName": "fd-contoso.azurefd.net"}},
            {"name": "b", "properties": {"hostName": "www.contoso.com", "customHttpsProvisioningState": "Enabled"}}],
            "backendPools": [{"properties": {"backends": [{"address": "origin.fabrikam.example"}]}}]}),
    );
    assert_eq!(
        seeds_of(r),
        sorted(&["fd-contoso.azurefd.net domain", "www.contoso.com domain"])
    );
}

#[test]
fn afd_endpoints_and_custom_domains() {
    let endpoint = resource(
        "rg-edge",
        "Microsoft.Cdn/profiles/afd-contoso/afdendpoints/web-prod",
        "microsoft.cdn/profiles/afdendpoints",
        json!({"hostName": "web-prod-b2c3d4e5f6g7h8i9.z01.azurefd.net", "enabledState": "Enabled"}),
    );
    let domain = resource(
        "rg-edge",
        "Microsoft.Cdn/profiles/afd-contoso/customdomains/www-contoso-com",
        "Microsoft.Cdn/profiles/customdomains",
        json!({"hostName": "www.contoso.com", "domainValidationState": "Pending"}),
    );
    let profile = resource(
        "rg-edge",
        "Microsoft.Cdn/profiles/afd-contoso",
        "microsoft.cdn/profiles",
        json!({"frontDoorId": "x"}),
    );
    assert_eq!(
        seeds(&[endpoint, domain, profile]),
        sorted(&[
            "web-prod-b2c3d4e5f6g7h8i9.z01.azurefd.net domain",
            "www.contoso.com domain"
        ])
    );
}

#[test]
fn cdn_endpoint_host_and_inline_custom_domains_not_origins() {
    let r = resource(
        "rg-edge",
        "Microsoft.Cdn/profiles/cdn-contoso/endpoints/contoso-assets",
        "microsoft.cdn/profiles/endpoints",
        json!({"hostName": "contoso-assets.azureedge.net", "resourceState": "Stopped",
               "originHostHeader": "stcontosoweb.z6.web.core.windows.net",
               "origins": [{"name": "o", "properties": {"hostName": "stcontosoweb.z6.web.core.windows.net"}}],
               "customDomains": [{"name": "assets", "properties": {"hostName": "assets.contoso.com"}}]}),
    );
    assert_eq!(
        seeds_of(r),
        sorted(&["contoso-assets.azureedge.net domain", "assets.contoso.com domain"])
    );
}

#[test]
fn traffic_manager_profile_fqdn_not_endpoint_targets() {
    let r = resource(
        "rg-edge",
        "Microsoft.Network/trafficManagerProfiles/tm-contoso",
        "microsoft.network/trafficmanagerprofiles",
        json!({"profileStatus": "Enabled",
               "dnsConfig": {"relativeName": "tm-contoso", "fqdn": "tm-contoso.trafficmanager.net", "ttl": 60},
               "endpoints": [{"name": "dr", "properties": {"target": "dr.contoso-hosting.example"}}]}),
    );
    assert_eq!(seeds_of(r), ["tm-contoso.trafficmanager.net domain"]);
}

// ---------- DNS ----------

fn zone(name: &str, zone_type: Option<&str>) -> Resource {
    let mut properties = json!({"numberOfRecordSets": 3, "nameServers": ["ns1-07.azure-dns.com."]});
    if let Some(t) = zone_type {
        properties["zoneType"] = json!(t);
    }
    Resource::from_json(json!({
        "id": format!("{SUB}/rg-dns/providers/Microsoft.Network/dnszones/{name}"),
        "name": name, "type": "microsoft.network/dnszones", "properties": properties,
    }))
    .unwrap()
}

fn record(zone: &str, kind: &str, name: &str, properties: Value) -> Resource {
    Resource::from_json(json!({
        "id": format!("{SUB}/rg-dns/providers/Microsoft.Network/dnszones/{zone}/{kind}/{name}"),
        "name": name, "type": format!("microsoft.network/dnszones/{}", kind.to_ascii_lowercase()),
        "properties": properties,
    }))
    .unwrap()
}

#[test]
fn public_zones_seed_their_apex_private_zones_do_not() {
    assert_eq!(seeds_of(zone("contoso.com", Some("Public"))), ["contoso.com domain"]);
    assert_eq!(seeds_of(zone("Fabrikam.COM", None)), ["fabrikam.com domain"]);
    assert!(seeds_of(zone("corp.contoso.com", Some("Private"))).is_empty());
    let private_dns = resource(
        "rg-dns",
        "Microsoft.Network/privateDnsZones/privatelink.blob.core.windows.net",
        "microsoft.network/privatednszones",
        json!({}),
    );
    assert!(seeds_of(private_dns).is_empty());
}

#[test]
fn record_sets_seed_their_own_name_never_values() {
    let records = [
        record(
            "contoso.com",
            "A",
            "www",
            json!({"fqdn": "www.contoso.com.", "ARecords": [{"ipv4Address": "198.51.100.77"}]}),
        ),
        record(
            "contoso.com",
            "AAAA",
            "v6",
            json!({"AAAARecords": [{"ipv6Address": "2001:db8::77"}]}),
        ),
        record(
            "contoso.com",
            "CNAME",
            "*.apps",
            json!({"fqdn": "*.apps.contoso.com.", "CNAMERecord": {"cname": "agw.westeurope.cloudapp.azure.com"}}),
        ),
        record(
            "contoso.com",
            "A",
            "@",
            json!({"ARecords": [{"ipv4Address": "203.0.113.1"}]}),
        ),
        record(
            "contoso.com",
            "CNAME",
            "_dmarc",
            json!({"fqdn": "_dmarc.contoso.com.", "CNAMERecord": {"cname": "x.example"}}),
        ),
        record(
            "contoso.com",
            "CNAME",
            "selector1._domainkey",
            json!({"CNAMERecord": {"cname": "selector1._domainkey.contoso.onmicrosoft.com"}}),
        ),
        record(
            "contoso.com",
            "TXT",
            "@",
            json!({"fqdn": "contoso.com.", "TXTRecords": [{"value": ["v=spf1 -all"]}]}),
        ),
        record(
            "contoso.com",
            "MX",
            "@",
            json!({"fqdn": "contoso.com.", "MXRecords": [{"exchange": "mail.fabrikam.example"}]}),
        ),
    ];
    assert_eq!(
        seeds(&records),
        sorted(&[
            "www.contoso.com domain",
            "v6.contoso.com domain",
            "apps.contoso.com domain",
            "contoso.com domain"
        ])
    );
}

#[test]
fn records_of_a_zone_known_to_be_private_are_not_seeded() {
    let input = [
        zone("corp.contoso.com", Some("Private")),
        record("corp.contoso.com", "A", "db", json!({"fqdn": "db.corp.contoso.com."})),
        zone("contoso.com", Some("Public")),
        record("contoso.com", "A", "www", json!({"fqdn": "www.contoso.com."})),
    ];
    assert_eq!(seeds(&input), sorted(&["contoso.com domain", "www.contoso.com domain"]));
    // Without the zone in the input, the record's zone is not known to be private.
    assert_eq!(
        seeds_of(record(
            "corp.contoso.com",
            "A",
            "db",
            json!({"fqdn": "db.corp.contoso.com."})
        )),
        ["db.corp.contoso.com domain"]
    );
}

// ---------- Storage ----------

fn account(name: &str, extra: Value) -> Resource {
    let mut properties = json!({
        "publicNetworkAccess": "Enabled",
        "primaryEndpoints": {"blob": format!("https://{name}.blob.core.windows.net/"),
                             "web": format!("https://{name}.z6.web.core.windows.net/")},
        "secondaryEndpoints": {"web": format!("https://{name}-secondary.z6.web.core.windows.net/")},
    });
    properties
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    resource(
        "rg-web",
        &format!("Microsoft.Storage/storageAccounts/{name}"),
        "microsoft.storage/storageaccounts",
        properties,
    )
}

fn blob_services(account: &str, website: Value) -> Resource {
    Resource::from_json(json!({
        "id": format!("{SUB}/rg-web/providers/Microsoft.Storage/storageAccounts/{account}/blobServices/default"),
        "name": "default", "type": "Microsoft.Storage/storageAccounts/blobServices",
        "properties": {"staticWebsite": website},
    }))
    .unwrap()
}

#[test]
fn static_website_endpoint_only_when_known_enabled() {
    let on = [
        account("stweb", json!({"customDomain": {"name": "static.contoso.com"}})),
        blob_services("stweb", json!({"enabled": true, "indexDocument": "index.html"})),
    ];
    assert_eq!(
        seeds(&on),
        sorted(&["stweb.z6.web.core.windows.net domain", "static.contoso.com domain"])
    );
    let off = [
        account("stweb", json!({"customDomain": {"name": "static.contoso.com"}})),
        blob_services("stweb", json!({"enabled": false})),
    ];
    assert_eq!(seeds(&off), ["static.contoso.com domain"]);
    assert!(seeds(&[account("stweb", json!({}))]).is_empty(), "unknown: not seeded");
    let other_account = [
        account("stweb", json!({})),
        blob_services("stother", json!({"enabled": true})),
    ];
    assert!(seeds(&other_account).is_empty());
    let on_the_account = account("stweb", json!({"staticWebsite": {"enabled": true}}));
    assert_eq!(seeds_of(on_the_account), ["stweb.z6.web.core.windows.net domain"]);
    let disabled = [
        account(
            "stweb",
            json!({"publicNetworkAccess": "Disabled", "customDomain": {"name": "static.contoso.com"}}),
        ),
        blob_services("stweb", json!({"enabled": true})),
    ];
    assert!(seeds(&disabled).is_empty());
}

// ---------- App Service, Static Web Apps, APIM ----------

#[test]
fn app_services_and_slots_seed_every_host_name() {
    let site = resource(
        "rg-web",
        "Microsoft.Web/sites/app-contoso-api",
        "microsoft.web/sites",
        json!({"state": "Stopped", "enabled": true,
               "hostNames": ["app-contoso-api.azurewebsites.net", "api.contoso.com"],
               "enabledHostNames": ["app-contoso-api.scm.azurewebsites.net"],
               "outboundIpAddresses": "198.51.100.20,198.51.100.21"}),
    );
    let slot = resource(
        "rg-web",
        "Microsoft.Web/sites/app-contoso-api/slots/staging",
        "Microsoft.Web/sites/slots",
        json!({"hostNames": ["app-contoso-api-staging.azurewebsites.net", "staging.contoso.com"]}),
    );
    assert_eq!(
        seeds(&[site, slot]),
        sorted(&[
            "app-contoso-api.azurewebsites.net domain",
            "api.contoso.com domain",
            "app-contoso-api-staging.azurewebsites.net domain",
            "staging.contoso.com domain"
        ])
    );
    let disabled = resource(
        "rg-web",
        "Microsoft.Web/sites/internal",
        "microsoft.web/sites",
        json!({"publicNetworkAccess": "Disabled", "hostNames": ["internal.azurewebsites.net"]}),
    );
    assert!(seeds_of(disabled).is_empty());
}

#[test]
fn static_web_apps_default_and_custom_domains() {
    let r = resource(
        "rg-web",
        "Microsoft.Web/staticSites/docs",
        "microsoft.web/staticsites",
        json!({"defaultHostname": "gentle-river-0a1b2c3d4.5.azurestaticapps.net",
               "customDomains": ["docs.contoso.com", {"domainName": "help.contoso.com"}]}),
    );
    assert_eq!(
        seeds_of(r),
        sorted(&[
            "gentle-river-0a1b2c3d4.5.azurestaticapps.net domain",
            "docs.contoso.com domain",
            "help.contoso.com domain"
        ])
    );
}

#[test]
fn api_management_gateway_host_names_and_ips_unless_internal() {
    let apim = |vnet: &str| {
        resource(
            "rg-api",
            "Microsoft.ApiManagement/service/apim-contoso",
            "microsoft.apimanagement/service",
            json!({"gatewayUrl": "https://apim-contoso.azure-api.net",
                   "developerPortalUrl": "https://apim-contoso.developer.azure-api.net",
                   "publicIPAddresses": ["203.0.113.40"], "privateIPAddresses": ["10.0.0.5"],
                   "virtualNetworkType": vnet,
                   "hostnameConfigurations": [
                       {"type": "Proxy", "hostName": "apim-contoso.azure-api.net"},
                       {"type": "Proxy", "hostName": "api.contoso.com", "certificateSource": "KeyVault"}]}),
        )
    };
    let expected = sorted(&[
        "apim-contoso.azure-api.net domain",
        "api.contoso.com domain",
        "203.0.113.40 ipv4",
    ]);
    assert_eq!(seeds_of(apim("None")), expected);
    assert_eq!(seeds_of(apim("External")), expected);
    assert!(seeds_of(apim("Internal")).is_empty());
}

// ---------- Data services ----------

#[test]
fn sql_servers_unless_public_access_is_disabled() {
    let sql = |pna: Value| {
        resource(
            "rg-data",
            "Microsoft.Sql/servers/sql-contoso",
            "microsoft.sql/servers",
            json!({"fullyQualifiedDomainName": "sql-contoso.database.windows.net", "publicNetworkAccess": pna}),
        )
    };
    assert_eq!(
        seeds_of(sql(json!("Enabled"))),
        ["sql-contoso.database.windows.net domain"]
    );
    assert_eq!(seeds_of(sql(json!(null))), ["sql-contoso.database.windows.net domain"]);
    assert_eq!(
        seeds_of(sql(json!("SecuredByPerimeter"))),
        ["sql-contoso.database.windows.net domain"]
    );
    assert!(seeds_of(sql(json!("Disabled"))).is_empty());
    assert!(seeds_of(sql(json!("disabled"))).is_empty());
}

#[test]
fn cosmos_account_and_regional_endpoints() {
    let r = resource(
        "rg-data",
        "Microsoft.DocumentDB/databaseAccounts/cosmos-contoso",
        "microsoft.documentdb/databaseaccounts",
        json!({"documentEndpoint": "https://cosmos-contoso.documents.azure.com:443/",
               "publicNetworkAccess": "Enabled", "ipRules": [{"ipAddressOrRange": "203.0.113.0/24"}],
               "locations": [
                   {"locationName": "West Europe", "documentEndpoint": "https://cosmos-contoso-westeurope.documents.azure.com:443/"},
                   {"locationName": "North Europe", "documentEndpoint": "https://cosmos-contoso-northeurope.documents.azure.com:443/"}]}),
    );
    assert_eq!(
        seeds_of(r),
        sorted(&[
            "cosmos-contoso.documents.azure.com domain",
            "cosmos-contoso-westeurope.documents.azure.com domain",
            "cosmos-contoso-northeurope.documents.azure.com domain"
        ])
    );
}

#[test]
fn redis_unless_injected_into_a_subnet() {
    let cache = resource(
        "rg-data",
        "Microsoft.Cache/Redis/redis-contoso",
        "microsoft.cache/redis",
        json!({"hostName": "redis-contoso.redis.cache.windows.net", "publicNetworkAccess": "Enabled"}),
    );
    assert_eq!(seeds_of(cache), ["redis-contoso.redis.cache.windows.net domain"]);
    let injected = resource(
        "rg-data",
        "Microsoft.Cache/Redis/redis-vnet",
        "microsoft.cache/redis",
        json!({"hostName": "redis-vnet.redis.cache.windows.net", "subnetId": "/subscriptions/0/x/subnets/s"}),
    );
    assert!(seeds_of(injected).is_empty());
    let enterprise = resource(
        "rg-data",
        "Microsoft.Cache/redisEnterprise/amr-contoso",
        "microsoft.cache/redisenterprise",
        json!({"hostName": "amr-contoso.westeurope.redis.azure.net"}),
    );
    assert_eq!(seeds_of(enterprise), ["amr-contoso.westeurope.redis.azure.net domain"]);
}

#[test]
fn flexible_servers_unless_vnet_integrated() {
    let server = |arm_type: &str, network: Value| {
        resource(
            "rg-data",
            "Microsoft.DBforPostgreSQL/flexibleServers/psql",
            arm_type,
            json!({"fullyQualifiedDomainName": "psql.postgres.database.azure.com", "state": "Stopped", "network": network}),
        )
    };
    let pg = "microsoft.dbforpostgresql/flexibleservers";
    let my = "microsoft.dbformysql/flexibleservers";
    assert_eq!(
        seeds_of(server(pg, json!({"publicNetworkAccess": "Enabled"}))),
        ["psql.postgres.database.azure.com domain"]
    );
    assert_eq!(
        seeds_of(server(my, json!({}))),
        ["psql.postgres.database.azure.com domain"]
    );
    assert!(seeds_of(server(pg, json!({"publicNetworkAccess": "Disabled"}))).is_empty());
    assert!(
        seeds_of(server(
            pg,
            json!({"delegatedSubnetResourceId": "/subscriptions/0/x/subnets/s"})
        ))
        .is_empty()
    );
    assert!(
        seeds_of(server(
            my,
            json!({"delegatedSubnetResourceId": "/subscriptions/0/x/subnets/s", "publicNetworkAccess": "Disabled"})
        ))
        .is_empty()
    );
}

#[test]
fn key_vaults_and_registries() {
    let vault = |pna: &str| {
        resource(
            "rg-web",
            "Microsoft.KeyVault/vaults/kv-web",
            "microsoft.keyvault/vaults",
            json!({"vaultUri": "https://kv-web.vault.azure.net/", "publicNetworkAccess": pna,
                   "networkAcls": {"defaultAction": "Deny", "ipRules": [{"value": "203.0.113.0/24"}]}}),
        )
    };
    assert_eq!(seeds_of(vault("Enabled")), ["kv-web.vault.azure.net domain"]);
    assert!(seeds_of(vault("Disabled")).is_empty());
    let registry = |pna: &str| {
        resource(
            "rg-web",
            "Microsoft.ContainerRegistry/registries/crcontoso",
            "microsoft.containerregistry/registries",
            json!({"loginServer": "crcontoso.azurecr.io", "publicNetworkAccess": pna,
                   "dataEndpointHostNames": ["crcontoso.westeurope.data.azurecr.io"]}),
        )
    };
    assert_eq!(seeds_of(registry("Enabled")), ["crcontoso.azurecr.io domain"]);
    assert!(seeds_of(registry("Disabled")).is_empty());
}

// ---------- Containers ----------

#[test]
fn aks_public_api_server_only() {
    let cluster = |private: bool| {
        resource(
            "rg-k8s",
            "Microsoft.ContainerService/managedClusters/aks-prod",
            "microsoft.containerservice/managedclusters",
            json!({"fqdn": "aks-prod-1a2b3c4d.hcp.westeurope.azmk8s.io",
                   "azurePortalFQDN": "aks-prod-1a2b3c4d.portal.hcp.westeurope.azmk8s.io",
                   "privateFQDN": "aks-prod-1a2b3c4d.privatelink.westeurope.azmk8s.io",
                   "powerState": {"code": "Stopped"},
                   "apiServerAccessProfile": {"enablePrivateCluster": private}}),
        )
    };
    assert_eq!(
        seeds_of(cluster(false)),
        ["aks-prod-1a2b3c4d.hcp.westeurope.azmk8s.io domain"]
    );
    assert!(seeds_of(cluster(true)).is_empty());
}

#[test]
fn container_apps_with_external_ingress_only() {
    let app = |ingress: Value| {
        resource(
            "rg-apps",
            "Microsoft.App/containerApps/ca-orders",
            "microsoft.app/containerapps",
            json!({"configuration": {"ingress": ingress}, "outboundIpAddresses": ["198.51.100.30"]}),
        )
    };
    let external = json!({"external": true, "fqdn": "ca-orders.blueforest-1a2b3c4d.westeurope.azurecontainerapps.io",
                          "customDomains": [{"name": "orders.contoso.com", "bindingType": "SniEnabled"}]});
    assert_eq!(
        seeds_of(app(external)),
        sorted(&[
            "ca-orders.blueforest-1a2b3c4d.westeurope.azurecontainerapps.io domain",
            "orders.contoso.com domain"
        ])
    );
    assert!(
        seeds_of(app(
            json!({"external": false, "fqdn": "ca.internal.blueforest.westeurope.azurecontainerapps.io"})
        ))
        .is_empty()
    );
    assert!(seeds_of(app(json!(null))).is_empty());
}

#[test]
fn container_instances_with_public_addresses_only() {
    let group = |kind: &str, ip: &str| {
        resource(
            "rg-apps",
            "Microsoft.ContainerInstance/containerGroups/ci",
            "microsoft.containerinstance/containergroups",
            json!({"ipAddress": {"type": kind, "ip": ip, "fqdn": "ci-scanner.westeurope.azurecontainer.io"}}),
        )
    };
    assert_eq!(
        seeds_of(group("Public", "203.0.113.50")),
        sorted(&["203.0.113.50 ipv4", "ci-scanner.westeurope.azurecontainer.io domain"])
    );
    assert!(seeds_of(group("Private", "10.30.0.4")).is_empty());
}

// ---------- Toggles ----------

#[test]
fn every_check_can_be_turned_off() {
    let estate = seedwatch::adapters::estate_file::read_estate_file(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/estate.json"),
    )
    .unwrap();
    let all = extract_resources(&estate.resources, &EnabledChecks::all());
    for check in ServiceCheck::ALL {
        assert!(
            all.contributions.iter().any(|c| c.check == *check),
            "the example estate has no seed for {check}"
        );
        let mut checks = EnabledChecks::all();
        checks.set(*check, false);
        let without = extract_resources(&estate.resources, &checks);
        assert!(without.contributions.iter().all(|c| c.check != *check), "{check}");
        assert_eq!(
            without.contributions.len(),
            all.contributions.iter().filter(|c| c.check != *check).count(),
            "turning {check} off removes exactly its seeds"
        );
    }
    assert!(
        extract_resources(&estate.resources, &EnabledChecks::none())
            .contributions
            .is_empty()
    );
}

// ---------- Bad input ----------

#[test]
fn resources_without_or_with_wrong_properties_are_warnings() {
    let bare = Resource::from_json(json!({
        "id": format!("{SUB}/rg/providers/Microsoft.Sql/servers/s1"), "type": "Microsoft.Sql/servers"
    }))
    .unwrap();
    let text = Resource::from_json(json!({
        "id": format!("{SUB}/rg/providers/Microsoft.Sql/servers/s2"), "type": "Microsoft.Sql/servers",
        "properties": "oops"
    }))
    .unwrap();
    let zone_without = Resource::from_json(json!({
        "id": format!("{SUB}/rg/providers/Microsoft.Network/dnszones/contoso.com"), "type": "Microsoft.Network/dnszones"
    }))
    .unwrap();
    let extraction = extract(&[bare, text, zone_without]);
    assert_eq!(extraction.warnings.len(), 2, "{:?}", extraction.warnings);
    assert!(extraction.warnings.iter().all(|w| w.path == "properties"));
    assert!(extraction.warnings[0].resource.ends_with("/s1"));
    assert!(extraction.warnings[1].message.contains("a string"));
    // A zone needs only its name.
    assert_eq!(extraction.contributions.len(), 1);
}

#[test]
fn wrong_json_types_are_warnings_with_paths() {
    let r = resource(
        "rg-web",
        "Microsoft.Network/applicationGateways/agw",
        "microsoft.network/applicationgateways",
        json!({
            "frontendIPConfigurations": [{"name": "pub", "properties": {"publicIPAddress": {"id": "x"}}}],
            "httpListeners": [
                {"properties": {"frontendIPConfiguration": {"id": "/pub"}, "hostName": 42}},
                {"properties": {"frontendIPConfiguration": {"id": "/pub"}, "hostNames": "www.contoso.com"}},
                {"properties": {"frontendIPConfiguration": {"id": "/pub"}, "hostNames": [true, null, "ok.contoso.com"]}}
            ],
            "sslCertificates": {"not": "a list"}
        }),
    );
    let extraction = extract(std::slice::from_ref(&r));
    let mut warned: Vec<(&str, &str)> = extraction
        .warnings
        .iter()
        .map(|w| (w.path.as_str(), w.message.as_str()))
        .collect();
    warned.sort();
    assert_eq!(
        warned,
        [
            (
                "properties.httpListeners[0].properties.hostName",
                "expected a string, found a number (42)"
            ),
            (
                "properties.httpListeners[1].properties.hostNames",
                "expected a list of strings, found a string"
            ),
            (
                "properties.httpListeners[2].properties.hostNames[0]",
                "expected a string, found a boolean (true)"
            ),
            ("properties.sslCertificates", "expected a list, found an object"),
        ]
    );
    assert_eq!(seeds_of(r), ["ok.contoso.com domain"]);
    let sql = resource(
        "rg",
        "Microsoft.Sql/servers/s",
        "microsoft.sql/servers",
        json!({"fullyQualifiedDomainName": ["a.example.com"]}),
    );
    assert_eq!(
        extract(&[sql]).warnings[0].message,
        "expected a string, found a list of 1 items"
    );
}

#[test]
fn a_hundred_thousand_host_names_in_one_resource() {
    let hosts: Vec<String> = (0..100_000).map(|i| format!("h{i}.contoso.com")).collect();
    let mut bad: Vec<Value> = (0..100_000).map(|i| json!(format!("bad host {i}"))).collect();
    bad.push(json!("tail.contoso.com"));
    let good = resource(
        "rg-web",
        "Microsoft.Web/sites/big",
        "microsoft.web/sites",
        json!({"hostNames": hosts}),
    );
    let junk = resource(
        "rg-web",
        "Microsoft.Web/sites/junk",
        "microsoft.web/sites",
        json!({"hostNames": bad}),
    );
    let extraction = extract(&[good, junk]);
    assert_eq!(extraction.seeds().len(), 100_001);
    assert_eq!(extraction.warnings.len(), 100_000);
    assert_eq!(extraction.warnings[99_999].path, "properties.hostNames[99999]");
}

#[test]
fn control_characters_and_odd_text_are_warnings_not_panics() {
    let r = resource(
        "rg-web",
        "Microsoft.Web/sites/odd",
        "microsoft.web/sites",
        json!({"hostNames": [
            "www.contoso.com\u{0}", "bell\u{7}.contoso.com", "\u{fffd}.contoso.com", "new\nline.contoso.com",
            "ok.contoso.com", "a".repeat(5000), "\u{202e}moc.osotnoc", "..", "*", "x.-y.com",
            "münchen.contoso.com"
        ]}),
    );
    let extraction = extract(std::slice::from_ref(&r));
    assert_eq!(
        seeds_of(r),
        sorted(&["ok.contoso.com domain", "xn--mnchen-3ya.contoso.com domain"])
    );
    assert_eq!(extraction.warnings.len(), 9);
    assert!(
        extraction.warnings.iter().all(|w| w.message.len() < 400),
        "long values are shortened"
    );
}
