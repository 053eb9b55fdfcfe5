//! Gateway HA on a node: the HA thread, and the pure logic it runs.
//!
//! ```text
//!  compile loop: desired() ──> HaPlan (plan.rs) + pipeline config (HA groups, multi-homed VMIs)
//!                                   │  in the Plan, swapped with the tables
//!                                   v
//!  HA thread (thread.rs), in the node's network namespace, every 5 ms:
//!    UDP socket (--ha-port) ── heartbeats, claims (wire.rs) ──> other members and witnesses
//!    link states (netlink) of the member ports and the fabric
//!    mode Fast: Election per group (election.rs) ──> role cell of the tables
//!    mode STP:  StpObserver per group (stp.rs): BPDUs received on VLAN 0 of the member port
//!    Paths (paths.rs): who serves each multi-homed VMI ──> path cells of the tables
//!    fast path's "seen" marks ──> claims; takeover ──> claims + announcements injected
//!    into the forwarding thread (gratuitous ARP / unsolicited NA on every VLAN)
//!    state ──> Control (PhysicalRouter.status.haGroups, metrics)
//! ```
//!
//! The forwarding thread only moves frames: it reads the cells per frame
//! and sends what the HA thread injected, once per loop.

pub mod election;
pub mod paths;
pub mod plan;
pub mod stp;
pub mod thread;
pub mod wire;

pub use plan::{GroupPlan, HaPlan};
