//! The last version of each object the operator accepted, enforced while
//! the operator has not decided on a newer spec yet: a spec edit changes
//! what the node enforces when the operator accepts it, and never takes the
//! object out of the tables in between.
//!
//! The agent programs only objects the operator accepted at their current
//! generation (an `Accepted` condition for it, or node labels whose value
//! names it). Between a spec edit and the operator's verdict both still
//! describe the older generation; without this cache the
//! object would leave the node's tables for that moment (tens to hundreds
//! of milliseconds of lost traffic per edit). Instead the node goes on
//! enforcing the version the operator last accepted, and reports the object
//! as an exception (its current generation is not programmed), so its
//! `Programmed` condition stays exact.
//!
//! Not substituted: a generation the operator refused (`Accepted=False` for
//! it: the object leaves the tables, as an invalid object must), an object
//! re-created under the same name (another creation time), anything after
//! an agent restart (the cache is memory only: a pending object waits for
//! its acceptance, as before). Objects that left the snapshot are forgotten.
//! PhysicalRouters have no `Accepted` condition and pass through.
//!
//! The cache holds pointers to the watch stores' objects ([`crate::store`]):
//! an object it remembers costs a map entry, not a copy.

use std::collections::HashMap;
use std::sync::Arc;

use trunkline_model::{HasMeta, ObjectKey, Snapshot};

use crate::desired::Desired;

/// The last accepted version of each object seen.
#[derive(Debug, Default)]
pub struct LastAccepted {
    logical_interfaces: Cache<trunkline_model::LogicalInterface>,
    virtual_machine_interfaces: Cache<trunkline_model::VirtualMachineInterface>,
    virtual_networks: Cache<trunkline_model::VirtualNetwork>,
    gateway_ha_groups: Cache<trunkline_model::GatewayHaGroup>,
    virtual_gateways: Cache<trunkline_model::VirtualGateway>,
    external_vteps: Cache<trunkline_model::ExternalVtep>,
    dc_gateways: Cache<trunkline_model::DcGateway>,
    security_groups: Cache<trunkline_model::SecurityGroup>,
    virtual_network_policies: Cache<trunkline_model::VirtualNetworkPolicy>,
    /// Calls of [`LastAccepted::apply`] so far.
    calls: u64,
}

/// One kind's last accepted versions: each a pointer to the object a
/// watch store holds (or held), with the call that last saw the object
/// (what a call did not see is gone: no set of keys is built per call).
#[derive(Debug)]
struct Cache<T> {
    objects: HashMap<ObjectKey, (Arc<T>, u64)>,
}

impl<T> Default for Cache<T> {
    fn default() -> Self {
        Self {
            objects: HashMap::new(),
        }
    }
}

/// An object enforced as an older generation than its current one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Substituted {
    /// The object.
    pub key: ObjectKey,
    /// The generation enforced (the last one accepted).
    pub enforced: i64,
    /// Its current generation, waiting for the operator.
    pub current: i64,
}

impl LastAccepted {
    /// `snapshot` with every object waiting for the operator's verdict on
    /// its current generation replaced by its last accepted version, when
    /// there is one; and which objects were replaced. Remembers the
    /// accepted objects of `snapshot` for the next call.
    pub fn apply(&mut self, mut snapshot: Snapshot) -> (Snapshot, Vec<Substituted>) {
        self.calls += 1;
        let call = self.calls;
        let mut substituted = Vec::new();
        let out = &mut substituted;
        let s = &mut snapshot;
        self.logical_interfaces
            .apply(&mut s.logical_interfaces, call, out);
        self.virtual_machine_interfaces
            .apply(&mut s.virtual_machine_interfaces, call, out);
        self.virtual_networks
            .apply(&mut s.virtual_networks, call, out);
        self.gateway_ha_groups
            .apply(&mut s.gateway_ha_groups, call, out);
        self.virtual_gateways
            .apply(&mut s.virtual_gateways, call, out);
        self.external_vteps.apply(&mut s.external_vteps, call, out);
        self.dc_gateways.apply(&mut s.dc_gateways, call, out);
        self.security_groups
            .apply(&mut s.security_groups, call, out);
        self.virtual_network_policies
            .apply(&mut s.virtual_network_policies, call, out);
        // PhysicalRouters have no `Accepted` condition and pass through.
        (snapshot, substituted)
    }

    /// How many objects are remembered.
    pub fn len(&self) -> usize {
        self.logical_interfaces.objects.len()
            + self.virtual_machine_interfaces.objects.len()
            + self.virtual_networks.objects.len()
            + self.gateway_ha_groups.objects.len()
            + self.virtual_gateways.objects.len()
            + self.external_vteps.objects.len()
            + self.dc_gateways.objects.len()
            + self.security_groups.objects.len()
            + self.virtual_network_policies.objects.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: HasMeta> Cache<T> {
    /// [`LastAccepted::apply`] for one kind's `list`, in place, in call
    /// `call`.
    fn apply(&mut self, list: &mut [Arc<T>], call: u64, substituted: &mut Vec<Substituted>) {
        for object in list.iter_mut() {
            let meta = object.meta();
            if meta.accepted {
                // The resource version changes with every write: an equal
                // one is the very object cached.
                match self.objects.get_mut(&meta.key) {
                    Some((cached, seen))
                        if meta.changed_at.is_some()
                            && cached.meta().changed_at == meta.changed_at =>
                    {
                        *seen = call
                    }
                    _ => {
                        self.objects
                            .insert(meta.key.clone(), (object.clone(), call));
                    }
                }
                continue;
            }
            if meta.refused {
                self.objects.remove(&meta.key);
                continue;
            }
            match self.objects.get_mut(&meta.key) {
                Some((last, seen))
                    if last.meta().created == meta.created
                        && last.meta().generation < meta.generation =>
                {
                    *seen = call;
                    substituted.push(Substituted {
                        key: meta.key.clone(),
                        enforced: last.meta().generation,
                        current: meta.generation,
                    });
                    *object = last.clone();
                }
                Some((_, seen)) => *seen = call,
                None => {}
            }
        }
        self.objects.retain(|_, (_, seen)| *seen == call);
    }
}

/// Marks each substituted object the node holds as an exception of its
/// report: its current generation is not what the tables enforce.
pub fn report(substituted: &[Substituted], desired: &mut Desired) {
    for s in substituted {
        let held = desired.held.contains(&s.key)
            || desired.virtual_gateways.iter().any(|(_, k)| *k == s.key);
        if held {
            desired.exceptions.insert(
                s.key.clone(),
                format!(
                    "enforcing generation {} until the operator accepts generation {}",
                    s.enforced, s.current
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{HostFacts, desired};
    use serde_json::json;
    use trunkline_api::{
        LogicalInterface, PhysicalRouter, VirtualMachineInterface, VirtualNetwork,
    };
    use trunkline_model::Kind;
    use trunkline_model::from_api::OwnedObjects;

    fn accepted(status: &str, generation: i64) -> serde_json::Value {
        json!([{"type": "Accepted", "status": status, "reason": "Ok", "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": generation}])
    }

    fn router() -> PhysicalRouter {
        serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "PhysicalRouter",
            "metadata": {"name": "gw1", "generation": 1},
            "spec": {"physicalInterfaces": [{"name": "eth1"}]}
        }))
        .unwrap()
    }

    fn li() -> LogicalInterface {
        serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "LogicalInterface",
            "metadata": {"name": "a", "generation": 1, "resourceVersion": "10",
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"physicalRouter": "gw1", "physicalInterface": "eth1", "vlan": 100,
                     "virtualMachineInterface": {"namespace": "t", "name": "bms1"}},
            "status": {"conditions": accepted("True", 1)}
        }))
        .unwrap()
    }

    /// VMI `bms1` at `generation` with `mac`, its status saying `verdict`
    /// for generation `decided`.
    fn vmi(
        generation: i64,
        mac: &str,
        verdict: &str,
        decided: i64,
        created: &str,
    ) -> VirtualMachineInterface {
        serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
            "metadata": {"name": "bms1", "namespace": "t", "generation": generation,
                         "resourceVersion": format!("{}", 100 + generation * 10 + decided),
                         "creationTimestamp": created},
            "spec": {"virtualNetwork": "net1", "macAddress": mac,
                     "ips": [{"address": "192.168.1.10"}]},
            "status": {"conditions": accepted(verdict, decided), "mplsLabel": 100}
        }))
        .unwrap()
    }

    fn network() -> VirtualNetwork {
        serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
            "metadata": {"name": "net1", "namespace": "t", "generation": 1, "resourceVersion": "20"},
            "spec": {"subnets": [{"cidr": "192.168.1.0/24"}]},
            "status": {"conditions": accepted("True", 1), "vni": 4096, "mplsLabel": 16}
        }))
        .unwrap()
    }

    const CREATED: &str = "2026-01-01T00:00:00Z";

    /// What node gw1 enforces with `vmis` (zero or one) after `cache`.
    fn build(
        cache: &mut LastAccepted,
        vmis: &[VirtualMachineInterface],
    ) -> (Desired, Vec<Substituted>) {
        let snapshot = OwnedObjects {
            physical_routers: vec![router()],
            logical_interfaces: vec![li()],
            virtual_machine_interfaces: vmis.to_vec(),
            virtual_networks: vec![network()],
            ..OwnedObjects::default()
        }
        .snapshot();
        let (snapshot, substituted) = cache.apply(snapshot);
        let mut out = desired("gw1", &snapshot, &HostFacts::default());
        report(&substituted, &mut out);
        (out, substituted)
    }

    fn vmi_key() -> ObjectKey {
        ObjectKey::namespaced(Kind::VirtualMachineInterface, "t", "bms1")
    }

    fn macs(d: &Desired) -> Vec<String> {
        d.config
            .vmis
            .iter()
            .map(|v| trunkline_wire::EthernetAddress(v.mac).to_string())
            .collect()
    }

    #[test]
    fn an_edit_waiting_for_the_operator_keeps_the_accepted_version_and_says_so() {
        let mut cache = LastAccepted::default();
        let (d, s) = build(
            &mut cache,
            &[vmi(1, "02:00:00:00:01:01", "True", 1, CREATED)],
        );
        assert!(s.is_empty());
        assert_eq!(macs(&d), ["02:00:00:00:01:01"]);
        assert!(d.held.contains(&vmi_key()));
        assert!(!d.exceptions.contains_key(&vmi_key()));

        // Edited: generation 2, the status still about generation 1.
        let (d, s) = build(
            &mut cache,
            &[vmi(2, "02:00:00:00:01:02", "True", 1, CREATED)],
        );
        assert_eq!(
            s,
            [Substituted {
                key: vmi_key(),
                enforced: 1,
                current: 2
            }]
        );
        assert_eq!(macs(&d), ["02:00:00:00:01:01"], "still the accepted spec");
        assert!(d.held.contains(&vmi_key()));
        assert_eq!(
            d.exceptions.get(&vmi_key()).map(String::as_str),
            Some("enforcing generation 1 until the operator accepts generation 2"),
            "its current generation is not reported programmed"
        );

        // Accepted: the new spec, no exception.
        let (d, s) = build(
            &mut cache,
            &[vmi(2, "02:00:00:00:01:02", "True", 2, CREATED)],
        );
        assert!(s.is_empty());
        assert_eq!(macs(&d), ["02:00:00:00:01:02"]);
        assert!(!d.exceptions.contains_key(&vmi_key()));
    }

    #[test]
    fn a_refused_generation_leaves_the_tables_and_is_not_brought_back() {
        let mut cache = LastAccepted::default();
        build(
            &mut cache,
            &[vmi(1, "02:00:00:00:01:01", "True", 1, CREATED)],
        );
        let (d, s) = build(
            &mut cache,
            &[vmi(2, "02:00:00:00:01:02", "False", 2, CREATED)],
        );
        assert!(s.is_empty());
        assert!(macs(&d).is_empty(), "a refused spec is not enforced");
        assert!(!d.held.contains(&vmi_key()));
        // Edited again, not decided yet: nothing accepted is left to keep.
        let (d, s) = build(
            &mut cache,
            &[vmi(3, "02:00:00:00:01:03", "False", 2, CREATED)],
        );
        assert!(s.is_empty());
        assert!(macs(&d).is_empty());
    }

    #[test]
    fn deleted_and_recreated_objects_are_forgotten() {
        let mut cache = LastAccepted::default();
        build(
            &mut cache,
            &[vmi(1, "02:00:00:00:01:01", "True", 1, CREATED)],
        );
        assert_eq!(cache.len(), 3, "the LI, the VMI and the network");
        // Re-created under the same name (another creation time), not
        // decided yet: the old object's spec is not enforced for it.
        let (d, s) = build(
            &mut cache,
            &[vmi(
                2,
                "02:00:00:00:01:02",
                "True",
                1,
                "2026-01-02T00:00:00Z",
            )],
        );
        assert!(s.is_empty());
        assert!(macs(&d).is_empty());
        // Deleted: forgotten.
        build(&mut cache, &[]);
        assert_eq!(cache.len(), 2);
        let (d, s) = build(
            &mut cache,
            &[vmi(2, "02:00:00:00:01:02", "True", 1, CREATED)],
        );
        assert!(s.is_empty());
        assert!(macs(&d).is_empty());
    }
}
