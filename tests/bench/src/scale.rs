//! Control-plane figures: how long the real operator and agent take to
//! program N logical interfaces and N VMIs applied at once, what one change
//! then costs, what an idle cluster writes, the largest object, and the
//! processes' resident memory at that scale.
//!
//! ```text
//!  the agent's node gets ports s0..s<P-1> (veth pairs in its namespace), P = max(4, N / 4094)
//!  t0 ── apply VirtualNetwork scale (10.128.0.0/16) + N x (VMI s-<i>, LI <node>-s<i%P>-<i/P+1>)
//!        (server-side apply, 64 requests in flight)
//!  t_applied ── the last apply returned               (reported apart: the API server's time)
//!  t_programmed ── every LI and VMI Programmed=True at its generation (the node's
//!                  watermarks passed it, the operator said so)
//!  t_ready ── every one Ready=True
//!  then 100 changes in a row (a VMI's address): apply -> Programmed, each timed
//!  then an idle window: writes counted (every LI, VMI, the network, the router)
//! ```
//!
//! With a BGP peering ([`crate::peering`], `--gobgpd`), the network exports
//! its VMIs' addresses as VPNv4 routes (route target
//! [`crate::peering::EXPORT_RT`]) and the node gets a fabric port (the
//! routes' next hop); FRR's count of routes accepted from the speaker is
//! polled from t0:
//!
//! ```text
//!  t_routes ── FRR holds N VPNv4 routes from the speaker
//!  propagation = t_routes - t_programmed   (issue 17's figure; goal <= 10 s at 16K)
//! ```
//!
//! The objects are followed by watches (one per kind, label
//! `trunkline.io/bench=scale`), not by listing them: at 16K objects a list
//! per poll would load the API server more than the product does.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use trunkline_api::status::Condition;
use trunkline_api::{LogicalInterface, PhysicalRouter, VirtualMachineInterface, VirtualNetwork};

use crate::Error;
use crate::cpu::resident_kib;
use crate::modes::agent::{AgentDevice, NAMESPACE};
use crate::peering::{self, Peering};
use crate::scale_cost;

/// Label value of the scale objects (`trunkline.io/bench`).
const LABEL: &str = "scale";
/// Requests in flight while applying.
const IN_FLIGHT: usize = 64;
/// VLANs per port.
const VLANS: usize = 4094;
/// Ports at least (the issue: 16K instances need four trunk ports).
const MIN_PORTS: usize = 4;
/// Single changes timed after the bulk.
const CHANGES: usize = 100;
/// How long a single change may take.
const CHANGE_LIMIT: Duration = Duration::from_secs(60);
/// The idle window in which writes are counted.
const IDLE_WINDOW: Duration = Duration::from_secs(30);
/// The largest object the issue allows.
pub const SIZE_BOUND: usize = 256 * 1024;

/// What the control-plane measurement found.
#[derive(Clone, Debug, Default)]
pub struct ScaleResult {
    /// Logical interfaces applied (and as many VMIs).
    pub objects: usize,
    /// Trunk ports they are spread over.
    pub ports: usize,
    /// Seconds from the first apply to the last apply's answer.
    pub applied_s: f64,
    /// Seconds from the first apply until every LI and VMI was
    /// Programmed; none if not within the time limit.
    pub programmed_s: Option<f64>,
    /// Seconds from the first apply until every VMI was Programmed (the
    /// speaker advertises a VMI once it is; its logical interface may
    /// come later).
    pub vmis_programmed_s: Option<f64>,
    /// Seconds until every one was Ready.
    pub ready_s: Option<f64>,
    /// The time limit, seconds.
    pub limit_s: u64,
    /// Agent VmRSS before applying, KiB.
    pub agent_rss_before_kib: Option<u64>,
    /// Agent VmRSS once all were programmed (or at the limit), KiB.
    pub agent_rss_after_kib: Option<u64>,
    /// Agent VmHWM (peak) at the end, KiB.
    pub agent_peak_kib: Option<u64>,
    /// Operator VmRSS at the end, KiB.
    pub operator_rss_kib: Option<u64>,
    /// Operator VmHWM at the end, KiB.
    pub operator_peak_kib: Option<u64>,
    /// Size of the PhysicalRouter object (JSON) at the end, bytes.
    pub router_bytes: usize,
    /// The largest object seen (kind and name), and its size in bytes.
    pub largest: Option<(String, usize)>,
    /// Programmed objects counted at the end (LIs + VMIs of the scale set).
    pub programmed_count: usize,
    /// Ready objects counted at the end.
    pub ready_count: usize,
    /// Each single change's time from apply to Programmed, ms (in order).
    pub change_ms: Vec<f64>,
    /// CPU seconds each control-plane process spent during the single
    /// changes.
    pub changes_cpu: Vec<(String, f64)>,
    /// Mutating API requests to trunkline's kinds during them.
    pub changes_requests: scale_cost::Requests,
    /// What the agent and the operator did during them
    /// ([`scale_cost::counters`]), in all.
    pub changes_counters: Vec<(String, f64)>,
    /// Writes seen in the idle window (objects of the scale set, the
    /// network, the router).
    pub idle_writes: Option<usize>,
    /// The idle window, seconds.
    pub idle_window_s: f64,
    /// CPU seconds each control-plane process spent from the first apply
    /// until all were Ready (or the limit).
    pub burst_cpu: Vec<(String, f64)>,
    /// Mutating API requests to trunkline's kinds over the same interval.
    pub burst_requests: scale_cost::Requests,
    /// With a BGP peering: seconds from the first apply until FRR held a
    /// VPNv4 route for every VMI; none if not within the time limit.
    pub routes_s: Option<f64>,
    /// With a BGP peering: the routes FRR held at the end of the burst
    /// (`None`: no peering measured).
    pub routes_count: Option<u64>,
    /// With a BGP peering: seconds from killing gobgpd until FRR held every
    /// route again (all re-added at once by the restarting speaker), or why
    /// not.
    pub readvertise_s: Option<Result<f64, String>>,
    /// Mode (a)'s forwarding runs at the first frame size again, one per
    /// round, with the scale set installed (after the single changes and
    /// the idle window), or why not.
    pub forwarding_at_scale: Option<Result<Vec<crate::report::Sample>, String>>,
}

impl ScaleResult {
    /// Seconds from every VMI being Programmed (as the benchmark's watch
    /// saw it) until FRR held every route (issue 17's route-propagation
    /// figure). Negative when FRR had them all before the benchmark's
    /// watch delivered the last VMI's status: the speaker watches the same
    /// API server.
    pub fn propagation_s(&self) -> Option<f64> {
        Some(self.routes_s? - self.vmis_programmed_s?)
    }

    /// The `q` quantile (0..=1) of the single changes, ms.
    pub fn change_quantile(&self, q: f64) -> Option<f64> {
        let mut sorted = self.change_ms.clone();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
        Some(sorted[index])
    }
}

fn vmi_name(i: usize) -> String {
    format!("s-{i}")
}

fn vmi_mac(i: usize) -> String {
    format!(
        "02:10:00:{:02x}:{:02x}:{:02x}",
        (i >> 16) & 0xff,
        (i >> 8) & 0xff,
        i & 0xff
    )
}

fn vmi_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + 16 + i as u32)
}

/// Ports for `n` logical interfaces.
fn port_count(n: usize) -> usize {
    n.div_ceil(VLANS).max(MIN_PORTS)
}

/// The port and VLAN of logical interface `i` of `ports`.
fn li_port_vlan(i: usize, ports: usize) -> (String, u16) {
    (format!("s{}", i % ports), (i / ports + 1) as u16)
}

/// The generation at which a condition `type_` is True, if it is.
fn true_at(conditions: &[Condition], type_: &str) -> Option<i64> {
    conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
        .and_then(|c| c.observed_generation)
}

/// One followed object.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    generation: i64,
    programmed: Option<i64>,
    ready: Option<i64>,
}

impl Seen {
    fn programmed(&self) -> bool {
        self.programmed == Some(self.generation)
    }

    fn ready(&self) -> bool {
        self.ready == Some(self.generation)
    }
}

/// What the watches saw.
#[derive(Debug, Default)]
struct Followed {
    objects: HashMap<String, Seen>,
    /// Updates received (every write of a followed object).
    updates: usize,
    largest: Option<(String, usize)>,
}

/// Follows the scale objects through watches.
struct Tracker {
    seen: Arc<Mutex<Followed>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Tracker {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Tracker {
    fn start(client: &kube::Client) -> Self {
        let seen = Arc::new(Mutex::new(Followed::default()));
        let config = watcher::Config::default().labels(&format!("trunkline.io/bench={LABEL}"));
        let lis: Api<LogicalInterface> = Api::all(client.clone());
        let vmis: Api<VirtualMachineInterface> = Api::namespaced(client.clone(), NAMESPACE);
        let tasks = vec![
            tokio::spawn(follow(lis, config.clone(), seen.clone(), |li| {
                li.status.as_ref().map(|s| s.conditions.clone())
            })),
            tokio::spawn(follow(vmis, config, seen.clone(), |v| {
                v.status.as_ref().map(|s| s.conditions.clone())
            })),
        ];
        Self { seen, tasks }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Followed> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// (programmed, ready) among `keys`.
    fn counts(&self, keys: &[String]) -> (usize, usize) {
        let seen = self.lock();
        keys.iter()
            .filter_map(|k| seen.objects.get(k))
            .fold((0, 0), |(p, r), s| {
                (p + usize::from(s.programmed()), r + usize::from(s.ready()))
            })
    }

    fn get(&self, key: &str) -> Option<Seen> {
        self.lock().objects.get(key).copied()
    }

    fn updates(&self) -> usize {
        self.lock().updates
    }
}

async fn follow<K>(
    api: Api<K>,
    config: watcher::Config,
    seen: Arc<Mutex<Followed>>,
    conditions: fn(&K) -> Option<Vec<Condition>>,
) where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + serde::Serialize,
    K: Send + Sync + 'static,
    K::DynamicType: Default,
{
    let kind = K::kind(&Default::default()).to_string();
    let stream = watcher(api, config).default_backoff().applied_objects();
    futures::pin_mut!(stream);
    while let Some(object) = stream.next().await {
        let Ok(mut object) = object else { continue };
        object.meta_mut().managed_fields = None;
        let bytes = serde_json::to_vec(&object).map_or(0, |v| v.len());
        let key = format!("{kind}/{}", object.name_any());
        let c = conditions(&object).unwrap_or_default();
        let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.updates += 1;
        if seen.largest.as_ref().is_none_or(|(_, b)| bytes > *b) {
            seen.largest = Some((key.clone(), bytes));
        }
        seen.objects.insert(
            key,
            Seen {
                generation: object.meta().generation.unwrap_or(0),
                programmed: true_at(&c, "Programmed"),
                ready: true_at(&c, "Ready"),
            },
        );
    }
}

/// Gives the agent's node `ports` more trunk ports (veth pairs `sN` /
/// `sNp` in its namespace) and declares them on its router.
async fn add_ports(
    device: &AgentDevice,
    ports: usize,
    limit: usize,
    fabric: bool,
) -> Result<(), Error> {
    let ns = device.netns_name();
    for p in 0..ports {
        let (a, b) = (format!("s{p}"), format!("s{p}p"));
        if crate::netns::run("ip", &["-n", ns, "link", "show", &a]).is_err() {
            crate::netns::run(
                "ip",
                &[
                    "-n", ns, "link", "add", &a, "type", "veth", "peer", "name", &b,
                ],
            )?;
        }
        crate::netns::run("ip", &["-n", ns, "link", "set", &a, "up"])?;
        crate::netns::run("ip", &["-n", ns, "link", "set", &b, "up"])?;
    }
    let mut interfaces = vec![json!({"name": "in"}), json!({"name": "out"})];
    interfaces.extend((0..ports).map(|p| json!({"name": format!("s{p}")})));
    let mut spec = json!({
        "physicalInterfaces": interfaces,
        "interfaceLimit": (limit + 16).min(65536),
    });
    if fabric {
        spec["fabric"] =
            json!({"interface": peering::FABRIC_PORT, "underlayAddress": peering::UNDERLAY});
    }
    device.apply_router_spec(spec).await
}

/// Applies `n` LIs and VMIs for the agent's node and measures; gives up
/// waiting after `limit`. With `peering`, also until FRR holds their
/// routes.
pub async fn measure(
    device: &AgentDevice,
    n: usize,
    limit: Duration,
    peering: Option<&Peering>,
) -> Result<ScaleResult, Error> {
    let ports = port_count(n);
    if n > ports * VLANS || n > 65_000 {
        return Err(Error::Options(format!(
            "--scale {n}: at most 65000 (addresses and MACs of the scale set)"
        )));
    }
    let client = device.client().clone();
    let agent_pid = device.pid();
    let mut result = ScaleResult {
        objects: n,
        ports,
        limit_s: limit.as_secs(),
        idle_window_s: IDLE_WINDOW.as_secs_f64(),
        ..ScaleResult::default()
    };
    add_ports(device, ports, n, peering.is_some()).await?;
    let tracker = Tracker::start(&client);
    tokio::time::sleep(Duration::from_secs(2)).await;
    result.agent_rss_before_kib = agent_pid.and_then(resident_kib).map(|r| r.0);
    eprintln!(
        "[bench] control plane: applying {n} VMIs and {n} logical interfaces over {ports} ports"
    );
    let processes =
        scale_cost::Processes::find(device.control_plane_dir(), device.operator_pid(), agent_pid);
    let cpu_before = processes.seconds();
    let requests_before = scale_cost::requests(&client).await?;
    let t0 = Instant::now();
    let l3vpn = match peering {
        Some(_) => json!({"l3vpn": {"exportRouteTargets": [peering::EXPORT_RT]}}),
        None => json!({}),
    };
    device
        .apply_network_with(LABEL, "10.128.0.0/16", "10.128.0.1", l3vpn)
        .await?;
    let keys: Vec<String> = futures::stream::iter(0..n)
        .map(|i| async move {
            let vmi = vmi_name(i);
            device
                .apply_vmi(&vmi, LABEL, &vmi_mac(i), &vmi_ip(i).to_string())
                .await?;
            let (port, vlan) = li_port_vlan(i, ports);
            device.apply_li(&port, vlan, &vmi, LABEL).await?;
            Ok::<_, Error>([
                format!("VirtualMachineInterface/{vmi}"),
                format!("LogicalInterface/{}", device.li_name(&port, vlan)),
            ])
        })
        .buffer_unordered(IN_FLIGHT)
        .map_ok(|pair| futures::stream::iter(pair.map(Ok::<_, Error>)))
        .try_flatten()
        .try_collect()
        .await?;
    result.applied_s = t0.elapsed().as_secs_f64();
    eprintln!(
        "[bench] control plane: applied in {:.1} s; waiting for the node to program them",
        result.applied_s
    );
    let vmi_keys: Vec<String> = keys
        .iter()
        .filter(|k| k.starts_with("VirtualMachineInterface/"))
        .cloned()
        .collect();
    let mut last_report = Instant::now();
    loop {
        let elapsed = t0.elapsed();
        let (programmed, ready) = tracker.counts(&keys);
        (result.programmed_count, result.ready_count) = (programmed, ready);
        if result.vmis_programmed_s.is_none() && tracker.counts(&vmi_keys).0 == vmi_keys.len() {
            result.vmis_programmed_s = Some(elapsed.as_secs_f64());
        }
        if result.programmed_s.is_none() && programmed == keys.len() {
            result.programmed_s = Some(elapsed.as_secs_f64());
            result.agent_rss_after_kib = agent_pid.and_then(resident_kib).map(|r| r.0);
            eprintln!(
                "[bench] control plane: all programmed after {:.1} s",
                elapsed.as_secs_f64()
            );
        }
        if let Some(peering) = peering.filter(|_| result.routes_s.is_none()) {
            // One vtysh call (about 20 ms) per pass.
            result.routes_count = peering.received();
            if result.routes_count >= Some(n as u64) {
                result.routes_s = Some(t0.elapsed().as_secs_f64());
                eprintln!(
                    "[bench] route propagation: FRR holds all {n} routes after {:.1} s",
                    t0.elapsed().as_secs_f64()
                );
            }
        }
        if result.ready_s.is_none() && ready == keys.len() {
            result.ready_s = Some(elapsed.as_secs_f64());
            eprintln!(
                "[bench] control plane: all Ready after {:.1} s",
                elapsed.as_secs_f64()
            );
        }
        if result.ready_s.is_some() && (peering.is_none() || result.routes_s.is_some()) {
            break;
        }
        if elapsed > limit {
            eprintln!(
                "[bench] control plane: gave up after {} s ({programmed} of {} programmed, {ready} Ready, FRR routes {:?})",
                limit.as_secs(),
                keys.len(),
                result.routes_count,
            );
            break;
        }
        if last_report.elapsed() > Duration::from_secs(15) {
            last_report = Instant::now();
            eprintln!(
                "[bench] control plane: {:.0} s: {programmed} of {} programmed, {ready} Ready, FRR routes {:?}",
                elapsed.as_secs_f64(),
                keys.len(),
                result.routes_count,
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    result.burst_cpu = scale_cost::cpu_between(&cpu_before, &processes.seconds());
    result.burst_requests =
        scale_cost::requests_between(&requests_before, &scale_cost::requests(&client).await?);
    if result.agent_rss_after_kib.is_none() {
        result.agent_rss_after_kib = agent_pid.and_then(resident_kib).map(|r| r.0);
    }

    if result.ready_s.is_some() {
        // One change at a time: a VMI's address, apply -> Programmed.
        eprintln!("[bench] control plane: {CHANGES} single changes");
        let processes = scale_cost::Processes::find(
            device.control_plane_dir(),
            device.operator_pid(),
            agent_pid,
        );
        let (cpu_before, requests_before) =
            (processes.seconds(), scale_cost::requests(&client).await?);
        let counters_before = {
            let (agent, operator) = device.metrics();
            scale_cost::counters(&agent, &operator)
        };
        for k in 0..CHANGES.min(n) {
            let i = k * (n / CHANGES.min(n)).max(1);
            let vmi = vmi_name(i);
            let key = format!("VirtualMachineInterface/{vmi}");
            let started = Instant::now();
            if std::env::var_os("TRUNKLINE_BENCH_LOG").is_some() {
                let unix = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                eprintln!(
                    "[bench] change {k} of {vmi} at unix {:.6}",
                    unix.as_secs_f64()
                );
            }
            let generation = device
                .apply_vmi(&vmi, LABEL, &vmi_mac(i), &vmi_ip(n + k).to_string())
                .await?;
            loop {
                if tracker
                    .get(&key)
                    .is_some_and(|s| s.programmed.is_some_and(|p| p >= generation))
                {
                    result
                        .change_ms
                        .push(started.elapsed().as_secs_f64() * 1000.0);
                    break;
                }
                if started.elapsed() > CHANGE_LIMIT {
                    eprintln!("[bench] control plane: change {k} not programmed in time");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        eprintln!(
            "[bench] control plane: single changes p50 {:?} ms, p99 {:?} ms",
            result.change_quantile(0.5),
            result.change_quantile(0.99)
        );
        result.changes_cpu = scale_cost::cpu_between(&cpu_before, &processes.seconds());
        result.changes_requests =
            scale_cost::requests_between(&requests_before, &scale_cost::requests(&client).await?);
        result.changes_counters = {
            let (agent, operator) = device.metrics();
            scale_cost::counters_between(&counters_before, &scale_cost::counters(&agent, &operator))
        };
        let per = result.change_ms.len().max(1) as f64;
        for (what, n) in &result.changes_counters {
            eprintln!("[bench] control plane: per change: {what} {:.2}", n / per);
        }
        for ((resource, sub, verb), n) in &result.changes_requests {
            eprintln!(
                "[bench] control plane: per change: {verb} {resource}{}{sub} {:.2}",
                if sub.is_empty() { "" } else { "/" },
                *n as f64 / per
            );
        }
        // Idle: count the writes of a window that starts once the last
        // change has settled.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let routers: Api<PhysicalRouter> = Api::all(client.clone());
        let networks: Api<VirtualNetwork> = Api::namespaced(client.clone(), NAMESPACE);
        let versions = || async {
            Ok::<_, Error>((
                routers.get(device.node()).await?.resource_version(),
                networks.get(LABEL).await?.resource_version(),
            ))
        };
        let (updates, before) = (tracker.updates(), versions().await?);
        tokio::time::sleep(IDLE_WINDOW).await;
        let (after_updates, after) = (tracker.updates(), versions().await?);
        result.idle_writes = Some(
            after_updates - updates
                + usize::from(before.0 != after.0)
                + usize::from(before.1 != after.1),
        );
        if let Some(peering) = peering.filter(|_| result.routes_s.is_some()) {
            eprintln!("[bench] route propagation: gobgpd killed, every route again");
            let again = peering.readvertise(n as u64, CHANGE_LIMIT).await;
            if let Ok(s) = &again {
                eprintln!("[bench] route propagation: all {n} routes in FRR again after {s:.1} s");
            }
            result.readvertise_s = Some(again.map_err(|e| e.to_string()));
        }
    }

    let router = Api::<PhysicalRouter>::all(client.clone())
        .get(device.node())
        .await?;
    let mut router = router;
    router.metadata.managed_fields = None;
    result.router_bytes = serde_json::to_vec(&router).map_or(0, |v| v.len());
    result.largest = tracker.lock().largest.clone();
    if result
        .largest
        .as_ref()
        .is_none_or(|(_, b)| result.router_bytes > *b)
    {
        result.largest = Some((
            format!("PhysicalRouter/{}", device.node()),
            result.router_bytes,
        ));
    }
    result.agent_peak_kib = agent_pid.and_then(resident_kib).map(|r| r.1);
    if let Some((rss, peak)) = device.operator_pid().and_then(resident_kib) {
        result.operator_rss_kib = Some(rss);
        result.operator_peak_kib = Some(peak);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn scale_objects_are_distinct_and_fit_their_ports() {
        for n in [64, 4096, 16_384] {
            let ports = port_count(n);
            assert!(ports >= MIN_PORTS && ports * VLANS >= n);
            let mut seen = HashSet::new();
            for i in 0..n {
                let (port, vlan) = li_port_vlan(i, ports);
                assert!((1..=4094).contains(&vlan), "{n}: {vlan}");
                assert!(seen.insert((port, vlan)));
            }
        }
        assert_eq!(port_count(16_384), 5);
        let macs: HashSet<String> = (0..20_000).map(vmi_mac).collect();
        let ips: HashSet<Ipv4Addr> = (0..20_000).map(vmi_ip).collect();
        assert_eq!((macs.len(), ips.len()), (20_000, 20_000));
        assert_eq!(vmi_ip(0), Ipv4Addr::new(10, 128, 0, 16));
        let r = ScaleResult {
            change_ms: (1..=100).map(f64::from).collect(),
            ..ScaleResult::default()
        };
        assert_eq!(r.change_quantile(0.5), Some(50.0));
        assert_eq!(r.change_quantile(0.99), Some(99.0));
        let routes = |programmed, routes| ScaleResult {
            vmis_programmed_s: programmed,
            routes_s: routes,
            ..ScaleResult::default()
        };
        assert_eq!(routes(Some(3.0), Some(4.5)).propagation_s(), Some(1.5));
        assert_eq!(routes(Some(3.0), Some(2.5)).propagation_s(), Some(-0.5));
        assert_eq!(routes(Some(3.0), None).propagation_s(), None);
        assert_eq!(routes(None, Some(3.0)).propagation_s(), None);
    }
}
