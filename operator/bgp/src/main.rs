//! `trunkline-bgp`: parses flags, elects a leader, runs the speaker.

use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::sync::watch;
use trunkline_bgp::controller::{self, Settings};
use trunkline_bgp::health::{self, Health};
use trunkline_bgp::parent_death;
use trunkline_bgp::speaker::{Speaker, SpeakerConfig};
use trunkline_operator::leader::{Elector, LeaseConfig, default_identity, parse_duration};

/// The cluster's BGP speaker for L3VPN.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Kubeconfig file (default: in-cluster, then $KUBECONFIG).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// The gobgpd binary.
    #[arg(long, env = "TRUNKLINE_GOBGPD", default_value = "gobgpd")]
    gobgpd: PathBuf,
    /// The Unix socket of gobgpd's gRPC API.
    #[arg(long, default_value = "/run/trunkline-bgp/gobgpd.sock")]
    api_socket: PathBuf,
    /// Run gobgpd in this network namespace (a path such as
    /// /run/netns/NAME; for labs).
    #[arg(long)]
    speaker_netns: Option<PathBuf>,
    /// Our BGP identifier (an IPv4 address, usually the node's underlay
    /// address).
    #[arg(long, env = "TRUNKLINE_BGP_ROUTER_ID")]
    router_id: Ipv4Addr,
    /// Our AS number (BGPPeers may override it with spec.localASN).
    #[arg(long, default_value_t = 64512)]
    local_asn: u32,
    /// The TCP port gobgpd listens on for peers (-1: only connects out).
    #[arg(long, default_value_t = 179, allow_negative_numbers = true)]
    listen_port: i32,
    /// Graceful restart (RFC 4724): the restart time advertised to peers,
    /// which keep our routes (stale) that long while gobgpd restarts or a
    /// standby takes over, until they are sent again; 0: off (a restart
    /// withdraws every route, then advertises it again).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=4095))]
    graceful_restart_seconds: u32,
    /// Namespace of BGPPeer password Secrets and of the Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "trunkline-system")]
    namespace: String,
    /// Longest pause between two passes (learned routes and session states
    /// are read on each).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    resync: Duration,
    /// Elect one active speaker among the replicas with a Lease.
    #[arg(long)]
    leader_elect: bool,
    /// Name of the Lease.
    #[arg(long, default_value = "trunkline-bgp")]
    leader_election_id: String,
    /// This replica's identity in the Lease (default: hostname + random).
    #[arg(long, env = "POD_NAME")]
    leader_election_identity: Option<String>,
    /// Address of the HTTP server for /healthz (the controller loop turns)
    /// and /readyz (standby, or active with its last pass applied to a
    /// gobgpd answering over gRPC).
    #[arg(long, default_value = "0.0.0.0:8081")]
    health_addr: SocketAddr,
}

fn main() -> anyhow::Result<ExitCode> {
    // Started as gobgpd's shim: before any thread exists, so that the
    // parent-death signal is this (single) thread's when it execs.
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if let Some(failed) = parent_death::run_if_shim(&args) {
        return Ok(failed);
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())?;
    Ok(ExitCode::SUCCESS)
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let listener = health::bind(args.health_addr).await?;
    let client = match &args.kubeconfig {
        Some(path) => {
            let config = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let config = kube::Config::from_custom_kubeconfig(config, &Default::default()).await?;
            kube::Client::try_from(config)?
        }
        None => kube::Client::try_default().await?,
    };
    let speaker = Speaker::new(SpeakerConfig {
        gobgpd: args.gobgpd.clone(),
        api_socket: args.api_socket.clone(),
        netns: args.speaker_netns.clone(),
        router_id: args.router_id,
        asn: args.local_asn,
        listen_port: args.listen_port,
        graceful_restart: (args.graceful_restart_seconds > 0)
            .then_some(args.graceful_restart_seconds),
    });
    let settings = Settings {
        namespace: args.namespace.clone(),
        asn: args.local_asn,
        router_id: args.router_id,
        resync: args.resync,
    };
    let (leading_tx, leading) = watch::channel(!args.leader_elect);
    let (stop_tx, stop) = watch::channel(false);
    let shutdown = async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
    };
    let stopped = {
        let mut stop = stop.clone();
        async move {
            let _ = stop.wait_for(|s| *s).await;
        }
    };
    let elector = args.leader_elect.then(|| {
        Elector::new(
            client.clone(),
            LeaseConfig {
                namespace: args.namespace.clone(),
                name: args.leader_election_id.clone(),
                identity: args
                    .leader_election_identity
                    .clone()
                    .unwrap_or_else(default_identity),
                lease_duration: Duration::from_secs(15),
                renew_deadline: Duration::from_secs(10),
                retry_period: Duration::from_secs(2),
            },
        )
    });
    // Older than this, a turn's verdict is not trusted: a few resyncs, and
    // more than gobgpd's start-up wait (15 s).
    let health = Health::new(Duration::from_secs(30) + 3 * args.resync);
    let probes = {
        let mut stop = stop.clone();
        health::serve(listener, health.clone(), async move {
            let _ = stop.wait_for(|s| *s).await;
        })
    };
    let controller = controller::run(client, settings, speaker, health, leading, stopped);
    let election = async move {
        match elector {
            Some(elector) => {
                let mut stop = stop.clone();
                elector
                    .run(
                        leading_tx,
                        async move {
                            let _ = stop.wait_for(|s| *s).await;
                        },
                        |_| {},
                    )
                    .await
            }
            None => {
                let _keep = leading_tx;
                let mut stop = stop.clone();
                let _ = stop.wait_for(|s| *s).await;
            }
        }
    };
    let signal = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let ((), (), (), served) = tokio::join!(controller, election, signal, probes);
    served?;
    Ok(())
}
