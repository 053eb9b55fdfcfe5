//! The trunkline operator: watches every trunkline kind, decides each
//! object's conditions with `trunkline-operator-core`, and writes status by
//! server-side apply under one field manager (`trunkline-operator`), with
//! Events on transitions, Prometheus metrics and health probes.
//!
//! ```text
//!   kube-apiserver ──watch (one reflector per kind)──> index::Stores
//!         ^                                                │ touched objects
//!         │ SSA /status, Events                            v
//!    operator::Operator::pass  <── changed decisions ── core::Decider (kept
//!         │                                             between passes)
//!    http: /metrics /healthz /readyz      metrics::Metrics
//! ```
//!
//! With `--leader-elect`, replicas elect a leader through a Lease
//! ([`leader`]): every replica watches and serves its probes, only the
//! leader writes status and Events.
//!
//! The permissions it needs (the e2e tests run it with exactly these;
//! `deploy/rbac/operator.yaml` is the source the chart and the kustomize
//! base copy):
//!
//! ```yaml
//! apiVersion: rbac.authorization.k8s.io/v1
//! kind: ClusterRole
//! metadata:
//!   name: trunkline-operator
//! rules:
//!   - apiGroups: ["trunkline.io"]
//!     resources: [physicalrouters, logicalinterfaces, virtualmachineinterfaces,
//!                 virtualnetworks, gatewayhagroups, virtualgateways, externalvteps]
//!     verbs: [get, list, watch]
//!   - apiGroups: ["trunkline.io"]
//!     resources: [logicalinterfaces, virtualmachineinterfaces, virtualnetworks,
//!                 gatewayhagroups, virtualgateways, externalvteps]
//!     verbs: [patch]   # node labels only (server-side apply of metadata.labels)
//!   - apiGroups: ["trunkline.io"]
//!     resources: [logicalinterfaces/status, virtualmachineinterfaces/status,
//!                 virtualnetworks/status, gatewayhagroups/status, virtualgateways/status,
//!                 externalvteps/status]
//!     verbs: [patch]
//!   - apiGroups: ["trunkline.io"]
//!     resources: [packettraces]
//!     verbs: [get, list, watch, delete]
//!   - apiGroups: ["trunkline.io"]
//!     resources: [packettraces/status]
//!     verbs: [patch]
//!   - apiGroups: ["events.k8s.io"]
//!     resources: [events]
//!     verbs: [create, patch]
//! ```
//!
//! PhysicalRouter status is the node dataplane's: the operator only reads
//! it (its watermarks and exceptions decide `Programmed`). PacketTraces
//! are answered by the node dataplanes; the operator only marks those no
//! node can answer and deletes old ones ([`packet_traces`]).
//!
//! With `--leader-elect`, also a namespaced Role on its Lease
//! (`deploy/rbac/operator-leader-election.yaml`): `get`/`update` of Lease
//! `trunkline-operator` and `create` of Leases in its namespace.

#![forbid(unsafe_code)]

pub mod cli;
mod error;
pub mod http;
pub mod index;
pub mod leader;
pub mod metrics;
pub mod operator;
pub mod packet_traces;
pub mod status;
pub mod telemetry;
pub mod written;

pub use cli::Args;
pub use error::Error;
pub use metrics::Metrics;
pub use operator::run;
