//! The command line of `kubectl trunkline`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// See inside a trunkline gateway node, through the API server.
#[derive(Debug, Parser)]
#[command(name = "kubectl-trunkline", bin_name = "kubectl trunkline", version)]
pub struct Cli {
    /// A kubeconfig file (default: KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, global = true, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// What the node's current tables do with a described packet, stage by stage.
    Trace(TraceArgs),
    /// Sampled verdicts of real packets on the node, with drop reasons.
    Observe(ObserveArgs),
    /// The node's tables (version, sizes), ports, backend, and what it left out.
    Status(StatusArgs),
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    /// For people.
    #[default]
    Text,
    /// The PacketTrace's status (or the PhysicalRouter's), as JSON.
    Json,
}

/// Protocol of a traced packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Protocol {
    /// ICMP echo request (or --icmp-type).
    #[default]
    Icmp,
    /// UDP.
    Udp,
    /// A TCP SYN.
    Tcp,
    /// An ARP request for --dst-ip.
    Arp,
}

/// `kubectl trunkline trace`.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The gateway node (its PhysicalRouter's name).
    #[arg(long)]
    pub node: String,
    /// The interface the packet arrives on.
    #[arg(long)]
    pub port: String,
    /// Its 802.1Q VLAN (untagged when absent).
    #[arg(long)]
    pub vlan: Option<u16>,
    /// Source MAC.
    #[arg(long)]
    pub src_mac: String,
    /// Destination MAC (default: the gateway MAC; broadcast for ARP).
    #[arg(long)]
    pub dst_mac: Option<String>,
    /// Source address.
    #[arg(long)]
    pub src_ip: String,
    /// Destination address (the ARP target for --protocol arp).
    #[arg(long)]
    pub dst_ip: String,
    /// Protocol.
    #[arg(long, value_enum, default_value_t)]
    pub protocol: Protocol,
    /// UDP/TCP source port.
    #[arg(long)]
    pub src_port: Option<u16>,
    /// UDP/TCP destination port.
    #[arg(long)]
    pub dst_port: Option<u16>,
    /// ICMP type (default echo request).
    #[arg(long)]
    pub icmp_type: Option<u8>,
    /// IP TTL / hop limit.
    #[arg(long)]
    pub ttl: Option<u8>,
    /// Seconds to wait for the node's answer.
    #[arg(long, default_value_t = 20)]
    pub timeout: u64,
    /// Keep the PacketTrace (default: deleted once answered).
    #[arg(long)]
    pub keep: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Output,
}

/// `kubectl trunkline observe`.
#[derive(Debug, Args)]
pub struct ObserveArgs {
    /// The gateway node.
    #[arg(long)]
    pub node: String,
    /// Only packets arriving on this interface.
    #[arg(long)]
    pub port: Option<String>,
    /// Only packets with this VLAN (0: untagged).
    #[arg(long)]
    pub vlan: Option<u16>,
    /// Only packets from or to this address.
    #[arg(long)]
    pub ip: Option<String>,
    /// Only drops.
    #[arg(long)]
    pub drops_only: bool,
    /// Seconds to sample (1 to 300).
    #[arg(long, default_value_t = 10)]
    pub duration: u32,
    /// The most samples kept (1 to 256).
    #[arg(long, default_value_t = 64)]
    pub max_samples: u32,
    /// Keep the PacketTrace (default: deleted once answered).
    #[arg(long)]
    pub keep: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Output,
}

/// `kubectl trunkline status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The gateway node.
    #[arg(long)]
    pub node: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Output,
}
