//! What the pipeline decides for a frame, and the named reasons for
//! dropping one (each a counter and a metric label).

use core::fmt;

use crate::config::PortId;
use crate::tables::{PeerId, VmiId};

/// The decision for one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Send the frame, rewritten in place, out of `port`. It now lies at
    /// `buf[offset..offset + len]`, which may differ from where it arrived
    /// (a VLAN tag pushed into the headroom or popped, a reply that grew,
    /// outer headers of a tunnel). When it goes to (or answers) a VMI, `vmi`
    /// names it: the caller counts the VMI's transmit counters once the frame
    /// is really sent ([`Pipeline::sent`](crate::Pipeline::sent)).
    Transmit {
        /// The egress port.
        port: PortId,
        /// Where the frame now starts in the buffer.
        offset: usize,
        /// Its length now.
        len: usize,
        /// The VMI the frame is sent to, if any.
        vmi: Option<VmiId>,
    },
    /// Send a copy of the frame to every member of a network's flood list
    /// but where it came from; see [`Pipeline::flood_members`](crate::Pipeline::flood_members).
    Flood(Flood),
    /// Hand the frame, unchanged, to the host stack.
    Pass,
    /// Drop the frame.
    Drop(DropReason),
}

/// A frame to replicate: `buf[offset..offset + len]` is the Ethernet frame
/// as it should be copied (possibly tagged; left unchanged by the pipeline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flood {
    /// The VRF (its position in the tables) whose flood list applies.
    pub(crate) vrf: u32,
    /// Where the frame to copy starts.
    pub offset: usize,
    /// Its length.
    pub len: usize,
    /// Where it came from: never sent back there.
    pub(crate) from: FloodSource,
}

/// Where a flooded frame came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum FloodSource {
    /// A logical interface: (port, VLAN).
    Local { port: PortId, vlan: u16 },
    /// A host port.
    Host,
    /// A tunnel peer: the copies go to local members only (split horizon).
    Tunnel(PeerId),
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
    /// A neighbour or router solicitation that breaks RFC 4861 (hop limit, checksum,
    /// code, options, target or destination).
    MalformedNeighborDiscovery => "malformed_nd",
    /// Neighbour discovery the gateway does not take: advertisements,
    /// redirects, router advertisements from instances, and router
    /// solicitations where no advertisement is due (a network without an
    /// IPv6 subnet, or from a tunnel or host port).
    NdUnsupported => "nd_unsupported",
    /// A neighbour solicitation for an address that is neither a gateway
    /// address nor routed in the VRF.
    NdUnknownTarget => "nd_unknown_target",
    /// A neighbour solicitation for the sender's own address (duplicate
    /// address detection): answering would make it give the address up.
    NdOwnAddress => "nd_own_address",
    /// Broadcast or multicast in a network that does not bridge (forwarding
    /// mode `L3`), or an IP packet to a multicast or broadcast address.
    Multicast => "multicast",
    /// The destination MAC is neither the gateway's nor a VMI's of the
    /// network, and the network does not flood unknown unicast.
    UnknownUnicast => "unknown_unicast",
    /// The frame would leave where it came from.
    Hairpin => "hairpin",
    /// A frame for the gateway MAC that is neither ARP, IPv4 nor IPv6.
    UnsupportedEtherType => "unsupported_ethertype",
    /// No route in the VRF matches the destination.
    NoRoute => "no_route",
    /// The matching route discards.
    DiscardRoute => "discard_route",
    /// TTL or hop limit too low to forward, and no ICMP time exceeded may
    /// answer it (it is an ICMP error itself, a fragment other than the
    /// first, or from a source outside the network's subnets); the others
    /// are answered.
    TtlExceeded => "ttl_exceeded",
    /// An ICMP error (time exceeded, fragmentation needed, packet too big)
    /// the worker's budget had no room for: the packet is dropped without
    /// one.
    IcmpRateLimited => "icmp_rate_limited",
    /// A question to the gateway (ARP, ND, echo, DHCP, router solicitation)
    /// or a packet it would answer with an ICMP error, from a VMI over its
    /// budget of answers ([`PuntLimit`](crate::config::PuntLimit)): dropped
    /// unanswered.
    PuntRateLimited => "punt_rate_limited",
    /// A DHCP (v4 or v6) message from an instance that is truncated, has a
    /// bad checksum, or breaks the protocol (no message type, not Ethernet,
    /// no client identifier).
    MalformedDhcp => "malformed_dhcp",
    /// A DHCP message the gateway's server does not answer: for another
    /// server, a reply, a release or decline (nothing to undo: addresses
    /// are the VMI's), a hardware address other than the instance's; or
    /// one its relay does not pass on: a request that crossed 16 relays, a
    /// server's reply for a client that is no VMI of this node.
    DhcpIgnored => "dhcp_ignored",
    /// A DHCP request from an instance whose VMI has no address of that
    /// family in one of its network's subnets (nothing to offer), or to
    /// relay from a network without an IPv4 subnet (no relay address).
    DhcpNoAddress => "dhcp_no_address",
    /// The destination VMI has no logical interface on this node.
    VmiUnreachable => "vmi_unreachable",
    /// Traffic for a gateway address other than an echo request.
    ReceiveUnsupported => "receive_unsupported",
    /// Pushing a VLAN tag needs four bytes of headroom before the frame.
    NoHeadroom => "no_headroom",
    /// The reply is longer than the request and the buffer has no room
    /// after the frame.
    NoTailroom => "no_tailroom",
    /// The outer tag is not an 802.1Q customer tag (802.1ad service tag,
    /// say): no logical interface describes it.
    UnsupportedTag => "unsupported_tag",
    /// A frame for the gateway MAC in a network that only bridges (`L2`).
    RoutingDisabled => "routing_disabled",
    /// A frame for another MAC in a network that only routes (`L3`).
    BridgingDisabled => "bridging_disabled",
    /// A tunnel packet from an address that is not a peer of this node.
    TunnelUnknownPeer => "tunnel_unknown_peer",
    /// A tunnel packet with a label that names no VMI or network here.
    TunnelUnknownLabel => "tunnel_unknown_label",
    /// A tunnel packet with a VNI that names no network here.
    TunnelUnknownVni => "tunnel_unknown_vni",
    /// A tunnel packet for a network the sending peer does not host.
    TunnelPeerNotInNetwork => "tunnel_peer_not_in_network",
    /// A tunnel packet whose UDP, MPLS or VXLAN header is malformed, whose
    /// UDP checksum is wrong, or whose inner frame is tagged or truncated.
    TunnelMalformed => "tunnel_malformed",
    /// A routed tunnel packet whose inner destination is not an address of
    /// the VMI its label names.
    TunnelWrongDestination => "tunnel_wrong_destination",
    /// A frame from a tunnel that would go back into a tunnel (split
    /// horizon: peers reach each other directly).
    TunnelHairpin => "tunnel_hairpin",
    /// The MAC of the underlay next hop toward the peer is not known yet
    /// (the agent resolves it from the host's neighbour table).
    TunnelUnresolved => "tunnel_unresolved",
    /// A bridged or flooded frame too large for the fabric's MTU once
    /// encapsulated (an Ethernet frame gets no ICMP error).
    TunnelMtuExceeded => "tunnel_mtu_exceeded",
    /// Gateway HA: this node is standby in the group whose member port the
    /// frame arrived on (or would leave by): only the active member
    /// receives, answers and sends there.
    HaStandby => "ha_standby",
    /// A packet too large for the egress MTU that no ICMP error answers:
    /// IPv4 without don't-fragment (the fast path does not fragment), an
    /// ICMP error itself, or from a source outside the network's subnets.
    FragmentationNeeded => "fragmentation_needed",
    /// A packet leaving the overlay by SNAT that is not TCP, UDP or an
    /// ICMP echo request, a fragment, or an IPv6 packet with extension
    /// headers: nothing to key a flow on.
    SnatUnsupported => "snat_unsupported",
    /// A packet leaving by SNAT of the other family than the node's
    /// underlay address (it has no address to translate to).
    SnatOtherFamily => "snat_other_family",
    /// Every port of the SNAT range toward that destination (address,
    /// port, protocol) is taken.
    SnatPortsExhausted => "snat_ports_exhausted",
    /// A packet to the underlay address on a SNAT port (or an ICMP error
    /// quoting one) that belongs to no flow: unsolicited, or its flow
    /// expired.
    SnatNoFlow => "snat_no_flow",
    /// The flow table is full: the first packet of a new flow is refused.
    FlowTableFull => "flow_table_full",
    /// A packet needs a flow, but the caller gave the pipeline no flow
    /// table.
    NoFlowTable => "no_flow_table",
    /// No security-group rule of the policed destination VMI allows the
    /// flow (its default deny), or it is an ICMP error about no allowed
    /// flow.
    PolicyIngressDenied => "policy_ingress_denied",
    /// No security-group rule of the policed source VMI allows the flow
    /// (its default deny), or it is an ICMP error about no allowed flow.
    PolicyEgressDenied => "policy_egress_denied",
    /// A policed VMI's IP packet without a transport to key a flow on: an
    /// IPv4 fragment, or a truncated TCP or UDP header.
    PolicyUnsupported => "policy_unsupported",
    /// A routed packet toward a VMI of another network that a network
    /// policy connects, which the policies' rules deny (a `Deny` rule, or
    /// no rule deciding), or an ICMP error about no allowed flow between
    /// them, or neither IPv4 nor IPv6.
    NetworkPolicyDenied => "network_policy_denied",
    /// A tunnel packet into a network that a network policy connects, whose
    /// inner source address is neither of the network itself from a peer
    /// hosting it nor of a connected network's VMI behind the peer it came
    /// from (a miss, a local VMI's address, a VMI of another node).
    NetworkPolicyUnknownSource => "network_policy_unknown_source",
    /// The host has no route out of the fabric port toward the destination
    /// of a packet leaving untunneled.
    FabricNoRoute => "fabric_no_route",
    /// The MAC of the fabric next hop of a packet leaving untunneled is not
    /// known yet (the agent resolves it from the host's neighbour table).
    FabricUnresolved => "fabric_unresolved",
    /// The frame was handed to a port that cannot pass it to the host stack
    /// (an AF_XDP port consumed it).
    PassLost => "pass_lost",
    /// The egress port is not open (missing, or failed to open).
    EgressDown => "egress_down",
    /// The transmit ring or socket buffer of the egress port was full.
    TxRingFull => "tx_ring_full",
    /// No free buffer on the egress port to copy the frame into.
    TxNoBuffer => "tx_no_buffer",
    /// The frame is larger than the buffers of a port it went through.
    FrameTooLarge => "frame_too_large",
    /// The kernel refused to send the frame.
    TxRefused => "tx_refused",
    /// The kernel dropped the frame before the AF_XDP ring: larger than a
    /// UMEM frame, or no free frame to receive into.
    RxKernelDropped => "rx_kernel_dropped",
    /// The AF_XDP receive ring was full: the forwarding thread fell behind.
    RxRingFull => "rx_ring_full",
}

impl DropReason {
    /// The reasons the I/O layer counts (a frame lost in a ring or refused
    /// by the kernel), never the pipeline's verdict.
    pub const IO: &'static [DropReason] = &[
        DropReason::PassLost,
        DropReason::EgressDown,
        DropReason::TxRingFull,
        DropReason::TxNoBuffer,
        DropReason::FrameTooLarge,
        DropReason::TxRefused,
        DropReason::RxKernelDropped,
        DropReason::RxRingFull,
    ];

    /// Whether the I/O layer counts this reason (see [`DropReason::IO`]).
    pub fn is_io(&self) -> bool {
        Self::IO.contains(self)
    }
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
