//! One build of the node's desired state from the watch stores' objects:
//! the pure part of the compile loop, apart so that it can be measured
//! (`make bench-agent-build`) and tested without a cluster.
//!
//! ```text
//!  Snapshot (pointers to the stores' domain objects, converted as their events arrived)
//!    --last_accepted--> Snapshot (edits waiting for the operator replaced by their last
//!      accepted version)
//!    --desired()--> Desired --+ network policies' links (links_of)
//!                             + VMIs of linked networks (linked_vmis)
//!  (the placement both read is kept from the last build while its
//!   fingerprint holds: `Kept`)
//! ```

use std::sync::Arc;

use trunkline_model::{Placement, Snapshot, VirtualNetworkPolicy};
use trunkline_pipeline::PuntLimit;

use crate::desired::{self, Desired, HostFacts};
use crate::last_accepted::{self, LastAccepted};
use crate::network_policies;

/// What a build reads besides the objects of the watch stores.
pub struct BuildInputs<'a> {
    /// This node's name.
    pub node: &'a str,
    /// What the host thread read (fabric facts and routes) and the flags.
    pub facts: &'a HostFacts,
    /// Every network policy, namespaced and cluster-wide, converted.
    pub policies: &'a [Arc<VirtualNetworkPolicy>],
    /// `--punt-limit`.
    pub punt_limit: PuntLimit,
}

/// What a build keeps for the next one.
#[derive(Debug, Default)]
pub struct Kept {
    /// Each object's last accepted version.
    pub last_accepted: LastAccepted,
    /// The last build's placement, with its
    /// `Placement::status_fingerprint`: most changes (an address, a MAC,
    /// a security group) move nothing, and placing every object again was
    /// about a fifth of a build at 16K pairs.
    placement: Option<(u64, Arc<Placement>)>,
}

impl Kept {
    /// `Placement::from_status(snapshot)`, kept from the last call while
    /// the fingerprint holds.
    fn placement(&mut self, snapshot: &Snapshot) -> Arc<Placement> {
        let fingerprint = Placement::status_fingerprint(snapshot);
        match &self.placement {
            Some((kept, placement)) if *kept == fingerprint => placement.clone(),
            _ => {
                let placement = Arc::new(Placement::from_status(snapshot));
                self.placement = Some((fingerprint, placement.clone()));
                placement
            }
        }
    }
}

/// The node's desired state from `snapshot`; `kept` carries what one
/// build keeps for the next (each object's last accepted version, the
/// placement).
pub fn build(snapshot: Snapshot, inputs: &BuildInputs<'_>, kept: &mut Kept) -> Desired {
    let (snapshot, substituted) = kept.last_accepted.apply(snapshot);
    let placement = kept.placement(&snapshot);
    let mut desired = desired::desired_placed(inputs.node, &snapshot, inputs.facts, &placement);
    last_accepted::report(&substituted, &mut desired);
    desired.config.punt_limit = inputs.punt_limit;
    desired.config.network_links =
        network_policies::links_of(&desired.config, &snapshot.virtual_networks, inputs.policies);
    desired::linked_vmis(inputs.node, &snapshot, &placement, &mut desired);
    desired
}
