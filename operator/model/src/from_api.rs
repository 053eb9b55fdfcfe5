//! The boundary: API objects of `trunkline-api` into the domain model, read
//! once, so that neither the operator's rules nor the node dataplane ever
//! read a CRD type.
//!
//! ```text
//!  trunkline-api objects --Objects::snapshot--> Snapshot (domain types)
//!    metadata -> Meta (key, age, generation, accepted)
//!    spec     -> parsed fields (addresses, prefixes, MACs)
//!    status   -> values the operator keeps (VNI in use, node reports)
//! ```
//!
//! Values the schema should have refused (an unparsable address) do not
//! fail the conversion: they become `defects` on the object (the operator
//! reports them as `Accepted=False` with reason `Invalid`), and the rest of
//! the object is still read.
//!
//! Each kind's conversion lives beside its type (`PhysicalRouter::from_api`
//! in `physical_router.rs`, ...); this module holds what they share and
//! re-exports them as plain functions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use trunkline_api::status::{Condition, condition};

use crate::object::{Kind, Meta, ObjectKey};
use crate::resource_version::ResourceVersion;
use crate::{
    DcGateway, ExternalVtep, GatewayHaGroup, LogicalInterface, PhysicalRouter, SecurityGroup,
    Snapshot, VirtualGateway, VirtualMachineInterface, VirtualNetwork,
};

/// Whether the operator accepted generation `generation` of an object:
/// its `Accepted` condition is `True` and describes that generation (or no
/// generation at all, as written by older operators).
pub fn accepted(conditions: &[Condition], generation: Option<i64>) -> bool {
    conditions.iter().any(|c| {
        c.type_ == condition::ACCEPTED
            && c.status == "True"
            && (c.observed_generation.is_none() || c.observed_generation == generation)
    })
}

/// Whether the operator refused generation `generation` of an object: its
/// `Accepted` condition is `False` and describes that generation.
pub fn refused(conditions: &[Condition], generation: Option<i64>) -> bool {
    conditions.iter().any(|c| {
        c.type_ == condition::ACCEPTED
            && c.status == "False"
            && c.observed_generation.is_some()
            && c.observed_generation == generation
    })
}

/// Whether the node labels of an object (`labels`) carry the operator's
/// acceptance of generation `generation`: a node label whose value is
/// `g<generation>` (see [`trunkline_api::node_label::value_of`]). The
/// operator writes such labels only for a generation it accepted, so a
/// node may program the object before its status says so.
pub fn labels_accept(
    labels: Option<&std::collections::BTreeMap<String, String>>,
    generation: Option<i64>,
) -> bool {
    let Some(generation) = generation else {
        return false;
    };
    labels.into_iter().flatten().any(|(key, value)| {
        trunkline_api::node_label::name_in(key).is_some()
            && trunkline_api::node_label::accepted_generation(value) == Some(generation)
    })
}

/// The [`Meta`] of an object of kind `kind` with status conditions
/// `conditions`. It is accepted when its status says so for its current
/// generation, or when its node labels do and its status does not refuse
/// that generation.
pub(crate) fn meta(kind: Kind, m: &ObjectMeta, conditions: &[Condition]) -> Meta {
    let name = m.name.clone().unwrap_or_default();
    let key = match (kind.is_namespaced(), &m.namespace) {
        (true, Some(ns)) => ObjectKey::namespaced(kind, ns.clone(), name),
        (true, None) => ObjectKey::namespaced(kind, String::new(), name),
        (false, _) => ObjectKey::cluster(kind, name),
    };
    Meta {
        key,
        created: m.creation_timestamp.as_ref().map(|t| t.0.as_second()),
        generation: m.generation.unwrap_or(0),
        accepted: accepted(conditions, m.generation)
            || (!refused(conditions, m.generation)
                && labels_accept(m.labels.as_ref(), m.generation)),
        refused: refused(conditions, m.generation),
        changed_at: m
            .resource_version
            .as_deref()
            .and_then(ResourceVersion::parse),
        nodes: m
            .labels
            .iter()
            .flatten()
            .filter_map(|(key, _)| trunkline_api::node_label::name_in(key))
            .map(str::to_owned)
            .collect(),
        labelled_generation: labelled_generation(m.labels.as_ref()),
    }
}

/// The generation every node label of `labels` carries, when they all
/// carry the same one (see [`trunkline_api::node_label::value_of`]).
pub fn labelled_generation(
    labels: Option<&std::collections::BTreeMap<String, String>>,
) -> Option<i64> {
    let mut generations = labels
        .into_iter()
        .flatten()
        .filter(|(key, _)| trunkline_api::node_label::name_in(key).is_some())
        .map(|(_, value)| trunkline_api::node_label::accepted_generation(value));
    let first = generations.next()??;
    generations.all(|g| g == Some(first)).then_some(first)
}

/// Reads a value with `parse`, or records why it cannot be read in
/// `defects` as `<field>: <error>`.
pub(crate) fn read<T, E: std::fmt::Display>(
    field: &str,
    parsed: Result<T, E>,
    defects: &mut Vec<String>,
) -> Option<T> {
    match parsed {
        Ok(value) => Some(value),
        Err(e) => {
            defects.push(format!("{field}: {e}"));
            None
        }
    }
}

/// An IP address from its text, naming the value on failure.
pub(crate) fn ip(text: &str) -> Result<std::net::IpAddr, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not an IPv4 or IPv6 address"))
}

/// A PhysicalRouter, with its dataplane's `status.programmed` report.
pub fn physical_router(object: &trunkline_api::PhysicalRouter) -> PhysicalRouter {
    PhysicalRouter::from_api(object)
}

/// A LogicalInterface.
pub fn logical_interface(object: &trunkline_api::LogicalInterface) -> LogicalInterface {
    LogicalInterface::from_api(object)
}

/// A VirtualMachineInterface.
pub fn virtual_machine_interface(
    object: &trunkline_api::VirtualMachineInterface,
) -> VirtualMachineInterface {
    VirtualMachineInterface::from_api(object)
}

/// A VirtualNetwork.
pub fn virtual_network(object: &trunkline_api::VirtualNetwork) -> VirtualNetwork {
    VirtualNetwork::from_api(object)
}

/// A GatewayHAGroup.
pub fn gateway_ha_group(object: &trunkline_api::GatewayHAGroup) -> GatewayHaGroup {
    GatewayHaGroup::from_api(object)
}

/// A VirtualGateway.
pub fn virtual_gateway(object: &trunkline_api::VirtualGateway) -> VirtualGateway {
    VirtualGateway::from_api(object)
}

/// An ExternalVTEP.
pub fn external_vtep(object: &trunkline_api::ExternalVTEP) -> ExternalVtep {
    ExternalVtep::from_api(object)
}

/// A DCGateway.
pub fn dc_gateway(object: &trunkline_api::DCGateway) -> DcGateway {
    DcGateway::from_api(object)
}

/// A SecurityGroup.
pub fn security_group(object: &trunkline_api::SecurityGroup) -> SecurityGroup {
    SecurityGroup::from_api(object)
}

/// A VirtualNetworkPolicy.
pub fn virtual_network_policy(
    object: &trunkline_api::VirtualNetworkPolicy,
) -> crate::VirtualNetworkPolicy {
    crate::VirtualNetworkPolicy::from_api(object)
}

/// A ClusterVirtualNetworkPolicy (the same domain type as a namespaced
/// policy, see [`crate::virtual_network_policy`]).
pub fn cluster_virtual_network_policy(
    object: &trunkline_api::ClusterVirtualNetworkPolicy,
) -> crate::VirtualNetworkPolicy {
    crate::VirtualNetworkPolicy::from_cluster_api(object)
}

/// API objects of every kind, borrowed (as a process' watch stores hold
/// them), to convert into one [`Snapshot`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Objects<'a> {
    /// PhysicalRouters.
    pub physical_routers: &'a [&'a trunkline_api::PhysicalRouter],
    /// LogicalInterfaces.
    pub logical_interfaces: &'a [&'a trunkline_api::LogicalInterface],
    /// VirtualMachineInterfaces.
    pub virtual_machine_interfaces: &'a [&'a trunkline_api::VirtualMachineInterface],
    /// VirtualNetworks.
    pub virtual_networks: &'a [&'a trunkline_api::VirtualNetwork],
    /// GatewayHAGroups.
    pub gateway_ha_groups: &'a [&'a trunkline_api::GatewayHAGroup],
    /// VirtualGateways.
    pub virtual_gateways: &'a [&'a trunkline_api::VirtualGateway],
    /// ExternalVTEPs.
    pub external_vteps: &'a [&'a trunkline_api::ExternalVTEP],
    /// DCGateways.
    pub dc_gateways: &'a [&'a trunkline_api::DCGateway],
    /// SecurityGroups.
    pub security_groups: &'a [&'a trunkline_api::SecurityGroup],
}

impl Objects<'_> {
    /// Every object converted.
    pub fn snapshot(&self) -> Snapshot {
        fn all<A, T>(objects: &[&A], convert: impl Fn(&A) -> T) -> Vec<std::sync::Arc<T>> {
            objects
                .iter()
                .map(|o| std::sync::Arc::new(convert(o)))
                .collect()
        }
        Snapshot {
            physical_routers: all(self.physical_routers, physical_router),
            logical_interfaces: all(self.logical_interfaces, logical_interface),
            virtual_machine_interfaces: all(
                self.virtual_machine_interfaces,
                virtual_machine_interface,
            ),
            virtual_networks: all(self.virtual_networks, virtual_network),
            gateway_ha_groups: all(self.gateway_ha_groups, gateway_ha_group),
            virtual_gateways: all(self.virtual_gateways, virtual_gateway),
            external_vteps: all(self.external_vteps, external_vtep),
            dc_gateways: all(self.dc_gateways, dc_gateway),
            security_groups: all(self.security_groups, security_group),
            // Not watched through `Objects`: the agent reads them apart
            // (`network_policies.rs`), the operator in its index.
            virtual_network_policies: Vec::new(),
        }
    }
}

/// API objects of every kind, held by value (tests and tools that build a
/// set themselves rather than read a watch store), converted exactly as
/// [`Objects`] converts borrowed ones.
#[derive(Clone, Debug, Default)]
pub struct OwnedObjects {
    /// PhysicalRouters.
    pub physical_routers: Vec<trunkline_api::PhysicalRouter>,
    /// LogicalInterfaces.
    pub logical_interfaces: Vec<trunkline_api::LogicalInterface>,
    /// VirtualMachineInterfaces.
    pub virtual_machine_interfaces: Vec<trunkline_api::VirtualMachineInterface>,
    /// VirtualNetworks.
    pub virtual_networks: Vec<trunkline_api::VirtualNetwork>,
    /// GatewayHAGroups.
    pub gateway_ha_groups: Vec<trunkline_api::GatewayHAGroup>,
    /// VirtualGateways.
    pub virtual_gateways: Vec<trunkline_api::VirtualGateway>,
    /// ExternalVTEPs.
    pub external_vteps: Vec<trunkline_api::ExternalVTEP>,
    /// DCGateways.
    pub dc_gateways: Vec<trunkline_api::DCGateway>,
    /// SecurityGroups.
    pub security_groups: Vec<trunkline_api::SecurityGroup>,
}

impl OwnedObjects {
    /// Every object converted (through [`Objects::snapshot`]).
    pub fn snapshot(&self) -> Snapshot {
        fn refs<T>(objects: &[T]) -> Vec<&T> {
            objects.iter().collect()
        }
        Objects {
            physical_routers: &refs(&self.physical_routers),
            logical_interfaces: &refs(&self.logical_interfaces),
            virtual_machine_interfaces: &refs(&self.virtual_machine_interfaces),
            virtual_networks: &refs(&self.virtual_networks),
            gateway_ha_groups: &refs(&self.gateway_ha_groups),
            virtual_gateways: &refs(&self.virtual_gateways),
            external_vteps: &refs(&self.external_vteps),
            dc_gateways: &refs(&self.dc_gateways),
            security_groups: &refs(&self.security_groups),
        }
        .snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn condition(type_: &str, status: &str, observed: Option<i64>) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: "Ok".into(),
            message: String::new(),
            observed_generation: observed,
            last_transition_time: Time("2026-01-01T00:00:00Z".parse().unwrap()),
        }
    }

    #[test]
    fn accepted_means_true_for_the_current_generation() {
        let yes = [condition("Accepted", "True", Some(3))];
        assert!(accepted(&yes, Some(3)));
        assert!(
            !accepted(&yes, Some(4)),
            "a stale acceptance does not count"
        );
        assert!(!accepted(&yes, None));
        assert!(accepted(&[condition("Accepted", "True", None)], Some(4)));
        assert!(!accepted(
            &[condition("Accepted", "False", Some(3))],
            Some(3)
        ));
        assert!(!accepted(&[condition("Ready", "True", Some(3))], Some(3)));
        assert!(!accepted(&[], Some(3)));
    }

    #[test]
    fn meta_reads_identity_age_generation_and_verdict() {
        let m = ObjectMeta {
            name: Some("net1".into()),
            namespace: Some("t1".into()),
            generation: Some(3),
            resource_version: Some("1234".into()),
            labels: Some(
                [
                    ("node.trunkline.io/gw-1".to_owned(), String::new()),
                    ("trunkline.io/bench".to_owned(), "x".to_owned()),
                ]
                .into(),
            ),
            creation_timestamp: Some(Time("2026-01-01T00:00:10Z".parse().unwrap())),
            ..Default::default()
        };
        let meta = meta(
            Kind::VirtualNetwork,
            &m,
            &[condition("Accepted", "True", Some(3))],
        );
        assert_eq!(
            meta.key,
            ObjectKey::namespaced(Kind::VirtualNetwork, "t1", "net1")
        );
        assert_eq!((meta.created, meta.generation), (Some(1_767_225_610), 3));
        assert!(meta.accepted);
        assert_eq!(meta.changed_at, ResourceVersion::parse("1234"));
        assert!(meta.labelled_for("gw-1") && !meta.labelled_for("gw-2"));
        assert_eq!(meta.nodes.len(), 1);
        // A namespace on a cluster-scoped kind is ignored.
        let cluster = super::meta(Kind::LogicalInterface, &m, &[]);
        assert_eq!(
            cluster.key,
            ObjectKey::cluster(Kind::LogicalInterface, "net1")
        );
        assert!(!cluster.accepted);
    }

    #[test]
    fn node_labels_carry_acceptance_unless_the_status_refuses() {
        let labelled = |value: &str| ObjectMeta {
            name: Some("net1".into()),
            namespace: Some("t1".into()),
            generation: Some(3),
            labels: Some(
                [
                    ("node.trunkline.io/gw-1".to_owned(), value.to_owned()),
                    ("other.example/x".to_owned(), "g4".to_owned()),
                ]
                .into(),
            ),
            ..Default::default()
        };
        let vn = Kind::VirtualNetwork;
        assert!(meta(vn, &labelled("g3"), &[]).accepted, "no status yet");
        assert!(
            meta(
                vn,
                &labelled("g3"),
                &[condition("Accepted", "True", Some(2))]
            )
            .accepted,
            "the status is behind the labels"
        );
        let refused = meta(
            vn,
            &labelled("g3"),
            &[condition("Accepted", "False", Some(3))],
        );
        assert!(!refused.accepted && refused.refused, "the status refuses");
        assert!(
            !meta(vn, &labelled("g2"), &[]).accepted,
            "an older generation"
        );
        assert!(
            !meta(vn, &labelled(""), &[]).accepted,
            "older operators' labels"
        );
        let mut other = labelled("");
        other
            .labels
            .as_mut()
            .unwrap()
            .insert("other.example/y".into(), "g3".into());
        assert!(!meta(vn, &other, &[]).accepted, "only node labels count");
        assert_eq!(meta(vn, &labelled("g3"), &[]).labelled_generation, Some(3));
        assert_eq!(meta(vn, &labelled(""), &[]).labelled_generation, None);
        let mut mixed = labelled("g3");
        mixed
            .labels
            .as_mut()
            .unwrap()
            .insert("node.trunkline.io/gw-2".into(), "g2".into());
        assert_eq!(meta(vn, &mixed, &[]).labelled_generation, None);
    }
}
