//! What one build of the compile loop costs the agent on a node with 4K
//! and 16K remote instances (`make bench-agent-build`, or `cargo bench -p
//! trunkline-dataplane --bench build`): the loop builds once per watch
//! event burst, whether or not the tables change, and waits four times a
//! build's duration before the next one, so a build's cost bounds how soon
//! a change is programmed (issue 14's "one change" figure).
//!
//! Each LogicalInterface and VMI is accepted, on one of five trunk ports
//! of node `gw1`, in one network (as `trunkline-bench run --scale` applies
//! them). Rows, per size:
//! - `convert`: every API object into the domain snapshot
//!   (`Objects::snapshot`): what builds did per build until the agent's
//!   stores converted each object once, as its event arrives (`store.rs`);
//! - `build`: the whole pure build from the stores' shared objects
//!   (`build::build`: last accepted versions, `desired()`, policy links,
//!   linked VMIs);
//! - `compare`: the new desired state against the installed one
//!   (`Desired::same_tables`, how the loop tells a change);
//! - `update`: one VMI's address changed, applied to the installed tables
//!   (`Tables::update`).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use trunkline_api::{LogicalInterface, PhysicalRouter, VirtualMachineInterface, VirtualNetwork};
use trunkline_dataplane::build::{BuildInputs, Kept, build};
use trunkline_dataplane::desired::HostFacts;
use trunkline_model::from_api::{Objects, OwnedObjects};
use trunkline_pipeline::{PuntLimit, Tables};

const NODE: &str = "gw1";
const PORTS: usize = 5;

fn accepted(generation: i64) -> Value {
    json!({"conditions": [{"type": "Accepted", "status": "True", "reason": "Ok", "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": generation}]})
}

fn vmi(i: usize, third: usize) -> VirtualMachineInterface {
    let mut status = accepted(1);
    status["mplsLabel"] = json!(1000 + i);
    serde_json::from_value(json!({
        "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
        "metadata": {"name": format!("s-{i}"), "namespace": "bench", "generation": 1,
                     "resourceVersion": format!("{}", 10 + i),
                     "labels": {format!("node.trunkline.io/{NODE}"): "g1"}},
        "spec": {"virtualNetwork": "scale",
                 "macAddress": format!("02:00:00:{:02x}:{:02x}:{:02x}", i >> 16, (i >> 8) & 255, i & 255),
                 "ips": [{"address": format!("10.128.{}.{}", third + i / 250, 2 + i % 250)}]},
        "status": status
    }))
    .expect("a VMI")
}

/// `n` accepted LogicalInterfaces and VMIs of node `gw1`, their network
/// and the node's PhysicalRouter.
fn objects(n: usize) -> OwnedObjects {
    let router: PhysicalRouter = serde_json::from_value(json!({
        "apiVersion": "trunkline.io/v1alpha1", "kind": "PhysicalRouter",
        "metadata": {"name": NODE, "generation": 1},
        "spec": {"physicalInterfaces": (0..PORTS).map(|p| json!({"name": format!("s{p}")})).collect::<Vec<_>>()},
        "status": accepted(1)
    }))
    .expect("a router");
    let network: VirtualNetwork = serde_json::from_value(json!({
        "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
        "metadata": {"name": "scale", "namespace": "bench", "generation": 1,
                     "labels": {format!("node.trunkline.io/{NODE}"): "g1"}},
        "spec": {"subnets": [{"cidr": "10.128.0.0/16"}]},
        "status": {"conditions": accepted(1)["conditions"], "mplsLabel": 17, "vni": 5000}
    }))
    .expect("a network");
    let lis = (0..n)
        .map(|i| {
            serde_json::from_value::<LogicalInterface>(json!({
                "apiVersion": "trunkline.io/v1alpha1", "kind": "LogicalInterface",
                "metadata": {"name": format!("{NODE}-s{}-{}", i % PORTS, i / PORTS + 1), "generation": 1,
                             "creationTimestamp": "2026-01-01T00:00:00Z",
                             "labels": {format!("node.trunkline.io/{NODE}"): "g1"}},
                "spec": {"physicalRouter": NODE, "physicalInterface": format!("s{}", i % PORTS),
                         "vlan": i / PORTS + 1,
                         "virtualMachineInterface": {"namespace": "bench", "name": format!("s-{i}")}},
                "status": accepted(1)
            }))
            .expect("a logical interface")
        })
        .collect();
    OwnedObjects {
        physical_routers: vec![router],
        logical_interfaces: lis,
        virtual_machine_interfaces: (0..n).map(|i| vmi(i, 0)).collect(),
        virtual_networks: vec![network],
        ..OwnedObjects::default()
    }
}

fn refs<T>(objects: &[T]) -> Vec<&T> {
    objects.iter().collect()
}

fn bench(c: &mut Criterion) {
    let facts = HostFacts::default();
    let inputs = BuildInputs {
        node: NODE,
        facts: &facts,
        policies: &[],
        punt_limit: PuntLimit::default(),
    };
    let mut group = c.benchmark_group("agent");
    group.sample_size(10);
    for n in [4096, 16_384] {
        let owned = objects(n);
        let (routers, lis, vmis, networks) = (
            refs(&owned.physical_routers),
            refs(&owned.logical_interfaces),
            refs(&owned.virtual_machine_interfaces),
            refs(&owned.virtual_networks),
        );
        let objects = Objects {
            physical_routers: &routers,
            logical_interfaces: &lis,
            virtual_machine_interfaces: &vmis,
            virtual_networks: &networks,
            ..Objects::default()
        };
        let mut kept = Kept::default();
        // What the agent's stores hold: each object converted once.
        let snapshot = objects.snapshot();
        let installed = build(snapshot.clone(), &inputs, &mut kept);
        assert_eq!(installed.config.vmis.len(), n, "every VMI held");
        assert_eq!(installed.config.logical_interfaces.len(), n);
        let (tables, rejected) = Tables::compile(&installed.config);
        assert!(rejected.is_empty(), "{rejected:?}");
        // One VMI moved to another address.
        let mut moved_vmis = owned.virtual_machine_interfaces.clone();
        moved_vmis[n / 2] = vmi(n / 2, 200);
        let moved_refs = refs(&moved_vmis);
        let moved = build(
            Objects {
                virtual_machine_interfaces: &moved_refs,
                ..objects
            }
            .snapshot(),
            &inputs,
            &mut kept,
        );
        assert!(!moved.same_tables(&installed), "the change is seen");

        group.bench_function(BenchmarkId::new("convert", n), |b| {
            b.iter(|| black_box(objects.snapshot()))
        });
        group.bench_function(BenchmarkId::new("build", n), |b| {
            b.iter(|| black_box(build(snapshot.clone(), &inputs, &mut kept)))
        });
        let again = build(snapshot.clone(), &inputs, &mut kept);
        group.bench_function(BenchmarkId::new("compare", n), |b| {
            b.iter(|| black_box(again.same_tables(&installed)))
        });
        group.bench_function(BenchmarkId::new("update", n), |b| {
            b.iter(|| black_box(Tables::update(&tables, &installed.config, &moved.config)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
