use super::*;
use proptest::prelude::*;

fn host(raw: &str) -> Result<(String, SeedKind), SeedError> {
    Seed::from_host_value(raw).map(|s| (s.name().to_string(), s.kind()))
}

#[test]
fn normalises_hosts_urls_and_ips() {
    let cases: &[(&str, &str, SeedKind)] = &[
        ("app.contoso.com", "app.contoso.com", SeedKind::Domain),
        ("App.Contoso.COM.", "app.contoso.com", SeedKind::Domain),
        ("*.apps.contoso.com", "apps.contoso.com", SeedKind::Domain),
        ("*.apps.contoso.com.", "apps.contoso.com", SeedKind::Domain),
        (
            "https://acct.documents.azure.com:443/",
            "acct.documents.azure.com",
            SeedKind::Domain,
        ),
        (
            "https://user:pass@Sub.Domain.COM:8443/x?q",
            "sub.domain.com",
            SeedKind::Domain,
        ),
        ("kv-web.vault.azure.net:443", "kv-web.vault.azure.net", SeedKind::Domain),
        ("bücher.example", "xn--bcher-kva.example", SeedKind::Domain),
        ("https://münchen.de/", "xn--mnchen-3ya.de", SeedKind::Domain),
        ("  www.contoso.com  ", "www.contoso.com", SeedKind::Domain),
        ("20.50.1.7", "20.50.1.7", SeedKind::Ipv4),
        (
            "2603:1020:0200:0000:0000:0000:0000:0005",
            "2603:1020:200::5",
            SeedKind::Ipv6,
        ),
        ("2603:1020:200::5", "2603:1020:200::5", SeedKind::Ipv6),
        ("[2001:DB8::1]", "2001:db8::1", SeedKind::Ipv6),
        ("myapp.azurewebsites.net", "myapp.azurewebsites.net", SeedKind::Domain),
        (
            "stcontosoweb.z6.web.core.windows.net",
            "stcontosoweb.z6.web.core.windows.net",
            SeedKind::Domain,
        ),
        (
            "aks-prod-1a2b.hcp.westeurope.azmk8s.io",
            "aks-prod-1a2b.hcp.westeurope.azmk8s.io",
            SeedKind::Domain,
        ),
    ];
    for (raw, name, kind) in cases {
        assert_eq!(host(raw), Ok((name.to_string(), *kind)), "input {raw:?}");
    }
}

#[test]
fn refuses_invalid_shared_and_private_values() {
    let rejected = [
        "",
        "   ",
        "localhost",
        "contoso",
        "azurewebsites.net",
        "AzureWebsites.NET.",
        "westeurope.cloudapp.azure.com",
        "westus.api.cognitive.microsoft.com",
        "https://westus.api.cognitive.microsoft.com/",
        "ns1-07.azure-dns.com.",
        "ns4-07.azure-dns.info",
        "z13.web.core.windows.net",
        "hcp.westeurope.azmk8s.io",
        "_dmarc.contoso.com",
        "bad name.contoso.com",
        "-lead.contoso.com",
        "a..b.com",
        "10.0.0.4",
        "192.168.1.1",
        "127.0.0.1",
        "fe80::1",
        "fd00::1",
        "1.2.3.4.5",
        "exa\u{7}mple.com",
        "example.123",
        "app??.contoso.com",
        "x.y?.contoso.com",
        "www.contoso.com#frag.evil.com",
        "user@www.contoso.com",
        "a\\b.contoso.com",
        "*",
        "*.",
    ];
    for raw in rejected {
        assert!(Seed::from_host_value(raw).is_err(), "{raw:?} should be refused");
    }
}

#[test]
fn ranges_are_canonical_networks() {
    assert_eq!(
        Seed::from_range("198.51.100.16/28").map(|s| s.to_string()),
        Ok("198.51.100.16/28".into())
    );
    assert_eq!(
        Seed::from_range("198.51.100.17/28").map(|s| s.to_string()),
        Ok("198.51.100.16/28".into())
    );
    assert_eq!(
        Seed::from_range("2001:DB8:0::/48").map(|s| s.to_string()),
        Ok("2001:db8::/48".into())
    );
    assert!(Seed::from_range("10.0.0.0/8").is_err());
    assert!(Seed::from_range("not a range").is_err());
    assert!(Seed::from_range("198.51.100.0/33").is_err());
    assert_eq!(
        Seed::from_range("20.61.32.0/28").map(|s| s.kind()),
        Ok(SeedKind::IpRange)
    );
}

#[test]
fn seed_kind_serialises_as_asm_spells_it() {
    let kinds = [SeedKind::Domain, SeedKind::Ipv4, SeedKind::Ipv6, SeedKind::IpRange];
    let json = serde_json::to_string(&kinds).unwrap();
    assert_eq!(json, r#"["domain","ipv4","ipv6","iprange"]"#);
    assert_eq!(SeedKind::parse_loose("IPv4"), Some(SeedKind::Ipv4));
    assert_eq!(SeedKind::parse_loose("Domain"), Some(SeedKind::Domain));
    assert_eq!(SeedKind::parse_loose("cidr"), None);
}

proptest! {
    #[test]
    fn normalisation_is_idempotent(raw in "\\PC{0,80}") {
        if let Ok(seed) = Seed::from_host_value(&raw) {
            let again = Seed::from_host_value(seed.name()).expect("a seed re-normalises");
            prop_assert_eq!(&again, &seed);
            prop_assert!(seed.kind() == SeedKind::Domain || seed.name().parse::<std::net::IpAddr>().is_ok());
        }
    }

    #[test]
    fn host_like_values_normalise_or_are_dropped(
        labels in proptest::collection::vec("[a-zA-Z0-9_*-]{0,12}", 1..5),
        dot in proptest::bool::ANY,
        scheme in proptest::option::of("(https?|ftp)://"),
    ) {
        let mut raw = labels.join(".");
        if dot { raw.push('.'); }
        if let Some(s) = scheme { raw = format!("{s}{raw}"); }
        if let Ok(seed) = Seed::from_host_value(&raw) {
            prop_assert!(seed.name().len() <= 253);
            prop_assert!(!seed.name().ends_with('.'));
            prop_assert!(!seed.name().starts_with("*."));
            prop_assert_eq!(seed.name().to_ascii_lowercase(), seed.name());
            prop_assert_eq!(Seed::from_host_value(seed.name()), Ok(seed.clone()));
        }
    }

    #[test]
    fn ip_addresses_round_trip(a in any::<u32>(), b in any::<u128>()) {
        let v4 = std::net::Ipv4Addr::from(a).to_string();
        if let Ok(seed) = Seed::from_host_value(&v4) {
            prop_assert_eq!(seed.kind(), SeedKind::Ipv4);
            prop_assert_eq!(seed.name(), v4.as_str());
        }
        let v6 = std::net::Ipv6Addr::from(b);
        if let Ok(seed) = Seed::from_host_value(&format!("{v6:?}").to_uppercase()) {
            prop_assert_eq!(seed.name(), v6.to_string());
        }
    }
}
