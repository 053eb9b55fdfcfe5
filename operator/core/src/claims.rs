//! "The older keeps it": who holds a contended resource (a VLAN, an
//! address, a VNI) is the oldest object asking for it, whatever order the
//! requests come in.
//!
//! Every object asking for a resource is a claimant, valid or not: the
//! owner of a VLAN keeps it while its VMI is briefly missing, so a newer
//! logical interface cannot take over the remote instance's traffic. When
//! the holder goes away, the next oldest claimant holds it.
//!
//! Every claimant is remembered (not only the holder), so claims can be
//! withdrawn as objects change or go, and each change says which resources
//! changed hands: only their claimants need deciding again.
//!
//! A resource's claimants are a sorted vector, not a set: almost every
//! resource has one claimant, and a one-element `BTreeSet` takes a whole
//! node (eleven entries, about 1.2 KiB here) where the vector takes one
//! entry. Tens of thousands of claims made that most of the operator's
//! memory at 16K objects.

use std::collections::{BTreeMap, BTreeSet};

use trunkline_model::{Age, Meta, ObjectKey};

/// Claimants of resources of type `R`.
#[derive(Debug)]
pub(crate) struct Claims<R: Ord> {
    /// Each resource's claimants, oldest first, without duplicates;
    /// never empty.
    claimants: BTreeMap<R, Vec<(Age, ObjectKey)>>,
}

impl<R: Ord> Default for Claims<R> {
    fn default() -> Self {
        Self {
            claimants: BTreeMap::new(),
        }
    }
}

impl<R: Ord + Clone> Claims<R> {
    /// `meta`'s object asks for `resource`; returns whether the holder
    /// changed (the oldest asker holds it).
    pub(crate) fn claim(&mut self, resource: R, meta: &Meta) -> bool {
        let entry = (meta.age(), meta.key.clone());
        let set = self.claimants.entry(resource).or_default();
        let before = set.first().map(|(_, k)| k.clone());
        if let Err(at) = set.binary_search(&entry) {
            // Grown by one: most resources keep a single claimant.
            set.reserve_exact(1);
            set.insert(at, entry);
        }
        set.first().map(|(_, k)| k) != before.as_ref()
    }

    /// `meta`'s object no longer asks for `resource`; returns whether the
    /// holder changed.
    pub(crate) fn release(&mut self, resource: &R, meta: &Meta) -> bool {
        let Some(set) = self.claimants.get_mut(resource) else {
            return false;
        };
        let entry = (meta.age(), meta.key.clone());
        let was_holder = set.first() == Some(&entry);
        if let Ok(at) = set.binary_search(&entry) {
            set.remove(at);
        }
        if set.is_empty() {
            self.claimants.remove(resource);
        }
        was_holder
    }

    /// Replaces the claims of one object: `old` (made as `old_meta`) by
    /// `new` (as `new_meta`). Returns the resources whose holder changed.
    pub(crate) fn replace(
        &mut self,
        old_meta: Option<&Meta>,
        old: &BTreeSet<R>,
        new_meta: Option<&Meta>,
        new: &BTreeSet<R>,
    ) -> Vec<R> {
        let same_age = match (old_meta, new_meta) {
            (Some(a), Some(b)) => a.age() == b.age(),
            _ => false,
        };
        let mut changed = Vec::new();
        if let Some(meta) = old_meta {
            for r in old {
                if (!same_age || !new.contains(r)) && self.release(r, meta) {
                    changed.push(r.clone());
                }
            }
        }
        if let Some(meta) = new_meta {
            for r in new {
                if (!same_age || !old.contains(r)) && self.claim(r.clone(), meta) {
                    changed.push(r.clone());
                }
            }
        }
        changed
    }

    /// The holder of `resource` when it is another object than `meta`'s.
    pub(crate) fn held_by_other(&self, resource: &R, meta: &Meta) -> Option<&ObjectKey> {
        self.holder(resource).filter(|key| **key != meta.key)
    }

    /// The holder of `resource`, if anyone asks for it.
    pub(crate) fn holder(&self, resource: &R) -> Option<&ObjectKey> {
        self.claimants
            .get(resource)
            .and_then(|set| set.first())
            .map(|(_, key)| key)
    }

    /// Whether anyone holds `resource`.
    pub(crate) fn is_held(&self, resource: &R) -> bool {
        self.claimants.contains_key(resource)
    }

    /// Everyone asking for `resource`, oldest first.
    pub(crate) fn claimants(&self, resource: &R) -> impl Iterator<Item = &ObjectKey> {
        self.claimants
            .get(resource)
            .into_iter()
            .flatten()
            .map(|(_, key)| key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trunkline_model::Kind;

    #[test]
    fn the_oldest_claimant_holds_whatever_the_order() {
        let old = Meta::cluster(Kind::LogicalInterface, "b", Some(10), 1);
        let same_second = Meta::cluster(Kind::LogicalInterface, "c", Some(10), 1);
        let new = Meta::cluster(Kind::LogicalInterface, "a", Some(20), 1);
        for order in [[&old, &same_second, &new], [&new, &same_second, &old]] {
            let mut claims = Claims::default();
            for m in order {
                claims.claim(7u16, m);
            }
            assert_eq!(claims.held_by_other(&7, &new), Some(&old.key));
            assert_eq!(claims.held_by_other(&7, &same_second), Some(&old.key));
            assert_eq!(claims.held_by_other(&7, &old), None);
        }
    }

    #[test]
    fn claimants_are_listed_oldest_first_once_each() {
        let metas: Vec<Meta> = [("e", 50), ("a", 10), ("d", 40), ("b", 10), ("c", 30)]
            .into_iter()
            .map(|(name, created)| Meta::cluster(Kind::LogicalInterface, name, Some(created), 1))
            .collect();
        let mut claims = Claims::default();
        for m in metas.iter().chain(&metas) {
            claims.claim(7u16, m);
        }
        let names: Vec<&str> = claims.claimants(&7).map(|k| k.name.as_str()).collect();
        assert_eq!(
            names,
            ["a", "b", "c", "d", "e"],
            "by age, then name; no repeats"
        );
        assert!(!claims.release(&7, &metas[2]), "d was not the holder");
        assert!(
            !claims.release(&7, &metas[2]),
            "released twice: nothing left to release"
        );
        assert!(claims.release(&7, &metas[1]), "a was");
        assert_eq!(claims.holder(&7).map(|k| k.name.as_str()), Some("b"));
        for m in &metas {
            claims.release(&7, m);
        }
        assert!(!claims.is_held(&7), "no claimant left, no entry");
    }

    #[test]
    fn releasing_the_holder_hands_the_resource_to_the_next_oldest() {
        let old = Meta::cluster(Kind::LogicalInterface, "b", Some(10), 1);
        let new = Meta::cluster(Kind::LogicalInterface, "a", Some(20), 1);
        let mut claims = Claims::default();
        assert!(claims.claim(7u16, &new), "the first claimant holds");
        assert!(claims.claim(7u16, &old), "an older one takes over");
        assert!(
            !claims.release(&7, &new),
            "a newer one leaving changes nothing"
        );
        assert!(!claims.claim(7u16, &new), "already a claimant");
        assert!(claims.release(&7, &old));
        assert_eq!(claims.holder(&7), Some(&new.key));
        assert!(claims.release(&7, &new));
        assert!(!claims.is_held(&7));
        // Replacing claims reports the resources that changed hands.
        let mut claims = Claims::default();
        claims.claim(1u16, &old);
        let changed = claims.replace(
            Some(&new),
            &BTreeSet::new(),
            Some(&new),
            &BTreeSet::from([1u16, 2]),
        );
        assert_eq!(changed, [2], "1 stays with the older");
        let changed = claims.replace(Some(&old), &BTreeSet::from([1u16]), None, &BTreeSet::new());
        assert_eq!(changed, [1]);
        assert_eq!(claims.holder(&1), Some(&new.key));
        assert_eq!(claims.claimants(&2).count(), 1);
    }
}
