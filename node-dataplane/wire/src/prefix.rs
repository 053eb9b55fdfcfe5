//! IPv4 and IPv6 prefixes (CIDR blocks), as smoltcp's `IpCidr`: the one
//! prefix type of trunkline, used by the domain model, the operator, the
//! node dataplane and the pipeline's tables.
//!
//! ```text
//!   "10.1.2.3/24" --FromStr--> IpPrefix { addr: 10.1.2.0, len: 24 }
//!                                 |  host bits cleared at construction,
//!                                 |  so equal networks compare equal
//!                                 v
//!   contains(10.1.2.200) = true     first_host() = 10.1.2.1
//!   overlaps(10.1.0.0/16) = true    host(10.1.2.7) = 10.1.2.7/32
//! ```
//!
//! Prefixes never match across families: `10.0.0.0/8` does not contain
//! `::ffff:10.0.0.1`.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::str::FromStr;

/// Why a prefix could not be built or read. Each message names the value
/// and says what would be valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum PrefixError {
    /// Text without `/<length>`.
    #[error(
        "{0:?} has no prefix length: write it as <address>/<length>, e.g. 10.0.0.0/24 or fd00::/64"
    )]
    MissingLength(String),
    /// The part before `/` is not an IPv4 or IPv6 address.
    #[error(
        "{0:?} is not a prefix: the part before '/' must be an IPv4 or IPv6 address, e.g. 10.0.0.0/24 or fd00::/64"
    )]
    InvalidAddress(String),
    /// The length is not a number, or longer than the address.
    #[error("{value:?} has an invalid prefix length: use 0 to {max}")]
    InvalidLength {
        /// The prefix as written (or as `address/length` when built).
        value: String,
        /// The longest length of the family: 32 or 128.
        max: u8,
    },
}

/// An IPv4 or IPv6 prefix with its host bits cleared.
///
/// The order (and `Eq`, `Hash`) is that of (network address, length):
/// IPv4 before IPv6, then by address, then shorter before longer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpPrefix {
    addr: IpAddr,
    len: u8,
}

impl IpPrefix {
    /// The prefix of `len` bits of `addr`; the host bits are cleared.
    pub fn new(addr: IpAddr, len: u8) -> Result<IpPrefix, PrefixError> {
        let max = max_len(addr);
        if len > max {
            return Err(PrefixError::InvalidLength {
                value: format!("{addr}/{len}"),
                max,
            });
        }
        Ok(IpPrefix {
            addr: mask_addr(addr, len),
            len,
        })
    }

    /// The host prefix of `addr`: `/32` or `/128`.
    pub const fn host(addr: IpAddr) -> IpPrefix {
        let len = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        IpPrefix { addr, len }
    }

    /// The default prefix of `addr`'s family: `0.0.0.0/0` or `::/0`.
    pub const fn default_of(addr: IpAddr) -> IpPrefix {
        let addr = match addr {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        IpPrefix { addr, len: 0 }
    }

    /// The network address (host bits cleared).
    pub const fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The network address: the same as [`addr`](Self::addr), by the name
    /// the rules use.
    pub const fn network(&self) -> IpAddr {
        self.addr
    }

    /// The length in bits.
    pub const fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether this is a default route (length zero).
    pub const fn is_default(&self) -> bool {
        self.len == 0
    }

    /// Whether this is an IPv4 prefix.
    pub const fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// Whether `ip` is inside the prefix (never across families).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & ipv4_mask(self.len) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & ipv6_mask(self.len) == u128::from(net)
            }
            _ => false,
        }
    }

    /// Whether the two prefixes share at least one address: one contains
    /// the other's network.
    pub fn overlaps(&self, other: &IpPrefix) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }

    /// The first address after the network address: the default gateway of
    /// a subnet. It wraps within the family (`255.255.255.255/32` gives
    /// `0.0.0.0`); subnets the schema admits never reach that.
    pub fn first_host(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a).wrapping_add(1))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a).wrapping_add(1))),
        }
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for IpPrefix {
    type Err = PrefixError;

    /// Reads `address/length`; host bits may be set and are cleared.
    fn from_str(s: &str) -> Result<IpPrefix, PrefixError> {
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| PrefixError::MissingLength(s.to_owned()))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| PrefixError::InvalidAddress(s.to_owned()))?;
        let invalid_len = || PrefixError::InvalidLength {
            value: s.to_owned(),
            max: max_len(addr),
        };
        // `u8::from_str` takes a leading '+'; a prefix length does not.
        if !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid_len());
        }
        let len: u8 = len.parse().map_err(|_| invalid_len())?;
        IpPrefix::new(addr, len).map_err(|_| invalid_len())
    }
}

impl From<IpAddr> for IpPrefix {
    /// The host prefix of the address.
    fn from(addr: IpAddr) -> Self {
        IpPrefix::host(addr)
    }
}

/// The network mask of an IPv4 prefix length (0 for length 0, all ones
/// from 32 on).
pub const fn ipv4_mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else if len >= 32 {
        u32::MAX
    } else {
        u32::MAX << (32 - len as u32)
    }
}

/// The network mask of an IPv6 prefix length (0 for length 0, all ones
/// from 128 on).
pub const fn ipv6_mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else if len >= 128 {
        u128::MAX
    } else {
        u128::MAX << (128 - len as u32)
    }
}

const fn max_len(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn mask_addr(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & ipv4_mask(len))),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & ipv6_mask(len))),
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
    fn parse_masks_and_contains() {
        let net = p("10.1.2.3/24");
        assert_eq!(net.to_string(), "10.1.2.0/24");
        assert_eq!(net, p("10.1.2.0/24"), "equal networks compare equal");
        assert_eq!(net.network(), ip("10.1.2.0"));
        assert_eq!(net.addr(), net.network());
        assert_eq!(net.prefix_len(), 24);
        assert!(net.contains(ip("10.1.2.200")));
        assert!(!net.contains(ip("10.1.3.1")));
        assert!(!net.contains(ip("fd00::1")));
        assert!(
            !net.contains(ip("::ffff:10.1.2.1")),
            "never across families"
        );
        let default = p("0.0.0.0/0");
        assert!(default.is_default() && default.contains(ip("1.2.3.4")));
        assert!(!default.contains(ip("::1")));
        assert!(p("10.0.0.1/32").contains(ip("10.0.0.1")));
        let v6 = p("fd00::1:2/112");
        assert_eq!(v6.to_string(), "fd00::1:0/112");
        assert!(v6.contains(ip("fd00::1:ffff")));
        assert!(!v6.is_ipv4());
        assert!(p("::/0").contains(ip("fd00::1")));
    }

    #[test]
    fn host_default_and_first_host() {
        assert_eq!(IpPrefix::host(ip("10.0.0.7")).to_string(), "10.0.0.7/32");
        assert_eq!(IpPrefix::host(ip("fd00::7")).to_string(), "fd00::7/128");
        assert_eq!(IpPrefix::from(ip("10.0.0.7")), p("10.0.0.7/32"));
        assert_eq!(IpPrefix::default_of(ip("10.0.0.7")), p("0.0.0.0/0"));
        assert_eq!(IpPrefix::default_of(ip("fd00::7")), p("::/0"));
        assert_eq!(p("10.0.0.0/8").first_host(), ip("10.0.0.1"));
        assert_eq!(p("10.0.0.77/24").first_host(), ip("10.0.0.1"));
        assert_eq!(p("fd00:1::/64").first_host(), ip("fd00:1::1"));
        assert_eq!(p("255.255.255.255/32").first_host(), ip("0.0.0.0"));
    }

    #[test]
    fn overlap() {
        assert!(p("10.0.0.0/16").overlaps(&p("10.0.3.0/24")));
        assert!(p("10.0.3.0/24").overlaps(&p("10.0.0.0/16")));
        assert!(!p("10.0.0.0/24").overlaps(&p("10.0.1.0/24")));
        assert!(!p("10.0.0.0/24").overlaps(&p("fd00::/8")));
        assert!(p("10.0.0.0/31").overlaps(&p("10.0.0.1/32")));
        assert!(p("0.0.0.0/0").overlaps(&p("192.0.2.0/24")));
    }

    #[test]
    fn errors_name_the_value_and_what_is_valid() {
        assert_eq!(
            "10.0.0.0".parse::<IpPrefix>().unwrap_err(),
            PrefixError::MissingLength("10.0.0.0".into())
        );
        assert_eq!(
            "x/3".parse::<IpPrefix>().unwrap_err(),
            PrefixError::InvalidAddress("x/3".into())
        );
        let too_long = "10.0.0.0/33".parse::<IpPrefix>().unwrap_err();
        assert_eq!(
            too_long,
            PrefixError::InvalidLength {
                value: "10.0.0.0/33".into(),
                max: 32
            }
        );
        assert_eq!(
            too_long.to_string(),
            "\"10.0.0.0/33\" has an invalid prefix length: use 0 to 32"
        );
        assert!(matches!(
            "fd00::/129".parse::<IpPrefix>(),
            Err(PrefixError::InvalidLength { max: 128, .. })
        ));
        for bad in ["10.0.0.0/", "10.0.0.0/+8", "10.0.0.0/-1", "10.0.0.0/8/8"] {
            assert!(
                matches!(
                    bad.parse::<IpPrefix>(),
                    Err(PrefixError::InvalidLength { .. })
                ),
                "{bad}"
            );
        }
        assert_eq!(
            IpPrefix::new(ip("fd00::"), 130).unwrap_err(),
            PrefixError::InvalidLength {
                value: "fd00::/130".into(),
                max: 128
            }
        );
        assert!(
            PrefixError::MissingLength("10.0.0.0".into())
                .to_string()
                .contains("<address>/<length>")
        );
    }

    #[test]
    fn masks() {
        assert_eq!(ipv4_mask(0), 0);
        assert_eq!(ipv4_mask(1), 0x8000_0000);
        assert_eq!(ipv4_mask(24), 0xffff_ff00);
        assert_eq!(ipv4_mask(32), u32::MAX);
        assert_eq!(ipv6_mask(0), 0);
        assert_eq!(ipv6_mask(64), u128::MAX << 64);
        assert_eq!(ipv6_mask(128), u128::MAX);
    }

    proptest::proptest! {
        /// Display and FromStr round-trip, and a prefix contains exactly the
        /// addresses whose masked bits equal its network.
        #[test]
        fn round_trip_and_containment(a in proptest::num::u32::ANY, b in proptest::num::u32::ANY, len in 0u8..=32) {
            let prefix = IpPrefix::new(IpAddr::V4(Ipv4Addr::from(a)), len).unwrap();
            proptest::prop_assert_eq!(prefix.to_string().parse::<IpPrefix>().unwrap(), prefix);
            proptest::prop_assert!(prefix.contains(IpAddr::V4(Ipv4Addr::from(a))));
            let b = IpAddr::V4(Ipv4Addr::from(b));
            proptest::prop_assert_eq!(
                prefix.contains(b),
                IpPrefix::new(b, len).unwrap() == prefix
            );
            proptest::prop_assert!(prefix.overlaps(&IpPrefix::host(b)) == prefix.contains(b));
        }
    }
}
