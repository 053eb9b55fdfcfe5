//! Stopping for good or for a restart: the host state the agent made (the
//! persistent taps of virtual gateways and their routes) outlives it on
//! purpose, so that a restarted agent adopts it without a gap. When the
//! agent stops because it is being uninstalled, nothing will adopt it: the
//! agent removes it on the way out.
//!
//! ```text
//!  SIGTERM --> forwarding and host threads stopped
//!          --> GET its DaemonSet (--daemonset, in $POD_NAMESPACE)
//!                exists, not being deleted:   a restart (rolling update,
//!                                              eviction) -> keep the taps
//!                gone or being deleted:       an uninstall -> remove them
//!                401/403 (its ServiceAccount
//!                 or role already deleted):   an uninstall -> remove them
//!                unknown (API unreachable):   keep them, and say so
//! ```
//!
//! `helm uninstall` and `kubectl delete daemonset` delete the DaemonSet
//! before its pods are stopped (background propagation: the garbage
//! collector stops the pods after the owner is gone; foreground: the owner
//! carries a deletion timestamp meanwhile), so the check sees the
//! uninstall; a rolling update or an eviction leaves the DaemonSet alone.
//! `helm uninstall` also deletes the agent's ServiceAccount and roles,
//! maybe before the pod stops: credentials refused then mean the same.
//! Guessing wrong costs little: taps removed on a restart are made again by
//! the next agent; taps kept on an uninstall would stay for good.

use std::path::PathBuf;

use k8s_openapi::api::apps::v1::DaemonSet;
use kube::{Api, Client};

use crate::hostnet::HostNetwork;

/// The DaemonSet running this agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// Its namespace (the pod's).
    pub namespace: String,
    /// Its name.
    pub name: String,
}

/// Why the agent is stopping, as far as its host state is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stopping {
    /// Its DaemonSet remains: another agent will adopt the host state.
    Restart,
    /// Its DaemonSet is gone or being deleted (why).
    Uninstall(String),
    /// The DaemonSet could not be read: treated as a restart.
    Unknown(String),
}

/// Reads the DaemonSet `owner` to tell an uninstall from a restart.
pub async fn stopping(client: &Client, owner: &Owner) -> Stopping {
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), &owner.namespace);
    match api.get_opt(&owner.name).await {
        Ok(None) => Stopping::Uninstall("the DaemonSet is gone".to_owned()),
        Ok(Some(ds)) if ds.metadata.deletion_timestamp.is_some() => {
            Stopping::Uninstall("the DaemonSet is being deleted".to_owned())
        }
        Ok(Some(_)) => Stopping::Restart,
        Err(kube::Error::Api(status)) if status.code == 401 || status.code == 403 => {
            Stopping::Uninstall(format!(
                "the agent's credentials are refused ({}: {}): its ServiceAccount or role is gone",
                status.code, status.message
            ))
        }
        Err(e) => Stopping::Unknown(e.to_string()),
    }
}

/// Removes every virtual gateway interface of this agent (the links it
/// marked; their routes go with them) in the node's namespace, or in
/// `netns`; returns their names.
pub fn remove_host_state(netns: Option<PathBuf>) -> Result<Vec<String>, String> {
    // A thread of its own: netlink access has its own runtime, and may
    // enter another network namespace.
    std::thread::Builder::new()
        .name("uninstall".to_owned())
        .spawn(move || {
            if let Some(netns) = &netns {
                trunkline_xdp::enter_network_namespace(netns)
                    .map_err(|e| format!("entering {}: {e}", netns.display()))?;
            }
            let host = HostNetwork::new().map_err(|e| format!("netlink: {e}"))?;
            host.remove_undeclared(&[])
        })
        .map_err(|e| format!("starting a thread: {e}"))?
        .join()
        .map_err(|_| "the uninstall thread panicked".to_owned())?
}
