//! Observe in the XDP tier: the bytes of the filter the agent writes into
//! `tier_observe` while an observation runs, and of the records the
//! program puts into the ring `tier_obs_ring` (layouts in `bpf/tier.h`:
//! `struct obs_filter`, `struct obs_record`, `struct obs_cpu`), turned into
//! the same [`Sample`]s the pipeline's sampler keeps.
//!
//! ```text
//!  agent: arm ──ObsFilter::encode──> tier_observe (off: flags 0)
//!  program, per frame: lookup tier_observe; armed and wanted -> head copied
//!    decided in the kernel (drop, transmit) -> within the per-CPU rate ->
//!    bpf_ringbuf_output (no room: counted in tier_stats' obs.ring_full)
//!  agent, every 100 ms: ring ──Record::parse──> Record::sample ──> Session::record
//!  agent, at the end: tier_stats' obs.rate_dropped + obs.ring_full ──> the dropped count
//! ```

use core::net::IpAddr;

use super::KERNEL_DROPS;
use super::layout::{TRACE_DROP, TRACE_TX};
use crate::config::PortId;
use crate::sample::{DecidedIn, Filter, Head, Sample};
use crate::verdict::Verdict;

/// `OBS_ARMED`.
const OBS_ARMED: u32 = 1;
/// `OBS_DROPS_ONLY`.
const OBS_DROPS_ONLY: u32 = 2;
/// `OBS_ANY_VLAN`: any VLAN (filter), untagged (record's `out_vlan`).
const OBS_ANY_VLAN: u32 = u32::MAX;
/// `OBS_HEAD`: the bytes of a frame a record keeps.
pub const OBS_HEAD: usize = 64;
/// The size of `struct obs_filter`: the agent's 40 bytes, then the
/// program's `spent` byte per CPU (`OBS_SPENT_CPUS`, 64), zero when armed.
pub const FILTER_SIZE: usize = 40 + 64;
/// The size of `struct obs_record`.
pub const RECORD_SIZE: usize = 32 + OBS_HEAD;
/// The size of `struct obs_cpu` (the record being built).
pub const CPU_SIZE: usize = RECORD_SIZE;
/// Where `struct tier_stats` keeps `obs.rate_dropped` and `obs.ring_full`
/// (its five counters, then `struct obs_rate`).
const STATS_RATE_DROPPED: usize = 40 + 16;
const STATS_RING_FULL: usize = 40 + 32;

/// The filter of `tier_observe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObsFilter {
    /// The observation's filter.
    pub filter: Filter,
    /// The filter's port, as the tier knows it (its interface index);
    /// `None`: any port.
    pub ifindex: Option<u32>,
    /// Records a second, per CPU.
    pub rate: u32,
    /// Different for every observation: the program's per-CPU tokens start
    /// full for a new one, whatever the last one left.
    pub epoch: u32,
}

impl ObsFilter {
    /// The map value of an armed observation.
    pub fn encode(&self) -> [u8; FILTER_SIZE] {
        let mut v = [0u8; FILTER_SIZE];
        let flags = OBS_ARMED
            | if self.filter.drops_only {
                OBS_DROPS_ONLY
            } else {
                0
            };
        let vlan = self.filter.vlan.map_or(OBS_ANY_VLAN, u32::from);
        let family: u32 = match self.filter.ip {
            None => 0,
            Some(IpAddr::V4(ip)) => {
                v[16..20].copy_from_slice(&ip.octets());
                4
            }
            Some(IpAddr::V6(ip)) => {
                v[16..32].copy_from_slice(&ip.octets());
                6
            }
        };
        v[0..4].copy_from_slice(&flags.to_ne_bytes());
        v[4..8].copy_from_slice(&self.ifindex.unwrap_or(0).to_ne_bytes());
        v[8..12].copy_from_slice(&vlan.to_ne_bytes());
        v[12..16].copy_from_slice(&family.to_ne_bytes());
        v[32..36].copy_from_slice(&self.rate.to_ne_bytes());
        v[36..40].copy_from_slice(&self.epoch.to_ne_bytes());
        v
    }

    /// The map value when no observation runs.
    pub const OFF: [u8; FILTER_SIZE] = [0; FILTER_SIZE];
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(v)
}

/// What the program decided for a frame an observation wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// When (CLOCK_MONOTONIC, ns).
    pub ns: u64,
    /// The ingress interface.
    pub ifindex: u32,
    /// Dropped (with the pipeline's reason) or sent out of `egress`.
    pub verdict: RecordVerdict,
    /// The frame's first bytes as it arrived.
    pub head: [u8; OBS_HEAD],
    /// How many of them.
    pub len: usize,
}

/// The verdict of a [`Record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordVerdict {
    /// Dropped in the kernel.
    Drop(crate::verdict::DropReason),
    /// Sent out of the interface `egress`, with `vlan` (`None`: untagged).
    Transmit {
        /// The egress interface.
        egress: u32,
        /// The VLAN it left with.
        vlan: Option<u16>,
    },
}

impl Record {
    /// A record of the ring; `None` if it is not one (a size or a value
    /// this side does not know: a layout drift, never read as garbage).
    pub fn parse(b: &[u8]) -> Option<Record> {
        if b.len() != RECORD_SIZE {
            return None;
        }
        let verdict = match u32_at(b, 12) {
            TRACE_DROP => {
                RecordVerdict::Drop(*KERNEL_DROPS.get(usize::try_from(u32_at(b, 16)).ok()?)?)
            }
            TRACE_TX => RecordVerdict::Transmit {
                egress: u32_at(b, 20),
                vlan: match u32_at(b, 24) {
                    OBS_ANY_VLAN => None,
                    v => Some(u16::try_from(v).ok()?),
                },
            },
            _ => return None,
        };
        let len = usize::try_from(u32_at(b, 28)).ok()?;
        if len > OBS_HEAD {
            return None;
        }
        let mut head = [0u8; OBS_HEAD];
        head.copy_from_slice(&b[32..32 + OBS_HEAD]);
        Some(Record {
            ns: u64_at(b, 0),
            ifindex: u32_at(b, 8),
            verdict,
            head,
            len,
        })
    }

    /// As a sample of an observation armed at `armed_ns` (CLOCK_MONOTONIC),
    /// with `port` the pipeline's port of an interface index; `None` for a
    /// frame of an interface that is no port, or too short for a header.
    pub fn sample(&self, armed_ns: u64, port: impl Fn(u32) -> Option<PortId>) -> Option<Sample> {
        let ingress = port(self.ifindex)?;
        let head = Head::parse(ingress, &self.head[..self.len])?;
        let (verdict, egress_vlan) = match self.verdict {
            RecordVerdict::Drop(reason) => (Verdict::Drop(reason), None),
            RecordVerdict::Transmit { egress, vlan } => (
                Verdict::Transmit {
                    port: port(egress)?,
                    offset: 0,
                    len: 0,
                    vmi: None,
                },
                vlan,
            ),
        };
        Some(Sample {
            at_millis: self.ns.saturating_sub(armed_ns) / 1_000_000,
            port: ingress,
            vlan: head.vlan,
            head,
            verdict,
            egress_vlan,
            decided_in: DecidedIn::Xdp,
        })
    }
}

/// The verdicts an observation wanted that the program did not record
/// (over its rate, or no room in the ring), summed over the per-CPU values
/// of `tier_stats` (where the program keeps each CPU's rate: `struct
/// obs_rate`).
pub fn not_recorded(values: &[Vec<u8>]) -> u64 {
    values
        .iter()
        .filter(|v| v.len() >= super::STATS_SIZE)
        .map(|v| u64_at(v, STATS_RATE_DROPPED) + u64_at(v, STATS_RING_FULL))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::DropReason;

    #[test]
    fn a_filter_encodes_as_tier_h_lays_it_out() {
        let f = ObsFilter {
            filter: Filter {
                port: Some(PortId(1)),
                vlan: Some(100),
                ip: Some(IpAddr::from([10, 0, 0, 1])),
                drops_only: true,
            },
            ifindex: Some(7),
            rate: 200,
            epoch: 9,
        };
        let v = f.encode();
        assert_eq!(u32_at(&v, 0), OBS_ARMED | OBS_DROPS_ONLY);
        assert_eq!(u32_at(&v, 4), 7);
        assert_eq!(u32_at(&v, 8), 100);
        assert_eq!(u32_at(&v, 12), 4);
        assert_eq!(v[16..20], [10, 0, 0, 1]);
        assert_eq!((u32_at(&v, 32), u32_at(&v, 36)), (200, 9));
        // The program's per-CPU spent bytes start clear.
        assert!(v[40..].iter().all(|b| *b == 0) && v.len() == 40 + 64);
        let any = ObsFilter {
            filter: Filter::default(),
            ifindex: None,
            rate: 1,
            epoch: 1,
        }
        .encode();
        assert_eq!(
            (
                u32_at(&any, 0),
                u32_at(&any, 4),
                u32_at(&any, 8),
                u32_at(&any, 12)
            ),
            (OBS_ARMED, 0, OBS_ANY_VLAN, 0)
        );
        assert!(ObsFilter::OFF.iter().all(|b| *b == 0));
    }

    fn record(action: u32, reason: u32, egress: u32, out_vlan: u32) -> Vec<u8> {
        let mut b = vec![0u8; RECORD_SIZE];
        b[0..8].copy_from_slice(&5_000_000u64.to_ne_bytes());
        for (at, v) in [
            (8, 11),
            (12, action),
            (16, reason),
            (20, egress),
            (24, out_vlan),
            (28, 18),
        ] {
            b[at..at + 4].copy_from_slice(&u32::to_ne_bytes(v));
        }
        // dst, src, 802.1Q VLAN 100, IPv4.
        b[32..50].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x81, 0, 0, 100, 8, 0]);
        b
    }

    #[test]
    fn records_read_as_samples_with_the_pipeline_reasons() {
        let port = |i: u32| (i >= 10).then(|| PortId(i as u16 - 10));
        let drop = Record::parse(&record(TRACE_DROP, 5, 0, 0)).expect("a record");
        assert_eq!(drop.verdict, RecordVerdict::Drop(DropReason::NoRoute));
        let s = drop.sample(1_000_000, port).expect("a sample");
        assert_eq!(
            (s.at_millis, s.port, s.vlan, s.decided_in),
            (4, PortId(1), 100, DecidedIn::Xdp)
        );
        assert_eq!(s.verdict, Verdict::Drop(DropReason::NoRoute));
        let tx = Record::parse(&record(TRACE_TX, 0, 12, 200)).expect("a record");
        let s = tx.sample(0, port).expect("a sample");
        assert!(matches!(
            s.verdict,
            Verdict::Transmit {
                port: PortId(2),
                ..
            }
        ));
        assert_eq!(s.egress_vlan, Some(200));
        // Unknown verdicts, reasons and sizes are refused, not guessed.
        assert!(Record::parse(&record(1, 0, 0, 0)).is_none());
        assert!(Record::parse(&record(TRACE_DROP, KERNEL_DROPS.len() as u32, 0, 0)).is_none());
        assert!(Record::parse(&record(TRACE_DROP, 0, 0, 0)[..RECORD_SIZE - 1]).is_none());
        // A port the node does not know: no sample.
        assert!(drop.sample(0, |_| None).is_none());
    }

    #[test]
    fn what_the_program_did_not_record_is_summed_over_cpus() {
        let mut cpu = vec![0u8; super::super::STATS_SIZE];
        cpu[56..64].copy_from_slice(&3u64.to_ne_bytes());
        cpu[72..80].copy_from_slice(&4u64.to_ne_bytes());
        // The frame counters, the tokens and the clock's second are not
        // what was left unrecorded.
        cpu[0..40].fill(0xff);
        cpu[40..44].copy_from_slice(&200u32.to_ne_bytes());
        cpu[64..72].copy_from_slice(&1_000u64.to_ne_bytes());
        cpu[80..88].fill(0xff);
        assert_eq!(not_recorded(&[cpu.clone(), cpu]), 14);
    }
}
