//! MPLS labels: one cluster-wide space shared by every accepted network's
//! bridged label and every accepted VMI's routed label.
//!
//! ```text
//!  claims: every network and VMI whose status holds a label (the oldest
//!          claimant of a label holds it)
//!  assign: accepted networks (oldest first), then accepted VMIs (oldest
//!          first): the label held is kept, else the lowest free from 16 up
//! ```
//!
//! Like VNIs, labels are stable across operator restarts: the status value
//! is read back and kept while its object still holds it, and a label goes
//! back to the pool when its object is deleted or no longer accepted (its
//! status then drops it).

use std::collections::BTreeSet;

use trunkline_model::{FIRST_MPLS_LABEL, MAX_MPLS_LABEL, Meta, Snapshot};

use crate::claims::Claims;

/// The label space of one decision pass.
pub(super) struct Labels {
    claims: Claims<u32>,
    allocated: BTreeSet<u32>,
    next_free: u32,
}

/// Whether `label` is one the operator may hand out.
fn allocatable(label: &u32) -> bool {
    (FIRST_MPLS_LABEL..=MAX_MPLS_LABEL).contains(label)
}

impl Labels {
    /// The space with every label in the snapshot's status claimed.
    pub(super) fn new(snapshot: &Snapshot) -> Self {
        let mut claims = Claims::default();
        let held = snapshot
            .virtual_networks
            .iter()
            .map(|n| (n.mpls_label, &n.meta))
            .chain(
                snapshot
                    .virtual_machine_interfaces
                    .iter()
                    .map(|v| (v.mpls_label, &v.meta)),
            );
        for (label, meta) in held {
            if let Some(label) = label.filter(allocatable) {
                claims.claim(label, meta);
            }
        }
        Self {
            claims,
            allocated: BTreeSet::new(),
            next_free: FIRST_MPLS_LABEL,
        }
    }

    /// The label of the accepted object `meta`, which ran with `in_use`:
    /// kept while it holds it, else the lowest free one. `None` when none
    /// is left. Callers ask in a fixed order (oldest first).
    pub(super) fn assign(&mut self, meta: &Meta, in_use: Option<u32>) -> Option<u32> {
        if let Some(label) = in_use.filter(allocatable)
            && self.claims.held_by_other(&label, meta).is_none()
        {
            return Some(label);
        }
        while self.next_free <= MAX_MPLS_LABEL
            && (self.claims.is_held(&self.next_free) || self.allocated.contains(&self.next_free))
        {
            self.next_free += 1;
        }
        if self.next_free > MAX_MPLS_LABEL {
            return None;
        }
        self.allocated.insert(self.next_free);
        Some(self.next_free)
    }

    /// The message of an object that got no label.
    pub(super) fn exhausted() -> String {
        format!(
            "no free MPLS label left between {FIRST_MPLS_LABEL} and {MAX_MPLS_LABEL} (networks and VMIs share them): delete unused networks or VMIs"
        )
    }
}
