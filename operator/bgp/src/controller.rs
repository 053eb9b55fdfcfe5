//! The Kubernetes side of the speaker: watches what export and import need,
//! and, while this replica leads, makes gobgpd hold the desired peers and
//! routes, turns learned routes into DCGateways and reports each BGPPeer.
//!
//! ```text
//!   watches (reflector stores): VirtualNetwork, VirtualMachineInterface,
//!   LogicalInterface, PhysicalRouter, GatewayHAGroup (status.activeMember),
//!   VirtualGateway (status.nodes), BGPPeer, DCGateway (ours, by label)
//!        │ any change, or every --resync
//!        v
//!   pass():  peers   = BGPPeers (+ Secret passwords)    ──> Speaker::sync_peers
//!            exports = vpn::exports(networks, VMIs,
//!                                   virtual gateways) ──> Speaker::sync_paths
//!            learned = Speaker::learned()
//!            vpn::imports(learned) ──> one DCGateway per next hop
//!                                      `bgp-<address>`, label
//!                                      trunkline.io/managed-by=trunkline-bgp
//!            Speaker::peer_reports() ──> BGPPeer status (only on change)
//!   each turn ──> Health (applied / failed / standby) ──> /readyz, /healthz
//! ```
//!
//! Learned routes reach the nodes through the DCGateway kind (north-south):
//! the operator validates each, labels it for the nodes holding its
//! networks, and the agents install its routes in the VRFs and accept its
//! MPLS over UDP, exactly as for a declared DC gateway.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::{Notify, watch};
use trunkline_api::{
    BGPPeer, DCGateway, GatewayHAGroup, LogicalInterface, PhysicalRouter, VirtualGateway,
    VirtualMachineInterface, VirtualNetwork,
};
use trunkline_model::ha::HaLayout;
use trunkline_model::{NamespacedName, Placement, Snapshot};

use crate::gobgp::PeerConfig;
use crate::health::Health;
use crate::speaker::{PeerReport, Speaker};
use crate::vpn::{self, VpnGateway, VpnNetwork, VpnVmi};

/// The field manager of everything this process writes.
pub const FIELD_MANAGER: &str = "trunkline-bgp";
/// The label on the DCGateways this process makes from learned routes.
pub const MANAGED_BY: &str = "trunkline.io/managed-by";

/// What the controller needs besides the speaker.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Namespace of BGPPeer password Secrets.
    pub namespace: String,
    /// Default local AS number.
    pub asn: u32,
    /// Our BGP identifier (and the default route distinguishers' admin).
    pub router_id: Ipv4Addr,
    /// Longest pause between two passes.
    pub resync: Duration,
}

/// The watched objects.
#[derive(Clone)]
struct Stores {
    networks: Store<VirtualNetwork>,
    vmis: Store<VirtualMachineInterface>,
    lis: Store<LogicalInterface>,
    routers: Store<PhysicalRouter>,
    groups: Store<GatewayHAGroup>,
    gateways: Store<VirtualGateway>,
    peers: Store<BGPPeer>,
}

fn watch_into<K>(api: Api<K>, config: watcher::Config, changed: Arc<Notify>) -> Store<K>
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, config))
        .default_backoff()
        .touched_objects();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            if let Err(e) = event {
                tracing::warn!(error = %e, "watch failed; retrying");
            }
            changed.notify_one();
        }
    });
    reader
}

/// Runs the controller until `shutdown` resolves: passes while `leading`
/// is true, the speaker stopped while it is false; each turn tells
/// `health` how it went.
pub async fn run(
    client: Client,
    settings: Settings,
    mut speaker: Speaker,
    health: Health,
    mut leading: watch::Receiver<bool>,
    shutdown: impl Future<Output = ()>,
) {
    let changed = Arc::new(Notify::new());
    let config = watcher::Config::default();
    let stores = Stores {
        networks: watch_into(Api::all(client.clone()), config.clone(), changed.clone()),
        vmis: watch_into(Api::all(client.clone()), config.clone(), changed.clone()),
        lis: watch_into(Api::all(client.clone()), config.clone(), changed.clone()),
        routers: watch_into(Api::all(client.clone()), config.clone(), changed.clone()),
        groups: watch_into(Api::all(client.clone()), config.clone(), changed.clone()),
        gateways: watch_into(Api::all(client.clone()), config.clone(), changed.clone()),
        peers: watch_into(Api::all(client.clone()), config, changed.clone()),
    };
    let mut state = PassState::default();
    futures::pin_mut!(shutdown);
    loop {
        let leads = *leading.borrow();
        if leads {
            if !speaker.running() {
                // Not ready while gobgpd is (re)started: its API may take
                // a while to answer, or never.
                health.restarting();
            }
            match pass(&client, &settings, &stores, &mut speaker, &mut state).await {
                Ok(()) => health.applied(),
                Err(e) => {
                    tracing::warn!(error = %e, "pass failed; the speaker is restarted on the next one");
                    health.failed(e.to_string());
                    speaker.failed();
                }
            }
        } else {
            if speaker.pid().is_some() {
                tracing::info!("not leading: stopping gobgpd");
                speaker.stop().await;
                state = PassState::default();
            }
            health.standby();
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = changed.notified() => {
                // Let a burst of events settle into one pass.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ = leading.changed() => {}
            _ = tokio::time::sleep(settings.resync) => {}
        }
    }
    speaker.stop().await;
}

/// What one pass remembers for the next.
#[derive(Default)]
struct PassState {
    /// The DCGateways we last applied, by name, with their networks.
    gateways: Option<BTreeMap<String, serde_json::Value>>,
    /// The BGPPeer statuses last written, by name.
    statuses: BTreeMap<String, serde_json::Value>,
    /// Passwords read from Secrets, with when.
    passwords: BTreeMap<(String, String), (Option<String>, Instant)>,
}

/// Any failure of a pass.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// The speaker failed.
    #[error(transparent)]
    Speaker(#[from] crate::speaker::SpeakerError),
    /// The API server refused a write.
    #[error("{what}: {source}")]
    Kube {
        /// What was written.
        what: String,
        /// The cause.
        source: kube::Error,
    },
}

async fn pass(
    client: &Client,
    settings: &Settings,
    stores: &Stores,
    speaker: &mut Speaker,
    state: &mut PassState,
) -> Result<(), PassError> {
    if speaker.ensure_running().await? {
        // A new gobgpd has nothing: everything is pushed again below.
        tracing::info!(
            starts = speaker.starts(),
            "pushing every peer and route to gobgpd"
        );
    }
    let peers = stores.peers.state();
    let mut desired_peers = BTreeMap::new();
    let mut peer_problems: BTreeMap<String, (String, String)> = BTreeMap::new();
    let claims: Vec<(String, Option<Timestamp>, IpAddr)> = peers
        .iter()
        .filter_map(|p| {
            let address = p.spec.address.as_str().parse().ok()?;
            let created = p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            Some((p.name_any(), created, address))
        })
        .collect();
    for (name, (owner, address)) in address_conflicts(&claims) {
        peer_problems.insert(
            name,
            (
                "AddressConflict".to_owned(),
                format!(
                    "spec.address {address} is already BGPPeer {owner}'s (an older object): this one is not configured; delete it or give it another address"
                ),
            ),
        );
    }
    for peer in &peers {
        if peer_problems.contains_key(&peer.name_any()) {
            continue;
        }
        match peer_config(client, settings, peer, state).await {
            Ok(config) => {
                desired_peers.insert(config.address, config);
            }
            Err((reason, message)) => {
                peer_problems.insert(peer.name_any(), (reason, message));
            }
        }
    }
    speaker.sync_peers(&desired_peers).await?;

    let routers = stores.routers.state();
    let (networks, vmis, own) = inventory(
        &routers,
        &stores.lis.state(),
        &stores.vmis.state(),
        &stores.networks.state(),
        &stores.groups.state(),
    );
    let gateways = vpn_gateways(&stores.gateways.state(), &routers);
    let exports = vpn::exports(&networks, &vmis, &gateways, settings.router_id);
    speaker.sync_paths(&exports).await?;

    let learned = speaker.learned().await?;
    let imports = vpn::imports(&learned, &networks, &own);
    apply_gateways(client, imports, state).await?;

    let reports = speaker.peer_reports().await?;
    for peer in &peers {
        let status = peer_status(
            peer,
            &desired_peers,
            &reports,
            peer_problems.get(&peer.name_any()),
        );
        write_peer_status(client, peer, status, state).await?;
    }
    Ok(())
}

/// The networks with L3VPN settings, the VMIs with their node's address,
/// and our nodes' underlay addresses. A VMI held by several nodes (gateway
/// HA) is advertised from the group's active member (`status.activeMember`,
/// which the operator writes from the members' reports), so that a
/// failover moves its routes' next hop.
fn inventory(
    routers: &[Arc<PhysicalRouter>],
    lis: &[Arc<LogicalInterface>],
    vmis: &[Arc<VirtualMachineInterface>],
    networks: &[Arc<VirtualNetwork>],
    groups: &[Arc<GatewayHAGroup>],
) -> (Vec<VpnNetwork>, Vec<VpnVmi>, BTreeSet<IpAddr>) {
    let snapshot = Snapshot {
        physical_routers: routers
            .iter()
            .map(|r| Arc::new(trunkline_model::from_api::physical_router(r)))
            .collect(),
        logical_interfaces: lis
            .iter()
            .map(|l| Arc::new(trunkline_model::from_api::logical_interface(l)))
            .collect(),
        virtual_machine_interfaces: vmis
            .iter()
            .map(|v| Arc::new(trunkline_model::from_api::virtual_machine_interface(v)))
            .collect(),
        gateway_ha_groups: groups
            .iter()
            .map(|g| Arc::new(trunkline_model::from_api::gateway_ha_group(g)))
            .collect(),
        ..Snapshot::default()
    };
    let placement = Placement::from_status(&snapshot);
    let layout = HaLayout::from_status(&snapshot);
    let active: BTreeMap<String, String> = groups
        .iter()
        .filter_map(|g| {
            let member = g.status.as_ref()?.active_member.clone()?;
            Some((g.name_any(), member))
        })
        .collect();
    let own: BTreeSet<IpAddr> = snapshot
        .physical_routers
        .iter()
        .filter_map(|r| r.underlay_address())
        .collect();
    let networks = networks.iter().filter_map(|n| vpn_network(n)).collect();
    let vmis = vmis
        .iter()
        .zip(&snapshot.virtual_machine_interfaces)
        .map(|(v, model)| {
            let name = model.name();
            let active_member = layout
                .group_of_vmi(&name)
                .and_then(|g| active.get(&g.name))
                .map(String::as_str);
            let next_hop = vpn::advertising_node(placement.vmi_nodes(&name), active_member)
                .and_then(|node| placement.underlay_address(node));
            let programmed = v.status.as_ref().is_some_and(|s| {
                s.conditions.iter().any(|c| {
                    c.type_ == "Programmed"
                        && c.status == "True"
                        && c.observed_generation == v.metadata.generation
                })
            });
            VpnVmi {
                network: model.network_name(),
                name,
                ips: model.ips.clone(),
                label: model.mpls_label,
                programmed,
                next_hop,
            }
        })
        .collect();
    (networks, vmis, own)
}

/// The virtual gateways, each with the underlay address of the first node
/// (by name) on which it is Programmed (its status, written from the
/// nodes' reports): the route's next hop, where the VRF reaches its
/// interface.
fn vpn_gateways(
    gateways: &[Arc<VirtualGateway>],
    routers: &[Arc<PhysicalRouter>],
) -> Vec<VpnGateway> {
    let underlay: BTreeMap<String, IpAddr> = routers
        .iter()
        .filter_map(|r| {
            let model = trunkline_model::from_api::physical_router(r);
            Some((r.name_any(), model.underlay_address()?))
        })
        .collect();
    gateways
        .iter()
        .map(|g| {
            let model = trunkline_model::from_api::virtual_gateway(g);
            let programmed: BTreeSet<&str> = g
                .status
                .iter()
                .flat_map(|s| &s.nodes)
                .filter(|n| n.state == "Programmed")
                .map(|n| n.node.as_str())
                .collect();
            let next_hop = model
                .nodes
                .iter()
                .filter(|n| programmed.contains(n.as_str()))
                .find_map(|n| underlay.get(n).copied());
            VpnGateway {
                network: model.network.clone(),
                prefixes: model
                    .subnets
                    .iter()
                    .copied()
                    .chain(model.effective_routes())
                    .collect(),
                next_hop,
            }
        })
        .collect()
}

/// A network's L3VPN settings, when it has any (values the API server let
/// through but we cannot read are logged and left out).
fn vpn_network(network: &VirtualNetwork) -> Option<VpnNetwork> {
    let l3vpn = network.spec.l3vpn.as_ref()?;
    let name = NamespacedName::new(network.namespace().unwrap_or_default(), network.name_any());
    let targets = |list: &[trunkline_api::RouteTarget]| {
        list.iter()
            .filter_map(|t| match t.as_str().parse() {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(network = %name, error = %e, "route target left out");
                    None
                }
            })
            .collect()
    };
    let status = network.status.as_ref();
    let model = trunkline_model::from_api::virtual_network(network);
    Some(VpnNetwork {
        route_distinguisher: l3vpn
            .route_distinguisher
            .as_ref()
            .and_then(|rd| rd.as_str().parse().ok()),
        export_targets: targets(&l3vpn.export_route_targets),
        import_targets: targets(&l3vpn.import_route_targets),
        vni: status.and_then(|s| s.vni),
        encapsulation: model.encapsulation_in_effect(),
        subnets: model.subnets.iter().map(|s| s.prefix).collect(),
        routed_label: model.mpls_label.and_then(trunkline_model::routed_label),
        name,
    })
}

/// The BGPPeers (name, creation time, address) that name an address an
/// older one already names (the oldest, then the first by name, keeps it),
/// each with that owner and the address: one session per address is all
/// gobgpd can hold.
fn address_conflicts(
    claims: &[(String, Option<Timestamp>, IpAddr)],
) -> BTreeMap<String, (String, IpAddr)> {
    let mut by_address: BTreeMap<IpAddr, Vec<(&Option<Timestamp>, &String)>> = BTreeMap::new();
    for (name, created, address) in claims {
        by_address
            .entry(*address)
            .or_default()
            .push((created, name));
    }
    let mut out = BTreeMap::new();
    for (address, mut claimants) in by_address {
        // A missing creation time (never from the API server) sorts last.
        claimants.sort_by_key(|(created, name)| (created.is_none(), **created, *name));
        let owner = claimants[0].1;
        for (_, name) in &claimants[1..] {
            out.insert((*name).clone(), (owner.clone(), address));
        }
    }
    out
}

/// The session configuration of `peer`, or why it cannot be configured.
async fn peer_config(
    client: &Client,
    settings: &Settings,
    peer: &BGPPeer,
    state: &mut PassState,
) -> Result<PeerConfig, (String, String)> {
    let address: IpAddr = peer.spec.address.as_str().parse().map_err(|_| {
        (
            "Invalid".to_owned(),
            format!(
                "spec.address {:?} is not an IP address",
                peer.spec.address.as_str()
            ),
        )
    })?;
    let families = &peer.spec.address_families;
    let has = |f| families.is_empty() || families.contains(&f);
    let timers = peer.spec.timers.unwrap_or_default();
    let password = match &peer.spec.password_secret_ref {
        None => String::new(),
        Some(r) => {
            let key = (r.name.clone(), r.key.clone());
            let fresh = state
                .passwords
                .get(&key)
                .filter(|(_, at)| at.elapsed() < Duration::from_secs(30))
                .map(|(p, _)| p.clone());
            let value = match fresh {
                Some(v) => v,
                None => {
                    let secrets: Api<Secret> = Api::namespaced(client.clone(), &settings.namespace);
                    let value = secrets.get_opt(&r.name).await.ok().flatten().and_then(|s| {
                        s.data.and_then(|d| {
                            d.get(&r.key)
                                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                        })
                    });
                    state.passwords.insert(key, (value.clone(), Instant::now()));
                    value
                }
            };
            value.ok_or_else(|| {
                (
                    "SecretNotFound".to_owned(),
                    format!(
                        "spec.passwordSecretRef: Secret {}/{} has no key {:?}",
                        settings.namespace, r.name, r.key
                    ),
                )
            })?
        }
    };
    Ok(PeerConfig {
        address,
        peer_asn: peer.spec.peer_asn,
        local_asn: peer.spec.local_asn.unwrap_or(settings.asn),
        ipv4_vpn: has(trunkline_api::bgp_peer::AddressFamily::Ipv4Vpn),
        ipv6_vpn: has(trunkline_api::bgp_peer::AddressFamily::Ipv6Vpn),
        timers: (
            timers.hold_time_seconds.unwrap_or(90),
            timers.keepalive_seconds.unwrap_or(30),
            timers.connect_retry_seconds.unwrap_or(5),
        ),
        password,
    })
}

/// The DCGateway name for next hop `address`.
fn gateway_name(address: IpAddr) -> String {
    format!("bgp-{}", address.to_string().replace(['.', ':'], "-"))
}

async fn apply_gateways(
    client: &Client,
    imports: BTreeMap<IpAddr, BTreeMap<NamespacedName, BTreeSet<trunkline_model::LabelledPrefix>>>,
    state: &mut PassState,
) -> Result<(), PassError> {
    let api: Api<DCGateway> = Api::all(client.clone());
    let kube = |what: String| move |source| PassError::Kube { what, source };
    let mut desired = BTreeMap::new();
    for (address, networks) in imports {
        let networks: Vec<serde_json::Value> = networks
            .into_iter()
            .map(|(network, routes)| {
                json!({"namespace": network.namespace, "name": network.name,
                       "routes": routes.iter().map(|r| json!({"prefix": r.prefix.to_string(), "label": r.label})).collect::<Vec<_>>()})
            })
            .collect();
        let name = gateway_name(address);
        desired.insert(
            name.clone(),
            json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "DCGateway",
                   "metadata": {"name": name, "labels": {MANAGED_BY: FIELD_MANAGER}},
                   "spec": {"address": address.to_string(), "encapsulation": "MPLSoUDP", "networks": networks}}),
        );
    }
    let previous = match state.gateways.take() {
        Some(previous) => previous,
        None => {
            // First pass: whatever a previous leader left.
            let list = api
                .list(&ListParams::default().labels(&format!("{MANAGED_BY}={FIELD_MANAGER}")))
                .await
                .map_err(kube("listing our DCGateways".into()))?;
            list.items
                .into_iter()
                .map(|g| (g.name_any(), serde_json::Value::Null))
                .collect()
        }
    };
    for name in previous.keys().filter(|n| !desired.contains_key(*n)) {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => tracing::info!(gateway = name, "withdrawn: DCGateway deleted"),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => {
                return Err(PassError::Kube {
                    what: format!("deleting DCGateway {name}"),
                    source: e,
                });
            }
        }
    }
    for (name, object) in &desired {
        if previous.get(name) == Some(object) {
            continue;
        }
        api.patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(object),
        )
        .await
        .map_err(kube(format!("applying DCGateway {name}")))?;
        tracing::info!(gateway = name, spec = %object["spec"], "learned routes applied as a DCGateway");
    }
    state.gateways = Some(desired);
    Ok(())
}

/// The status of `peer`: its session and conditions.
fn peer_status(
    peer: &BGPPeer,
    configured: &BTreeMap<IpAddr, PeerConfig>,
    reports: &BTreeMap<IpAddr, PeerReport>,
    problem: Option<&(String, String)>,
) -> serde_json::Value {
    let generation = peer.metadata.generation;
    let address = peer.spec.address.as_str();
    // A peer not configured (another one's address, a missing Secret)
    // reports no session, not the one of another object.
    let report = address.parse::<IpAddr>().ok().and_then(|a| {
        (problem.is_none() && configured.contains_key(&a))
            .then(|| reports.get(&a))
            .flatten()
    });
    let (accepted, ready): ((&str, &str, String), (&str, &str, String)) = match (problem, report) {
        (Some((reason, message)), _) => (
            ("False", reason, message.clone()),
            ("False", reason, message.clone()),
        ),
        (None, None) => (
            ("True", "Ok", "configured on the speaker".into()),
            (
                "False",
                "Pending",
                "the speaker has not reported the session yet".into(),
            ),
        ),
        (None, Some(r)) => {
            let accepted = ("True", "Ok", "configured on the speaker".to_owned());
            let ready = if r.state == "Established" {
                (
                    "True",
                    "Established",
                    format!("session with {address} established"),
                )
            } else if let Some(error) = r.last_error.as_ref().filter(|e| {
                let e = e.to_ascii_lowercase();
                e.contains("mismatch") || e.contains("bad peer as") || e.contains("subcode=2")
            }) {
                (
                    "False",
                    "PeerASMismatch",
                    format!(
                        "the session with {address} was refused for its AS number (spec.peerASN {} / local AS): {}",
                        peer.spec.peer_asn,
                        error.chars().take(300).collect::<String>()
                    ),
                )
            } else if r.opens_received == 0 {
                (
                    "False",
                    "PeerUnreachable",
                    format!(
                        "no BGP session with {address}:179 (state {}): the peer is unreachable or does not accept a session from us",
                        r.state
                    ),
                )
            } else {
                (
                    "False",
                    "SessionDown",
                    format!(
                        "session with {address} is {}{}",
                        r.state,
                        r.last_error
                            .as_ref()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default()
                    ),
                )
            };
            (accepted, ready)
        }
    };
    json!({
        "observedGeneration": generation,
        "sessionState": report.map(|r| r.state.clone()),
        "routesSent": report.map(|r| r.sent),
        "routesReceived": report.map(|r| r.received),
        "conditions": [
            {"type": "Accepted", "status": accepted.0, "reason": accepted.1, "message": accepted.2, "observedGeneration": generation},
            {"type": "Ready", "status": ready.0, "reason": ready.1, "message": ready.2, "observedGeneration": generation},
        ],
    })
}

async fn write_peer_status(
    client: &Client,
    peer: &BGPPeer,
    status: serde_json::Value,
    state: &mut PassState,
) -> Result<(), PassError> {
    let name = peer.name_any();
    if state.statuses.get(&name) == Some(&status) {
        return Ok(());
    }
    // Conditions keep their transition time while their status holds.
    let now = Time(Timestamp::now());
    let old: Vec<Condition> = peer
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut body = status.clone();
    if let Some(conditions) = body["conditions"].as_array_mut() {
        for c in conditions {
            let same = old
                .iter()
                .find(|o| o.type_ == c["type"] && o.status == c["status"]);
            let time = same.map_or(now.clone(), |o| o.last_transition_time.clone());
            c["lastTransitionTime"] = serde_json::to_value(time).unwrap_or_default();
        }
    }
    let api: Api<BGPPeer> = Api::all(client.clone());
    let patch = json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "BGPPeer", "status": body});
    api.patch_status(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|source| PassError::Kube {
        what: format!("BGPPeer {name} status"),
        source,
    })?;
    state.statuses.insert(name, status);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// An `Accepted=True` (and `Programmed=True`) status at generation 1.
    fn accepted(mut status: Value) -> Value {
        let condition = |type_: &str| {
            json!({"type": type_, "status": "True", "reason": "Ok", "message": "",
                   "observedGeneration": 1, "lastTransitionTime": "2026-11-30T00:00:00Z"})
        };
        status["conditions"] = json!([condition("Accepted"), condition("Programmed")]);
        status
    }

    fn object<K: serde::de::DeserializeOwned>(value: Value) -> Arc<K> {
        Arc::new(serde_json::from_value(value).expect("a valid object"))
    }

    fn meta(name: &str, namespace: Option<&str>) -> Value {
        let mut meta = json!({"name": name, "generation": 1,
                              "creationTimestamp": "2026-11-30T00:00:00Z"});
        if let Some(ns) = namespace {
            meta["namespace"] = json!(ns);
        }
        meta
    }

    /// VMI `t/v1` bound on port eth1 of gw1 and of gw2, members of group
    /// `g` whose status names `active` as its active member; the next hop
    /// its route would have.
    fn next_hop(active: Option<&str>) -> Option<IpAddr> {
        let routers: Vec<Arc<PhysicalRouter>> = [("gw1", "10.3.0.1"), ("gw2", "10.3.0.2")]
            .iter()
            .map(|(name, address)| {
                object(
                    json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "PhysicalRouter",
                    "metadata": meta(name, None),
                    "spec": {"physicalInterfaces": [{"name": "eth1"}],
                             "fabric": {"interface": "eth0", "underlayAddress": address}}}),
                )
            })
            .collect();
        let lis: Vec<Arc<LogicalInterface>> = ["gw1", "gw2"]
            .iter()
            .map(|router| {
                object(
                    json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "LogicalInterface",
                    "metadata": meta(&format!("{router}-eth1-100"), None),
                    "spec": {"physicalRouter": router, "physicalInterface": "eth1", "vlan": 100,
                             "virtualMachineInterface": {"namespace": "t", "name": "v1"}},
                    "status": accepted(json!({}))}),
                )
            })
            .collect();
        let vmis: Vec<Arc<VirtualMachineInterface>> = vec![object(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
            "metadata": meta("v1", Some("t")),
            "spec": {"virtualNetwork": "vpn", "macAddress": "02:00:00:00:00:01",
                     "ips": [{"address": "192.168.40.11"}]},
            "status": accepted(json!({"mplsLabel": 17}))}))];
        let mut group_status = accepted(json!({}));
        if let Some(active) = active {
            group_status["activeMember"] = json!(active);
        }
        let groups: Vec<Arc<GatewayHAGroup>> = vec![object(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "GatewayHAGroup",
            "metadata": meta("g", None),
            "spec": {"mode": "Fast", "members": [
                {"physicalRouter": "gw1", "physicalInterface": "eth1"},
                {"physicalRouter": "gw2", "physicalInterface": "eth1"}]},
            "status": group_status}))];
        let (_, vmis, own) = inventory(&routers, &lis, &vmis, &[], &groups);
        assert_eq!(own.len(), 2);
        assert_eq!(vmis.len(), 1);
        assert!(vmis[0].programmed);
        assert_eq!(vmis[0].label, Some(17));
        vmis[0].next_hop
    }

    #[test]
    fn the_oldest_peer_keeps_an_address_the_later_ones_conflict() {
        let at = |s: &str| Some(s.parse::<Timestamp>().expect("time"));
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let claims = vec![
            (
                "b-later".to_owned(),
                at("2026-11-30T00:00:02Z"),
                ip("10.3.0.200"),
            ),
            (
                "z-first".to_owned(),
                at("2026-11-30T00:00:01Z"),
                ip("10.3.0.200"),
            ),
            (
                "a-same-time".to_owned(),
                at("2026-11-30T00:00:02Z"),
                ip("10.3.0.200"),
            ),
            (
                "alone".to_owned(),
                at("2026-11-30T00:00:03Z"),
                ip("10.3.0.201"),
            ),
            (
                "v6".to_owned(),
                at("2026-11-30T00:00:01Z"),
                ip("2001:db8::1"),
            ),
            (
                "v6-long".to_owned(),
                at("2026-11-30T00:00:05Z"),
                ip("2001:db8:0::0:1"),
            ),
        ];
        let conflicts = address_conflicts(&claims);
        let owner = |name: &str| conflicts.get(name).map(|(o, _)| o.as_str());
        assert_eq!(owner("b-later"), Some("z-first"));
        assert_eq!(owner("a-same-time"), Some("z-first"));
        assert_eq!(owner("z-first"), None, "the oldest keeps it");
        assert_eq!(owner("alone"), None);
        assert_eq!(
            owner("v6-long"),
            Some("v6"),
            "the same address, written otherwise"
        );
        assert_eq!(conflicts.len(), 3);
    }

    #[test]
    fn a_vmi_of_an_ha_group_is_advertised_from_its_active_member() {
        let gw1: IpAddr = "10.3.0.1".parse().expect("ip");
        let gw2: IpAddr = "10.3.0.2".parse().expect("ip");
        assert_eq!(next_hop(Some("gw2")), Some(gw2));
        assert_eq!(next_hop(Some("gw1")), Some(gw1), "moves with a failover");
        assert_eq!(
            next_hop(None),
            Some(gw1),
            "no active member: the first node"
        );
    }
}
