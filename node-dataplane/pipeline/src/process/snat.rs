//! Distributed source NAT (seed 004): a VMI's packet to a destination its
//! network does not route leaves the fabric port with the node's underlay
//! address as source, and the replies come back into the right VRF. No
//! state is shared between nodes: each translates its own VMIs.
//!
//! ```text
//!  out: VMI 192.168.1.10:40000 -> 10.0.0.253:5001 (TCP, VRF 4100)
//!       flow table: forward {4100, tcp, .10 -> .253, 40000 -> 5001}
//!         hit:  its port;  miss: a free port of the range (the instance's
//!               own when free, else from a keyed hash, probing up to 128),
//!               forward + reverse entries (flow.rs)
//!       src := 10.0.0.1:61234, checksums updated incrementally, TTL - 1 -> fabric
//!  in:  10.0.0.253:5001 -> 10.0.0.1:61234 on the fabric port
//!       flow table: reverse {0, tcp, .253 -> 10.0.0.1, 5001 -> 61234}
//!       dst := 192.168.1.10:40000 -> VRF 4100 -> the VMI
//!  in:  an ICMP error to 10.0.0.1 quoting 10.0.0.1:61234 -> 10.0.0.253:5001
//!       the same reverse entry; outer destination, quoted source and port
//!       rewritten, checksums (quoted IP, quoted L4, ICMP) fixed -> the VMI
//! ```
//!
//! TCP, UDP and ICMP echo (the identifier is translated like a port, RFC
//! 5508); ICMP errors about a flow; IPv4, and IPv6 without extension
//! headers, in the family of the underlay address. Mapping is endpoint
//! dependent (the translated port is unique per destination address, port
//! and protocol, as Linux's masquerade), so a port range serves many more
//! flows than it has ports. A flow decided under another configuration (a
//! changed underlay address, port range or exit: the VRF's generation) is
//! decided again; an expired one is gone.

use crate::observe::Observer;
use core::net::IpAddr;

use trunkline_wire::{IpProtocol, checksum, icmpv4, icmpv6, ipv4, ipv6, tcp, udp};

use super::fabric_forward::{decrement_hop_limit, hop_limit_left};
use super::{Ingress, L2Header, Pipeline, Source};
use crate::config::{FabricExit, PortId};
use crate::flow::{EntryId, FABRIC_VRF, FlowAction, FlowError, FlowKey, FlowTable, FlowValue};
use crate::verdict::{DropReason, Verdict};

/// How many ports are tried for a new flow before giving up (OVS tries 128).
const MAX_PROBES: u32 = 128;

/// The transport of a packet, as translation sees it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Transport {
    /// 4 or 6.
    pub(super) family: u8,
    pub(super) proto: u8,
    /// Where the IP header, the transport header and the packet end, in
    /// the buffer.
    pub(super) l3: usize,
    pub(super) l4: usize,
    pub(super) end: usize,
    pub(super) src: IpAddr,
    pub(super) dst: IpAddr,
    /// Ports; for ICMP echo the identifier in `sport` (requests) or
    /// `dport` (replies, seen from the other side), the other one 0.
    pub(super) sport: u16,
    pub(super) dport: u16,
    pub(super) kind: Kind,
    pub(super) tcp_flags: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Tcp,
    Udp,
    EchoRequest,
    EchoReply,
    /// An ICMP error: the quoted packet starts 8 bytes into the message.
    IcmpError,
    Other,
}

impl Kind {
    /// Where the checksum covering a port (or identifier) lies, relative to
    /// the transport header, and whether a zero there means "none" (UDP
    /// over IPv4).
    fn checksum(self, family: u8) -> Option<(usize, bool)> {
        match self {
            Kind::Tcp => Some((tcp::CHECKSUM_AT, false)),
            Kind::Udp => Some((6, family == 4)),
            Kind::EchoRequest | Kind::EchoReply | Kind::IcmpError => Some((2, false)),
            Kind::Other => None,
        }
    }

    /// Whether the pseudo-header (addresses) is under the checksum.
    fn pseudo_header(self, family: u8) -> bool {
        matches!(self, Kind::Tcp | Kind::Udp) || family == 6
    }
}

/// A checksum field to update: where, and whether zero means "none".
#[derive(Clone, Copy)]
struct Sum {
    at: usize,
    optional_zero: bool,
}

/// Replace `buf[at..at + new.len()]` (an even length) by `new`, updating
/// each checksum of `sums` that covers it, incrementally (RFC 1624).
fn patch(buf: &mut [u8], at: usize, new: &[u8], sums: &[Sum]) {
    for (i, word) in new.chunks_exact(2).enumerate() {
        let old = u16::from_be_bytes([buf[at + 2 * i], buf[at + 2 * i + 1]]);
        let new = u16::from_be_bytes([word[0], word[1]]);
        for sum in sums {
            let current = u16::from_be_bytes([buf[sum.at], buf[sum.at + 1]]);
            if sum.optional_zero && current == 0 {
                continue;
            }
            let mut updated = checksum::update(current, old, new);
            if sum.optional_zero && updated == 0 {
                updated = 0xffff;
            }
            buf[sum.at..sum.at + 2].copy_from_slice(&updated.to_be_bytes());
        }
    }
    buf[at..at + new.len()].copy_from_slice(new);
}

fn addr_octets(ip: IpAddr) -> ([u8; 16], usize) {
    match ip {
        IpAddr::V4(a) => {
            let mut out = [0u8; 16];
            out[..4].copy_from_slice(&a.octets());
            (out, 4)
        }
        IpAddr::V6(a) => (a.octets(), 16),
    }
}

/// Where the source and destination addresses lie in an IP header.
const fn addr_fields(family: u8) -> (usize, usize) {
    if family == 4 { (12, 16) } else { (8, 24) }
}

/// Read the transport of the IP packet at `buf[l3..]` (the frame ends at
/// `frame_end`).
pub(super) fn transport(buf: &[u8], l3: usize, frame_end: usize) -> Result<Transport, DropReason> {
    let packet = &buf[l3..frame_end];
    let (family, proto, l4, end, src, dst) = match packet.first().map(|b| b >> 4) {
        Some(4) => {
            let ip = ipv4::Packet::new_checked(packet).map_err(|_| DropReason::MalformedIpv4)?;
            if ip.is_fragment() {
                return Err(DropReason::SnatUnsupported);
            }
            (
                4,
                ip.protocol(),
                l3 + usize::from(ip.header_len()),
                l3 + usize::from(ip.total_len()),
                IpAddr::V4(ip.src_addr()),
                IpAddr::V4(ip.dst_addr()),
            )
        }
        Some(6) => {
            let ip = ipv6::Packet::new_checked(packet).map_err(|_| DropReason::MalformedIpv6)?;
            (
                6,
                ip.next_header(),
                l3 + ipv6::HEADER_LEN,
                l3 + ipv6::HEADER_LEN + usize::from(ip.payload_len()),
                IpAddr::V6(ip.src_addr()),
                IpAddr::V6(ip.dst_addr()),
            )
        }
        _ => return Err(DropReason::MalformedIpv4),
    };
    let segment = &buf[l4..end];
    let (kind, sport, dport, tcp_flags) = match (family, proto) {
        (_, IpProtocol::Tcp) => {
            let t = tcp::Packet::new_checked(segment).map_err(|_| DropReason::SnatUnsupported)?;
            (Kind::Tcp, t.src_port(), t.dst_port(), t.flags())
        }
        (_, IpProtocol::Udp) => {
            let u = udp::Packet::new_checked(segment).map_err(|_| DropReason::SnatUnsupported)?;
            (Kind::Udp, u.src_port(), u.dst_port(), 0)
        }
        (4, IpProtocol::Icmp) => {
            let icmp =
                icmpv4::Packet::new_checked(segment).map_err(|_| DropReason::MalformedIcmp)?;
            match icmp.msg_type() {
                icmpv4::Message::EchoRequest => (Kind::EchoRequest, icmp.echo_ident(), 0, 0),
                icmpv4::Message::EchoReply => (Kind::EchoReply, 0, icmp.echo_ident(), 0),
                icmpv4::Message::DstUnreachable | icmpv4::Message::TimeExceeded => {
                    (Kind::IcmpError, 0, 0, 0)
                }
                icmpv4::Message::Unknown(12) => (Kind::IcmpError, 0, 0, 0),
                _ => (Kind::Other, 0, 0, 0),
            }
        }
        (6, IpProtocol::Icmpv6) => {
            let icmp =
                icmpv6::Packet::new_checked(segment).map_err(|_| DropReason::MalformedIcmp)?;
            match u8::from(icmp.msg_type()) {
                128 => (Kind::EchoRequest, icmp.echo_ident(), 0, 0),
                129 => (Kind::EchoReply, 0, icmp.echo_ident(), 0),
                1..=4 => (Kind::IcmpError, 0, 0, 0),
                _ => (Kind::Other, 0, 0, 0),
            }
        }
        _ => (Kind::Other, 0, 0, 0),
    };
    Ok(Transport {
        family,
        proto: u8::from(proto),
        l3,
        l4,
        end,
        src,
        dst,
        sport,
        dport,
        kind,
        tcp_flags,
    })
}

/// Where a port (or ICMP identifier) lies relative to the transport
/// header: the source side or the destination side.
const fn port_at(kind: Kind, source: bool) -> usize {
    match (kind, source) {
        (Kind::EchoRequest | Kind::EchoReply, _) => 4,
        (_, true) => 0,
        (_, false) => 2,
    }
}

/// Rewrite the source (`source`) or destination address and port of the
/// packet `t` to `addr:port`, with every checksum updated.
fn rewrite(buf: &mut [u8], t: &Transport, source: bool, addr: IpAddr, port: u16) {
    let (src_at, dst_at) = addr_fields(t.family);
    let (octets, n) = addr_octets(addr);
    let l4_sum = t.kind.checksum(t.family).map(|(at, optional_zero)| Sum {
        at: t.l4 + at,
        optional_zero,
    });
    let mut sums = [Sum {
        at: t.l3 + 10,
        optional_zero: false,
    }; 2];
    let mut k = 0;
    if t.family == 4 {
        k = 1;
    }
    if let Some(s) = l4_sum.filter(|_| t.kind.pseudo_header(t.family)) {
        sums[k] = s;
        k += 1;
    }
    let at = t.l3 + if source { src_at } else { dst_at };
    patch(buf, at, &octets[..n], &sums[..k]);
    let port_sums: &[Sum] = match &l4_sum {
        Some(s) => core::slice::from_ref(s),
        None => &[],
    };
    patch(
        buf,
        t.l4 + port_at(t.kind, source),
        &port.to_be_bytes(),
        port_sums,
    );
}

impl<'a, O: Observer> Pipeline<'a, O> {
    fn flow_table(&self) -> Result<core::cell::RefMut<'a, FlowTable>, DropReason> {
        self.flows
            .map(|f| f.borrow_mut())
            .ok_or(DropReason::NoFlowTable)
    }

    /// A VMI's packet out by SNAT (the VRF routes nothing for it).
    pub(super) fn snat_out(
        &self,
        ctx: Ingress<'a>,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        let underlay = self.tables.underlay.ok_or(DropReason::NoRoute)?;
        let ip_at = offset + l2.header_len;
        let t = transport(buf, ip_at, offset + len)?;
        if t.src.is_ipv4() != underlay.addr.is_ipv4() {
            return Err(DropReason::SnatOtherFamily);
        }
        if !matches!(t.kind, Kind::Tcp | Kind::Udp | Kind::EchoRequest) {
            return Err(DropReason::SnatUnsupported);
        }
        let ip_len = t.end - t.l3;
        hop_limit_left(&buf[t.l3..t.end])?;
        let mtu = self.fabric_mtu()?;
        if ip_len > mtu {
            return self.too_big(ctx, l2, buf, offset, len, mtu);
        }
        // Resolved before any state is made for a packet that cannot leave.
        let next_hop = self.fabric_next_hop(t.dst)?;
        let key = FlowKey::new(ctx.vrf.id, t.proto, t.src, t.dst, t.sport, t.dport);
        let port = {
            let mut table = self.flow_table()?;
            let id = match table.lookup(&key) {
                Some(id) if self.flow_valid(&table, id, ctx.vrf.generation) => id,
                stale => {
                    if let Some(id) = stale {
                        table.remove(id);
                    }
                    self.new_flow(
                        &mut table,
                        ctx.vrf.id,
                        ctx.vrf.generation,
                        &t,
                        underlay.addr,
                        key,
                    )?
                }
            };
            table.touch(id, self.now, ip_len, t.tcp_flags);
            table.value(id).nat_port()
        };
        rewrite(buf, &t, true, underlay.addr, port);
        decrement_hop_limit(&mut buf[t.l3..t.end]);
        self.onto_fabric(buf, t.l3, ip_len, l2.ethertype, next_hop)
    }

    /// Whether entry `id` can be trusted: decided under `generation` and
    /// not idle past its timeout.
    fn flow_valid(&self, table: &FlowTable, id: EntryId, generation: u32) -> bool {
        table.value(id).generation == generation && !table.expired(id, self.now)
    }

    /// A new flow for `t` leaving VRF `vrf` through `underlay`: a free port
    /// and both entries.
    fn new_flow(
        &self,
        table: &mut FlowTable,
        vrf: u32,
        generation: u32,
        t: &Transport,
        underlay: IpAddr,
        key: FlowKey,
    ) -> Result<EntryId, DropReason> {
        let (lo, hi) = self.tables.north_south.snat_ports;
        let span = u32::from(hi) - u32::from(lo) + 1;
        let reverse = |port: u16| {
            let (sport, dport) = if t.kind == Kind::EchoRequest {
                (port, 0)
            } else {
                (t.dport, port)
            };
            FlowKey::new(FABRIC_VRF, t.proto, t.dst, underlay, sport, dport)
        };
        // The instance's own port when it is in the range (RFC 4787 REQ-3
        // asks to keep the port's range; keeping the port itself is nicer),
        // else one spread by a keyed hash.
        let first = if (lo..=hi).contains(&t.sport) {
            u32::from(t.sport - lo)
        } else {
            (table.hash(&key) % u64::from(span)) as u32
        };
        let port = (0..span.min(MAX_PROBES))
            .map(|i| lo + ((first + i) % span) as u16)
            .find(|p| !table.contains(&reverse(*p)));
        let Some(port) = port else {
            table.stats().port_exhausted();
            return Err(DropReason::SnatPortsExhausted);
        };
        let now = self.now;
        let forward = FlowValue::new(
            FlowAction::Snat,
            FABRIC_VRF,
            underlay,
            port,
            generation,
            now,
        );
        let back = FlowValue::new(FlowAction::Unsnat, vrf, t.src, t.sport, generation, now);
        table
            .insert((key, forward), (reverse(port), back))
            .map_err(|e| match e {
                FlowError::Full => DropReason::FlowTableFull,
                // The forward key was just looked up and removed if stale,
                // and the reverse one found free.
                FlowError::Exists => DropReason::SnatPortsExhausted,
            })
    }

    /// A packet to the underlay address that is not a tunnel packet: the
    /// return of a SNAT flow (a reply, or an ICMP error quoting one) goes
    /// back into its VRF; `None`: the host's.
    pub(super) fn snat_in(
        &self,
        ingress: PortId,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Option<Result<Verdict, DropReason>> {
        let ns = &self.tables.north_south;
        if ns.snat_networks == 0 {
            return None;
        }
        let l2 = super::parse_l2(&buf[offset..offset + len]).ok()?;
        let t = transport(buf, offset + l2.header_len, offset + len).ok()?;
        if t.family == 4 && !ipv4::Packet::new_unchecked(&buf[t.l3..t.end]).verify_checksum() {
            return Some(Err(DropReason::Ipv4BadChecksum));
        }
        let key = match t.kind {
            Kind::Tcp | Kind::Udp if ns.in_snat_range(t.dport) => {
                FlowKey::new(FABRIC_VRF, t.proto, t.src, t.dst, t.sport, t.dport)
            }
            Kind::EchoReply if ns.in_snat_range(t.dport) => {
                FlowKey::new(FABRIC_VRF, t.proto, t.src, t.dst, t.dport, 0)
            }
            Kind::IcmpError => {
                let quoted = quoted(buf, &t)?;
                if quoted.src != t.dst || !ns.in_snat_range(quoted.port) {
                    return None;
                }
                quoted.key
            }
            _ => return None,
        };
        Some(self.unsnat(ingress, l2, buf, offset, len, &t, key))
    }

    #[allow(clippy::too_many_arguments)]
    fn unsnat(
        &self,
        ingress: PortId,
        l2: L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
        t: &Transport,
        key: FlowKey,
    ) -> Result<Verdict, DropReason> {
        let (vrf_index, addr, port) = {
            let mut table = self.flow_table()?;
            let id = table.lookup(&key).ok_or(DropReason::SnatNoFlow)?;
            let value = *table.value(id);
            let vrf_index = self.tables.vrf_ids.get(&value.nat_vrf).copied();
            let live = vrf_index.is_some_and(|v| {
                let vrf = &self.tables.vrfs[v];
                vrf.exit == FabricExit::Snat && self.flow_valid(&table, id, vrf.generation)
            });
            match (vrf_index, value.action()) {
                (Some(v), Some(FlowAction::Unsnat)) if live => {
                    table.touch(id, self.now, t.end - t.l3, t.tcp_flags);
                    (v, value.nat_addr(t.family), value.nat_port())
                }
                _ => {
                    table.remove(id);
                    return Err(DropReason::SnatNoFlow);
                }
            }
        };
        if t.kind == Kind::IcmpError {
            untranslate_error(buf, t, addr, port);
        } else {
            rewrite(buf, t, false, addr, port);
        }
        let ctx = Ingress {
            port: ingress,
            source: Source::Host,
            vrf: &self.tables.vrfs[vrf_index],
            vrf_index,
            vlan: 0,
        };
        self.route_from_fabric(ctx, &l2, buf, offset, len, addr)
    }
}

/// What an ICMP error quotes: the packet we sent (underlay -> remote).
struct Quoted {
    /// The quoted source (our underlay address, if it is one of ours).
    src: IpAddr,
    /// The quoted source port (our translated port or identifier).
    port: u16,
    /// The key of the flow's reverse entry.
    key: FlowKey,
}

/// The IP header quoted by the ICMP error `t`, and where it lies.
pub(super) fn quoted_header(
    buf: &[u8],
    t: &Transport,
) -> Option<(usize, usize, u8, IpAddr, IpAddr)> {
    let at = t.l4 + 8;
    let bytes = buf.get(at..t.end)?;
    match (t.family, bytes.first().map(|b| b >> 4)) {
        (4, Some(4)) => {
            let ihl = usize::from(bytes[0] & 0x0f) * 4;
            if ihl < ipv4::HEADER_LEN || bytes.len() < ihl + 8 {
                return None;
            }
            let ip = ipv4::Packet::new_unchecked(bytes);
            Some((
                at,
                at + ihl,
                u8::from(ip.protocol()),
                IpAddr::V4(ip.src_addr()),
                IpAddr::V4(ip.dst_addr()),
            ))
        }
        (6, Some(6)) if bytes.len() >= ipv6::HEADER_LEN + 8 => {
            let ip = ipv6::Packet::new_unchecked(bytes);
            Some((
                at,
                at + ipv6::HEADER_LEN,
                u8::from(ip.next_header()),
                IpAddr::V6(ip.src_addr()),
                IpAddr::V6(ip.dst_addr()),
            ))
        }
        _ => None,
    }
}

fn quoted(buf: &[u8], t: &Transport) -> Option<Quoted> {
    let (_, l4, proto, src, dst) = quoted_header(buf, t)?;
    let word = |i: usize| u16::from_be_bytes([buf[l4 + i], buf[l4 + i + 1]]);
    let icmp = if t.family == 4 { 1 } else { 58 };
    let echo_request = if t.family == 4 { 8 } else { 128 };
    let (port, key) = match proto {
        6 | 17 => {
            let (sport, dport) = (word(0), word(2));
            (
                sport,
                FlowKey::new(FABRIC_VRF, proto, dst, src, dport, sport),
            )
        }
        p if p == icmp && buf[l4] == echo_request => {
            let id = word(4);
            (id, FlowKey::new(FABRIC_VRF, proto, dst, src, id, 0))
        }
        _ => return None,
    };
    Some(Quoted { src, port, key })
}

/// Translate an ICMP error about a flow back: the outer destination, the
/// quoted source address and port become the instance's; the quoted IP
/// header's checksum, the quoted transport checksum (when quoted) and the
/// ICMP checksum are fixed.
fn untranslate_error(buf: &mut [u8], t: &Transport, addr: IpAddr, port: u16) {
    let Some((inner_l3, inner_l4, proto, _, _)) = quoted_header(buf, t) else {
        return;
    };
    let (octets, n) = addr_octets(addr);
    // The outer destination (IPv4: the header checksum; the ICMPv6
    // checksum is recomputed below).
    let (_, dst_at) = addr_fields(t.family);
    let outer: &[Sum] = if t.family == 4 {
        &[Sum {
            at: t.l3 + 10,
            optional_zero: false,
        }]
    } else {
        &[]
    };
    patch(buf, t.l3 + dst_at, &octets[..n], outer);
    // The quoted transport checksum, when the quote reaches it.
    let icmp = if t.family == 4 { 1 } else { 58 };
    let inner_sum = match proto {
        6 if inner_l4 + tcp::CHECKSUM_AT + 2 <= t.end => Some((tcp::CHECKSUM_AT, false)),
        17 => Some((6, t.family == 4)),
        p if p == icmp => Some((2, false)),
        _ => None,
    }
    .map(|(at, optional_zero)| Sum {
        at: inner_l4 + at,
        optional_zero,
    });
    let pseudo = proto != icmp || t.family == 6;
    let mut sums = [Sum {
        at: 0,
        optional_zero: false,
    }; 2];
    let mut k = 0;
    if t.family == 4 {
        sums[k] = Sum {
            at: inner_l3 + 10,
            optional_zero: false,
        };
        k += 1;
    }
    if let Some(s) = inner_sum.filter(|_| pseudo) {
        sums[k] = s;
        k += 1;
    }
    let (src_at, _) = addr_fields(t.family);
    patch(buf, inner_l3 + src_at, &octets[..n], &sums[..k]);
    let port_at = if proto == icmp { 4 } else { 0 };
    let port_sums: &[Sum] = match &inner_sum {
        Some(s) => core::slice::from_ref(s),
        None => &[],
    };
    patch(buf, inner_l4 + port_at, &port.to_be_bytes(), port_sums);
    // The ICMP checksum covers all of it: computed again.
    buf[t.l4 + 2..t.l4 + 4].copy_from_slice(&[0, 0]);
    let body = checksum::data(&buf[t.l4..t.end]);
    let sum = match (t.src, addr) {
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let pseudo = checksum::pseudo_header_v6(&src, &dst, 58, (t.end - t.l4) as u32);
            !checksum::combine(&[pseudo, body])
        }
        _ => !body,
    };
    buf[t.l4 + 2..t.l4 + 4].copy_from_slice(&sum.to_be_bytes());
}
