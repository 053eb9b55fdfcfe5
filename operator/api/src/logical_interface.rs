//! LogicalInterface: one VLAN on one physical interface of one gateway node,
//! bound to the VMI of the remote instance that sends on that VLAN.
//!
//! Cluster-scoped on purpose: a VLAN on a trunk port is infrastructure, and
//! a tenant must never be able to claim one. The tenant's side is the
//! VirtualMachineInterface in its namespace; an administrator binds the two.
//! The router, the interface and the VLAN are immutable (as the original's
//! `vlan-tag`): moving a remote instance is a delete and a create, so no
//! half-moved state is ever programmed.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fields::{InterfaceName, NamespacedRef, ObjectName};
use crate::status::Condition;

/// A (physical router, physical interface, VLAN) tuple bound to one VMI.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "trunkline.io",
    version = "v1alpha1",
    kind = "LogicalInterface",
    doc = "One VLAN on one physical interface of a gateway node, bound to the VirtualMachineInterface of the remote instance sending on it. Router, interface and VLAN are immutable; a VLAN is unique per physical interface.",
    plural = "logicalinterfaces",
    shortname = "li",
    category = "trunkline",
    status = "LogicalInterfaceStatus",
    printcolumn = r#"{"name":"Router","type":"string","jsonPath":".spec.physicalRouter","description":"Gateway node (PhysicalRouter)"}"#,
    printcolumn = r#"{"name":"Interface","type":"string","jsonPath":".spec.physicalInterface","description":"Physical interface on the node"}"#,
    printcolumn = r#"{"name":"VLAN","type":"integer","jsonPath":".spec.vlan","description":"802.1Q VLAN id (0 = untagged)"}"#,
    printcolumn = r#"{"name":"VMI","type":"string","jsonPath":".spec.virtualMachineInterface.name","description":"Bound VirtualMachineInterface"}"#,
    printcolumn = r#"{"name":"VMI-Namespace","type":"string","jsonPath":".spec.virtualMachineInterface.namespace","priority":1}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogicalInterfaceSpec {
    /// Name of the PhysicalRouter (the gateway node) the VLAN arrives on.
    /// Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("physicalRouter is immutable: delete and recreate the logical interface to move it to another gateway node").reason(Reason::FieldValueForbidden))]
    pub physical_router: ObjectName,

    /// Linux name of the physical interface on that node; it must be listed
    /// in the PhysicalRouter's `physicalInterfaces`. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("physicalInterface is immutable: delete and recreate the logical interface to move it to another port").reason(Reason::FieldValueForbidden))]
    pub physical_interface: InterfaceName,

    /// 802.1Q VLAN id, 0 to 4094; 0 means untagged frames. Unique per
    /// physical interface (the operator enforces it across objects).
    /// Immutable.
    #[schemars(range(min = 0, max = 4094))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("vlan is immutable: delete and recreate the logical interface to use another VLAN").reason(Reason::FieldValueForbidden))]
    pub vlan: u16,

    /// `L2` (the frame is bridged or routed in the VMI's network, as the
    /// seeds configure it) or `L3` (routed only). Default `L2`.
    #[serde(default, rename = "type")]
    pub interface_type: LogicalInterfaceType,

    /// The VirtualMachineInterface of the remote instance behind this VLAN
    /// (namespace and name). A VLAN maps to exactly one VMI; several logical
    /// interfaces (one per gateway node of an HA group) may bind the same VMI.
    pub virtual_machine_interface: NamespacedRef,
}

/// How frames of a logical interface are handled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum LogicalInterfaceType {
    /// Bridged or routed in the VMI's virtual network.
    #[default]
    L2,
    /// Routed only.
    L3,
}

/// What the operator and the node dataplane report about a logical interface.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogicalInterfaceStatus {
    /// The `metadata.generation` these conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted`, `ResolvedRefs`, `Programmed` and the summary `Ready`,
    /// each with a reason and a message (a conflict names the winner).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
