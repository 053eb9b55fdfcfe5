//! "The older keeps it": who holds a contended resource (a VLAN, an
//! address, a VNI) is the oldest object asking for it, whatever order the
//! requests come in.
//!
//! Every object asking for a resource is a claimant, valid or not: the
//! owner of a VLAN keeps it while its VMI is briefly missing, so a newer
//! logical interface cannot take over the remote instance's traffic. When
//! the holder goes away, the next oldest claimant holds it.

use std::collections::BTreeMap;

use trunkline_model::{Age, Meta, ObjectKey};

/// Holders of resources of type `R`.
#[derive(Debug)]
pub(crate) struct Claims<R: Ord> {
    holders: BTreeMap<R, (Age, ObjectKey)>,
}

impl<R: Ord> Default for Claims<R> {
    fn default() -> Self {
        Self {
            holders: BTreeMap::new(),
        }
    }
}

impl<R: Ord> Claims<R> {
    /// `meta`'s object asks for `resource`; the oldest asker holds it.
    pub(crate) fn claim(&mut self, resource: R, meta: &Meta) {
        let age = meta.age();
        match self.holders.get(&resource) {
            Some((held, _)) if *held <= age => {}
            _ => {
                self.holders.insert(resource, (age, meta.key.clone()));
            }
        }
    }

    /// The holder of `resource` when it is another object than `meta`'s.
    pub(crate) fn held_by_other(&self, resource: &R, meta: &Meta) -> Option<&ObjectKey> {
        self.holders
            .get(resource)
            .map(|(_, key)| key)
            .filter(|key| **key != meta.key)
    }

    /// Whether anyone holds `resource`.
    pub(crate) fn is_held(&self, resource: &R) -> bool {
        self.holders.contains_key(resource)
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
}
