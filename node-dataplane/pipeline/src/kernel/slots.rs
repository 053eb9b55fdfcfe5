//! Stable slots for the XDP tier's arrays: a VMI (or VRF, peer, remote VMI)
//! keeps its slot from one build of the image to the next, so that an
//! unchanged item writes nothing and a VMI's kernel counters (indexed by
//! slot) survive a configuration change, as its userspace counters do.
//!
//! A slot freed by one build is given out again only by a later build: by
//! then the generation that still named its old owner is no longer used by
//! any frame (the mirror flipped and waited for the grace period), so the
//! new owner's counters, zeroed before the next flip, count only its own
//! frames.

use std::collections::{BTreeMap, BTreeSet};

/// Slots of one kind.
#[derive(Debug, Clone)]
pub(crate) struct SlotMap {
    by_key: BTreeMap<String, u32>,
    /// Freed slots and the build that freed them.
    free: Vec<(u32, u64)>,
    next: u32,
    max: u32,
}

impl SlotMap {
    fn new(max: u32) -> Self {
        SlotMap {
            by_key: BTreeMap::new(),
            free: Vec::new(),
            next: 0,
            max,
        }
    }

    /// Gives every key of `keys` a slot (`None` when the kind is full),
    /// frees the slots of keys no longer present, and returns the slots
    /// given out now.
    fn assign<'k>(&mut self, keys: impl Iterator<Item = &'k str>, build: u64) -> Vec<u32> {
        let present: BTreeSet<&str> = keys.collect();
        let gone: Vec<String> = self
            .by_key
            .keys()
            .filter(|k| !present.contains(k.as_str()))
            .cloned()
            .collect();
        for key in gone {
            if let Some(slot) = self.by_key.remove(&key) {
                self.free.push((slot, build));
            }
        }
        let mut fresh = Vec::new();
        for key in present {
            if self.by_key.contains_key(key) {
                continue;
            }
            let reusable = self.free.iter().position(|(_, freed)| *freed < build);
            let slot = match reusable {
                Some(i) => Some(self.free.swap_remove(i).0),
                None if self.next < self.max => {
                    self.next += 1;
                    Some(self.next - 1)
                }
                None => None,
            };
            if let Some(slot) = slot {
                self.by_key.insert(key.to_owned(), slot);
                fresh.push(slot);
            }
        }
        fresh
    }

    /// The slot of `key`, or `u32::MAX` (which the program treats as "hand
    /// off") when the kind was full.
    pub(crate) fn get(&self, key: &str) -> u32 {
        self.by_key.get(key).copied().unwrap_or(u32::MAX)
    }
}

/// The slots of every kind, kept by the caller from one build to the next.
#[derive(Debug, Clone)]
pub struct Slots {
    pub(crate) vmis: SlotMap,
    pub(crate) vrfs: SlotMap,
    pub(crate) peers: SlotMap,
    pub(crate) remotes: SlotMap,
    build: u64,
}

impl Default for Slots {
    fn default() -> Self {
        use super::layout::{MAX_PEERS, MAX_REMOTES, MAX_VMIS, MAX_VRFS};
        Slots {
            vmis: SlotMap::new(MAX_VMIS),
            vrfs: SlotMap::new(MAX_VRFS),
            peers: SlotMap::new(MAX_PEERS),
            remotes: SlotMap::new(MAX_REMOTES),
            build: 0,
        }
    }
}

/// What one build gave out.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Assigned {
    /// VMI slots given out by this build: their counters start at zero.
    pub(crate) vmis: Vec<u32>,
}

impl Slots {
    /// Assigns slots for a build of these keys.
    pub(crate) fn assign<'k>(
        &mut self,
        vmis: impl Iterator<Item = &'k str>,
        vrfs: impl Iterator<Item = &'k str>,
        peers: impl Iterator<Item = &'k str>,
        remotes: impl Iterator<Item = &'k str>,
    ) -> Assigned {
        self.build += 1;
        let build = self.build;
        let assigned = Assigned {
            vmis: self.vmis.assign(vmis, build),
        };
        self.vrfs.assign(vrfs, build);
        self.peers.assign(peers, build);
        self.remotes.assign(remotes, build);
        assigned
    }

    /// The counter slot of the VMI `key`, if it has one.
    pub fn vmi(&self, key: &str) -> Option<u32> {
        self.vmis.by_key.get(key).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_stable_and_reused_only_a_build_later() {
        let mut map = SlotMap::new(3);
        assert_eq!(map.assign(["a", "b"].into_iter(), 1), vec![0, 1]);
        assert_eq!(map.assign(["a", "b"].into_iter(), 2), Vec::<u32>::new());
        // b leaves, c arrives in the same build: c does not get b's slot.
        assert_eq!(map.assign(["a", "c"].into_iter(), 3), vec![2]);
        assert_eq!((map.get("a"), map.get("c")), (0, 2));
        // d arrives a build later: now b's slot is free to take.
        assert_eq!(map.assign(["a", "c", "d"].into_iter(), 4), vec![1]);
        // Full: e gets no slot, and the program hands its frames off.
        assert_eq!(
            map.assign(["a", "c", "d", "e"].into_iter(), 5),
            Vec::<u32>::new()
        );
        assert_eq!(map.get("e"), u32::MAX);
    }
}
