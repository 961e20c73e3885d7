//! Where a request comes from, as far as the network layer can say.
//!
//! First-run setup (creating the owner account) is accepted only from the same host or
//! the local network: an appliance port-forwarded to the internet by mistake must not
//! let a stranger claim it before its owner does. The same classification decides
//! whether requests from public addresses are refused (unless the config allows them).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The kind of network a source address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceClass {
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// RFC 1918 (10/8, 172.16/12, 192.168/16) and IPv6 unique local fc00::/7.
    Private,
    /// 169.254/16 and fe80::/10 (a phone and the camera without a DHCP server).
    LinkLocal,
    /// Everything else, including the unspecified address, CGNAT 100.64/10 (the ISP's
    /// side, not the home's) and multicast: none of those is a trustworthy LAN peer.
    Public,
}

impl SourceClass {
    /// Whether this is the local host or the local network.
    pub fn is_local(self) -> bool {
        !matches!(self, Self::Public)
    }
}

/// Classifies `ip`. IPv4-mapped IPv6 (`::ffff:a.b.c.d`, what a dual-stack socket
/// reports for IPv4 peers) is classified as the IPv4 address it carries.
pub fn classify(ip: IpAddr) -> SourceClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

/// Whether first-run setup may be done from `ip`: loopback, private or link-local.
pub fn setup_allowed(ip: IpAddr) -> bool {
    classify(ip).is_local()
}

fn classify_v4(ip: Ipv4Addr) -> SourceClass {
    if ip.is_loopback() {
        SourceClass::Loopback
    } else if ip.is_private() {
        SourceClass::Private
    } else if ip.is_link_local() {
        SourceClass::LinkLocal
    } else {
        SourceClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> SourceClass {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        SourceClass::Loopback
    } else if first & 0xfe00 == 0xfc00 {
        SourceClass::Private
    } else if first & 0xffc0 == 0xfe80 {
        SourceClass::LinkLocal
    } else {
        SourceClass::Public
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(text: &str) -> SourceClass {
        classify(text.parse().expect("test address parses"))
    }

    #[test]
    fn ipv4_ranges() {
        assert_eq!(class("127.0.0.1"), SourceClass::Loopback);
        assert_eq!(class("127.255.0.9"), SourceClass::Loopback);
        assert_eq!(class("10.0.0.1"), SourceClass::Private);
        assert_eq!(class("172.16.0.1"), SourceClass::Private);
        assert_eq!(class("172.31.255.255"), SourceClass::Private);
        assert_eq!(class("172.32.0.1"), SourceClass::Public);
        assert_eq!(class("172.15.255.255"), SourceClass::Public);
        assert_eq!(class("192.168.1.20"), SourceClass::Private);
        assert_eq!(class("192.169.0.1"), SourceClass::Public);
        assert_eq!(class("169.254.10.10"), SourceClass::LinkLocal);
        assert_eq!(class("8.8.8.8"), SourceClass::Public);
        assert_eq!(class("100.64.0.1"), SourceClass::Public);
        assert_eq!(class("0.0.0.0"), SourceClass::Public);
        assert_eq!(class("255.255.255.255"), SourceClass::Public);
    }

    #[test]
    fn ipv6_ranges() {
        assert_eq!(class("::1"), SourceClass::Loopback);
        assert_eq!(class("fc00::1"), SourceClass::Private);
        assert_eq!(class("fd12:3456:789a::1"), SourceClass::Private);
        assert_eq!(class("fe80::1"), SourceClass::LinkLocal);
        assert_eq!(class("febf::1"), SourceClass::LinkLocal);
        assert_eq!(
            class("fec0::1"),
            SourceClass::Public,
            "deprecated site-local"
        );
        assert_eq!(class("2001:db8::1"), SourceClass::Public);
        assert_eq!(class("::"), SourceClass::Public);
        assert_eq!(class("ff02::1"), SourceClass::Public);
    }

    #[test]
    fn ipv4_mapped_ipv6_is_classified_as_ipv4() {
        assert_eq!(class("::ffff:127.0.0.1"), SourceClass::Loopback);
        assert_eq!(class("::ffff:192.168.0.5"), SourceClass::Private);
        assert_eq!(class("::ffff:169.254.1.1"), SourceClass::LinkLocal);
        assert_eq!(class("::ffff:8.8.8.8"), SourceClass::Public);
    }

    #[test]
    fn setup_only_from_local_sources() {
        for ok in [
            "127.0.0.1",
            "192.168.1.2",
            "169.254.3.4",
            "fd00::2",
            "fe80::3",
            "::1",
        ] {
            assert!(setup_allowed(ok.parse().unwrap()), "{ok}");
        }
        for refused in [
            "1.1.1.1",
            "2a00:1450::1",
            "::ffff:203.0.113.9",
            "100.100.1.1",
        ] {
            assert!(!setup_allowed(refused.parse().unwrap()), "{refused}");
        }
    }
}
