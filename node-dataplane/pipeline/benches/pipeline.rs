//! Per-packet cost of the pipeline and compile time of the tables, on a
//! node with 4096 VMIs and logical interfaces: two gateway ports, VLANs
//! 1..=2048 on each, spread over four networks.
//!
//! Each iteration copies the frame back into its buffer (the pipeline
//! rewrites it in place); `copy_only` measures that copy alone.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use trunkline_pipeline::{
    Counters, CreationOrder, DEFAULT_GATEWAY_MAC, HEADROOM, IpPrefix, LogicalInterfaceConfig,
    NetworkConfig, NodeConfig, Pipeline, PortConfig, PortId, PortKind, SubnetConfig, Tables,
    Verdict, VmiConfig,
};

const VMIS: usize = 4096;
const VLANS_PER_PORT: usize = 2048;
const NETWORKS: usize = 4;

fn vmi_mac(i: usize) -> [u8; 6] {
    [2, 0, 0, 0, (i >> 8) as u8, i as u8]
}

fn vmi_ip(i: usize) -> [u8; 4] {
    [10, (i % NETWORKS) as u8, 1 + (i / 256) as u8, i as u8]
}

/// VMI `i` sits on port `1 + i / 2048`, VLAN `1 + i % 2048`, in network
/// `i % 4` (subnet 10.n.0.0/16, gateway 10.n.0.1).
fn config() -> NodeConfig {
    let mut config = NodeConfig {
        gateway_mac: DEFAULT_GATEWAY_MAC,
        ..NodeConfig::default()
    };
    for port in [1u16, 2] {
        config.ports.push(PortConfig {
            id: PortId(port),
            name: format!("eth{port}"),
            kind: PortKind::Gateway,
        });
    }
    for n in 0..NETWORKS {
        config.networks.push(NetworkConfig {
            key: format!("ns/net{n}"),
            vrf: n as u32 + 1,
            subnets: vec![SubnetConfig {
                prefix: format!("10.{n}.0.0/16").parse::<IpPrefix>().unwrap(),
                gateway: IpAddr::from([10, n as u8, 0, 1]),
            }],
        });
    }
    for i in 0..VMIS {
        config.vmis.push(VmiConfig {
            key: format!("ns/vmi-{i}"),
            network: format!("ns/net{}", i % NETWORKS),
            mac: vmi_mac(i),
            ips: vec![IpAddr::from(vmi_ip(i))],
            allowed_address_pairs: Vec::new(),
            port_security: true,
        });
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

/// VMI on port 1 at `vlan`.
fn vmi_at(vlan: u16) -> usize {
    usize::from(vlan) - 1
}

fn udp_frame(src: usize, vlan: u16, dst: usize) -> Vec<u8> {
    let mut frame = Vec::new();
    etherparse::PacketBuilder::ethernet2(vmi_mac(src), DEFAULT_GATEWAY_MAC)
        .single_vlan(etherparse::VlanId::try_new(vlan).unwrap())
        .ipv4(vmi_ip(src), vmi_ip(dst), 64)
        .udp(40000, 53)
        .write(&mut frame, &[0u8; 18])
        .unwrap();
    frame
}

fn arp_frame(src: usize, vlan: u16, target: [u8; 4]) -> Vec<u8> {
    let arp = etherparse::ArpPacket::new(
        etherparse::ArpHardwareId::ETHERNET,
        etherparse::EtherType::IPV4,
        etherparse::ArpOperation::REQUEST,
        &vmi_mac(src),
        &vmi_ip(src),
        &[0; 6],
        &target,
    )
    .unwrap();
    let mut frame = Vec::new();
    etherparse::PacketBuilder::ethernet2(vmi_mac(src), [0xff; 6])
        .single_vlan(etherparse::VlanId::try_new(vlan).unwrap())
        .arp(arp)
        .write(&mut frame)
        .unwrap();
    frame
}

fn bench_frame(
    c: &mut Criterion,
    name: &str,
    pipeline: &Pipeline<'_>,
    frame: &[u8],
    check: fn(&Verdict) -> bool,
) {
    let mut buf = vec![0u8; HEADROOM + frame.len() + 64];
    buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
    let verdict = pipeline.process(PortId(1), &mut buf, HEADROOM, frame.len());
    assert!(check(&verdict), "{name}: unexpected {verdict:?}");
    c.bench_function(name, |b| {
        b.iter(|| {
            buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
            black_box(pipeline.process(
                black_box(PortId(1)),
                black_box(&mut buf),
                HEADROOM,
                frame.len(),
            ))
        })
    });
}

fn benches(c: &mut Criterion) {
    let config = config();
    let (tables, rejected) = Tables::compile(&config);
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_eq!(tables.logical_interfaces().len(), VMIS);
    let counters = Counters::for_worker(0);
    let pipeline = Pipeline::new(&tables, &counters);

    let routed = udp_frame(vmi_at(100), 100, vmi_at(200));
    let arp = arp_frame(vmi_at(100), 100, [10, (vmi_at(100) % NETWORKS) as u8, 0, 1]);
    let dropped = udp_frame(vmi_at(100), 3000, vmi_at(200));

    let mut buf = vec![0u8; HEADROOM + routed.len()];
    c.bench_function("copy_only", |b| {
        b.iter(|| {
            buf[HEADROOM..].copy_from_slice(black_box(&routed));
            black_box(&mut buf);
        })
    });
    bench_frame(
        c,
        "routed_ipv4_vlan100_to_vlan200",
        &pipeline,
        &routed,
        |v| {
            matches!(
                v,
                Verdict::Transmit {
                    port: PortId(1),
                    ..
                }
            )
        },
    );
    bench_frame(c, "arp_request_answered", &pipeline, &arp, |v| {
        matches!(
            v,
            Verdict::Transmit {
                port: PortId(1),
                ..
            }
        )
    });
    bench_frame(
        c,
        "dropped_no_logical_interface",
        &pipeline,
        &dropped,
        |v| matches!(v, Verdict::Drop(_)),
    );

    let mut group = c.benchmark_group("compile");
    group.sample_size(20);
    group.bench_function("tables_4096_vmis_and_logical_interfaces", |b| {
        b.iter(|| black_box(Tables::compile(black_box(&config))))
    });
    group.finish();
}

criterion_group! {
    name = pipeline;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(pipeline);
