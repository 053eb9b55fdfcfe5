//! Address arithmetic the rules need: IP prefixes (containment, overlap,
//! the default gateway) and MAC normalisation, on plain `std::net` types.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Why a prefix or a MAC address could not be read. The API server's schema
/// refuses such values, so these only show up for objects stored before a
/// schema rule existed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// A prefix without `/<length>`.
    #[error("{0:?} has no prefix length: write it as <address>/<length>, e.g. 10.0.0.0/24")]
    MissingLength(String),
    /// The address part is not an IPv4 or IPv6 address.
    #[error("{0:?} is not an IPv4 or IPv6 address")]
    InvalidAddress(String),
    /// The length is not a number in range for the address family.
    #[error("{value:?} has an invalid prefix length: use 0 to {max}")]
    InvalidLength {
        /// The prefix as written.
        value: String,
        /// The largest length of the family (32 or 128).
        max: u8,
    },
    /// Not six hex octets separated by `:` or `-`.
    #[error(
        "{0:?} is not a MAC address: use six hex octets separated by ':' (e.g. 02:00:00:00:01:01)"
    )]
    InvalidMac(String),
}

/// An IPv4 or IPv6 prefix. Host bits are kept as written; every comparison
/// uses the masked network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpPrefix {
    address: IpAddr,
    length: u8,
}

impl IpPrefix {
    /// A prefix of `length` bits on `address`.
    pub fn new(address: IpAddr, length: u8) -> Result<Self, AddressError> {
        let max = max_length(address);
        if length > max {
            return Err(AddressError::InvalidLength {
                value: format!("{address}/{length}"),
                max,
            });
        }
        Ok(Self { address, length })
    }

    /// The prefix length in bits.
    pub fn length(&self) -> u8 {
        self.length
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> IpAddr {
        from_bits(self.address, bits(self.address) & self.mask())
    }

    /// The first address after the network address: the default gateway of
    /// a subnet.
    pub fn first_host(&self) -> IpAddr {
        from_bits(
            self.address,
            (bits(self.address) & self.mask()).wrapping_add(1),
        )
    }

    /// Whether `address` is inside the prefix (same family, same network bits).
    pub fn contains(&self, address: IpAddr) -> bool {
        same_family(self.address, address)
            && bits(address) & self.mask() == bits(self.address) & self.mask()
    }

    /// Whether the two prefixes share at least one address: one contains the
    /// other's network.
    pub fn overlaps(&self, other: &IpPrefix) -> bool {
        self.contains(other.network()) || other.contains(self.network())
    }

    fn mask(&self) -> u128 {
        let width = u32::from(max_length(self.address));
        let ones = if self.length == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.length))
        };
        // Keep the mask in the low `width` bits, where `bits` puts the address.
        if width == 128 {
            ones
        } else {
            (ones >> (128 - width)) & ((1u128 << width) - 1)
        }
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.length)
    }
}

impl FromStr for IpPrefix {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (address, length) = s
            .split_once('/')
            .ok_or_else(|| AddressError::MissingLength(s.to_owned()))?;
        let address: IpAddr = address
            .parse()
            .map_err(|_| AddressError::InvalidAddress(s.to_owned()))?;
        let length: u8 = length.parse().map_err(|_| AddressError::InvalidLength {
            value: s.to_owned(),
            max: max_length(address),
        })?;
        Self::new(address, length)
    }
}

/// Parses an IP address, naming the value on failure.
pub fn parse_ip(s: &str) -> Result<IpAddr, AddressError> {
    s.parse()
        .map_err(|_| AddressError::InvalidAddress(s.to_owned()))
}

/// A MAC address in its normal form: lower-case hex octets separated by `:`
/// (the original normalised `-` to `:` too), so that `02-AA-..` and
/// `02:aa:..` are the same address.
pub fn normalise_mac(s: &str) -> Result<String, AddressError> {
    let octets: Vec<&str> = s.split([':', '-']).collect();
    let valid = octets.len() == 6
        && octets
            .iter()
            .all(|o| o.len() == 2 && o.bytes().all(|b| b.is_ascii_hexdigit()));
    if valid {
        Ok(octets.join(":").to_ascii_lowercase())
    } else {
        Err(AddressError::InvalidMac(s.to_owned()))
    }
}

fn max_length(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

fn bits(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_bits(family: IpAddr, value: u128) -> IpAddr {
    match family {
        // Only the low 32 bits are ever set for IPv4; the mask keeps it so.
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from((value & 0xffff_ffff) as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> IpPrefix {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn containment_and_gateway() {
        let net = p("10.0.0.0/24");
        assert!(net.contains(ip("10.0.0.200")));
        assert!(!net.contains(ip("10.0.1.1")));
        assert!(!net.contains(ip("fd00::1")));
        assert_eq!(net.first_host(), ip("10.0.0.1"));
        assert_eq!(p("10.0.0.77/24").network(), ip("10.0.0.0"));
        assert_eq!(p("fd00:1::/64").first_host(), ip("fd00:1::1"));
        assert!(p("fd00:1::/64").contains(ip("fd00:1::ffff")));
        assert!(!p("fd00:1::/64").contains(ip("fd00:2::1")));
        assert!(p("0.0.0.0/0").contains(ip("192.168.1.1")));
    }

    #[test]
    fn overlap() {
        assert!(p("10.0.0.0/16").overlaps(&p("10.0.3.0/24")));
        assert!(p("10.0.3.0/24").overlaps(&p("10.0.0.0/16")));
        assert!(!p("10.0.0.0/24").overlaps(&p("10.0.1.0/24")));
        assert!(!p("10.0.0.0/24").overlaps(&p("fd00::/8")));
        assert!(p("10.0.0.0/31").overlaps(&p("10.0.0.1/32")));
    }

    #[test]
    fn parse_errors_say_what_is_wrong() {
        assert!(matches!(
            "10.0.0.0".parse::<IpPrefix>(),
            Err(AddressError::MissingLength(_))
        ));
        assert!(matches!(
            "10.0.0.0/33".parse::<IpPrefix>(),
            Err(AddressError::InvalidLength { max: 32, .. })
        ));
        assert!(matches!(
            "x/3".parse::<IpPrefix>(),
            Err(AddressError::InvalidAddress(_))
        ));
    }

    #[test]
    fn macs_are_normalised() {
        assert_eq!(
            normalise_mac("02-AA-bb-00-01-0F").unwrap(),
            "02:aa:bb:00:01:0f"
        );
        assert_eq!(
            normalise_mac("02:aa:bb:00:01:0f").unwrap(),
            "02:aa:bb:00:01:0f"
        );
        assert!(normalise_mac("02:aa:bb:00:01").is_err());
        assert!(normalise_mac("02:aa:bb:00:01:zz").is_err());
    }
}
