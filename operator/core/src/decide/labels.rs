//! Allocation pools: VNIs (networks) and MPLS labels (one cluster-wide
//! space shared by every accepted network's bridged label and every
//! accepted VMI's routed label).
//!
//! ```text
//!  claims: every object whose status (or spec, for VNIs) holds a value
//!          (the oldest claimant of a value holds it)
//!  keep:   an object keeps the value it holds
//!  asks:   the others, in a fixed order (labels: accepted networks, then
//!          accepted VMIs, oldest first): each gets the lowest value nobody
//!          claims and nobody before it got
//! ```
//!
//! Values are stable across operator restarts: the status value is read
//! back and kept while its object still holds it, and a value goes back to
//! the pool when its object is deleted or no longer accepted (its status
//! then drops it).
//!
//! Only the asks are ordered, so after a change the pool hands out its
//! values again by walking the asks alone (usually none: every running
//! object keeps its value), never every object.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;

use trunkline_model::{Age, FIRST_MPLS_LABEL, MAX_MPLS_LABEL, Meta, ObjectKey};

use crate::claims::Claims;

/// The order labels are handed out in: networks first.
pub(super) const NETWORKS_FIRST: u8 = 0;
/// Then VMIs.
pub(super) const THEN_VMIS: u8 = 1;

/// One space of values (VNIs, labels) and who holds or asks for which.
#[derive(Debug)]
pub(super) struct Pool {
    range: RangeInclusive<u32>,
    /// Who holds which value (read from status, or asked for in spec).
    pub(super) claims: Claims<u32>,
    asks: BTreeSet<(u8, Age, ObjectKey)>,
    ask_of: BTreeMap<ObjectKey, (u8, Age)>,
    given: BTreeMap<ObjectKey, Option<u32>>,
    stale: bool,
}

impl Pool {
    /// A pool handing out values of `range`.
    pub(super) fn new(range: RangeInclusive<u32>) -> Self {
        Self {
            range,
            claims: Claims::default(),
            asks: BTreeSet::new(),
            ask_of: BTreeMap::new(),
            given: BTreeMap::new(),
            stale: false,
        }
    }

    /// The label pool: 16 up to 2^20 - 1.
    pub(super) fn labels() -> Self {
        Self::new(FIRST_MPLS_LABEL..=MAX_MPLS_LABEL)
    }

    /// Whether `value` is one the pool may hand out.
    pub(super) fn allocatable(&self, value: &u32) -> bool {
        self.range.contains(value)
    }

    /// The value `meta`'s object keeps: `in_use`, while it may be handed
    /// out and no older object claims it.
    pub(super) fn kept(&self, meta: &Meta, in_use: Option<u32>) -> Option<u32> {
        in_use
            .filter(|v| self.allocatable(v))
            .filter(|v| self.claims.held_by_other(v, meta).is_none())
    }

    /// Whether `meta`'s object asks for a value, in order `phase` then age.
    pub(super) fn ask(&mut self, phase: u8, meta: &Meta, asks: bool) {
        let wanted = asks.then(|| (phase, meta.age()));
        if self.ask_of.get(&meta.key) == wanted.as_ref() {
            return;
        }
        if let Some((p, age)) = self.ask_of.remove(&meta.key) {
            self.asks.remove(&(p, age, meta.key.clone()));
        }
        if let Some((p, age)) = wanted {
            self.asks.insert((p, age.clone(), meta.key.clone()));
            self.ask_of.insert(meta.key.clone(), (p, age));
        }
        self.stale = true;
    }

    /// `key`'s object is gone: it asks for nothing.
    pub(super) fn forget(&mut self, key: &ObjectKey) {
        if let Some((p, age)) = self.ask_of.remove(key) {
            self.asks.remove(&(p, age, key.clone()));
            self.stale = true;
        }
    }

    /// Claims changed hands: the values handed out may change.
    pub(super) fn claims_changed(&mut self) {
        self.stale = true;
    }

    /// Hands the values out again if anything changed; returns the objects
    /// whose value changed.
    pub(super) fn run(&mut self) -> BTreeSet<ObjectKey> {
        if !self.stale {
            return BTreeSet::new();
        }
        self.stale = false;
        let mut given = BTreeMap::new();
        let mut next = *self.range.start();
        for (_, _, key) in &self.asks {
            while next <= *self.range.end() && self.claims.is_held(&next) {
                next += 1;
            }
            if next > *self.range.end() {
                given.insert(key.clone(), None);
            } else {
                given.insert(key.clone(), Some(next));
                next += 1;
            }
        }
        let mut changed: BTreeSet<ObjectKey> = BTreeSet::new();
        for (key, value) in &given {
            if self.given.get(key) != Some(value) {
                changed.insert(key.clone());
            }
        }
        for key in self.given.keys() {
            if !given.contains_key(key) {
                changed.insert(key.clone());
            }
        }
        self.given = given;
        changed
    }

    /// The value of an object that asks: `Some(None)` when none is left.
    pub(super) fn given(&self, key: &ObjectKey) -> Option<Option<u32>> {
        self.given.get(key).copied()
    }

    /// The value of `meta`'s object, which holds `in_use`: `None` unless
    /// `accepted`; kept, or handed out (`None` when none is left).
    pub(super) fn value(&self, meta: &Meta, in_use: Option<u32>, accepted: bool) -> Option<u32> {
        if !accepted {
            return None;
        }
        self.kept(meta, in_use)
            .or_else(|| self.given(&meta.key).flatten())
    }
}

/// The message of an object that got no label.
pub(super) fn exhausted() -> String {
    format!(
        "no free MPLS label left between {FIRST_MPLS_LABEL} and {MAX_MPLS_LABEL} (networks and VMIs share them): delete unused networks or VMIs"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use trunkline_model::Kind;

    fn meta(name: &str, created: i64) -> Meta {
        Meta::cluster(Kind::LogicalInterface, name, Some(created), 1)
    }

    #[test]
    fn asks_get_the_lowest_values_nobody_holds_in_their_order() {
        let mut pool = Pool::new(10..=13);
        let (a, b, c, d) = (meta("a", 1), meta("b", 2), meta("c", 3), meta("d", 4));
        pool.claims.claim(11, &a);
        pool.ask(0, &c, true);
        pool.ask(0, &b, true);
        pool.ask(1, &d, true);
        let changed = pool.run();
        assert_eq!(changed.len(), 3);
        assert_eq!(pool.given(&b.key), Some(Some(10)));
        assert_eq!(pool.given(&c.key), Some(Some(12)));
        assert_eq!(pool.given(&d.key), Some(Some(13)));
        assert_eq!(pool.kept(&a, Some(11)), Some(11));
        assert_eq!(pool.kept(&b, Some(11)), None, "held by an older object");
        assert_eq!(pool.kept(&b, Some(99)), None, "out of range");
        // Nothing changed: nothing handed out again.
        assert!(pool.run().is_empty());
        // b leaves: c and d move down; an exhausted pool gives None.
        pool.forget(&b.key);
        pool.ask(1, &meta("e", 5), true);
        pool.ask(1, &meta("f", 6), true);
        let changed: Vec<String> = pool.run().into_iter().map(|k| k.name).collect();
        assert_eq!(changed, ["b", "c", "d", "e", "f"]);
        assert_eq!(pool.given(&c.key), Some(Some(10)));
        assert_eq!(pool.given(&meta("e", 5).key), Some(Some(13)));
        assert_eq!(pool.given(&meta("f", 6).key), Some(None));
        assert_eq!(pool.value(&meta("f", 6), None, true), None);
        assert_eq!(pool.value(&c, None, false), None);
        assert_eq!(pool.value(&c, None, true), Some(10));
    }
}
