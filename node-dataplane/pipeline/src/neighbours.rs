//! The fabric's neighbours as the fast path sees them: the MAC of each next
//! hop on the fabric (a router of the underlay, or a host on the fabric's
//! own subnet) that packets leaving the overlay untunneled go to (source
//! NAT, IP fabric forwarding).
//!
//! ```text
//!  forwarding thread                          host thread (netlink)
//!   lookup(next hop)                           every tick: wanted() ->
//!     hit: MAC                                   neighbour table (NTF_USE) -> resolve(slot, MAC)
//!     miss: claim a slot, mark it WANTED;      every second: resolved() -> refresh (or forget)
//!           the packet is dropped
//!           (fabric_unresolved)
//! ```
//!
//! Tunnel peers are known in advance and get a cell each in the tables;
//! these next hops are not (any host of the fabric's subnet may be one), so
//! they live in a fixed cache of [`SLOTS`] entries, four-way associative,
//! shared by the two threads through atomics only: no lock on the fast
//! path, no allocation after construction. The cache belongs to no
//! compilation: the tables carry the same `Arc` from one to the next.
//!
//! A slot is `(address, state)`. Only the forwarding thread writes the
//! address, and it bumps the state's 14-bit generation when it does; the
//! host thread writes a MAC with a compare-and-swap on the state it read,
//! so an answer for an address the slot no longer holds is never stored.

use core::net::IpAddr;
use core::sync::atomic::{AtomicU64, Ordering};

/// How many next hops the cache holds.
pub const SLOTS: usize = 1024;
/// Slots probed per address.
const WAYS: usize = 4;

/// State bits: `generation << 50 | WANTED | VALID | mac`.
const VALID: u64 = 1 << 48;
const WANTED: u64 = 1 << 49;
const GEN_SHIFT: u32 = 50;
const MAC_MASK: u64 = (1 << 48) - 1;

#[derive(Debug, Default)]
struct Slot {
    /// The address as two words (IPv4: mapped into IPv6's ::ffff:0:0/96).
    addr: [AtomicU64; 2],
    state: AtomicU64,
}

/// The next hops of the fabric and their MACs.
#[derive(Debug)]
pub struct NeighbourCache {
    slots: Box<[Slot]>,
    /// Round robin for evictions (forwarding thread only).
    victim: AtomicU64,
    /// Resolved MACs that changed or were forgotten: whoever copied MACs
    /// out of the cache (the XDP tier's flow entries) writes them again.
    changes: AtomicU64,
}

impl Default for NeighbourCache {
    fn default() -> Self {
        NeighbourCache {
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
            victim: AtomicU64::new(0),
            changes: AtomicU64::new(0),
        }
    }
}

fn words(ip: IpAddr) -> [u64; 2] {
    let v6 = match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    };
    let n = u128::from(v6);
    [(n >> 64) as u64, n as u64]
}

fn from_words(w: [u64; 2]) -> IpAddr {
    let v6 = core::net::Ipv6Addr::from((u128::from(w[0]) << 64) | u128::from(w[1]));
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

fn set(w: [u64; 2]) -> usize {
    let h = (w[0] ^ w[1].rotate_left(17)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((h >> 32) as usize % (SLOTS / WAYS)) * WAYS
}

/// A slot the host thread should resolve (or refresh): its position, its
/// address and the state it was read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// The slot.
    pub slot: usize,
    /// The next hop's address.
    pub addr: IpAddr,
    state: u64,
}

impl NeighbourCache {
    /// The MAC of next hop `ip`, or `None` after asking for it (forwarding
    /// thread only: it is the only writer of addresses).
    pub fn lookup(&self, ip: IpAddr) -> Option<[u8; 6]> {
        let w = words(ip);
        let base = set(w);
        let mut free = None;
        for slot in base..base + WAYS {
            let s = &self.slots[slot];
            let state = s.state.load(Ordering::Acquire);
            if state & (VALID | WANTED) == 0 {
                free.get_or_insert(slot);
                continue;
            }
            if s.addr[0].load(Ordering::Relaxed) == w[0]
                && s.addr[1].load(Ordering::Relaxed) == w[1]
            {
                if state & VALID != 0 {
                    let b = (state & MAC_MASK).to_be_bytes();
                    return Some([b[2], b[3], b[4], b[5], b[6], b[7]]);
                }
                // Already asked for.
                return None;
            }
        }
        let slot = free.unwrap_or_else(|| {
            let n = self.victim.load(Ordering::Relaxed);
            self.victim.store(n.wrapping_add(1), Ordering::Relaxed);
            base + (n as usize % WAYS)
        });
        let s = &self.slots[slot];
        let generation = ((s.state.load(Ordering::Relaxed) >> GEN_SHIFT) + 1) & 0x3fff;
        // Clear first, so the host thread never pairs the new address with
        // the old MAC; the generation makes its pending answer stale.
        s.state.store(generation << GEN_SHIFT, Ordering::Release);
        s.addr[0].store(w[0], Ordering::Relaxed);
        s.addr[1].store(w[1], Ordering::Relaxed);
        s.state
            .store((generation << GEN_SHIFT) | WANTED, Ordering::Release);
        None
    }

    /// The MAC of next hop `ip` when it is resolved; unlike
    /// [`lookup`](Self::lookup) it never claims a slot (any thread).
    pub fn peek(&self, ip: IpAddr) -> Option<[u8; 6]> {
        let w = words(ip);
        let base = set(w);
        for slot in base..base + WAYS {
            let s = &self.slots[slot];
            let state = s.state.load(Ordering::Acquire);
            if state & VALID != 0
                && s.addr[0].load(Ordering::Relaxed) == w[0]
                && s.addr[1].load(Ordering::Relaxed) == w[1]
                && s.state.load(Ordering::Acquire) == state
            {
                let b = (state & MAC_MASK).to_be_bytes();
                return Some([b[2], b[3], b[4], b[5], b[6], b[7]]);
            }
        }
        None
    }

    /// Slots asked for and not resolved yet (host thread).
    pub fn wanted(&self) -> impl Iterator<Item = Pending> + '_ {
        self.pending(WANTED)
    }

    /// Slots holding a MAC, to refresh (host thread).
    pub fn resolved(&self) -> impl Iterator<Item = Pending> + '_ {
        self.pending(VALID)
    }

    fn pending(&self, bit: u64) -> impl Iterator<Item = Pending> + '_ {
        self.slots.iter().enumerate().filter_map(move |(slot, s)| {
            let state = s.state.load(Ordering::Acquire);
            (state & bit != 0).then(|| Pending {
                slot,
                addr: from_words([
                    s.addr[0].load(Ordering::Relaxed),
                    s.addr[1].load(Ordering::Relaxed),
                ]),
                state,
            })
        })
    }

    /// Store what the host found for `pending`: a MAC, or `None` to ask
    /// again later (host thread). Returns whether it was stored: not when
    /// the slot moved on to another address meanwhile.
    pub fn resolve(&self, pending: Pending, mac: Option<[u8; 6]>) -> bool {
        let generation = pending.state & !(MAC_MASK | VALID | WANTED);
        let new = match mac {
            Some(m) => {
                generation | VALID | u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]])
            }
            None => generation | WANTED,
        };
        let stored = self.slots[pending.slot]
            .state
            .compare_exchange(pending.state, new, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
        if stored && pending.state & VALID != 0 && new != pending.state {
            self.changes.fetch_add(1, Ordering::Release);
        }
        stored
    }

    /// How many resolved MACs changed or were forgotten so far.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// How many next hops have a MAC.
    pub fn resolved_count(&self) -> usize {
        self.resolved().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// `peek` never claims a slot; `changes` counts resolved MACs that
    /// moved or went, not first resolutions nor refreshes with the same
    /// MAC.
    #[test]
    fn peek_claims_nothing_and_changes_count_moved_macs() {
        let cache = NeighbourCache::default();
        let router = ip("192.168.100.254");
        assert_eq!(cache.peek(router), None);
        assert_eq!(cache.wanted().count(), 0, "peek asks for nothing");
        assert_eq!(cache.lookup(router), None);
        let wanted = cache.wanted().next().unwrap();
        assert!(cache.resolve(wanted, Some([2, 0, 0, 0, 0, 1])));
        assert_eq!(cache.peek(router), Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(cache.changes(), 0, "a first resolution");
        let held = cache.resolved().next().unwrap();
        assert!(cache.resolve(held, Some([2, 0, 0, 0, 0, 1])));
        assert_eq!(cache.changes(), 0, "a refresh with the same MAC");
        let held = cache.resolved().next().unwrap();
        assert!(cache.resolve(held, Some([2, 0, 0, 0, 0, 2])));
        assert_eq!(cache.changes(), 1, "a moved MAC");
        assert_eq!(cache.peek(router), Some([2, 0, 0, 0, 0, 2]));
        let held = cache.resolved().next().unwrap();
        assert!(cache.resolve(held, None));
        assert_eq!(cache.changes(), 2, "a forgotten MAC");
        assert_eq!(cache.peek(router), None);
    }

    #[test]
    fn a_miss_asks_and_an_answer_is_found() {
        let cache = NeighbourCache::default();
        assert_eq!(cache.lookup(ip("10.0.0.254")), None);
        assert_eq!(cache.lookup(ip("10.0.0.254")), None, "asked once");
        let wanted: Vec<_> = cache.wanted().collect();
        assert_eq!(wanted.len(), 1);
        assert_eq!(wanted[0].addr, ip("10.0.0.254"));
        assert!(cache.resolve(wanted[0], Some([2, 0, 0, 0, 0, 1])));
        assert_eq!(cache.lookup(ip("10.0.0.254")), Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(cache.wanted().count(), 0);
        assert_eq!(cache.resolved_count(), 1);
        // A refresh that finds nothing asks again.
        let held = cache.resolved().next().unwrap();
        assert!(cache.resolve(held, None));
        assert_eq!(cache.lookup(ip("10.0.0.254")), None);
        assert_eq!(cache.wanted().count(), 1);
    }

    #[test]
    fn an_answer_for_an_evicted_address_is_not_stored() {
        let cache = NeighbourCache::default();
        let a = ip("fd00:f::1");
        cache.lookup(a);
        let pending = cache.wanted().next().unwrap();
        assert_eq!(pending.addr, a);
        // Fill the set until a's slot is taken by another address.
        let mut n = 0u32;
        while cache
            .wanted()
            .all(|p| p.slot != pending.slot || p.addr == a)
        {
            let other = IpAddr::from(core::net::Ipv6Addr::from(
                0xfd00_u128 << 112 | u128::from(n),
            ));
            if set(words(other)) == set(words(a)) {
                cache.lookup(other);
            }
            n += 1;
        }
        assert!(!cache.resolve(pending, Some([2, 0, 0, 0, 0, 9])));
        assert_eq!(cache.resolved_count(), 0);
    }

    #[test]
    fn families_do_not_mix() {
        assert_eq!(from_words(words(ip("192.0.2.1"))), ip("192.0.2.1"));
        assert_eq!(from_words(words(ip("fd00::1"))), ip("fd00::1"));
        assert_ne!(words(ip("192.0.2.1")), words(ip("::c000:201")));
    }
}
