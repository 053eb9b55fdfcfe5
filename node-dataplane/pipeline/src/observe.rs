//! Watching the pipeline decide: an [`Observer`] is told each stage's
//! decision as a frame goes through [`Pipeline`](crate::Pipeline).
//!
//! ```text
//!  Pipeline<'a, NoObserver>   the forwarding path: ACTIVE = false, every
//!                             `note` compiles to nothing (same code as
//!                             before observers existed)
//!  Pipeline<'a, &Recorder>    a trace (crate::trace): ACTIVE = true and
//!                             SIDE_EFFECTS = false: the decision is made
//!                             from the same tables by the same code, but
//!                             nothing shared is written (no address-pair
//!                             learning, no HA "seen" mark, no punt budget)
//! ```
//!
//! The observer's constants are associated constants, so the checks
//! `if O::ACTIVE` and `if O::SIDE_EFFECTS` are resolved at compile time.

use core::cell::RefCell;
use core::fmt;

/// A stage of the pipeline, as a trace names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The ingress port and its role (gateway, fabric, host).
    Port,
    /// The Ethernet header and the 802.1Q tag.
    Parse,
    /// (port, VLAN) to a logical interface and its VMI.
    Classify,
    /// Port security: source MAC and IP.
    SourceCheck,
    /// A DHCP client message, answered or relayed.
    Dhcp,
    /// By destination MAC: the neighbour proxy, the router, the bridge.
    Dispatch,
    /// The ARP / ND proxy.
    NeighbourProxy,
    /// The VRF's longest-prefix match.
    Route,
    /// Where a routed or bridged frame goes next.
    NextHop,
    /// Layer-2 forwarding in the network.
    Bridge,
    /// A tunnel packet from the fabric (decapsulation).
    Tunnel,
    /// Leaving the overlay untunnelled (SNAT, IP fabric forwarding).
    FabricExit,
    /// The final decision.
    Verdict,
}

impl Stage {
    /// The stage's stable `snake_case` name (in traces and their JSON).
    pub const fn as_str(&self) -> &'static str {
        match self {
            Stage::Port => "port",
            Stage::Parse => "parse",
            Stage::Classify => "classify",
            Stage::SourceCheck => "source_check",
            Stage::Dhcp => "dhcp",
            Stage::Dispatch => "dispatch",
            Stage::NeighbourProxy => "neighbour_proxy",
            Stage::Route => "route",
            Stage::NextHop => "next_hop",
            Stage::Bridge => "bridge",
            Stage::Tunnel => "tunnel",
            Stage::FabricExit => "fabric_exit",
            Stage::Verdict => "verdict",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Told each stage's decision. Implementations are `Copy` (a zero-sized
/// type, or a reference to a recorder) so the pipeline stays `Copy`.
pub trait Observer: Copy {
    /// Whether [`stage`](Observer::stage) is called at all.
    const ACTIVE: bool;
    /// Whether the pipeline may write the shared state of the tables and
    /// spend budgets (address-pair holders, HA "seen" marks, punt budgets).
    /// False for a trace: it must change nothing.
    const SIDE_EFFECTS: bool;

    /// `stage` decided `decision` (a short stable word), with `detail`.
    fn stage(&self, stage: Stage, decision: &'static str, detail: fmt::Arguments<'_>);
}

/// The forwarding path's observer: sees nothing, costs nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoObserver;

impl Observer for NoObserver {
    const ACTIVE: bool = false;
    const SIDE_EFFECTS: bool = true;

    #[inline(always)]
    fn stage(&self, _: Stage, _: &'static str, _: fmt::Arguments<'_>) {}
}

/// One recorded decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The stage.
    pub stage: Stage,
    /// What it decided (a short stable word: `vmi`, `passed`, `lookup`, ...).
    pub decision: &'static str,
    /// The details, for people.
    pub detail: String,
}

/// Records every decision, for a trace; makes the pipeline side-effect
/// free. Allocates: never used on the forwarding path.
#[derive(Debug, Default)]
pub struct Recorder {
    steps: RefCell<Vec<Step>>,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// The decisions recorded so far, in order.
    pub fn into_steps(self) -> Vec<Step> {
        self.steps.into_inner()
    }
}

impl Observer for &Recorder {
    const ACTIVE: bool = true;
    const SIDE_EFFECTS: bool = false;

    fn stage(&self, stage: Stage, decision: &'static str, detail: fmt::Arguments<'_>) {
        self.steps.borrow_mut().push(Step {
            stage,
            decision,
            detail: detail.to_string(),
        });
    }
}
