//! Who holds each address and MAC within a network: VMIs and the static
//! hosts behind external VTEPs claim them alike, and the oldest object
//! keeps each one.

use std::collections::BTreeSet;
use std::net::IpAddr;

use trunkline_model::{
    EthernetAddress, ExternalVtep, Kind, Meta, NamespacedName, ObjectKey, VirtualMachineInterface,
};

use crate::claims::Claims;

/// An address claim: (network, address).
pub(super) type IpClaim = (NamespacedName, IpAddr);
/// A MAC claim: (network, MAC).
pub(super) type MacClaim = (NamespacedName, EthernetAddress);

/// What one object claims: addresses and MACs.
pub(super) type AddressClaims = (BTreeSet<IpClaim>, BTreeSet<MacClaim>);

/// Addresses and MACs per network, with their claimants.
#[derive(Debug, Default)]
pub(super) struct NetworkAddresses {
    pub(super) ips: Claims<IpClaim>,
    pub(super) macs: Claims<MacClaim>,
}

/// What a VMI claims.
pub(super) fn vmi_claims(vmi: &VirtualMachineInterface) -> AddressClaims {
    let network = vmi.network_name();
    let ips = vmi.ips.iter().map(|ip| (network.clone(), *ip)).collect();
    let macs = vmi.mac.iter().map(|mac| (network.clone(), *mac)).collect();
    (ips, macs)
}

/// What the hosts behind an external VTEP claim.
pub(super) fn vtep_claims(vtep: &ExternalVtep) -> AddressClaims {
    let mut ips = BTreeSet::new();
    let mut macs = BTreeSet::new();
    for joined in &vtep.networks {
        for host in &joined.endpoints {
            for ip in &host.ips {
                ips.insert((joined.network.clone(), *ip));
            }
            macs.insert((joined.network.clone(), host.mac));
        }
    }
    (ips, macs)
}

impl NetworkAddresses {
    /// Replaces one object's claims; returns the claimants of every address
    /// or MAC that changed hands.
    pub(super) fn replace(
        &mut self,
        old: Option<(&Meta, AddressClaims)>,
        new: Option<(&Meta, AddressClaims)>,
    ) -> BTreeSet<ObjectKey> {
        let (old_meta, (old_ips, old_macs)) = match old {
            Some((m, c)) => (Some(m), c),
            None => (None, Default::default()),
        };
        let (new_meta, (new_ips, new_macs)) = match new {
            Some((m, c)) => (Some(m), c),
            None => (None, Default::default()),
        };
        let mut affected = BTreeSet::new();
        for ip in self.ips.replace(old_meta, &old_ips, new_meta, &new_ips) {
            affected.extend(self.ips.claimants(&ip).cloned());
        }
        for mac in self.macs.replace(old_meta, &old_macs, new_meta, &new_macs) {
            affected.extend(self.macs.claimants(&mac).cloned());
        }
        affected
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
