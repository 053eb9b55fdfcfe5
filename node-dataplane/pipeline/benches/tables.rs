//! What one VMI change costs the tables on a node with 4K and 16K VMIs:
//! four gateway ports with up to 4094 VLANs each, 64 networks, each also
//! hosted by a peer node with one remote VMI (`make bench-tables`, or
//! `cargo bench -p trunkline-pipeline --bench tables`).
//!
//! Four changes: `moved`, one VMI moves to another address; `added`, one
//! VMI and its logical interface are added; `removed`, one VMI (in the
//! middle of the keys) and its logical interface are removed; `li_moved`,
//! one logical interface moves to another port and VLAN. `full/<change>/<size>`: the change
//! compiled from scratch (`Tables::recompile`, what the agent did before
//! incremental updates); `incremental/<change>/<size>`: the same change
//! applied to the previous tables (`Tables::update`). 16K is 16,375 VMIs:
//! every VLAN of the four ports but the one the added VMI takes.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use trunkline_pipeline::{
    CreationOrder, DEFAULT_GATEWAY_MAC, Encapsulation, IpPrefix, LogicalInterfaceConfig,
    NetworkConfig, NodeConfig, PeerConfig, PortConfig, PortId, PortKind, Rebuilt, RemoteVmiConfig,
    SubnetConfig, Tables, UnderlayConfig, VmiConfig,
};

const FABRIC: PortId = PortId(9);
const GATEWAY_PORTS: u16 = 4;
const VLANS_PER_PORT: usize = 4094;
const MAX_VLAN: u16 = 4094;
const NETWORKS: usize = 64;

fn vmi_ip(i: usize) -> IpAddr {
    let (n, j) = (i % NETWORKS, i / NETWORKS);
    IpAddr::from([10, n as u8, 1 + (j / 250) as u8, 1 + (j % 250) as u8])
}

fn vmi(i: usize) -> VmiConfig {
    VmiConfig {
        key: format!("ns/vmi-{i}"),
        network: format!("ns/net{}", i % NETWORKS),
        mac: [2, 0, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8],
        ips: vec![vmi_ip(i)],
        allowed_address_pairs: Vec::new(),
        port_security: true,
        label: Some(1000 + i as u32),
    }
}

/// VMI `i` on port `1 + i / 4094`, VLAN `1 + i % 4094`, in network `i % 64`.
fn node(vmis: usize) -> NodeConfig {
    let mut config = NodeConfig {
        gateway_mac: DEFAULT_GATEWAY_MAC,
        ..NodeConfig::default()
    };
    for port in 1..=GATEWAY_PORTS {
        config.ports.push(PortConfig {
            id: PortId(port),
            name: format!("eth{port}"),
            mtu: None,
            kind: PortKind::Gateway,
        });
    }
    config.ports.push(PortConfig {
        id: FABRIC,
        name: "eth0".into(),
        mtu: None,
        kind: PortKind::Fabric,
    });
    config.underlay = Some(UnderlayConfig {
        port: FABRIC,
        address: IpAddr::from([192, 168, 100, 1]),
        mac: [2, 0xfa, 0, 0, 0, 1],
        mtu: 1500,
    });
    config.peers.push(PeerConfig {
        key: "node-b".into(),
        address: IpAddr::from([192, 168, 100, 2]),
        encapsulations: vec![Encapsulation::MplsOverUdp, Encapsulation::Vxlan],
    });
    for n in 0..NETWORKS {
        config.networks.push(NetworkConfig {
            key: format!("ns/net{n}"),
            vrf: n as u32 + 1,
            subnets: vec![SubnetConfig {
                prefix: format!("10.{n}.0.0/16").parse::<IpPrefix>().unwrap(),
                gateway: IpAddr::from([10, n as u8, 0, 1]),
            }],
            label: Some(50 + n as u32),
            vni: Some(5000 + n as u32),
            peers: vec!["node-b".into()],
            ..Default::default()
        });
        config.remote_vmis.push(RemoteVmiConfig {
            key: format!("ns/remote-{n}"),
            network: format!("ns/net{n}"),
            peer: "node-b".into(),
            mac: [2, 0, 9, 0, 0, n as u8],
            ips: vec![IpAddr::from([10, n as u8, 200, 1])],
            label: Some(100_000 + n as u32),
        });
    }
    for i in 0..vmis {
        config.vmis.push(vmi(i));
        config.logical_interfaces.push(LogicalInterfaceConfig {
            key: format!("ns/li-{i}"),
            port: PortId(1 + (i / VLANS_PER_PORT) as u16),
            vlan: 1 + (i % VLANS_PER_PORT) as u16,
            vmi: format!("ns/vmi-{i}"),
            order: CreationOrder {
                created_secs: i as i64,
                name: format!("li-{i}"),
            },
        });
    }
    config
}

/// The configuration with one more VMI (sorting in the middle of the
/// keys) and its logical interface, the newest, on the last free VLAN of
/// the last port.
fn with_one_more(config: &NodeConfig, vmis: usize) -> NodeConfig {
    let mut after = config.clone();
    let mut new = vmi(vmis);
    new.key = "ns/vmi-1x".into();
    after.vmis.insert(2, new);
    after.logical_interfaces.push(LogicalInterfaceConfig {
        key: "ns/li-1x".into(),
        port: PortId(GATEWAY_PORTS),
        vlan: MAX_VLAN,
        vmi: "ns/vmi-1x".into(),
        order: CreationOrder {
            created_secs: vmis as i64,
            name: "li-1x".into(),
        },
    });
    after
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("one_vmi_change");
    group.sample_size(10);
    for vmis in [4096, 4 * VLANS_PER_PORT - 1] {
        let before = node(vmis);
        let (previous, rejected) = Tables::compile(&before);
        assert!(rejected.is_empty(), "{rejected:?}");
        let label = if vmis == 4096 { "4K" } else { "16K" };
        // One VMI moves to another address of its network.
        let mut moved = before.clone();
        let changed = vmis / 2;
        moved.vmis[changed].ips = vec![vmi_ip(vmis + NETWORKS * 300 + changed % NETWORKS)];
        // One VMI and its logical interface added.
        let added = with_one_more(&before, vmis);
        // One VMI and its logical interface removed: the last VMI (another
        // network) takes its position.
        let mut removed = before.clone();
        let gone = removed.vmis.remove(changed);
        removed.logical_interfaces.retain(|li| li.vmi != gone.key);
        // One logical interface moves to the last VLAN of the last port
        // (free at both sizes).
        let mut li_moved = before.clone();
        li_moved.logical_interfaces[changed].port = PortId(GATEWAY_PORTS);
        li_moved.logical_interfaces[changed].vlan = MAX_VLAN;
        let touched = |vmis, vmis_removed, logical_interfaces, logical_interfaces_removed, vrfs| {
            Rebuilt::Touched {
                vmis,
                vmis_removed,
                logical_interfaces,
                logical_interfaces_removed,
                vrfs,
            }
        };
        for (change, after, expected) in [
            ("moved", &moved, touched(1, 0, 0, 0, 1)),
            ("added", &added, touched(1, 0, 1, 0, 1)),
            ("removed", &removed, touched(0, 1, 0, 1, 2)),
            ("li_moved", &li_moved, touched(0, 0, 1, 1, 1)),
        ] {
            let (updated, _, rebuilt) = Tables::update(&previous, &before, after);
            assert_eq!(rebuilt, expected, "{change}");
            assert_eq!(updated.dump(), Tables::compile(after).0.dump(), "{change}");
            let id = format!("{change}/{label}");
            group.bench_with_input(BenchmarkId::new("full", &id), after, |b, after| {
                b.iter(|| black_box(Tables::recompile(black_box(after), &previous)))
            });
            group.bench_with_input(BenchmarkId::new("incremental", &id), after, |b, after| {
                b.iter(|| black_box(Tables::update(&previous, &before, black_box(after))))
            });
        }
    }
    group.finish();
}

criterion_group!(tables, benches);
criterion_main!(tables);
