//! A real Kubernetes control plane for integration tests.
//!
//! Each test binary gets one control plane (etcd, kube-apiserver and a
//! kube-controller-manager running only the garbage collector and the
//! namespace controller), started on first use by `scripts/cluster.sh up` and
//! shared by every test in that binary. Tests stay apart by working in their
//! own namespace and by giving cluster-scoped objects unique names.
//!
//! ```text
//!  test binary (PID p) --- scripts/cluster.sh up --state <tmp dir>   (CLUSTER_WATCH_PID=p)
//!        |                      |-- etcd                     \
//!        |                      |-- kube-apiserver            > detached, logs in <tmp dir>
//!        |                      |-- kube-controller-manager  /
//!        |                      `-- watchdog: when p is gone, `cluster.sh down` (stop PIDs, rm dir)
//!        `-- kube::Client per test, from <tmp dir>/admin.kubeconfig
//! ```
//!
//! The control plane goes away with the test process however that ends
//! (success, panic, abort, signal): a detached watchdog notices that the PID
//! is gone and stops the recorded PIDs. No `unsafe`, no signal handler.
//!
//! ```no_run
//! use trunkline_test_support::ControlPlane;
//!
//! # async fn example() -> Result<(), trunkline_test_support::Error> {
//! let plane = ControlPlane::shared();
//! let ns = plane.namespace("gc").await?; // deleted again when `ns` drops
//! let client = plane.client().await?; // one client per test: see `ControlPlane::client`
//! # let _ = (ns, client);
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod control_plane;
mod error;
mod identity;
mod kubeconfig_file;
mod names;
mod namespace;
mod process;
mod roles;
mod tools;
mod wait;

pub use control_plane::{ControlPlane, REUSE_ENV};
pub use error::{Error, status_code};
pub use names::unique_name;
pub use namespace::TestNamespace;
pub use process::{
    ManagedProcess, child_named, free_local_addr, http_get, without_test_env, workspace_binary,
};
pub use tools::{client_from_kubeconfig, gobgpd, rig_tool};
/// The network-namespace lab (`trunkline-lab`): fabric, gateway nodes,
/// switches, instances, fabric hosts, VXLAN VTEPs and captures.
pub use trunkline_lab as lab;
pub use trunkline_lab::{FabricHostSpec, InstanceSpec, Lab, LabSpec, NodeSpec, VtepSpec};
pub use wait::eventually;
