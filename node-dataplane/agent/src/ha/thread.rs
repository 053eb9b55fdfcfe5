//! The HA thread: the I/O around the pure HA logic. It lives in the node's
//! network namespace (like the host thread), owns the UDP socket of
//! heartbeats and claims, reads link states by netlink, and flips the
//! tables' HA cells; it never touches a frame on the fast path.
//!
//! ```text
//!  every TICK (5 ms):
//!    plan changed?            ──> reconfigure elections, STP observers, paths; write every
//!                                 cell again into the new tables
//!    every LINKS (10 ms)      ──> member ports' and fabric's link states (netlink)
//!    datagrams (non-blocking) ──> heartbeats: elections, sequence floors
//!                                 claims: paths (answer older ones with a correction)
//!    decide                   ──> role cells (mode Fast); on becoming active (elected, or
//!                                 BPDUs heard in mode STP): claims for the group's VMIs,
//!                                 announcements now, +100 ms and +1 s
//!    seen marks (fast path)   ──> claims (damped)
//!    heartbeats due           ──> members and witnesses; at once when a state changed
//!    every REFRESH (1 s)      ──> claims of what this node owns (late joiners, lost ones);
//!                                 mode STP, forwarding for 6 s: take back VMIs owned
//!                                 elsewhere for 12 s (a blocked member sees no traffic)
//!    report                   ──> Control (PhysicalRouter status, metrics), wakes the reporter
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use tokio::sync::Notify;
use trunkline_api::physical_router::{HaGroupReport, HaPeerReport};
use trunkline_model::HaMode;
use trunkline_pipeline::HaRole;

use super::election::{Election, Reason, Role, Timers, Transition};
use super::paths::Paths;
use super::plan::{GroupPlan, HaPlan};
use super::stp::StpObserver;
use super::wire::{Announced, Claim, Hello, MAX_DATAGRAM, Message};
use crate::control::{Control, Plan};
use crate::hostnet::HostNetwork;

/// The loop's period: the resolution of every HA timer.
const TICK: Duration = Duration::from_millis(5);
/// How often link states are read.
const LINKS: Duration = Duration::from_millis(10);
/// How often a node announces again what it owns.
const REFRESH: Duration = Duration::from_secs(1);
/// How long a node waits for its tunnel next hops to resolve before it
/// counts as ready anyway (a dead peer's may never resolve).
const RESOLVE_GRACE: Duration = Duration::from_secs(5);
/// Mode STP: how long another member must have owned a VMI before the
/// forwarding member takes it back (twice the window after which a
/// blocked member stops counting itself active).
const STP_SETTLED: Duration = Duration::from_secs(12);
/// When announcements are sent again after a takeover.
const ANNOUNCE_AGAIN: [Duration; 2] = [Duration::from_millis(100), Duration::from_secs(1)];

/// Starts the HA thread; it works in `netns` when given and listens on UDP
/// `port` of the node's underlay address.
pub fn spawn(
    control: Arc<Control>,
    netns: Option<PathBuf>,
    port: u16,
    report_now: Arc<Notify>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("ha".to_owned())
        .spawn(move || {
            if let Some(netns) = &netns
                && let Err(e) = trunkline_xdp::enter_network_namespace(netns)
            {
                tracing::error!(netns = %netns.display(), error = %e, "HA: cannot enter the node's network namespace");
                return;
            }
            let host = match HostNetwork::new() {
                Ok(host) => host,
                Err(e) => {
                    tracing::error!(error = %e, "HA: no netlink access: link states unknown");
                    return;
                }
            };
            let mut thread = HaThread {
                control,
                report_now,
                port,
                host,
                socket: None,
                version: -1,
                plan: HaPlan::default(),
                groups: BTreeMap::new(),
                paths: Paths::new(""),
                links: BTreeMap::new(),
                last_links: Instant::now() - LINKS,
                next_refresh: Instant::now(),
                announce: Vec::new(),
                started: Instant::now(),
            };
            while !thread.control.stopping() {
                thread.tick();
                std::thread::sleep(TICK);
            }
        })
}

/// A group this node takes part in.
struct GroupState {
    plan: GroupPlan,
    part: Part,
    next_hello: Instant,
    /// When (wall clock) the role last changed.
    since: SystemTime,
    /// Mode Fast: whether each other member is heard, since when (wall
    /// clock, taken when that changed).
    heard: BTreeMap<String, (bool, SystemTime)>,
}

/// How the node takes part.
enum Part {
    /// A member in mode Fast.
    Elected(Election),
    /// A member in mode STP.
    Observed(StpObserver),
    /// A witness (mode Fast; nothing to do in mode STP).
    Witness,
}

struct HaThread {
    control: Arc<Control>,
    report_now: Arc<Notify>,
    port: u16,
    host: HostNetwork,
    socket: Option<(IpAddr, UdpSocket)>,
    version: i64,
    plan: HaPlan,
    groups: BTreeMap<String, GroupState>,
    paths: Paths,
    /// Interface -> up.
    links: BTreeMap<String, bool>,
    last_links: Instant,
    next_refresh: Instant,
    /// Announcements due: (when, group).
    announce: Vec<(Instant, String)>,
    /// When the thread started (for [`RESOLVE_GRACE`]).
    started: Instant,
}

fn timestamp(t: SystemTime) -> Time {
    let seconds = Timestamp::try_from(t)
        .map(|t| t.as_second())
        .unwrap_or_default();
    Time(Timestamp::from_second(seconds).unwrap_or(Timestamp::UNIX_EPOCH))
}

impl HaThread {
    fn tick(&mut self) {
        let now = Instant::now();
        let plan = self.control.plan();
        if plan.version != self.version {
            self.reconfigure(&plan, now);
        }
        if self.groups.is_empty() {
            return;
        }
        if now.saturating_duration_since(self.last_links) >= LINKS {
            self.last_links = now;
            self.read_links();
        }
        self.receive(&plan, now);
        self.decide(&plan, now);
        self.seen(&plan, now);
        self.send_hellos(now);
        if now >= self.next_refresh {
            self.next_refresh = now + REFRESH;
            self.refresh();
            self.reclaim_stp(&plan, now);
        }
        self.announce(&plan, now);
        self.report();
    }

    /// A new plan: groups, elections and paths follow it (keeping what
    /// stays), the socket follows the underlay address, and every cell is
    /// written into the new tables.
    fn reconfigure(&mut self, plan: &Plan, now: Instant) {
        self.version = plan.version;
        self.plan = plan.ha.clone();
        let me = self.plan.node.clone();
        if self.paths.me() != me {
            self.paths = Paths::new(&me);
        }
        self.paths.configure(&self.plan.vmis);
        let mut groups = BTreeMap::new();
        for g in &self.plan.groups {
            let previous = self.groups.remove(&g.name);
            let (since, heard, next_hello) = previous
                .as_ref()
                .map(|p| (p.since, p.heard.clone(), p.next_hello))
                .unwrap_or((SystemTime::now(), BTreeMap::new(), now));
            let part = match (&g.me, g.mode, previous.map(|p| p.part)) {
                (Some((member, _)), HaMode::Fast, Some(Part::Elected(mut e))) => {
                    let timers = g.timers.unwrap_or(e.timers());
                    e.reconfigure(member, &g.members, timers, g.preempt, now);
                    Part::Elected(e)
                }
                (Some((member, _)), HaMode::Fast, _) => Part::Elected(Election::new(
                    member.clone(),
                    &g.members,
                    g.timers.unwrap_or(Timers {
                        hello: Duration::from_millis(100),
                        dead: Duration::from_millis(500),
                    }),
                    g.preempt,
                    now,
                )),
                (Some(_), HaMode::Stp, Some(Part::Observed(o))) => Part::Observed(o),
                (Some(_), HaMode::Stp, _) => Part::Observed(StpObserver::new(now)),
                (None, _, _) => Part::Witness,
            };
            groups.insert(
                g.name.clone(),
                GroupState {
                    plan: g.clone(),
                    part,
                    next_hello,
                    since,
                    heard,
                },
            );
        }
        self.groups = groups;
        self.bind();
        self.write_cells(plan);
    }

    /// The socket on the node's underlay address.
    fn bind(&mut self) {
        let wanted = self.plan.address;
        if self.socket.as_ref().map(|(a, _)| *a) == wanted {
            return;
        }
        self.socket = None;
        let Some(address) = wanted else {
            return;
        };
        match UdpSocket::bind(SocketAddr::new(address, self.port)) {
            Ok(socket) => {
                if let Err(e) = socket.set_nonblocking(true) {
                    tracing::warn!(error = %e, "HA: socket not non-blocking");
                }
                tracing::info!(%address, port = self.port, "HA: heartbeats and claims on the fabric");
                self.socket = Some((address, socket));
            }
            Err(e) => {
                tracing::warn!(%address, port = self.port, error = %e, "HA: cannot bind the heartbeat socket (retried with the next plan)");
            }
        }
    }

    fn read_links(&mut self) {
        let mut names: Vec<&str> = self
            .groups
            .values()
            .filter_map(|g| g.plan.me.as_ref().map(|(_, port)| port.as_str()))
            .collect();
        if let Some(fabric) = &self.plan.fabric_interface {
            names.push(fabric);
        }
        match self.host.link_states(&names) {
            Ok(states) => {
                let mut links: BTreeMap<String, bool> =
                    names.iter().map(|n| (n.to_string(), false)).collect();
                for (name, state) in states {
                    links.insert(name, state.is_ok());
                }
                self.links = links;
            }
            Err(e) => tracing::debug!(error = %e, "HA: link states not read"),
        }
    }

    fn send(&self, to: &str, message: &Message) -> usize {
        let (Some((_, socket)), Some(address)) = (&self.socket, self.plan.addresses.get(to)) else {
            return 0;
        };
        let mut sent = 0;
        for datagram in message.emit() {
            if socket
                .send_to(&datagram, SocketAddr::new(*address, self.port))
                .is_ok()
            {
                sent += 1;
            }
        }
        sent
    }

    fn receive(&mut self, plan: &Plan, now: Instant) {
        let mut buf = [0u8; MAX_DATAGRAM + 64];
        let mut received = Vec::new();
        if let Some((_, socket)) = &self.socket {
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                received.push((Message::parse(&buf[..n]), from.ip()));
            }
        }
        for (message, from) in received {
            let Ok(message) = message else {
                self.control.ha_stats(|s| s.refused += 1);
                continue;
            };
            let (group, sender) = match &message {
                Message::Hello(h) => (&h.group, &h.sender),
                Message::Claim(c) => (&c.group, &c.sender),
            };
            // Only a node the plan knows, from its own underlay address.
            let known = self.plan.addresses.get(sender) == Some(&from)
                && self
                    .groups
                    .get(group)
                    .is_some_and(|g| g.plan.others(&self.plan.node).any(|n| n == sender));
            if !known {
                self.control.ha_stats(|s| s.refused += 1);
                continue;
            }
            match message {
                Message::Hello(hello) => self.hello(hello, now),
                Message::Claim(claim) => self.claim(plan, claim, now),
            }
        }
    }

    fn hello(&mut self, hello: Hello, now: Instant) {
        self.control.ha_stats(|s| s.heartbeats_received += 1);
        self.paths.note_seq(&hello.group, hello.seq);
        if let Some(GroupState {
            part: Part::Elected(e),
            ..
        }) = self.groups.get_mut(&hello.group)
        {
            e.heard(&hello.sender, hello.state, now);
        }
    }

    fn claim(&mut self, plan: &Plan, claim: Claim, now: Instant) {
        self.control.ha_stats(|s| s.claims_received += 1);
        let received = self.paths.receive(&claim.owner, &claim.entries, now);
        tracing::debug!(
            group = claim.group,
            from = claim.sender,
            owner = claim.owner,
            entries = ?claim.entries,
            changed = ?received.changed,
            corrections = received.corrections.len(),
            "HA: claim received"
        );
        if !received.corrections.is_empty() && !claim.correction {
            let mut by_owner: BTreeMap<String, Vec<(u32, u64)>> = BTreeMap::new();
            for (label, seq, owner) in received.corrections {
                by_owner.entry(owner).or_default().push((label, seq));
            }
            for (owner, entries) in by_owner {
                let message = Message::Claim(Claim {
                    group: claim.group.clone(),
                    sender: self.plan.node.clone(),
                    owner,
                    correction: true,
                    entries,
                });
                let n = self.send(&claim.sender, &message);
                self.control.ha_stats(|s| s.claims_sent += n as u64);
            }
        }
        if received.changed.is_empty() {
            return;
        }
        // An active member of mode Fast serves every VMI of its group: it
        // claims back what moved away (damped, like any claim).
        let active = matches!(
            self.groups.get(&claim.group),
            Some(GroupState { part: Part::Elected(e), .. }) if e.role() == Role::Active
        );
        let mut claims = Vec::new();
        for label in received.changed {
            if active && self.paths.owner(label) != Some(self.plan.node.as_str()) {
                claims.extend(self.paths.seen(label, now));
            }
        }
        self.send_claims(&claim.group, claims);
        self.write_paths(plan);
    }

    /// Whether the fast path can serve `port`'s group: the port open, the
    /// underlay built when the node declares one, and the tunnel next hops
    /// resolved (or some seconds passed).
    fn ready(&self, plan: &Plan, port: Option<&str>, now: Instant) -> bool {
        let open = self.control.open_ports();
        let port_open = port.is_none_or(|p| open.iter().any(|o| o == p));
        let underlay = self.plan.fabric_interface.is_none()
            || (plan.tables.underlay().is_some()
                && self
                    .plan
                    .fabric_interface
                    .as_ref()
                    .is_some_and(|f| open.contains(f)));
        let resolved = plan
            .tables
            .peers()
            .iter()
            .all(|p| p.next_hop_mac().is_some())
            || now.saturating_duration_since(self.started) >= RESOLVE_GRACE;
        port_open && underlay && resolved
    }

    fn decide(&mut self, plan: &Plan, now: Instant) {
        let names: Vec<String> = self.groups.keys().cloned().collect();
        let ready: BTreeMap<String, bool> = self
            .groups
            .iter()
            .map(|(name, g)| {
                let port = g.plan.me.as_ref().map(|(_, p)| p.as_str());
                (name.clone(), self.ready(plan, port, now))
            })
            .collect();
        for name in names {
            let transition = {
                let links = &self.links;
                let fabric = self.plan.fabric_interface.clone();
                let g = self.groups.get_mut(&name).expect("a group");
                let trunk = g.plan.me.as_ref().map(|(_, port)| port.clone());
                let up = |n: Option<&str>| n.is_none_or(|n| links.get(n).copied().unwrap_or(true));
                let (trunk_up, fabric_up) = (up(trunk.as_deref()), up(fabric.as_deref()));
                match &mut g.part {
                    Part::Elected(e) => {
                        e.links(trunk_up, fabric_up);
                        e.ready(ready.get(&name).copied().unwrap_or(false));
                        let t = e.tick(now);
                        let role = if e.role() == Role::Active {
                            HaRole::Active
                        } else {
                            HaRole::Standby
                        };
                        plan.tables.set_ha_role(&name, role);
                        t
                    }
                    Part::Observed(o) => {
                        let received = g.plan.bpdu_vmi.as_ref().and_then(|key| {
                            let id = plan.tables.vmi_id(key)?;
                            Some(plan.tables.vmi(id)?.counters().snapshot().rx_packets)
                        });
                        o.observe(received, trunk_up, now)
                    }
                    Part::Witness => None,
                }
            };
            if let Some(t) = transition {
                self.transition(plan, &name, t, now);
            }
        }
        let due = self.paths.tick(now);
        if !due.is_empty() {
            self.claims_by_group(due);
            self.write_paths(plan);
        }
    }

    /// A role changed: log, count, and on becoming active claim the group's
    /// VMIs and announce the gateway.
    fn transition(&mut self, plan: &Plan, group: &str, t: Transition, now: Instant) {
        tracing::info!(
            group,
            from = t.from.as_str(),
            to = t.to.as_str(),
            reason = t.reason.as_str(),
            "HA role changed"
        );
        if let Some(g) = self.groups.get_mut(group) {
            g.since = SystemTime::now();
        }
        self.control.ha_stats(|s| {
            *s.transitions
                .entry((group.to_owned(), t.to.as_str().to_owned()))
                .or_default() += 1;
        });
        if t.to != Role::Active {
            self.announce.retain(|(_, g)| g != group);
            return;
        }
        // The new active member serves every VMI of the group: in mode Fast
        // by election, in mode STP because a single spanning tree (802.1D)
        // lets every VLAN through the one designated member port. Per-VMI
        // claims from the instances' traffic refine it (other trees).
        let claims = self.paths.take_over(group, now);
        self.send_claims(group, claims);
        self.write_paths(plan);
        self.announce.push((now, group.to_owned()));
        for again in ANNOUNCE_AGAIN {
            self.announce.push((now + again, group.to_owned()));
        }
    }

    /// The fast path saw multi-homed VMIs' own traffic: claim them.
    fn seen(&mut self, plan: &Plan, now: Instant) {
        let mut labels = Vec::new();
        plan.tables
            .take_seen(|key| labels.extend(self.paths.label_of(key)));
        let claims: Vec<(u32, u64)> = labels
            .into_iter()
            .filter_map(|l| self.paths.seen(l, now))
            .collect();
        if !claims.is_empty() {
            self.claims_by_group(claims);
            self.write_paths(plan);
        }
    }

    fn claims_by_group(&mut self, claims: Vec<(u32, u64)>) {
        let mut by_group: BTreeMap<String, Vec<(u32, u64)>> = BTreeMap::new();
        for (label, seq) in claims {
            if let Some(group) = self.paths.group_of(label) {
                by_group
                    .entry(group.to_owned())
                    .or_default()
                    .push((label, seq));
            }
        }
        for (group, claims) in by_group {
            self.send_claims(&group, claims);
        }
    }

    /// Sends claims of this node in `group` to every other node of it.
    fn send_claims(&self, group: &str, entries: Vec<(u32, u64)>) {
        if entries.is_empty() {
            return;
        }
        tracing::debug!(group, entries = ?entries, "HA: claiming");
        let Some(g) = self.groups.get(group) else {
            return;
        };
        let message = Message::Claim(Claim {
            group: group.to_owned(),
            sender: self.plan.node.clone(),
            owner: self.plan.node.clone(),
            correction: false,
            entries,
        });
        let mut n = 0;
        for other in g.plan.others(&self.plan.node) {
            n += self.send(other, &message);
        }
        self.control.ha_stats(|s| s.claims_sent += n as u64);
    }

    fn refresh(&mut self) {
        let groups: Vec<String> = self.groups.keys().cloned().collect();
        for group in groups {
            let owned = self.paths.owned(&group);
            self.send_claims(&group, owned);
        }
    }

    /// Mode STP: a member the spanning tree has let forward for a while
    /// takes back the group's VMIs whose ownership settled on another
    /// member ([`Paths::reclaim`]): after [`STP_SETTLED`], a member whose
    /// port was blocked has stopped counting itself active.
    fn reclaim_stp(&mut self, plan: &Plan, now: Instant) {
        let forwarding: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, g)| match &g.part {
                Part::Observed(o) => {
                    o.role() == Role::Active
                        && now.saturating_duration_since(o.since()) >= super::stp::WINDOW
                }
                _ => false,
            })
            .map(|(name, _)| name.clone())
            .collect();
        let mut changed = false;
        for group in forwarding {
            let claims = self.paths.reclaim(&group, STP_SETTLED, now);
            if !claims.is_empty() {
                tracing::info!(
                    group,
                    vmis = claims.len(),
                    "HA: taking back VMIs settled on another member (mode STP)"
                );
                changed = true;
                self.send_claims(&group, claims);
            }
        }
        if changed {
            self.write_paths(plan);
        }
    }

    fn send_hellos(&mut self, now: Instant) {
        let me = self.plan.node.clone();
        let mut out = Vec::new();
        for (name, g) in &mut self.groups {
            let (state, priority, timers) = match &mut g.part {
                Part::Elected(e) => {
                    let urgent = e.take_urgent();
                    if !urgent && now < g.next_hello {
                        continue;
                    }
                    (e.announced(), e.me().priority, e.timers())
                }
                Part::Witness if g.plan.mode == HaMode::Fast => {
                    if now < g.next_hello {
                        continue;
                    }
                    let Some(timers) = g.plan.timers else {
                        continue;
                    };
                    (Announced::Witness, 0, timers)
                }
                _ => continue,
            };
            g.next_hello = now + timers.hello;
            let hello = Message::Hello(Hello {
                group: name.clone(),
                sender: me.clone(),
                priority,
                state,
                hello_millis: timers.hello.as_millis() as u32,
                seq: self.paths.max_seq(name),
            });
            // A witness talks to the members only.
            let to: Vec<String> = match g.part {
                Part::Witness => g
                    .plan
                    .members
                    .iter()
                    .map(|m| m.name.clone())
                    .filter(|n| *n != me)
                    .collect(),
                _ => g.plan.others(&me).map(str::to_owned).collect(),
            };
            out.push((to, hello));
        }
        for (to, hello) in out {
            let mut n = 0;
            for node in &to {
                n += self.send(node, &hello);
            }
            self.control.ha_stats(|s| s.heartbeats_sent += n as u64);
        }
    }

    /// Sends the announcements that are due (while the group is active).
    fn announce(&mut self, plan: &Plan, now: Instant) {
        let (due, later): (Vec<_>, Vec<_>) = self.announce.drain(..).partition(|(t, _)| *t <= now);
        self.announce = later;
        for (_, group) in due {
            let frames = plan.tables.announcements(&group);
            let mut n = 0;
            for a in frames {
                if self.control.inject(plan.version, a.port, a.frame) {
                    n += 1;
                }
            }
            tracing::info!(group, frames = n, "HA: gateway addresses announced");
            self.control.ha_stats(|s| s.announcements += n);
        }
    }

    /// Writes every path cell (after a rebuild or a change).
    fn write_paths(&self, plan: &Plan) {
        let me = self.plan.node.as_str();
        for (key, owner) in self.paths.all() {
            match owner {
                Some(o) if o == me => {
                    plan.tables.set_vmi_path(key, None);
                }
                Some(o) => {
                    plan.tables.set_vmi_path(key, Some(o));
                }
                None => {}
            }
        }
    }

    fn write_cells(&self, plan: &Plan) {
        for (name, g) in &self.groups {
            if let Part::Elected(e) = &g.part {
                let role = if e.role() == Role::Active {
                    HaRole::Active
                } else {
                    HaRole::Standby
                };
                plan.tables.set_ha_role(name, role);
            }
        }
        self.write_paths(plan);
    }

    /// The node's part in each group, for its status; wakes the reporter
    /// when it changed.
    fn report(&mut self) {
        for g in self.groups.values_mut() {
            if let Part::Elected(e) = &g.part {
                for (name, heard, _) in e.peers() {
                    let entry = g
                        .heard
                        .entry(name.to_owned())
                        .or_insert((heard, SystemTime::now()));
                    if entry.0 != heard {
                        *entry = (heard, SystemTime::now());
                    }
                }
            }
        }
        let reports: Vec<HaGroupReport> = self
            .groups
            .values()
            .filter_map(|g| {
                let (role, reason, peers) = match &g.part {
                    Part::Elected(e) => {
                        let peers = e
                            .peers()
                            .map(|(name, heard, _)| HaPeerReport {
                                physical_router: name.to_owned(),
                                heard,
                                since: timestamp(
                                    g.heard.get(name).map_or(SystemTime::now(), |(_, t)| *t),
                                ),
                            })
                            .collect();
                        (e.role(), e.reason(), peers)
                    }
                    Part::Observed(o) => (o.role(), o.reason(), Vec::new()),
                    Part::Witness => return None,
                };
                Some(HaGroupReport {
                    group: g.plan.name.clone(),
                    generation: g.plan.generation,
                    state: role.as_str().to_owned(),
                    since: timestamp(g.since),
                    reason: reason.as_str().to_owned(),
                    message: self.message(g, reason),
                    peers,
                })
            })
            .collect();
        let changed = self.control.ha_stats(|s| {
            if s.groups == reports {
                false
            } else {
                s.groups = reports;
                true
            }
        });
        if changed {
            self.report_now.notify_one();
        }
    }

    fn message(&self, g: &GroupState, reason: Reason) -> Option<String> {
        let port = g.plan.me.as_ref().map(|(_, p)| p.as_str()).unwrap_or("?");
        let fabric = self.plan.fabric_interface.as_deref().unwrap_or("?");
        let dead = g.plan.timers.map(|t| t.dead.as_millis()).unwrap_or(0);
        Some(match reason {
            Reason::Starting => format!(
                "started: listening {dead} ms for the group's members before it may be elected"
            ),
            Reason::Elected => "the best eligible member, and no other is active".to_owned(),
            Reason::HigherPriorityActive => "a member of higher priority is active".to_owned(),
            Reason::OtherActive => "another member is active and spec.preempt is false".to_owned(),
            Reason::HigherPriorityLive => "a member of higher priority is eligible".to_owned(),
            Reason::Preempted => {
                "a member of higher priority claimed the active role (spec.preempt)".to_owned()
            }
            Reason::Claiming => {
                "asking the active member, of lower priority, to hand over".to_owned()
            }
            Reason::TrunkDown => format!("member port {port} is down"),
            Reason::FabricDown => format!("fabric interface {fabric} is down"),
            Reason::Fenced => format!(
                "no heartbeat from any member or witness for {} ms: fenced itself rather than risk a second active member",
                g.plan
                    .timers
                    .map(|t| t.dead.saturating_sub(t.hello).as_millis())
                    .unwrap_or(0)
            ),
            Reason::BpdusHeard => format!(
                "the switch sends BPDUs on {port}: its port toward this member is designated"
            ),
            Reason::NoBpdus => format!(
                "no BPDUs on {port} for {} s: the switch blocks its port toward this member (or runs no spanning tree)",
                super::stp::WINDOW.as_secs()
            ),
        })
    }
}
