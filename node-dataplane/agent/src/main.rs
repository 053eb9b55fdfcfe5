//! `trunkline-dataplane`: the node dataplane agent. Flags and environment
//! in, [`trunkline_dataplane::run`] out.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use trunkline_xdp::{AttachMode, BackendChoice};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Backend {
    /// The XDP tier with AF_XDP where the kernel allows it, else AF_XDP,
    /// else AF_PACKET (each fallback logged).
    Auto,
    /// The XDP tier (the kernel decides the common case) with AF_XDP for
    /// the rest; no fallback.
    Xdp,
    /// AF_XDP only: every frame through userspace.
    AfXdp,
    /// AF_PACKET only.
    AfPacket,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum XdpMode {
    /// In the driver (generic where the driver refuses, logged).
    Native,
    /// Generic XDP, in the kernel stack.
    Generic,
}

/// The trunkline node dataplane: enforces the accepted objects of its node.
#[derive(Debug, Parser)]
#[command(version)]
struct Flags {
    /// This node's name; its PhysicalRouter has the same name.
    #[arg(long, env = "NODE_NAME")]
    node: String,
    /// Fast-path I/O backend.
    #[arg(long, value_enum, default_value = "auto", env = "TRUNKLINE_BACKEND")]
    backend: Backend,
    /// Where the XDP tier's program runs on the ports.
    #[arg(long, value_enum, default_value = "native", env = "TRUNKLINE_XDP_MODE")]
    xdp_mode: XdpMode,
    /// Address of /healthz, /readyz and /metrics: plain HTTP without
    /// authentication, so loopback unless told otherwise (the chart binds
    /// the node's primary address, where Prometheus and the probes reach it).
    #[arg(long, default_value = "127.0.0.1:9090")]
    metrics_addr: std::net::SocketAddr,
    /// Kubeconfig to use (default: in-cluster, or KUBECONFIG).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Open the ports in this network namespace (e.g. /run/netns/gw): for
    /// labs and tests, where the node is a namespace.
    #[arg(long)]
    port_netns: Option<PathBuf>,
    /// The shortest time between two builds of the tables, in ms: a change
    /// after a quiet spell is built at once, a burst in batches.
    #[arg(long, default_value_t = 100)]
    debounce_ms: u64,
    /// UDP port of gateway HA heartbeats and claims, on the node's underlay
    /// address (the same on every node).
    #[arg(long, default_value_t = trunkline_dataplane::ha::wire::DEFAULT_PORT, env = "TRUNKLINE_HA_PORT")]
    ha_port: u16,
    /// Real-time priority (SCHED_RR, 1-99) of the gateway HA thread, so
    /// that a busy node still sends and hears heartbeats on time (as
    /// keepalived's vrrp_rt_priority); 0 keeps normal scheduling. Needs
    /// CAP_SYS_NICE; without it the agent logs a warning and runs on.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=99), env = "TRUNKLINE_HA_REALTIME_PRIORITY")]
    ha_realtime_priority: u8,
    /// Ports (and ICMP echo identifiers) SNAT translates to on the node's
    /// underlay address, LOW-HIGH. The default lies above Linux's default
    /// ephemeral range (net.ipv4.ip_local_port_range 32768-60999); a range
    /// overlapping the node's is added to net.ipv4.ip_local_reserved_ports,
    /// so the host's own sockets never take one.
    #[arg(long, default_value = "61000-65535", value_parser = port_range, env = "TRUNKLINE_SNAT_PORTS")]
    snat_ports: (u16, u16),
    /// Most flows (SNAT, security groups) the node keeps, each a forward
    /// and a reverse entry (100 bytes each, allocated when a network first
    /// translates or a VMI is first policed).
    #[arg(long, default_value_t = 262_144, value_parser = clap::value_parser!(u32).range(1..=16_777_216))]
    flow_table_size: u32,
    /// Idle timeout of UDP flows, in seconds (RFC 4787: at least 120).
    #[arg(long, default_value_t = 300)]
    flow_timeout_udp: u64,
    /// Idle timeout of established TCP flows, in seconds (RFC 5382: at
    /// least 7440).
    #[arg(long, default_value_t = 7440)]
    flow_timeout_tcp_established: u64,
    /// Idle timeout of TCP flows being opened or closed, in seconds (RFC
    /// 5382: 240).
    #[arg(long, default_value_t = 240)]
    flow_timeout_tcp_transitory: u64,
    /// Idle timeout of ICMP echo flows, in seconds (RFC 5508: 60).
    #[arg(long, default_value_t = 60)]
    flow_timeout_icmp: u64,
    /// Serve `/debug/tables`: the installed tables and a compilation from
    /// scratch of the same configuration, as text (for tests: it keeps a
    /// copy of the configuration).
    #[arg(long)]
    debug_tables: bool,
    /// Frames per second each VMI may have answered by the gateway (ARP/ND
    /// proxy, echo, DHCP, router advertisements, ICMP errors); over it,
    /// questions are dropped and counted (`punt_rate_limited`).
    #[arg(long, default_value_t = trunkline_pipeline::PuntLimit::default().per_second)]
    punt_per_second: u32,
    /// Answers a VMI may get at once after a quiet period.
    #[arg(long, default_value_t = trunkline_pipeline::PuntLimit::default().burst)]
    punt_burst: u32,
    /// The DaemonSet running this agent (in --namespace): when it is gone
    /// as the agent stops (an uninstall, not a restart), the agent removes
    /// the virtual gateway interfaces it made.
    #[arg(long, env = "DAEMONSET_NAME", requires = "namespace")]
    daemonset: Option<String>,
    /// The agent's pod's namespace (that of --daemonset).
    #[arg(long, env = "POD_NAMESPACE")]
    namespace: Option<String>,
}

/// `LOW-HIGH`, LOW <= HIGH, both 1..=65535.
fn port_range(text: &str) -> Result<(u16, u16), String> {
    let bad = || {
        format!(
            "{text:?} is not a port range: give LOW-HIGH with 1 <= LOW <= HIGH <= 65535, e.g. 61000-65535"
        )
    };
    let (lo, hi) = text.split_once('-').ok_or_else(bad)?;
    let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
    let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
    if lo == 0 || lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

/// Resolves on the first SIGTERM or SIGINT. The handlers are installed
/// when this is called, not when the future is first polled: a SIGTERM
/// while the agent is still starting must stop it cleanly too, not kill
/// it with the signal's default action.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let shutdown = shutdown_signal();
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if std::env::var("LOG_FORMAT").as_deref() == Ok("json") {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let flags = Flags::parse();
    let backend = match flags.backend {
        Backend::Auto => BackendChoice::Auto,
        Backend::Xdp => BackendChoice::XdpTier,
        Backend::AfXdp => BackendChoice::AfXdp,
        Backend::AfPacket => BackendChoice::AfPacket,
    };
    let options = trunkline_dataplane::Options {
        node: flags.node,
        backend,
        xdp_mode: match flags.xdp_mode {
            XdpMode::Native => AttachMode::Native,
            XdpMode::Generic => AttachMode::Generic,
        },
        metrics_addr: flags.metrics_addr,
        port_netns: flags.port_netns,
        debounce: Duration::from_millis(flags.debounce_ms),
        report_interval: Duration::from_secs(10),
        ha_port: flags.ha_port,
        ha_realtime_priority: flags.ha_realtime_priority,
        snat_ports: flags.snat_ports,
        flows: trunkline_pipeline::flow::FlowConfig {
            capacity: flags.flow_table_size as usize,
            timeouts: trunkline_pipeline::flow::Timeouts {
                udp: Duration::from_secs(flags.flow_timeout_udp),
                tcp_established: Duration::from_secs(flags.flow_timeout_tcp_established),
                tcp_transitory: Duration::from_secs(flags.flow_timeout_tcp_transitory),
                icmp: Duration::from_secs(flags.flow_timeout_icmp),
            },
        },
        punt_limit: trunkline_pipeline::PuntLimit {
            per_second: flags.punt_per_second.max(1),
            burst: flags.punt_burst,
        },
        owner: flags
            .daemonset
            .zip(flags.namespace)
            .map(|(name, namespace)| trunkline_dataplane::uninstall::Owner { namespace, name }),
        debug_tables: flags.debug_tables,
    };
    tracing::info!(node = options.node, backend = ?options.backend, xdp_mode = ?options.xdp_mode, "trunkline-dataplane starting");
    let client = trunkline_client::client(flags.kubeconfig.as_deref()).await?;
    trunkline_dataplane::run(client, options, shutdown).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::port_range;

    #[test]
    fn port_ranges_read_and_refuse() {
        assert_eq!(port_range("61000-65535"), Ok((61000, 65535)));
        assert_eq!(port_range("5000-5000"), Ok((5000, 5000)));
        for bad in ["61000", "0-10", "20-10", "a-b", "1-70000"] {
            assert!(port_range(bad).unwrap_err().contains("LOW-HIGH"), "{bad}");
        }
    }
}
