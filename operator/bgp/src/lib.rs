//! trunkline's BGP speaker for L3VPN (RFC 4364, seed 003): one active per
//! cluster (a Lease, as the operator's), it runs GoBGP's `gobgpd` as a
//! supervised child and drives it over gRPC.
//!
//! ```text
//!   VirtualNetwork.spec.l3vpn + Programmed VMIs ──> vpn::exports ──> gobgpd ──> BGPPeers
//!   BGPPeers ──> gobgpd ──> vpn::imports ──> DCGateway `bgp-<next hop>` ──> operator ──> agents
//! ```
//!
//! - [`vpn`]: route targets, distinguishers, what to export and import
//!   (pure).
//! - [`gobgp`]: the generated GoBGP API and the translation to it.
//! - [`speaker`]: the gobgpd child process, restarted and re-fed when it
//!   dies.
//! - [`controller`]: watches, passes, DCGateways, BGPPeer status.
//! - [`health`]: `/healthz` and `/readyz` from what the controller's
//!   turns said.
//! - [`parent_death`]: gobgpd started so that it dies with the speaker.

#![forbid(unsafe_code)]

pub mod controller;
pub mod gobgp;
pub mod health;
pub mod parent_death;
pub mod speaker;
pub mod vpn;
