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
//! ```

use std::sync::Arc;

use trunkline_model::{Snapshot, VirtualNetworkPolicy};
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

/// The node's desired state from `snapshot`; `last_accepted` remembers
/// each object's last accepted version across builds.
pub fn build(
    snapshot: Snapshot,
    inputs: &BuildInputs<'_>,
    last_accepted: &mut LastAccepted,
) -> Desired {
    let (snapshot, substituted) = last_accepted.apply(snapshot);
    let mut desired = desired::desired(inputs.node, &snapshot, inputs.facts);
    last_accepted::report(&substituted, &mut desired);
    desired.config.punt_limit = inputs.punt_limit;
    desired.config.network_links =
        network_policies::links_of(&desired.config, &snapshot.virtual_networks, inputs.policies);
    desired::linked_vmis(inputs.node, &snapshot, &mut desired);
    desired
}
