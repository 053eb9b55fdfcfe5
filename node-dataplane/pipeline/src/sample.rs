//! Sampling real verdicts (the `Observe` of a PacketTrace), bounded and
//! never in the way of forwarding: the forwarding path's sampling observer.
//!
//! ```text
//!  forwarding thread, per batch: one relaxed load (armed? this port?)
//!    not armed: nothing else (the common case)
//!    armed: one try_lock per batch: the filter (compiled to byte
//!           comparisons) and this batch's budget (room in the ring and
//!           this second's tokens), then per frame, before process():
//!             Batch::before: VLAN and address compared in place, at the
//!               offsets the header puts them (no parse, no copy)
//!               no match       -> Skip (a few comparisons: the cost)
//!               budget spent   -> Count (a drop, counted once per batch)
//!               else           -> the first HEAD_BYTES copied aside
//!           after process():
//!             Batch::after: drops only? then Head::parse of the copy and
//!               offer(): try_lock -> room, rate -> push (<= 200/s)
//!  control side (the agent): arm(filter, max) ... sleep ... finish()
//! ```
//!
//! The ring's lock is only ever tried by the forwarding thread: when the
//! control side holds it (arming or collecting, a few microseconds per
//! observation) the sample is counted as dropped instead. It samples the
//! verdict `process` returned; the stages of one frame are a trace's job
//! (`crate::trace`), which would cost an allocation per frame here.
//!
//! Samples of verdicts made elsewhere (the XDP tier, in the kernel) are
//! added with [`Session::record`] by whoever reads them, under the same
//! filter and bounds.

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
    /// Who decided it.
    pub decided_in: DecidedIn,
}

/// Where a sampled verdict was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DecidedIn {
    /// The Rust pipeline (AF_XDP, AF_PACKET, or a frame the XDP tier
    /// handed off).
    #[default]
    Pipeline,
    /// The XDP tier, in the kernel.
    Xdp,
}

impl DecidedIn {
    /// The stable name (in an observation's output).
    pub const fn as_str(&self) -> &'static str {
        match self {
            DecidedIn::Pipeline => "pipeline",
            DecidedIn::Xdp => "xdp",
        }
    }
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

/// How many bytes of a frame a sample keeps aside before `process`
/// rewrites it: the headers [`Head::parse`] reads (18 + 40, IPv6 behind
/// a tag), rounded up.
pub const HEAD_BYTES: usize = 64;

/// A [`Filter`]'s VLAN and address as the bytes a frame carries them in,
/// so that a frame is matched in place, without parsing it into a [`Head`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Compiled {
    /// The VLAN wanted; `ANY_VLAN`: any.
    vlan: u32,
    ip: CompiledIp,
    drops_only: bool,
}

/// An address as the word(s) loaded from the frame (native order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CompiledIp {
    Any,
    V4(u32),
    V6(u128),
}

const ANY_VLAN: u32 = u32::MAX;

impl Compiled {
    fn new(filter: &Filter) -> Compiled {
        Compiled {
            vlan: filter.vlan.map_or(ANY_VLAN, u32::from),
            ip: match filter.ip {
                None => CompiledIp::Any,
                Some(IpAddr::V4(ip)) => CompiledIp::V4(u32::from_ne_bytes(ip.octets())),
                Some(IpAddr::V6(ip)) => CompiledIp::V6(u128::from_ne_bytes(ip.octets())),
            },
            drops_only: filter.drops_only,
        }
    }

    /// Exactly `Head::parse(port, frame).is_some_and(|h| filter matches
    /// h's VLAN and addresses)` (the port is checked per batch, the verdict
    /// after `process`), read in place: a few loads and comparisons.
    #[inline]
    fn matches(&self, frame: &[u8]) -> bool {
        let be16 = |b: &[u8], at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
        let (vlan, ethertype, l3) = match frame {
            [_, _, _, _, _, _, _, _, _, _, _, _, 0x81, 0x00, tag @ ..] if tag.len() >= 4 => {
                match be16(tag, 2) {
                    // Refused by the pipeline's parser: no Head.
                    0x8100 | 0x88a8 => return false,
                    inner => (u32::from(be16(tag, 0) & 0x0fff), inner, &tag[4..]),
                }
            }
            [_, _, _, _, _, _, _, _, _, _, _, _, 0x81, 0x00, ..] => return false,
            [_, _, _, _, _, _, _, _, _, _, _, _, 0x88, 0xa8, ..] => return false,
            [_, _, _, _, _, _, _, _, _, _, _, _, t0, t1, rest @ ..] => {
                (0, u16::from_be_bytes([*t0, *t1]), rest)
            }
            _ => return false,
        };
        if self.vlan != ANY_VLAN && self.vlan != vlan {
            return false;
        }
        let word = |at: usize| u32::from_ne_bytes([l3[at], l3[at + 1], l3[at + 2], l3[at + 3]]);
        match self.ip {
            CompiledIp::Any => true,
            CompiledIp::V4(ip) => match ethertype {
                0x0800 if l3.len() >= 20 => word(12) == ip || word(16) == ip,
                0x0806 if l3.len() >= 28 => word(14) == ip || word(24) == ip,
                _ => false,
            },
            CompiledIp::V6(ip) if ethertype == 0x86dd && l3.len() >= 40 => {
                let at = |o: usize| {
                    let mut b = [0u8; 16];
                    b.copy_from_slice(&l3[o..o + 16]);
                    u128::from_ne_bytes(b)
                };
                at(8) == ip || at(24) == ip
            }
            CompiledIp::V6(_) => false,
        }
    }
}

/// What [`Batch::before`] decided for a frame, for [`Batch::after`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    /// The filter does not want it.
    Skip,
    /// Wanted, but this batch's budget is spent: counted as dropped (if the
    /// verdict is one the filter wants).
    Count,
    /// Wanted and within the budget: its header bytes were kept aside.
    Sample,
}

/// One batch's view of a running observation (see [`Sampler::batch`]);
/// counts its refused frames into the sampler once, when dropped.
#[derive(Debug)]
pub struct Batch<'a> {
    sampler: &'a Sampler,
    port: PortId,
    filter: Compiled,
    /// Samples this batch may still take: the room left in the ring and
    /// this second's tokens, when the batch started.
    budget: u32,
    refused: u64,
    /// The header bytes of the frame being decided (`Pending::Sample`).
    head: [u8; HEAD_BYTES],
    head_len: usize,
}

impl Batch<'_> {
    /// Before `process` (which rewrites the frame): whether the filter
    /// wants `frame`, compared in place, and if it may be sampled, its
    /// header bytes kept aside. A frame the filter refuses costs a few
    /// comparisons; no clock, no lock, no allocation.
    #[inline]
    pub fn before(&mut self, frame: &[u8]) -> Pending {
        if !self.filter.matches(frame) {
            return Pending::Skip;
        }
        if self.budget == 0 {
            return Pending::Count;
        }
        let n = frame.len().min(HEAD_BYTES);
        self.head[..n].copy_from_slice(&frame[..n]);
        self.head_len = n;
        Pending::Sample
    }

    /// After `process`: the verdict of the frame [`before`](Batch::before)
    /// saw; `out` is the buffer after `process` (for a transmit, the frame
    /// as it leaves); `now_ms` the caller's clock, read once per batch.
    #[inline]
    pub fn after(&mut self, pending: Pending, verdict: &Verdict, out: &[u8], now_ms: u64) {
        if pending == Pending::Skip
            || (self.filter.drops_only && !matches!(verdict, Verdict::Drop(_)))
        {
            return;
        }
        if pending == Pending::Count {
            self.refused += 1;
            return;
        }
        self.budget -= 1;
        if let Some(head) = Head::parse(self.port, &self.head[..self.head_len]) {
            self.sampler.offer(head, verdict, out, now_ms);
        }
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
    /// loads). Otherwise the filter, compiled, and this batch's budget (the
    /// room left in the ring and this second's tokens at `now_ms`), taken
    /// under one `try_lock` per batch, so that frames the filter refuses,
    /// and any once the budget is spent, never touch the lock.
    #[inline]
    pub fn batch(&self, port: PortId, now_ms: u64) -> Option<Batch<'_>> {
        if !self.armed_on(port) {
            return None;
        }
        let guard = self.ring.try_lock().ok()?;
        let ring = guard.as_ref()?;
        let tokens = if now_ms.saturating_sub(ring.started_ms) / 1000 == ring.second {
            ring.tokens
        } else {
            MAX_SAMPLES_PER_SECOND
        };
        let room = ring.max.saturating_sub(ring.samples.len());
        Some(Batch {
            sampler: self,
            port,
            filter: Compiled::new(&ring.filter),
            budget: tokens.min(u32::try_from(room).unwrap_or(u32::MAX)),
            refused: 0,
            head: [0; HEAD_BYTES],
            head_len: 0,
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
            decided_in: DecidedIn::Pipeline,
        });
    }
}

impl Session<'_> {
    /// Add a verdict decided elsewhere (the XDP tier), read off the
    /// forwarding path: kept if the filter wants it and the ring has room
    /// (its own rate was limited where it was made), else counted as
    /// dropped. `at_millis` is since the observation was armed.
    pub fn record(&self, sample: Sample) {
        let mut ring = self.sampler.ring.lock().unwrap_or_else(|p| p.into_inner());
        let Some(ring) = ring.as_mut() else {
            return;
        };
        if !ring.filter.matches(&sample.head, &sample.verdict) {
            return;
        }
        if ring.samples.len() >= ring.max {
            self.sampler.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        ring.samples.push(sample);
    }

    /// Count `n` matching frames not sampled elsewhere (the XDP tier's
    /// rate limit and full ring).
    pub fn count_dropped(&self, n: u64) {
        self.sampler.dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// End the observation: its samples, in the order they were taken
    /// (by time, for samples from one source), and how many matching frames
    /// were not sampled.
    pub fn finish(self) -> (Vec<Sample>, u64) {
        self.sampler.armed.store(false, Ordering::Release);
        let ring = self
            .sampler
            .ring
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let dropped = self.sampler.dropped.swap(0, Ordering::Relaxed);
        let mut samples = ring.map(|r| r.samples).unwrap_or_default();
        // Samples recorded from the XDP tier arrive in batches: by time.
        samples.sort_by_key(|s| s.at_millis);
        (samples, dropped)
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

    /// An IPv4 frame on `vlan` (0: untagged) from 10.0.0.1 to `dst`.
    fn frame(vlan: u16, dst: [u8; 4]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        if vlan != 0 {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&vlan.to_be_bytes());
        }
        f.extend_from_slice(&[0x08, 0x00]);
        let mut ip = [0u8; 28];
        ip[0] = 0x45;
        ip[9] = 1;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&dst);
        f.extend_from_slice(&ip);
        f
    }

    /// One frame through a batch as the forwarding thread runs it.
    fn through(batch: &mut Batch<'_>, frame: &[u8], verdict: Verdict) -> Pending {
        through_at(batch, frame, verdict, 0)
    }

    fn through_at(batch: &mut Batch<'_>, frame: &[u8], verdict: Verdict, now: u64) -> Pending {
        let pending = batch.before(frame);
        batch.after(pending, &verdict, frame, now);
        pending
    }

    #[test]
    fn a_batch_filters_in_place_and_counts_what_its_budget_refuses() {
        let sampler = Sampler::default();
        assert!(sampler.batch(PortId(1), 0).is_none(), "not armed");
        let filter = Filter {
            port: Some(PortId(1)),
            vlan: Some(100),
            ..Default::default()
        };
        let session = sampler.arm(filter, 2, 0).unwrap();
        assert!(sampler.batch(PortId(2), 0).is_none(), "another port");
        let wanted = frame(100, [10, 0, 0, 2]);
        {
            let mut batch = sampler.batch(PortId(1), 0).expect("this port");
            assert_eq!(through(&mut batch, &wanted, Verdict::Pass), Pending::Sample);
            assert_eq!(through(&mut batch, &wanted, Verdict::Pass), Pending::Sample);
            assert_eq!(through(&mut batch, &wanted, Verdict::Pass), Pending::Count);
            let other = frame(200, [10, 0, 0, 2]);
            assert_eq!(through(&mut batch, &other, Verdict::Pass), Pending::Skip);
        }
        {
            let mut full = sampler.batch(PortId(1), 0).expect("this port");
            assert_eq!(through(&mut full, &wanted, Verdict::Pass), Pending::Count);
            assert_eq!(
                through(&mut full, &frame(300, [10, 0, 0, 2]), Verdict::Pass),
                Pending::Skip
            );
        }
        let (samples, dropped) = session.finish();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].head, Head::parse(PortId(1), &wanted).unwrap());
        assert_eq!(dropped, 2, "one over the room, one once full");
    }

    #[test]
    fn drops_only_samples_and_counts_only_drops() {
        let sampler = Sampler::default();
        let filter = Filter {
            drops_only: true,
            ..Default::default()
        };
        let session = sampler.arm(filter, 1, 0).unwrap();
        let f = frame(0, [10, 0, 0, 2]);
        let drop = Verdict::Drop(crate::verdict::DropReason::NoRoute);
        {
            let mut batch = sampler.batch(PortId(1), 0).unwrap();
            through(&mut batch, &f, Verdict::Pass);
            through(&mut batch, &f, drop);
            through(&mut batch, &f, Verdict::Pass);
            assert_eq!(through(&mut batch, &f, drop), Pending::Count);
        }
        let (samples, dropped) = session.finish();
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].verdict, drop);
        assert_eq!(dropped, 1, "only the second drop: passes are not wanted");
    }

    #[test]
    fn the_batch_budget_follows_the_rate_across_seconds() {
        let sampler = Sampler::default();
        let session = sampler.arm(Filter::default(), 100_000, 0).unwrap();
        let f = frame(0, [10, 0, 0, 2]);
        for now in [0, 999, 1000] {
            let mut batch = sampler.batch(PortId(1), now).unwrap();
            for _ in 0..MAX_SAMPLES_PER_SECOND {
                through_at(&mut batch, &f, Verdict::Pass, now);
            }
        }
        let (samples, dropped) = session.finish();
        assert_eq!(samples.len(), 2 * MAX_SAMPLES_PER_SECOND as usize);
        assert_eq!(
            u64::from(MAX_SAMPLES_PER_SECOND),
            dropped,
            "the second batch of second 0"
        );
    }

    #[test]
    fn recorded_samples_are_filtered_bounded_and_in_time_order() {
        let sampler = Sampler::default();
        let filter = Filter {
            vlan: Some(100),
            ..Default::default()
        };
        let session = sampler.arm(filter, 2, 0).unwrap();
        let xdp = |at_millis, vlan| Sample {
            at_millis,
            port: PortId(1),
            vlan,
            head: head(vlan, [10, 0, 0, 2]),
            verdict: Verdict::Pass,
            egress_vlan: None,
            decided_in: DecidedIn::Xdp,
        };
        session.record(xdp(7, 100));
        session.record(xdp(3, 200));
        session.record(xdp(5, 100));
        session.record(xdp(9, 100));
        let (samples, dropped) = session.finish();
        assert_eq!(
            samples.iter().map(|s| s.at_millis).collect::<Vec<_>>(),
            [5, 7]
        );
        assert_eq!(dropped, 1, "the one over the room");
    }

    proptest::proptest! {
        /// The in-place match is exactly the parsed one, for any frame.
        #[test]
        fn the_compiled_filter_is_the_parsed_filter(
            frame in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
            tpid in proptest::sample::select(vec![None, Some(0x8100u16), Some(0x88a8)]),
            inner in proptest::sample::select(vec![0x0800u16, 0x0806, 0x86dd, 0x8100, 0x88a8, 0x1234]),
            vlan in proptest::option::of(0u16..4),
            pick in proptest::option::of(0usize..4),
        ) {
            let mut frame = frame;
            // Steer the bytes toward the interesting shapes.
            if frame.len() >= 18 {
                match tpid {
                    Some(t) => {
                        frame[12..14].copy_from_slice(&t.to_be_bytes());
                        frame[14] &= 0xf0;
                        frame[15] &= 0x03;
                        frame[16..18].copy_from_slice(&inner.to_be_bytes());
                    }
                    None => frame[12..14].copy_from_slice(&inner.to_be_bytes()),
                }
            }
            // An address from the frame itself (so that some match), or not.
            let ip = pick.and_then(|p| {
                let parsed = Head::parse(PortId(1), &frame)?;
                [parsed.src_ip, parsed.dst_ip, Some(IpAddr::from([10, 9, 8, 7])), Some("2001:db8::1".parse().unwrap())][p]
            });
            let filter = Filter { vlan, ip, ..Default::default() };
            let parsed = Head::parse(PortId(1), &frame)
                .is_some_and(|h| filter.matches(&h, &Verdict::Pass));
            proptest::prop_assert_eq!(Compiled::new(&filter).matches(&frame), parsed);
        }
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
