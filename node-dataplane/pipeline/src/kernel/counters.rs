//! The XDP tier's counters (`struct tier_stats`, `struct vmi_stats` in
//! `tier.h`), read per CPU from its maps and added up here, in the
//! pipeline's own types, so that the agent adds them to the userspace
//! counters: the program counts only what it decided (the frames it hands
//! off are counted once, by the pipeline in userspace).

use crate::counters::{CounterSnapshot, VmiCounterSnapshot};
use crate::verdict::DropReason;

/// The drop reasons of the program, in the order of `enum tier_drop`.
pub const KERNEL_DROPS: [DropReason; 22] = [
    DropReason::NoLogicalInterface,
    DropReason::SourceMacSpoofed,
    DropReason::SourceIpSpoofed,
    DropReason::Ipv4BadChecksum,
    DropReason::Multicast,
    DropReason::NoRoute,
    DropReason::DiscardRoute,
    DropReason::VmiUnreachable,
    DropReason::Hairpin,
    DropReason::UnknownUnicast,
    DropReason::RoutingDisabled,
    DropReason::BridgingDisabled,
    DropReason::InvalidSourceMac,
    DropReason::TunnelUnknownPeer,
    DropReason::TunnelUnknownLabel,
    DropReason::TunnelUnknownVni,
    DropReason::TunnelPeerNotInNetwork,
    DropReason::TunnelMalformed,
    DropReason::TunnelWrongDestination,
    DropReason::TunnelHairpin,
    DropReason::TunnelUnresolved,
    DropReason::TunnelMtuExceeded,
];

/// The size of `struct tier_stats`: five counters, an observation's rate
/// on the CPU (`struct obs_rate`, 40 bytes: [`observe::not_recorded`](super::observe::not_recorded)
/// reads it), the drops by reason, the flow stage's hits.
pub const STATS_SIZE: usize = 8 * (STATS_DROPS + KERNEL_DROPS.len() + 1);
/// Where `drops[]` starts in `struct tier_stats`, in u64s.
const STATS_DROPS: usize = 5 + 5;
/// The size of `struct vmi_stats`.
pub const VMI_STATS_SIZE: usize = 8 * 5;

fn u64_at(bytes: &[u8], i: usize) -> u64 {
    bytes
        .get(i * 8..i * 8 + 8)
        .map_or(0, |b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
}

/// What the program decided, summed over CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KernelCounters {
    /// The counters in the pipeline's terms (received, forwarded, sent,
    /// sent bytes, drops by reason; never flooded or passed).
    pub decided: CounterSnapshot,
    /// Frames handed to userspace (counted there, not in `decided`).
    pub handed_off: u64,
    /// Of the frames forwarded, those the flow stage decided (SNAT flows
    /// translated, both directions; policed VMIs' allowed flows; network
    /// policies' connections between two networks of the node).
    pub flow_hits: u64,
}

impl KernelCounters {
    /// Sums the per-CPU values of `tier_stats`.
    pub fn from_per_cpu(values: &[Vec<u8>]) -> KernelCounters {
        let mut total = KernelCounters::default();
        for v in values {
            total.decided.received += u64_at(v, 0);
            total.decided.forwarded += u64_at(v, 1);
            total.decided.sent += u64_at(v, 2);
            total.decided.sent_bytes += u64_at(v, 3);
            total.handed_off += u64_at(v, 4);
            for (i, reason) in KERNEL_DROPS.iter().enumerate() {
                total.decided.drops[reason.index()] += u64_at(v, STATS_DROPS + i);
            }
            total.flow_hits += u64_at(v, STATS_DROPS + KERNEL_DROPS.len());
        }
        total
    }
}

/// Sums the per-CPU values of one `vmi_stats` slot.
pub fn vmi_from_per_cpu(values: &[Vec<u8>]) -> VmiCounterSnapshot {
    let mut total = VmiCounterSnapshot::default();
    for v in values {
        total.rx_packets += u64_at(v, 0);
        total.rx_bytes += u64_at(v, 1);
        total.rx_dropped += u64_at(v, 2);
        total.tx_packets += u64_at(v, 3);
        total.tx_bytes += u64_at(v, 4);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `enum tier_drop` of the C header names the same reasons in the same
    /// order: `TD_NO_LOGICAL_INTERFACE` is `no_logical_interface`, ...
    #[test]
    fn the_kernel_drop_reasons_match_the_header() {
        let header = include_str!("../../../xdp/bpf/tier.h");
        let body = header
            .split("enum tier_drop {")
            .nth(1)
            .and_then(|rest| rest.split('}').next())
            .expect("enum tier_drop in tier.h");
        let names: Vec<String> = body
            .split(',')
            .map(|n| n.trim())
            .filter(|n| n.starts_with("TD_") && *n != "TD_COUNT")
            .map(|n| n.trim_start_matches("TD_").to_lowercase())
            .collect();
        let ours: Vec<&str> = KERNEL_DROPS.iter().map(|r| r.as_str()).collect();
        assert_eq!(names, ours);
    }

    #[test]
    fn per_cpu_values_add_up() {
        let mut cpu = vec![0u8; STATS_SIZE];
        cpu[..8].copy_from_slice(&3u64.to_ne_bytes());
        cpu[STATS_DROPS * 8..(STATS_DROPS + 1) * 8].copy_from_slice(&2u64.to_ne_bytes());
        // An observation's rate is not a counter of frames.
        cpu[5 * 8..STATS_DROPS * 8].fill(0xff);
        let total = KernelCounters::from_per_cpu(&[cpu.clone(), cpu]);
        assert_eq!(total.decided.received, 6);
        assert_eq!(total.decided.drops(DropReason::NoLogicalInterface), 4);
    }
}
