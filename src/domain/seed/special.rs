//! Which addresses and ranges can be seeds: globally reachable space that an organisation can
//! hold. Built from the IANA special-purpose address registries
//! (<https://www.iana.org/assignments/iana-ipv4-special-registry/>,
//! <https://www.iana.org/assignments/iana-ipv6-special-registry/>) plus multicast and the IPv6
//! space outside global unicast (`2000::/3`, RFC 4291). The documentation ranges are kept on
//! purpose: they are what example and test estates use (docs/decisions.md).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// IPv4 blocks that are never seeds: not globally reachable, reserved, or with no owner.
const IPV4_NOT_PUBLIC: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),      // "this network" (RFC 791)
    (Ipv4Addr::new(10, 0, 0, 0), 8),     // private use (RFC 1918)
    (Ipv4Addr::new(100, 64, 0, 0), 10),  // shared address space, carrier-grade NAT (RFC 6598)
    (Ipv4Addr::new(127, 0, 0, 0), 8),    // loopback (RFC 1122)
    (Ipv4Addr::new(169, 254, 0, 0), 16), // link local (RFC 3927)
    (Ipv4Addr::new(172, 16, 0, 0), 12),  // private use (RFC 1918)
    // IETF protocol assignments (RFC 6890). 192.0.0.9 and .10 are global anycast services
    // (PCP, TURN) that no organisation holds, so the whole block is refused.
    (Ipv4Addr::new(192, 0, 0, 0), 24),
    (Ipv4Addr::new(192, 88, 99, 0), 24), // deprecated 6to4 relay anycast (RFC 7526)
    (Ipv4Addr::new(192, 168, 0, 0), 16), // private use (RFC 1918)
    (Ipv4Addr::new(198, 18, 0, 0), 15),  // benchmarking (RFC 2544)
    (Ipv4Addr::new(224, 0, 0, 0), 4),    // multicast (RFC 5771)
    (Ipv4Addr::new(240, 0, 0, 0), 4),    // reserved, includes broadcast (RFC 1112, RFC 919)
];

/// IPv6 blocks inside global unicast (`2000::/3`) that are never seeds. Everything outside
/// `2000::/3` (loopback, unspecified, IPv4-mapped, NAT64 prefixes, discard-only, unique local,
/// link local, multicast, segment-routing SIDs) is refused by [`is_public_v6_net`] directly.
const IPV6_NOT_PUBLIC: &[(Ipv6Addr, u8)] = &[
    // IETF protocol assignments (RFC 2928), which include TEREDO, benchmarking (2001:2::/48)
    // and ORCHID; the few global anycast services inside it belong to no organisation.
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23),
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16), // 6to4 (RFC 3056): derived, not held
];

/// The IPv6 space addresses are assigned from (RFC 4291 section 2.4).
const IPV6_GLOBAL_UNICAST: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);

/// Whether an address can be a seed. An IPv4-mapped IPv6 address is judged as its IPv4 address.
pub(super) fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_net(IpNet::V4(Ipv4Net::from(v4))),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_ip(IpAddr::V4(v4)),
            None => is_public_net(IpNet::V6(Ipv6Net::from(v6))),
        },
    }
}

/// Whether a whole range can be a seed: it must not overlap any block that is not public, so a
/// range that merely contains private space (`172.0.0.0/8`, `128.0.0.0/1`) is refused too.
pub(super) fn is_public_net(net: IpNet) -> bool {
    match net {
        IpNet::V4(net) => !IPV4_NOT_PUBLIC
            .iter()
            .any(|&(addr, len)| Ipv4Net::new(addr, len).is_ok_and(|block| overlaps_v4(net, block))),
        IpNet::V6(net) => is_public_v6_net(net),
    }
}

fn is_public_v6_net(net: Ipv6Net) -> bool {
    let (addr, len) = IPV6_GLOBAL_UNICAST;
    let inside_global = Ipv6Net::new(addr, len).is_ok_and(|global| global.contains(&net));
    inside_global
        && !IPV6_NOT_PUBLIC
            .iter()
            .any(|&(addr, len)| Ipv6Net::new(addr, len).is_ok_and(|block| block.contains(&net) || net.contains(&block)))
}

/// Two CIDR blocks overlap exactly when one contains the other.
fn overlaps_v4(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b) || b.contains(&a)
}
