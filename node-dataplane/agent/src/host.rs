//! The host thread: everything the agent does to or reads from the node's
//! network stack through netlink, off the forwarding thread (which only
//! moves frames).
//!
//! ```text
//!  every plan change, and every RETRY while something failed:
//!     virtual gateways: remove undeclared taps, configure declared ones, IP forwarding
//!  every LINKS:   link state of each open port          -> Control::set_link
//!  every LINKS:   fabric interface MAC and MTU          -> FabricFacts (wakes the compile loop on change)
//!  every LINKS:   the host's routes out of the fabric   -> Fabric::routes (likewise)
//!  every RESOLVE: underlay next hop of each tunnel peer -> Tables::set_next_hop_mac (no rebuild)
//!  every tick:    fabric next hops the fast path asked for (SNAT, IP fabric
//!                 forwarding) -> NeighbourCache::resolve; every RESOLVE: refreshed
//!  at start:      SNAT ports kept off the host's ephemeral range (ip_local_reserved_ports)
//! ```

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::control::Control;
use crate::hostnet::{FabricFacts, HostNetwork};

/// How often failed virtual gateway set-ups are retried.
const RETRY: Duration = Duration::from_secs(2);
/// How often link states and the fabric's facts are read.
const LINKS: Duration = Duration::from_secs(2);
/// How often tunnel next hops are checked (unresolved ones: every tick).
const RESOLVE: Duration = Duration::from_secs(1);
/// The loop's tick.
const TICK: Duration = Duration::from_millis(100);

/// The fabric interface the compile loop should read facts of, and what
/// the host thread found (shared with the compile loop).
#[derive(Default)]
pub struct Fabric {
    /// The interface named by the PhysicalRouter's `spec.fabric`.
    pub interface: Option<String>,
    /// Its MAC and MTU, once read.
    pub facts: Option<FabricFacts>,
    /// The host's routes out of it.
    pub routes: Vec<trunkline_pipeline::config::FabricRouteConfig>,
}

/// Starts the host thread; it works in `netns` when given.
pub fn spawn(
    control: Arc<Control>,
    fabric: Arc<Mutex<Fabric>>,
    fabric_changed: Arc<Notify>,
    netns: Option<PathBuf>,
    snat_ports: (u16, u16),
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("host".to_owned())
        .spawn(move || {
            if let Some(netns) = &netns
                && let Err(e) = trunkline_xdp::enter_network_namespace(netns)
            {
                tracing::error!(netns = %netns.display(), error = %e, "cannot enter the node's network namespace");
                return;
            }
            match crate::hostnet::reserve_snat_ports(snat_ports.0, snat_ports.1) {
                Ok(Some(done)) => tracing::info!("{done}"),
                Ok(None) => {}
                Err(e) => tracing::warn!(
                    error = %e,
                    ports = ?snat_ports,
                    "cannot keep the host's sockets off the SNAT ports: host connections may collide with translated flows"
                ),
            }
            let host = match HostNetwork::new() {
                Ok(host) => host,
                Err(e) => {
                    tracing::error!(error = %e, "no netlink access: virtual gateways and tunnels cannot be set up");
                    return;
                }
            };
            let mut thread = HostThread {
                control,
                fabric,
                fabric_changed,
                host,
                vgw_version: 0,
                vgw_retry: false,
                last_vgw: Instant::now(),
                last_links: Instant::now() - LINKS,
                last_resolve: Instant::now() - RESOLVE,
            };
            while !thread.control.stopping() {
                thread.tick();
                std::thread::sleep(TICK);
            }
        })
}

struct HostThread {
    control: Arc<Control>,
    fabric: Arc<Mutex<Fabric>>,
    fabric_changed: Arc<Notify>,
    host: HostNetwork,
    /// The plan version whose virtual gateways were last set up.
    vgw_version: i64,
    /// Whether that set-up had failures to retry.
    vgw_retry: bool,
    last_vgw: Instant,
    last_links: Instant,
    last_resolve: Instant,
}

impl HostThread {
    fn tick(&mut self) {
        self.virtual_gateways();
        if self.last_links.elapsed() >= LINKS {
            self.last_links = Instant::now();
            self.links();
            self.fabric_facts();
        }
        let all = self.last_resolve.elapsed() >= RESOLVE;
        self.resolve();
        self.fabric_neighbours(all);
    }

    /// Resolves the fabric next hops the fast path asked for, and (`all`)
    /// refreshes the resolved ones: a neighbour that changed MAC or went
    /// away is seen within RESOLVE.
    fn fabric_neighbours(&self, all: bool) {
        let plan = self.control.plan();
        let cache = plan.tables.fabric_neighbours();
        let pending: Vec<_> = if all {
            cache.wanted().chain(cache.resolved()).collect()
        } else {
            cache.wanted().collect()
        };
        for slot in pending {
            let mac = match self.host.next_hop_mac(slot.addr) {
                Ok(mac) => mac,
                Err(e) => {
                    tracing::debug!(next_hop = %slot.addr, error = %e, "fabric next hop not resolved");
                    None
                }
            };
            if cache.resolve(slot, mac) && mac.is_some() {
                tracing::debug!(next_hop = %slot.addr, ?mac, "fabric next hop");
            }
        }
    }

    /// Sets up the host side of the plan's virtual gateways (once per plan,
    /// and again every few seconds while something failed): removes our
    /// links no longer declared, configures the taps, turns forwarding on.
    fn virtual_gateways(&mut self) {
        let plan = self.control.plan();
        // Before the first plan built from a synced view, the declared set is
        // unknown: deleting "undeclared" links then would remove live ones
        // (a restarted agent's resumed plan has a version, not a view).
        if !plan.synced
            || (plan.version == self.vgw_version
                && !(self.vgw_retry && self.last_vgw.elapsed() >= RETRY))
        {
            return;
        }
        self.vgw_version = plan.version;
        self.last_vgw = Instant::now();
        let mut problems = Vec::new();
        match self.host.remove_undeclared(&plan.virtual_gateways) {
            Ok(removed) => {
                for name in removed {
                    tracing::info!(
                        interface = name,
                        "removed a virtual gateway interface no longer declared"
                    );
                }
            }
            Err(e) => problems.push(format!("cleaning up virtual gateway interfaces: {e}")),
        }
        let open = self.control.open_ports();
        let mut ready = Vec::new();
        let mut waiting = false;
        for spec in &plan.virtual_gateways {
            if !open.contains(&spec.interface) {
                problems.push(format!(
                    "VirtualGateway {}: interface {} is not open yet",
                    spec.name, spec.interface
                ));
                waiting = true;
                continue;
            }
            match self.host.configure(spec) {
                Ok(()) => ready.push(spec.interface.clone()),
                Err(e) => problems.push(format!("VirtualGateway {}: {e}", spec.name)),
            }
        }
        let families = |v6: bool| {
            plan.virtual_gateways
                .iter()
                .flat_map(|v| &v.subnets)
                .any(|s| s.addr().is_ipv6() == v6)
        };
        if let Err(e) = crate::hostnet::enable_forwarding(families(false), families(true)) {
            problems.push(format!("enabling IP forwarding: {e}"));
        }
        for problem in &problems {
            tracing::warn!("{problem}");
        }
        self.vgw_retry = !problems.is_empty();
        if waiting {
            // The forwarding thread opens taps within a loop or two: mark
            // and configure them as soon as it has, not a retry period later
            // (a tap not yet marked would pass for foreign after a crash).
            self.last_vgw = Instant::now() - RETRY;
        }
        self.control.set_virtual_gateways(ready, problems, waiting);
    }

    /// Reads the link state of the open ports (a port stays open while its
    /// link is down: frames flow again as soon as it is up).
    fn links(&self) {
        let names = self.control.open_ports();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        if let Ok(states) = self.host.link_states(&names) {
            for (name, link) in states {
                self.control.set_link(&name, link);
            }
        }
    }

    /// Reads the fabric interface's MAC and MTU; a change wakes the compile
    /// loop (the tables carry them).
    fn fabric_facts(&self) {
        let interface = self
            .fabric
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .interface
            .clone();
        let facts = match &interface {
            Some(name) => self.host.fabric_facts(name).unwrap_or_else(|e| {
                tracing::warn!(interface = name, error = %e, "cannot read the fabric interface");
                None
            }),
            None => None,
        };
        let routes = match &interface {
            Some(name) => self.host.fabric_routes(name).unwrap_or_else(|e| {
                tracing::warn!(interface = name, error = %e, "cannot read the fabric's routes");
                Vec::new()
            }),
            None => Vec::new(),
        };
        let mut fabric = self.fabric.lock().unwrap_or_else(|p| p.into_inner());
        if fabric.facts != facts {
            tracing::info!(interface = ?interface, facts = ?facts, "fabric interface");
            fabric.facts = facts;
            self.fabric_changed.notify_one();
        }
        if fabric.routes != routes {
            tracing::info!(interface = ?interface, routes = ?routes, "fabric routes");
            fabric.routes = routes;
            self.fabric_changed.notify_one();
        }
    }

    /// Resolves the underlay next hop of every tunnel peer of the current
    /// tables (resolved ones every RESOLVE, unresolved ones every tick).
    fn resolve(&mut self) {
        let plan = self.control.plan();
        let all = self.last_resolve.elapsed() >= RESOLVE;
        if all {
            self.last_resolve = Instant::now();
        }
        for peer in plan.tables.peers() {
            let known = peer.next_hop_mac();
            if known.is_some() && !all {
                continue;
            }
            let mac = match self.host.next_hop_mac(peer.address()) {
                Ok(mac) => mac.map(trunkline_wire::EthernetAddress),
                Err(e) => {
                    tracing::debug!(peer = peer.key(), error = %e, "no underlay next hop");
                    None
                }
            };
            if mac != known {
                tracing::info!(peer = peer.key(), address = %peer.address(), next_hop = ?mac, "tunnel next hop");
                plan.tables.set_next_hop_mac(peer.address(), mac);
            }
        }
    }
}
