//! Longest-prefix match: one hash map per distinct prefix length, probed
//! from the longest length to the shortest.
//!
//! ```text
//!  lookup(10.0.1.7):  /32 {10.0.1.7 -> vmi 3, ...}   hit -> vmi 3
//!                     /24 {10.0.1.0 -> ...}          (not probed)
//!                     /0  {0.0.0.0  -> port 9}       (not probed)
//! ```
//!
//! A VRF holds few distinct lengths (host routes, a subnet or two, a
//! default), so a lookup is a handful of O(1) probes, with no allocation and
//! no pointer chasing through a trie.

use core::hash::Hash;
use core::ops::BitAnd;

use trunkline_wire::prefix::{ipv4_mask, ipv6_mask};

use crate::hash::FxHashMap;

/// An address as an integer key.
pub(crate) trait LpmKey: Copy + Eq + Hash + Ord + BitAnd<Output = Self> {
    /// The mask of a prefix length.
    fn mask(len: u8) -> Self;
}

impl LpmKey for u32 {
    #[inline]
    fn mask(len: u8) -> u32 {
        ipv4_mask(len)
    }
}

impl LpmKey for u128 {
    #[inline]
    fn mask(len: u8) -> u128 {
        ipv6_mask(len)
    }
}

/// One prefix length's routes.
#[derive(Debug, Clone)]
struct Level<K, V> {
    len: u8,
    mask: K,
    routes: FxHashMap<K, V>,
}

/// A longest-prefix-match table.
#[derive(Debug, Clone)]
pub(crate) struct Lpm<K, V> {
    /// Sorted by length, longest first.
    levels: Vec<Level<K, V>>,
}

impl<K, V> Default for Lpm<K, V> {
    fn default() -> Self {
        Lpm { levels: Vec::new() }
    }
}

impl<K: LpmKey, V: Copy> Lpm<K, V> {
    /// Insert a route unless the same prefix is already present, in which
    /// case the value already there is returned and nothing changes.
    pub(crate) fn insert(&mut self, key: K, len: u8, value: V) -> Result<(), V> {
        let mask = K::mask(len);
        let at = match self.levels.binary_search_by(|l| len.cmp(&l.len)) {
            Ok(at) => at,
            Err(at) => {
                self.levels.insert(
                    at,
                    Level {
                        len,
                        mask,
                        routes: FxHashMap::default(),
                    },
                );
                at
            }
        };
        let routes = &mut self.levels[at].routes;
        match routes.get(&(key & mask)) {
            Some(existing) => Err(*existing),
            None => {
                routes.insert(key & mask, value);
                Ok(())
            }
        }
    }

    /// Remove exactly this prefix, returning its value; a length left
    /// without routes is dropped, so that the table is as if the route had
    /// never been inserted.
    pub(crate) fn remove(&mut self, key: K, len: u8) -> Option<V> {
        let at = self.levels.iter().position(|l| l.len == len)?;
        let level = &mut self.levels[at];
        let value = level.routes.remove(&(key & level.mask))?;
        if level.routes.is_empty() {
            self.levels.remove(at);
        }
        Some(value)
    }

    /// The value of the longest prefix containing `key`.
    #[inline]
    pub(crate) fn lookup(&self, key: K) -> Option<V> {
        self.levels
            .iter()
            .find_map(|level| level.routes.get(&(key & level.mask)).copied())
    }

    /// The value of exactly this prefix.
    pub(crate) fn get(&self, key: K, len: u8) -> Option<V> {
        let level = self.levels.iter().find(|l| l.len == len)?;
        level.routes.get(&(key & level.mask)).copied()
    }

    /// Every route as (key, length, value), sorted by key then length.
    pub(crate) fn entries(&self) -> Vec<(K, u8, V)> {
        let mut all: Vec<(K, u8, V)> = self
            .levels
            .iter()
            .flat_map(|level| level.routes.iter().map(|(k, v)| (*k, level.len, *v)))
            .collect();
        all.sort_by_key(|a| (a.0, a.1));
        all
    }

    /// How many routes.
    pub(crate) fn len(&self) -> usize {
        self.levels.iter().map(|l| l.routes.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> u32 {
        u32::from(s.parse::<core::net::Ipv4Addr>().unwrap())
    }

    #[test]
    fn longest_prefix_wins() {
        let mut lpm: Lpm<u32, u8> = Lpm::default();
        lpm.insert(0, 0, 0).unwrap();
        lpm.insert(v4("10.0.0.0"), 8, 8).unwrap();
        lpm.insert(v4("10.1.0.0"), 16, 16).unwrap();
        lpm.insert(v4("10.1.2.3"), 32, 32).unwrap();
        assert_eq!(lpm.lookup(v4("10.1.2.3")), Some(32));
        assert_eq!(lpm.lookup(v4("10.1.2.4")), Some(16));
        assert_eq!(lpm.lookup(v4("10.2.0.1")), Some(8));
        assert_eq!(lpm.lookup(v4("192.168.0.1")), Some(0));
        assert_eq!(lpm.len(), 4);
        // Host bits of the inserted key are ignored; duplicates refused.
        assert_eq!(lpm.insert(v4("10.1.9.9"), 16, 99), Err(16));
    }

    #[test]
    fn removing_a_route_uncovers_the_shorter_one() {
        let mut lpm: Lpm<u32, u8> = Lpm::default();
        lpm.insert(v4("10.0.0.0"), 8, 8).unwrap();
        lpm.insert(v4("10.1.2.3"), 32, 32).unwrap();
        assert_eq!(lpm.remove(v4("10.1.2.3"), 24), None);
        assert_eq!(lpm.remove(v4("10.1.2.3"), 32), Some(32));
        assert_eq!(lpm.remove(v4("10.1.2.3"), 32), None);
        assert_eq!(lpm.lookup(v4("10.1.2.3")), Some(8));
        // The emptied length is gone: one level left.
        assert_eq!(lpm.levels.len(), 1);
        assert_eq!(lpm.entries(), vec![(v4("10.0.0.0"), 8, 8)]);
    }

    #[test]
    fn empty_and_v6() {
        let mut lpm: Lpm<u128, u8> = Lpm::default();
        assert_eq!(lpm.lookup(1), None);
        let net = u128::from("fd00::".parse::<core::net::Ipv6Addr>().unwrap());
        lpm.insert(net, 64, 1).unwrap();
        assert_eq!(lpm.lookup(net | 5), Some(1));
        assert_eq!(lpm.lookup(5), None);
        assert_eq!(lpm.entries(), vec![(net, 64, 1)]);
    }
}
