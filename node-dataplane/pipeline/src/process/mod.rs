//! The per-frame decision: bytes in, a [`Verdict`] out, the frame rewritten
//! in place. No I/O, no lock, no allocation. One file per stage:
//!
//! ```text
//!  frame from a port
//!   |
//!   +- fabric port (tunnel.rs) -- not a tunnel packet for us ----------> Pass
//!   |     UDP 6635: MPLS label -> a local VMI (inner IP) --------------> deliver to it
//!   |                          -> a network (inner Ethernet) -+
//!   |     UDP 4789: VXLAN VNI  -> a network (inner Ethernet) -+-> its VRF, from the tunnel
//!   |     unknown peer, label or VNI, a peer outside the network -> tunnel_* drops
//!   |     not a tunnel: the return of a SNAT flow (snat.rs), or to a subnet
//!   |     with IP fabric forwarding (fabric_forward.rs) -> into its VRF
//!   |
//!   +- gateway port: Ethernet [+ 802.1Q] -- untagged = VLAN 0
//!   |     (port, VLAN) -> VMI --------------- none --> no_logical_interface
//!   |     port security (source.rs): source MAC, source IP / ARP sender
//!   |     sent from an allowed pair's address -> it holds it now (address_pair.rs)
//!   |     DHCP client message -> the network's server (dhcp.rs, dhcpv6.rs),
//!   |                            or relayed to an external one (dhcp_relay.rs)
//!   |     the VMI's VRF -+
//!   +- host port (a VRF's tap), untagged -> that VRF -+
//!   |                                                 |
//!   |      +------------------------------------------+
//!   |      v destination MAC (this file: dispatch)
//!   |   broadcast/multicast: ARP request / IPv6 NS for the gateway or a routed
//!   |                        address -> proxy answer (neighbour.rs)
//!   |                        IPv6 RS -> router advertisement (router_advert.rs)
//!   |                        anything else -> flood (bridging networks) (flood.rs)
//!   |   gateway MAC: ARP / NS -> proxy; IPv4 / IPv6 -> route (route.rs):
//!   |       receive -> echo reply, DHCP server reply to relay | VMI -> re-tag (egress.rs) | host port
//!   |       remote VMI / peer -> encapsulate (tunnel.rs)
//!   |       DC gateway route -> MPLS over UDP with the route's label (tunnel.rs)
//!   |       no route, outside the network's subnets -> SNAT (snat.rs) or IP
//!   |         fabric forwarding (fabric_forward.rs) out of the fabric port
//!   |       TTL runs out, too big for the egress MTU -> ICMP error (icmp_error.rs)
//!   |   another MAC -> bridge: local VMI (re-tag) | remote VMI (encapsulate) | flood or drop
//!   |
//!   +- gateway HA (ha.rs): a standby member port neither receives nor sends; a VMI
//!      several nodes serve goes where its path cell says (here, or a peer)
//! ```
//!
//! Frames from a tunnel never go back into a tunnel (split horizon): the
//! peers of a network reach each other directly.
//!
//! The caller keeps [`HEADROOM`] bytes before every frame so that a tag or
//! a tunnel's outer headers can be written in front of it without moving
//! the payload, and may keep tailroom after it (a neighbour advertisement
//! can be longer than the solicitation it answers).

/// Tell the pipeline's observer that a stage decided: `note!(self, stage,
/// "decision", format_args!(...))`. The whole call, the formatting
/// arguments included, sits behind `if O::ACTIVE`, a constant: with
/// [`NoObserver`] nothing of it is evaluated or compiled in.
macro_rules! note {
    ($pipeline:expr, $stage:expr, $decision:expr, $detail:expr $(,)?) => {
        if O::ACTIVE {
            $pipeline.observer.stage($stage, $decision, $detail)
        }
    };
}

mod address_pair;
mod dhcp;
mod dhcp_relay;
mod dhcpv6;
mod egress;
mod fabric_forward;
mod flood;
mod ha;
mod icmp_error;
mod neighbour;
mod network_policy;
mod policy;
mod route;
mod router_advert;
mod snat;
mod source;
mod tunnel;

use trunkline_wire::ethernet::{self, EtherType};
use trunkline_wire::{EthernetAddress, icmpv6, vlan};

use crate::config::PortId;
use crate::counters::Counters;
use crate::observe::{NoObserver, Observer, Stage};
use crate::policy::Direction;
use crate::tables::{BridgeEntry, PeerId, PortRole, Tables, Vmi, VmiId, Vrf, mac_key};
use crate::verdict::{DropReason, Flood, FloodSource, Verdict};

pub use tunnel::MAX_OVERHEAD;

/// The headroom the caller must keep before each frame: room for a tunnel's
/// outer headers ([`MAX_OVERHEAD`]) or the headers of an ICMP error.
pub const HEADROOM: usize = 128;

/// The TTL / hop limit of the replies the gateway originates.
const REPLY_HOP_LIMIT: u8 = 64;

/// The layer-2 header of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2Header {
    /// The destination MAC.
    pub dst: EthernetAddress,
    /// The source MAC.
    pub src: EthernetAddress,
    /// The tag control information, if the frame has an 802.1Q tag.
    pub tci: Option<u16>,
    /// The EtherType of the payload (after the tag).
    pub ethertype: EtherType,
    /// Where the payload starts: 14, or 18 with a tag.
    pub header_len: usize,
}

impl L2Header {
    /// The VLAN: the tag's VID, or 0 when untagged.
    #[inline]
    pub fn vlan(&self) -> u16 {
        self.tci.map_or(0, |tci| tci & 0x0fff)
    }
}

/// Parse the Ethernet header and the optional 802.1Q tag: the first step of
/// every frame, and the fuzz target's entry point.
#[inline]
pub fn parse_l2(frame: &[u8]) -> Result<L2Header, DropReason> {
    let eth = ethernet::Frame::new_checked(frame).map_err(|_| DropReason::TruncatedFrame)?;
    let (tci, ethertype, header_len) = match eth.ethertype() {
        EtherType::Vlan => {
            let tag =
                vlan::Packet::new_checked(eth.payload()).map_err(|_| DropReason::TruncatedFrame)?;
            match tag.ethertype() {
                EtherType::Vlan | EtherType::QinQ => return Err(DropReason::DoubleTagged),
                inner => (
                    Some(tag.tci()),
                    inner,
                    ethernet::HEADER_LEN + vlan::HEADER_LEN,
                ),
            }
        }
        // An 802.1ad service tag: no logical interface describes one, and it
        // must never pass for an untagged frame.
        EtherType::QinQ => return Err(DropReason::UnsupportedTag),
        other => (None, other, ethernet::HEADER_LEN),
    };
    Ok(L2Header {
        dst: eth.dst_addr(),
        src: eth.src_addr(),
        tci,
        ethertype,
        header_len,
    })
}

/// One frame of a batch: `buf[offset..offset + len]` is the frame, with
/// headroom before it and possibly tailroom after it.
#[derive(Debug)]
pub struct FrameBuf<'b> {
    /// The buffer (a UMEM chunk, say).
    pub buf: &'b mut [u8],
    /// Where the frame starts.
    pub offset: usize,
    /// Its length.
    pub len: usize,
}

/// The pipeline for one batch: a snapshot of the tables, the worker's
/// counters and, when a network translates, the worker's flow table and
/// the time. Cheap to build; build one per batch after loading the tables.
#[derive(Debug, Clone, Copy)]
pub struct Pipeline<'a, O: Observer = NoObserver> {
    tables: &'a Tables,
    counters: &'a Counters,
    /// The worker's flow table (source NAT); without one, packets needing
    /// a flow are dropped (`no_flow_table`).
    flows: Option<&'a core::cell::RefCell<crate::flow::FlowTable>>,
    /// Now, in nanoseconds of the caller's monotonic clock (flow ages).
    now: u64,
    /// The caller's monotonic clock, in milliseconds, for the ICMP error
    /// budget (see [`Pipeline::at`]).
    now_ms: u64,
    /// Told each stage's decision (a trace); [`NoObserver`] on the
    /// forwarding path.
    observer: O,
}

/// Where a classified frame came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// A VMI's logical interface.
    Vmi(VmiId),
    /// A host port (a virtual gateway's tap).
    Host,
    /// A tunnel from a peer.
    Tunnel(PeerId),
}

/// A frame once classified: its port, its source and its VRF.
#[derive(Clone, Copy)]
struct Ingress<'a> {
    port: PortId,
    source: Source,
    vrf: &'a Vrf,
    vrf_index: usize,
    /// The VLAN it arrived on (0 for untagged, host ports and tunnels).
    vlan: u16,
}

/// Process one frame: see [`Pipeline::process`].
pub fn process(
    tables: &Tables,
    ingress: PortId,
    buf: &mut [u8],
    offset: usize,
    len: usize,
    counters: &Counters,
) -> Verdict {
    Pipeline::new(tables, counters).process(ingress, buf, offset, len)
}

impl<'a> Pipeline<'a> {
    /// A pipeline over these tables, counting into these counters.
    pub fn new(tables: &'a Tables, counters: &'a Counters) -> Pipeline<'a> {
        Pipeline {
            tables,
            counters,
            flows: None,
            now: 0,
            now_ms: 0,
            observer: NoObserver,
        }
    }
}

impl<'a, O: Observer> Pipeline<'a, O> {
    /// The same pipeline telling `observer` each stage's decision (a trace:
    /// see [`crate::trace`]).
    pub fn with_observer<P: Observer>(self, observer: P) -> Pipeline<'a, P> {
        Pipeline {
            tables: self.tables,
            counters: self.counters,
            flows: self.flows,
            now: self.now,
            now_ms: self.now_ms,
            observer,
        }
    }

    /// The same pipeline keeping connection state in `flows` (the worker's
    /// own table), at time `now_ns` (a monotonic clock, read once per
    /// batch).
    pub fn with_flows(
        self,
        flows: &'a core::cell::RefCell<crate::flow::FlowTable>,
        now_ns: u64,
    ) -> Pipeline<'a, O> {
        Pipeline {
            flows: Some(flows),
            now: now_ns,
            ..self
        }
    }

    /// The same pipeline at time `now_ms` (milliseconds of a monotonic
    /// clock the caller reads once per batch): the ICMP error budget
    /// refills with it. A pipeline never given a time spends its budget's
    /// burst and then sends no more errors.
    pub fn at(self, now_ms: u64) -> Pipeline<'a, O> {
        Pipeline { now_ms, ..self }
    }

    /// The tables this pipeline decides with.
    pub fn tables(&self) -> &'a Tables {
        self.tables
    }

    /// Decide what to do with the frame at `buf[offset..offset + len]` that
    /// arrived on `ingress`, rewriting it in place, and count the verdict.
    /// Never panics, whatever the bytes, offset and length.
    ///
    /// The verdict is counted as a decision; what is sent is counted by the
    /// caller once sent ([`Pipeline::sent`]), what could not be sent too
    /// ([`Pipeline::lost`]).
    pub fn process(&self, ingress: PortId, buf: &mut [u8], offset: usize, len: usize) -> Verdict {
        let verdict = self
            .decide(ingress, buf, offset, len)
            .unwrap_or_else(Verdict::Drop);
        self.counters.record(&verdict);
        verdict
    }

    /// Process a batch of frames that arrived on `ingress`, writing one
    /// verdict per frame; stops at the shorter of the two slices and
    /// returns how many frames it processed.
    pub fn process_batch(
        &self,
        ingress: PortId,
        frames: &mut [FrameBuf<'_>],
        verdicts: &mut [Verdict],
    ) -> usize {
        let n = frames.len().min(verdicts.len());
        for (frame, verdict) in frames.iter_mut().zip(verdicts.iter_mut()) {
            *verdict = self.process(ingress, frame.buf, frame.offset, frame.len);
        }
        n
    }

    /// Count a frame of `len` bytes that really left by a port, and, when it
    /// went to a VMI, that VMI's transmit counters.
    #[inline]
    pub fn sent(&self, vmi: Option<VmiId>, len: usize) {
        self.counters.sent(len);
        if let Some(vmi) = vmi.and_then(|id| self.tables.vmis.get(id.index())) {
            self.counters.vmi_tx(&vmi.counters, len);
        }
    }

    /// Count `n` frames lost outside the pipeline (by the I/O layer) for
    /// `reason`.
    #[inline]
    pub fn lost(&self, reason: DropReason, n: u64) {
        self.counters.lost(reason, n);
    }

    #[inline]
    fn decide(
        &self,
        ingress: PortId,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        match offset.checked_add(len) {
            Some(end) if end <= buf.len() => {}
            _ => return Err(DropReason::TruncatedFrame),
        }
        let port = self.tables.port(ingress).ok_or(DropReason::UnknownPort)?;
        match &port.role {
            PortRole::Fabric => {
                note!(
                    self,
                    Stage::Port,
                    "fabric",
                    format_args!("{} is the fabric port", port.name),
                );
                self.fabric(ingress, buf, offset, len)
            }
            PortRole::Gateway { .. } => {
                note!(
                    self,
                    Stage::Port,
                    "gateway",
                    format_args!("{} is a gateway (trunk) port", port.name),
                );
                self.ha_ingress(ingress)?;
                let l2 = parse_l2(&buf[offset..offset + len])?;
                note!(
                    self,
                    Stage::Parse,
                    "ethernet",
                    format_args!(
                        "{} -> {}, VLAN {}, {:?}",
                        l2.src,
                        l2.dst,
                        l2.vlan(),
                        l2.ethertype
                    ),
                );
                if l2.src.is_multicast() {
                    return Err(DropReason::InvalidSourceMac);
                }
                let Some(id) = port.vmi_at(l2.vlan()) else {
                    note!(
                        self,
                        Stage::Classify,
                        "none",
                        format_args!(
                            "no logical interface on ({}, VLAN {})",
                            port.name,
                            l2.vlan()
                        ),
                    );
                    return Err(DropReason::NoLogicalInterface);
                };
                let vmi = &self.tables.vmis[id.index()];
                note!(
                    self,
                    Stage::Classify,
                    "vmi",
                    format_args!(
                        "({}, VLAN {}) -> VMI {} in network {}",
                        port.name,
                        l2.vlan(),
                        vmi.key(),
                        vmi.network()
                    ),
                );
                // A VMI's counters live in the tables: a trace leaves them.
                if O::SIDE_EFFECTS {
                    self.counters.vmi_rx(&vmi.counters, len);
                }
                let result = self.classified(ingress, id, vmi, l2, buf, offset, len);
                if O::SIDE_EFFECTS && result.is_err() {
                    self.counters.vmi_rx_dropped(&vmi.counters);
                }
                result
            }
            PortRole::Host { vrf, .. } => {
                note!(
                    self,
                    Stage::Port,
                    "host",
                    format_args!(
                        "{} is the tap of network {}",
                        port.name, self.tables.vrfs[*vrf].network
                    ),
                );
                let l2 = parse_l2(&buf[offset..offset + len])?;
                if l2.tci.is_some() {
                    return Err(DropReason::TaggedOnHostPort);
                }
                if l2.src.is_multicast() {
                    return Err(DropReason::InvalidSourceMac);
                }
                let ctx = Ingress {
                    port: ingress,
                    source: Source::Host,
                    vrf: &self.tables.vrfs[*vrf],
                    vrf_index: *vrf,
                    vlan: 0,
                };
                self.dispatch(ctx, &l2, buf, offset, len)
            }
        }
    }

    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn classified(
        &self,
        port: PortId,
        id: VmiId,
        vmi: &Vmi,
        l2: L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        let l3 = &buf[offset + l2.header_len..offset + len];
        let checked = if vmi.port_security {
            source::check(vmi, &l2, l3).inspect_err(|reason| {
                note!(
                    self,
                    Stage::SourceCheck,
                    "refused",
                    format_args!(
                        "{reason}: not VMI {}'s own MAC and address, nor an allowed pair's",
                        vmi.key()
                    ),
                )
            })?
        } else {
            source::Checked::Owned
        };
        note!(
            self,
            Stage::SourceCheck,
            match (vmi.port_security, checked) {
                (false, _) => "disabled",
                (true, source::Checked::DhcpClient) => "dhcp_client",
                (true, _) => "passed",
            },
            format_args!(
                "source MAC {} and address allowed for VMI {}",
                l2.src,
                vmi.key()
            ),
        );
        self.ha_seen(vmi);
        let ctx = Ingress {
            port,
            source: Source::Vmi(id),
            vrf: &self.tables.vrfs[vmi.vrf],
            vrf_index: vmi.vrf,
            vlan: l2.vlan(),
        };
        if checked == source::Checked::Owned {
            self.learn_address_pair(id, vmi, l2.ethertype, l3);
        }
        if let Some(message) = dhcp::client_message(l2.ethertype, l3) {
            if let Some(server) = ctx.vrf.dhcp.as_deref() {
                note!(
                    self,
                    Stage::Dhcp,
                    "server",
                    format_args!("answered by network {}'s DHCP server", ctx.vrf.network),
                );
                return match message {
                    dhcp::ClientMessage::V4 => {
                        self.dhcp_v4(ctx, vmi, server, &l2, buf, offset, len)
                    }
                    dhcp::ClientMessage::V6 => {
                        self.dhcp_v6(ctx, vmi, server, &l2, buf, offset, len)
                    }
                };
            }
            if let (Some(relay), dhcp::ClientMessage::V4) = (ctx.vrf.dhcp_relay, message) {
                return self.dhcp_relay_request(ctx, vmi, relay, &l2, buf, offset, len);
            }
            // No server here: a client without an address may still reach
            // one among the instances, by bridging only.
            if checked == source::Checked::DhcpClient && !l2.dst.is_multicast() {
                return Err(DropReason::SourceIpSpoofed);
            }
        }
        if vmi.policy.is_some() && !l2.dst.is_multicast() {
            let (l3, end) = (offset + l2.header_len, offset + len);
            self.police(vmi, Direction::Egress, l2.ethertype, buf, l3, end)?;
        }
        self.dispatch(ctx, &l2, buf, offset, len)
    }

    /// A frame in its VRF: by destination MAC, to the neighbour proxy, the
    /// router, the bridge or the flood list.
    #[inline]
    fn dispatch(
        &self,
        ctx: Ingress<'a>,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        if l2.dst.is_multicast() {
            note!(
                self,
                Stage::Dispatch,
                "multicast",
                format_args!(
                    "{} is a group address, in network {}",
                    l2.dst, ctx.vrf.network
                ),
            );
            return self.multicast(ctx, l2, buf, offset, len);
        }
        if l2.dst == self.tables.gateway_mac {
            note!(
                self,
                Stage::Dispatch,
                "router",
                format_args!(
                    "{} is the gateway MAC, in network {}",
                    l2.dst, ctx.vrf.network
                ),
            );
            if !ctx.vrf.routes {
                return Err(DropReason::RoutingDisabled);
            }
            let l3 = &buf[offset + l2.header_len..offset + len];
            return match l2.ethertype {
                EtherType::Arp => self.arp(ctx, l2, buf, offset, len),
                EtherType::Ipv4 => self.route_v4(ctx, l2, buf, offset, len),
                EtherType::Ipv6 => match neighbour::nd_message(l3)? {
                    Some(icmpv6::Message::NeighborSolicit) => self.ns(ctx, l2, buf, offset, len),
                    Some(icmpv6::Message::RouterSolicit) => {
                        self.router_solicit(ctx, l2, buf, offset, len)
                    }
                    Some(_) => Err(DropReason::NdUnsupported),
                    None => self.route_v6(ctx, l2, buf, offset, len),
                },
                _ => Err(DropReason::UnsupportedEtherType),
            };
        }
        self.bridge(ctx, l2, buf, offset, len)
    }

    /// Broadcast and multicast: the neighbour proxy answers what it can
    /// (only for the gateway's own addresses when the question came through
    /// a tunnel: the asker's peers answer for their own instances);
    /// everything else is flooded in a bridging network.
    fn multicast(
        &self,
        ctx: Ingress<'a>,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        let l3 = &buf[offset + l2.header_len..offset + len];
        let unanswered = if ctx.vrf.routes {
            let answer = match l2.ethertype {
                EtherType::Arp => Some(self.arp(ctx, l2, buf, offset, len)),
                EtherType::Ipv6 => match neighbour::nd_message(l3)? {
                    Some(icmpv6::Message::NeighborSolicit) => {
                        Some(self.ns(ctx, l2, buf, offset, len))
                    }
                    Some(icmpv6::Message::RouterSolicit) => {
                        Some(self.router_solicit(ctx, l2, buf, offset, len))
                    }
                    Some(_) => Some(Err(DropReason::NdUnsupported)),
                    None => None,
                },
                _ => None,
            };
            match answer {
                None => DropReason::Multicast,
                Some(Ok(verdict)) => return Ok(verdict),
                // Malformed questions are never flooded.
                Some(Err(reason)) if !neighbour::floodable(reason) => return Err(reason),
                Some(Err(reason)) => reason,
            }
        } else {
            DropReason::Multicast
        };
        // A host port is a routed attachment: what it broadcasts stays out
        // of the network's layer 2.
        if ctx.vrf.bridges && ctx.source != Source::Host {
            Ok(self.flood(ctx, offset, len))
        } else {
            Err(unanswered)
        }
    }

    /// Layer-2 unicast to a MAC other than the gateway's: bridge within the
    /// network.
    fn bridge(
        &self,
        ctx: Ingress<'a>,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        note!(
            self,
            Stage::Dispatch,
            "bridge",
            format_args!(
                "{} is not the gateway MAC, in network {}",
                l2.dst, ctx.vrf.network
            ),
        );
        if !ctx.vrf.bridges {
            return Err(DropReason::BridgingDisabled);
        }
        let entry = ctx.vrf.bridge.get(&mac_key(l2.dst));
        note!(
            self,
            Stage::Bridge,
            if entry.is_some() { "known" } else { "unknown" },
            format_args!("{} -> {:?}", l2.dst, entry),
        );
        match entry {
            Some(&BridgeEntry::Vmi(to)) => match ctx.source {
                Source::Vmi(from) if from == to => Err(DropReason::Hairpin),
                // A host port is routed, never bridged.
                Source::Host => Err(DropReason::UnknownUnicast),
                _ => self.send_to_local_vmi(ctx, to, l2, buf, offset, len, false),
            },
            Some(&BridgeEntry::Remote(to)) => match ctx.source {
                Source::Tunnel(_) => Err(DropReason::TunnelHairpin),
                Source::Host => Err(DropReason::UnknownUnicast),
                Source::Vmi(_) => self.bridge_to_remote(to, l2, buf, offset, len),
            },
            None if ctx.vrf.flood_unknown_unicast && ctx.source != Source::Host => {
                Ok(self.flood(ctx, offset, len))
            }
            None => Err(DropReason::UnknownUnicast),
        }
    }

    /// The frame, as it is, to every member of the VRF's flood list but its
    /// source (the caller replicates it: see [`Pipeline::flood_members`]).
    fn flood(&self, ctx: Ingress<'a>, offset: usize, len: usize) -> Verdict {
        let from = match ctx.source {
            Source::Vmi(_) => FloodSource::Local {
                port: ctx.port,
                vlan: ctx.vlan,
            },
            Source::Host => FloodSource::Host,
            Source::Tunnel(peer) => FloodSource::Tunnel(peer),
        };
        Verdict::Flood(Flood {
            vrf: ctx.vrf_index as u32,
            offset,
            len,
            from,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
pub(crate) mod tests_first_minute;
#[cfg(test)]
pub(crate) mod tests_ha;
#[cfg(test)]
pub(crate) mod tests_network_policy;
#[cfg(test)]
pub(crate) mod tests_north_south;
#[cfg(test)]
pub(crate) mod tests_overlay;
#[cfg(test)]
pub(crate) mod tests_policy;
#[cfg(test)]
mod tests_trace;
