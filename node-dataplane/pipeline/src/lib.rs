//! The pure packet pipeline of a gateway node: immutable tables compiled
//! from the desired state, and the per-frame decision (VLAN to VMI, source
//! checks, ARP/ND proxy, VRF routing, re-tagging, bridging and flooding, the
//! overlay's encapsulation and decapsulation, ICMP errors).
//!
//! ```text
//!  NodeConfig --Tables::compile--> (Tables, Vec<Rejected>)
//!                                     |  held in an ArcSwap by the caller,
//!                                     |  loaded once per batch
//!                                     v
//!  rx batch --> Pipeline::new(&tables, &counters).process(port, buf, offset, len)
//!                                     |
//!                                     v
//!              Verdict::Transmit { port, offset, len, vmi } | Flood | Pass | Drop(DropReason)
//!                                     |
//!  caller sends; counts with Pipeline::sent / Pipeline::lost; replicates a
//!  Flood with Pipeline::flood_members / flood_egress / flood_copy
//! ```
//!
//! Nothing here does I/O, takes a lock or allocates per packet; the frame is
//! rewritten in place (see [`process`](mod@process) for the flow).

#![forbid(unsafe_code)]

pub mod config;
pub mod counters;
pub mod flow;
mod hash;
pub mod kernel;
pub mod limit;
mod lpm;
pub mod neighbours;
pub mod network_policy;
pub mod observe;
pub mod policy;
pub mod process;
pub mod sample;
pub mod tables;
pub mod trace;
pub mod verdict;

pub use config::{
    AllowedAddressPair, CreationOrder, DEFAULT_GATEWAY_MAC, DEFAULT_LEASE_SECS, DhcpConfig,
    DhcpMode, Encapsulation, ForwardingMode, HaGroupConfig, HaMode, IpPrefix,
    LogicalInterfaceConfig, MacAddress, MultihomedVmiConfig, NetworkConfig, NextHopConfig,
    NodeConfig, PeerConfig, PortConfig, PortId, PortKind, PrefixError, PuntLimit, RemoteVmiConfig,
    RouteConfig, SubnetConfig, UnderlayConfig, VmiConfig,
};
pub use counters::{CounterSnapshot, Counters, MAX_WORKERS, VmiCounterSnapshot, VmiCounters};
pub use observe::{NoObserver, Observer, Recorder, Stage, Step};
pub use process::{FrameBuf, HEADROOM, L2Header, MAX_OVERHEAD, Pipeline, parse_l2, process};
pub use tables::{
    Announcement, Egress, HaRole, LogicalInterface, NextHop, ObjectRef, Peer, PeerId, Rebuilt,
    RejectReason, Rejected, RemoteId, Tables, Vmi, VmiId,
};
pub use trace::{EgressFrame, Payload, Probe, ProbeError, Trace, trace, trace_frame};
pub use verdict::{DropReason, Flood, Verdict};
