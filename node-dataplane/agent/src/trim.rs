//! What the agent's watch stores keep of an object: only what a build
//! reads. The stores hold every object labelled for the node (at 16K
//! remote instances, 32K objects), so what is dropped here is dropped
//! thousands of times.
//!
//! Dropped on arrival, before the store holds the object:
//! - `metadata.managedFields` and `metadata.annotations` (never read; a
//!   client-side `kubectl apply` copies the whole object into an
//!   annotation);
//! - of the status conditions, all but `Accepted`, and its reason and
//!   message: the agent reads only whether the operator accepted or
//!   refused a generation (`trunkline_model::from_api::accepted`,
//!   `refused`). The other status fields (labels, VNIs, peers' addresses)
//!   stay.
//!
//! PhysicalRouters keep their status whole: a router's status is the node
//! report the agent resumes from.

use trunkline_api::status::{Condition, condition};
use trunkline_api::{
    ClusterVirtualNetworkPolicy, DCGateway, ExternalVTEP, GatewayHAGroup, LogicalInterface,
    PhysicalRouter, SecurityGroup, VirtualGateway, VirtualMachineInterface, VirtualNetwork,
    VirtualNetworkPolicy,
};

/// An object the agent's stores hold.
pub trait Trim: kube::Resource {
    /// Its status conditions, when the agent reads only `Accepted` of them.
    fn conditions_mut(&mut self) -> Option<&mut Vec<Condition>>;

    /// Drops what no build reads.
    fn trim(&mut self) {
        let meta = self.meta_mut();
        meta.managed_fields = None;
        meta.annotations = None;
        if let Some(conditions) = self.conditions_mut() {
            trim_conditions(conditions);
        }
    }
}

/// Keeps only the `Accepted` condition, without its reason and message.
pub fn trim_conditions(conditions: &mut Vec<Condition>) {
    conditions.retain(|c| c.type_ == condition::ACCEPTED);
    for c in conditions.iter_mut() {
        c.reason = String::new();
        c.message = String::new();
    }
    conditions.shrink_to_fit();
}

macro_rules! conditions_in_status {
    ($($kind:ty),* $(,)?) => {$(
        impl Trim for $kind {
            fn conditions_mut(&mut self) -> Option<&mut Vec<Condition>> {
                self.status.as_mut().map(|s| &mut s.conditions)
            }
        }
    )*};
}

conditions_in_status!(
    LogicalInterface,
    VirtualMachineInterface,
    VirtualNetwork,
    VirtualGateway,
    ExternalVTEP,
    GatewayHAGroup,
    DCGateway,
    SecurityGroup,
    VirtualNetworkPolicy,
    ClusterVirtualNetworkPolicy,
);

impl Trim for PhysicalRouter {
    fn conditions_mut(&mut self) -> Option<&mut Vec<Condition>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use trunkline_model::from_api;

    fn vmi(conditions: serde_json::Value) -> VirtualMachineInterface {
        serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
            "metadata": {"name": "a", "namespace": "t", "generation": 2,
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                         "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
                         "labels": {"node.trunkline.io/gw1": "g2"}},
            "spec": {"virtualNetwork": "net1", "macAddress": "02:00:00:00:00:01",
                     "ips": [{"address": "192.168.1.10"}]},
            "status": {"conditions": conditions, "mplsLabel": 100}
        }))
        .unwrap()
    }

    fn condition(type_: &str, status: &str, generation: i64) -> serde_json::Value {
        json!({"type": type_, "status": status, "reason": "SomeReason",
               "message": "a long message for the user", "observedGeneration": generation,
               "lastTransitionTime": "2026-01-01T00:00:00Z"})
    }

    #[test]
    fn the_store_keeps_what_a_build_reads_and_drops_the_rest() {
        for (verdict, generation) in [("True", 2), ("False", 2), ("True", 1), ("False", 1)] {
            let full = vmi(json!([
                condition("Ready", "False", 2),
                condition("Accepted", verdict, generation),
                condition("Programmed", "True", 1),
            ]));
            let mut trimmed = full.clone();
            trimmed.trim();
            assert_eq!(
                from_api::virtual_machine_interface(&trimmed),
                from_api::virtual_machine_interface(&full),
                "the same domain object ({verdict} for generation {generation})"
            );
            assert!(trimmed.metadata.annotations.is_none());
            assert!(trimmed.metadata.managed_fields.is_none());
            assert_eq!(trimmed.metadata.labels, full.metadata.labels);
            let status = trimmed.status.as_ref().unwrap();
            assert_eq!(status.mpls_label, Some(100));
            assert_eq!(status.conditions.len(), 1);
            assert_eq!(status.conditions[0].type_, "Accepted");
            assert_eq!(status.conditions[0].status, verdict);
            assert_eq!(status.conditions[0].observed_generation, Some(generation));
            assert!(status.conditions[0].message.is_empty());
        }
    }

    #[test]
    fn an_object_without_status_or_acceptance_stays_unaccepted() {
        let mut none = vmi(json!([condition("Ready", "False", 2)]));
        none.trim();
        assert!(none.status.as_ref().unwrap().conditions.is_empty());
        assert_eq!(
            from_api::virtual_machine_interface(&none).meta.accepted,
            from_api::virtual_machine_interface(&vmi(json!([])))
                .meta
                .accepted
        );
    }
}
