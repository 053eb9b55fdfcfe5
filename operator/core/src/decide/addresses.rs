//! Who holds each address and MAC within a network: VMIs and the static
//! hosts behind external VTEPs claim them alike, and the oldest object
//! keeps each one.

use std::net::IpAddr;

use trunkline_model::{EthernetAddress, Kind, Meta, NamespacedName, ObjectKey, Snapshot};

use crate::claims::Claims;

/// Addresses and MACs per network, with their holders.
#[derive(Default)]
pub(super) struct NetworkAddresses {
    ips: Claims<(NamespacedName, IpAddr)>,
    macs: Claims<(NamespacedName, EthernetAddress)>,
}

impl NetworkAddresses {
    /// Every claim of the snapshot, valid objects or not.
    pub(super) fn new(snapshot: &Snapshot) -> Self {
        let mut claims = Self::default();
        for vmi in &snapshot.virtual_machine_interfaces {
            let network = vmi.network_name();
            for ip in &vmi.ips {
                claims.ips.claim((network.clone(), *ip), &vmi.meta);
            }
            if let Some(mac) = vmi.mac {
                claims.macs.claim((network.clone(), mac), &vmi.meta);
            }
        }
        for vtep in &snapshot.external_vteps {
            for joined in &vtep.networks {
                for host in &joined.endpoints {
                    for ip in &host.ips {
                        claims.ips.claim((joined.network.clone(), *ip), &vtep.meta);
                    }
                    claims
                        .macs
                        .claim((joined.network.clone(), host.mac), &vtep.meta);
                }
            }
        }
        claims
    }

    /// The holder of `ip` in `network` when it is not `meta`'s object.
    pub(super) fn ip_holder(
        &self,
        network: &NamespacedName,
        ip: IpAddr,
        meta: &Meta,
    ) -> Option<&ObjectKey> {
        self.ips.held_by_other(&(network.clone(), ip), meta)
    }

    /// The holder of `mac` in `network` when it is not `meta`'s object.
    pub(super) fn mac_holder(
        &self,
        network: &NamespacedName,
        mac: EthernetAddress,
        meta: &Meta,
    ) -> Option<&ObjectKey> {
        self.macs.held_by_other(&(network.clone(), mac), meta)
    }
}

/// How to free an address held by `holder`, for messages.
pub(super) fn release_hint(holder: &ObjectKey) -> &'static str {
    match holder.kind {
        Kind::ExternalVTEP => "remove that host from the ExternalVTEP's endpoints",
        _ => "remove it from that VMI",
    }
}
