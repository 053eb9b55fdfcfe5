//! Asking the API server: create a PacketTrace, wait for the node's answer
//! with a deadline; read a PhysicalRouter.

use std::time::Duration;

use futures::StreamExt;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use trunkline_api::packet_trace::{
    ObserveFilter, PacketTrace, PacketTraceSpec, READY, TraceMode, TracedPacket, TracedProtocol,
};
use trunkline_api::{InterfaceName, IpAddress, MacAddress, ObjectName, PhysicalRouter};

use crate::Error;
use crate::cli::{ObserveArgs, Protocol, TraceArgs};

fn api_error(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Api { what, source }
}

/// The PacketTrace spec `trace` describes.
pub fn trace_spec(args: &TraceArgs) -> PacketTraceSpec {
    PacketTraceSpec {
        node: ObjectName(args.node.clone()),
        mode: TraceMode::Trace,
        packet: Some(TracedPacket {
            port: InterfaceName(args.port.clone()),
            vlan: args.vlan,
            src_mac: MacAddress(args.src_mac.clone()),
            dst_mac: args.dst_mac.clone().map(MacAddress),
            src_ip: IpAddress(args.src_ip.clone()),
            dst_ip: IpAddress(args.dst_ip.clone()),
            protocol: match args.protocol {
                Protocol::Icmp => TracedProtocol::ICMP,
                Protocol::Udp => TracedProtocol::UDP,
                Protocol::Tcp => TracedProtocol::TCP,
                Protocol::Arp => TracedProtocol::ARP,
            },
            src_port: args.src_port,
            dst_port: args.dst_port,
            icmp_type: args.icmp_type,
            ttl: args.ttl,
        }),
        filter: None,
        duration_seconds: None,
        max_samples: None,
    }
}

/// The PacketTrace spec `observe` describes.
pub fn observe_spec(args: &ObserveArgs) -> PacketTraceSpec {
    let filter = ObserveFilter {
        port: args.port.clone().map(InterfaceName),
        vlan: args.vlan,
        ip: args.ip.clone().map(IpAddress),
        drops_only: args.drops_only,
    };
    PacketTraceSpec {
        node: ObjectName(args.node.clone()),
        mode: TraceMode::Observe,
        packet: None,
        filter: (filter != ObserveFilter::default()).then_some(filter),
        duration_seconds: Some(args.duration),
        max_samples: Some(args.max_samples),
    }
}

/// Whether the node has answered (Ready True), or refused (Ready False
/// with a reason other than Observing).
fn settled(trace: &PacketTrace) -> Option<Result<(), (String, String)>> {
    let status = trace.status.as_ref()?;
    let ready = status.conditions.iter().find(|c| c.type_ == READY)?;
    match ready.status.as_str() {
        "True" => Some(Ok(())),
        _ if ready.reason == "Observing" => None,
        _ => Some(Err((ready.reason.clone(), ready.message.clone()))),
    }
}

/// Create a PacketTrace and wait up to `seconds` for its answer.
async fn ask(
    client: &Client,
    spec: PacketTraceSpec,
    seconds: u64,
    keep: bool,
) -> Result<(String, PacketTrace), Error> {
    let api: Api<PacketTrace> = Api::all(client.clone());
    let node = spec.node.to_string();
    let mut object = PacketTrace::new("", spec);
    object.metadata.name = None;
    object.metadata.generate_name = Some(format!("{node}-"));
    let created = api
        .create(&PostParams::default(), &object)
        .await
        .map_err(api_error(format!("creating a PacketTrace for node {node}")))?;
    let name = created.name_any();
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let stream = watcher(api.clone(), config).applied_objects();
    let wait = async {
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            let Ok(trace) = event else { continue };
            if let Some(result) = settled(&trace) {
                return Some((trace, result));
            }
        }
        None
    };
    let answer = tokio::time::timeout(Duration::from_secs(seconds), wait).await;
    let (trace, result) = match answer {
        Ok(Some(answer)) => answer,
        _ => {
            return Err(Error::Timeout {
                node,
                name,
                seconds,
            });
        }
    };
    if !keep {
        // The operator collects what is left after its time to live.
        let _ = api.delete(&name, &DeleteParams::default()).await;
    }
    match result {
        Ok(()) => Ok((name, trace)),
        Err((reason, message)) => Err(Error::Refused {
            node,
            reason,
            message,
        }),
    }
}

/// `trace`: the answered PacketTrace.
pub async fn trace(client: &Client, args: &TraceArgs) -> Result<(String, PacketTrace), Error> {
    ask(client, trace_spec(args), args.timeout, args.keep).await
}

/// `observe`: the PacketTrace once its samples are in.
pub async fn observe(client: &Client, args: &ObserveArgs) -> Result<(String, PacketTrace), Error> {
    if !(1..=300).contains(&args.duration) {
        return Err(Error::Flag(format!(
            "--duration {}: must be 1 to 300 seconds",
            args.duration
        )));
    }
    let deadline = u64::from(args.duration) + 20;
    ask(client, observe_spec(args), deadline, args.keep).await
}

/// `status`: the node's PhysicalRouter.
pub async fn router(client: &Client, node: &str) -> Result<PhysicalRouter, Error> {
    Api::<PhysicalRouter>::all(client.clone())
        .get(node)
        .await
        .map_err(api_error(format!("reading PhysicalRouter {node}")))
}
