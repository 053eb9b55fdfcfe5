//! A packet trace: what the node would do with a described packet, decided
//! by the forwarding code itself against the current tables.
//!
//! ```text
//!  Probe (port, VLAN, MACs, IPs, protocol, ports)
//!    | synthesise(): the frame's bytes (Ethernet [+ 802.1Q] + ARP | IPv4 | IPv6
//!    |               + ICMP echo | UDP | TCP), checksums filled
//!    v
//!  Pipeline::new(tables, scratch counters)
//!     .with_flows(scratch flow table)          nothing shared is written:
//!     .with_observer(&Recorder)                Recorder::SIDE_EFFECTS = false
//!     .process(port, copy of the frame)
//!    |
//!    v
//!  Trace { steps (stage, decision, detail), verdict, egress (the rewritten
//!          frame read back: port, VLAN, MACs, tunnel outer header) }
//! ```
//!
//! There is no second implementation to drift: a trace is the same
//! `process` the forwarding thread runs, with a recording [`Observer`]
//! (`crate::observe`) instead of the no-op one.

use core::cell::RefCell;
use core::fmt;
use core::net::IpAddr;

use trunkline_wire::{EthernetAddress, checksum};

use crate::config::PortId;
use crate::counters::Counters;
use crate::flow::{FlowConfig, FlowTable};
use crate::observe::{Recorder, Stage, Step};
use crate::process::{HEADROOM, Pipeline, parse_l2};
use crate::tables::Tables;
use crate::verdict::Verdict;

/// What the probe carries above IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// An ARP request for the destination address (the frame is broadcast
    /// unless a destination MAC is given).
    ArpRequest,
    /// An ICMP (or ICMPv6) message of this type and code; 8 (IPv4) / 128
    /// (IPv6) is an echo request.
    Icmp {
        /// The type.
        icmp_type: u8,
        /// The code.
        code: u8,
    },
    /// UDP between these ports.
    Udp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
    },
    /// A TCP SYN between these ports.
    Tcp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
    },
}

/// A described packet, arriving on a port of the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The ingress port.
    pub port: PortId,
    /// The 802.1Q VLAN (none: untagged).
    pub vlan: Option<u16>,
    /// Source MAC.
    pub src_mac: EthernetAddress,
    /// Destination MAC (typically the gateway MAC, or broadcast for ARP).
    pub dst_mac: EthernetAddress,
    /// Source address.
    pub src_ip: IpAddr,
    /// Destination address (the ARP target for an ARP request).
    pub dst_ip: IpAddr,
    /// The IP TTL / hop limit.
    pub ttl: u8,
    /// What the packet carries.
    pub payload: Payload,
}

/// A probe that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// Source and destination are of different address families.
    #[error("source {src} and destination {dst} are of different address families")]
    MixedFamilies {
        /// The source.
        src: IpAddr,
        /// The destination.
        dst: IpAddr,
    },
    /// ARP carries IPv4 addresses only.
    #[error("an ARP request needs IPv4 addresses, not {0}")]
    ArpNeedsIpv4(IpAddr),
    /// A VLAN id is 0..=4094.
    #[error("VLAN {0} is not a VLAN id (valid: 0-4094)")]
    BadVlan(u16),
}

/// The frame as it would leave, read back from the rewritten buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressFrame {
    /// The egress port.
    pub port: PortId,
    /// Its VLAN (none: untagged).
    pub vlan: Option<u16>,
    /// Source MAC.
    pub src_mac: EthernetAddress,
    /// Destination MAC.
    pub dst_mac: EthernetAddress,
    /// Its length in bytes.
    pub len: usize,
    /// What it is, for people ("ARP reply ...", "IPv4 ... ttl 63",
    /// "MPLS over UDP ... label 17").
    pub summary: String,
}

/// The result of a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// Every stage's decision, in order, ending with the verdict.
    pub steps: Vec<Step>,
    /// The verdict `process` returned.
    pub verdict: Verdict,
    /// For a transmitted frame: how it leaves.
    pub egress: Option<EgressFrame>,
}

impl Trace {
    /// The verdict's short name: `transmit`, `flood`, `pass` or the drop
    /// reason's label.
    pub fn verdict_name(&self) -> &'static str {
        match self.verdict {
            Verdict::Transmit { .. } => "transmit",
            Verdict::Flood(_) => "flood",
            Verdict::Pass => "pass",
            Verdict::Drop(reason) => reason.as_str(),
        }
    }
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in &self.steps {
            writeln!(
                f,
                "{:<16} {:<18} {}",
                step.stage, step.decision, step.detail
            )?;
        }
        Ok(())
    }
}

/// Room after the frame for replies longer than their question.
pub const TAILROOM: usize = 256;

/// Trace `probe` through `tables`: see the module documentation.
pub fn trace(tables: &Tables, probe: &Probe) -> Result<Trace, ProbeError> {
    let frame = synthesise(probe)?;
    Ok(trace_frame(tables, probe.port, &frame))
}

/// Trace the frame `frame` arriving on `port` (a captured frame, or one
/// [`synthesise`]d).
pub fn trace_frame(tables: &Tables, port: PortId, frame: &[u8]) -> Trace {
    let mut buf = vec![0u8; HEADROOM + frame.len() + TAILROOM];
    buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
    // Scratch state: the node's counters, budgets and flows are not touched.
    let counters = Counters::new();
    let flows = RefCell::new(FlowTable::new(FlowConfig {
        capacity: 64,
        ..FlowConfig::default()
    }));
    let recorder = Recorder::new();
    let verdict = Pipeline::new(tables, &counters)
        .with_flows(&flows, 0)
        .with_observer(&recorder)
        .process(port, &mut buf, HEADROOM, frame.len());
    let mut steps = recorder.into_steps();
    let egress = match verdict {
        Verdict::Transmit {
            port, offset, len, ..
        } => describe(port, &buf[offset..offset + len]),
        _ => None,
    };
    let detail = match (&verdict, &egress) {
        (Verdict::Transmit { .. }, Some(e)) => format!(
            "out of port {} {} {} -> {}: {}",
            e.port.0,
            e.vlan
                .map_or("untagged".to_string(), |v| format!("VLAN {v}")),
            e.src_mac,
            e.dst_mac,
            e.summary
        ),
        (Verdict::Flood(flood), _) => {
            let members = Pipeline::new(tables, &counters).flood_members(flood);
            format!("flooded to {members} member(s) of the network")
        }
        (Verdict::Pass, _) => "handed to the host stack".to_string(),
        (Verdict::Drop(reason), _) => format!("dropped: {}", reason.as_str()),
        (Verdict::Transmit { .. }, None) => "transmitted".to_string(),
    };
    let decision = match verdict {
        Verdict::Transmit { .. } => "transmit",
        Verdict::Flood(_) => "flood",
        Verdict::Pass => "pass",
        Verdict::Drop(_) => "drop",
    };
    steps.push(Step {
        stage: Stage::Verdict,
        decision,
        detail,
    });
    Trace {
        steps,
        verdict,
        egress,
    }
}

/// Read back a frame that leaves by `port`.
fn describe(port: PortId, frame: &[u8]) -> Option<EgressFrame> {
    let l2 = parse_l2(frame).ok()?;
    let l3 = &frame[l2.header_len..];
    let summary = match u16::from(l2.ethertype) {
        0x0806 if l3.len() >= 28 => format!(
            "ARP {} {}.{}.{}.{} is-at {}",
            if l3[7] == 2 { "reply" } else { "request" },
            l3[14],
            l3[15],
            l3[16],
            l3[17],
            EthernetAddress([l3[8], l3[9], l3[10], l3[11], l3[12], l3[13]]),
        ),
        0x0800 if l3.len() >= 20 => {
            let src = core::net::Ipv4Addr::new(l3[12], l3[13], l3[14], l3[15]);
            let dst = core::net::Ipv4Addr::new(l3[16], l3[17], l3[18], l3[19]);
            let ihl = usize::from(l3[0] & 0x0f) * 4;
            let outer = format!("IPv4 {src} -> {dst} ttl {} proto {}", l3[8], l3[9]);
            match (l3[9], l3.get(ihl..ihl + 8)) {
                (17, Some(udp)) if u16::from_be_bytes([udp[2], udp[3]]) == 6635 => {
                    let mpls = l3.get(ihl + 8..ihl + 12).unwrap_or(&[0; 4]);
                    let label = (u32::from(mpls[0]) << 12)
                        | (u32::from(mpls[1]) << 4)
                        | (u32::from(mpls[2]) >> 4);
                    format!("MPLS over UDP ({outer}), label {label}")
                }
                (17, Some(udp)) if u16::from_be_bytes([udp[2], udp[3]]) == 4789 => {
                    let vxlan = l3.get(ihl + 8..ihl + 16).unwrap_or(&[0; 8]);
                    let vni = (u32::from(vxlan[4]) << 16)
                        | (u32::from(vxlan[5]) << 8)
                        | u32::from(vxlan[6]);
                    format!("VXLAN ({outer}), VNI {vni}")
                }
                (1, Some(icmp)) => format!("{outer}, ICMP type {} code {}", icmp[0], icmp[1]),
                _ => outer,
            }
        }
        0x86dd if l3.len() >= 40 => {
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&l3[8..24]);
            d.copy_from_slice(&l3[24..40]);
            format!(
                "IPv6 {} -> {} hop limit {} next header {}",
                core::net::Ipv6Addr::from(s),
                core::net::Ipv6Addr::from(d),
                l3[7],
                l3[6]
            )
        }
        other => format!("EtherType {other:#06x}"),
    };
    Some(EgressFrame {
        port,
        vlan: l2.tci.map(|tci| tci & 0x0fff),
        src_mac: l2.src,
        dst_mac: l2.dst,
        len: frame.len(),
        summary,
    })
}

/// The bytes of the frame `probe` describes.
pub fn synthesise(probe: &Probe) -> Result<Vec<u8>, ProbeError> {
    let mut frame = Vec::with_capacity(128);
    frame.extend_from_slice(&probe.dst_mac.0);
    frame.extend_from_slice(&probe.src_mac.0);
    if let Some(vlan) = probe.vlan {
        if vlan > 4094 {
            return Err(ProbeError::BadVlan(vlan));
        }
        frame.extend_from_slice(&0x8100u16.to_be_bytes());
        frame.extend_from_slice(&vlan.to_be_bytes());
    }
    match (probe.src_ip, probe.dst_ip, probe.payload) {
        (IpAddr::V4(src), IpAddr::V4(dst), Payload::ArpRequest) => {
            frame.extend_from_slice(&0x0806u16.to_be_bytes());
            frame.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
            frame.extend_from_slice(&probe.src_mac.0);
            frame.extend_from_slice(&src.octets());
            frame.extend_from_slice(&[0; 6]);
            frame.extend_from_slice(&dst.octets());
        }
        (src, _, Payload::ArpRequest) => return Err(ProbeError::ArpNeedsIpv4(src)),
        (IpAddr::V4(src), IpAddr::V4(dst), payload) => {
            let (proto, l4) = l4_bytes(payload, false);
            let total = 20 + l4.len();
            frame.extend_from_slice(&0x0800u16.to_be_bytes());
            let ip = frame.len();
            frame.extend_from_slice(&[0x45, 0]);
            frame.extend_from_slice(&(total as u16).to_be_bytes());
            frame.extend_from_slice(&[0x12, 0x34, 0x40, 0, probe.ttl, proto, 0, 0]);
            frame.extend_from_slice(&src.octets());
            frame.extend_from_slice(&dst.octets());
            let sum = !checksum::data(&frame[ip..ip + 20]);
            frame[ip + 10..ip + 12].copy_from_slice(&sum.to_be_bytes());
            let l4_at = frame.len();
            frame.extend_from_slice(&l4);
            let pseudo = if proto == 1 {
                0
            } else {
                checksum::pseudo_header_v4(&src, &dst, proto, l4.len() as u16)
            };
            fill_l4_checksum(&mut frame[l4_at..], proto, pseudo);
        }
        (IpAddr::V6(src), IpAddr::V6(dst), payload) => {
            let (proto, l4) = l4_bytes(payload, true);
            frame.extend_from_slice(&0x86ddu16.to_be_bytes());
            frame.extend_from_slice(&[0x60, 0, 0, 0]);
            frame.extend_from_slice(&(l4.len() as u16).to_be_bytes());
            frame.extend_from_slice(&[proto, probe.ttl]);
            frame.extend_from_slice(&src.octets());
            frame.extend_from_slice(&dst.octets());
            let l4_at = frame.len();
            frame.extend_from_slice(&l4);
            let pseudo = checksum::pseudo_header_v6(&src, &dst, proto, l4.len() as u32);
            fill_l4_checksum(&mut frame[l4_at..], proto, pseudo);
        }
        (src, dst, _) => return Err(ProbeError::MixedFamilies { src, dst }),
    }
    Ok(frame)
}

/// The protocol number and the transport header (+ a short payload), with
/// a zero checksum.
fn l4_bytes(payload: Payload, v6: bool) -> (u8, Vec<u8>) {
    const DATA: &[u8] = b"trunkline trace";
    match payload {
        Payload::Icmp { icmp_type, code } => {
            let mut b = vec![icmp_type, code, 0, 0, 0x74, 0x72, 0, 1];
            b.extend_from_slice(DATA);
            (if v6 { 58 } else { 1 }, b)
        }
        Payload::Udp { sport, dport } => {
            let len = (8 + DATA.len()) as u16;
            let mut b = Vec::with_capacity(usize::from(len));
            b.extend_from_slice(&sport.to_be_bytes());
            b.extend_from_slice(&dport.to_be_bytes());
            b.extend_from_slice(&len.to_be_bytes());
            b.extend_from_slice(&[0, 0]);
            b.extend_from_slice(DATA);
            (17, b)
        }
        Payload::Tcp { sport, dport } => {
            let mut b = Vec::with_capacity(20);
            b.extend_from_slice(&sport.to_be_bytes());
            b.extend_from_slice(&dport.to_be_bytes());
            b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
            (6, b)
        }
        Payload::ArpRequest => (0, Vec::new()),
    }
}

/// Fill the checksum of the transport header at the start of `l4`.
fn fill_l4_checksum(l4: &mut [u8], proto: u8, pseudo: u16) {
    let at = match proto {
        1 | 58 => 2,
        17 => 6,
        6 => 16,
        _ => return,
    };
    let mut sum = !checksum::combine(&[pseudo, checksum::data(l4)]);
    if proto == 17 && sum == 0 {
        sum = 0xffff;
    }
    l4[at..at + 2].copy_from_slice(&sum.to_be_bytes());
}
