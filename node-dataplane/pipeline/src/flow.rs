//! The node's flow table: connection state keyed by (VRF, 5-tuple), one
//! forward and one reverse entry per flow, shared by source NAT today and by
//! security groups later (`/work/plan.md`, "Flow state").
//!
//! ```text
//!  instance 10.1.0.5:40000 -> 198.51.100.7:443 (TCP), network VRF 4100, SNAT to 10.0.0.1:61007
//!
//!  forward  key {vrf 4100, v4, tcp, 10.1.0.5 -> 198.51.100.7, 40000 -> 443}
//!           value {action Snat, nat 10.0.0.1:61007, nat_vrf 0 (the fabric)}
//!  reverse  key {vrf 0, v4, tcp, 198.51.100.7 -> 10.0.0.1, 443 -> 61007}
//!           value {action Unsnat, nat 10.1.0.5:40000, nat_vrf 4100}
//! ```
//!
//! **Keys are seen entering a VRF.** VRF 0 is the fabric (the underlay's
//! routing instance, Contrail's `ip-fabric`); a network's VRF is its VNI
//! (stable for the network's life, so flows survive table rebuilds).
//!
//! **The layout is the BPF map's.** [`FlowKey`] and [`FlowValue`] are
//! `repr(C)` with explicit padding (zeroed: the kernel hashes every byte)
//! and sizes fixed by compile-time assertions, so that the XDP tier can
//! mirror established flows into a `BPF_MAP_TYPE_LRU_HASH` with the same
//! bytes (`struct flow_key` / `struct flow_value` in its C header):
//!
//! ```text
//!  FlowKey (44 bytes, align 4)         FlowValue (56 bytes, align 8)
//!   0 vrf       u32                      0 action     u8   (FlowAction)
//!   4 family    u8   (4 or 6)            1 tcp        u8   (TCP_* bits seen)
//!   5 proto     u8   (IP protocol)       2 pad        [u8; 2]
//!   6 pad       [u8; 2]                  4 generation u32  (NAT/policy generation)
//!   8 src       [u8; 16]                 8 nat_vrf    u32  (VRF after translation)
//!  24 dst       [u8; 16]                12 nat_addr   [u8; 16]
//!  40 sport     u16 (wire order)        28 nat_port   u16 (wire order)
//!  42 dport     u16 (wire order)        30 pad        [u8; 2]
//!                                        32 last_seen  u64 (ns, monotonic)
//!  IPv4 addresses fill the first         40 packets    u64
//!  4 bytes, the rest is zero; ICMP       48 bytes      u64
//!  echo: the identifier in sport,
//!  dport 0.
//! ```
//!
//! Ports and the echo identifier are stored as they are on the wire
//! (network byte order), so the XDP program copies them from the packet.
//!
//! **Bounded and allocation-free.** The table holds at most
//! [`FlowConfig::capacity`] flows in a slab allocated once (100 bytes per
//! flow direction); a first packet when it is full is a counted drop
//! (`flow_table_full`), never a growth. The index is an open-addressed
//! array of entry ids, at most half full, with linear probing and
//! backward-shift deletion (no tombstones, so it never needs rehashing):
//! 4 bytes per bucket. Its hasher (SipHash) is keyed at random per table:
//! keys come from the packets of whoever sends them.
//!
//! **Timeouts** (RFC 4787 section 4.3, RFC 5382 section 5, RFC 5508):
//! UDP 300 s, TCP established 7440 s, TCP transitory (not yet established,
//! or after a FIN or RST) 240 s, ICMP 60 s. [`FlowTable::expire`] walks a
//! bounded number of flows per call, so the forwarding thread sweeps the
//! whole table incrementally.
//!
//! **Generations.** Every entry carries the generation of the
//! configuration it was decided under ([`FlowValue::generation`]); the
//! caller compares it with the current one and decides a stale flow again
//! instead of trusting it.

use core::hash::BuildHasher;
use core::net::IpAddr;
use std::collections::hash_map::RandomState;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The VRF id of the fabric (the underlay) in flow keys.
pub const FABRIC_VRF: u32 = 0;

/// TCP state bit: a SYN was seen in this entry's direction.
pub const TCP_SYN: u8 = 0x01;
/// TCP state bit: a FIN was seen in this entry's direction.
pub const TCP_FIN: u8 = 0x02;
/// TCP state bit: a RST was seen in this entry's direction.
pub const TCP_RST: u8 = 0x04;

/// What a flow's entry says to do with its packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FlowAction {
    /// Forward unchanged (policies).
    Forward = 0,
    /// Drop (policies).
    Deny = 1,
    /// Rewrite the source to `nat_addr:nat_port`, continue in `nat_vrf`.
    Snat = 2,
    /// Rewrite the destination to `nat_addr:nat_port` (the return of a
    /// source-translated flow), continue in `nat_vrf`.
    Unsnat = 3,
}

impl FlowAction {
    /// The action stored as `byte`, if it is one.
    pub const fn from_u8(byte: u8) -> Option<FlowAction> {
        match byte {
            0 => Some(FlowAction::Forward),
            1 => Some(FlowAction::Deny),
            2 => Some(FlowAction::Snat),
            3 => Some(FlowAction::Unsnat),
            _ => None,
        }
    }
}

/// A flow table key: a packet as it enters a VRF. See the module docs for
/// the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct FlowKey {
    /// The VRF the packet enters ([`FABRIC_VRF`] for the fabric).
    pub vrf: u32,
    /// 4 or 6.
    pub family: u8,
    /// The IP protocol number.
    pub proto: u8,
    /// Zero.
    pub pad: [u8; 2],
    /// The source address (IPv4: the first four bytes).
    pub src: [u8; 16],
    /// The destination address (IPv4: the first four bytes).
    pub dst: [u8; 16],
    /// The source port (ICMP echo: the identifier), wire byte order.
    pub sport: u16,
    /// The destination port (ICMP echo: 0), wire byte order.
    pub dport: u16,
}

/// A flow table value: what to do, and the flow's liveness and counts. See
/// the module docs for the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct FlowValue {
    /// A [`FlowAction`] as a byte.
    pub action: u8,
    /// `TCP_*` bits seen in this direction.
    pub tcp: u8,
    /// Zero.
    pub pad: [u8; 2],
    /// The generation of the configuration the flow was decided under.
    pub generation: u32,
    /// The VRF the packet continues in once translated.
    pub nat_vrf: u32,
    /// The translated address (IPv4: the first four bytes).
    pub nat_addr: [u8; 16],
    /// The translated port or identifier, wire byte order.
    pub nat_port: u16,
    /// Zero.
    pub pad2: [u8; 2],
    /// When a packet of this direction was last seen (ns, the caller's
    /// monotonic clock).
    pub last_seen_ns: u64,
    /// Packets seen in this direction.
    pub packets: u64,
    /// Bytes seen in this direction.
    pub bytes: u64,
}

const _: () = {
    assert!(core::mem::size_of::<FlowKey>() == 44);
    assert!(core::mem::align_of::<FlowKey>() == 4);
    assert!(core::mem::offset_of!(FlowKey, src) == 8);
    assert!(core::mem::offset_of!(FlowKey, sport) == 40);
    assert!(core::mem::size_of::<FlowValue>() == 56);
    assert!(core::mem::align_of::<FlowValue>() == 8);
    assert!(core::mem::offset_of!(FlowValue, nat_vrf) == 8);
    assert!(core::mem::offset_of!(FlowValue, nat_port) == 28);
    assert!(core::mem::offset_of!(FlowValue, last_seen_ns) == 32);
};

/// An address as the 16 bytes of a key (IPv4 in the first four).
pub fn addr_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => {
            let mut out = [0u8; 16];
            out[..4].copy_from_slice(&a.octets());
            out
        }
        IpAddr::V6(a) => a.octets(),
    }
}

/// The address of `bytes` in family `family` (4 or 6).
pub fn addr_of(family: u8, bytes: &[u8; 16]) -> IpAddr {
    if family == 4 {
        IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]])
    } else {
        IpAddr::from(*bytes)
    }
}

impl FlowKey {
    /// A key; `sport`/`dport` in host order (stored in wire order).
    pub fn new(vrf: u32, proto: u8, src: IpAddr, dst: IpAddr, sport: u16, dport: u16) -> FlowKey {
        FlowKey {
            vrf,
            family: if src.is_ipv4() { 4 } else { 6 },
            proto,
            pad: [0; 2],
            src: addr_bytes(src),
            dst: addr_bytes(dst),
            sport: sport.to_be(),
            dport: dport.to_be(),
        }
    }

    /// The source port, host order.
    pub const fn sport(&self) -> u16 {
        u16::from_be(self.sport)
    }

    /// The destination port, host order.
    pub const fn dport(&self) -> u16 {
        u16::from_be(self.dport)
    }

    /// The source address.
    pub fn src_addr(&self) -> IpAddr {
        addr_of(self.family, &self.src)
    }

    /// The destination address.
    pub fn dst_addr(&self) -> IpAddr {
        addr_of(self.family, &self.dst)
    }
}

impl FlowValue {
    /// A new entry with `action`, translating to `nat_addr:nat_port` (host
    /// order) in `nat_vrf`, decided under `generation`, first seen `now`.
    pub fn new(
        action: FlowAction,
        nat_vrf: u32,
        nat_addr: IpAddr,
        nat_port: u16,
        generation: u32,
        now: u64,
    ) -> FlowValue {
        FlowValue {
            action: action as u8,
            tcp: 0,
            pad: [0; 2],
            generation,
            nat_vrf,
            nat_addr: addr_bytes(nat_addr),
            nat_port: nat_port.to_be(),
            pad2: [0; 2],
            last_seen_ns: now,
            packets: 0,
            bytes: 0,
        }
    }

    /// The action, if the byte holds one.
    pub const fn action(&self) -> Option<FlowAction> {
        FlowAction::from_u8(self.action)
    }

    /// The translated port, host order.
    pub const fn nat_port(&self) -> u16 {
        u16::from_be(self.nat_port)
    }

    /// The translated address, in `family`.
    pub fn nat_addr(&self, family: u8) -> IpAddr {
        addr_of(family, &self.nat_addr)
    }
}

/// How long an idle flow lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// UDP (RFC 4787 REQ-5: at least 2 minutes, 5 recommended).
    pub udp: Duration,
    /// TCP once both sides sent a SYN and neither a FIN or RST (RFC 5382
    /// REQ-5: at least 2 h 4 min).
    pub tcp_established: Duration,
    /// TCP before that, or once closing (RFC 5382: 4 minutes).
    pub tcp_transitory: Duration,
    /// ICMP echo (RFC 5508 REQ-1: 60 s).
    pub icmp: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            udp: Duration::from_secs(300),
            tcp_established: Duration::from_secs(7440),
            tcp_transitory: Duration::from_secs(240),
            icmp: Duration::from_secs(60),
        }
    }
}

/// The size and timeouts of a flow table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowConfig {
    /// The most flows (each a forward and a reverse entry).
    pub capacity: usize,
    /// Idle timeouts.
    pub timeouts: Timeouts,
}

impl Default for FlowConfig {
    /// 262144 flows: the original's 524288 flow entries, two per flow.
    fn default() -> Self {
        FlowConfig {
            capacity: 262_144,
            timeouts: Timeouts::default(),
        }
    }
}

/// Counts another thread (metrics) reads.
#[derive(Debug, Default)]
pub struct FlowStats {
    active: AtomicU64,
    created: AtomicU64,
    expired: AtomicU64,
    removed: AtomicU64,
    table_full: AtomicU64,
    ports_exhausted: AtomicU64,
}

/// The values of a [`FlowStats`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowStatsSnapshot {
    /// Flows in the table now.
    pub active: u64,
    /// Flows created.
    pub created: u64,
    /// Flows removed for being idle.
    pub expired: u64,
    /// Flows removed because their generation went stale (or by request).
    pub removed: u64,
    /// First packets refused because the table was full.
    pub table_full: u64,
    /// First packets refused because no translated port was free.
    pub ports_exhausted: u64,
}

impl FlowStats {
    /// A copy of every count.
    pub fn snapshot(&self) -> FlowStatsSnapshot {
        FlowStatsSnapshot {
            active: self.active.load(Ordering::Relaxed),
            created: self.created.load(Ordering::Relaxed),
            expired: self.expired.load(Ordering::Relaxed),
            removed: self.removed.load(Ordering::Relaxed),
            table_full: self.table_full.load(Ordering::Relaxed),
            ports_exhausted: self.ports_exhausted.load(Ordering::Relaxed),
        }
    }

    fn bump(counter: &AtomicU64) {
        // One writer (the forwarding thread): a relaxed load and store.
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }

    /// Count a first packet refused because no port was free.
    pub(crate) fn port_exhausted(&self) {
        Self::bump(&self.ports_exhausted);
    }
}

/// A position in the table: `2 * flow` is the forward entry, `2 * flow + 1`
/// the reverse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntryId(u32);

impl EntryId {
    /// Whether this is a flow's reverse entry.
    pub const fn is_reverse(self) -> bool {
        self.0 & 1 == 1
    }

    /// The other direction's entry.
    pub const fn other(self) -> EntryId {
        EntryId(self.0 ^ 1)
    }

    /// The flow's index.
    pub const fn flow(self) -> usize {
        (self.0 >> 1) as usize
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    key: FlowKey,
    value: FlowValue,
}

/// Why a flow could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// The table holds [`FlowConfig::capacity`] flows.
    #[error("the flow table is full")]
    Full,
    /// One of the two keys is already in the table.
    #[error("a flow with one of these keys exists")]
    Exists,
}

/// An empty bucket of the index.
const EMPTY: u32 = u32::MAX;

/// The open-addressed index: key hash -> entry id, linear probing,
/// backward-shift deletion, at most half full.
struct Index {
    buckets: Box<[u32]>,
    mask: usize,
    hasher: RandomState,
}

impl Index {
    fn new(entries: usize) -> Index {
        let buckets = (2 * entries).next_power_of_two().max(2);
        Index {
            buckets: vec![EMPTY; buckets].into_boxed_slice(),
            mask: buckets - 1,
            hasher: RandomState::new(),
        }
    }

    #[inline]
    fn home(&self, key: &FlowKey) -> usize {
        self.hasher.hash_one(key) as usize & self.mask
    }

    /// The bucket holding `key`, if any.
    #[inline]
    fn find(&self, key: &FlowKey, slots: &[Slot]) -> Option<usize> {
        let mut i = self.home(key);
        loop {
            let id = self.buckets[i];
            if id == EMPTY {
                return None;
            }
            if slots[id as usize].key == *key {
                return Some(i);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Place `id` (whose key is not indexed yet) in the first free bucket
    /// from its home. The table is at most half full, so one is found.
    fn insert(&mut self, key: &FlowKey, id: EntryId) {
        let mut i = self.home(key);
        while self.buckets[i] != EMPTY {
            i = (i + 1) & self.mask;
        }
        self.buckets[i] = id.0;
    }

    /// Empty bucket `i` and shift back the entries of its probe run that
    /// would no longer be found (Knuth's algorithm R).
    fn remove_at(&mut self, mut i: usize, slots: &[Slot]) {
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let id = self.buckets[j];
            if id == EMPTY {
                break;
            }
            let home = self.home(&slots[id as usize].key);
            // The entry at j stays when its home lies cyclically in (i, j].
            let stays = if i <= j {
                i < home && home <= j
            } else {
                i < home || home <= j
            };
            if !stays {
                self.buckets[i] = id;
                i = j;
            }
        }
        self.buckets[i] = EMPTY;
    }
}

/// The flow table of one forwarding thread: single writer, no lock.
pub struct FlowTable {
    config: FlowConfig,
    index: Index,
    slots: Box<[Slot]>,
    in_use: Box<[bool]>,
    free: Vec<u32>,
    cursor: usize,
    stats: Arc<FlowStats>,
    /// What a mirror (the XDP tier's flow map) has not seen yet, when one
    /// follows the table.
    journal: Option<Journal>,
}

/// How many changes the journal holds between two drains; past that the
/// mirror is rebuilt whole ([`MirrorEvent::Reset`]).
pub const JOURNAL_CAPACITY: usize = 4096;

/// A change of the table a mirror has not seen yet.
#[derive(Debug, Clone, Copy)]
enum Change {
    /// The flow of this entry was created, or its TCP state (its timeout)
    /// moved: write both its entries as they are now.
    Put(EntryId),
    /// A flow with these two keys is gone.
    Remove(FlowKey, FlowKey),
}

#[derive(Debug)]
struct Journal {
    changes: Vec<Change>,
    overflowed: bool,
}

/// What a mirror must do to follow the table, in order (see
/// [`FlowTable::drain_mirror`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorEvent<'a> {
    /// Forget every entry: the changes since the last drain overflowed the
    /// journal; `Put`s of every entry follow.
    Reset,
    /// Write this entry (its key and value now, and the flow's idle
    /// timeout now).
    Put(EntryId, &'a FlowKey, &'a FlowValue, Duration),
    /// Remove the entry of this key.
    Remove(FlowKey),
}

impl core::fmt::Debug for FlowTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FlowTable")
            .field("capacity", &self.config.capacity)
            .field("flows", &self.len())
            .finish()
    }
}

impl FlowTable {
    /// An empty table of `config.capacity` flows (at least one), allocated
    /// now and never again.
    pub fn new(config: FlowConfig) -> FlowTable {
        let capacity = config.capacity.clamp(1, u32::MAX as usize / 2);
        let config = FlowConfig { capacity, ..config };
        FlowTable {
            config,
            index: Index::new(2 * capacity),
            slots: vec![Slot::default(); 2 * capacity].into_boxed_slice(),
            in_use: vec![false; capacity].into_boxed_slice(),
            free: (0..capacity as u32).rev().collect(),
            cursor: 0,
            stats: Arc::new(FlowStats::default()),
            journal: None,
        }
    }

    /// Keep (or stop keeping) a journal of the changes a mirror of the
    /// table must follow: created flows, TCP state moves, removals. Turned
    /// on, the next drain starts with a [`MirrorEvent::Reset`] and every
    /// flow.
    pub fn set_mirrored(&mut self, on: bool) {
        self.journal = on.then(|| Journal {
            changes: Vec::with_capacity(JOURNAL_CAPACITY),
            overflowed: true,
        });
    }

    /// Make the next drain start over ([`MirrorEvent::Reset`], then every
    /// entry): what the mirror's entries carry besides the table changed
    /// (a fabric next hop's MAC).
    pub fn resync_mirror(&mut self) {
        if let Some(j) = self.journal.as_mut() {
            j.overflowed = true;
            j.changes.clear();
        }
    }

    fn journal(&mut self, change: Change) {
        if let Some(j) = self.journal.as_mut()
            && !j.overflowed
        {
            if j.changes.len() == JOURNAL_CAPACITY {
                j.overflowed = true;
                j.changes.clear();
            } else {
                j.changes.push(change);
            }
        }
    }

    /// Hands the changes since the last drain to `apply`, in order, and
    /// forgets them. Nothing when the table is not mirrored.
    pub fn drain_mirror(&mut self, mut apply: impl FnMut(MirrorEvent<'_>)) {
        let Some(mut journal) = self.journal.take() else {
            return;
        };
        if journal.overflowed {
            apply(MirrorEvent::Reset);
            for flow in 0..self.config.capacity {
                if self.in_use[flow] {
                    self.put_flow(flow, &mut apply);
                }
            }
        } else {
            for change in journal.changes.drain(..) {
                match change {
                    Change::Put(id) if self.in_use[id.flow()] => {
                        self.put_flow(id.flow(), &mut apply)
                    }
                    Change::Put(_) => {}
                    Change::Remove(forward, reverse) => {
                        apply(MirrorEvent::Remove(forward));
                        apply(MirrorEvent::Remove(reverse));
                    }
                }
            }
        }
        journal.changes.clear();
        journal.overflowed = false;
        self.journal = Some(journal);
    }

    fn put_flow(&self, flow: usize, apply: &mut impl FnMut(MirrorEvent<'_>)) {
        let idle = self.timeout(flow);
        for slot in [2 * flow, 2 * flow + 1] {
            let s = &self.slots[slot];
            apply(MirrorEvent::Put(
                EntryId(slot as u32),
                &s.key,
                &s.value,
                idle,
            ));
        }
    }

    /// The idle timeout of the flow of entry `id` now (by protocol and TCP
    /// state).
    pub fn idle_timeout(&self, id: EntryId) -> Duration {
        self.timeout(id.flow())
    }

    /// Its size and timeouts.
    pub fn config(&self) -> FlowConfig {
        self.config
    }

    /// The counts, shared with other threads.
    pub fn stats(&self) -> Arc<FlowStats> {
        self.stats.clone()
    }

    /// How many flows it holds.
    pub fn len(&self) -> usize {
        self.config.capacity - self.free.len()
    }

    /// Whether it holds no flow.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry of `key`.
    #[inline]
    pub fn lookup(&self, key: &FlowKey) -> Option<EntryId> {
        self.index
            .find(key, &self.slots)
            .map(|i| EntryId(self.index.buckets[i]))
    }

    /// Whether some entry has `key`.
    #[inline]
    pub fn contains(&self, key: &FlowKey) -> bool {
        self.index.find(key, &self.slots).is_some()
    }

    /// A hash of `key` with the table's keyed hasher (to spread choices,
    /// such as a translated port, over keys an outsider cannot predict).
    pub fn hash(&self, key: &FlowKey) -> u64 {
        self.index.hasher.hash_one(key)
    }

    /// The key of an entry.
    pub fn key(&self, id: EntryId) -> &FlowKey {
        &self.slots[id.0 as usize].key
    }

    /// The value of an entry.
    pub fn value(&self, id: EntryId) -> &FlowValue {
        &self.slots[id.0 as usize].value
    }

    /// Record a packet of `bytes` bytes through entry `id` at `now`, with
    /// the TCP flags it carried (0 for other protocols).
    #[inline]
    pub fn touch(&mut self, id: EntryId, now: u64, bytes: usize, tcp_flags: u8) {
        let value = &mut self.slots[id.0 as usize].value;
        value.last_seen_ns = value.last_seen_ns.max(now);
        value.packets = value.packets.wrapping_add(1);
        value.bytes = value.bytes.wrapping_add(bytes as u64);
        let before = value.tcp;
        value.tcp |= tcp_state_bits(tcp_flags);
        if value.tcp != before {
            // The flow's timeout may have moved: the mirror's entries carry it.
            self.journal(Change::Put(id));
        }
    }

    /// Insert a flow: its forward and reverse entries. Refused when full
    /// (counted) or when either key exists.
    pub fn insert(
        &mut self,
        forward: (FlowKey, FlowValue),
        reverse: (FlowKey, FlowValue),
    ) -> Result<EntryId, FlowError> {
        if forward.0 == reverse.0 || self.contains(&forward.0) || self.contains(&reverse.0) {
            return Err(FlowError::Exists);
        }
        let Some(flow) = self.free.pop() else {
            FlowStats::bump(&self.stats.table_full);
            return Err(FlowError::Full);
        };
        let fwd = EntryId(flow * 2);
        let rev = fwd.other();
        self.slots[fwd.0 as usize] = Slot {
            key: forward.0,
            value: forward.1,
        };
        self.slots[rev.0 as usize] = Slot {
            key: reverse.0,
            value: reverse.1,
        };
        self.in_use[flow as usize] = true;
        self.index.insert(&forward.0, fwd);
        self.index.insert(&reverse.0, rev);
        self.journal(Change::Put(fwd));
        FlowStats::bump(&self.stats.created);
        self.stats
            .active
            .store(self.len() as u64, Ordering::Relaxed);
        Ok(fwd)
    }

    /// Remove the flow an entry belongs to (both entries).
    pub fn remove(&mut self, id: EntryId) {
        if self.drop_flow(id.flow()) {
            FlowStats::bump(&self.stats.removed);
        }
    }

    fn drop_flow(&mut self, flow: usize) -> bool {
        if !self.in_use.get(flow).copied().unwrap_or(false) {
            return false;
        }
        for slot in [2 * flow, 2 * flow + 1] {
            let key = self.slots[slot].key;
            if let Some(i) = self.index.find(&key, &self.slots) {
                self.index.remove_at(i, &self.slots);
            }
        }
        let keys = (self.slots[2 * flow].key, self.slots[2 * flow + 1].key);
        for slot in [2 * flow, 2 * flow + 1] {
            self.slots[slot] = Slot::default();
        }
        self.journal(Change::Remove(keys.0, keys.1));
        self.in_use[flow] = false;
        self.free.push(flow as u32);
        self.stats
            .active
            .store(self.len() as u64, Ordering::Relaxed);
        true
    }

    /// How long flow `flow` may stay idle.
    fn timeout(&self, flow: usize) -> Duration {
        let forward = &self.slots[2 * flow];
        let reverse = &self.slots[2 * flow + 1];
        let t = &self.config.timeouts;
        match forward.key.proto {
            6 => {
                let both = forward.value.tcp | reverse.value.tcp;
                let established = forward.value.tcp & TCP_SYN != 0
                    && reverse.value.tcp & TCP_SYN != 0
                    && both & (TCP_FIN | TCP_RST) == 0;
                if established {
                    t.tcp_established
                } else {
                    t.tcp_transitory
                }
            }
            17 => t.udp,
            _ => t.icmp,
        }
    }

    /// Whether flow `flow` has been idle past its timeout at `now`.
    fn idle(&self, flow: usize, now: u64) -> bool {
        self.quiet(flow, now) > self.timeout(flow).as_nanos() as u64
    }

    /// How long flow `flow` has seen no packet here at `now` (ns).
    fn quiet(&self, flow: usize, now: u64) -> u64 {
        let last = self.slots[2 * flow]
            .value
            .last_seen_ns
            .max(self.slots[2 * flow + 1].value.last_seen_ns);
        now.saturating_sub(last)
    }

    /// Whether the flow of entry `id` has been idle past its timeout at
    /// `now` (it is then as good as gone: a lookup treats it as a miss).
    pub fn expired(&self, id: EntryId, now: u64) -> bool {
        self.idle(id.flow(), now)
    }

    /// Look at up to `budget` flows from where the last call stopped and
    /// remove those idle past their timeout at `now`; returns how many
    /// were removed. Called regularly, it sweeps the whole table.
    pub fn expire(&mut self, now: u64, budget: usize) -> usize {
        self.expire_with(now, budget, |_| None)
    }

    /// [`expire`](Self::expire), where packets may also have been seen
    /// elsewhere (the XDP tier's flow stage): for a flow quiet here for
    /// more than half its timeout, `last_seen(key)` gives each of its
    /// entries' last-seen time there (same clock), if any, and the later
    /// one counts. Refreshed at half the timeout rather than at its end,
    /// a flow the kernel alone keeps busy never looks idle to a packet
    /// handed to the pipeline (a FIN after hours in the kernel), as long
    /// as the sweep visits every flow within half the shortest timeout.
    pub fn expire_with(
        &mut self,
        now: u64,
        budget: usize,
        mut last_seen: impl FnMut(&FlowKey) -> Option<u64>,
    ) -> usize {
        let mut removed = 0;
        for _ in 0..budget.min(self.config.capacity) {
            let flow = self.cursor;
            self.cursor = (self.cursor + 1) % self.config.capacity;
            if !self.in_use[flow]
                || self.quiet(flow, now) <= self.timeout(flow).as_nanos() as u64 / 2
            {
                continue;
            }
            for slot in [2 * flow, 2 * flow + 1] {
                if let Some(seen) = last_seen(&self.slots[slot].key) {
                    let value = &mut self.slots[slot].value;
                    value.last_seen_ns = value.last_seen_ns.max(seen);
                }
            }
            if self.idle(flow, now) && self.drop_flow(flow) {
                FlowStats::bump(&self.stats.expired);
                removed += 1;
            }
        }
        removed
    }

    /// Every flow's forward entry, for dumps and tests.
    pub fn flows(&self) -> impl Iterator<Item = (EntryId, &FlowKey, &FlowValue)> {
        self.in_use
            .iter()
            .enumerate()
            .filter(|(_, used)| **used)
            .map(|(flow, _)| {
                let slot = &self.slots[2 * flow];
                (EntryId(2 * flow as u32), &slot.key, &slot.value)
            })
    }
}

/// The `TCP_*` bits of a segment's flags.
#[inline]
pub fn tcp_state_bits(flags: u8) -> u8 {
    use trunkline_wire::tcp;
    let mut bits = 0;
    if flags & tcp::SYN != 0 {
        bits |= TCP_SYN;
    }
    if flags & tcp::FIN != 0 {
        bits |= TCP_FIN;
    }
    if flags & tcp::RST != 0 {
        bits |= TCP_RST;
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn pair(sport: u16, proto: u8) -> ((FlowKey, FlowValue), (FlowKey, FlowValue)) {
        let fwd = FlowKey::new(4100, proto, ip("10.1.0.5"), ip("198.51.100.7"), sport, 443);
        let rev = FlowKey::new(
            FABRIC_VRF,
            proto,
            ip("198.51.100.7"),
            ip("10.0.0.1"),
            443,
            61000 + sport,
        );
        (
            (
                fwd,
                FlowValue::new(
                    FlowAction::Snat,
                    FABRIC_VRF,
                    ip("10.0.0.1"),
                    61000 + sport,
                    1,
                    0,
                ),
            ),
            (
                rev,
                FlowValue::new(FlowAction::Unsnat, 4100, ip("10.1.0.5"), sport, 1, 0),
            ),
        )
    }

    #[test]
    fn keys_and_values_have_the_bpf_layout() {
        let key = FlowKey::new(7, 6, ip("10.0.0.1"), ip("10.0.0.2"), 0x1234, 80);
        // SAFETY-free byte view: the derive(Default) zero padding and the
        // field order are what the C struct expects.
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&key.vrf.to_ne_bytes());
        bytes.extend_from_slice(&[key.family, key.proto]);
        bytes.extend_from_slice(&key.pad);
        bytes.extend_from_slice(&key.src);
        bytes.extend_from_slice(&key.dst);
        bytes.extend_from_slice(&key.sport.to_ne_bytes());
        bytes.extend_from_slice(&key.dport.to_ne_bytes());
        assert_eq!(bytes.len(), core::mem::size_of::<FlowKey>());
        // Ports in wire order: 0x1234 is the bytes 12 34.
        assert_eq!(&bytes[40..44], &[0x12, 0x34, 0x00, 0x50]);
        assert_eq!(&bytes[8..12], &[10, 0, 0, 1]);
        assert!(bytes[12..24].iter().all(|b| *b == 0));
        assert_eq!((key.sport(), key.dport()), (0x1234, 80));
        assert_eq!(key.src_addr(), ip("10.0.0.1"));
        let v6 = FlowKey::new(7, 58, ip("fd00::1"), ip("fd00::2"), 9, 0);
        assert_eq!((v6.family, v6.dst_addr()), (6, ip("fd00::2")));
        let value = FlowValue::new(FlowAction::Unsnat, 4100, ip("10.1.0.5"), 40000, 3, 5);
        assert_eq!(value.action(), Some(FlowAction::Unsnat));
        assert_eq!(
            (value.nat_port(), value.nat_addr(4)),
            (40000, ip("10.1.0.5"))
        );
        assert_eq!(FlowAction::from_u8(9), None);
    }

    #[test]
    fn a_flow_is_two_entries_found_by_either_key() {
        let mut table = FlowTable::new(FlowConfig {
            capacity: 4,
            ..Default::default()
        });
        let (fwd, rev) = pair(1, 6);
        let id = table.insert(fwd, rev).unwrap();
        assert!(!id.is_reverse());
        assert_eq!(table.lookup(&fwd.0), Some(id));
        assert_eq!(table.lookup(&rev.0), Some(id.other()));
        assert!(table.lookup(&rev.0).unwrap().is_reverse());
        assert_eq!(table.value(id.other()).nat_port(), 1);
        assert_eq!(table.insert(fwd, pair(2, 6).1), Err(FlowError::Exists));
        table.touch(id, 10, 60, trunkline_wire::tcp::SYN);
        assert_eq!(table.value(id).packets, 1);
        assert_eq!(table.value(id).bytes, 60);
        assert_eq!(table.value(id).tcp, TCP_SYN);
        table.remove(id.other());
        assert!(table.is_empty());
        assert_eq!(table.lookup(&fwd.0), None);
        assert_eq!(table.lookup(&rev.0), None);
        let stats = table.stats().snapshot();
        assert_eq!((stats.created, stats.removed, stats.active), (1, 1, 0));
    }

    /// The journal a mirror drains: everything at first, then creations,
    /// TCP state moves and removals in order, an overflow or a resync as
    /// a reset and every entry; nothing for packets that change no state.
    #[test]
    fn a_mirror_follows_the_table_through_its_journal() {
        let mut table = FlowTable::new(FlowConfig {
            capacity: JOURNAL_CAPACITY + 8,
            ..Default::default()
        });
        let drain = |table: &mut FlowTable| {
            let mut events = Vec::new();
            table.drain_mirror(|e| {
                events.push(match e {
                    MirrorEvent::Reset => "reset".to_owned(),
                    MirrorEvent::Put(_, k, v, idle) => {
                        format!("put {} {} {}", k.sport(), v.action, idle.as_secs())
                    }
                    MirrorEvent::Remove(k) => format!("remove {}", k.sport()),
                })
            });
            events
        };
        let (f1, r1) = pair(1, 6);
        let id = table.insert(f1, r1).unwrap();
        assert!(drain(&mut table).is_empty(), "not mirrored: no journal");
        table.set_mirrored(true);
        assert_eq!(drain(&mut table), ["reset", "put 1 2 240", "put 443 3 240"]);
        assert!(drain(&mut table).is_empty());
        // A packet without a state move: nothing to write.
        table.touch(id, 1, 60, trunkline_wire::tcp::ACK);
        assert!(drain(&mut table).is_empty());
        // Both SYNs: established, a longer timeout for both entries.
        table.touch(id, 2, 60, trunkline_wire::tcp::SYN);
        table.touch(id.other(), 2, 60, trunkline_wire::tcp::SYN);
        assert_eq!(
            drain(&mut table),
            // Written as they are when drained (twice: one move each way).
            [
                "put 1 2 7440",
                "put 443 3 7440",
                "put 1 2 7440",
                "put 443 3 7440"
            ]
        );
        let (f2, r2) = pair(2, 17);
        table.insert(f2, r2).unwrap();
        table.remove(id);
        assert_eq!(
            drain(&mut table),
            ["put 2 2 300", "put 443 3 300", "remove 1", "remove 443"]
        );
        table.resync_mirror();
        assert_eq!(drain(&mut table), ["reset", "put 2 2 300", "put 443 3 300"]);
        // More changes than the journal holds: a reset and every flow.
        for sport in 3..(JOURNAL_CAPACITY as u16 + 5) {
            let (f, r) = pair(sport, 17);
            table.insert(f, r).unwrap();
        }
        let events = drain(&mut table);
        assert_eq!(events[0], "reset");
        assert_eq!(events.len(), 1 + 2 * table.len());
    }

    #[test]
    fn a_full_table_refuses_and_counts() {
        let mut table = FlowTable::new(FlowConfig {
            capacity: 2,
            ..Default::default()
        });
        for sport in 1..=2 {
            let (f, r) = pair(sport, 17);
            table.insert(f, r).unwrap();
        }
        let (f, r) = pair(3, 17);
        assert_eq!(table.insert(f, r), Err(FlowError::Full));
        assert_eq!(table.stats().snapshot().table_full, 1);
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn idle_flows_expire_by_protocol_and_tcp_state() {
        let mut table = FlowTable::new(FlowConfig {
            capacity: 8,
            ..Default::default()
        });
        let udp = table.insert(pair(1, 17).0, pair(1, 17).1).unwrap();
        let icmp = table.insert(pair(2, 1).0, pair(2, 1).1).unwrap();
        let tcp = table.insert(pair(3, 6).0, pair(3, 6).1).unwrap();
        let syn = trunkline_wire::tcp::SYN;
        table.touch(tcp, 0, 60, syn);
        table.touch(tcp.other(), 0, 60, syn | trunkline_wire::tcp::ACK);
        // Established TCP outlives everything else.
        assert_eq!(table.expire(61 * SEC, 8), 1, "ICMP after 60 s");
        assert_eq!(table.lookup(&pair(2, 1).0.0), None);
        assert!(!table.expired(udp, 299 * SEC));
        assert_eq!(table.expire(301 * SEC, 8), 1, "UDP after 300 s");
        assert!(table.lookup(&pair(3, 6).0.0).is_some());
        assert_eq!(table.expire(7000 * SEC, 8), 0);
        // A FIN makes it transitory: 240 s from the last packet.
        table.touch(tcp, 7000 * SEC, 60, trunkline_wire::tcp::FIN);
        assert_eq!(table.expire(7200 * SEC, 8), 0);
        assert_eq!(table.expire(7241 * SEC, 8), 1);
        assert_eq!(table.stats().snapshot().expired, 3);
        let _ = icmp;
    }

    /// A flow whose packets pass elsewhere (the XDP tier) has its
    /// last-seen refreshed by the sweep once it is quiet here for half its
    /// timeout, before it could look idle to a packet of its own; one
    /// quiet there too expires.
    #[test]
    fn the_sweep_refreshes_flows_busy_elsewhere_at_half_their_timeout() {
        let mut table = FlowTable::new(FlowConfig {
            capacity: 2,
            ..Default::default()
        });
        let busy = table.insert(pair(1, 17).0, pair(1, 17).1).unwrap();
        let quiet = table.insert(pair(2, 17).0, pair(2, 17).1).unwrap();
        let busy_key = pair(1, 17).0.0;
        let mut asked = 0;
        // 100 s: neither is quiet for half of UDP's 300 s: not asked.
        table.expire_with(100 * SEC, 2, |_| {
            asked += 1;
            None
        });
        assert_eq!(asked, 0);
        // 200 s: both are; the busy one was seen elsewhere at 199 s.
        let seen = |key: &FlowKey| (*key == busy_key).then_some(199 * SEC);
        assert_eq!(table.expire_with(200 * SEC, 2, seen), 0);
        assert_eq!(table.value(busy).last_seen_ns, 199 * SEC);
        assert_eq!(table.value(quiet).last_seen_ns, 0);
        // 301 s: the quiet one is gone, the busy one is not idle here.
        assert!(!table.expired(busy, 301 * SEC));
        assert_eq!(table.expire_with(301 * SEC, 2, seen), 1);
        assert_eq!(table.lookup(&pair(2, 17).0.0), None);
        assert!(table.lookup(&busy_key).is_some());
    }

    #[test]
    fn the_sweep_is_bounded_and_wraps() {
        let mut table = FlowTable::new(FlowConfig {
            capacity: 10,
            ..Default::default()
        });
        for sport in 0..10 {
            let (f, r) = pair(sport, 17);
            table.insert(f, r).unwrap();
        }
        let late = 1000 * SEC;
        assert_eq!(table.expire(late, 3), 3);
        assert_eq!(table.expire(late, 3), 3);
        assert_eq!(table.expire(late, 3), 3);
        assert_eq!(table.expire(late, 3), 1);
        assert!(table.is_empty());
        // Slots are reused.
        let (f, r) = pair(1, 17);
        assert!(table.insert(f, r).is_ok());
    }

    proptest::proptest! {
        /// The open-addressed index agrees with a model map through any
        /// sequence of inserts and removals (backward shifts included).
        #[test]
        fn the_index_agrees_with_a_model(ops in proptest::collection::vec((0u16..40, proptest::bool::ANY), 0..300)) {
            let mut table = FlowTable::new(FlowConfig { capacity: 16, ..Default::default() });
            let mut model: std::collections::HashMap<u16, EntryId> = Default::default();
            for (sport, insert) in ops {
                let (f, r) = pair(sport, 17);
                if insert {
                    match table.insert(f, r) {
                        Ok(id) => { proptest::prop_assert!(model.insert(sport, id).is_none()); }
                        Err(FlowError::Exists) => proptest::prop_assert!(model.contains_key(&sport)),
                        Err(FlowError::Full) => proptest::prop_assert_eq!(model.len(), 16),
                    }
                } else if let Some(id) = model.remove(&sport) {
                    table.remove(id);
                }
                for s in 0u16..40 {
                    let (f, r) = pair(s, 17);
                    let want = model.get(&s).copied();
                    proptest::prop_assert_eq!(table.lookup(&f.0), want);
                    proptest::prop_assert_eq!(table.lookup(&r.0), want.map(EntryId::other));
                }
                proptest::prop_assert_eq!(table.len(), model.len());
            }
        }
    }

    #[test]
    fn the_hash_is_keyed_per_table() {
        let key = pair(1, 6).0.0;
        let a = FlowTable::new(FlowConfig::default());
        let b = FlowTable::new(FlowConfig::default());
        assert_eq!(a.hash(&key), a.hash(&key));
        // Two tables disagree (with overwhelming probability).
        assert_ne!(a.hash(&key), b.hash(&key));
    }
}
