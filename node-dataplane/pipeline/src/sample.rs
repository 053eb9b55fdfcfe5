//! Sampling real verdicts (the `Observe` of a PacketTrace), bounded and
//! never in the way of forwarding: the forwarding path's sampling observer.
//!
//! ```text
//!  forwarding thread, per batch: one relaxed load (armed?)
//!    not armed: nothing else (the common case)
//!    armed, per frame: Head::parse (a few header fields, on the stack)
//!                      before process() rewrites the frame, then offer():
//!                      try_lock (never waits) -> filter -> rate (tokens)
//!                      -> room in the ring (capacity fixed at arm time)
//!                      -> push; any "no" is a counted drop, never a queue
//!  control side (the agent): arm(filter, max) ... sleep ... finish()
//! ```
//!
//! The ring's lock is only ever tried by the forwarding thread: when the
//! control side holds it (arming or collecting, a few microseconds per
//! observation) the sample is counted as dropped instead. It samples the
//! verdict `process` returned; the stages of one frame are a trace's job
//! (`crate::trace`), which would cost an allocation per frame here.

use core::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use trunkline_wire::EthernetAddress;

use crate::config::PortId;
use crate::process::parse_l2;
use crate::verdict::Verdict;

/// At most this many samples a second, whatever the traffic.
pub const MAX_SAMPLES_PER_SECOND: u32 = 200;

/// Which frames an observation samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filter {
    /// Arriving on this port.
    pub port: Option<PortId>,
    /// With this VLAN (0: untagged).
    pub vlan: Option<u16>,
    /// From or to this address.
    pub ip: Option<IpAddr>,
    /// Only drops.
    pub drops_only: bool,
}

impl Filter {
    fn matches(&self, head: &Head, verdict: &Verdict) -> bool {
        self.port.is_none_or(|p| p == head.port)
            && self.vlan.is_none_or(|v| v == head.vlan)
            && self
                .ip
                .is_none_or(|ip| head.src_ip == Some(ip) || head.dst_ip == Some(ip))
            && (!self.drops_only || matches!(verdict, Verdict::Drop(_)))
    }
}

/// The header fields of an arriving frame a sample keeps (read before the
/// pipeline rewrites the frame in place).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The ingress port.
    pub port: PortId,
    /// The VLAN (0: untagged).
    pub vlan: u16,
    /// Source MAC.
    pub src_mac: EthernetAddress,
    /// Destination MAC.
    pub dst_mac: EthernetAddress,
    /// The EtherType after the tag.
    pub ethertype: u16,
    /// IPv4/IPv6 source (ARP: sender).
    pub src_ip: Option<IpAddr>,
    /// IPv4/IPv6 destination (ARP: target).
    pub dst_ip: Option<IpAddr>,
    /// IP protocol / next header.
    pub protocol: Option<u8>,
}

impl Head {
    /// Read the fields of `frame`, arriving on `port`; `None` for a frame
    /// too short for an Ethernet header.
    pub fn parse(port: PortId, frame: &[u8]) -> Option<Head> {
        let l2 = parse_l2(frame).ok()?;
        let l3 = &frame[l2.header_len..];
        let ethertype = u16::from(l2.ethertype);
        let v4 = |b: &[u8]| IpAddr::from([b[0], b[1], b[2], b[3]]);
        let (src_ip, dst_ip, protocol) = match ethertype {
            0x0800 if l3.len() >= 20 => (Some(v4(&l3[12..16])), Some(v4(&l3[16..20])), Some(l3[9])),
            0x0806 if l3.len() >= 28 => (Some(v4(&l3[14..18])), Some(v4(&l3[24..28])), None),
            0x86dd if l3.len() >= 40 => {
                let mut s = [0u8; 16];
                let mut d = [0u8; 16];
                s.copy_from_slice(&l3[8..24]);
                d.copy_from_slice(&l3[24..40]);
                (Some(IpAddr::from(s)), Some(IpAddr::from(d)), Some(l3[6]))
            }
            _ => (None, None, None),
        };
        Some(Head {
            port,
            vlan: l2.vlan(),
            src_mac: l2.src,
            dst_mac: l2.dst,
            ethertype,
            src_ip,
            dst_ip,
            protocol,
        })
    }
}

/// One sampled verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Milliseconds since the observation was armed.
    pub at_millis: u64,
    /// The ingress port.
    pub port: PortId,
    /// The VLAN it arrived with.
    pub vlan: u16,
    /// The header fields.
    pub head: Head,
    /// The verdict.
    pub verdict: Verdict,
    /// For a transmit: the VLAN it left with.
    pub egress_vlan: Option<u16>,
}

impl Sample {
    /// `src -> dst PROTO` for people.
    pub fn summary(&self) -> String {
        let proto = match (self.head.ethertype, self.head.protocol) {
            (0x0806, _) => "ARP".to_string(),
            (_, Some(1)) => "ICMP".into(),
            (_, Some(58)) => "ICMPv6".into(),
            (_, Some(6)) => "TCP".into(),
            (_, Some(17)) => "UDP".into(),
            (_, Some(p)) => format!("IP proto {p}"),
            (t, None) => format!("EtherType {t:#06x}"),
        };
        match (self.head.src_ip, self.head.dst_ip) {
            (Some(s), Some(d)) => format!(
                "{s} -> {d} {proto} ({} -> {})",
                self.head.src_mac, self.head.dst_mac
            ),
            _ => format!("{} -> {} {proto}", self.head.src_mac, self.head.dst_mac),
        }
    }
}

#[derive(Debug)]
struct Ring {
    filter: Filter,
    max: usize,
    samples: Vec<Sample>,
    /// When it was armed, in the caller's milliseconds.
    started_ms: u64,
    /// Rate limit: the second the tokens are for, and how many are left.
    second: u64,
    tokens: u32,
}

/// The node's sampler: at most one observation at a time.
#[derive(Debug, Default)]
pub struct Sampler {
    armed: AtomicBool,
    /// The filter's port (`u32::MAX`: any), readable without the lock so
    /// that a batch from another port costs one load.
    port: AtomicU32,
    ring: Mutex<Option<Ring>>,
    dropped: AtomicU64,
}

/// One batch's view of a running observation (see [`Sampler::batch`]);
/// counts its refused frames into the sampler once, when dropped.
#[derive(Debug)]
pub struct Batch<'a> {
    sampler: &'a Sampler,
    filter: Filter,
    full: bool,
    refused: u64,
}

impl Batch<'_> {
    /// Offer a frame's verdict: filtered here, without the lock; a full
    /// ring only counts it.
    #[inline]
    pub fn offer(&mut self, head: Head, verdict: &Verdict, out: &[u8], now_ms: u64) {
        if !self.filter.matches(&head, verdict) {
            return;
        }
        if self.full {
            self.refused += 1;
            return;
        }
        self.sampler.offer(head, verdict, out, now_ms);
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if self.refused > 0 {
            self.sampler
                .dropped
                .fetch_add(self.refused, Ordering::Relaxed);
        }
    }
}

/// A running observation; [`finish`](Session::finish) ends it.
#[derive(Debug)]
pub struct Session<'a> {
    sampler: &'a Sampler,
}

impl Sampler {
    /// Whether an observation runs: one relaxed load.
    #[inline]
    pub fn is_armed(&self) -> bool {
        self.armed.load(Ordering::Relaxed)
    }

    /// Whether frames arriving on `port` are to be offered: read once per
    /// batch (one or two relaxed loads).
    #[inline]
    pub fn armed_on(&self, port: PortId) -> bool {
        self.is_armed() && {
            let wanted = self.port.load(Ordering::Relaxed);
            wanted == u32::MAX || wanted == u32::from(port.0)
        }
    }

    /// What a batch from `port` is to be sampled with: `None` when no
    /// observation runs for that port (the common case: one or two relaxed
    /// loads). Otherwise a copy of the filter and whether the ring is full
    /// (or the rate spent for this second, at `now_ms`),
    /// taken under one `try_lock` per batch, so that frames the filter
    /// refuses, and any once the ring is full, never touch the lock.
    #[inline]
    pub fn batch(&self, port: PortId, now_ms: u64) -> Option<Batch<'_>> {
        if !self.armed_on(port) {
            return None;
        }
        let guard = self.ring.try_lock().ok()?;
        let ring = guard.as_ref()?;
        Some(Batch {
            sampler: self,
            filter: ring.filter,
            // No room, or this second's rate spent: count, do not offer.
            full: ring.samples.len() >= ring.max
                || (ring.tokens == 0
                    && now_ms.saturating_sub(ring.started_ms) / 1000 == ring.second),
            refused: 0,
        })
    }

    /// Start an observation keeping at most `max` samples, at `now_ms` of
    /// the clock [`offer`](Sampler::offer) is given; `None` when one
    /// already runs.
    pub fn arm(&self, filter: Filter, max: usize, now_ms: u64) -> Option<Session<'_>> {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        if ring.is_some() {
            return None;
        }
        *ring = Some(Ring {
            filter,
            max,
            samples: Vec::with_capacity(max),
            started_ms: now_ms,
            second: 0,
            tokens: MAX_SAMPLES_PER_SECOND,
        });
        self.dropped.store(0, Ordering::Relaxed);
        self.port.store(
            filter.port.map_or(u32::MAX, |p| u32::from(p.0)),
            Ordering::Relaxed,
        );
        self.armed.store(true, Ordering::Release);
        Some(Session { sampler: self })
    }

    /// Offer the verdict of a frame whose header was `head`; `out` is the
    /// buffer after `process` (for a transmit, the frame as it leaves);
    /// `now_ms` is the caller's clock, read once per batch. Never waits,
    /// never allocates (the ring's room was reserved when it was armed),
    /// reads no clock.
    #[inline]
    pub fn offer(&self, head: Head, verdict: &Verdict, out: &[u8], now_ms: u64) {
        let Ok(mut guard) = self.ring.try_lock() else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let Some(ring) = guard.as_mut() else {
            return;
        };
        if !ring.filter.matches(&head, verdict) {
            return;
        }
        if ring.samples.len() >= ring.max {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let at_millis = now_ms.saturating_sub(ring.started_ms);
        let second = at_millis / 1000;
        if second != ring.second {
            ring.second = second;
            ring.tokens = MAX_SAMPLES_PER_SECOND;
        }
        if ring.tokens == 0 {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        ring.tokens -= 1;
        let egress_vlan = match *verdict {
            Verdict::Transmit { offset, len, .. } => out
                .get(offset..offset + len)
                .and_then(|f| parse_l2(f).ok())
                .and_then(|l2| l2.tci.map(|t| t & 0x0fff)),
            _ => None,
        };
        ring.samples.push(Sample {
            at_millis,
            port: head.port,
            vlan: head.vlan,
            head,
            verdict: *verdict,
            egress_vlan,
        });
    }
}

impl Session<'_> {
    /// End the observation: its samples, oldest first, and how many
    /// matching frames were not sampled.
    pub fn finish(self) -> (Vec<Sample>, u64) {
        self.sampler.armed.store(false, Ordering::Release);
        let ring = self
            .sampler
            .ring
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let dropped = self.sampler.dropped.swap(0, Ordering::Relaxed);
        (ring.map(|r| r.samples).unwrap_or_default(), dropped)
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        self.sampler.armed.store(false, Ordering::Release);
        if let Ok(mut ring) = self.sampler.ring.lock() {
            ring.take();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(vlan: u16, dst: [u8; 4]) -> Head {
        Head {
            port: PortId(1),
            vlan,
            src_mac: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_mac: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype: 0x0800,
            src_ip: Some(IpAddr::from([10, 0, 0, 1])),
            dst_ip: Some(IpAddr::from(dst)),
            protocol: Some(1),
        }
    }

    #[test]
    fn samples_match_the_filter_and_the_ring_is_bounded() {
        let sampler = Sampler::default();
        assert!(!sampler.is_armed());
        let filter = Filter {
            vlan: Some(100),
            ..Default::default()
        };
        let session = sampler.arm(filter, 3, 0).expect("armed");
        assert!(sampler.is_armed());
        assert!(
            sampler.arm(Filter::default(), 1, 0).is_none(),
            "one at a time"
        );
        for _ in 0..5 {
            sampler.offer(head(100, [10, 0, 0, 2]), &Verdict::Pass, &[], 0);
        }
        sampler.offer(head(200, [10, 0, 0, 2]), &Verdict::Pass, &[], 0);
        let (samples, dropped) = session.finish();
        assert_eq!(samples.len(), 3);
        assert_eq!(dropped, 2, "matching frames beyond the ring are counted");
        assert!(!sampler.is_armed());
        // Nothing is kept once finished.
        sampler.offer(head(100, [10, 0, 0, 2]), &Verdict::Pass, &[], 0);
        assert!(
            sampler
                .arm(Filter::default(), 1, 0)
                .unwrap()
                .finish()
                .0
                .is_empty()
        );
    }

    #[test]
    fn a_batch_filters_without_the_lock_and_counts_a_full_ring() {
        let sampler = Sampler::default();
        assert!(sampler.batch(PortId(1), 0).is_none(), "not armed");
        let filter = Filter {
            port: Some(PortId(1)),
            vlan: Some(100),
            ..Default::default()
        };
        let session = sampler.arm(filter, 2, 0).unwrap();
        assert!(sampler.batch(PortId(2), 0).is_none(), "another port");
        {
            let mut batch = sampler.batch(PortId(1), 0).expect("this port");
            for _ in 0..3 {
                batch.offer(head(100, [10, 0, 0, 2]), &Verdict::Pass, &[], 0);
            }
            batch.offer(head(200, [10, 0, 0, 2]), &Verdict::Pass, &[], 0);
        }
        {
            let mut full = sampler.batch(PortId(1), 0).expect("this port");
            full.offer(head(100, [10, 0, 0, 2]), &Verdict::Pass, &[], 0);
            full.offer(head(300, [10, 0, 0, 2]), &Verdict::Pass, &[], 0);
        }
        let (samples, dropped) = session.finish();
        assert_eq!(samples.len(), 2);
        assert_eq!(dropped, 2, "one over the room, one once full");
    }

    #[test]
    fn a_busy_ring_drops_instead_of_waiting() {
        let sampler = Sampler::default();
        let session = sampler.arm(Filter::default(), 8, 0).unwrap();
        {
            let _held = sampler.ring.lock().unwrap();
            sampler.offer(head(0, [10, 0, 0, 2]), &Verdict::Pass, &[], 0);
        }
        let (samples, dropped) = session.finish();
        assert!(samples.is_empty());
        assert_eq!(dropped, 1);
    }

    #[test]
    fn the_rate_is_limited() {
        let sampler = Sampler::default();
        let session = sampler.arm(Filter::default(), 100_000, 0).unwrap();
        for _ in 0..(MAX_SAMPLES_PER_SECOND + 50) {
            sampler.offer(head(0, [10, 0, 0, 2]), &Verdict::Pass, &[], 0);
        }
        let (samples, dropped) = session.finish();
        // Within one second (the test runs in far less).
        assert!(samples.len() <= MAX_SAMPLES_PER_SECOND as usize);
        assert!(dropped >= 50);
    }
}
