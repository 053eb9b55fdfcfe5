//! What the pipeline decides for a frame, and the named reasons for
//! dropping one (each a counter and a metric label).

use core::fmt;

use crate::config::PortId;

/// The decision for one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Send the frame, rewritten in place, out of `port`. It now lies at
    /// `buf[offset..offset + len]`, which may differ from where it arrived
    /// (a VLAN tag pushed into the headroom or popped, a reply that grew).
    Transmit {
        /// The egress port.
        port: PortId,
        /// Where the frame now starts in the buffer.
        offset: usize,
        /// Its length now.
        len: usize,
    },
    /// Hand the frame, unchanged, to the host stack.
    Pass,
    /// Drop the frame.
    Drop(DropReason),
}

macro_rules! drop_reasons {
    ($( $(#[$doc:meta])* $variant:ident => $label:literal, )+) => {
        /// Why a frame was dropped. Each has a stable `snake_case` label
        /// ([`as_str`](DropReason::as_str)) for metrics.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum DropReason {
            $( $(#[$doc])* $variant, )+
        }

        impl DropReason {
            /// Every reason, in declaration order (`ALL[r as usize] == r`).
            pub const ALL: &'static [DropReason] = &[ $( DropReason::$variant, )+ ];

            /// How many reasons there are.
            pub const COUNT: usize = Self::ALL.len();

            /// The metric label.
            pub const fn as_str(&self) -> &'static str {
                match self {
                    $( DropReason::$variant => $label, )+
                }
            }

            /// The position of this reason in [`ALL`](Self::ALL).
            pub const fn index(&self) -> usize {
                *self as usize
            }
        }
    };
}

drop_reasons! {
    /// The frame arrived on a port the tables do not know.
    UnknownPort => "unknown_port",
    /// The frame is shorter than its Ethernet (and 802.1Q) header, or lies
    /// outside the buffer.
    TruncatedFrame => "truncated_frame",
    /// The source MAC is a group (multicast or broadcast) address.
    InvalidSourceMac => "invalid_source_mac",
    /// The frame carries stacked tags (Q-in-Q), which no logical interface
    /// describes.
    DoubleTagged => "double_tagged",
    /// A tagged frame arrived on a host port, which carries untagged
    /// frames only.
    TaggedOnHostPort => "tagged_on_host_port",
    /// No logical interface is bound to the frame's (port, VLAN).
    NoLogicalInterface => "no_logical_interface",
    /// Port security: the source MAC (or the ARP/ND sender's link-layer
    /// address) is neither the VMI's MAC nor an allowed-pair MAC.
    SourceMacSpoofed => "source_mac_spoofed",
    /// Port security: the source IP (or ARP sender address) is neither one
    /// of the VMI's addresses nor inside an allowed-pair prefix.
    SourceIpSpoofed => "source_ip_spoofed",
    /// ARP that is truncated or not Ethernet/IPv4.
    MalformedArp => "malformed_arp",
    /// ARP other than a request (replies go nowhere yet).
    ArpNotRequest => "arp_not_request",
    /// A gratuitous ARP, or a probe for the sender's own address.
    GratuitousArp => "gratuitous_arp",
    /// An ARP request for an address that is neither a gateway address nor
    /// routed in the VRF.
    ArpUnknownTarget => "arp_unknown_target",
    /// An IPv4 header with a bad version or lengths.
    MalformedIpv4 => "malformed_ipv4",
    /// An IPv4 header whose checksum is wrong.
    Ipv4BadChecksum => "ipv4_bad_checksum",
    /// An IPv6 header with a bad version or length.
    MalformedIpv6 => "malformed_ipv6",
    /// An ICMP or ICMPv6 message for the gateway that is truncated or has a
    /// wrong checksum.
    MalformedIcmp => "malformed_icmp",
    /// A neighbour solicitation that breaks RFC 4861 (hop limit, checksum,
    /// code, options, target or destination).
    MalformedNeighborDiscovery => "malformed_nd",
    /// Neighbour discovery other than a solicitation (router solicitations,
    /// unsolicited advertisements, redirects).
    NdUnsupported => "nd_unsupported",
    /// A neighbour solicitation for an address that is neither a gateway
    /// address nor routed in the VRF.
    NdUnknownTarget => "nd_unknown_target",
    /// A neighbour solicitation for the sender's own address (duplicate
    /// address detection): answering would make it give the address up.
    NdOwnAddress => "nd_own_address",
    /// Broadcast or multicast other than ARP and neighbour solicitation:
    /// flooding is not implemented yet.
    Multicast => "multicast",
    /// The destination MAC is neither the gateway's nor a VMI's of the
    /// network (unknown unicast is not flooded).
    UnknownUnicast => "unknown_unicast",
    /// The frame would leave where it came from.
    Hairpin => "hairpin",
    /// A frame for the gateway MAC that is neither ARP, IPv4 nor IPv6.
    UnsupportedEtherType => "unsupported_ethertype",
    /// No route in the VRF matches the destination.
    NoRoute => "no_route",
    /// The matching route discards.
    DiscardRoute => "discard_route",
    /// TTL or hop limit too low to forward.
    TtlExceeded => "ttl_exceeded",
    /// The destination VMI has no logical interface on this node.
    VmiUnreachable => "vmi_unreachable",
    /// Traffic for a gateway address other than an echo request.
    ReceiveUnsupported => "receive_unsupported",
    /// Pushing a VLAN tag needs four bytes of headroom before the frame.
    NoHeadroom => "no_headroom",
    /// The reply is longer than the request and the buffer has no room
    /// after the frame.
    NoTailroom => "no_tailroom",
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_snake_case_and_indexed() {
        let mut labels: Vec<&str> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        for (i, reason) in DropReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i);
            assert!(
                reason
                    .as_str()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
            );
        }
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), DropReason::COUNT);
    }
}
