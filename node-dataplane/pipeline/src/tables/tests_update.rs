//! Incremental updates ([`Tables::update`]): a change to one VMI rebuilds
//! that VMI and its VRF and shares everything else, its runtime cells
//! survive, and after any sequence of changes of any kind the tables equal
//! a compilation from scratch (same dump, same rejections).

use core::net::IpAddr;
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::config::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Two networks, two gateway ports, VMIs `v0..v{n}` alternating between the
/// networks, each with one logical interface.
fn base(n: usize) -> NodeConfig {
    let network = |k: usize, subnets: &[(&str, &str)]| NetworkConfig {
        key: format!("n{k}"),
        vrf: k as u32 + 1,
        subnets: subnets
            .iter()
            .map(|(p, g)| SubnetConfig {
                prefix: p.parse().unwrap(),
                gateway: ip(g),
            })
            .collect(),
        label: Some(100 + k as u32),
        ..Default::default()
    };
    let mut config = NodeConfig {
        gateway_mac: DEFAULT_GATEWAY_MAC,
        networks: vec![
            network(0, &[("10.0.0.0/24", "10.0.0.1"), ("fd00::/64", "fd00::1")]),
            network(1, &[("10.0.0.0/24", "10.0.0.1")]),
        ],
        ..Default::default()
    };
    for id in [1, 2] {
        config.ports.push(PortConfig {
            id: PortId(id),
            name: format!("p{id}"),
            mtu: None,
            kind: PortKind::Gateway,
        });
    }
    for i in 0..n {
        config.vmis.push(VmiConfig {
            key: format!("v{i}"),
            network: format!("n{}", i % 2),
            mac: [2, 0, 0, 0, 0, i as u8],
            ips: vec![ip(&format!("10.0.0.{}", 10 + i))],
            allowed_address_pairs: Vec::new(),
            port_security: true,
            label: Some(200 + i as u32),
        });
        config.logical_interfaces.push(LogicalInterfaceConfig {
            key: format!("l{i}"),
            port: PortId(1 + (i % 2) as u16),
            vlan: 1 + i as u16,
            vmi: format!("v{i}"),
            order: CreationOrder {
                created_secs: i as i64,
                name: format!("l{i}"),
            },
        });
    }
    config
}

#[test]
fn a_vmi_change_rebuilds_its_vmi_and_vrf_and_shares_the_rest() {
    let before = base(6);
    let (previous, rejected) = Tables::compile(&before);
    assert!(rejected.is_empty(), "{rejected:?}");
    let v2 = previous.vmi_id("v2").unwrap();
    crate::Counters::for_worker(1).vmi_rx(previous.vmi(v2).unwrap().counters(), 64);
    let mut after = before.clone();
    after.vmis[2].ips = vec![ip("10.0.0.99"), ip("fd00::99")];
    after.vmis[2].mac = [2, 0, 0, 0, 9, 9];
    after.vmis[2].port_security = false;

    let (next, rejected, rebuilt) = Tables::update(&previous, &before, &after);
    assert_eq!(
        rebuilt,
        Rebuilt::Touched {
            vmis: 1,
            vmis_removed: 0,
            logical_interfaces: 0,
            logical_interfaces_removed: 0,
            vrfs: 1
        }
    );
    assert!(rejected.is_empty());
    assert_eq!(next.dump(), Tables::compile(&after).0.dump());
    assert_eq!(next.route("n0", ip("10.0.0.99")), Some(NextHop::Vmi(v2)));
    assert_eq!(next.route("n0", ip("10.0.0.12")), None);
    // The changed VMI keeps its counters; the other VRF, the other VMIs
    // and the ports are the previous tables' own.
    assert_eq!(next.vmi(v2).unwrap().counters().snapshot().rx_bytes, 64);
    let n1 = previous.network_keys["n1"];
    assert!(Arc::ptr_eq(&next.vrfs[n1], &previous.vrfs[n1]));
    let n0 = previous.network_keys["n0"];
    assert!(!Arc::ptr_eq(&next.vrfs[n0], &previous.vrfs[n0]));
    for (i, vmi) in next.vmis.iter().enumerate() {
        assert_eq!(Arc::ptr_eq(vmi, &previous.vmis[i]), i != v2.index());
    }
    assert!(Arc::ptr_eq(&next.ports, &previous.ports));
}

#[test]
fn two_vmis_may_swap_addresses_and_macs() {
    let before = base(4);
    let (previous, _) = Tables::compile(&before);
    let mut after = before.clone();
    let (a, b) = (after.vmis[0].clone(), after.vmis[2].clone());
    (after.vmis[0].ips, after.vmis[2].ips) = (b.ips, a.ips);
    (after.vmis[0].mac, after.vmis[2].mac) = (b.mac, a.mac);
    let (next, rejected, rebuilt) = Tables::update(&previous, &before, &after);
    assert_eq!(
        rebuilt,
        Rebuilt::Touched {
            vmis: 2,
            vmis_removed: 0,
            logical_interfaces: 0,
            logical_interfaces_removed: 0,
            vrfs: 1
        }
    );
    assert!(rejected.is_empty());
    assert_eq!(next.dump(), Tables::compile(&after).0.dump());
}

#[test]
fn a_new_vmi_with_its_logical_interface_is_added_in_place() {
    let before = base(4);
    let (previous, _) = Tables::compile(&before);
    let mut after = before.clone();
    // A key sorting first, inserted in the middle of the list.
    after.vmis.insert(
        1,
        VmiConfig {
            key: "a-new".into(),
            network: "n1".into(),
            mac: [2, 0, 0, 0, 7, 7],
            ips: vec![ip("10.0.0.77")],
            allowed_address_pairs: Vec::new(),
            port_security: true,
            label: Some(777),
        },
    );
    after.logical_interfaces.push(LogicalInterfaceConfig {
        key: "l-new".into(),
        port: PortId(2),
        vlan: 77,
        vmi: "a-new".into(),
        order: CreationOrder {
            created_secs: 50,
            name: "l-new".into(),
        },
    });
    let (next, rejected, rebuilt) = Tables::update(&previous, &before, &after);
    assert_eq!(
        rebuilt,
        Rebuilt::Touched {
            vmis: 1,
            vmis_removed: 0,
            logical_interfaces: 1,
            logical_interfaces_removed: 0,
            vrfs: 1
        }
    );
    assert!(rejected.is_empty());
    assert_eq!(next.dump(), Tables::compile(&after).0.dump());
    let id = next.vmi_id("a-new").unwrap();
    assert_eq!(next.vmi_at(PortId(2), 77), Some(id));
    assert_eq!(
        next.vmi(id).unwrap().egress(),
        Some(Egress {
            port: PortId(2),
            vlan: 77
        })
    );
    // An older logical interface than the newest one is left to a
    // compilation (it would not go last in the list).
    let mut older = after.clone();
    older
        .logical_interfaces
        .last_mut()
        .unwrap()
        .order
        .created_secs = 0;
    let (_, _, rebuilt) = Tables::update(&previous, &before, &older);
    assert_eq!(rebuilt, Rebuilt::Everything);
}

#[test]
fn a_clash_is_left_to_a_compilation() {
    let before = base(4);
    let (previous, _) = Tables::compile(&before);
    let mut after = before.clone();
    // v2 takes v0's address: the older key keeps it, as compilation says.
    after.vmis[2].ips = before.vmis[0].ips.clone();
    let (next, rejected, rebuilt) = Tables::update(&previous, &before, &after);
    assert_eq!(rebuilt, Rebuilt::Everything);
    let (scratch, expected) = Tables::compile(&after);
    assert_eq!(rejected, expected);
    assert!(!rejected.is_empty());
    assert_eq!(next.dump(), scratch.dump());
}

/// What an update rebuilt, for the tests below.
fn touched(
    vmis: usize,
    vmis_removed: usize,
    logical_interfaces: usize,
    logical_interfaces_removed: usize,
    vrfs: usize,
) -> Rebuilt {
    Rebuilt::Touched {
        vmis,
        vmis_removed,
        logical_interfaces,
        logical_interfaces_removed,
        vrfs,
    }
}

/// `config` without VMI `key` and its logical interfaces.
fn without(config: &NodeConfig, key: &str) -> NodeConfig {
    let mut after = config.clone();
    after.vmis.retain(|v| v.key != key);
    after.logical_interfaces.retain(|li| li.vmi != key);
    after
}

#[test]
fn a_removed_vmi_gives_its_position_to_the_last_one() {
    let before = base(6);
    let (previous, rejected) = Tables::compile(&before);
    assert!(rejected.is_empty(), "{rejected:?}");
    let v2 = previous.vmi_id("v2").unwrap();
    let v5 = previous.vmi_id("v5").unwrap();
    crate::Counters::for_worker(1).vmi_rx(previous.vmi(v5).unwrap().counters(), 64);
    let after = without(&before, "v2");
    let (next, rejected, rebuilt) = Tables::update(&previous, &before, &after);
    // v2's VRF (n0) and v5's (n1, renumbered).
    assert_eq!(rebuilt, touched(0, 1, 0, 1, 2));
    assert!(rejected.is_empty());
    assert_eq!(next.dump(), Tables::compile(&after).0.dump());
    assert_eq!(next.vmis.len(), 5);
    assert_eq!(next.vmi_id("v2"), None);
    // v5 took v2's position everywhere: key, host route, VLAN slot, label;
    // its counters are the same cell.
    assert_eq!(next.vmi_id("v5"), Some(v2));
    assert_eq!(next.route("n1", ip("10.0.0.15")), Some(NextHop::Vmi(v2)));
    assert_eq!(next.vmi_at(PortId(2), 6), Some(v2));
    assert_eq!(next.vmi_at(PortId(1), 3), None);
    assert_eq!(next.labels.get(&205), Some(&LabelTarget::Vmi(v2)));
    assert_eq!(next.labels.get(&202), None);
    assert!(Arc::ptr_eq(
        &next.vmis[v2.index()],
        &previous.vmis[v5.index()]
    ));
    assert_eq!(next.vmi(v2).unwrap().counters().snapshot().rx_bytes, 64);
    assert_eq!(next.route("n0", ip("10.0.0.12")), None);
    // Every other VMI is the previous tables' own, at its position.
    for (i, vmi) in next
        .vmis
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != v2.index())
    {
        assert!(Arc::ptr_eq(vmi, &previous.vmis[i]));
    }

    // The last VMI itself: nothing moves, one VRF.
    let (last, _, rebuilt) = Tables::update(&next, &after, &without(&after, "v4"));
    assert_eq!(rebuilt, touched(0, 1, 0, 1, 1));
    assert_eq!(
        last.dump(),
        Tables::compile(&without(&after, "v4")).0.dump()
    );
}

#[test]
fn a_removed_vmis_label_address_and_vlan_are_reused_by_a_later_add() {
    let before = base(4);
    let (previous, _) = Tables::compile(&before);
    let gone = without(&before, "v1");
    let (next, rejected, rebuilt) = Tables::update(&previous, &before, &gone);
    // v1 and the last VMI, v3, are both of n1.
    assert_eq!(rebuilt, touched(0, 1, 0, 1, 1));
    assert!(rejected.is_empty());
    assert_eq!(next.labels.get(&201), None);
    // A later VMI takes v1's label, address, MAC and VLAN (port 2, 2).
    let mut again = gone.clone();
    let mut reborn = before.vmis[1].clone();
    reborn.key = "a-reborn".into();
    again.vmis.push(reborn);
    again.logical_interfaces.push(LogicalInterfaceConfig {
        key: "l-reborn".into(),
        port: PortId(2),
        vlan: 2,
        vmi: "a-reborn".into(),
        order: CreationOrder {
            created_secs: 100,
            name: "l-reborn".into(),
        },
    });
    let (later, rejected, rebuilt) = Tables::update(&next, &gone, &again);
    assert_eq!(rebuilt, touched(1, 0, 1, 0, 1));
    assert!(rejected.is_empty());
    assert_eq!(later.dump(), Tables::compile(&again).0.dump());
    let id = later.vmi_id("a-reborn").unwrap();
    assert_eq!(later.labels.get(&201), Some(&LabelTarget::Vmi(id)));
    assert_eq!(later.vmi_at(PortId(2), 2), Some(id));
    // In the same change too: the removal goes first.
    let mut swapped = again.clone();
    swapped.vmis.retain(|v| v.key != "v3");
    swapped.logical_interfaces.retain(|li| li.vmi != "v3");
    swapped.vmis.push(VmiConfig {
        key: "b-new".into(),
        label: Some(203),
        ..before.vmis[3].clone()
    });
    let (both, rejected, rebuilt) = Tables::update(&later, &again, &swapped);
    assert_eq!(rebuilt, touched(1, 1, 0, 1, 1));
    assert!(rejected.is_empty());
    assert_eq!(both.dump(), Tables::compile(&swapped).0.dump());
    let b = both.vmi_id("b-new").unwrap();
    assert_eq!(both.labels.get(&203), Some(&LabelTarget::Vmi(b)));
    assert_eq!(both.route("n1", ip("10.0.0.13")), Some(NextHop::Vmi(b)));
}

#[test]
fn a_vmi_removed_without_its_logical_interface_is_left_to_a_compilation() {
    let before = base(4);
    let (previous, _) = Tables::compile(&before);
    let mut after = before.clone();
    after.vmis.remove(1);
    let (next, rejected, rebuilt) = Tables::update(&previous, &before, &after);
    assert_eq!(rebuilt, Rebuilt::Everything);
    let (scratch, expected) = Tables::compile(&after);
    assert!(!expected.is_empty());
    assert_eq!(rejected, expected);
    assert_eq!(next.dump(), scratch.dump());
}

#[test]
fn a_removed_logical_interface_frees_its_vlan_and_hands_the_egress_on() {
    let mut before = base(4);
    // v0 has a second, newer logical interface.
    before.logical_interfaces.push(LogicalInterfaceConfig {
        key: "l0b".into(),
        port: PortId(2),
        vlan: 50,
        vmi: "v0".into(),
        order: CreationOrder {
            created_secs: 50,
            name: "l0b".into(),
        },
    });
    let (previous, rejected) = Tables::compile(&before);
    assert!(rejected.is_empty(), "{rejected:?}");
    let v0 = previous.vmi_id("v0").unwrap();
    assert_eq!(
        previous.vmi(v0).unwrap().egress(),
        Some(Egress {
            port: PortId(1),
            vlan: 1
        })
    );
    let mut after = before.clone();
    after.logical_interfaces.retain(|li| li.key != "l0");
    let (next, rejected, rebuilt) = Tables::update(&previous, &before, &after);
    assert_eq!(rebuilt, touched(0, 0, 0, 1, 1));
    assert!(rejected.is_empty());
    assert_eq!(next.dump(), Tables::compile(&after).0.dump());
    assert_eq!(next.vmi_at(PortId(1), 1), None);
    assert_eq!(
        next.vmi(v0).unwrap().egress(),
        Some(Egress {
            port: PortId(2),
            vlan: 50
        })
    );
    // v0's counters are the same cell; another VMI's VRF is untouched.
    assert!(Arc::ptr_eq(
        &next.vmi(v0).unwrap().counters,
        &previous.vmi(v0).unwrap().counters
    ));
    let n1 = previous.network_keys["n1"];
    assert!(Arc::ptr_eq(&next.vrfs[n1], &previous.vrfs[n1]));
    // Its last one: no egress.
    let mut none = after.clone();
    none.logical_interfaces.retain(|li| li.key != "l0b");
    let (last, _, rebuilt) = Tables::update(&next, &after, &none);
    assert_eq!(rebuilt, touched(0, 0, 0, 1, 1));
    assert_eq!(last.dump(), Tables::compile(&none).0.dump());
    assert_eq!(last.vmi(v0).unwrap().egress(), None);
}

#[test]
fn a_changed_logical_interface_moves_its_vlan_or_its_vmi_in_place() {
    let before = base(4);
    let (previous, _) = Tables::compile(&before);
    let v1 = previous.vmi_id("v1").unwrap();
    let v3 = previous.vmi_id("v3").unwrap();
    // Another VLAN, and another port.
    let mut vlan = before.clone();
    vlan.logical_interfaces[1].vlan = 60;
    vlan.logical_interfaces[2].port = PortId(2);
    let (next, rejected, rebuilt) = Tables::update(&previous, &before, &vlan);
    assert_eq!(rebuilt, touched(0, 0, 2, 2, 2));
    assert!(rejected.is_empty());
    assert_eq!(next.dump(), Tables::compile(&vlan).0.dump());
    assert_eq!(next.vmi_at(PortId(2), 2), None);
    assert_eq!(next.vmi_at(PortId(2), 60), Some(v1));
    assert_eq!(
        next.vmi(v1).unwrap().egress(),
        Some(Egress {
            port: PortId(2),
            vlan: 60
        })
    );
    // l1 (older than l3) points to v3: v3's egress becomes l1's, v1 has
    // none.
    let mut vmi = vlan.clone();
    vmi.logical_interfaces[1].vmi = "v3".into();
    let (moved, rejected, rebuilt) = Tables::update(&next, &vlan, &vmi);
    assert_eq!(rebuilt, touched(0, 0, 1, 1, 1));
    assert!(rejected.is_empty());
    assert_eq!(moved.dump(), Tables::compile(&vmi).0.dump());
    assert_eq!(moved.vmi(v1).unwrap().egress(), None);
    assert_eq!(
        moved.vmi(v3).unwrap().egress(),
        Some(Egress {
            port: PortId(2),
            vlan: 60
        })
    );
    // Onto a VLAN another keeps (l3's): compilation says who wins.
    let mut clash = vmi.clone();
    clash.logical_interfaces[0].port = PortId(2);
    clash.logical_interfaces[0].vlan = 4;
    let (clashed, rejected, rebuilt) = Tables::update(&moved, &vmi, &clash);
    assert_eq!(rebuilt, Rebuilt::Everything);
    let (scratch, expected) = Tables::compile(&clash);
    assert!(!expected.is_empty());
    assert_eq!(rejected, expected);
    assert_eq!(clashed.dump(), scratch.dump());
}

/// One change to a configuration; indexes are taken modulo the lengths.
#[derive(Debug, Clone)]
enum Change {
    Address {
        vmi: usize,
        ip: usize,
    },
    Mac {
        vmi: usize,
        mac: u8,
    },
    PortSecurity {
        vmi: usize,
    },
    Pair {
        vmi: usize,
        on: bool,
    },
    Network {
        vmi: usize,
        network: usize,
    },
    Label {
        vmi: usize,
        label: Option<u32>,
    },
    AddVmi {
        key: usize,
        network: usize,
        ip: usize,
        mac: u8,
    },
    RemoveVmi {
        vmi: usize,
    },
    /// A VMI removed with its logical interfaces.
    RemoveVmiWithLis {
        vmi: usize,
    },
    Li {
        key: usize,
        port: u16,
        vlan: u16,
        vmi: usize,
    },
    RemoveLi {
        li: usize,
    },
    /// A logical interface edited in place (same key and creation order):
    /// another port, VLAN or VMI.
    EditLi {
        li: usize,
        port: u16,
        vlan: u16,
        vmi: usize,
    },
    Subnet {
        network: usize,
        on: bool,
    },
    Port {
        id: u16,
        on: bool,
    },
    Route {
        network: usize,
        ip: usize,
    },
}

/// Addresses VMIs draw: clashes with each other, a gateway address, and
/// addresses no VMI has at first.
const IPS: [&str; 8] = [
    "10.0.0.10",
    "10.0.0.11",
    "10.0.0.1",
    "10.0.0.50",
    "10.0.0.51",
    "10.0.0.52",
    "fd00::5",
    "fd00::6",
];

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        8 => (any::<usize>(), 0..IPS.len()).prop_map(|(vmi, ip)| Change::Address { vmi, ip }),
        4 => (any::<usize>(), 0u8..12).prop_map(|(vmi, mac)| Change::Mac { vmi, mac }),
        2 => any::<usize>().prop_map(|vmi| Change::PortSecurity { vmi }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(vmi, on)| Change::Pair { vmi, on }),
        1 => (any::<usize>(), 0usize..3).prop_map(|(vmi, network)| Change::Network { vmi, network }),
        1 => (any::<usize>(), prop::option::of(prop::sample::select(vec![5u32, 100, 200, 300])))
            .prop_map(|(vmi, label)| Change::Label { vmi, label }),
        2 => (0usize..10, 0usize..3, 0..IPS.len(), 0u8..12)
            .prop_map(|(key, network, ip, mac)| Change::AddVmi { key, network, ip, mac }),
        1 => any::<usize>().prop_map(|vmi| Change::RemoveVmi { vmi }),
        3 => any::<usize>().prop_map(|vmi| Change::RemoveVmiWithLis { vmi }),
        2 => (0usize..10, 0u16..4, 0u16..5, 0usize..10)
            .prop_map(|(key, port, vlan, vmi)| Change::Li { key, port, vlan, vmi }),
        2 => any::<usize>().prop_map(|li| Change::RemoveLi { li }),
        3 => (any::<usize>(), 1u16..3, 0u16..8, any::<usize>())
            .prop_map(|(li, port, vlan, vmi)| Change::EditLi { li, port, vlan, vmi }),
        1 => (0usize..2, any::<bool>()).prop_map(|(network, on)| Change::Subnet { network, on }),
        1 => (1u16..4, any::<bool>()).prop_map(|(id, on)| Change::Port { id, on }),
        1 => (0usize..3, 0..IPS.len()).prop_map(|(network, ip)| Change::Route { network, ip }),
    ]
}

fn apply(config: &mut NodeConfig, change: &Change, step: usize) {
    let n = config.vmis.len();
    let vmi = |i: usize| i % n.max(1);
    match *change {
        Change::Address { vmi: i, ip: a } if n > 0 => {
            config.vmis[vmi(i)].ips = vec![ip(IPS[a])];
        }
        Change::Mac { vmi: i, mac } if n > 0 => {
            // 11: a group address.
            config.vmis[vmi(i)].mac = [if mac == 11 { 3 } else { 2 }, 0, 0, 0, 0, mac];
        }
        Change::PortSecurity { vmi: i } if n > 0 => {
            let v = &mut config.vmis[vmi(i)];
            v.port_security = !v.port_security;
        }
        Change::Pair { vmi: i, on } if n > 0 => {
            config.vmis[vmi(i)].allowed_address_pairs = if on {
                vec![AllowedAddressPair {
                    prefix: "10.0.0.50/32".parse().unwrap(),
                    mac: None,
                }]
            } else {
                Vec::new()
            };
        }
        Change::Network { vmi: i, network } if n > 0 => {
            config.vmis[vmi(i)].network = format!("n{network}");
        }
        Change::Label { vmi: i, label } if n > 0 => config.vmis[vmi(i)].label = label,
        Change::AddVmi {
            key,
            network,
            ip: a,
            mac,
        } => config.vmis.push(VmiConfig {
            key: format!("w{key}"),
            network: format!("n{network}"),
            mac: [2, 0, 0, 0, 0, mac],
            ips: vec![ip(IPS[a])],
            allowed_address_pairs: Vec::new(),
            port_security: true,
            label: None,
        }),
        Change::RemoveVmi { vmi: i } if n > 0 => {
            config.vmis.remove(vmi(i));
        }
        Change::RemoveVmiWithLis { vmi: i } if n > 0 => {
            let gone = config.vmis.remove(vmi(i));
            config.logical_interfaces.retain(|li| li.vmi != gone.key);
        }
        Change::Li {
            key,
            port,
            vlan,
            vmi: v,
        } => {
            let key = format!("m{key}");
            config.logical_interfaces.retain(|li| li.key != key);
            config.logical_interfaces.push(LogicalInterfaceConfig {
                // Mostly newer than every other, sometimes as old as the
                // first ones.
                order: CreationOrder {
                    created_secs: if vlan == 3 { 0 } else { 100 + step as i64 },
                    name: key.clone(),
                },
                key,
                port: PortId(port),
                vlan,
                vmi: format!("v{v}"),
            });
        }
        Change::RemoveLi { li } if !config.logical_interfaces.is_empty() => {
            let i = li % config.logical_interfaces.len();
            config.logical_interfaces.remove(i);
        }
        Change::EditLi {
            li,
            port,
            vlan,
            vmi: v,
        } if !config.logical_interfaces.is_empty() => {
            let i = li % config.logical_interfaces.len();
            let target = config.vmis.get(v % n.max(1)).map(|v| v.key.clone());
            let li = &mut config.logical_interfaces[i];
            // One of three: the port, the VLAN or the VMI.
            match v % 3 {
                0 => li.port = PortId(port),
                1 => li.vlan = vlan,
                _ => li.vmi = target.unwrap_or_else(|| li.vmi.clone()),
            }
        }
        Change::Subnet { network, on } => {
            let subnets = &mut config.networks[network].subnets;
            subnets.retain(|s| s.prefix != "10.0.2.0/24".parse().unwrap());
            if on {
                subnets.push(SubnetConfig {
                    prefix: "10.0.2.0/24".parse().unwrap(),
                    gateway: ip("10.0.2.1"),
                });
            }
        }
        Change::Port { id, on } => {
            config.ports.retain(|p| p.id != PortId(id));
            if on {
                config.ports.push(PortConfig {
                    id: PortId(id),
                    name: format!("p{id}"),
                    mtu: None,
                    kind: PortKind::Gateway,
                });
            }
        }
        Change::Route { network, ip: a } => config.routes.push(RouteConfig {
            network: format!("n{network}"),
            prefix: IpPrefix::host(ip(IPS[a])),
            next_hop: NextHopConfig::Discard,
        }),
        _ => {}
    }
}

/// Whether a change of this kind must be applied in place when the
/// tables before and after have no rejection and no VMI has allowed
/// address pairs (nothing in these configurations is multi-homed).
fn must_be_in_place(change: &Change) -> Option<&'static str> {
    match change {
        Change::RemoveVmiWithLis { .. } => Some("vmi removed"),
        Change::RemoveLi { .. } => Some("li removed"),
        Change::EditLi { .. } => Some("li changed"),
        // The newest: a change of its creation order, or an addition.
        Change::Li { vlan, .. } if *vlan != 3 => Some("li added or reordered"),
        _ => None,
    }
}

/// After every change of a sequence, the updated tables equal a
/// compilation of the configuration from scratch, rejections included;
/// and removals and logical interface changes are applied in place
/// whenever nothing in the way (a rejection, an address pair) forbids it,
/// which the run checks happened for every such kind.
#[test]
fn updated_tables_equal_a_compilation_from_scratch() {
    use proptest::test_runner::{Config, TestRunner};
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    // Per kind: the steps where the update had to be (and was) in place.
    let in_place: Mutex<BTreeMap<&str, usize>> = Mutex::default();
    let mut runner = TestRunner::new(Config::with_cases(256));
    let strategy = (0usize..8, prop::collection::vec(change(), 1..24));
    let result = runner.run(&strategy, |(vmis, changes)| {
        let mut config = base(vmis);
        let (mut tables, _) = Tables::compile(&config);
        for (step, change) in changes.iter().enumerate() {
            let mut next = config.clone();
            apply(&mut next, change, step);
            if let Change::AddVmi { key, .. } = change {
                // With a logical interface, mostly.
                apply(
                    &mut next,
                    &Change::Li {
                        key: 20 + key,
                        port: 1,
                        vlan: 10 + *key as u16,
                        vmi: 0,
                    },
                    step,
                );
                let li = next.logical_interfaces.last_mut().unwrap();
                li.vmi = format!("w{key}");
                if key % 3 == 0 {
                    // As old as the first ones: not the newest.
                    li.order.created_secs = 1;
                }
            }
            let clean_before = tables.clean;
            let (updated, rejected, rebuilt) = Tables::update(&tables, &config, &next);
            let (scratch, expected) = Tables::compile(&next);
            prop_assert_eq!(updated.dump(), scratch.dump(), "after {:?}", change);
            prop_assert_eq!(&rejected, &expected, "after {:?}", change);
            let pairs = config
                .vmis
                .iter()
                .chain(&next.vmis)
                .any(|v| !v.allowed_address_pairs.is_empty());
            if let Some(kind) = must_be_in_place(change)
                && clean_before
                && expected.is_empty()
                && !pairs
                && config != next
            {
                prop_assert!(
                    matches!(rebuilt, Rebuilt::Touched { .. }),
                    "{kind} compiled again: {:?} on {:?}",
                    change,
                    config
                );
                *in_place.lock().unwrap().entry(kind).or_default() += 1;
            }
            tables = updated;
            config = next;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let in_place = in_place.into_inner().unwrap();
    // Every new kind was checked in place many times over the run (about
    // 60 to 100 steps each; an added logical interface, rarely free of
    // rejections here, is covered by the unit tests too).
    for kind in ["vmi removed", "li removed", "li changed"] {
        let n = in_place.get(kind).copied().unwrap_or(0);
        assert!(n >= 20, "{kind}: only {n} steps in place: {in_place:?}");
    }
}

#[test]
fn a_policed_vmi_keeps_its_rules_in_place_and_a_rule_change_compiles_again() {
    let mut before = base(4);
    before
        .policies
        .insert("v1".to_owned(), crate::policy::Policy::default());
    let (previous, rejected) = Tables::compile(&before);
    assert!(rejected.is_empty(), "{rejected:?}");
    let v1 = previous.vmi_id("v1").unwrap();
    let mut after = before.clone();
    after.vmis[1].ips = vec![ip("10.0.0.98")];
    let (next, rejected, rebuilt) = Tables::update(&previous, &before, &after);
    assert!(
        matches!(rebuilt, Rebuilt::Touched { vmis: 1, .. }),
        "{rebuilt:?}"
    );
    assert!(rejected.is_empty());
    assert_eq!(next.dump(), Tables::compile(&after).0.dump());
    assert!(next.vmi(v1).unwrap().policy().is_some());

    // Another policed VMI: the security groups changed, so a compilation.
    let mut policed = after.clone();
    policed
        .policies
        .insert("v2".to_owned(), crate::policy::Policy::default());
    let (again, _, rebuilt) = Tables::update(&next, &after, &policed);
    assert_eq!(rebuilt, Rebuilt::Everything);
    assert_eq!(again.dump(), Tables::compile(&policed).0.dump());
}
