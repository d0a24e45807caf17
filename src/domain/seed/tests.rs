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

#[test]
fn refuses_special_purpose_addresses_and_ranges_that_contain_them() {
    let addresses = [
        "::ffff:10.0.0.1",
        "::ffff:127.0.0.1",
        "100.64.0.1",
        "100.127.255.254",
        "0.1.2.3",
        "240.0.0.1",
        "255.255.255.255",
        "198.18.0.1",
        "198.19.255.255",
        "192.0.0.8",
        "192.88.99.1",
        "224.0.0.1",
        "::1",
        "::",
        "64:ff9b:1::1",
        "100::1",
        "2001:2::1",
        "2002:c000:0204::1",
        "5f00::1",
        "ff02::1",
    ];
    for raw in addresses {
        assert!(
            matches!(Seed::from_host_value(raw), Err(SeedError::NotPublic(_))),
            "{raw:?} should be refused as not public, got {:?}",
            Seed::from_host_value(raw)
        );
    }
    let ranges = [
        "172.0.0.0/8",
        "128.0.0.0/1",
        "0.0.0.0/0",
        "100.64.0.0/10",
        "100.0.0.0/8",
        "198.18.0.0/15",
        "240.0.0.0/4",
        "::ffff:0:0/96",
        "2000::/3",
        "2001::/16",
        "fc00::/7",
    ];
    for raw in ranges {
        assert!(
            matches!(Seed::from_range(raw), Err(SeedError::NotPublic(_))),
            "{raw:?} should be refused as not public, got {:?}",
            Seed::from_range(raw)
        );
    }
}

#[test]
fn public_neighbours_of_special_blocks_stay_seeds() {
    for raw in [
        "100.63.255.255",
        "100.128.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "172.32.0.1",
        "1.0.0.1",
    ] {
        assert_eq!(host(raw), Ok((raw.to_string(), SeedKind::Ipv4)), "{raw}");
    }
    assert_eq!(host("::ffff:20.50.1.7"), Ok(("20.50.1.7".into(), SeedKind::Ipv4)));
    assert_eq!(
        host("2603:1020:200::5"),
        Ok(("2603:1020:200::5".into(), SeedKind::Ipv6))
    );
    for raw in ["20.0.0.0/8", "172.32.0.0/11", "2603:1020::/32", "198.51.100.0/24"] {
        assert!(Seed::from_range(raw).is_ok(), "{raw} is public");
    }
}

/// A host name with the decorations found in Azure: case, a wildcard label, a trailing dot, a
/// scheme, a port, a path.
fn decorated_host() -> impl Strategy<Value = String> {
    let label = "[a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?";
    (
        proptest::collection::vec(label, 1..4),
        "[a-zA-Z]{2,6}",
        any::<bool>(),
        any::<bool>(),
        proptest::option::of("(https?|ftp)://"),
        proptest::option::of(1u16..),
        proptest::option::of("/[a-z0-9/]{0,8}"),
    )
        .prop_map(|(labels, tld, wildcard, dot, scheme, port, path)| {
            let mut raw = format!("{}.{tld}", labels.join("."));
            if wildcard && scheme.is_none() {
                raw = format!("*.{raw}");
            }
            if dot {
                raw.push('.');
            }
            if let Some(port) = port {
                raw = format!("{raw}:{port}");
            }
            if let (Some(path), true) = (path, scheme.is_some() || port.is_some()) {
                raw.push_str(&path);
            }
            match scheme {
                Some(s) => format!("{s}{raw}"),
                None => raw,
            }
        })
}

#[test]
fn normalisation_is_idempotent() {
    let reached = crate::test_util::Reached::new("normalisation_is_idempotent");
    let values = prop_oneof![
        3 => decorated_host(),
        1 => any::<u32>().prop_map(|a| std::net::Ipv4Addr::from(a).to_string()),
        1 => "\\PC{0,80}",
    ];
    proptest!(|(raw in values)| {
        reached.case();
        if let Ok(seed) = Seed::from_host_value(&raw) {
            reached.hit();
            let again = Seed::from_host_value(seed.name());
            prop_assert_eq!(again, Ok(seed.clone()));
            prop_assert!(seed.kind() == SeedKind::Domain || seed.name().parse::<std::net::IpAddr>().is_ok());
        }
    });
    reached.check(0.5);
}

#[test]
fn host_like_values_normalise() {
    let reached = crate::test_util::Reached::new("host_like_values_normalise");
    proptest!(|(raw in decorated_host())| {
        reached.case();
        let seed = Seed::from_host_value(&raw);
        // Only a generated name that happens to be a shared Microsoft parent is refused.
        if let Ok(seed) = seed {
            reached.hit();
            prop_assert!(seed.name().len() <= 253);
            prop_assert!(!seed.name().ends_with('.'));
            prop_assert!(!seed.name().starts_with("*."));
            prop_assert_eq!(seed.name().to_ascii_lowercase(), seed.name());
            prop_assert!(raw.to_ascii_lowercase().contains(seed.name()));
            prop_assert_eq!(Seed::from_host_value(seed.name()), Ok(seed.clone()));
        } else {
            prop_assert!(matches!(seed, Err(SeedError::SharedParent(_))), "{:?}: {:?}", raw, seed);
        }
    });
    reached.check(0.95);
}

#[test]
fn ip_addresses_round_trip() {
    let reached = crate::test_util::Reached::new("ip_addresses_round_trip");
    // IPv6 addresses are drawn from global unicast (2000::/3), where seeds come from.
    let v6_global = any::<u128>().prop_map(|b| std::net::Ipv6Addr::from((b >> 3) | (1u128 << 125)));
    proptest!(|(a in any::<u32>(), v6 in v6_global)| {
        reached.case();
        let v4 = std::net::Ipv4Addr::from(a).to_string();
        let v6_seed = Seed::from_host_value(&format!("{v6:?}").to_uppercase());
        if let Ok(seed) = Seed::from_host_value(&v4) {
            prop_assert_eq!(seed.kind(), SeedKind::Ipv4);
            prop_assert_eq!(seed.name(), v4.as_str());
        }
        if let Ok(seed) = v6_seed {
            reached.hit();
            prop_assert_eq!(seed.kind(), SeedKind::Ipv6);
            prop_assert_eq!(seed.name(), v6.to_string());
        }
    });
    reached.check(0.9);
}
