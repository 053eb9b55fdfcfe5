//! Mode Fast: the election of one group's active member, seen from one
//! member. Pure: time is an input (tests drive it with a fake clock), and
//! what it decides is returned, never sent.
//!
//! ```text
//!  inputs                                   decision (every tick)
//!  hello from member M (its state) ──┐      not eligible ───────────────> Down (TrunkDown, FabricDown,
//!  hello from a witness ─────────────┤        (trunk or fabric link down,       Fenced) or Standby (Starting)
//!  trunk / fabric link state ────────┤        starting, or silent: fenced)
//!  now ──────────────────────────────┘      a live member is Active:
//!                                             better than me, or no preempt ──> Standby
//!                                             worse than me, preempt ───────> Claiming (it hands over)
//!                                           none Active: best eligible live ───> Active (Elected)
//!                                           I am Active and a better member is
//!                                             Active, or Claiming with preempt ─> Standby (it takes over)
//! ```
//!
//! Rules (docs/dataplane.md, "Gateway HA"):
//! - A member is live while its heartbeats arrive within `dead`, and
//!   eligible while it says so (not starting, links up, not fenced).
//! - "Better" is the higher priority, then the name that sorts first: the
//!   same order on every member, from the same spec.
//! - Self-fencing: a member that has heard no member and no witness for
//!   `dead - hello` cannot tell a dead group from its own cut: it steps
//!   down (one hello interval before the others would declare it dead and
//!   elect another), rather than risk two active members. What it gives up:
//!   a group whose only other nodes are dead has no active member; a
//!   witness (any other node of the group's networks) avoids that.
//! - A member that becomes eligible again (its link is back, it no longer
//!   fences itself) listens for one hello interval before it may take an
//!   empty active role: the others may have elected another meanwhile.
//! - A member starting (after a restart) listens for `dead`, and waits for
//!   its fast path to be ready (member port open, overlay built), before it
//!   may be elected or claim: it learns who is active first, and never
//!   takes over traffic it cannot forward yet. It says Standby
//!   meanwhile, so that members starting together elect the best of them
//!   (the others wait for it, at most `dead`).
//! - A handover (preemption) goes through Claiming: the active member steps
//!   down when it hears the better one claim, and the claimant becomes
//!   active when it hears no active member: a gap of one round trip, never
//!   two active members.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::wire::Announced;

/// A member of the group: its name and priority (from the spec).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Member {
    /// The node (PhysicalRouter) name.
    pub name: String,
    /// Its priority.
    pub priority: u8,
}

impl Member {
    /// Whether `self` is preferred to `other`: higher priority, then the
    /// name that sorts first.
    pub fn better_than(&self, other: &Member) -> bool {
        (self.priority, std::cmp::Reverse(&self.name))
            > (other.priority, std::cmp::Reverse(&other.name))
    }
}

/// Heartbeat timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// Between heartbeats.
    pub hello: Duration,
    /// Silence after which a member is dead.
    pub dead: Duration,
}

/// A member's state, as reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Forwards and answers for the group.
    Active,
    /// Receives, neither forwards nor answers.
    Standby,
    /// Cannot serve.
    Down,
}

impl Role {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Active => "Active",
            Role::Standby => "Standby",
            Role::Down => "Down",
        }
    }
}

/// Why a member is in its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Listening before it may be elected (after a start).
    Starting,
    /// The best eligible member, and no other is active.
    Elected,
    /// A better member is active.
    HigherPriorityActive,
    /// Another member is active and `preempt` is off.
    OtherActive,
    /// No member is active and a better one is eligible.
    HigherPriorityLive,
    /// A better member claimed the active role (preemption).
    Preempted,
    /// Asking the active member to hand over.
    Claiming,
    /// Its trunk (member port) is down.
    TrunkDown,
    /// Its fabric link is down.
    FabricDown,
    /// It hears no member and no witness: it fenced itself.
    Fenced,
    /// Mode STP: its switch sends BPDUs on its member port (designated).
    BpdusHeard,
    /// Mode STP: no BPDUs on its member port (blocked by the switch).
    NoBpdus,
}

impl Reason {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Starting => "Starting",
            Reason::Elected => "Elected",
            Reason::HigherPriorityActive => "HigherPriorityActive",
            Reason::OtherActive => "OtherActive",
            Reason::HigherPriorityLive => "HigherPriorityLive",
            Reason::Preempted => "Preempted",
            Reason::Claiming => "Claiming",
            Reason::TrunkDown => "TrunkDown",
            Reason::FabricDown => "FabricDown",
            Reason::Fenced => "Fenced",
            Reason::BpdusHeard => "BpdusHeard",
            Reason::NoBpdus => "NoBpdus",
        }
    }
}

/// Where the member is in the election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Down,
    Standby,
    Claiming,
    Active,
}

/// What is known of another member.
#[derive(Clone, Debug)]
struct Peer {
    member: Member,
    last: Option<Instant>,
    state: Announced,
    heard: bool,
    heard_since: Instant,
}

/// A change of role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The role before.
    pub from: Role,
    /// The role now.
    pub to: Role,
    /// Why.
    pub reason: Reason,
}

/// One member's view of its group's election.
#[derive(Clone, Debug)]
pub struct Election {
    me: Member,
    timers: Timers,
    preempt: bool,
    started: Instant,
    phase: Phase,
    reason: Reason,
    since: Instant,
    peers: BTreeMap<String, Peer>,
    /// The last heartbeat from any member or witness.
    last_any: Option<Instant>,
    trunk_up: bool,
    fabric_up: bool,
    /// Whether the node's fast path is ready to serve (ports open, overlay
    /// built): until then it is starting.
    ready: bool,
    urgent: bool,
    /// Since when the member has been eligible (links up, not starting,
    /// not fenced).
    eligible_since: Option<Instant>,
}

impl Election {
    /// A member `me` of a group with the other members `others`, starting
    /// at `now` (standby, listening).
    pub fn new(me: Member, others: &[Member], timers: Timers, preempt: bool, now: Instant) -> Self {
        let mut e = Election {
            me,
            timers,
            preempt,
            started: now,
            phase: Phase::Down,
            reason: Reason::Starting,
            since: now,
            peers: BTreeMap::new(),
            last_any: None,
            trunk_up: true,
            fabric_up: true,
            ready: true,
            urgent: true,
            eligible_since: None,
        };
        e.reconfigure(&e.me.clone(), others, timers, preempt, now);
        e
    }

    /// The group's spec changed: new members, priorities or timers; what
    /// was heard of members that stay is kept.
    pub fn reconfigure(
        &mut self,
        me: &Member,
        others: &[Member],
        timers: Timers,
        preempt: bool,
        now: Instant,
    ) {
        self.me = me.clone();
        self.timers = timers;
        self.preempt = preempt;
        let mut peers = BTreeMap::new();
        for m in others.iter().filter(|m| m.name != me.name) {
            let peer = self.peers.remove(&m.name).unwrap_or(Peer {
                member: m.clone(),
                last: None,
                state: Announced::Down,
                heard: false,
                heard_since: now,
            });
            peers.insert(
                m.name.clone(),
                Peer {
                    member: m.clone(),
                    ..peer
                },
            );
        }
        self.peers = peers;
    }

    /// A heartbeat from member `name` saying `state`; from a node that is
    /// not a member, it counts as a witness's.
    pub fn heard(&mut self, name: &str, state: Announced, now: Instant) {
        self.last_any = Some(now);
        if let Some(peer) = self.peers.get_mut(name)
            && state != Announced::Witness
        {
            peer.last = Some(now);
            peer.state = state;
        }
    }

    /// The state of the member's links: its trunk (member port) and its
    /// fabric interface.
    pub fn links(&mut self, trunk_up: bool, fabric_up: bool) {
        self.trunk_up = trunk_up;
        self.fabric_up = fabric_up;
    }

    /// Whether the node's fast path can serve the group yet (its member
    /// port open, its overlay built): a member that cannot is starting.
    pub fn ready(&mut self, ready: bool) {
        self.ready = ready;
    }

    /// Decides at `now`; returns the change of role, if any.
    pub fn tick(&mut self, now: Instant) -> Option<Transition> {
        let dead = self.timers.dead;
        for peer in self.peers.values_mut() {
            let alive = peer
                .last
                .is_some_and(|t| now.saturating_duration_since(t) < dead);
            if alive != peer.heard {
                peer.heard = alive;
                peer.heard_since = now;
            }
        }
        let (phase, reason) = self.decide(now);
        if phase == Phase::Down {
            self.eligible_since = None;
        } else {
            self.eligible_since.get_or_insert(now);
        }
        let before = self.role();
        let announced = self.announced();
        if phase != self.phase {
            self.phase = phase;
        }
        self.reason = reason;
        if self.announced() != announced {
            self.urgent = true;
        }
        let after = self.role();
        if after != before {
            self.since = now;
            Some(Transition {
                from: before,
                to: after,
                reason,
            })
        } else {
            None
        }
    }

    fn decide(&self, now: Instant) -> (Phase, Reason) {
        let starting = now.saturating_duration_since(self.started) < self.timers.dead;
        let fence_after = self.timers.dead.saturating_sub(self.timers.hello);
        let silent = self
            .last_any
            .is_none_or(|t| now.saturating_duration_since(t) >= fence_after);
        if !self.trunk_up {
            return (Phase::Down, Reason::TrunkDown);
        }
        if !self.fabric_up {
            return (Phase::Down, Reason::FabricDown);
        }
        if starting || !self.ready {
            return (Phase::Down, Reason::Starting);
        }
        if silent {
            return (Phase::Down, Reason::Fenced);
        }
        let live = |state: Announced| {
            self.peers
                .values()
                .filter(move |p| p.heard && p.state == state)
                .map(|p| &p.member)
        };
        let best = |members: &mut dyn Iterator<Item = &Member>| -> Option<Member> {
            members
                .fold(None, |best: Option<&Member>, m| match best {
                    Some(b) if b.better_than(m) => Some(b),
                    _ => Some(m),
                })
                .cloned()
        };
        let active = best(&mut live(Announced::Active));
        let claiming = best(&mut live(Announced::Claiming));
        let me = &self.me;
        if self.phase == Phase::Active {
            if let Some(a) = &active
                && a.better_than(me)
            {
                return (Phase::Standby, Reason::HigherPriorityActive);
            }
            if self.preempt
                && let Some(c) = &claiming
                && c.better_than(me)
            {
                return (Phase::Standby, Reason::Preempted);
            }
            return (Phase::Active, Reason::Elected);
        }
        if let Some(a) = &active {
            let outclaimed = claiming.as_ref().is_some_and(|c| c.better_than(me));
            return if self.preempt && me.better_than(a) && !outclaimed {
                (Phase::Claiming, Reason::Claiming)
            } else if a.better_than(me) {
                (Phase::Standby, Reason::HigherPriorityActive)
            } else {
                (Phase::Standby, Reason::OtherActive)
            };
        }
        // Nobody is active: the best eligible live member takes over; one
        // that just became eligible (its link came back, it stopped fencing)
        // first listens for a hello interval, since the others may have
        // elected another member while it could not serve.
        let eligible = best(&mut live(Announced::Standby).chain(live(Announced::Claiming)));
        let settled = self
            .eligible_since
            .is_some_and(|t| now.saturating_duration_since(t) >= self.timers.hello);
        match eligible {
            Some(b) if b.better_than(me) => (Phase::Standby, Reason::HigherPriorityLive),
            _ if !settled && self.phase != Phase::Claiming => (Phase::Standby, Reason::Starting),
            _ => (Phase::Active, Reason::Elected),
        }
    }

    /// The member's role now.
    pub fn role(&self) -> Role {
        match (self.phase, self.reason) {
            (Phase::Active, _) => Role::Active,
            (Phase::Down, Reason::Starting) => Role::Standby,
            (Phase::Down, _) => Role::Down,
            (Phase::Standby | Phase::Claiming, _) => Role::Standby,
        }
    }

    /// Why.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// Since when it has its role.
    pub fn since(&self) -> Instant {
        self.since
    }

    /// What its heartbeats say. A starting member says Standby: the
    /// others defer to it when it is better (so members starting together
    /// elect one, not each itself), though it may not be elected before it
    /// has listened for `dead`.
    pub fn announced(&self) -> Announced {
        match self.phase {
            Phase::Down if self.reason == Reason::Starting => Announced::Standby,
            Phase::Down => Announced::Down,
            Phase::Standby => Announced::Standby,
            Phase::Claiming => Announced::Claiming,
            Phase::Active => Announced::Active,
        }
    }

    /// Whether a heartbeat should go out at once (what it says changed);
    /// clears the flag.
    pub fn take_urgent(&mut self) -> bool {
        std::mem::take(&mut self.urgent)
    }

    /// The member itself.
    pub fn me(&self) -> &Member {
        &self.me
    }

    /// The timers.
    pub fn timers(&self) -> Timers {
        self.timers
    }

    /// The other members: whether their heartbeats arrive, and since when.
    pub fn peers(&self) -> impl Iterator<Item = (&str, bool, Instant)> {
        self.peers
            .values()
            .map(|p| (p.member.name.as_str(), p.heard, p.heard_since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HELLO: Duration = Duration::from_millis(100);
    const DEAD: Duration = Duration::from_millis(300);
    const TICK: Duration = Duration::from_millis(5);

    fn member(name: &str, priority: u8) -> Member {
        Member {
            name: name.into(),
            priority,
        }
    }

    /// A group of members on a perfect network: each delivers its
    /// heartbeats to the others on the next tick (every `HELLO`, and at
    /// once when its state changes); nodes can be killed, revived, cut from
    /// the fabric or lose their trunk.
    struct Sim {
        now: Instant,
        nodes: Vec<Node>,
        witness: bool,
    }

    struct Node {
        election: Election,
        alive: bool,
        fabric: bool,
        trunk: bool,
        next_hello: Instant,
        outbox: Vec<(String, Announced)>,
        log: Vec<Transition>,
    }

    impl Sim {
        fn new(members: &[(&str, u8)], preempt: bool, witness: bool) -> Sim {
            let now = Instant::now();
            let all: Vec<Member> = members.iter().map(|(n, p)| member(n, *p)).collect();
            let nodes = all
                .iter()
                .map(|m| Node {
                    election: Election::new(
                        m.clone(),
                        &all,
                        Timers {
                            hello: HELLO,
                            dead: DEAD,
                        },
                        preempt,
                        now,
                    ),
                    alive: true,
                    fabric: true,
                    trunk: true,
                    next_hello: now,
                    outbox: Vec::new(),
                    log: Vec::new(),
                })
                .collect();
            Sim {
                now,
                nodes,
                witness,
            }
        }

        fn step(&mut self) {
            self.now += TICK;
            let now = self.now;
            // Deliver what was sent last tick, across the fabric.
            let sent: Vec<(usize, String, Announced)> = self
                .nodes
                .iter_mut()
                .enumerate()
                .flat_map(|(i, n)| {
                    std::mem::take(&mut n.outbox)
                        .into_iter()
                        .map(move |(name, state)| (i, name, state))
                })
                .collect();
            for (from, name, state) in sent {
                for (i, node) in self.nodes.iter_mut().enumerate() {
                    if i != from && node.alive && node.fabric {
                        node.election.heard(&name, state, now);
                    }
                }
            }
            for node in &mut self.nodes {
                if !node.alive {
                    continue;
                }
                if self.witness && node.fabric && (now - node.next_hello) < TICK {
                    node.election.heard("witness", Announced::Witness, now);
                }
                node.election.links(node.trunk, node.fabric);
                node.log.extend(node.election.tick(now));
                let urgent = node.election.take_urgent();
                if (urgent || now >= node.next_hello) && node.fabric {
                    node.outbox
                        .push((node.election.me().name.clone(), node.election.announced()));
                    node.next_hello = now + HELLO;
                }
            }
        }

        fn run(&mut self, d: Duration) {
            let end = self.now + d;
            while self.now < end {
                self.step();
                self.check_never_two_active_on_the_trunk();
            }
        }

        /// The invariant the pipeline relies on: among members that can
        /// reach the switch (alive, trunk up), never two active at once.
        fn check_never_two_active_on_the_trunk(&self) {
            let active: Vec<&str> = self
                .nodes
                .iter()
                .filter(|n| n.alive && n.trunk && n.election.role() == Role::Active)
                .map(|n| n.election.me().name.as_str())
                .collect();
            assert!(active.len() <= 1, "two active: {active:?}");
        }

        fn active(&self) -> Vec<&str> {
            self.nodes
                .iter()
                .filter(|n| n.alive && n.election.role() == Role::Active)
                .map(|n| n.election.me().name.as_str())
                .collect()
        }

        fn kill(&mut self, i: usize) {
            self.nodes[i].alive = false;
            self.nodes[i].outbox.clear();
        }

        fn revive(&mut self, i: usize, preempt: bool) {
            let me = self.nodes[i].election.me().clone();
            let all: Vec<Member> = self.nodes.iter().map(|n| n.election.me().clone()).collect();
            self.nodes[i].election = Election::new(
                me,
                &all,
                Timers {
                    hello: HELLO,
                    dead: DEAD,
                },
                preempt,
                self.now,
            );
            self.nodes[i].alive = true;
            self.nodes[i].next_hello = self.now;
        }
    }

    #[test]
    fn the_highest_priority_member_is_elected_after_listening() {
        let mut sim = Sim::new(&[("gw1", 200), ("gw2", 100)], true, true);
        sim.run(DEAD + HELLO - TICK);
        assert!(sim.active().is_empty(), "nobody before the listening time");
        assert_eq!(sim.nodes[0].election.reason(), Reason::Starting);
        assert_eq!(sim.nodes[0].election.role(), Role::Standby);
        sim.run(3 * TICK);
        assert_eq!(sim.active(), ["gw1"]);
        assert_eq!(sim.nodes[1].election.reason(), Reason::HigherPriorityActive);
        assert!(sim.nodes[1].election.peers().all(|(_, heard, _)| heard));
    }

    #[test]
    fn ties_go_to_the_name_that_sorts_first() {
        let mut sim = Sim::new(&[("gw-b", 100), ("gw-a", 100)], true, true);
        sim.run(DEAD * 2);
        assert_eq!(sim.active(), ["gw-a"]);
    }

    #[test]
    fn a_dead_active_member_is_replaced_within_the_dead_time() {
        let mut sim = Sim::new(&[("gw1", 200), ("gw2", 100)], true, true);
        sim.run(DEAD * 3);
        sim.kill(0);
        let killed = sim.now;
        while sim.active().is_empty() {
            sim.run(TICK);
            assert!(
                sim.now - killed <= DEAD + 2 * TICK,
                "not taken over in time"
            );
        }
        assert_eq!(sim.active(), ["gw2"]);
        // It comes back: it listens, claims, and gw2 hands over.
        sim.revive(0, true);
        sim.run(DEAD + 4 * TICK);
        assert_eq!(sim.active(), ["gw1"], "preempted");
        let last = sim.nodes[1].log.last().unwrap();
        assert_eq!((last.to, last.reason), (Role::Standby, Reason::Preempted));
    }

    #[test]
    fn without_preempt_the_active_member_keeps_the_role() {
        let mut sim = Sim::new(&[("gw1", 200), ("gw2", 100)], false, true);
        sim.run(DEAD * 3);
        sim.kill(0);
        sim.run(DEAD * 2);
        sim.revive(0, false);
        sim.run(DEAD * 3);
        assert_eq!(sim.active(), ["gw2"]);
        assert_eq!(sim.nodes[0].election.reason(), Reason::OtherActive);
    }

    #[test]
    fn a_member_whose_trunk_goes_down_steps_down_at_once() {
        let mut sim = Sim::new(&[("gw1", 200), ("gw2", 100)], true, true);
        sim.run(DEAD * 3);
        sim.nodes[0].trunk = false;
        sim.run(3 * TICK);
        assert_eq!(sim.nodes[0].election.role(), Role::Down);
        assert_eq!(sim.nodes[0].election.reason(), Reason::TrunkDown);
        assert_eq!(
            sim.active(),
            ["gw2"],
            "within a round trip, not a dead time"
        );
        sim.nodes[0].trunk = true;
        sim.run(HELLO + 4 * TICK);
        assert_eq!(sim.active(), ["gw1"], "back, by preemption");
    }

    #[test]
    fn a_member_cut_from_the_fabric_fences_itself_before_it_is_replaced() {
        let mut sim = Sim::new(&[("gw1", 200), ("gw2", 100)], true, true);
        sim.run(DEAD * 3);
        // The cut is elsewhere in the fabric: no link goes down.
        let cut = sim.now;
        // Nothing reaches gw1 and nothing leaves it: model it as a partition.
        let mut fenced_at = None;
        let mut replaced_at = None;
        while replaced_at.is_none() {
            sim.now += TICK;
            let now = sim.now;
            // gw2 hears the witness only; gw1 hears nobody.
            sim.nodes[1]
                .election
                .heard("witness", Announced::Witness, now);
            for node in &mut sim.nodes {
                node.election.tick(now);
            }
            if fenced_at.is_none() && sim.nodes[0].election.role() != Role::Active {
                fenced_at = Some(now - cut);
            }
            if sim.nodes[1].election.role() == Role::Active {
                replaced_at = Some(now - cut);
            }
            assert!(now - cut < DEAD * 2);
        }
        let (fenced, replaced) = (fenced_at.unwrap(), replaced_at.unwrap());
        assert_eq!(sim.nodes[0].election.reason(), Reason::Fenced);
        assert!(
            fenced < replaced,
            "fenced {fenced:?} before replaced {replaced:?}"
        );
        // A link down is known at once.
        sim.nodes[1].election.links(true, false);
        sim.nodes[1].election.tick(sim.now + TICK);
        assert_eq!(sim.nodes[1].election.reason(), Reason::FabricDown);
    }

    #[test]
    fn without_a_witness_the_last_member_fences_itself() {
        let mut sim = Sim::new(&[("gw1", 200), ("gw2", 100)], true, false);
        sim.run(DEAD * 3);
        assert_eq!(sim.active(), ["gw1"]);
        sim.kill(0);
        sim.run(DEAD * 3);
        assert!(sim.active().is_empty(), "what self-fencing gives up");
        assert_eq!(sim.nodes[1].election.reason(), Reason::Fenced);
    }

    #[derive(Clone, Debug)]
    enum Event {
        Kill(usize),
        Revive(usize),
        TrunkDown(usize),
        TrunkUp(usize),
        FabricDown(usize),
        FabricUp(usize),
        Wait(u64),
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            (0usize..3).prop_map(Event::Kill),
            (0usize..3).prop_map(Event::Revive),
            (0usize..3).prop_map(Event::TrunkDown),
            (0usize..3).prop_map(Event::TrunkUp),
            (0usize..3).prop_map(Event::FabricDown),
            (0usize..3).prop_map(Event::FabricUp),
            (1u64..400).prop_map(Event::Wait),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever fails and comes back, two members that reach the
        /// switch are never active at once; and once things settle, the
        /// best member that can serve is the one active (with preempt).
        #[test]
        fn never_two_active_and_the_best_serves(
            priorities in prop::collection::vec(0u8..4, 3),
            events in prop::collection::vec(event(), 0..20),
            preempt in any::<bool>(),
        ) {
            let names = ["gw1", "gw2", "gw3"];
            let members: Vec<(&str, u8)> = names.iter().copied().zip(priorities).collect();
            let mut sim = Sim::new(&members, preempt, true);
            sim.run(DEAD * 2);
            for e in events {
                match e {
                    Event::Kill(i) => sim.kill(i),
                    Event::Revive(i) if !sim.nodes[i].alive => sim.revive(i, preempt),
                    Event::TrunkDown(i) => sim.nodes[i].trunk = false,
                    Event::TrunkUp(i) => sim.nodes[i].trunk = true,
                    Event::FabricDown(i) => sim.nodes[i].fabric = false,
                    Event::FabricUp(i) => sim.nodes[i].fabric = true,
                    Event::Wait(ms) => sim.run(Duration::from_millis(ms)),
                    Event::Revive(_) => {}
                }
                sim.run(TICK);
            }
            sim.run(DEAD * 3);
            let serving: Vec<&Node> = sim.nodes.iter().filter(|n| n.alive && n.trunk && n.fabric).collect();
            let active = sim.active();
            if serving.is_empty() {
                prop_assert!(active.is_empty());
            } else {
                prop_assert_eq!(active.len(), 1, "one active among {:?}", serving.iter().map(|n| n.election.me().name.clone()).collect::<Vec<_>>());
                if preempt {
                    let best = serving
                        .iter()
                        .map(|n| n.election.me())
                        .fold(None, |b: Option<&Member>, m| match b {
                            Some(b) if b.better_than(m) => Some(b),
                            _ => Some(m),
                        })
                        .unwrap();
                    prop_assert_eq!(active[0], best.name.as_str());
                }
            }
        }
    }
}
