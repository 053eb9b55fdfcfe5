//! The canonical text dump of compiled tables: sorted, free of positions and
//! memory addresses, read back from the lookup structures themselves, so two
//! compilations of the same configuration dump the same text.

use core::fmt::Write as _;

use super::{BridgeEntry, NO_VMI, NextHop, PortRole, Tables, VmiId};

/// Every table of `tables` as text.
pub(super) fn dump(tables: &Tables) -> String {
    let mut out = String::new();
    let vmi_key = |id: VmiId| tables.vmis[id.index()].key.as_str();
    let peer_key = |id: super::PeerId| tables.peers[id.0 as usize].key();
    let hop = |nh: NextHop| match nh {
        NextHop::Receive => "receive".to_owned(),
        NextHop::Vmi(id) => format!("vmi {}", vmi_key(id)),
        NextHop::Remote(id) => format!("remote {}", tables.remotes[id.0 as usize].key),
        NextHop::Peer(id) => format!("peer {}", peer_key(id)),
        NextHop::Port(p) => format!("port {p}"),
        NextHop::Discard => "discard".to_owned(),
        NextHop::Tunnel { peer, label } => format!("peer {} label {label}", peer_key(peer)),
        NextHop::Leak { vmi, link } => format!(
            "vmi {} by link {} -> {}",
            vmi_key(vmi),
            tables.links[link.0 as usize].config.from,
            tables.links[link.0 as usize].config.to
        ),
        NextHop::LeakRemote { remote, link } => {
            let remote = &tables.linked[remote.0 as usize];
            format!(
                "vmi {} of {} behind peer {} {} by link {} -> {}",
                remote.key,
                remote.network,
                peer_key(remote.peer),
                remote.routed,
                tables.links[link.0 as usize].config.from,
                tables.links[link.0 as usize].config.to
            )
        }
        NextHop::Pair(id) => {
            let pair = &tables.pairs[id.0 as usize];
            let owners: Vec<&str> = pair
                .owners
                .iter()
                .map(|(v, _)| tables.vmis[v.index()].key())
                .collect();
            format!("address pair {}", owners.join(" "))
        }
    };
    let _ = writeln!(out, "gateway_mac {}", tables.gateway_mac);
    if let Some(u) = &tables.underlay {
        let _ = writeln!(
            out,
            "underlay port {} address {} mac {} mtu {}",
            u.port, u.addr, u.mac, u.mtu
        );
    }
    for peer in tables.peers.iter() {
        let _ = writeln!(out, "peer {} address {}", peer.key(), peer.addr);
    }
    for group in tables.ha_groups.iter() {
        let ports: Vec<String> = tables
            .ports
            .iter()
            .filter(|p| {
                tables
                    .ha_group_keys
                    .get(&group.key)
                    .is_some_and(|g| p.ha_group == *g as u32)
            })
            .map(|p| p.id.to_string())
            .collect();
        let _ = writeln!(
            out,
            "ha group {} mode {:?} ports [{}] role {:?}",
            group.key,
            group.mode,
            ports.join(","),
            tables.ha_role(&group.key)
        );
    }
    for (vmi, local, peers) in tables.multihomed_vmis() {
        let via = tables.vmi_path(vmi).flatten().unwrap_or("here");
        let _ = writeln!(
            out,
            "multihomed {vmi} local {local} peers [{}] via {via}",
            peers.join(",")
        );
    }
    for port in tables.ports.iter() {
        match &port.role {
            PortRole::Gateway { vlans } => {
                let _ = writeln!(out, "port {} {} gateway", port.id, port.name);
                if let Some(mtu) = port.mtu {
                    let _ = writeln!(out, "  mtu {mtu}");
                }
                for (vlan, &id) in vlans.iter().enumerate() {
                    if id != NO_VMI {
                        let _ = writeln!(out, "  vlan {vlan} -> {}", vmi_key(VmiId(id)));
                    }
                }
            }
            PortRole::Fabric => {
                let _ = writeln!(out, "port {} {} fabric", port.id, port.name);
            }
            PortRole::Host { vrf, peer_mac } => {
                let _ = writeln!(
                    out,
                    "port {} {} host vrf {} peer {peer_mac}",
                    port.id, port.name, tables.vrfs[*vrf].id
                );
            }
        }
    }
    let mut labels: Vec<_> = tables.labels.iter().collect();
    labels.sort_by_key(|(label, _)| **label);
    for (label, target) in labels {
        let what = match target {
            super::LabelTarget::Vmi(id) => format!("vmi {}", vmi_key(*id)),
            super::LabelTarget::Vrf(v) => format!("vrf {}", tables.vrfs[*v].id),
            super::LabelTarget::RoutedVrf(v) => format!("routed vrf {}", tables.vrfs[*v].id),
        };
        let _ = writeln!(out, "label {label} -> {what}");
    }
    for vrf in tables.vrfs.iter() {
        let _ = writeln!(
            out,
            "vrf {} network {} bridges {} routes {} flood_unknown {} vni {:?} label {:?}",
            vrf.id,
            vrf.network,
            vrf.bridges,
            vrf.routes,
            vrf.flood_unknown_unicast,
            vrf.vni,
            vrf.label
        );
        if let Some(mtu) = vrf.mtu {
            let _ = writeln!(out, "  mtu {mtu}");
        }
        if let Some(server) = vrf.dhcp_relay {
            let _ = writeln!(out, "  dhcp relay to {server}");
        }
        if let Some(dhcp) = &vrf.dhcp {
            let _ = writeln!(
                out,
                "  dhcp lease {} dns {:?} {:?} domain {:?} next_server {:?} boot_file {:?}",
                dhcp.lease_secs,
                dhcp.dns4,
                dhcp.dns6,
                String::from_utf8_lossy(&dhcp.domain),
                dhcp.next_server,
                String::from_utf8_lossy(&dhcp.boot_file)
            );
        }
        for (k, len, nh) in vrf.v4.entries() {
            let _ = writeln!(
                out,
                "  route {}/{len} {}",
                core::net::Ipv4Addr::from(k),
                hop(nh)
            );
        }
        for (k, len, nh) in vrf.v6.entries() {
            let _ = writeln!(
                out,
                "  route {}/{len} {}",
                core::net::Ipv6Addr::from(k),
                hop(nh)
            );
        }
        let mut bridge: Vec<(u64, String)> = vrf
            .bridge
            .iter()
            .map(|(mac, entry)| {
                let to = match entry {
                    BridgeEntry::Vmi(id) => vmi_key(*id).to_owned(),
                    BridgeEntry::Remote(id) => {
                        format!("remote {}", tables.remotes[id.0 as usize].key)
                    }
                };
                (*mac, to)
            })
            .collect();
        bridge.sort();
        for (mac, to) in bridge {
            let _ = writeln!(out, "  bridge {mac:012x} -> {to}");
        }
        for local in &vrf.locals {
            let _ = writeln!(
                out,
                "  flood port {} vlan {} ({})",
                local.port,
                local.vlan,
                vmi_key(local.vmi)
            );
        }
        for (peer, encap) in &vrf.peers {
            let _ = writeln!(out, "  flood peer {} {encap}", peer_key(*peer));
        }
    }
    // By key: an update appends the VMIs it adds.
    let mut vmis: Vec<&super::Vmi> = tables.vmis.iter().map(|vmi| &**vmi).collect();
    vmis.sort_by(|a, b| a.key.cmp(&b.key));
    for vmi in vmis {
        let egress = match vmi.egress {
            Some(e) => format!("port {} vlan {}", e.port, e.vlan),
            None => "none".to_owned(),
        };
        let pairs: Vec<String> = vmi.pairs.iter().map(|(p, m)| format!("{p}@{m}")).collect();
        let _ = writeln!(
            out,
            "vmi {} network {} mac {} ips {:?} pairs {:?} port_security {} egress {egress} label {:?}",
            vmi.key, vmi.network, vmi.mac, vmi.ips, pairs, vmi.port_security, vmi.label
        );
        if let Some(p) = &vmi.policy {
            let _ = writeln!(
                out,
                "policy {} zone {:#x} generation {:#x} rules {:?}",
                vmi.key, p.zone, p.generation, p.policy
            );
        }
    }
    for remote in tables.remotes.iter() {
        let _ = writeln!(
            out,
            "remote {} vrf {} peer {} mac {} ips {:?} routed {} bridged {}",
            remote.key,
            tables.vrfs[remote.vrf].id,
            peer_key(remote.peer),
            remote.mac,
            remote.ips,
            remote.routed,
            remote.bridged
        );
    }
    for li in tables.logical_interfaces.iter() {
        let _ = writeln!(
            out,
            "li {} port {} vlan {} vmi {}",
            li.key, li.port, li.vlan, li.vmi
        );
    }
    tables.north_south.dump(&mut out);
    out
}
