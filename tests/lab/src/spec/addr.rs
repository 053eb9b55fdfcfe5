//! The address types of a lab spec: an interface address with its prefix
//! length (`192.168.1.10/24`, `fd00:1::10/64`) and a MAC address. Both read
//! and write the text `ip` uses, which is also their JSON/YAML form.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::SpecError;

/// An IPv4 or IPv6 address with a prefix length, as `ip addr add` takes it.
/// Host bits are kept (an interface address, not a network); see
/// [`Cidr::is_network`] for routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    len: u8,
}

impl Cidr {
    /// `addr/len`, or an error when `len` is longer than the family allows.
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, SpecError> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if len > max {
            return Err(SpecError::Value {
                field: "prefix length",
                value: format!("{addr}/{len}"),
                reason: "at most 32 for IPv4, 128 for IPv6",
            });
        }
        Ok(Self { addr, len })
    }

    /// The address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// True for IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }

    /// True when the host bits are zero (what a route's destination needs).
    pub fn is_network(&self) -> bool {
        match self.addr {
            IpAddr::V4(a) => {
                let host = u32::MAX.checked_shr(u32::from(self.len)).unwrap_or(0);
                u32::from(a) & host == 0
            }
            IpAddr::V6(a) => {
                let host = u128::MAX.checked_shr(u32::from(self.len)).unwrap_or(0);
                u128::from(a) & host == 0
            }
        }
    }

    /// True when `ip` is inside this prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Cidr {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |reason| SpecError::Value {
            field: "address",
            value: text.to_owned(),
            reason,
        };
        let (addr, len) = text.split_once('/').ok_or_else(|| {
            bad("an address with a prefix length, e.g. 192.168.1.10/24 or fd00:1::10/64")
        })?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| bad("not an IPv4 or IPv6 address"))?;
        let len: u8 = len
            .parse()
            .map_err(|_| bad("the prefix length is not a number"))?;
        Self::new(addr, len)
    }
}

/// A unicast MAC address, written `02:00:00:00:01:01` (`-` also accepted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mac([u8; 6]);

impl Mac {
    /// The six bytes.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// A locally administered unicast MAC derived from `seed` (the same
    /// seed always gives the same MAC): `02:1a:` followed by 4 bytes of an
    /// FNV-1a hash of the seed.
    pub fn derived(seed: &str) -> Self {
        let mut hash: u32 = 0x811c_9dc5;
        for b in seed.bytes() {
            hash ^= u32::from(b);
            hash = hash.wrapping_mul(0x0100_0193);
        }
        let h = hash.to_be_bytes();
        Self([0x02, 0x1a, h[0], h[1], h[2], h[3]])
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl FromStr for Mac {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |reason| SpecError::Value {
            field: "MAC address",
            value: text.to_owned(),
            reason,
        };
        let parts: Vec<&str> = text.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(bad(
                "six hex bytes separated by ':', e.g. 02:00:00:00:01:01",
            ));
        }
        let mut bytes = [0u8; 6];
        for (byte, part) in bytes.iter_mut().zip(&parts) {
            if part.len() != 2 {
                return Err(bad("each byte is two hex digits"));
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad("not a hex byte"))?;
        }
        if bytes[0] & 1 != 0 {
            return Err(bad("a multicast MAC cannot be an interface's address"));
        }
        Ok(Self(bytes))
    }
}

/// Serde through the text form, so that specs read as `ip` would print them.
macro_rules! serde_as_text {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
serde_as_text!(Cidr, Mac);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_reads_both_families_and_keeps_host_bits() {
        let v4: Cidr = "192.168.1.10/24".parse().unwrap();
        assert_eq!(v4.to_string(), "192.168.1.10/24");
        assert!(!v4.is_network());
        assert!(v4.contains("192.168.1.200".parse().unwrap()));
        assert!(!v4.contains("192.168.2.1".parse().unwrap()));
        let v6: Cidr = "fd00:1::10/64".parse().unwrap();
        assert!(v6.is_ipv6() && !v6.is_network());
        assert!(v6.contains("fd00:1::1".parse().unwrap()));
        assert!("fd00:1::/64".parse::<Cidr>().unwrap().is_network());
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().is_network());
        assert!(
            "0.0.0.0/0"
                .parse::<Cidr>()
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
    }

    #[test]
    fn cidr_errors_say_what_is_valid() {
        for bad in [
            "192.168.1.10",
            "192.168.1.10/33",
            "fd00::1/129",
            "x/24",
            "10.0.0.1/a",
        ] {
            let err = bad.parse::<Cidr>().unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn mac_reads_colons_and_dashes_and_refuses_multicast() {
        let mac: Mac = "02-00-00-00-01-0A".parse().unwrap();
        assert_eq!(mac.to_string(), "02:00:00:00:01:0a");
        assert!("01:00:5e:00:00:01".parse::<Mac>().is_err());
        assert!("02:00:00:00:01".parse::<Mac>().is_err());
        assert!("02:00:00:00:01:0g".parse::<Mac>().is_err());
    }

    #[test]
    fn derived_macs_are_stable_unicast_and_differ() {
        let a = Mac::derived("l1-bms1");
        assert_eq!(a, Mac::derived("l1-bms1"));
        assert_ne!(a, Mac::derived("l1-bms2"));
        assert_eq!(a.octets()[0], 0x02);
    }

    #[test]
    fn serde_uses_the_text_form() {
        let json = serde_json::to_string(&("fd00::1/64".parse::<Cidr>().unwrap())).unwrap();
        assert_eq!(json, "\"fd00::1/64\"");
        let mac: Mac = serde_json::from_str("\"02:00:00:00:00:01\"").unwrap();
        assert_eq!(mac.to_string(), "02:00:00:00:00:01");
    }
}
